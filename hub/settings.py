"""Settings: ``config/hub.toml``, ``config/tenants/<slug>.toml`` and ``ORDERHUB_*`` variables.

Every file is validated against a JSON Schema at start-up, so a typo stops the hub with the
file, the key and what is wrong instead of surfacing as a strange failure hours later. Secrets
are written as ``{"$env": "NAME"}`` and resolved here; literals in config are for non-secrets.
"""

from __future__ import annotations

import os
import secrets
import tomllib
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from jsonschema import Draft202012Validator

from hub.core.care_rules import CARE_SCHEMA, REVIEWS_SCHEMA, CareRules, care_rules_from
from hub.core.events import EVENT_NAMES
from hub.core.notification_routes import (
    NOTIFICATIONS_SCHEMA,
    Notifications,
    RouteProblem,
)
from hub.core.notification_routes import from_config as notifications_from
from hub.core.outbound import ENTRY_PATTERN as OUTBOUND_ENTRY
from hub.core.outbound import parse_entry as parse_outbound_entry
from hub.core.rules import RULES_SCHEMA, Rules, rules_from
from hub.core.schema_errors import rule_of
from hub.core.ticket_rules import CALENDAR_SCHEMA, TICKETS_SCHEMA, TicketRules, ticket_rules_from

ENV_REF = {
    "type": "object",
    "properties": {"$env": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"}},
    "required": ["$env"],
    "additionalProperties": False,
}
SECRET = {"anyOf": [{"type": "string"}, ENV_REF]}
NAMES = {"type": "array", "items": {"type": "string"}, "uniqueItems": True}

# How a tenant picks among quoted rates (hub.core.rates.choose).
POLICIES = ("cheapest", "fastest", "cheapest_on_time")
SHIPPING_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "policy": {"enum": list(POLICIES)},
        "promise_days": {"type": "integer", "minimum": 0, "maximum": 90},
        "preferred": {
            "type": "object",
            "propertyNames": {"pattern": "^([A-Z]{2}|\\*)$"},
            "additionalProperties": {"type": "string", "minLength": 1, "maxLength": 100},
        },
        "deadline_seconds": {"type": "number", "exclusiveMinimum": 0, "maximum": 120},
    },
}

HOURS = {"type": "number", "exclusiveMinimum": 0, "maximum": 8760}
# [tracking]: how often shipments are checked, when one counts as delayed, when it expires.
TRACKING_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "first_check_hours": HOURS,
        "near_delivery_hours": HOURS,
        "in_transit_hours": HOURS,
        "awaiting_scan_hours": HOURS,
        "quiet_hours": HOURS,
        "quiet_after_hours": HOURS,
        "delayed_after_hours": HOURS,
        "expire_after_days": {"type": "number", "exclusiveMinimum": 0, "maximum": 365},
    },
}

# [service]: returns and refunds (hub.core.returns, hub.core.refunds).
SERVICE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "refund_limit": {"type": "string", "pattern": r"^\d{1,12}(\.\d{1,4})?$"},
        "return_window_days": {"type": "integer", "minimum": 0, "maximum": 3650},
        "quarantine_warehouse": {
            "type": "string",
            "minLength": 1,
            "maxLength": 32,
            "pattern": "^[A-Za-z0-9_.-]+$",
        },
    },
}

