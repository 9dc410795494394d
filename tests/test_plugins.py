"""Plugins: discovery, reporting of broken ones, enabling per hub and per tenant, and the
contract that every hook is documented and proven to be called."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any, ClassVar

import pytest
from care_support import delivered_order, placed_order, rules, sweep
from click.testing import CliRunner
from conftest import HUB_SECRET_KEY, ORDER, Api
from flask import Flask
from sqlalchemy import func, select, update
from tracking_support import Shipping

from hub import create_app, hookimpl, hookspecs
from hub import plugins as plugins_module
from hub.cli import cli
from hub.core import care, delivery_exceptions
from hub.core.adapters import (
    CarrierAdapter,
    ChannelAdapter,
    ChannelOrder,
    Delivery,
    InboundRequest,
    Message,
    Notifier,
    PollPage,
    StubCarrier,
    StubChannel,
    TrackingEvent,
)
from hub.core.db import utcnow
from hub.core.models import (
    Customer,
    DeliveryException,
    Event,
    NotificationDelivery,
    Order,
    Shipment,
    Tenant,
    Ticket,
)
from hub.plugins import Plugins
from hub.runtime import Runtime
from hub.settings import TenantSettings
from hub.worker import actors
from plugins.notifiers.log import LogNotifier

ROOT = Path(__file__).resolve().parent.parent
HOOKS = sorted(name for name, fn in vars(hookspecs).items() if hasattr(fn, "orderhub_spec"))
NO_ENV: dict[str, str] = {}  # Plugins(env=...) without ORDERHUB_LOAD_PLUGINS and friends


def test_hookspecs_are_found() -> None:
    # Guards the two contract tests below against finding nothing and passing vacuously.
    assert {"register_notifiers", "order_created", "stock_low"} <= set(HOOKS)


# --- discovery -------------------------------------------------------------------------------


def test_builtin_log_notifier_is_found() -> None:
    plugins = Plugins(env=NO_ENV)
    assert plugins.notifier("log") is LogNotifier
    [info] = [i for i in plugins.describe() if i.name == "log"]
    assert info.source == "built-in"
    assert info.provides == {"notifiers": ["log"]}
    assert info.hooks == ["register_notifiers"]
    assert plugins.failures == []


def _cli_env(tmp_path: Path, config_dir: Path) -> dict[str, str | None]:
    return {
        "ORDERHUB_CONFIG_DIR": str(config_dir),
        "ORDERHUB_DATA_DIR": str(tmp_path / "var"),
        "ORDERHUB_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "ORDERHUB_BROKER_URL": "embedded",
        "ORDERHUB_SECRET_KEY": HUB_SECRET_KEY,
        "ORDERHUB_LOAD_PLUGINS": None,
    }


def test_cli_lists_plugins_with_what_they_provide(tmp_path: Path, config_dir: Path) -> None:
    result = CliRunner().invoke(cli, ["plugins"], env=_cli_env(tmp_path, config_dir))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "log  [built-in]" in lines
    at = lines.index("log  [built-in]")
    assert lines[at + 1].split() == ["provides", "notifiers:", "log"]
    assert lines[at + 2].split() == ["hooks", "register_notifiers"]
    assert "FAILED" not in result.output


@pytest.fixture
def fake_entry_points(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Two installed plugins: one that fails to import, one that works."""
    modules = tmp_path / "site"
    modules.mkdir()
    (modules / "orderhub_broken_plugin.py").write_text(
        "import orderhub_no_such_dependency  # the plugin's author forgot a requirement\n"
    )
    (modules / "orderhub_good_plugin.py").write_text(
        "from hub import hookimpl\n"
        "from hub.core.adapters import StubCarrier\n\n"
        "@hookimpl\n"
        "def register_carriers():\n"
        "    return [StubCarrier]\n"
    )
    monkeypatch.syspath_prepend(str(modules))
    eps = [
        EntryPoint(name="broken", value="orderhub_broken_plugin", group="orderhub"),
        EntryPoint(name="good", value="orderhub_good_plugin", group="orderhub"),
    ]

    def entry_points(*, group: str) -> list[EntryPoint]:
        return [ep for ep in eps if ep.group == group]

    monkeypatch.setattr(plugins_module, "entry_points", entry_points)
    yield
    sys.modules.pop("orderhub_good_plugin", None)


