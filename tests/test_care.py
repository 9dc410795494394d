"""Customer care: each rule fires once per subject however often (and however many at once)
the sweep runs, at its time and not a minute before, never for a customer who opted out; the
unsubscribe link works end to end (a real SMTP server gets the mail with the link and the
one-click header); the survey is answered once; forged or foreign links are refused alike."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from care_support import (
    delivered_order,
    emitted,
    placed_order,
    rules,
    sends,
    sweep,
    tenant_id,
)
from conftest import HUB_SECRET_KEY, ORDER, PUBLIC_URL, Api, allow_outbound, waits_for_a_lock
from itsdangerous import TimestampSigner
from notify_support import SmtpServer, smtp_server
from sqlalchemy import select, update
from tracking_support import Shipping

from hub.core import care, care_links, delivery_exceptions
from hub.core.adapters import Recipient
from hub.core.care_rules import CareRules
from hub.core.db import utcnow
from hub.core.models import Customer, NotificationDelivery, Order, Shipment, Ticket
from hub.runtime import Runtime
from hub.settings import ConfigError
from hub.settings import load as load_settings
from hub.worker import actors

ACME = """
name = "Acme Store"

[[notifications.routes]]
events = ["review_request", "delay_apology", "satisfaction_survey", "win_back",
          "birthday_greeting", "anniversary_greeting"]
notifier = "mail"
to = ["customer"]

[[notifiers]]
name = "mail"
plugin = "email"
[notifiers.settings]
host = "127.0.0.1"
port = {port}
security = "none"
from = "Acme Store <care@acme.test>"

[[care.rules]]
name = "ask-for-review"
kind = "review_request"
days = 7

[[care.rules]]
name = "sorry-late"
kind = "delay_apology"
hours = 2

[[care.rules]]
name = "how-did-we-do"
kind = "satisfaction_survey"
hours = 24

[[care.rules]]
name = "we-miss-you"
kind = "win_back"
months = 6

[[care.rules]]
name = "happy-birthday"
kind = "birthday_greeting"