HUB_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "database_url": SECRET,
        "broker_url": SECRET,
        "broker_namespace": {"type": "string", "pattern": "^[A-Za-z0-9_.:-]{1,64}$"},
        "secret_key": SECRET,
        "data_dir": {"type": "string"},
        "log_level": {"enum": ["DEBUG", "INFO", "WARNING", "ERROR"]},
        "server": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "host": {"type": "string"},
                "port": {"type": "integer", "minimum": 1, "maximum": 65535},
                "threads": {"type": "integer", "minimum": 1, "maximum": 256},
                # Checked in load() (with a message that names the setting, not its value).
                "public_url": {"type": "string"},
            },
        },
        "worker": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "processes": {"type": "integer", "minimum": 1, "maximum": 64},
                "threads": {"type": "integer", "minimum": 1, "maximum": 256},
                "sweep_seconds": {"type": "number", "exclusiveMinimum": 0},
                "sweep_grace_seconds": {"type": "number", "exclusiveMinimum": 0},
                "max_delivery_attempts": {"type": "integer", "minimum": 1, "maximum": 100},
                "heartbeat_seconds": {"type": "number", "minimum": 1, "maximum": 3600},
                "heartbeat_timeout_seconds": {"type": "number", "minimum": 2, "maximum": 86400},
                # The wait before each retry of a failed notification; its length is the
                # number of retries (see DEFAULT_NOTIFICATION_RETRIES).
                "notification_retry_seconds": {
                    "type": "array",
                    "items": {"type": "number", "minimum": 0, "maximum": 604800},
                    "maxItems": 50,
                },
            },
        },
        "api": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "max_body_bytes": {"type": "integer", "minimum": 1024},
                "max_upload_bytes": {"type": "integer", "minimum": 1024},
                "max_attachment_bytes": {"type": "integer", "minimum": 1024},
                "max_per_page": {"type": "integer", "minimum": 1, "maximum": 10000},
            },
        },
        "plugins": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"disabled": NAMES},
        },
        # Hosts the hub may call although they are not public or not https (tests, on-premise
        # carriers): "host" (any port), "host:port", "[v6]" or "[v6]:port" (hub.core.outbound).
        "outbound": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "allow": {
                    "type": "array",
                    "items": {"type": "string", "pattern": OUTBOUND_ENTRY, "maxLength": 260},
                    "uniqueItems": True,
                },
            },
        },
    },
}


def _config_entry(extra: dict[str, Any]) -> dict[str, Any]:
    """A plugin instance declared in a tenant file (a connection, a carrier account): its
    name, its plugin, its settings, and what else its kind takes."""
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["name", "plugin"],
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 100},
            "plugin": {"type": "string", "minLength": 1, "maxLength": 64},
            "settings": {"type": "object"},
            **extra,
        },
    }


TENANT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
        "order_number_prefix": {"type": "string", "pattern": "^[A-Z0-9-]{0,10}$"},
        "plugins": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"enabled": NAMES, "disabled": NAMES},
        },
        "rules": RULES_SCHEMA,
        "connections": {"type": "array", "items": _config_entry({})},
        "carrier_accounts": {
            "type": "array",
            "items": _config_entry(
                {
                    "services": {
                        "type": "array",
                        "items": {"type": "string", "minLength": 1, "maxLength": 64},
                        "minItems": 1,
                        "uniqueItems": True,
                    },
                    "enabled": {"type": "boolean"},
                }
            ),
        },
        "shipping": SHIPPING_SCHEMA,
        "tracking": TRACKING_SCHEMA,
        "tickets": TICKETS_SCHEMA,
        "calendar": CALENDAR_SCHEMA,
        "care": CARE_SCHEMA,
        "reviews": REVIEWS_SCHEMA,
        "notifications": NOTIFICATIONS_SCHEMA,
        "service": SERVICE_SCHEMA,
        # The customer portal's look: the name customers know the shop by, and a logo file
        # in the config folder's ``logos/`` (a bare file name: the portal reads nothing else).
        "portal": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "title": {"type": "string", "minLength": 1, "maxLength": 100},
                "logo": {
                    "type": "string",
                    "pattern": r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}\.(png|svg|jpg|jpeg|webp)$",
                },
            },
        },
        "notifiers": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name", "plugin"],
                "properties": {
                    "name": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]*$"},
                    "plugin": {"type": "string"},
                    "events": {**NAMES, "items": {"enum": list(EVENT_NAMES)}},
                    "settings": {"type": "object"},
                },
            },
        },
    },
}


