"""Accounts as an admin runs them: usernames that cannot be doubled by case, tokens that
expire, tokens listed and revoked one by one (API and CLI), all of it audited."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import Api
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from hub.cli import cli
from hub.core import auth
from hub.core.db import utcnow
from hub.core.models import ApiToken, Tenant, User

SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
NEW_USER = {"username": "Ann", "password": "password-ann", "role": "operator"}


def later(monkeypatch: pytest.MonkeyPatch, delta: timedelta) -> None:
    """Move the hub's clock (as token checks see it) forward."""
    now = utcnow()
    monkeypatch.setattr(auth, "utcnow", lambda: now + delta)


def audit(api: Api, action: str) -> list[dict]:
    status, page = api.get(f"/audit?action={action}")
    assert status == 200
    return page["items"]


# --- usernames ---------------------------------------------------------------------------


@SQLITE_ONLY
def test_a_username_differing_only_in_case_is_refused(api: Api) -> None:
    assert api.post("/users", NEW_USER)[0] == 201
    for name in ("ann", "ANN", "aNn"):
        status, body = api.post("/users", {**NEW_USER, "username": name})
        assert status == 409, body
        assert body["error"]["message"] == (
            f"user {name!r} already exists as 'Ann' (usernames are unique whatever their case)")
    status, body = api.post("/users", NEW_USER)
    assert status == 409
    assert body["error"]["message"] == (
        "user 'Ann' already exists (usernames are unique whatever their case)")
    # A different name is fine, and the name keeps the case it was written in.
    assert api.post("/users", {**NEW_USER, "username": "Anna"})[0] == 201
    status, users = api.get("/users")
    assert {"Ann", "Anna"} <= {u["username"] for u in users["items"]}


@SQLITE_ONLY
def test_users_are_found_whatever_the_case_of_the_name(api: Api) -> None:
    assert api.post("/users", NEW_USER)[0] == 201
    status, user = api.patch("/users/ANN", {"full_name": "Ann Lee"})
    assert status == 200 and user["username"] == "Ann"
    status, issued = api.post("/users/ann/tokens", {"name": "laptop"})
    assert status == 201 and issued["user"] == "Ann"
    assert api.get("/me", token=issued["token"])[1]["username"] == "Ann"


def test_the_database_refuses_a_case_twin(runtime, api: Api) -> None:
    """The key is unique in the database itself, not only checked by the service."""
    with runtime.transaction() as session:
        ids = dict(session.execute(select(Tenant.slug, Tenant.id)).all())

    def add(tenant: str, username: str) -> None:
        with runtime.transaction() as session:
            session.add(
                User(tenant_id=ids[tenant], username=username, password_hash="x", role="admin")
            )

    add("acme", "Zed")
    with pytest.raises(IntegrityError):
        add("acme", "ZED")
    add("other", "ZED")  # another tenant's users are its own
    # ... and are found only in their own tenant, even by a session no tenant scopes.
    with runtime.session() as session:
        found = auth.find_user(session, ids["acme"], "zed")
        assert found is not None and (found.tenant_id, found.username) == (ids["acme"], "Zed")
        found = auth.find_user(session, ids["other"], "Zed")
        assert found is not None and (found.tenant_id, found.username) == (ids["other"], "ZED")


def test_an_unknown_tenant_is_named_in_the_refusal(runtime) -> None:
    with runtime.session() as session, pytest.raises(auth.NotFound) as missing:
        auth.get_tenant(session, "nope")
    assert str(missing.value) == "no tenant 'nope'"


# --- token expiry --------------------------------------------------------------------------


@SQLITE_ONLY
def test_an_expired_token_is_refused_saying_it_expired(api: Api, monkeypatch) -> None:
    status, issued = api.post("/users/operator/tokens", {"name": "ci", "expires_in_days": 1})
    assert status == 201, issued
    assert issued["expires_at"] and issued["state"] == "active"
    token = issued["token"]
    assert api.get("/me", token=token)[0] == 200  # now cached in this process, too

    later(monkeypatch, timedelta(hours=23, minutes=59))
    assert api.get("/me", token=token)[0] == 200
    later(monkeypatch, timedelta(days=1, seconds=1))
    status, body = api.get("/me", token=token)
    assert status == 401
    assert body["error"]["code"] == "token_expired"
    assert "expired" in body["error"]["message"]
    # A token without an expiry lasts.
    assert api.get("/me")[0] == 200


@SQLITE_ONLY
def test_an_expiry_date_means_that_day_and_must_be_in_the_future(api: Api, monkeypatch) -> None:
    when = (utcnow() + timedelta(days=3)).date().isoformat()
    status, issued = api.post("/users/operator/tokens", {"expires_at": when})
    assert status == 201, issued
    assert issued["expires_at"] == f"{when}T00:00:00+00:00"

    for body in (
        {"expires_at": "2001-01-01"},
        {"expires_at": "next tuesday"},
        {"expires_at": "9999-12-31"},
        {"expires_at": when, "expires_in_days": 2},
        {"expires_in_days": 0},
    ):
        status, answer = api.post("/users/operator/tokens", body)
        assert status in (400, 422), (body, answer)
        assert "expires" in str(answer["error"]), answer


