"""The web admin's System pages as an admin uses them: users and their roles, API tokens shown
once, the audit log; and that other roles, other shops and forged forms get nowhere."""

from __future__ import annotations

import re
from typing import Any

from conftest import Api
from web_support import Web, text

NEW_USER = {
    "username": "mei",
    "password": "password-mei",
    "role": "service",
    "full_name": "Mei Lin",
    "email": "mei@acme.test",
}


def user_of(api: Api, username: str) -> dict[str, Any]:
    status, found = api.get("/users")
    assert status == 200, found
    [user] = [u for u in found["items"] if u["username"] == username]
    return user


_TAG = re.compile(r"<(input|select|textarea)\b([^>]*)>", re.S)


def well_formed(html: str) -> None:
    """What every admin page keeps to: nothing inline for the CSP to block, a label for
    every control, a scope on every table header."""
    assert "style=" not in html
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", html, re.S)
    assert scripts and all("src=" in attrs and not body.strip() for attrs, body in scripts)
    assert not re.search(r"<[^>]+\son[a-z]+=", html)  # no inline event handlers
    for match in _TAG.finditer(html):
        attrs = match.group(2)
        if 'type="hidden"' in attrs:
            continue
        found = re.search(r'\bid="([^"]+)"', attrs)
        if found:
            assert f'for="{found.group(1)}"' in html, match.group(0)
        else:  # a control inside its label
            before = html[: match.start()].rstrip()
            assert before.endswith("<label>"), match.group(0)
    for th in re.findall(r"<th\b[^>]*>", html):
        assert "scope=" in th, th


def issued_token(html: str) -> str:
    found = re.search(r'<span class="secret" id="new-token">([^<]+)</span>', html)
    assert found, html[:3000]
    return found.group(1)


# --- users ------------------------------------------------------------------------------------


def test_an_admin_creates_a_user_who_can_then_sign_in(web: Web, api: Api, app: Any) -> None:
    web.login("admin")
    listing = text(web.get("/admin/users"))
    for role in ("admin", "operator", "warehouse", "service", "analyst"):
        assert f'<option value="{role}"' in listing  # the API's roles to pick from
    response = web.post("/admin/users", NEW_USER)
    assert response.status_code == 302
    assert response.headers["Location"] == "/admin/users/mei"
    page = text(web.get("/admin/users/mei"))
    assert "User mei is created and can sign in now." in page and "Mei Lin" in page
    made = user_of(api, "mei")
    assert (made["role"], made["full_name"], made["email"], made["active"]) == (
        "service",
        "Mei Lin",
        "mei@acme.test",
        True,
    )
    assert 'href="/admin/users/mei"' in text(web.get("/admin/users"))

    for path in ("/admin/users", "/admin/users/mei", "/admin/tokens", "/admin/audit"):
        well_formed(text(web.get(path)))
    mei = Web(app.test_client())
    mei.login("mei", "password-mei")
    assert 'href="/admin/tickets"' in text(mei.get("/admin/"))  # a service agent's pages
    assert mei.get("/admin/users").status_code == 403


def test_a_refused_user_is_shown_field_by_field_and_keeps_what_was_typed(
    web: Web, api: Api
) -> None:
    web.login("admin")
    response = web.post(
        "/admin/users",
        {
            "username": "bad name",
            "password": "short",
            "role": "operator",
            "email": "not-an-address",
            "full_name": "Bo Chen",
        },
    )
    assert response.status_code == 422
    html = text(response)
    for name in ("username", "password", "email"):
        assert f'id="f-{name}-err"' in html, name
    assert 'value="Bo Chen"' in html and "short" not in re.findall(r'value="([^"]*)"', html)
    assert all(u["username"] != "bad name" for u in api.get("/users")[1]["items"])

    taken = web.post(
        "/admin/users", {"username": "operator", "password": "password-x1", "role": "operator"}
    )
    assert taken.status_code == 409
    assert "operator" in text(taken) and 'class="errors"' in text(taken)


def test_roles_and_contact_are_changed_from_the_users_page(web: Web, api: Api) -> None:
    web.login("admin")
    response = web.post(
        "/admin/users/analyst",
        {"role": "operator", "active": "yes", "full_name": "Ana Lyst", "email": "", "phone": ""},
    )
    assert response.status_code == 302
    assert "analyst is updated." in text(web.get("/admin/users/analyst"))
    changed = user_of(api, "analyst")
    assert (changed["role"], changed["full_name"]) == ("operator", "Ana Lyst")
    # The change is in the audit log, by who made it
    status, entries = api.get("/audit?action=user.update&entity_id=analyst")
    assert status == 200 and entries["items"][0]["actor"] == "admin"
    # Saving the page as it is changes nothing
    web.post(
        "/admin/users/analyst",
        {"role": "operator", "active": "yes", "full_name": "Ana Lyst", "email": "", "phone": ""},
    )
    assert "Nothing was changed." in text(web.get("/admin/users/analyst"))
    assert api.get("/audit?action=user.update&entity_id=analyst")[1]["total"] == 1