# Seconds before each retry of a notification that failed: at once, then longer and longer
# waits over about a day and a half, as webhook senders do (the hub adds jitter), so a
# receiver that is down for an afternoon still gets every message.
DEFAULT_NOTIFICATION_RETRIES = (5, 300, 1800, 7200, 18000, 36000, 36000, 36000)


class ConfigError(Exception):
    """A configuration problem, phrased for the admin who has to fix the file."""

    def __init__(self, file: str, key: str, problem: str) -> None:
        super().__init__(f"{file}: {key}: {problem}" if key else f"{file}: {problem}")
        self.file, self.key, self.problem = file, key, problem


@dataclass(frozen=True)
class Shipping:
    """A tenant's ``[shipping]`` table: which quoted rate to pick (``policy``), the delivery
    promised to customers in working days (for "cheapest_on_time"; a request may carry its own
    date), a preferred carrier account per destination country ("*": any other), and how long
    one carrier may take to quote one shipment before the quote goes on without it."""

    policy: str = "cheapest"
    promise_days: int | None = None
    preferred: dict[str, str] = field(default_factory=dict)
    deadline_seconds: float = 5.0


@dataclass(frozen=True)
class Tracking:
    """A tenant's ``[tracking]`` table (hub.core.tracking). Hours from a label's purchase to
    the first check of its shipment (``first_check``), then until the next check of a
    live shipment: out for delivery or due today / tomorrow (``near_delivery``), moving
    (``in_transit``), label made but no scan yet (``awaiting_scan``), or with no news for
    ``quiet_after`` hours (``quiet``: backs off). A shipment with no scan for
    ``delayed_after_hours`` (or past its estimated / promised date) opens a "delayed" delivery
    exception; one with no news for ``expire_after_days`` expires and is no longer tracked."""

    first_check_hours: float = 1
    near_delivery_hours: float = 1
    in_transit_hours: float = 6
    awaiting_scan_hours: float = 12
    quiet_hours: float = 24
    quiet_after_hours: float = 48
    delayed_after_hours: float = 72
    expire_after_days: float = 30


@dataclass(frozen=True)
class Service:
    """A tenant's ``[service]`` table. ``refund_limit``: the largest refund the ``service``
    role may grant on its own (above it an operator or admin must; 0, the default, leaves
    every refund to them). ``return_window_days``: how many days after delivery a return is
    accepted (the day of delivery is day 0). ``quarantine_warehouse``: the code of the
    warehouse damaged returned goods are booked into, made on first use and never sold
    from."""

    refund_limit: Decimal = Decimal(0)
    return_window_days: int = 30
    quarantine_warehouse: str = "QUARANTINE"


def service_from(raw: dict[str, Any] | None) -> Service:
    raw = dict(raw or {})
    if "refund_limit" in raw:
        raw["refund_limit"] = Decimal(raw["refund_limit"])
    return Service(**raw)


@dataclass
class TenantSettings:
    slug: str
    name: str
    currency: str = "USD"
    order_number_prefix: str = "SO-"
    enabled_plugins: list[str] | None = None
    disabled_plugins: list[str] = field(default_factory=list)
    # [[notifiers]] exactly as written: {"$env": …} references stay references, resolved when
    # a notifier is built (hub.core.notifications), like connections' settings.
    notifiers: list[dict[str, Any]] = field(default_factory=list)
    notifications: Notifications = field(default_factory=Notifications)
    rules: Rules = field(default_factory=Rules)
    # [[connections]] exactly as written: {"$env": …} references stay references (they are
    # stored so and resolved only when an adapter is built); see intake.sync_config_connections.
    connections: list[dict[str, Any]] = field(default_factory=list)
    # [[carrier_accounts]] likewise as written; see carriers.sync_config_accounts.
    carrier_accounts: list[dict[str, Any]] = field(default_factory=list)
    shipping: Shipping = field(default_factory=Shipping)
    tracking: Tracking = field(default_factory=Tracking)
    tickets: TicketRules = field(default_factory=TicketRules)
    service: Service = field(default_factory=Service)
    # [[care.rules]] and [reviews] (hub.core.care_rules).
    care: CareRules = field(default_factory=CareRules)
    # [portal]: title and logo file name (hub.web.portal).
    portal: dict[str, str] = field(default_factory=dict)

    def plugin_enabled(self, name: str) -> bool:
        if name in self.disabled_plugins:
            return False
        return self.enabled_plugins is None or name in self.enabled_plugins


