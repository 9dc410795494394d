"""Service tickets: opened with the customer's words, assigned by the tenant's strategy to
available agents, answered, waited on, resolved and closed — every step on the timeline — and
SLA deadlines in working hours that warn, breach once and escalate."""

from __future__ import annotations

import hashlib
import io
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import ORDER, Api, config_with_acme, seed_people
from sqlalchemy import select

from hub.core import ticket_assignment, ticket_sla
from hub.core.models import AuditEntry, Event, Tenant, Ticket
from hub.runtime import Runtime

AGENTS = {"kim": "service", "pat": "service", "lee": "service"}


@pytest.fixture
def acme_toml() -> str:
    """Acme's tenant file; a test parametrizes it to set ``[tickets]``."""
    return ""


@pytest.fixture
def config_dir(tmp_path: Path, acme_toml: str) -> Path:
    return config_with_acme(tmp_path, acme_toml)


@pytest.fixture
def agents(api: Api, runtime: Runtime) -> dict[str, str]:
    """kim, pat and lee are acme's agents; the seeded 'service' user is away."""
    tokens = seed_people(runtime, AGENTS)
    assert api.patch("/users/service", {"available": False})[0] == 200
    return tokens


def ask(api: Api, kind: str = "question", **more: Any) -> tuple[int, dict[str, Any]]:
    body = {"kind": kind, "subject": "Where is my parcel?", "body": "It has been a week.",
            "customer": {"email": "Ann@Example.com", "name": "Ann Lee"}, **more}
    return api.post("/tickets", body)


def opened(api: Api, kind: str = "question", **more: Any) -> dict[str, Any]:
    status, ticket = ask(api, kind, **more)
    assert status == 201, ticket
    return ticket


def strategy(name: str, extra: str = "") -> Any:
    return pytest.mark.parametrize("acme_toml", [f'[tickets]\nassignment = "{name}"\n{extra}'])


# --- opening ---------------------------------------------------------------------------------


def test_a_ticket_about_an_order_s_line_is_opened_assigned_and_on_the_timeline(
    api: Api, agents: dict[str, str], runtime: Runtime
) -> None:
    _, order = api.post("/orders", ORDER)

    status, ticket = ask(api, "return", order=order["number"],
                         lines=[{"sku": "SKU-A", "quantity": 1}], priority="high")

    assert status == 201, ticket
    assert ticket["id"] == ticket["number"] == "T-000001"
    assert (ticket["status"], ticket["assignee"]) == ("assigned", "kim")
    assert ticket["order"] == order["number"]
    assert ticket["lines"] == [{"sku": "SKU-A", "quantity": 1}]
    # The customer is known by e-mail, whatever its case, as the order's customer is.
    assert ticket["customer"] == {"email": "ann@example.com", "name": "Ann Lee"}
    assert [(m["author_kind"], m["visibility"], m["body"]) for m in ticket["messages"]] == [
        ("customer", "public", "It has been a week.")]
    assert [(e["kind"], e["actor"]) for e in ticket["timeline"]] == [
        ("created", "admin"), ("assigned", "admin")]
    with runtime.session() as session:
        actions = session.scalars(select(AuditEntry.action).where(
            AuditEntry.entity_type == "ticket").order_by(AuditEntry.id)).all()
        names = session.scalars(select(Event.name).where(Event.name.like("ticket%"))
                                .order_by(Event.id)).all()
    assert actions == ["ticket.create", "ticket.assign"]
    assert names == ["ticket_created", "ticket_assigned"]
    # Numbers are per tenant.
    status, theirs = api.post("/tickets", {"kind": "question", "subject": "Hi", "body": "?",
                                           "customer": {"email": "x@example.com"}},
                              token=api.tokens["stranger"])
    assert status == 201 and theirs["number"] == "T-000001"