[[care.rules]]
name = "years-together"
kind = "anniversary_greeting"
"""
MINUTE = timedelta(minutes=1)


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with smtp_server() as server:
        yield server


@pytest.fixture
def config_dir(tmp_path: Path, smtp: SmtpServer) -> Path:
    path = tmp_path / "config"
    (path / "tenants").mkdir(parents=True)
    allow_outbound(path, "127.0.0.1")
    (path / "tenants" / "acme.toml").write_text(ACME.format(port=smtp.port))
    return path


def _only(runtime: Runtime, name: str) -> list[dict[str, Any]]:
    return emitted(runtime, name)


# --- once, however often -----------------------------------------------------------------------


def test_a_review_request_fires_once_however_often_the_sweep_runs(
    api: Api, runtime: Runtime
) -> None:
    number, at = delivered_order(runtime, api)
    due = at + timedelta(days=7)
    outcomes = [sweep(runtime, due + i * MINUTE) for i in range(5)]
    assert [o["emitted"] for o in outcomes] == [1, 0, 0, 0, 0]
    [payload] = _only(runtime, "review_request")
    assert payload["number"] == number
    assert payload["customer"] == "ann@example.com"
    assert payload["rule"] == "ask-for-review"
    assert sends(runtime) == [("ask-for-review", f"order:{_id(runtime, number)}", "emitted",
                               None)]


def test_the_worker_sweep_runs_the_care_rules(api: Api, runtime: Runtime) -> None:
    number, at = delivered_order(runtime, api)
    assert actors.sweep_care(runtime, at + timedelta(days=7)) == 1
    assert actors.sweep_care(runtime, at + timedelta(days=7)) == 0
    assert actors.sweep_care(runtime) == 0  # now: nothing is due yet
    assert [p["number"] for p in _only(runtime, "review_request")] == [number]


def _id(runtime: Runtime, number: str) -> int:
    with runtime.transaction() as session:
        return session.scalar(select(Order.id).where(Order.number == number,
                                                     Order.tenant_id == tenant_id(runtime)))


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_two_sweeps_at_once_fire_a_rule_once(api: Api, runtime: Runtime) -> None:
    """The first sweep claims the send and has not committed; the second waits on the unique
    key, then finds it taken and emits nothing."""
    _, at = delivered_order(runtime, api)
    due = at + timedelta(days=7)
    acme = tenant_id(runtime)
    found = runtime.tenant_settings("acme").care
    with runtime.transaction() as first:
        assert care.sweep(first, acme, found, due)["emitted"] == 1
        waited, worker, answer = waits_for_a_lock(
            runtime.engine, lambda: sweep(runtime, due)
        )
        assert waited
    worker.join(timeout=30)
    assert answer == [{"emitted": 0, "skipped": 0, "taken": 1}]
    assert len(_only(runtime, "review_request")) == 1


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_many_sweeps_racing_fire_each_rule_once(api: Api, runtime: Runtime) -> None:
    _, at = delivered_order(runtime, api)
    _, other = delivered_order(runtime, api)
    due = max(at, other) + timedelta(days=7)
    start = threading.Barrier(4)
    results: list[dict[str, int]] = []

    def run() -> None:
        start.wait()
        results.append(sweep(runtime, due))

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sum(r["emitted"] for r in results) == 2
    assert len(_only(runtime, "review_request")) == 2
    assert len(sends(runtime)) == 2


# --- each rule at its time ---------------------------------------------------------------------


def _review(runtime: Runtime, api: Api) -> tuple[datetime, timedelta]:
    _, at = delivered_order(runtime, api)
    return at + timedelta(days=7), timedelta(days=14)


def _delay(runtime: Runtime, api: Api) -> tuple[datetime, timedelta]:
    shipping = Shipping(runtime, api)
    shipment_id = shipping.shipment(shipping.account())
    opened = utcnow()
    with runtime.transaction() as session:
        shipment = session.get(Shipment, shipment_id)
        number = session.scalar(select(Order.number).where(Order.id == shipment.order_id))
        made = delivery_exceptions.open_exception(
            session, shipment, "delayed", "no scan for 3 days", order_number=number, now=opened
        )
        assert made is not None
    return opened + timedelta(hours=2), timedelta(days=2)


def _survey(runtime: Runtime, api: Api) -> tuple[datetime, timedelta]:
    return _resolved_complaint(runtime, api)[1] + timedelta(hours=24), timedelta(days=7)


def _resolved_complaint(
    runtime: Runtime, api: Api, kind: str = "complaint"
) -> tuple[str, datetime]:
    number = placed_order(api)
    status, ticket = api.post("/tickets", {
        "kind": kind, "subject": "Broken", "body": "It arrived broken",
        "customer": {"email": "ann@example.com"}, "order": number})
    assert status == 201 and ticket["assignee"] == "service", ticket
    status, ticket = api.patch(f"/tickets/{ticket['number']}", {"status": "resolved"})
    assert status == 200, ticket
    with runtime.transaction() as session:
        resolved = session.scalar(select(Ticket.resolved_at).where(
            Ticket.number == ticket["number"], Ticket.tenant_id == tenant_id(runtime)))
    return ticket["number"], resolved


def _win_back(runtime: Runtime, api: Api) -> tuple[datetime, timedelta]:
    placed_order(api)
    with runtime.transaction() as session:
        last = session.scalar(select(Order.created_at).where(
            Order.tenant_id == tenant_id(runtime)).order_by(Order.id.desc()).limit(1))
    return care.add_months(last, 6), timedelta(days=30)


def _birthday(runtime: Runtime, api: Api) -> tuple[datetime, timedelta]:
    status, _ = api.post("/orders", {**ORDER, "customer": {
        "email": "ann@example.com", "name": "Ann Lee", "birthday": "1990-03-15"}})
    assert status == 201
    return datetime(2027, 3, 15, tzinfo=UTC), timedelta(days=1)


def _anniversary(runtime: Runtime, api: Api) -> tuple[datetime, timedelta]:
    placed_order(api)
    with runtime.transaction() as session:
        since = session.scalar(select(Customer.created_at).where(
            Customer.email == "ann@example.com", Customer.tenant_id == tenant_id(runtime)))
    day = since.date()
    if (day.month, day.day) == (2, 29):
        day = day.replace(day=28)
    return datetime(day.year + 1, day.month, day.day, tzinfo=UTC), timedelta(days=1)


def _only_rule(runtime: Runtime, kind: str) -> CareRules:
    """Acme's rule of this kind alone, so another rule due the same day stays out of counts."""
    return CareRules(tuple(r for r in runtime.tenant_settings("acme").care.rules
                           if r.kind == kind))