@dataclass
class Settings:
    config_dir: Path
    data_dir: Path
    database_url: str
    broker_url: str
    secret_key: str
    # Key prefix on Redis, so several hubs (or test runs) can share one server.
    broker_namespace: str = "orderhub"
    log_level: str = "INFO"
    host: str = "127.0.0.1"
    port: int = 8000
    # Where the outside world reaches the hub (https://hub.example.com): the base of the
    # webhook URLs the API hands out. None until configured, never taken from a request.
    public_url: str | None = None
    server_threads: int = 8
    worker_processes: int = 1
    worker_threads: int = 4
    sweep_seconds: float = 30.0
    # How long a queued job may take to start before the sweeper queues it again: longer
    # than a backlog takes to drain, or every sweep queues that backlog once more.
    sweep_grace_seconds: float = 60.0
    # Attempts at ingesting one channel delivery before it is rejected as a poison message.
    max_delivery_attempts: int = 5
    # Each worker process writes a heartbeat this often; /readyz counts the workers heard
    # from within heartbeat_timeout_seconds (Redis broker only).
    heartbeat_seconds: float = 10.0
    heartbeat_timeout_seconds: float = 60.0
    notification_retry_seconds: tuple[float, ...] = DEFAULT_NOTIFICATION_RETRIES
    max_body_bytes: int = 1_048_576
    max_upload_bytes: int = 33_554_432
    max_attachment_bytes: int = 10_485_760
    max_per_page: int = 500
    disabled_plugins: list[str] = field(default_factory=list)
    # [outbound] allow: hosts plugins may call over http or at internal addresses.
    outbound_allow: list[str] = field(default_factory=list)
    tenants: dict[str, TenantSettings] = field(default_factory=dict)

    @property
    def embedded_broker(self) -> bool:
        return self.broker_url in ("embedded", "stub://", "")

    def tenant(self, slug: str) -> TenantSettings:
        return self.tenants.get(slug) or TenantSettings(slug=slug, name=slug)


