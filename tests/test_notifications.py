"""Notifications end to end: a tenant's routes take events to its notifiers and recipients, a
real SMTP server and a real webhook receiver get what they should (in the recipient's
language, signed, once), failures are retried with waits the hub shows, stay listed and can be
replayed, a gone endpoint disables its notifier, and bad settings stop the hub naming the key.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import ORDER, Api, allow_outbound, seed_people, watch_secret
from notify_support import Receiver, SmtpServer, smtp_server, webhook_receiver
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook
from tracking_support import Shipping

from hub import settings as settings_module
from hub.core import notifications, tracking
from hub.core.adapters import TrackingEvent, TrackingUpdate
from hub.core.db import utcnow
from hub.core.models import Event, NotificationDelivery, Shipment, Tenant
from hub.plugins import Plugins
from hub.runtime import Runtime
from hub.settings import ConfigError
from hub.worker import actors

SECRET = "whsec_" + base64.b64encode(b"acme's partner webhook secret!!!").decode()
SECRET_VARIABLE = "ACME_PARTNER_WEBHOOK_SECRET"
WAREHOUSE = "lager@acme.test"
SERVICE = "service@acme.test"
TRACKING = "https://track.example.com/{tracking_number}"

ACME = """
name = "Acme Store"

[notifications]
language = "en"
tracking_urls = {{ stub = "{tracking}" }}

[[notifications.routes]]
events = ["stock_low"]
notifier = "mail"
to = [{{ address = "{warehouse}", name = "仓库", language = "zh-CN" }}]

[[notifications.routes]]
events = ["order_status_changed"]
when = {{ to = ["shipped", "delivered"] }}
notifier = "mail"
to = ["customer"]

[[notifications.routes]]
events = ["delivery_exception"]
notifier = "mail"
to = ["customer", "{service}"]

[[notifications.routes]]
events = ["ticket_created"]
notifier = "mail"
to = ["requester"]

[[notifications.routes]]
events = ["ticket_assigned", "ticket_sla_breached"]
notifier = "mail"
to = ["agent"]

[[notifiers]]
name = "mail"
plugin = "email"
[notifiers.settings]
host = "127.0.0.1"
port = {smtp_port}
security = "none"
from = "Acme Store <noreply@acme.test>"

[[notifiers]]
name = "partner"
plugin = "webhook"
events = ["stock_low"]
[notifiers.settings]
url = "{webhook_url}"
secret = {{ "$env" = "{variable}" }}
"""
# Two retries, without waits: the real schedule is minutes to hours, the mechanism the same.
HUB = "[worker]\nnotification_retry_seconds = [0, 0]\n"
LOW_STOCK_ORDER = {**ORDER, "lines": [{"sku": "SKU-A", "quantity": 26, "unit_price": "10.00"}]}


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with smtp_server() as server:
        yield server


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as endpoint:
        yield endpoint


@pytest.fixture
def config_dir(
    tmp_path: Path, smtp: SmtpServer, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Acme's routes and notifiers, the local SMTP server and receiver allowed by the
    operator, and the webhook secret in the environment."""
    monkeypatch.setenv(SECRET_VARIABLE, SECRET)
    watch_secret(SECRET, SECRET.removeprefix("whsec_"))
    path = tmp_path / "config"
    (path / "tenants").mkdir(parents=True)
    (path / "hub.toml").write_text(HUB)
    allow_outbound(path, "127.0.0.1")
    (path / "tenants" / "acme.toml").write_text(
        ACME.format(
            tracking=TRACKING,
            warehouse=WAREHOUSE,
            service=SERVICE,
            smtp_port=smtp.port,
            webhook_url=receiver.url,
            variable=SECRET_VARIABLE,
        )
    )
    return path


@pytest.fixture
def worker(runtime: Runtime) -> Runtime:
    runtime.jobs.start_worker(sweep=False)
    return runtime


def listed(api: Api, **query: str) -> list[dict[str, Any]]:
    suffix = "&".join(f"{k}={v}" for k, v in query.items())
    status, body = api.get(f"/notifications?per_page=500&{suffix}")
    assert status == 200, body
    return body["items"]


def one(items: list[dict[str, Any]], **match: Any) -> dict[str, Any]:
    found = [i for i in items if all(i[k] == v for k, v in match.items())]
    assert len(found) == 1, (match, items)
    return found[0]


# --- the story ---------------------------------------------------------------------------------