# --- listing and revoking one token --------------------------------------------------------


@SQLITE_ONLY
def test_tokens_are_listed_without_their_secrets_and_revoked_one_by_one(api: Api) -> None:
    _, laptop = api.post("/users/operator/tokens", {"name": "laptop"})
    _, ci = api.post("/users/operator/tokens", {"name": "ci", "expires_in_days": 30})

    status, listed = api.get("/tokens?user=OPERATOR")
    assert status == 200
    by_name = {t["name"]: t for t in listed["items"]}
    assert {"laptop", "ci"} <= set(by_name)
    assert by_name["ci"]["expires_at"] == ci["expires_at"]
    assert set(by_name["ci"]) == {
        "id",
        "name",
        "user",
        "prefix",
        "created_at",
        "expires_at",
        "revoked_at",
        "state",
    }
    text = str(listed)
    assert laptop["token"] not in text and ci["token"] not in text
    assert auth.hash_token(laptop["token"]) not in text

    status, revoked = api.post(f"/tokens/{laptop['id']}/revoke")
    assert status == 200 and revoked["state"] == "revoked"
    assert api.get("/me", token=laptop["token"])[0] == 401  # at once, despite the cache
    assert api.get("/me", token=ci["token"])[0] == 200  # the user's other token works

    # Revoking again changes nothing and is audited once.
    assert api.post(f"/tokens/{laptop['id']}/revoke")[0] == 200
    [entry] = [e for e in audit(api, "token.revoke") if e["after"].get("id") == laptop["id"]]
    assert entry["after"]["name"] == "laptop" and entry["entity_id"] == "operator"

    # The default list shows live tokens; include_ended shows the revoked one too.
    live = {t["id"] for t in api.get("/tokens")[1]["items"]}
    assert laptop["id"] not in live and ci["id"] in live
    everything = api.get("/tokens?include_ended=true")[1]["items"]
    assert {t["id"]: t["state"] for t in everything}[laptop["id"]] == "revoked"


@SQLITE_ONLY
def test_a_tenant_cannot_revoke_or_see_another_tenants_tokens(api: Api) -> None:
    _, issued = api.post("/users/operator/tokens", {"name": "mine"})
    stranger = api.tokens["stranger"]
    status, _ = api.post(f"/tokens/{issued['id']}/revoke", token=stranger)
    assert status == 404
    assert issued["id"] not in {t["id"] for t in api.get("/tokens", token=stranger)[1]["items"]}
    assert api.get("/me", token=issued["token"])[0] == 200
    # Only admins manage tokens.
    assert api.get("/tokens", token=api.tokens["operator"])[0] == 403
    assert api.post(f"/tokens/{issued['id']}/revoke", token=api.tokens["operator"])[0] == 403


# --- the command line ----------------------------------------------------------------------


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "config" / "tenants").mkdir(parents=True)
    return {
        "ORDERHUB_CONFIG_DIR": str(tmp_path / "config"),
        "ORDERHUB_DATA_DIR": str(tmp_path / "var"),
        "ORDERHUB_DATABASE_URL": f"sqlite:///{tmp_path / 'hub.db'}",
        "ORDERHUB_BROKER_URL": "embedded",
    }