def load(overrides: dict[str, Any] | None = None, env: dict[str, str] | None = None) -> Settings:
    """Defaults, then hub.toml, then ORDERHUB_* variables, then explicit overrides (tests)."""
    env = dict(os.environ if env is None else env)
    overrides = dict(overrides or {})
    config_dir = Path(
        overrides.pop("config_dir", None) or env.get("ORDERHUB_CONFIG_DIR") or "config"
    )
    hub_file = config_dir / "hub.toml"
    raw = _read_toml(hub_file, HUB_SCHEMA) if hub_file.exists() else {}
    raw = _resolve_env(raw, str(hub_file), "", env)

    data_dir = Path(
        overrides.pop("data_dir", None)
        or env.get("ORDERHUB_DATA_DIR")
        or raw.get("data_dir")
        or "var"
    )
    database_url = (
        overrides.pop("database_url", None)
        or env.get("ORDERHUB_DATABASE_URL")
        or raw.get("database_url")
        or f"sqlite:///{(data_dir / 'orderhub.db')}"
    )
    broker_url = (
        overrides.pop("broker_url", None)
        or env.get("ORDERHUB_BROKER_URL")
        or raw.get("broker_url")
        or "embedded"
    )
    secret_key = (
        overrides.pop("secret_key", None)
        or env.get("ORDERHUB_SECRET_KEY")
        or raw.get("secret_key")
        or _dev_secret(data_dir)
    )
    for name, key in (
        ("ORDERHUB_LOG_LEVEL", "log_level"),
        ("ORDERHUB_BROKER_NAMESPACE", "broker_namespace"),
    ):
        value, schema = env.get(name), HUB_SCHEMA["properties"][key]
        # variables skip hub.toml's schema, so check them against the same rule
        error = next(Draft202012Validator(schema).iter_errors(value), None) if value else None
        if error is not None:
            raise ConfigError(f"environment variable {name}", key, rule_of(error))
    for i, entry in enumerate(raw.get("outbound", {}).get("allow", [])):
        try:
            parse_outbound_entry(entry)
        except ValueError:
            raise ConfigError(
                str(hub_file), f"outbound.allow[{i}]", "is not a host, host:port, [v6] or [v6]:port"
            ) from None
    server, worker, api = raw.get("server", {}), raw.get("worker", {}), raw.get("api", {})
    if worker.get("heartbeat_timeout_seconds", 60.0) <= worker.get("heartbeat_seconds", 10.0):
        raise ConfigError(
            str(hub_file),
            "worker.heartbeat_timeout_seconds",
            "must be longer than worker.heartbeat_seconds (or live workers count as gone)",
        )
    if env.get("ORDERHUB_PUBLIC_URL"):
        public_url = check_public_url(
            env["ORDERHUB_PUBLIC_URL"], "environment variable ORDERHUB_PUBLIC_URL"
        )
    elif server.get("public_url"):
        public_url = check_public_url(server["public_url"], str(hub_file))
    else:
        public_url = None
    settings = Settings(
        config_dir=config_dir,
        data_dir=data_dir,
        database_url=database_url,
        broker_url=broker_url,
        secret_key=secret_key,
        broker_namespace=env.get("ORDERHUB_BROKER_NAMESPACE")
        or raw.get("broker_namespace", "orderhub"),
        log_level=env.get("ORDERHUB_LOG_LEVEL") or raw.get("log_level", "INFO"),
        host=server.get("host", "127.0.0.1"),
        port=server.get("port", 8000),
        public_url=public_url,
        server_threads=server.get("threads", 8),
        worker_processes=worker.get("processes", 1),
        worker_threads=worker.get("threads", 4),
        sweep_seconds=worker.get("sweep_seconds", 30.0),
        sweep_grace_seconds=worker.get("sweep_grace_seconds", 60.0),
        max_delivery_attempts=worker.get("max_delivery_attempts", 5),
        heartbeat_seconds=worker.get("heartbeat_seconds", 10.0),
        heartbeat_timeout_seconds=worker.get("heartbeat_timeout_seconds", 60.0),
        notification_retry_seconds=tuple(
            worker.get("notification_retry_seconds", DEFAULT_NOTIFICATION_RETRIES)
        ),
        max_body_bytes=api.get("max_body_bytes", 1_048_576),
        max_upload_bytes=api.get("max_upload_bytes", 33_554_432),
        max_attachment_bytes=api.get("max_attachment_bytes", 10_485_760),
        max_per_page=api.get("max_per_page", 500),
        disabled_plugins=raw.get("plugins", {}).get("disabled", []),
        outbound_allow=raw.get("outbound", {}).get("allow", []),
        tenants=load_tenants(config_dir, env),
    )
    for key, value in overrides.items():
        if not hasattr(settings, key):
            raise ConfigError("overrides", key, "is not a setting")
        setattr(settings, key, value)
    return settings


def check_public_url(value: str, where: str) -> str:
    """An absolute http(s) URL with a host and nothing after the path; returned without a
    trailing slash. The message names the setting only: the value may carry credentials."""
    parts = urlsplit(value.strip())
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.query
        or parts.fragment
        or parts.username is not None
    ):
        raise ConfigError(
            where,
            "server.public_url",
            "must be an absolute http:// or https:// URL with a host and no query, fragment or"
            " user: https://<host>[:<port>][/<path>]",
        )
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number or out of range
    except ValueError:
        raise ConfigError(where, "server.public_url", "has an invalid port") from None
    return urlunsplit(parts).rstrip("/")