def test_low_stock_reaches_the_warehouse_in_chinese_and_the_partner_signed_once(
    api: Api, worker: Runtime, smtp: SmtpServer, receiver: Receiver
) -> None:
    # Given a partner endpoint that fails twice before it takes the message
    receiver.statuses[:] = [500, 503]
    # When an order leaves SKU-A with 4 available (threshold 5)
    status, order = api.post("/orders", LOW_STOCK_ORDER)
    assert status == 201, order
    worker.jobs.join()

    # Then the warehouse gets one e-mail, in Simplified Chinese, text and HTML
    [mail] = smtp.mailbox.received
    assert mail.recipients == [WAREHOUSE]
    assert mail.message["Subject"] == "库存不足：SKU-A（Alpha）仅剩 4 件"
    assert [p.get_content_type() for p in mail.message.iter_parts()] == [
        "text/plain",
        "text/html",
    ]
    assert "可用库存：4" in mail.part("plain") and "<td>4</td>" in mail.part("html")
    # ... and the partner's third try succeeds: one message, one id, every request signed
    assert [h.status for h in receiver.hits] == [500, 503, 204]
    assert len({h.headers["webhook-id"] for h in receiver.hits}) == 1
    for hit in receiver.hits:
        body = Webhook(SECRET).verify(hit.body, hit.headers)
        assert body["type"] == "stock_low"
        assert body["data"] == {"sku": "SKU-A", "available": 4, "threshold": 5, "tenant": "acme"}
    assert len(receiver.accepted) == 1

    # And the hub lists both messages with what happened to them
    items = listed(api, event="stock_low")
    webhook = one(items, notifier="partner")
    assert (webhook["status"], webhook["attempts"], webhook["recipient"]) == ("sent", 3, None)
    assert webhook["message_id"] == receiver.hits[0].headers["webhook-id"]
    assert (
        webhook["last_error"] == "POST http://127.0.0.1 → 503 Service Unavailable (server trouble)"
    )
    assert webhook["next_attempt_at"] is None and webhook["sent_at"] is not None
    email = one(items, notifier="mail")
    assert (email["status"], email["attempts"], email["recipient"], email["language"]) == (
        "sent",
        1,
        WAREHOUSE,
        "zh-CN",
    )
    assert email["recipient_name"] == "仓库"
    assert (
        email["provider_id"] == mail.message["Message-ID"] == f"<{email['message_id']}@acme.test>"
    )
    assert email["event"]["payload"] == {"sku": "SKU-A", "available": 4, "threshold": 5}


def test_a_shipped_order_tells_its_customer_in_their_language_with_the_tracking_link(
    api: Api, worker: Runtime, smtp: SmtpServer
) -> None:
    customer = {"email": "Li.Lei@Example.com", "name": "李雷", "language": "zh-CN"}
    status, order = api.post("/orders", {**ORDER, "customer": customer})
    assert status == 201, order
    assert order["customer"]["language"] == "zh-CN"
    shipping = Shipping(worker, api)
    shipment_id = shipping.shipment(shipping.account(), order["number"])
    number = shipping.get(shipment_id).tracking_number
    worker.jobs.join()

    [mail] = smtp.mailbox.received
    assert mail.recipients == ["li.lei@example.com"]
    assert mail.message["Subject"] == f"Acme Store：订单 {order['number']} 已发货"
    assert f"查看物流：https://track.example.com/{number}" in mail.part("plain")
    assert f'<a href="https://track.example.com/{number}">查看物流</a>' in mail.part("html")
    sent = one(listed(api, event="order_status_changed"), recipient="li.lei@example.com")
    assert (sent["status"], sent["language"]) == ("sent", "zh-CN")


def test_only_the_statuses_the_route_names_reach_the_customer(
    api: Api, worker: Runtime, smtp: SmtpServer
) -> None:
    status, order = api.post("/orders", ORDER)
    assert status == 201
    status, _ = api.post(f"/orders/{order['number']}/cancel", {"reason": "customer asked"})
    assert status == 200
    worker.jobs.join()
    assert smtp.mailbox.received == []
    assert listed(api, event="order_status_changed") == []