def test_an_admin_cannot_demote_themselves_and_is_told_why(web: Web, api: Api) -> None:
    web.login("admin")
    response = web.post("/admin/users/admin", {"role": "analyst", "active": "yes"})
    assert response.status_code == 409
    assert "you cannot demote or deactivate yourself" in text(response)
    assert user_of(api, "admin")["role"] == "admin"


def test_deactivating_a_user_signs_them_out_at_once(web: Web, api: Api, app: Any) -> None:
    operator = Web(app.test_client())
    operator.login("operator")
    assert operator.get("/admin/orders").status_code == 200
    assert api.get("/orders", token=api.tokens["operator"])[0] == 200

    web.login("admin")
    response = web.post("/admin/users/operator", {"role": "operator", "active": "no"})
    assert response.status_code == 302
    assert "signed out everywhere" in text(web.get("/admin/users/operator"))

    following = operator.get("/admin/orders")
    assert following.status_code == 302
    assert following.headers["Location"].startswith("/admin/login")
    assert api.get("/orders", token=api.tokens["operator"])[0] == 401  # tokens revoked too
    assert user_of(api, "operator")["active"] is False
    again = Web(app.test_client())
    again.get("/admin/login")
    refused = again.post(
        "/admin/login", {"username": "operator", "password": "password-operator", "tenant": "acme"}
    )
    assert refused.status_code == 401


def test_other_roles_get_403_on_system_pages_as_on_the_api(web: Web, api: Api) -> None:
    for role in ("operator", "warehouse", "service", "analyst"):
        assert api.get("/users", token=api.tokens[role])[0] == 403
        assert api.get("/audit", token=api.tokens[role])[0] == 403
        client = Web(web.client.application.test_client())
        client.login(role)
        for path in ("/admin/users", "/admin/users/admin", "/admin/tokens", "/admin/audit"):
            assert client.get(path).status_code == 403, (role, path)
        assert 'href="/admin/users"' not in text(client.get("/admin/"))
        denied = client.post("/admin/users", {**NEW_USER, "username": f"x-{role}"})
        assert denied.status_code == 403
        assert client.post("/admin/users/analyst", {"active": "no"}).status_code == 403
        assert client.post("/admin/users/analyst/tokens", {}).status_code == 403
    assert all(not u["username"].startswith("x-") for u in api.get("/users")[1]["items"])
    assert user_of(api, "analyst")["active"] is True


# --- API tokens -------------------------------------------------------------------------------


def test_an_issued_token_is_shown_once_works_and_stops_when_revoked(web: Web, api: Api) -> None:
    web.login("admin")
    response = web.post(
        "/admin/users/warehouse/tokens", {"name": "scanner", "expires_in_days": "30"}
    )
    assert response.status_code == 200
    html = text(response)
    assert "it is not shown again" in html
    well_formed(html)
    token = issued_token(html)
    status, me = api.get("/me", token=token)
    assert (status, me["username"], me["role"]) == (200, "warehouse", "warehouse")

    page = text(web.get("/admin/users/warehouse"))
    assert token not in page  # only its prefix from now on
    [made] = [t for t in api.get("/tokens?user=warehouse")[1]["items"] if t["name"] == "scanner"]
    assert f"{made['prefix']}…" in page and made["expires_at"] is not None

    response = web.post(f"/admin/tokens/{made['id']}/revoke")
    assert response.status_code == 302 and response.headers["Location"] == "/admin/users/warehouse"
    assert "is revoked" in text(web.get("/admin/users/warehouse"))
    assert api.get("/me", token=token)[0] == 401
    assert api.get("/me", token=api.tokens["warehouse"])[0] == 200  # the other one still works

    web.post("/admin/users/warehouse/tokens/revoke")
    assert api.get("/me", token=api.tokens["warehouse"])[0] == 401
    ended = text(web.get("/admin/users/warehouse?ended=1"))
    assert ended.count(">revoked</span>") == 2