def run(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = CliRunner(env=env).invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def test_cli_usernames_tokens_expiry_list_and_revoke(env: dict[str, str]) -> None:
    assert run(env, "db", "upgrade")[0] == 0
    assert run(env, "tenants", "add", "shop")[0] == 0
    add = ("users", "add", "--tenant", "shop", "--role", "admin", "--password", "password-1")
    assert run(env, *add, "--username", "Boss")[0] == 0
    code, out = run(env, *add, "--username", "boss")
    assert code == 1 and "already exists as 'Boss'" in out

    code, token = run(
        env, "tokens", "create", "--tenant", "shop", "--user", "BOSS", "--name", "ci",
        "--expires-in-days", "7",
    )
    assert code == 0 and token.startswith("oh_")
    code, out = run(env, "tokens", "create", "--tenant", "shop", "--user", "boss",
                    "--expires-at", "2001-01-01")
    assert code == 1 and "expires_at must be in the future" in out

    code, listed = run(env, "tokens", "list", "--tenant", "shop")
    assert code == 0, listed
    header, row = listed.splitlines()
    assert header.split("\t") == ["id", "user", "name", "prefix", "created", "expires", "state"]
    fields = row.split("\t")
    assert fields[1:4] == ["Boss", "ci", token[:10]] and fields[6] == "active"
    expires = utcnow() + timedelta(days=7)
    assert fields[5].startswith(expires.date().isoformat())
    assert token.strip() not in listed

    code, out = run(env, "tokens", "revoke", fields[0], "--tenant", "shop")
    assert code == 0 and out == f"token {fields[0]} of Boss revoked\n"
    assert run(env, "tokens", "list", "--tenant", "shop")[1].startswith("no tokens")
    assert "\trevoked" in run(env, "tokens", "list", "--tenant", "shop", "--all")[1]
    code, out = run(env, "tokens", "revoke", "999", "--tenant", "shop")
    assert code == 1 and "no token 999" in out


def test_token_expiry_is_stored_as_an_aware_utc_instant(runtime, api: Api) -> None:
    """Both engines keep the expiry as the instant it was given."""
    _, issued = api.post("/users/operator/tokens", {"expires_in_days": 2})
    with runtime.transaction() as session:
        row = session.get(ApiToken, issued["id"])
        assert row.expires_at.tzinfo is not None
        assert timedelta(days=1) < row.expires_at - utcnow() <= timedelta(days=2)


# --- passwords ---------------------------------------------------------------------------


@SQLITE_ONLY
@pytest.mark.parametrize("length", [7, 8, 200, 201])
def test_a_password_is_eight_to_two_hundred_characters(api: Api, length: int) -> None:
    assert api.post("/users", NEW_USER)[0] == 201
    status, body = api.patch("/users/Ann", {"password": "p" * length})
    if 8 <= length <= 200:
        assert status == 200, body
    else:
        assert status == 422, body
        assert body["error"]["details"][0]["field"] == "password"
        assert "p" * 7 not in str(body)  # the refused password is not repeated


@SQLITE_ONLY
def test_a_changed_password_replaces_the_old_one_and_is_never_shown(runtime, api: Api) -> None:
    assert api.post("/users", NEW_USER)[0] == 201
    status, user = api.patch("/users/Ann", {"password": "a-new-secret"})
    assert status == 200
    assert not any("password" in key for key in user)
    with runtime.session() as session:
        stored = auth.find_user(session, session.scalar(select(Tenant.id)), "Ann")
        assert stored is not None
        assert auth.check_password(stored, "a-new-secret")
        assert not auth.check_password(stored, NEW_USER["password"])
        assert not auth.check_password(stored, "a-new-secreT")
        assert "a-new-secret" not in stored.password_hash
    (change,) = audit(api, "user.update")
    assert "a-new-secret" not in str(change)


@pytest.mark.parametrize("password", ["", "seven77"])
def test_the_core_refuses_a_short_password_when_creating_or_changing(password: str) -> None:
    with pytest.raises(auth.Invalid) as refused:
        auth.set_password(User(username="ann"), password)
    assert str(refused.value) == "password must be at least 8 characters"
    user = User(username="ann")
    auth.set_password(user, "eight888")
    assert auth.check_password(user, "eight888")
    # The hub's own choice of method (scrypt; the tests use a cheap one), not whatever
    # werkzeug's default of the day is.
    assert user.password_hash.startswith(f"{auth.PASSWORD_METHOD}$")


@SQLITE_ONLY
def test_a_user_reads_back_exactly_as_written_and_never_with_a_password(api: Api) -> None:
    contact = {"full_name": "Ann Lee", "email": "ann@example.com", "phone": "+1 555 0100",
               "address": "1 Main St, Newark"}
    status, created = api.post("/users", {**NEW_USER, **contact})
    assert status == 201, created
    expected = {"username": "Ann", "role": "operator", "active": True, "available": True,
                "skills": [], **contact}
    assert {k: v for k, v in created.items() if k != "id"} == expected
    assert isinstance(created["id"], int)
    status, changed = api.patch("/users/Ann", {"role": "service", "active": False,
                                               "phone": "+1 555 0199"})
    assert status == 200
    assert changed == {**created, "role": "service", "active": False, "phone": "+1 555 0199"}
    listed = {u["username"]: u for u in api.get("/users")[1]["items"]}
    assert listed["Ann"] == changed


@SQLITE_ONLY
def test_a_token_works_until_the_second_it_expires(runtime, api: Api, monkeypatch) -> None:
    ends = (utcnow() + timedelta(hours=1)).replace(microsecond=0)
    with runtime.transaction() as session:
        acme = session.scalar(select(Tenant.id).where(Tenant.slug == "acme"))
        user = auth.find_user(session, acme, "operator")
        token, _ = auth.issue_token(session, user, "admin", name="ci", expires_at=ends)
    monkeypatch.setattr(auth, "utcnow", lambda: ends - timedelta(microseconds=1))
    assert api.get("/me", token=token)[0] == 200
    for moment in (ends, ends + timedelta(days=400)):
        monkeypatch.setattr(auth, "utcnow", lambda moment=moment: moment)
        status, body = api.get("/me", token=token)
        assert status == 401
        assert body["error"]["code"] == "token_expired"
        assert body["error"]["message"] == (
            f"the API token expired at {ends.isoformat()}; ask an admin for a new one")


@SQLITE_ONLY
def test_a_token_cannot_be_issued_already_expired_or_to_a_deactivated_user(
    runtime, api: Api
) -> None:
    with runtime.transaction() as session:
        acme = session.scalar(select(Tenant.id).where(Tenant.slug == "acme"))
        user = auth.find_user(session, acme, "operator")
        with pytest.raises(auth.Invalid, match=r"^expires_at must be in the future$"):
            auth.issue_token(session, user, "admin", expires_at=utcnow())
        user.active = False
        with pytest.raises(auth.Conflict, match=r"^user 'operator' is deactivated; reactivate"):
            auth.issue_token(session, user, "admin")