def test_a_delivery_exception_tells_the_customer_and_service(
    api: Api, worker: Runtime, smtp: SmtpServer
) -> None:
    shipping = Shipping(worker, api)
    shipment_id = shipping.shipment(shipping.account())
    with worker.transaction() as session:
        shipment = session.get(Shipment, shipment_id)
        lost = TrackingEvent("exception", utcnow(), "LOST", "parcel lost", "lost")
        tracking.apply(session, shipment, TrackingUpdate(shipment.tracking_number, (lost,)), "poll")
    worker.jobs.join()

    told = [
        (m.recipients[0], m.message["Subject"])
        for m in smtp.mailbox.received
        if "a problem with the delivery" in m.message["Subject"]  # not the "shipped" mail
    ]
    assert sorted(to for to, _ in told) == ["ann@example.com", SERVICE]
    assert all(subject.endswith("(lost)") for _, subject in told)
    items = listed(api, event="delivery_exception")
    assert sorted(i["recipient"] for i in items) == ["ann@example.com", SERVICE]
    assert {i["language"] for i in items} == {"en"}  # the tenant's language: none on record


def test_a_customer_without_an_email_address_is_skipped_saying_why(
    api: Api, worker: Runtime, smtp: SmtpServer
) -> None:
    status, order = api.post("/orders", {**ORDER, "customer": {"name": "Walk-in"}})
    assert status == 201
    shipping = Shipping(worker, api)
    shipping.shipment(shipping.account(), order["number"])
    worker.jobs.join()

    assert smtp.mailbox.received == []
    [skipped] = listed(api, status="skipped")
    assert (skipped["recipient"], skipped["attempts"]) == ("customer", 0)
    assert skipped["last_error"] == f"the customer of order {order['number']} has no e-mail address"
    status, body = api.post(f"/notifications/{skipped['id']}/replay")
    assert status == 409, body


# --- failures: kept, retried, replayable --------------------------------------------------------


def test_a_message_that_keeps_failing_is_kept_and_can_be_replayed(
    api: Api, worker: Runtime, receiver: Receiver
) -> None:
    receiver.then = 500
    assert api.post("/orders", LOW_STOCK_ORDER)[0] == 201
    worker.jobs.join()

    # Three attempts (the first and two retries), then it stays failed, listed with its error
    [failed] = listed(api, status="failed")
    assert (failed["notifier"], failed["attempts"], failed["replays"]) == ("partner", 3, 0)
    assert (
        failed["last_error"] == "POST http://127.0.0.1 → 500 Internal Server Error (server trouble)"
    )
    assert len(receiver.hits) == 3
    assert one(listed(api), notifier="mail")["status"] == "sent"

    # The endpoint is mended; replaying sends the same message again
    receiver.then = 204
    status, replayed = api.post(f"/notifications/{failed['id']}/replay")
    assert status == 202, replayed
    assert (replayed["status"], replayed["replays"]) == ("pending", 1)
    worker.jobs.join()
    [sent] = [i for i in listed(api, notifier="partner")]
    assert (sent["status"], sent["attempts"], sent["replays"]) == ("sent", 4, 1)
    assert len({h.headers["webhook-id"] for h in receiver.hits}) == 1
    assert len(receiver.accepted) == 1

    # Only a failed message can be replayed; another tenant's is none of theirs
    status, body = api.post(f"/notifications/{failed['id']}/replay")
    assert (status, body["error"]["message"]) == (
        409,
        f"notification {failed['id']} is sent: only a failed notification can be replayed",
    )
    assert api.post(f"/notifications/{failed['id']}/replay", token=api.tokens["stranger"])[0] == 404
    assert listed(api, status="failed") == []
    with worker.session() as session:
        replayed_row = session.scalar(
            select(NotificationDelivery).where(NotificationDelivery.notifier == "partner")
        )
        assert (replayed_row.round_start, replayed_row.attempts) == (3, 4)


@pytest.mark.parametrize(("status", "count"), [("sent", 2), ("failed", 0), ("pending", 0)])
def test_the_list_filters_by_status(api: Api, worker: Runtime, status: str, count: int) -> None:
    assert api.post("/orders", LOW_STOCK_ORDER)[0] == 201
    worker.jobs.join()
    assert len(listed(api, status=status)) == count
    assert listed(api, status=status) == [] or {
        i["status"] for i in listed(api, status=status)
    } == {status}


def test_a_bad_status_filter_is_refused(api: Api) -> None:
    status, body = api.get("/notifications?status=lost")
    assert status == 400, body