TIMINGS: dict[str, Callable[[Runtime, Api], tuple[datetime, timedelta]]] = {
    "review_request": _review,
    "delay_apology": _delay,
    "satisfaction_survey": _survey,
    "win_back": _win_back,
    "birthday_greeting": _birthday,
    "anniversary_greeting": _anniversary,
}


@pytest.mark.parametrize("kind", sorted(TIMINGS))
def test_each_rule_fires_when_due_not_a_minute_before_and_not_after_its_window(
    api: Api, runtime: Runtime, kind: str
) -> None:
    due, window = TIMINGS[kind](runtime, api)
    only = _only_rule(runtime, kind)
    assert sweep(runtime, due - MINUTE, only)["emitted"] == 0
    assert sweep(runtime, due + window, only)["emitted"] == 0  # past the window: too late
    assert _only(runtime, kind) == []
    assert sweep(runtime, due, only)["emitted"] == 1
    assert sweep(runtime, due + window - MINUTE, only)["emitted"] == 0  # once
    [payload] = _only(runtime, kind)
    assert payload["customer"] == "ann@example.com"


def test_a_late_sweep_still_fires_within_the_window(api: Api, runtime: Runtime) -> None:
    due, window = _review(runtime, api)
    assert sweep(runtime, due + window - MINUTE)["emitted"] == 1


def test_a_survey_asks_about_complaints_only_unless_the_rule_says_more(
    api: Api, runtime: Runtime
) -> None:
    complaint, resolved = _resolved_complaint(runtime, api)
    question, _ = _resolved_complaint(runtime, api, "question")
    due = resolved + timedelta(days=1, minutes=5)
    sweep(runtime, due)
    assert [p["ticket"] for p in _only(runtime, "satisfaction_survey")] == [complaint]
    both = rules({"name": "all-kinds", "kind": "satisfaction_survey",
                  "ticket_kinds": ["complaint", "question"]})
    sweep(runtime, due, both)
    assert sorted(p["ticket"] for p in _only(runtime, "satisfaction_survey")) == sorted(
        [complaint, complaint, question])


def test_a_birthday_on_29_february_is_greeted_on_the_28th_in_other_years(
    api: Api, runtime: Runtime
) -> None:
    status, _ = api.post("/orders", {**ORDER, "customer": {
        "email": "leap@example.com", "birthday": "2000-02-29"}})
    assert status == 201
    status, listed = api.get("/customers?q=leap")
    assert listed["items"][0]["birthday"] == "2000-02-29"
    assert sweep(runtime, datetime(2027, 2, 27, 12, tzinfo=UTC))["emitted"] == 0
    assert sweep(runtime, datetime(2027, 2, 28, 12, tzinfo=UTC))["emitted"] == 1
    assert sweep(runtime, datetime(2028, 2, 28, 12, tzinfo=UTC))["emitted"] == 0  # leap year
    assert sweep(runtime, datetime(2028, 2, 29, 12, tzinfo=UTC))["emitted"] == 1
    assert [p["day"] for p in _only(runtime, "birthday_greeting")] == ["2027-02-28",
                                                                        "2028-02-29"]


def test_a_customer_without_a_birthday_gets_no_greeting(api: Api, runtime: Runtime) -> None:
    placed_order(api)
    for month in range(1, 13):
        assert sweep(runtime, datetime(2027, month, 15, tzinfo=UTC),
                     rules({"name": "bd", "kind": "birthday_greeting"}))["emitted"] == 0