@pytest.mark.parametrize(
    ("more", "field", "message"),
    [
        ({"kind": "gripe"}, "kind", "must be one of"),
        ({"lines": [{"sku": "SKU-A", "quantity": 1}]}, "lines", "give the order too"),
        ({"order": "SO-999999"}, "order", "order 'SO-999999' not found"),
        ({"order": "{order}", "lines": [{"sku": "SKU-C", "quantity": 1}]}, "lines[0].sku",
         "has no line of SKU 'SKU-C'"),
        ({"order": "{order}", "lines": [{"sku": "SKU-A", "quantity": 3}]}, "lines[0].quantity",
         "has 2 of SKU-A, not 3"),
        ({"customer": {"email": "not-an-address"}}, "customer.email", "email"),
        ({"subject": ""}, "subject", ""),
    ],
    ids=["kind", "lines-without-order", "unknown-order", "sku-not-on-order", "too-many",
         "email", "empty-subject"],
)
def test_a_bad_ticket_is_refused_naming_the_field(
    api: Api, more: dict[str, Any], field: str, message: str
) -> None:
    _, order = api.post("/orders", ORDER)  # SKU-A: 2, SKU-B: 1
    body = {"kind": "question", "subject": "S", "body": "B",
            "customer": {"email": "ann@example.com"}, **more}
    if body.get("order") == "{order}":
        body["order"] = order["number"]
    status, answer = api.post("/tickets", body)
    assert status == 422, answer
    assert field in [d["field"] for d in answer["error"]["details"]]
    assert message in answer["error"]["message"]
    assert api.get("/tickets")[1]["total"] == 0


@pytest.mark.parametrize("acme_toml", ['[tickets]\ncategories = ["delivery", "billing"]\n'])
def test_a_category_outside_the_tenant_s_list_is_refused(api: Api) -> None:
    status, answer = ask(api, category="weather")
    assert status == 422
    assert answer["error"]["message"] == "category must be one of: delivery, billing"
    assert ask(api, category="billing")[0] == 201


# --- assignment ------------------------------------------------------------------------------


@strategy("round_robin")
def test_round_robin_takes_agents_in_turn(api: Api, agents: dict[str, str]) -> None:
    assignees = [opened(api)["assignee"] for _ in range(5)]
    assert assignees == ["kim", "pat", "lee", "kim", "pat"]


@strategy("least_loaded")
def test_least_loaded_gives_the_next_ticket_to_whoever_holds_fewest(
    api: Api, agents: dict[str, str]
) -> None:
    first = [opened(api)["assignee"] for _ in range(3)]
    assert first == ["kim", "pat", "lee"]
    # pat solves his: a resolved ticket is no load, so pat (none) gets the next.
    number = api.get("/tickets?assignee=pat")[1]["items"][0]["number"]
    assert api.patch(f"/tickets/{number}", {"status": "resolved"})[0] == 200
    assert opened(api)["assignee"] == "pat"
    # Waiting on the customer still is a load: one each, so the turn decides (kim's was
    # longest ago), not lee's waiting ticket.
    number = api.get("/tickets?assignee=lee")[1]["items"][0]["number"]
    assert api.patch(f"/tickets/{number}", {"status": "waiting_customer"})[0] == 200
    assert opened(api)["assignee"] == "kim"


@strategy("skills")
def test_by_skill_goes_to_an_agent_with_the_category_or_else_to_anyone(
    api: Api, agents: dict[str, str]
) -> None:
    assert api.patch("/users/pat", {"skills": ["billing"]})[0] == 200
    assert api.patch("/users/lee", {"skills": ["billing", "delivery"]})[0] == 200
    assert [opened(api, category="billing")["assignee"] for _ in range(3)] == [
        "pat", "lee", "pat"]
    assert opened(api, category="delivery")["assignee"] == "lee"
    # Nobody has "returns": the least loaded of everyone.
    assert opened(api, category="returns")["assignee"] == "kim"


