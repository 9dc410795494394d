"""The plugin manager: built-ins first, then the ``orderhub`` entry-point group, then the
config's disable list. Core code calls plugins only through the typed methods here.

Environment switches: ``ORDERHUB_LOAD_PLUGINS`` (comma-separated entry-point names; only these
load) and ``ORDERHUB_TRACE_PLUGINS=1`` (log every hook call).
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pluggy

from hub import hookspecs
from hub.core import plugin_settings
from hub.core.adapters import Adapter, CarrierAdapter, ChannelAdapter, Notifier
from hub.core.config_sync import check_settings
from hub.core.notification_routes import RouteProblem, check
from hub.core.secret_box import SecretBox
from hub.settings import ConfigError

if TYPE_CHECKING:
    from hub.settings import Settings

logger = logging.getLogger("orderhub.plugins")

DEFAULT_PLUGINS = (
    "plugins.notifiers.log",
    "plugins.notifiers.email",
    "plugins.notifiers.webhook",
    "plugins.notifiers.sms",
    "plugins.channels.shopify",
    "plugins.channels.woocommerce",
    "plugins.channels.amazon",
    "plugins.channels.shopee",
    "plugins.channels.storefront",
    "plugins.carriers.table_rate",
    "plugins.carriers.easypost",
    "plugins.carriers.ups",
)

# How listings name one member of each family (GET /api/v1/plugins, ``orderhub plugins``).
KINDS = {"channels": "channel", "carriers": "carrier", "notifiers": "notifier"}
# The sections of a tenant file that name a plugin, and the family each names one of.
CONFIGURED = {"notifiers": "notifiers", "connections": "channels", "carrier_accounts": "carriers"}

FAMILIES: dict[str, tuple[str, type[Adapter]]] = {
    "channels": ("register_channels", ChannelAdapter),
    "carriers": ("register_carriers", CarrierAdapter),
    "notifiers": ("register_notifiers", Notifier),
}


# What an adapter must implement for each capability it declares in ``capabilities``, per
# family: a channel that says "pull" without a poll() of its own would only fail on its
# first poll, hours after it loaded, so it is refused at load with the reason instead.
# Families without an entry declare no capabilities.
REQUIRED_METHODS: dict[str, dict[str, tuple[str, ...]]] = {
    "channels": {
        "push": ("verify", "delivery", "parse"),
        "pull": ("poll", "parse"),
        "fulfilment": ("push_fulfilment",),
        "refund": ("push_refund",),
    },
    "carriers": {
        "rating": ("quote",),
        "shipping": ("create_shipment",),
        "tracking": ("track",),
        "tracking_push": ("verify_push", "parse_push"),
        "cancel": ("cancel",),
        "return_label": ("create_return_label",),
    },
}


@dataclass
class PluginInfo:
    name: str
    source: str
    hooks: list[str] = field(default_factory=list)
    provides: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class PluginFailure:
    name: str
    source: str
    error: str


class Plugins:
    def __init__(self, disabled: Iterable[str] = (), env: dict[str, str] | None = None) -> None:
        env = dict(os.environ if env is None else env)
        self.pm = pluggy.PluginManager("orderhub")
        self.pm.add_hookspecs(hookspecs)
        self.failures: list[PluginFailure] = []
        self.generation = 0  # bumped whenever plugins change, for callers that cache answers
        self.sources: dict[str, str] = {}
        self.disabled = set(disabled)
        for name in self.disabled:
            self.pm.set_blocked(name)
        for module_name in DEFAULT_PLUGINS:
            self._register(importlib.import_module(module_name), _short(module_name), "built-in")
        only = {n.strip() for n in env.get("ORDERHUB_LOAD_PLUGINS", "").split(",") if n.strip()}
        for ep in entry_points(group="orderhub"):
            if only and ep.name not in only:
                continue
            source = f"entry point {ep.value}" + (f" ({ep.dist.name})" if ep.dist else "")
            try:
                plugin = ep.load()
            except Exception as exc:  # a broken plugin is reported, never fatal
                self._fail(ep.name, source, f"{type(exc).__name__}: {exc}")
                continue
            self._register(plugin, ep.name, source)
        if env.get("ORDERHUB_TRACE_PLUGINS"):
            self.pm.trace.root.setwriter(logger.info)
            self.pm.enable_tracing()
        self._adapters: dict[str, dict[str, tuple[type[Adapter], str]]] = {}
        for family in FAMILIES:
            self._adapters[family] = self._collect(family)

    def register(self, plugin: ModuleType | object, name: str, source: str = "test") -> None:
        """Register one more plugin at run time (tests, embedding applications)."""
        self._register(plugin, name, source)
        self.generation += 1
        for family in FAMILIES:
            self._adapters[family] = self._collect(family)

    def _register(self, plugin: ModuleType | object, name: str, source: str) -> None:
        if self.pm.is_blocked(name):
            return
        try:
            self.pm.register(plugin, name=name)
            self.pm.check_pending()
        except Exception as exc:
            if self.pm.get_plugin(name) is not None:
                self.pm.unregister(name=name)
            self._fail(name, source, f"{type(exc).__name__}: {exc}")
            return
        self.sources[name] = source

    def _fail(self, name: str, source: str, error: str) -> None:
        logger.error("plugin %s (%s) failed to load: %s", name, source, error)
        self.failures.append(PluginFailure(name, source, error))

    def _collect(self, family: str) -> dict[str, tuple[type[Adapter], str]]:
        hook_name, base = FAMILIES[family]
        found: dict[str, tuple[type[Adapter], str]] = {}
        for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
            try:
                classes = impl.function() or []
            except Exception as exc:
                self._fail(
                    impl.plugin_name,
                    self.sources.get(impl.plugin_name, "?"),
                    f"{hook_name} raised {type(exc).__name__}: {exc}",
                )
                continue
            for cls in classes:
                problem = _adapter_problem(cls, base, REQUIRED_METHODS.get(family))
                if problem:
                    self._fail(impl.plugin_name, self.sources.get(impl.plugin_name, "?"), problem)
                elif cls.name not in found:  # later registrations win in pluggy's call order
                    found[cls.name] = (cls, impl.plugin_name)
        return found

    # --- typed facade ----------------------------------------------------------------------

    def adapters(self, family: str, tenant: Any = None) -> dict[str, type[Adapter]]:
        """Adapter classes of a family, limited to the plugins a tenant has enabled."""
        return {
            name: cls
            for name, (cls, plugin) in self._adapters[family].items()
            if tenant is None or tenant.plugin_enabled(plugin)
        }

    def notifier(self, name: str, tenant: Any = None) -> type[Notifier] | None:
        return self.adapters("notifiers", tenant).get(name)  # type: ignore[return-value]

    def implements(self, event: str, tenant: Any) -> bool:
        """Whether any plugin the tenant has enabled implements the event's hook."""
        return any(
            tenant.plugin_enabled(impl.plugin_name)
            for impl in getattr(self.pm.hook, event).get_hookimpls()
        )

    def announce(self, event: str, tenant: Any, payload: dict[str, Any]) -> None:
        """Call the event's hook on every plugin the tenant has enabled."""
        blocked = [
            self.pm.get_plugin(name)
            for name in self.sources
            if not tenant.plugin_enabled(name) and self.pm.get_plugin(name) is not None
        ]
        caller = (
            self.pm.subset_hook_caller(event, remove_plugins=blocked)
            if blocked
            else getattr(self.pm.hook, event)
        )
        caller(tenant=tenant.slug, payload=payload)

    def describe(self) -> list[PluginInfo]:
        infos = []
        for name, plugin in self.pm.list_name_plugin():
            if plugin is None:
                continue
            hooks = sorted(h.name for h in self.pm.get_hookcallers(plugin) or [])
            provides = {
                family: sorted(n for n, (_, p) in adapters.items() if p == name)
                for family, adapters in self._adapters.items()
            }
            infos.append(
                PluginInfo(
                    name,
                    self.sources.get(name, "?"),
                    hooks,
                    {k: v for k, v in provides.items() if v},
                )
            )
        return sorted(infos, key=lambda i: i.name)

    def check_config(self, settings: Settings) -> None:
        """ConfigError for the first plugin a tenant file names (a notifier, a connection, a
        carrier account) that is not installed: found at start-up (``create_app``, ``orderhub
        serve``, ``orderhub worker``), not when the first notification silently goes nowhere.
        The message names the unknown plugin and the installed ones."""
        for slug, tenant in sorted(settings.tenants.items()):
            for section, family in CONFIGURED.items():
                known = self._adapters[family]
                for i, entry in enumerate(getattr(tenant, section)):
                    if entry["plugin"] in known:
                        continue
                    raise ConfigError(
                        str(settings.config_dir / "tenants" / f"{slug}.toml"),
                        f"{section}[{i}].plugin",
                        f"no {KINDS[family]} plugin {entry['plugin']!r} is installed (or it is"
                        f" disabled in hub.toml); installed {KINDS[family]} plugins:"
                        f" {', '.join(sorted(known)) or 'none'}",
                    )
            self._check_notifiers(settings, slug, tenant)

    def _check_notifiers(self, settings: Settings, slug: str, tenant: Any) -> None:
        """Each notifier's settings as its plugin takes them (secrets as references, the
        schema, where it may send), and each route against its notifier (hub.core.
        notification_routes.check): a ConfigError naming the key, never a value."""
        file = str(settings.config_dir / "tenants" / f"{slug}.toml")
        box = SecretBox(settings.secret_key)
        addressed: dict[str, str | None] = {}
        for i, entry in enumerate(tenant.notifiers):
            cls = self._adapters["notifiers"][entry["plugin"]][0]
            label = f"notifier {entry['name']!r}"
            check_settings(cls, label, entry.get("settings", {}), file, f"notifiers[{i}]", box)
            addressed[entry["name"]] = getattr(cls, "addressed", None)
        try:
            check(tenant.notifications, tenant.notifiers, addressed)
        except RouteProblem as problem:
            raise ConfigError(file, problem.key, problem.problem) from None

    def catalogue(self, tenant: Any = None, *, host_details: bool = True) -> dict[str, Any]:
        """The installed channels, carriers and notifiers, each with what it takes to set one
        up: kind, description, capabilities and its settings schema with the secrets marked.
        The one document behind ``GET /api/v1/plugins`` and ``orderhub plugins --json``.

        ``tenant`` adds whether it has each enabled. ``host_details`` adds the plugin modules
        (source, hooks, what each provides) and what failed to load and why: the operator's
        view, which a tenant's non-admin users do not need."""
        items = []
        for family, adapters in self._adapters.items():
            for name, (cls, plugin) in sorted(adapters.items()):
                item: dict[str, Any] = {
                    "name": name,
                    "kind": KINDS[family],
                    "description": cls.title or _first_line(cls.__doc__),
                    "plugin": plugin,
                    "capabilities": sorted(getattr(cls, "capabilities", ())),
                    "settings_schema": plugin_settings.published_schema(cls),
                }
                if tenant is not None:
                    item["enabled"] = tenant.plugin_enabled(plugin)
                items.append(item)
        document: dict[str, Any] = {"items": items, "total": len(items)}
        if host_details:
            modules = []
            for info in self.describe():
                module: dict[str, Any] = {
                    "name": info.name,
                    "source": info.source,
                    "hooks": info.hooks,
                    "provides": info.provides,
                }
                if tenant is not None:
                    module["enabled"] = tenant.plugin_enabled(info.name)
                modules.append(module)
            document["modules"] = modules
            document["failures"] = [
                {"name": f.name, "source": f.source, "error": f.error} for f in self.failures
            ]
        return document