def test_win_back_fires_again_after_a_new_order_and_a_new_silence(
    api: Api, runtime: Runtime
) -> None:
    due, _ = _win_back(runtime, api)
    only = _only_rule(runtime, "win_back")
    assert sweep(runtime, due, only)["emitted"] == 1
    placed_order(api)
    with runtime.transaction() as session:  # the new order was placed on the day it fell due
        session.execute(update(Order).where(Order.id == select(Order.id).order_by(
            Order.id.desc()).limit(1).scalar_subquery()).values(created_at=due))
    assert sweep(runtime, due + timedelta(days=10), only)["emitted"] == 0
    assert sweep(runtime, care.add_months(due, 6), only)["emitted"] == 1
    assert len(_only(runtime, "win_back")) == 2


def test_months_are_calendar_months() -> None:
    moment = datetime(2026, 3, 31, 10, tzinfo=UTC)
    assert care.add_months(moment, -1) == datetime(2026, 2, 28, 10, tzinfo=UTC)
    assert care.add_months(moment, -6) == datetime(2025, 9, 30, 10, tzinfo=UTC)
    assert care.add_months(moment, 11) == datetime(2027, 2, 28, 10, tzinfo=UTC)


def test_a_disabled_rule_never_fires(api: Api, runtime: Runtime) -> None:
    due, _ = _review(runtime, api)
    off = rules({"name": "ask", "kind": "review_request", "enabled": False})
    assert sweep(runtime, due, off) == {"emitted": 0, "skipped": 0, "taken": 0}


def test_an_order_reviewed_already_is_not_asked_about(api: Api, runtime: Runtime) -> None:
    number, at = delivered_order(runtime, api)
    for sku in ("SKU-A", "SKU-B"):
        assert api.post("/reviews", {"order": number, "sku": sku, "rating": 5})[0] == 201
    assert sweep(runtime, at + timedelta(days=7))["skipped"] == 1
    assert _only(runtime, "review_request") == []
    assert sends(runtime)[0][2:] == ("skipped", "every line is reviewed already")


# --- consent -----------------------------------------------------------------------------------


def _unsubscribe_token(runtime: Runtime, kind: str, email: str = "ann@example.com",
                       tenant: str = "acme") -> str:
    with runtime.transaction() as session:
        customer_id = session.scalar(select(Customer.id).where(
            Customer.email == email, Customer.tenant_id == tenant_id(runtime, tenant)))
    return care_links.sign(HUB_SECRET_KEY, "unsubscribe",
                           {"t": tenant_id(runtime, tenant), "c": customer_id, "k": kind})


def test_a_customer_who_opted_out_is_never_asked(api: Api, runtime: Runtime) -> None:
    number, at = delivered_order(runtime, api)
    token = _unsubscribe_token(runtime, "review_request")
    response = api.client.post(f"/care/unsubscribe/{token}")
    assert response.status_code == 200, response.get_json()
    for i in range(3):
        sweep(runtime, at + timedelta(days=7, minutes=i))
    assert _only(runtime, "review_request") == []
    assert sends(runtime) == [("ask-for-review", f"order:{_id(runtime, number)}", "skipped",
                               "the customer opted out")]
    # only that kind: a delay apology still reaches them
    due, _ = _delay(runtime, api)
    sweep(runtime, due)
    assert len(_only(runtime, "delay_apology")) == 1