def test_the_wait_before_a_retry_is_real_and_shown(
    api: Api, runtime: Runtime, receiver: Receiver
) -> None:
    receiver.then = 502
    runtime.settings.notification_retry_seconds = (5.0, 300.0)
    assert api.post("/orders", LOW_STOCK_ORDER)[0] == 201  # no worker: the jobs wait
    with runtime.session() as session:
        low = session.scalar(select(Event.id).where(Event.name == "stock_low"))
    actors.dispatch_event(runtime, low)
    with runtime.session() as session:
        hook = session.scalar(
            select(NotificationDelivery.id).where(NotificationDelivery.notifier == "partner")
        )
    before = utcnow()
    attempt = notifications.deliver(runtime, hook)
    assert attempt is not None and attempt.status == "retrying"
    assert attempt.retry_in is not None and 4.0 <= attempt.retry_in <= 6.0  # 5 s ± jitter
    [shown] = listed(api, notifier="partner")
    assert (shown["status"], shown["attempts"]) == ("retrying", 1)
    assert shown["last_error"] == "POST http://127.0.0.1 → 502 Bad Gateway (server trouble)"
    next_at = datetime.fromisoformat(shown["next_attempt_at"])
    assert before + timedelta(seconds=4) <= next_at <= utcnow() + timedelta(seconds=6)
    # A copy of the job that comes early does nothing; the sweeper waits for the time too
    assert notifications.deliver(runtime, hook) is None
    assert listed(api, notifier="partner")[0]["attempts"] == 1
    with runtime.session() as session:
        assert hook not in notifications.due(session, utcnow())
        assert hook in notifications.due(session, next_at + timedelta(seconds=1))


# --- a destination that is gone ------------------------------------------------------------------


def test_410_disables_the_notifier_until_an_admin_enables_it(
    api: Api, worker: Runtime, receiver: Receiver
) -> None:
    receiver.statuses[:] = [410]
    assert api.post("/orders", LOW_STOCK_ORDER)[0] == 201
    worker.jobs.join()
    [gone] = listed(api, status="failed")
    assert gone["attempts"] == 1
    assert "410 Gone: the endpoint is gone, so the notifier is disabled" in gone["last_error"]
    status, body = api.get("/notifiers")
    assert status == 200
    partner = one(body["items"], name="partner")
    assert (partner["plugin"], partner["disabled"], partner["events"]) == (
        "webhook",
        True,
        ["stock_low"],
    )
    assert "410 Gone" in partner["disabled_reason"]
    assert one(body["items"], name="mail")["disabled"] is False

    # While disabled its messages fail at once, saying why, and nothing is sent
    # SKU-C: 10 available, threshold 2
    status, _ = api.post("/orders", {**ORDER, "lines": [{"sku": "SKU-C", "quantity": 9}]})
    assert status == 201
    worker.jobs.join()
    assert len(receiver.hits) == 1
    blocked = [i for i in listed(api, status="failed") if i["id"] != gone["id"]]
    assert len(blocked) == 1
    assert blocked[0]["last_error"].startswith("notifier 'partner' is disabled since")
    assert blocked[0]["last_error"].endswith("enable it, then replay this message")

    # Enabled again, the failed messages can be replayed
    status, enabled = api.post("/notifiers/partner/enable")
    assert (status, enabled["disabled"]) == (200, False)
    assert api.post("/notifiers/partner/enable")[0] == 200  # enabling twice changes nothing
    for item in (gone, blocked[0]):
        assert api.post(f"/notifications/{item['id']}/replay")[0] == 202
    worker.jobs.join()
    assert listed(api, status="failed") == []
    assert len(receiver.accepted) == 2
    assert api.post("/notifiers/nobody/enable")[0] == 404
    assert api.post("/notifiers/partner/enable", token=api.tokens["stranger"])[0] == 404


# --- settings that stop the hub ---------------------------------------------------------------


def config_error(tmp_path: Path, tenant: str, hub: str = "") -> ConfigError:
    """What the start-up says about this tenant file (settings loaded, plugins checked)."""
    folder = tmp_path / "cfg"
    (folder / "tenants").mkdir(parents=True, exist_ok=True)
    (folder / "hub.toml").write_text(hub)
    (folder / "tenants" / "acme.toml").write_text(tenant)
    with pytest.raises(ConfigError) as stopped:
        loaded = settings_module.load(
            env={**os.environ, "ORDERHUB_CONFIG_DIR": str(folder), "ORDERHUB_SECRET_KEY": "k"}
        )
        Plugins(env={}).check_config(loaded)
    return stopped.value