@strategy("manual")
def test_by_hand_a_question_waits_but_a_complaint_is_assigned_at_once(
    api: Api, agents: dict[str, str]
) -> None:
    question = opened(api)
    assert (question["status"], question["assignee"]) == ("open", None)
    complaint = opened(api, "complaint")
    assert (complaint["status"], complaint["assignee"]) == ("assigned", "kim")
    status, given = api.patch(f"/tickets/{question['number']}", {"assignee": "PAT"})
    assert status == 200 and (given["status"], given["assignee"]) == ("assigned", "pat")


@pytest.mark.parametrize(
    ("who", "problem"),
    [("nobody", "no active user 'nobody'"), ("warehouse", "does not handle tickets")],
)
def test_a_ticket_goes_only_to_someone_who_handles_tickets(
    api: Api, agents: dict[str, str], who: str, problem: str
) -> None:
    number = opened(api)["number"]
    status, answer = api.patch(f"/tickets/{number}", {"assignee": who})
    assert status == 422 and problem in answer["error"]["message"]


@strategy("round_robin")
def test_an_agent_going_away_hands_their_tickets_over_and_nobody_left_queues_them(
    api: Api, agents: dict[str, str], runtime: Runtime
) -> None:
    numbers = [opened(api)["number"] for _ in range(3)]  # kim, pat, lee
    status, kim = api.patch("/users/kim", {"available": False})
    assert status == 200 and kim["available"] is False
    assert api.get(f"/tickets/{numbers[0]}")[1]["assignee"] in ("pat", "lee")
    assert opened(api)["assignee"] != "kim"

    for name in ("pat", "lee"):
        assert api.patch(f"/users/{name}", {"available": False})[0] == 200
    queued = api.get("/tickets?assignee=none&status=open")[1]
    assert queued["total"] == 4
    assert opened(api)["status"] == "open"

    # Back at work: the sweep hands the queue out, oldest first.
    assert api.patch("/users/kim", {"available": True})[0] == 200
    with runtime.transaction() as session:
        tenant_id = session.scalar(select(Tenant.id).where(Tenant.slug == "acme"))
        rules = runtime.tenant_settings("acme").tickets
        assert ticket_assignment.assign_waiting(session, tenant_id, rules, "sweep") == 5
    assert api.get("/tickets?assignee=kim")[1]["total"] == 5


def test_an_agent_goes_away_and_comes_back_by_themselves(
    api: Api, agents: dict[str, str], runtime: Runtime
) -> None:
    first = opened(api)
    holder = first["assignee"]
    status, me = api.patch("/me", {"available": False}, token=agents[holder])
    assert (status, me["username"], me["available"]) == (200, holder, False)
    assert api.get(f"/tickets/{first['number']}")[1]["assignee"] != holder
    assert all(opened(api)["assignee"] != holder for _ in range(3))
    assert api.get("/me", token=agents[holder])[1]["available"] is False
    assert api.patch("/me", {"available": True}, token=agents[holder])[1]["available"] is True
    changes = api.get(f"/audit?action=user.availability&entity_id={holder}")[1]["items"]
    assert [(c["before"], c["after"]) for c in changes] == [  # newest first
        ({"available": False}, {"available": True}),
        ({"available": True}, {"available": False}),
    ]
    # availability is all a user changes of their own record this way
    status, body = api.patch("/me", {"available": False, "role": "admin"}, token=agents[holder])
    assert status == 422 and "role" in str(body)


# --- the conversation and the state machine --------------------------------------------------


def test_a_note_is_no_reply_and_a_public_reply_stops_the_first_reply_clock(
    api: Api, agents: dict[str, str]
) -> None:
    number = opened(api)["number"]
    status, noted = api.post(f"/tickets/{number}/messages",
                             {"body": "Checking with the carrier", "internal": True},
                             token=agents["kim"])
    assert status == 201 and noted["first_replied_at"] is None
    assert noted["sla"]["first_reply"]["met"] is None
    status, replied = api.post(f"/tickets/{number}/messages",
                               {"body": "It arrives tomorrow.", "wait": True},
                               token=agents["kim"])
    assert status == 201, replied
    assert replied["first_replied_at"] is not None and replied["status"] == "waiting_customer"
    assert replied["sla"]["first_reply"]["met"] is True and replied["sla"]["paused"] is True
    assert [(m["author"], m["visibility"]) for m in replied["messages"]] == [
        ("ann@example.com", "public"), ("kim", "internal"), ("kim", "public")]
    # The customer answers (by phone, typed in by staff): back with the agent.
    status, back = api.post(f"/tickets/{number}/messages",
                            {"body": "Thanks!", "from_customer": True}, token=agents["kim"])
    assert status == 201 and back["status"] == "assigned" and back["sla"]["paused"] is False
    assert back["messages"][-1]["author_kind"] == "customer"