def _first_line(text: str | None) -> str:
    return (text or "").strip().split("\n", 1)[0]


def _short(module_name: str) -> str:
    return module_name.rsplit(".", 1)[-1]


def _adapter_problem(
    cls: object, base: type[Adapter], required: dict[str, tuple[str, ...]] | None = None
) -> str | None:
    if not (isinstance(cls, type) and issubclass(cls, base)):
        return f"{cls!r} is not a {base.__name__} subclass"
    if not isinstance(getattr(cls, "name", None), str) or not cls.name:
        return f"{cls.__name__} has no name"
    abstract = getattr(cls, "__abstractmethods__", ())
    if abstract:
        return f"{cls.__name__} does not implement {', '.join(sorted(abstract))}"
    if required is not None:
        return _capability_problem(cls, base, required)
    return None


def _capability_problem(
    cls: type[Adapter], base: type[Adapter], required: dict[str, tuple[str, ...]]
) -> str | None:
    declared = getattr(cls, "capabilities", None)
    if isinstance(declared, str) or not isinstance(declared, Iterable):
        return f"{cls.__name__}.capabilities must be a set of names, such as frozenset({{'push'}})"
    unknown = sorted(set(declared) - required.keys())
    if unknown:
        return (
            f"{cls.__name__} declares unknown capabilities {', '.join(map(repr, unknown))}"
            f" (known: {', '.join(sorted(required))})"
        )
    missing = []
    for capability in sorted(declared):
        lacking = [
            method
            for method in required[capability]
            if getattr(cls, method, None) is getattr(base, method, None)
        ]
        if lacking:
            missing.append(f"{capability!r} needs {', '.join(lacking)}")
    if missing:
        return f"{cls.__name__} does not implement what it declares: {'; '.join(missing)}"
    return None