def test_a_bad_token_expiry_is_shown_by_its_field(web: Web, api: Api) -> None:
    web.login("admin")
    for days, status in (("soon", 400), ("0", 422), ("99999", 422)):
        response = web.post("/admin/users/service/tokens", {"expires_in_days": days})
        assert response.status_code == status, days
        assert 'id="f-expires_in_days-err"' in text(response), days
    assert len(api.get("/tokens?user=service")[1]["items"]) == 1  # only the seeded one


def test_the_token_list_names_every_users_live_tokens(web: Web, api: Api) -> None:
    web.login("admin")
    html = text(web.get("/admin/tokens"))
    for role in ("admin", "operator", "warehouse", "service", "analyst"):
        assert f'href="/admin/users/{role}"' in html
    narrowed = text(web.get("/admin/tokens?user=analyst"))
    assert 'href="/admin/users/analyst"' in narrowed
    assert 'href="/admin/users/operator"' not in narrowed


# --- the audit log ----------------------------------------------------------------------------


def test_the_audit_log_filters_and_pages_as_the_api_does(web: Web, api: Api) -> None:
    web.login("admin")
    for i in range(3):
        assert (
            api.post(
                "/users", {"username": f"temp{i}", "password": "password-temp", "role": "analyst"}
            )[0]
            == 201
        )
    html = text(web.get("/admin/audit?action=user.create&actor=admin&per_page=2"))
    assert "3 entries" in html
    assert "temp2" in html and "temp1" in html and "temp0" not in html  # newest first
    assert 'href="/admin/audit?' in html and "page=2" in html
    second = text(web.get("/admin/audit?action=user.create&actor=admin&per_page=2&page=2"))
    assert "temp0" in second and "temp2" not in second
    only = text(web.get("/admin/audit?entity_type=user&entity_id=temp1"))
    assert "1 entry" in only


def test_a_bad_audit_filter_is_shown_next_to_its_field(web: Web) -> None:
    web.login("admin")
    response = web.get("/admin/audit?per_page=0")
    assert response.status_code == 400
    assert 'id="f-per_page-err"' in text(response)


# --- shops and forms --------------------------------------------------------------------------


def test_another_shops_users_tokens_and_audit_never_show(web: Web, api: Api) -> None:
    stranger = api.tokens["stranger"]
    assert (
        api.post(
            "/users",
            {"username": "zed", "password": "password-zed", "role": "operator"},
            token=stranger,
        )[0]
        == 201
    )
    web.login("admin")
    assert "zed" not in text(web.get("/admin/users"))
    assert web.get("/admin/users/zed").status_code == 404
    assert web.post("/admin/users/zed", {"active": "no"}).status_code == 404
    assert web.post("/admin/users/zed/tokens", {}).status_code == 404
    assert "zed" not in text(web.get("/admin/tokens"))
    assert "zed" not in text(web.get("/admin/audit"))
    status, theirs = api.get("/tokens?user=admin", token=stranger)
    assert status == 200
    response = web.post(f"/admin/tokens/{theirs['items'][0]['id']}/revoke")
    assert response.status_code == 302
    assert "no token" in text(web.get(response.headers["Location"]))
    assert api.get("/me", token=stranger)[0] == 200


def test_a_system_form_without_its_csrf_token_is_refused(web: Web, api: Api) -> None:
    web.login("admin")
    response = web.post("/admin/users", NEW_USER, csrf=False)
    assert response.status_code == 400
    assert "security token" in text(response)
    assert all(u["username"] != "mei" for u in api.get("/users")[1]["items"])
    assert web.post("/admin/users/operator", {"active": "no"}, csrf=False).status_code == 400
    assert user_of(api, "operator")["active"] is True
    tokens = api.get("/tokens?user=operator")[1]["items"]
    assert web.post(f"/admin/tokens/{tokens[0]['id']}/revoke", csrf=False).status_code == 400
    assert web.post("/admin/users/operator/tokens", {}, csrf=False).status_code == 400
    assert api.get("/me", token=api.tokens["operator"])[0] == 200
    assert len(api.get("/tokens?user=operator")[1]["items"]) == 1


def test_the_system_pages_read_in_chinese(web: Web, api: Api) -> None:
    web.login("admin")
    users = text(web.get("/admin/users?lang=zh-CN"))
    assert 'lang="zh-Hans"' in users and "创建用户" in users and "审计日志" in users
    assert "<h1>审计日志</h1>" in text(web.get("/admin/audit"))  # the choice is kept
    response = web.post("/admin/users", {"username": "x", "password": "short", "role": "analyst"})
    assert response.status_code == 422 and "请更正以下内容" in text(response)
    assert "<h1>退货</h1>" in text(web.get("/admin/returns"))
    assert "<h1>Users</h1>" in text(web.get("/admin/users?lang=en"))