STATES = ("open", "assigned", "waiting_customer", "resolved", "closed")
# (from, to) → what a PATCH of the status gives: the new status, or 409.
ALLOWED = {
    ("assigned", "waiting_customer"): "waiting_customer",
    ("waiting_customer", "assigned"): "assigned",
    ("assigned", "resolved"): "resolved",
    ("waiting_customer", "resolved"): "resolved",
    ("resolved", "closed"): "closed",
    ("resolved", "open"): "assigned",  # reopened: back to its agent
    ("closed", "open"): "assigned",
}


def _ticket_in(api: Api, state: str) -> str:
    ticket = opened(api)
    number = ticket["number"]
    path = {"open": [], "assigned": [], "waiting_customer": ["waiting_customer"],
            "resolved": ["resolved"], "closed": ["resolved", "closed"]}[state]
    if state == "open":
        assert api.patch("/users/kim", {"available": False})[0] == 200
        number = opened(api)["number"]
    for step in path:
        assert api.patch(f"/tickets/{number}", {"status": step})[0] == 200
    assert api.get(f"/tickets/{number}")[1]["status"] == state
    return number


@pytest.mark.parametrize("acme_toml", ['[tickets]\nassignment = "round_robin"\n'])
@pytest.mark.parametrize("target", STATES)
@pytest.mark.parametrize("state", STATES)
def test_every_status_change_is_allowed_or_refused_as_the_table_says(
    api: Api, runtime: Runtime, state: str, target: str
) -> None:
    seed_people(runtime, {"kim": "service"})
    assert api.patch("/users/service", {"available": False})[0] == 200
    number = _ticket_in(api, state)
    before = api.get(f"/tickets/{number}")[1]

    status, answer = api.patch(f"/tickets/{number}", {"status": target})

    if target == state:
        assert status == 200 and answer["status"] == state  # nothing to do
        assert answer["timeline"] == before["timeline"]
    elif (state, target) in ALLOWED:
        assert status == 200, answer
        assert answer["status"] == ALLOWED[(state, target)]
    else:
        assert status == 409, answer
        assert f"is {state}" in answer["error"]["message"]
        assert api.get(f"/tickets/{number}")[1] == before


@pytest.mark.parametrize("acme_toml", ['[tickets]\nreopen_days = 3\n'])
@pytest.mark.parametrize(("days", "reopens"), [(2, True), (3, True), (4, False)])
def test_a_resolved_ticket_reopens_only_within_the_window(
    api: Api, agents: dict[str, str], runtime: Runtime, days: int, reopens: bool
) -> None:
    number = opened(api)["number"]
    assert api.patch(f"/tickets/{number}", {"status": "resolved"})[0] == 200
    with runtime.transaction() as session:
        ticket = session.scalars(select(Ticket).where(Ticket.number == number)).first()
        assert ticket is not None and ticket.resolved_at is not None
        # A minute inside the boundary day, so the request's own moment does not cross it.
        ticket.resolved_at -= timedelta(days=days) - timedelta(minutes=1 if days == 3 else 0)
    status, answer = api.patch(f"/tickets/{number}", {"status": "open"})
    if reopens:
        assert status == 200 and answer["status"] == "assigned"
    else:
        assert status == 409
        assert answer["error"]["message"] == (
            f"ticket {number} was resolved more than 3 days ago: open a new ticket instead")