@pytest.mark.usefixtures("fake_entry_points")
def test_plugin_that_fails_to_import_is_reported_not_fatal(
    caplog: pytest.LogCaptureFixture,
) -> None:
    plugins = Plugins(env=NO_ENV)
    [failure] = plugins.failures
    assert failure.name == "broken"
    assert failure.source == "entry point orderhub_broken_plugin"
    assert failure.error == "ModuleNotFoundError: No module named 'orderhub_no_such_dependency'"
    assert "plugin broken (entry point orderhub_broken_plugin) failed to load" in caplog.text
    # the rest still loads
    assert plugins.adapters("carriers")["stub"] is StubCarrier
    assert plugins.notifier("log") is LogNotifier
    assert "broken" not in {i.name for i in plugins.describe()}


@pytest.mark.usefixtures("fake_entry_points")
def test_cli_reports_broken_plugin(tmp_path: Path, config_dir: Path) -> None:
    result = CliRunner().invoke(cli, ["plugins"], env=_cli_env(tmp_path, config_dir))
    assert result.exit_code == 0, result.output
    assert (
        "FAILED broken  [entry point orderhub_broken_plugin]: ModuleNotFoundError: "
        "No module named 'orderhub_no_such_dependency'"
    ) in result.output.splitlines()
    assert "good  [entry point orderhub_good_plugin]" in result.output
    assert "provides  carriers: stub" in result.output


@pytest.mark.usefixtures("fake_entry_points")
def test_load_plugins_variable_limits_entry_points() -> None:
    plugins = Plugins(env={"ORDERHUB_LOAD_PLUGINS": "good"})
    assert plugins.failures == []  # 'broken' was never imported
    assert plugins.adapters("carriers")["stub"] is StubCarrier
    assert plugins.notifier("log") is LogNotifier  # built-ins always load


class Incomplete(Notifier):
    name = "incomplete"  # and no send()


class NotANotifier:
    name = "impostor"


class Nameless(Notifier):
    def send(self, message: Message) -> None:
        pass


class SloppyPlugin:
    @hookimpl
    def register_notifiers(self) -> list[type]:
        return [Incomplete, NotANotifier, Nameless, LogNotifier]


def test_adapter_missing_abstract_method_is_refused_with_reason() -> None:
    plugins = Plugins(env=NO_ENV)
    plugins.register(SloppyPlugin(), "sloppy")
    errors = {f.error for f in plugins.failures if f.name == "sloppy"}
    assert errors == {
        "Incomplete does not implement send",
        f"{NotANotifier!r} is not a Notifier subclass",
        "Nameless has no name",
    }
    assert plugins.notifier("incomplete") is None
    assert plugins.notifier("impostor") is None
    assert plugins.notifier("log") is LogNotifier  # the valid part is still used


class PushWithoutMethods(ChannelAdapter):
    name = "bare"  # declares "push" by default, implements none of it


class PullWithoutPoll(StubChannel):
    name = "half-pull"
    capabilities = frozenset({"pull"})  # parse() it has, poll() it lacks


class FulfilmentWithoutPush(StubChannel):
    name = "no-fulfil"
    capabilities = frozenset({"push", "fulfilment"})


class MisspeltCapability(StubChannel):
    name = "typo"
    capabilities = frozenset({"pul"})


class CapabilitiesAsText(StubChannel):
    name = "text"
    capabilities = "pull"  # type: ignore[assignment]


class Feed(StubChannel):
    name = "feed"
    capabilities = frozenset({"pull"})

    def poll(self, cursor: str | None) -> Iterator[PollPage]:
        yield PollPage([], cursor="done")


class CapabilityPlugin:
    @hookimpl
    def register_channels(self) -> list[type]:
        return [
            PushWithoutMethods,
            PullWithoutPoll,
            FulfilmentWithoutPush,
            MisspeltCapability,
            CapabilitiesAsText,
            Feed,
        ]


def test_channel_declaring_a_capability_without_its_methods_is_refused_with_reason() -> None:
    plugins = Plugins(env=NO_ENV)
    plugins.register(CapabilityPlugin(), "capable")
    errors = {f.error for f in plugins.failures if f.name == "capable"}
    assert errors == {
        "PushWithoutMethods does not implement what it declares: 'push' needs verify,"
        " delivery, parse",
        "PullWithoutPoll does not implement what it declares: 'pull' needs poll",
        "FulfilmentWithoutPush does not implement what it declares: 'fulfilment' needs"
        " push_fulfilment",
        "MisspeltCapability declares unknown capabilities 'pul' (known: fulfilment, pull, push,"
        " refund)",
        "CapabilitiesAsText.capabilities must be a set of names, such as frozenset({'push'})",
    }
    channels = plugins.adapters("channels")
    assert channels["feed"] is Feed  # the complete one is used
    assert not {"bare", "half-pull", "no-fulfil", "typo", "text"} & channels.keys()