WEBHOOK = '[[notifiers]]\nname = "hook"\nplugin = "webhook"\n[notifiers.settings]\n'
MAIL = (
    '[[notifiers]]\nname = "mail"\nplugin = "email"\n[notifiers.settings]\n'
    'host = "smtp.example.com"\nfrom = "shop@example.com"\n'
)


def test_a_webhook_to_loopback_without_the_allow_list_stops_the_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SECRET_VARIABLE, SECRET)
    watch_secret(SECRET)
    error = config_error(
        tmp_path,
        WEBHOOK + f'url = "http://127.0.0.1:9/x"\nsecret = {{ "$env" = "{SECRET_VARIABLE}" }}\n',
    )
    assert error.key == "notifiers[0].settings"
    assert "settings.url" in error.problem and "the URL must be https" in error.problem
    assert "[outbound] allow" in error.problem
    assert SECRET not in str(error)


@pytest.mark.parametrize(
    ("tenant", "key", "problem"),
    [
        (
            WEBHOOK + f'url = "https://hooks.example.com/x"\nsecret = "{SECRET}"\n',
            "notifiers[0].settings.secret",
            "is a secret of notifier 'hook': write it as a reference",
        ),
        (
            WEBHOOK + 'url = "https://hooks.example.com/x"\nsecret = { "$env" = "NOT_SET_HERE" }\n',
            "notifiers[0].settings.secret",
            "environment variable NOT_SET_HERE is not set",
        ),
        (
            MAIL + 'port = "587"\n[[notifications.routes]]\nevents = ["stock_low"]\n'
            'notifier = "mail"\nto = ["ops@example.com"]\n',
            "notifiers[0].settings",
            "settings.port",
        ),
        (
            MAIL,
            "notifiers[0]",
            "sends to email addresses and is named by no route",
        ),
        (
            MAIL + '[[notifications.routes]]\nevents = ["stock_low"]\nnotifier = "mail"\n',
            "notifications.routes[0]",
            "hears events only through [[notifications.routes]] naming who gets them",
        ),
        (
            MAIL + '[[notifications.routes]]\nevents = ["stock_low"]\nnotifier = "mail"\n'
            'to = ["customer"]\n',
            "notifications.routes[0].to[0]",
            "stock_low names no customer",
        ),
        (
            MAIL + '[[notifications.routes]]\nevents = ["stock_low"]\nnotifier = "mail"\n'
            'to = ["custmer"]\n',
            "notifications.routes[0].to[0]",
            "'custmer' is neither an address nor a kind of recipient (agent, customer, requester,"
            " supervisor)",
        ),
        (
            MAIL + '[[notifications.routes]]\nevents = ["stock_low"]\nnotifier = "mail"\n'
            'to = ["+8613800138000"]\n',
            "notifications.routes[0].to[0]",
            "is not an e-mail address",
        ),
        (
            MAIL + '[[notifications.routes]]\nevents = ["stock_low"]\nnotifier = "pager"\n'
            'to = ["ops@example.com"]\n',
            "notifications.routes[0].notifier",
            "no notifier 'pager' in [[notifiers]] (there: mail)",
        ),
        (
            '[[notifiers]]\nname = "ops"\nplugin = "log"\n[[notifications.routes]]\n'
            'events = ["stock_low"]\nnotifier = "ops"\nto = ["ops@example.com"]\n',
            "notifications.routes[0].to",
            "notifier 'ops' (log) takes no recipients",
        ),
        (
            '[notifications]\ntracking_urls = { ups = "http://t.example.com/{tracking_number}" }\n',
            "notifications.tracking_urls.ups",
            "match",
        ),
        (
            '[notifications]\nlanguage = "chinese simplified"\n',
            "notifications.language",
            "match",
        ),
    ],
)
def test_bad_notification_settings_stop_the_start_naming_the_key(
    tmp_path: Path, tenant: str, key: str, problem: str
) -> None:
    error = config_error(tmp_path, tenant)
    assert error.key == key
    assert problem in error.problem
    assert SECRET not in str(error)