def test_a_closed_ticket_takes_no_customer_message(api: Api, agents: dict[str, str]) -> None:
    number = opened(api)["number"]
    for step in ("resolved", "closed"):
        assert api.patch(f"/tickets/{number}", {"status": step})[0] == 200
    status, answer = api.post(f"/tickets/{number}/messages",
                              {"body": "One more thing", "from_customer": True})
    assert status == 409 and "open a new ticket" in answer["error"]["message"]


def test_lists_filter_by_status_assignee_and_customer(api: Api, agents: dict[str, str]) -> None:
    a, b, c = (opened(api)["number"] for _ in range(3))
    assert api.patch(f"/tickets/{b}", {"status": "resolved"})[0] == 200

    def numbers(query: str) -> list[str]:
        status, page = api.get(f"/tickets?{query}")
        assert status == 200, page
        return [t["number"] for t in page["items"]]

    assert numbers("status=assigned") == [c, a]
    assert numbers("status=assigned,resolved") == [c, b, a]
    assert numbers("assignee=pat") == [b]
    assert numbers("assignee=nobody-at-all") == []
    assert numbers("customer=ANN@example.com") == [c, b, a]
    assert numbers("customer=bo@example.com") == []
    status, answer = api.get("/tickets?status=lost")
    assert status == 400 and "status" in answer["error"]["message"]


# --- SLA -------------------------------------------------------------------------------------


ALWAYS_OPEN = (
    '[tickets]\nassignment = "round_robin"\nsupervisor = "maria"\nwarn_minutes = 30\n'
    '[[tickets.sla]]\npriority = "urgent"\nfirst_reply_minutes = 60\nresolution_minutes = 240\n'
    '[calendar]\ntimezone = "UTC"\nhours = { mon = "00:00-23:59", tue = "00:00-23:59",'
    ' wed = "00:00-23:59", thu = "00:00-23:59", fri = "00:00-23:59", sat = "00:00-23:59",'
    ' sun = "00:00-23:59" }\n'
)


def _check(runtime: Runtime, at: datetime) -> dict[str, int]:
    with runtime.transaction() as session:
        tenant_id = session.scalar(select(Tenant.id).where(Tenant.slug == "acme"))
        return ticket_sla.check(session, tenant_id, runtime.tenant_settings("acme").tickets, at)


@pytest.mark.parametrize("acme_toml", [ALWAYS_OPEN])
def test_a_deadline_warns_once_then_breaches_once_and_escalates_to_the_supervisor(
    api: Api, agents: dict[str, str], runtime: Runtime
) -> None:
    seed_people(runtime, {"maria": "operator"})
    ticket = opened(api, priority="urgent")
    due = datetime.fromisoformat(ticket["sla"]["first_reply"]["due"])
    created = datetime.fromisoformat(ticket["created_at"])
    assert due == created + timedelta(minutes=60)

    assert _check(runtime, due - timedelta(minutes=31)) == {"warned": 0, "breached": 0}
    assert _check(runtime, due - timedelta(minutes=30)) == {"warned": 1, "breached": 0}
    assert _check(runtime, due - timedelta(minutes=1)) == {"warned": 0, "breached": 0}
    assert _check(runtime, due) == {"warned": 0, "breached": 1}
    assert _check(runtime, due + timedelta(hours=1)) == {"warned": 0, "breached": 0}

    _, now = api.get(f"/tickets/{ticket['number']}")
    assert now["escalated_to"] == "maria"
    assert now["sla"]["first_reply"]["breached_at"] == due.isoformat()
    assert [e["kind"] for e in now["timeline"] if e["actor"] == "sla"] == [
        "sla_warning", "sla_breach"]
    # A late reply does not unbreach it.
    api.post(f"/tickets/{ticket['number']}/messages", {"body": "Sorry!"}, token=agents["kim"])
    assert api.get(f"/tickets/{ticket['number']}")[1]["sla"]["first_reply"]["met"] is False
    assert api.get("/tickets?breached=true")[1]["total"] == 1
    assert api.get("/tickets?escalated=true")[1]["total"] == 1