def test_cli_shows_a_channel_refused_for_a_missing_capability(
    tmp_path: Path, config_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    modules = tmp_path / "site"
    modules.mkdir()
    (modules / "orderhub_half_pull.py").write_text(
        "from hub import hookimpl\n"
        "from hub.core.adapters import StubChannel\n\n"
        "class HalfPull(StubChannel):\n"
        "    name = 'half'\n"
        "    capabilities = frozenset({'pull'})\n\n"
        "class Webhooks(StubChannel):\n"
        "    name = 'hooks'\n\n"
        "@hookimpl\n"
        "def register_channels():\n"
        "    return [HalfPull, Webhooks]\n"
    )
    monkeypatch.syspath_prepend(str(modules))
    ep = EntryPoint(name="halfpull", value="orderhub_half_pull", group="orderhub")
    monkeypatch.setattr(plugins_module, "entry_points", lambda *, group: [ep])
    try:
        result = CliRunner().invoke(cli, ["plugins"], env=_cli_env(tmp_path, config_dir))
    finally:
        sys.modules.pop("orderhub_half_pull", None)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert (
        "FAILED halfpull  [entry point orderhub_half_pull]: HalfPull does not implement what"
        " it declares: 'pull' needs poll"
    ) in lines
    at = lines.index("halfpull  [entry point orderhub_half_pull]")
    assert lines[at + 1].split() == ["provides", "channels:", "hooks"]  # the valid one stays
    assert lines[at + 2].split() == ["can", "hooks:", "push,", "refund"]


def test_plugin_disabled_in_hub_toml_is_absent(tmp_path: Path, config_dir: Path) -> None:
    (config_dir / "hub.toml").write_text('[plugins]\ndisabled = ["log"]\n')
    app = create_app(
        {
            "database_url": f"sqlite:///{tmp_path / 'hub.db'}",
            "broker_url": "embedded",
            "config_dir": config_dir,
            "data_dir": tmp_path / "var",
            "secret_key": HUB_SECRET_KEY,
        }
    )
    runtime: Runtime = app.extensions["orderhub"]
    try:
        assert runtime.plugins.notifier("log") is None
        assert "log" not in {i.name for i in runtime.plugins.describe()}
    finally:
        runtime.close()

    result = CliRunner().invoke(cli, ["plugins"], env=_cli_env(tmp_path, config_dir))
    assert result.exit_code == 0, result.output
    assert "log" not in result.output


class Recorder:
    """Records every event hook and provides a notifier of its own."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []

    def _record(self, hook: str, tenant: str, payload: dict[str, Any]) -> None:
        self.calls.append((hook, tenant, payload))

    @hookimpl
    def register_notifiers(self) -> list[type]:
        return [MemoryNotifier]

    @hookimpl
    def order_created(self, tenant: str, payload: dict[str, Any]) -> None:
        self._record("order_created", tenant, payload)

    @hookimpl
    def order_status_changed(self, tenant: str, payload: dict[str, Any]) -> None:
        self._record("order_status_changed", tenant, payload)

    @hookimpl
    def order_updated(self, tenant: str, payload: dict[str, Any]) -> None:
        self._record("order_updated", tenant, payload)

    @hookimpl
    def stock_low(self, tenant: str, payload: dict[str, Any]) -> None:
        self._record("stock_low", tenant, payload)

    @hookimpl
    def stock_replenished(self, tenant: str, payload: dict[str, Any]) -> None:
        self._record("stock_replenished", tenant, payload)

    @hookimpl
    def shipment_status_changed(self, tenant: str, payload: dict[str, Any]) -> None:
        self._record("shipment_status_changed", tenant, payload)

    @hookimpl
    def delivery_exception(self, tenant: str, payload: dict[str, Any]) -> None:
        self._record("delivery_exception", tenant, payload)

    @hookimpl
    def ticket_created(self, tenant: str, payload: dict[str, Any]) -> None:
        self._record("ticket_created", tenant, payload)

    @hookimpl
    def ticket_assigned(self, tenant: str, payload: dict[str, Any]) -> None:
        self._record("ticket_assigned", tenant, payload)

    @hookimpl
    def ticket_status_changed(self, tenant: str, payload: dict[str, Any]) -> None:
        self._record("ticket_status_changed", tenant, payload)

    @hookimpl
    def ticket_replied(self, tenant: str, payload: dict[str, Any]) -> None:
        self._record("ticket_replied", tenant, payload)

    @hookimpl
    def ticket_sla_warning(self, tenant: str, payload: dict[str, Any]) -> None:
        self._record("ticket_sla_warning", tenant, payload)

    @hookimpl
    def ticket_sla_breached(self, tenant: str, payload: dict[str, Any]) -> None:
        self._record("ticket_sla_breached", tenant, payload)

    @hookimpl
    def review_request(self, tenant: str, payload: dict[str, Any]) -> None:
        self._record("review_request", tenant, payload)

    @hookimpl
    def delay_apology(self, tenant: str, payload: dict[str, Any]) -> None:
        self._record("delay_apology", tenant, payload)

    @hookimpl
    def satisfaction_survey(self, tenant: str, payload: dict[str, Any]) -> None:
        self._record("satisfaction_survey", tenant, payload)

    @hookimpl
    def win_back(self, tenant: str, payload: dict[str, Any]) -> None:
        self._record("win_back", tenant, payload)

    @hookimpl
    def birthday_greeting(self, tenant: str, payload: dict[str, Any]) -> None:
        self._record("birthday_greeting", tenant, payload)

    @hookimpl
    def anniversary_greeting(self, tenant: str, payload: dict[str, Any]) -> None:
        self._record("anniversary_greeting", tenant, payload)

    @hookimpl
    def review_created(self, tenant: str, payload: dict[str, Any]) -> None:
        self._record("review_created", tenant, payload)

    @hookimpl
    def portal_link(self, tenant: str, payload: dict[str, Any]) -> None:
        self._record("portal_link", tenant, payload)

    def hooks(self, name: str) -> list[tuple[str, dict[str, Any]]]:
        return [(tenant, payload) for hook, tenant, payload in self.calls if hook == name]


class MemoryNotifier(Notifier):
    name = "memory"
    sent: ClassVar[list[Message]] = []

    def send(self, message: Message) -> None:
        self.sent.append(message)


def test_tenant_disabled_plugin_gets_no_event_hooks() -> None:
    plugins = Plugins(env=NO_ENV)
    recorder = Recorder()
    plugins.register(recorder, "recorder")
    acme = TenantSettings("acme", "Acme", disabled_plugins=["recorder"])
    other = TenantSettings("other", "Other")
    only_log = TenantSettings("solo", "Solo", enabled_plugins=["log"])

    plugins.announce("order_created", acme, {"number": "SO-1"})
    plugins.announce("order_created", other, {"number": "SO-2"})
    plugins.announce("order_created", only_log, {"number": "SO-3"})
    plugins.announce("order_created", acme, {"number": "SO-4"})

    assert recorder.hooks("order_created") == [("other", {"number": "SO-2"})]
    # the same switch hides the plugin's adapters from that tenant only
    assert plugins.notifier("memory", acme) is None
    assert plugins.notifier("memory", other) is MemoryNotifier
    assert plugins.notifier("log", acme) is LogNotifier


# --- the hub calls every hook: test_hook_<name> for each hookspec -----------------------------


@pytest.fixture(autouse=True)
def _fresh_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(MemoryNotifier, "sent", [])


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def app(db_url: str, config_dir: Path, tmp_path: Path, recorder: Recorder) -> Iterator[Flask]:
    """Overrides conftest's app: 'acme' has a memory notifier; 'other' has disabled the
    recorder plugin; the recorder is registered; the in-process worker runs."""
    (config_dir / "tenants" / "acme.toml").write_text(
        '[[notifiers]]\nname = "mem"\nplugin = "memory"\n'
    )
    (config_dir / "tenants" / "other.toml").write_text(
        '[plugins]\ndisabled = ["recorder"]\n\n[[notifiers]]\nname = "mem"\nplugin = "memory"\n'
    )
    app = create_app(
        {
            "database_url": db_url,
            "broker_url": "embedded",
            "config_dir": config_dir,
            "data_dir": tmp_path / "var",
            "secret_key": HUB_SECRET_KEY,
        },
        plugins={"recorder": recorder},
    )
    runtime: Runtime = app.extensions["orderhub"]
    runtime.jobs.start_worker(sweep=False)
    yield app
    runtime.close()


def test_hook_register_notifiers(api: Api, runtime: Runtime) -> None:
    status, _ = api.post("/orders", ORDER)
    assert status == 201
    runtime.jobs.join()
    with runtime.session() as session:
        expected = sorted(session.scalars(select(Event.name)))
    assert "order_created" in expected
    assert sorted(m.event for m in MemoryNotifier.sent) == expected
    assert {m.tenant for m in MemoryNotifier.sent} == {"acme"}
    status, body = api.get("/plugins")
    assert status == 200
    [recorder] = [i for i in body["modules"] if i["name"] == "recorder"]
    assert recorder["provides"] == {"notifiers": ["memory"]}


class ChannelPlugin:
    class Shop(ChannelAdapter):
        name = "shop"

        def verify(self, request: InboundRequest) -> bool:
            return False

        def delivery(self, request: InboundRequest) -> Delivery | None:
            return None

        def parse(self, topic: str | None, body: bytes) -> list[ChannelOrder]:
            return []

    @hookimpl
    def register_channels(self) -> list[type]:
        return [self.Shop, StubChannel]


class CarrierPlugin:
    class Post(CarrierAdapter):
        name = "post"

    @hookimpl
    def register_carriers(self) -> list[type]:
        return [self.Post, StubCarrier]


def test_hook_register_channels(api: Api, runtime: Runtime) -> None:
    runtime.plugins.register(ChannelPlugin(), "shops")
    channels = runtime.plugins.adapters("channels")
    assert {"shop": ChannelPlugin.Shop, "stub": StubChannel}.items() <= channels.items()
    status, body = api.get("/plugins")
    assert status == 200
    [info] = [i for i in body["modules"] if i["name"] == "shops"]
    assert info["provides"] == {"channels": ["shop", "stub"]}
    assert info["hooks"] == ["register_channels"]
    assert info["enabled"] is True


def test_hook_register_carriers(api: Api, runtime: Runtime) -> None:
    runtime.plugins.register(CarrierPlugin(), "posts")
    carriers = runtime.plugins.adapters("carriers")
    assert {"post": CarrierPlugin.Post, "stub": StubCarrier}.items() <= carriers.items()
    status, body = api.get("/plugins")
    assert status == 200
    [info] = [i for i in body["modules"] if i["name"] == "posts"]
    assert info["provides"] == {"carriers": ["post", "stub"]}


def test_hook_order_created(api: Api, runtime: Runtime, recorder: Recorder) -> None:
    status, order = api.post("/orders", ORDER)
    assert status == 201
    status, _ = api.post("/orders", ORDER, token=api.tokens["stranger"])
    assert status == 201
    runtime.jobs.join()
    # 'other' disabled the recorder: only acme's order reaches it
    assert recorder.hooks("order_created") == [
        ("acme", {"number": order["number"], "status": "confirmed"})
    ]
    # ... and the recorder's notifier is off for 'other' too: its delivery fails, saying why
    assert {m.tenant for m in MemoryNotifier.sent} == {"acme"}
    with runtime.session() as session:
        failed = session.execute(
            select(Tenant.slug, Event.name, NotificationDelivery.last_error)
            .join(Event, Event.id == NotificationDelivery.event_id)
            .join(Tenant, Tenant.id == NotificationDelivery.tenant_id)
            .where(NotificationDelivery.status == "failed")
        ).all()
    assert ("other", "order_created", "notifier 'mem' (memory) unavailable") in failed
    assert {slug for slug, _, _ in failed} == {"other"}


def test_hook_order_status_changed(api: Api, runtime: Runtime, recorder: Recorder) -> None:
    status, order = api.post("/orders", ORDER)
    assert status == 201
    status, _ = api.post(f"/orders/{order['number']}/cancel", {"reason": "duplicate"})
    assert status == 200
    runtime.jobs.join()
    changes = [(p["from"], p["to"], p["reason"]) for _, p in recorder.hooks("order_status_changed")]
    assert changes.count(("confirmed", "cancelled", "duplicate")) == 1
    with runtime.session() as session:
        assert len(changes) == session.scalar(
            select(func.count()).where(Event.name == "order_status_changed")
        )


def test_hook_order_updated(api: Api, runtime: Runtime, recorder: Recorder) -> None:
    status, order = api.post("/orders", ORDER)
    assert status == 201
    status, _ = api.patch(f"/orders/{order['number']}", {"note": "leave at the door"})
    assert status == 200
    runtime.jobs.join()
    assert recorder.hooks("order_updated") == [("acme", {"number": order["number"]})]


def test_hook_stock_low(api: Api, runtime: Runtime, recorder: Recorder) -> None:
    body = {**ORDER, "lines": [{"sku": "SKU-A", "quantity": 26, "unit_price": "10.00"}]}
    status, _ = api.post("/orders", body)
    assert status == 201
    runtime.jobs.join()
    assert recorder.hooks("stock_low") == [
        ("acme", {"sku": "SKU-A", "available": 4, "threshold": 5})
    ]


def test_hook_stock_replenished(api: Api, runtime: Runtime, recorder: Recorder) -> None:
    status, _ = api.post(
        "/stock/outbound", {"warehouse": "MAIN", "items": [{"sku": "SKU-C", "quantity": 5}]}
    )
    assert status == 200
    status, _ = api.post(
        "/stock/outbound", {"warehouse": "WEST", "items": [{"sku": "SKU-C", "quantity": 4}]}
    )
    assert status == 200
    status, _ = api.post(
        "/stock/inbound", {"warehouse": "MAIN", "items": [{"sku": "SKU-C", "quantity": 3}]}
    )
    assert status == 200
    runtime.jobs.join()
    assert recorder.hooks("stock_low") == [
        ("acme", {"sku": "SKU-C", "available": 1, "threshold": 2})
    ]
    assert recorder.hooks("stock_replenished") == [
        ("acme", {"sku": "SKU-C", "available": 4, "threshold": 2})
    ]


def _tracked(
    api: Api, runtime: Runtime, monkeypatch: pytest.MonkeyPatch, *scans: TrackingEvent
) -> tuple[Shipping, int]:
    """A due shipment the Stub carrier reports ``scans`` for, tracked through the sweeper
    and the track job on the in-process worker (twice: the repeat must tell nobody)."""
    shipping = Shipping(runtime, api)
    now = utcnow()
    shipment_id = shipping.shipment(
        shipping.account(), created_at=now, next_check_at=now - timedelta(minutes=1)
    )
    monkeypatch.setattr(StubCarrier, "scans", {shipping.get(shipment_id).tracking_number: scans})
    for _ in range(2):
        actors.sweep_tracking(runtime)
        runtime.jobs.join()
        with runtime.transaction() as session:
            session.execute(
                update(Shipment).where(Shipment.id == shipment_id).values(next_check_at=now)
            )
    return shipping, shipment_id


def test_hook_shipment_status_changed(
    api: Api, runtime: Runtime, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = utcnow() - timedelta(hours=1)
    shipping, shipment_id = _tracked(
        api, runtime, monkeypatch, TrackingEvent("out_for_delivery", at, "OFD")
    )
    shipment = shipping.get(shipment_id)
    with runtime.session() as session:
        number = session.scalar(select(Order.number).where(Order.id == shipment.order_id))
    assert recorder.hooks("shipment_status_changed") == [
        (
            "acme",
            {
                "number": number,
                "shipment": shipment_id,
                "carrier": "stub",
                "tracking_number": shipment.tracking_number,
                "from": "created",
                "to": "out_for_delivery",
                "reason": None,
                "at": at.isoformat(),
            },
        )
    ]
    subject = f"Order {number}: shipment {shipment.tracking_number} created → out_for_delivery"
    assert subject in {m.subject for m in MemoryNotifier.sent}


def test_hook_delivery_exception(
    api: Api, runtime: Runtime, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = utcnow() - timedelta(hours=1)
    lost = TrackingEvent("exception", at, "LOST", "Parcel missing", "lost")
    shipping, shipment_id = _tracked(api, runtime, monkeypatch, lost)
    shipment = shipping.get(shipment_id)
    with runtime.session() as session:
        number = session.scalar(select(Order.number).where(Order.id == shipment.order_id))
        exception_id = session.scalar(select(DeliveryException.id))
    assert recorder.hooks("delivery_exception") == [
        (
            "acme",
            {
                "id": exception_id,
                "number": number,
                "shipment": shipment_id,
                "carrier": "stub",
                "tracking_number": shipment.tracking_number,
                "kind": "lost",
                "reason": "lost: Parcel missing",
            },
        )
    ]
    subject = f"Order {number}: delivery exception (lost) on {shipment.tracking_number}"
    assert subject in {m.subject for m in MemoryNotifier.sent}


# --- docs and tests as contract (in the manner of Datasette) ---------------------------------


def _plugin_section(readme: str) -> str:
    """The README section whose heading mentions writing or authoring plugins, up to the next
    heading of the same or a higher level."""
    lines, fenced = [], False
    for line in readme.splitlines():  # "# comments" inside code blocks are not headings
        if line.startswith("```"):
            fenced = not fenced
        lines.append("" if fenced else line)
    for i, line in enumerate(lines):
        heading = re.match(r"(#+)\s+(.*)", line)
        if heading and re.search(r"(writ|author).*plugin", heading[2], re.IGNORECASE):
            level = len(heading[1])
            section = [line]
            for rest in lines[i + 1 :]:
                other = re.match(r"(#+)\s", rest)
                if other and len(other[1]) <= level:
                    break
                section.append(rest)
            return "\n".join(section)
    raise AssertionError(
        "README.md has no plugin-authoring section (a heading such as '## Writing plugins')"
    )


@pytest.mark.parametrize("hook", HOOKS)
def test_readme_documents_hook(hook: str) -> None:
    readme = ROOT / "README.md"
    assert readme.exists(), "README.md is missing"
    section = _plugin_section(readme.read_text(encoding="utf-8"))
    assert re.search(rf"`{hook}\b", section), (
        f"hook {hook} is not described in README.md's plugin-authoring section "
        f"(write it in backticks, e.g. `{hook}`)"
    )


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_test(hook: str) -> None:
    tested = set()
    for path in Path(__file__).parent.glob("test_*.py"):
        tested.update(re.findall(r"^def test_hook_(\w+)\(", path.read_text(), re.MULTILINE))
    assert hook in tested, f"no test_hook_{hook} test proves the hub calls {hook}"


def test_hook_portal_link(api: Api, runtime: Runtime, recorder: Recorder, client: Any) -> None:
    from web_support import Web

    api.post("/orders", ORDER)
    visitor = Web(client)
    visitor.get("/portal/acme/")
    runtime.settings.public_url = "https://hub.example"  # links need the public address
    assert visitor.post("/portal/acme/link", {"email": "ann@example.com"}).status_code == 200
    runtime.jobs.join()
    [(tenant, payload)] = recorder.hooks("portal_link")
    assert tenant == "acme" and set(payload) == {"customer_id", "url", "expires_at"}
    assert payload["url"].startswith("https://hub.example/portal/acme/signin/")


# --- tickets ---------------------------------------------------------------------------------

QUESTION = {"kind": "question", "subject": "Where is it?", "body": "Still waiting",
            "customer": {"email": "ann@example.com"}, "priority": "urgent"}


def test_hook_ticket_created(api: Api, runtime: Runtime, recorder: Recorder) -> None:
    status, ticket = api.post("/tickets", QUESTION)
    assert status == 201, ticket
    runtime.jobs.join()
    assert recorder.hooks("ticket_created") == [("acme", {
        "number": ticket["number"], "kind": "question", "priority": "urgent",
        "customer": "ann@example.com"})]


def test_hook_ticket_assigned(api: Api, runtime: Runtime, recorder: Recorder) -> None:
    # The seeded 'service' user is acme's one agent.
    status, ticket = api.post("/tickets", QUESTION)
    assert status == 201 and ticket["assignee"] == "service", ticket
    runtime.jobs.join()
    assert recorder.hooks("ticket_assigned") == [("acme", {
        "number": ticket["number"], "assignee": "service", "assignee_email": None,
        "priority": "urgent"})]


def test_hook_ticket_status_changed(api: Api, runtime: Runtime, recorder: Recorder) -> None:
    _, ticket = api.post("/tickets", QUESTION)
    status, _ = api.patch(f"/tickets/{ticket['number']}", {"status": "resolved"})
    assert status == 200
    runtime.jobs.join()
    assert recorder.hooks("ticket_status_changed") == [
        ("acme", {"number": ticket["number"], "from": "assigned", "to": "resolved"})]


def test_hook_ticket_replied(api: Api, runtime: Runtime, recorder: Recorder) -> None:
    _, ticket = api.post("/tickets", QUESTION)
    number = ticket["number"]
    # a note for staff and the customer's own message are no answer
    api.post(f"/tickets/{number}/messages", {"body": "VIP, be quick", "internal": True})
    api.post(f"/tickets/{number}/messages", {"body": "Any news?", "from_customer": True})
    status, _ = api.post(f"/tickets/{number}/messages", {"body": "It ships today."},
                         token=api.tokens["service"])
    assert status in (200, 201)
    runtime.jobs.join()
    customer_id = recorder.hooks("ticket_replied")[0][1]["customer_id"]
    assert isinstance(customer_id, int)
    assert recorder.hooks("ticket_replied") == [("acme", {
        "number": number, "subject": "Where is it?", "body": "It ships today.",
        "agent": "service", "customer_id": customer_id, "order_number": None})]


def _sla_check(runtime: Runtime, minutes_after: int) -> None:
    from hub.core import ticket_sla

    with runtime.transaction() as session:
        tenant_id = session.scalar(select(Tenant.id).where(Tenant.slug == "acme"))
        ticket_sla.check(session, tenant_id, runtime.tenant_settings("acme").tickets,
                         utcnow() + timedelta(days=30, minutes=minutes_after))
    runtime.jobs.join()


def test_hook_ticket_sla_warning(api: Api, runtime: Runtime, recorder: Recorder) -> None:
    _, ticket = api.post("/tickets", QUESTION)
    with runtime.transaction() as session:
        session.execute(update(Ticket).values(
            first_reply_due=utcnow() + timedelta(days=30, minutes=30),
            resolution_due=utcnow() + timedelta(days=90)))
    _sla_check(runtime, 0)
    [(tenant, payload)] = recorder.hooks("ticket_sla_warning")
    assert (tenant, payload["number"], payload["clock"], payload["assignee"]) == (
        "acme", ticket["number"], "first_reply", "service")
    assert recorder.hooks("ticket_sla_breached") == []


def test_hook_ticket_sla_breached(api: Api, runtime: Runtime, recorder: Recorder) -> None:
    _, ticket = api.post("/tickets", QUESTION)
    _sla_check(runtime, 0)  # a month on: both clocks are long past
    clocks = sorted(p["clock"] for _, p in recorder.hooks("ticket_sla_breached"))
    assert clocks == ["first_reply", "resolution"]
    assert {p["number"] for _, p in recorder.hooks("ticket_sla_breached")} == {ticket["number"]}


# --- customer care and reviews ---------------------------------------------------------------


def _care(
    runtime: Runtime, recorder: Recorder, kind: str, now: datetime, **timing: Any
) -> dict[str, Any]:
    """One sweep of a single care rule of ``kind`` at ``now``; the one hook call it made."""
    sweep(runtime, now, rules({"name": kind.replace("_", "-"), "kind": kind, **timing}))
    runtime.jobs.join()
    [(tenant, payload)] = recorder.hooks(kind)
    assert tenant == "acme"
    return payload


def test_hook_review_request(api: Api, runtime: Runtime, recorder: Recorder) -> None:
    number, at = delivered_order(runtime, api)
    payload = _care(runtime, recorder, "review_request", at + timedelta(days=7), days=7)
    assert (payload["number"], payload["rule"], payload["customer"]) == (
        number, "review-request", "ann@example.com")


def test_hook_delay_apology(api: Api, runtime: Runtime, recorder: Recorder) -> None:
    shipping = Shipping(runtime, api)
    shipment_id = shipping.shipment(shipping.account())
    with runtime.transaction() as session:
        shipment = session.get(Shipment, shipment_id)
        number = session.scalar(select(Order.number).where(Order.id == shipment.order_id))
        delivery_exceptions.open_exception(session, shipment, "delayed", "late",
                                           order_number=number)
        tracking_number = shipment.tracking_number
    payload = _care(runtime, recorder, "delay_apology", utcnow())
    assert (payload["number"], payload["tracking_number"]) == (number, tracking_number)


def test_hook_satisfaction_survey(api: Api, runtime: Runtime, recorder: Recorder) -> None:
    status, ticket = api.post("/tickets", {"kind": "complaint", "subject": "Broken",
                                           "body": "It broke", "customer": {
                                               "email": "ann@example.com"}})
    assert status == 201
    assert api.patch(f"/tickets/{ticket['number']}", {"status": "resolved"})[0] == 200
    payload = _care(runtime, recorder, "satisfaction_survey", utcnow() + timedelta(hours=25))
    assert (payload["ticket"], payload["number"]) == (ticket["number"], None)


def test_hook_win_back(api: Api, runtime: Runtime, recorder: Recorder) -> None:
    number = placed_order(api)
    payload = _care(runtime, recorder, "win_back", care.add_months(utcnow(), 6), months=6)
    assert (payload["last_order"], payload["months"]) == (number, 6)


def test_hook_birthday_greeting(api: Api, runtime: Runtime, recorder: Recorder) -> None:
    placed_order(api, {**ORDER, "customer": {"email": "ann@example.com",
                                             "birthday": "1990-07-04"}})
    payload = _care(runtime, recorder, "birthday_greeting", datetime(2031, 7, 4, 9, tzinfo=UTC))
    assert (payload["customer"], payload["day"]) == ("ann@example.com", "2031-07-04")


def test_hook_anniversary_greeting(api: Api, runtime: Runtime, recorder: Recorder) -> None:
    placed_order(api)
    today = utcnow()
    later = today.replace(year=today.year + 2, day=min(today.day, 28))
    with runtime.transaction() as session:
        session.execute(update(Customer).values(created_at=today.replace(day=later.day)))
    payload = _care(runtime, recorder, "anniversary_greeting", later)
    assert payload["years"] == 2


def test_hook_review_created(api: Api, runtime: Runtime, recorder: Recorder) -> None:
    number, _ = delivered_order(runtime, api)
    status, made = api.post("/reviews", {"order": number, "sku": "SKU-B", "rating": 5,
                                         "title": "Nice"})
    assert status == 201, made
    runtime.jobs.join()
    assert recorder.hooks("review_created") == [("acme", {
        "id": made["id"], "sku": "SKU-B", "rating": 5, "number": number,
        "verified_buyer": True, "title": "Nice"})]