def test_a_good_configuration_starts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_VARIABLE, SECRET)
    folder = tmp_path / "cfg"
    (folder / "tenants").mkdir(parents=True)
    (folder / "tenants" / "acme.toml").write_text(
        MAIL
        + WEBHOOK
        + f'url = "https://hooks.example.com/x"\nsecret = {{ "$env" = "{SECRET_VARIABLE}" }}\n'
        + '[[notifications.routes]]\nevents = ["delivery_exception"]\nnotifier = "mail"\n'
        'to = ["customer", { address = "ops@example.com", language = "zh-CN" }]\n'
    )
    loaded = settings_module.load(
        env={**os.environ, "ORDERHUB_CONFIG_DIR": str(folder), "ORDERHUB_SECRET_KEY": "k"}
    )
    Plugins(env={}).check_config(loaded)
    acme = loaded.tenant("acme")
    assert [(r.notifier, sorted(r.events or ["*"])) for r in acme.notifications.routes] == [
        ("mail", ["delivery_exception"]),
        ("hook", ["*"]),  # a webhook no route names hears every event
    ]


# --- the message's state machine: each state under each action ------------------------------


def _message(runtime: Runtime, status: str, **columns: Any) -> int:
    """A stock_low message of acme's to the partner webhook, in ``status``."""
    with runtime.transaction() as session:
        tenant_id = session.scalar(select(Tenant.id).where(Tenant.slug == "acme"))
        event = Event(
            tenant_id=tenant_id,
            name="stock_low",
            payload={"sku": "SKU-A", "available": 1, "threshold": 5},
            dispatched_at=utcnow(),
        )
        session.add(event)
        session.flush()
        row = NotificationDelivery(
            tenant_id=tenant_id,
            event_id=event.id,
            notifier="partner",
            plugin="webhook",
            message_id=notifications.new_message_id(),
            status=status,
            attempts=1 if status in ("retrying", "sent", "failed") else 0,
            **columns,
        )
        session.add(row)
        session.flush()
        return row.id


# (status, extra columns) → what a job does (status after, hits), what a replay answers
STATES = [
    ("pending", {}, ("sent", 1), 409),
    ("retrying", {"next_attempt_at": utcnow() - timedelta(seconds=1)}, ("sent", 1), 409),
    ("retrying", {"next_attempt_at": utcnow() + timedelta(hours=1)}, ("retrying", 0), 409),
    ("sent", {}, ("sent", 0), 409),
    ("failed", {}, ("failed", 0), 202),
    ("skipped", {"recipient": "customer"}, ("skipped", 0), 409),
]


@pytest.mark.parametrize(("status", "columns", "after_job", "replay"), STATES)
def test_each_state_under_each_action(
    api: Api,
    runtime: Runtime,
    receiver: Receiver,
    status: str,
    columns: dict[str, Any],
    after_job: tuple[str, int],
    replay: int,
) -> None:
    # A job for the message: only a pending one, or a retrying one that is due, is sent
    sent_to_be = _message(runtime, status, **columns)
    actors.send_notification(runtime, sent_to_be)
    with runtime.session() as session:
        assert session.get(NotificationDelivery, sent_to_be).status == after_job[0]
    assert len(receiver.hits) == after_job[1]
    # A replay: only a failed message goes back to pending
    replayed = _message(runtime, status, **columns)
    answer, body = api.post(f"/notifications/{replayed}/replay")
    assert answer == replay, body
    with runtime.session() as session:
        now = session.get(NotificationDelivery, replayed)
        assert now.status == ("pending" if replay == 202 else status)
        assert now.replays == (1 if replay == 202 else 0)


def test_a_ticket_tells_its_customer_it_arrived_and_its_agent_it_is_theirs(
    api: Api, worker: Runtime, smtp: SmtpServer
) -> None:
    seed_people(worker, {"kim": "service"})
    assert api.patch("/users/kim", {"email": "kim@acme.test", "full_name": "Kim Ito"})[0] == 200
    assert api.patch("/users/service", {"available": False})[0] == 200
    status, ticket = api.post("/tickets", {
        "kind": "question", "subject": "Where is it?", "body": "Still waiting",
        "customer": {"email": "ann@example.com", "name": "Ann Lee"}})
    assert status == 201 and ticket["assignee"] == "kim", ticket
    worker.jobs.join()

    mails = {tuple(m.recipients): m for m in smtp.mailbox.received}
    assert set(mails) == {("ann@example.com",), ("kim@acme.test",)}
    assert mails[("ann@example.com",)].message["Subject"] == (
        f"We have your request: ticket {ticket['number']}")
    assert "Hello Ann Lee" in mails[("ann@example.com",)].part("plain")
    assert mails[("kim@acme.test",)].message["Subject"] == (
        f"Ticket {ticket['number']} is yours (normal)")
    assert {i["event"]["name"] for i in listed(api, status="sent")} >= {"ticket_created",
                                                                "ticket_assigned"}