@pytest.mark.parametrize("acme_toml", [ALWAYS_OPEN])
def test_waiting_on_the_customer_stops_the_resolution_clock(
    api: Api, agents: dict[str, str], runtime: Runtime
) -> None:
    ticket = opened(api, priority="urgent")
    number = ticket["number"]
    due = datetime.fromisoformat(ticket["sla"]["resolution"]["due"])
    api.post(f"/tickets/{number}/messages", {"body": "Photo please?", "wait": True})
    with runtime.transaction() as session:
        row = session.scalars(select(Ticket).where(Ticket.number == number)).one()
        row.paused_at = datetime.fromisoformat(ticket["created_at"]) + timedelta(minutes=40)
    # Past the deadline, but waiting: nothing breaches.
    assert _check(runtime, due + timedelta(hours=5)) == {"warned": 0, "breached": 0}
    _, back = api.post(f"/tickets/{number}/messages", {"body": "Here", "from_customer": True})
    resumed = datetime.fromisoformat(back["updated_at"])
    # 200 of the 240 minutes were left when it paused; they count from the reply on.
    new_due = datetime.fromisoformat(back["sla"]["resolution"]["due"])
    assert abs(new_due - (resumed + timedelta(minutes=200))) < timedelta(seconds=1)


# --- the tenant's rules, as written in its file ------------------------------------------------


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ('[tickets]\nassignment = "random"\n', "tickets.assignment"),
        ('[calendar]\ntimezone = "Mars/Olympus"\n', "calendar.timezone"),
        ('[calendar]\nhours = { mon = "18:00-09:00" }\n', "calendar.hours.mon"),
        ('[calendar]\nhours = { funday = "09:00-17:00" }\n', "calendar.hours"),
    ],
)
def test_bad_ticket_rules_are_a_config_error_naming_the_key(
    tmp_path: Path, toml: str, key: str
) -> None:
    from hub import settings as settings_module

    config = tmp_path / "config"
    (config / "tenants").mkdir(parents=True)
    (config / "tenants" / "acme.toml").write_text(toml)
    with pytest.raises(settings_module.ConfigError) as caught:
        settings_module.load_tenants(config, env={})
    assert caught.value.key.startswith(key), caught.value


def test_sla_targets_default_per_priority_and_the_first_matching_entry_wins() -> None:
    from hub.core.ticket_rules import Target, ticket_rules_from

    rules = ticket_rules_from({"sla": [
        {"category": "billing", "priority": "high", "first_reply_minutes": 5,
         "resolution_minutes": 50},
        {"category": "billing", "first_reply_minutes": 10, "resolution_minutes": 100},
        {"priority": "high", "first_reply_minutes": 20, "resolution_minutes": 200},
    ]}, None)
    assert rules.target("billing", "high") == Target(5, 50)
    assert rules.target("billing", "low") == Target(10, 100)
    assert rules.target("delivery", "high") == Target(20, 200)
    assert rules.target(None, "urgent") == Target(60, 480)
    assert rules.target(None, "low") == Target(1440, 5760)


@pytest.mark.parametrize(
    ("skills", "ok"),
    [(["billing"], True), ([], True), (["Billing"], False), (["a b"], False),
     (["billing", "billing"], False), ([f"s{i}" for i in range(51)], False)],
)
def test_skills_are_category_names(api: Api, agents: dict[str, str], skills: list[str],
                                   ok: bool) -> None:
    status, answer = api.patch("/users/kim", {"skills": skills})
    assert status == (200 if ok else 422), answer
    assert api.get("/users")[1]["items"] and (
        {u["username"]: u for u in api.get("/users")[1]["items"]}["kim"]["skills"]
        == (skills if ok else []))