def test_the_unsubscribe_link_works_end_to_end(
    api: Api, runtime: Runtime, smtp: SmtpServer
) -> None:
    runtime.jobs.start_worker(sweep=False)
    _, at = delivered_order(runtime, api)
    sweep(runtime, at + timedelta(days=7))
    runtime.jobs.join()
    [mail] = smtp.mailbox.received
    assert mail.recipients == ["ann@example.com"]
    assert mail.message["Subject"].startswith("Acme Store: how do you like your order")
    header = mail.message["List-Unsubscribe"]
    assert mail.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = header.strip("<>")
    assert link.startswith(f"{PUBLIC_URL}/care/unsubscribe/")
    assert f"No more review requests: {link}" in mail.part("plain")
    assert f"{PUBLIC_URL}/care/review/" in mail.part("plain")
    path = link.removeprefix(PUBLIC_URL)

    page = api.client.get(path)  # what the link is about; names no e-mail address
    assert page.status_code == 200
    assert page.get_json() == {"tenant": "Acme Store", "kind": "review_request",
                               "subscribed": True}
    assert "ann@" not in page.get_data(as_text=True)
    # a mail client's RFC 8058 one-click POST, twice: the same answer, one opt-out
    for _ in range(2):
        done = api.client.post(path, data={"List-Unsubscribe": "One-Click"})
        assert done.status_code == 200
        assert done.get_json() == {"tenant": "Acme Store", "kind": "review_request",
                                   "subscribed": False}
    assert api.client.get(path).get_json()["subscribed"] is False
    status, entries = api.get("/audit?action=care.opt_out")
    assert status == 200 and len(entries["items"]) == 1, entries

    _, later = delivered_order(runtime, api)
    sweep(runtime, later + timedelta(days=7))
    runtime.jobs.join()
    assert len(smtp.mailbox.received) == 1
    assert sends(runtime)[-1][2:] == ("skipped", "the customer opted out")


def test_a_message_on_its_way_is_not_sent_after_an_opt_out(
    api: Api, runtime: Runtime, smtp: SmtpServer
) -> None:
    _, at = delivered_order(runtime, api)
    sweep(runtime, at + timedelta(days=7))  # emitted; no worker runs yet
    token = _unsubscribe_token(runtime, "review_request")
    assert api.client.post(f"/care/unsubscribe/{token}").status_code == 200
    runtime.jobs.start_worker(sweep=False)
    runtime.jobs.join()
    assert smtp.mailbox.received == []
    with runtime.transaction() as session:
        [message] = session.scalars(select(NotificationDelivery)).all()
        assert (message.status, message.last_error) == (
            "skipped", "the customer opted out of review_request messages")


def test_a_copy_to_staff_carries_no_customer_link(api: Api, runtime: Runtime) -> None:
    _, at = delivered_order(runtime, api)
    sweep(runtime, at + timedelta(days=7))
    [payload] = _only(runtime, "review_request")
    acme = tenant_id(runtime)
    with runtime.transaction() as session:
        links = care.message_links(
            session, PUBLIC_URL, HUB_SECRET_KEY, acme, "review_request",
            payload, Recipient("service@acme.test", None, "en"))
        assert links == {"unsubscribe_url": None, "review_url": None, "survey_url": None}
        mine = care.message_links(
            session, PUBLIC_URL, HUB_SECRET_KEY, acme, "review_request",
            payload, Recipient("Ann@Example.com", None, "en"))
        assert all(v and v.startswith(PUBLIC_URL) for v in mine.values() if v is not None)
        assert mine["survey_url"] is None and mine["review_url"] is not None


def _bad_tokens(runtime: Runtime) -> dict[str, str]:
    good = _unsubscribe_token(runtime, "review_request")
    acme_customer = care_links.read(HUB_SECRET_KEY, "unsubscribe", good)["c"]
    return {
        "garbage": "not-a-token",
        "tampered": good[:-2] + ("AA" if not good.endswith("AA") else "BB"),
        "another key": care_links._serializer("another-secret", "unsubscribe").dumps(
            {"t": tenant_id(runtime), "c": acme_customer, "k": "review_request"}),
        "another purpose": care_links.sign(HUB_SECRET_KEY, "review",
                                           {"t": tenant_id(runtime), "c": acme_customer,
                                            "k": "review_request"}),
        # signed by the hub, but naming acme's customer under the other tenant
        "another tenant": care_links.sign(HUB_SECRET_KEY, "unsubscribe",
                                          {"t": tenant_id(runtime, "other"), "c": acme_customer,
                                           "k": "review_request"}),
        "unknown kind": care_links.sign(HUB_SECRET_KEY, "unsubscribe",
                                        {"t": tenant_id(runtime), "c": acme_customer,
                                         "k": "newsletter"}),
        "too long": "a" * 501,
    }