def load_tenants(config_dir: Path, env: dict[str, str]) -> dict[str, TenantSettings]:
    tenants = {}
    for path in sorted((config_dir / "tenants").glob("*.toml")):
        raw = _read_toml(path, TENANT_SCHEMA)
        connections = raw.pop("connections", [])
        carrier_accounts = raw.pop("carrier_accounts", [])
        notifiers = raw.pop("notifiers", [])
        # Checked now (an unset variable stops the start), resolved when a notifier is built.
        _resolve_env(notifiers, str(path), "notifiers", env)
        raw = _resolve_env(raw, str(path), "", env)
        try:
            notifications = notifications_from(raw.get("notifications"), notifiers)
        except RouteProblem as problem:
            raise ConfigError(str(path), problem.key, problem.problem) from None
        plugins = raw.get("plugins", {})
        tenants[path.stem] = TenantSettings(
            slug=path.stem,
            name=raw.get("name", path.stem),
            currency=raw.get("currency", "USD"),
            order_number_prefix=raw.get("order_number_prefix", "SO-"),
            enabled_plugins=plugins.get("enabled"),
            disabled_plugins=plugins.get("disabled", []),
            notifiers=notifiers,
            notifications=notifications,
            rules=rules_from(raw.get("rules")),
            connections=connections,
            carrier_accounts=carrier_accounts,
            shipping=Shipping(**raw.get("shipping", {})),
            tracking=Tracking(**raw.get("tracking", {})),
            tickets=_ticket_rules(path, raw),
            service=service_from(raw.get("service")),
            care=_care_rules(path, raw),
            portal=raw.get("portal", {}),
        )
    return tenants


def _ticket_rules(path: Path, raw: dict[str, Any]) -> TicketRules:
    try:
        return ticket_rules_from(raw.get("tickets"), raw.get("calendar"))
    except ValueError as exc:
        key, _, problem = str(exc).partition(": ")
        raise ConfigError(str(path), f"calendar.{key}", problem) from None


def _care_rules(path: Path, raw: dict[str, Any]) -> CareRules:
    try:
        return care_rules_from(raw.get("care"), raw.get("reviews"))
    except ValueError as exc:
        key, _, problem = str(exc).partition(": ")
        raise ConfigError(str(path), key, problem) from None


def _read_toml(path: Path, schema: dict[str, Any]) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), "", f"is not valid TOML: {exc}") from exc
    errors = sorted(Draft202012Validator(schema).iter_errors(data), key=lambda e: list(e.path))
    if errors:
        err = errors[0]
        key = ".".join(str(p) for p in err.absolute_path) or "(top level)"
        # The rule, never the value: a file's values may be secrets (see schema_errors).
        problem = rule_of(err)
        if err.validator == "additionalProperties":
            problem = f"unknown key ({err.message})"  # names the key, not its value
        elif err.validator == "required":
            problem = err.message  # "'plugin' is a required property": a key's name
        raise ConfigError(str(path), key, problem)
    return data


def _resolve_env(value: Any, file: str, key: str, env: dict[str, str]) -> Any:
    if isinstance(value, dict):
        if set(value) == {"$env"}:
            name = value["$env"]
            if name not in env:
                raise ConfigError(file, key, f"environment variable {name} is not set")
            return env[name]
        return {k: _resolve_env(v, file, f"{key}.{k}" if key else k, env) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_env(v, file, f"{key}[{i}]", env) for i, v in enumerate(value)]
    return value


def _dev_secret(data_dir: Path) -> str:
    """Embedded mode keeps a generated key in the data folder so restarts keep working."""
    path = data_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    path.write_text(key)
    path.chmod(0o600)
    return key