@strategy("least_loaded")
def test_a_deactivated_agent_s_tickets_go_to_the_others(api: Api, agents: dict[str, str]) -> None:
    number = opened(api)["number"]  # kim
    assert api.patch("/users/kim", {"active": False})[0] == 200
    assert api.get(f"/tickets/{number}")[1]["assignee"] == "pat"


# --- attachments -------------------------------------------------------------------------------

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(200)
ELF = b"\x7fELF\x02\x01\x01" + bytes(200)


def upload(api: Api, number: str, data: bytes, name: str = "photo.png",
           mimetype: str = "multipart/form-data") -> tuple[int, Any]:
    response = api.client.post(
        f"/api/v1/tickets/{number}/attachments",
        data={"file": (io.BytesIO(data), name)} if mimetype == "multipart/form-data" else data,
        headers={"Authorization": f"Bearer {api.token}"},
        content_type=mimetype,
    )
    return response.status_code, response.get_json(silent=True)


def test_a_file_is_kept_outside_the_database_and_served_back_as_a_download(
    api: Api, agents: dict[str, str], runtime: Runtime
) -> None:
    number = opened(api)["number"]
    status, kept = upload(api, number, PNG, "../../etc/damage.png")
    assert status == 201, kept
    assert (kept["filename"], kept["content_type"], kept["size"]) == ("damage.png",
                                                                      "image/png", len(PNG))
    assert kept["sha256"] == hashlib.sha256(PNG).hexdigest()
    stored = (runtime.settings.data_dir / "attachments").rglob(kept["sha256"])
    assert [p.read_bytes() for p in stored] == [PNG]

    with api.client.get(f"/api/v1/tickets/{number}/attachments/{kept['id']}",
                        headers={"Authorization": f"Bearer {api.token}"}) as response:
        assert response.status_code == 200 and response.data == PNG
        assert response.mimetype == "image/png"
        assert response.headers["Content-Disposition"] == "attachment; filename=damage.png"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    ticket = api.get(f"/tickets/{number}")[1]
    assert [a["id"] for a in ticket["attachments"]] == [kept["id"]]
    assert ticket["timeline"][-1]["kind"] == "attachment"


def test_what_a_file_is_comes_from_its_bytes_not_its_name(
    api: Api, agents: dict[str, str]
) -> None:
    number = opened(api)["number"]
    # A page named as a photo is kept as text, and served as text to download.
    status, kept = upload(api, number, b"<html><script>alert(1)</script></html>", "cat.png")
    assert status == 201 and kept["content_type"] == "text/plain", kept
    status, answer = upload(api, number, ELF, "invoice.pdf")
    assert status == 422
    assert answer["error"]["message"] == (
        "the file is application/x-executable; allowed: JPEG, PNG, GIF, WebP, PDF and UTF-8"
        " text")
    status, answer = upload(api, number, b"\x00\x01\x02 binary", "data.txt")
    assert status == 422 and "not a file type the hub recognises" in answer["error"]["message"]
    assert len(api.get(f"/tickets/{number}")[1]["attachments"]) == 1


@pytest.mark.parametrize(("size", "status"), [(2048, 201), (2049, 413)])
def test_a_file_may_be_as_large_as_the_limit_and_not_a_byte_more(
    api: Api, agents: dict[str, str], runtime: Runtime, size: int, status: int
) -> None:
    runtime.settings.max_attachment_bytes = 2048
    number = opened(api)["number"]
    answer = upload(api, number, PNG[:size].ljust(size, b"\x00"))
    assert answer[0] == status, answer
    if status == 413:
        assert answer[1]["error"]["message"] == "the file is larger than 2048 bytes"


def test_an_upload_must_be_a_multipart_file(api: Api, agents: dict[str, str]) -> None:
    number = opened(api)["number"]
    status, answer = upload(api, number, PNG, mimetype="image/png")
    assert status == 415
    assert answer["error"]["message"] == "send multipart/form-data with a 'file' part"
    status, answer = api.get(f"/tickets/{number}/attachments/99")
    assert status == 404 and "has no attachment 99" in answer["error"]["message"]