def test_forged_and_foreign_links_are_refused_alike(api: Api, runtime: Runtime) -> None:
    placed_order(api)
    answers = set()
    for why, token in _bad_tokens(runtime).items():
        for method in ("GET", "POST"):
            response = api.client.open(f"/care/unsubscribe/{token}", method=method)
            assert response.status_code == 404, (why, method)
            answers.add(response.get_data(as_text=True))
        for path in ("/care/review/", "/care/survey/"):
            assert api.client.get(path + token).status_code == 404, (why, path)
            assert api.client.post(path + token, json={"rating": 5}).status_code == 404
    assert answers == {
        '{"error":{"code":"not_found","message":"this link is not valid (or no longer valid)",'
        '"details":[]}}\n'
    }
    assert _opt_outs(runtime) == 0


def _opt_outs(runtime: Runtime) -> int:
    from hub.core.models import CareOptOut

    with runtime.transaction() as session:
        return len(session.scalars(select(CareOptOut)).all())


def _signed_days_ago(monkeypatch: pytest.MonkeyPatch, days: int, make: Callable[[], str]) -> str:
    then = int(utcnow().timestamp()) - days * 86400
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: then)
    try:
        return make()
    finally:
        monkeypatch.undo()


def test_an_unsubscribe_link_works_for_years_a_review_link_for_90_days(
    api: Api, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    number, _ = delivered_order(runtime, api)
    old = _signed_days_ago(monkeypatch, 3 * 365,
                           lambda: _unsubscribe_token(runtime, "win_back"))
    assert api.client.post(f"/care/unsubscribe/{old}").status_code == 200
    with runtime.transaction() as session:
        customer = session.scalar(select(Order.customer_id).where(Order.number == number))
    data = {"t": tenant_id(runtime), "o": _id(runtime, number), "c": customer}
    for days, status in ((89, 200), (91, 404)):
        token = _signed_days_ago(monkeypatch, days,
                                 lambda: care_links.sign(HUB_SECRET_KEY, "review", data))
        assert api.client.get(f"/care/review/{token}").status_code == status, days


# --- the satisfaction survey -------------------------------------------------------------------


def _survey_link(runtime: Runtime, api: Api) -> tuple[str, str]:
    ticket, resolved = _resolved_complaint(runtime, api)
    sweep(runtime, resolved + timedelta(hours=24))
    [payload] = _only(runtime, "satisfaction_survey")
    acme = tenant_id(runtime)
    with runtime.transaction() as session:
        links = care.message_links(session, PUBLIC_URL, HUB_SECRET_KEY, acme,
                                   "satisfaction_survey", payload,
                                   Recipient("ann@example.com", None, "en"))
    assert links["survey_url"] is not None
    return ticket, links["survey_url"].removeprefix(PUBLIC_URL)


def test_the_survey_is_answered_once_and_recorded_against_the_ticket(
    api: Api, runtime: Runtime
) -> None:
    ticket, path = _survey_link(runtime, api)
    page = api.client.get(path)
    assert page.status_code == 200
    assert page.get_json() == {"tenant": "Acme Store", "ticket": ticket, "subject": "Broken",
                               "answered": False, "scale": {"worst": 1, "best": 5}}
    answer = api.client.post(path, json={"rating": 4, "comment": "Quick, thanks"})
    assert answer.status_code == 201, answer.get_json()
    assert answer.get_json()["rating"] == 4
    again = api.client.post(path, json={"rating": 1})
    assert again.status_code == 409
    assert again.get_json()["error"]["message"] == (
        f"the survey of ticket {ticket} is answered already")
    assert api.client.get(path).get_json()["answered"] is True

    status, listed = api.get("/care/surveys", token=api.tokens["service"])
    assert status == 200
    assert [(s["ticket"], s["rating"], s["comment"]) for s in listed["items"]] == [
        (ticket, 4, "Quick, thanks")]
    _, shown = api.get(f"/tickets/{ticket}")
    [entry] = [e for e in shown["timeline"] if e["kind"] == "survey"]
    assert entry["data"] == {"rating": 4, "comment": True}


@pytest.mark.parametrize(
    ("body", "field"),
    [({"rating": 0}, "rating"), ({"rating": 6}, "rating"), ({}, "rating"),
     ({"rating": "5"}, "rating"), ({"rating": 5, "extra": 1}, "extra"),
     ({"rating": 5, "comment": "x" * 5001}, "comment")],
)
def test_a_bad_survey_answer_is_refused_naming_the_field(
    api: Api, runtime: Runtime, body: dict[str, Any], field: str
) -> None:
    _, path = _survey_link(runtime, api)
    response = api.client.post(path, json=body)
    assert response.status_code == 422, response.get_json()
    assert field in {d["field"] for d in response.get_json()["error"]["details"]}
    assert api.client.post(path, json={"rating": 5}).status_code == 201  # nothing recorded


def test_a_survey_answer_must_be_json(api: Api, runtime: Runtime) -> None:
    _, path = _survey_link(runtime, api)
    assert api.client.post(path, data="rating=5").status_code == 415
    assert api.client.post(path, data="{", content_type="application/json").status_code == 400


# --- what staff see, and the settings ----------------------------------------------------------


def test_care_sends_are_listed_and_filtered(api: Api, runtime: Runtime) -> None:
    _, at = delivered_order(runtime, api)
    sweep(runtime, at + timedelta(days=7))
    status, listed = api.get("/care/sends?kind=review_request", token=api.tokens["analyst"])
    assert status == 200
    [send] = listed["items"]
    assert (send["rule"], send["status"]) == ("ask-for-review", "emitted")
    assert api.get("/care/sends?status=skipped")[1]["items"] == []
    assert api.get("/care/sends?customer=ANN@example.com")[1]["total"] == 1
    assert api.get("/care/sends", token=api.tokens["stranger"])[1]["items"] == []
    assert api.get("/care/sends?kind=newsletter")[0] == 400


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        ('[[care.rules]]\nname = "a"\nkind = "review_request"\nhours = 3\n',
         "care.rules[0].hours", "a review_request rule takes days"),
        ('[[care.rules]]\nname = "a"\nkind = "birthday_greeting"\ndays = 3\n',
         "care.rules[0].days", "a birthday_greeting rule takes no timing key"),
        ('[[care.rules]]\nname = "a"\nkind = "win_back"\n[[care.rules]]\nname = "a"\n'
         'kind = "review_request"\n', "care.rules[1].name", "'a' names two rules"),
        ('[[care.rules]]\nname = "a"\nkind = "win_back"\nticket_kinds = ["complaint"]\n',
         "care.rules[0].ticket_kinds", "only a satisfaction_survey rule takes it"),
        ('[[care.rules]]\nname = "a"\nkind = "newsletter"\n', "care.rules.0.kind", "must be"),
        ('[[care.rules]]\nname = "a"\nkind = "win_back"\nmonths = 0\n', "care.rules.0.months",
         "at least 1"),
        ("[reviews]\nticket_below = 6\n", "reviews.ticket_below", "at most 5"),
    ],
)
def test_bad_care_settings_stop_the_start_naming_the_key(
    tmp_path: Path, text: str, key: str, problem: str
) -> None:
    config = tmp_path / "config"
    (config / "tenants").mkdir(parents=True)
    (config / "tenants" / "acme.toml").write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_settings({"config_dir": config, "data_dir": tmp_path / "var"}, env={})
    assert caught.value.key == key
    assert problem in caught.value.problem


def test_care_settings_are_read(config_dir: Path, tmp_path: Path) -> None:
    found = load_settings({"config_dir": config_dir, "data_dir": tmp_path / "var"},
                          env={}).tenant("acme").care
    assert [(r.name, r.kind) for r in found.rules][:2] == [
        ("ask-for-review", "review_request"), ("sorry-late", "delay_apology")]
    review, late = found.rules[:2]
    assert (review.delay, review.window) == (timedelta(days=7), timedelta(days=14))
    assert (late.delay, late.window) == (timedelta(hours=2), timedelta(days=2))
    assert found.review_ticket_below == 2
