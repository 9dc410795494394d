"""Message texts for the built-in notifiers that write to people (e-mail, SMS): per event and
language, built-in or the tenant's own, rendered in a sandboxed Jinja environment.

Templates are tenant data, so they run sandboxed (no attribute of Python's internals, bounded
ranges), HTML parts are autoescaped (a customer's name cannot inject markup) and text parts
are not. A part a tenant does not write falls back to the built-in one.

The built-in templates are ``templates/<language>/<event>.jinja``, each with the blocks
``subject``, ``text``, ``html`` and ``short`` (an SMS). A tenant's own are the notifier
setting ``templates``: ``{language: {event: {part: source}}}``. Both see the message's
context (hub.core.notification_context) plus ``language``, and the filter ``say`` that puts a
status or exception kind into the message's language.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jinja2 import FileSystemLoader, TemplateNotFound, TemplateSyntaxError, pass_context
from jinja2.sandbox import SandboxedEnvironment

from hub.core.events import EVENT_NAMES
from hub.core.notification_routes import LANGUAGE

FOLDER = Path(__file__).resolve().parent / "templates"
PARTS = ("subject", "text", "html", "short")
DEFAULT_LANGUAGE = "en"
BUILT_IN = tuple(sorted(p.name for p in FOLDER.iterdir() if p.is_dir()))
# What a template may be at most, in characters: a whole e-mail's HTML fits.
TEMPLATE_LENGTH = 100_000

# The notifier setting ``templates``, as its settings schema takes it.
TEMPLATES_SCHEMA: dict[str, Any] = {
    "type": "object",
    "propertyNames": LANGUAGE,
    "additionalProperties": {
        "type": "object",
        "propertyNames": {"enum": list(EVENT_NAMES)},
        "additionalProperties": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                part: {"type": "string", "minLength": 1, "maxLength": TEMPLATE_LENGTH}
                for part in PARTS
            },
        },
    },
}

# Statuses and exception kinds as each language says them; anything else is shown as it is.
WORDS: dict[str, dict[str, str]] = {
    "en": {
        "draft": "draft",
        "held": "on hold",
        "awaiting_approval": "awaiting approval",
        "confirmed": "confirmed",
        "partially_shipped": "partly shipped",
        "shipped": "shipped",
        "delivered": "delivered",
        "closed": "closed",
        "returned": "returned",
        "cancelled": "cancelled",
        "info_received": "label created",
        "picked_up": "picked up",
        "in_transit": "in transit",
        "out_for_delivery": "out for delivery",
        "available_for_pickup": "ready for pickup",
        "delivery_failed": "delivery attempt failed",
        "exception": "delivery problem",
        "returned_to_sender": "returned to sender",
        "expired": "no longer tracked",
        "delayed": "delayed",
        "lost": "lost",
        "damaged": "damaged",
        "refused": "refused",
        "address": "address problem",
        "customs": "held in customs",
        "weather": "delayed by weather",
        "failed_attempt": "delivery attempt failed",
        "open": "open",
        "assigned": "being handled",
        "waiting_customer": "waiting for your reply",
        "resolved": "resolved",
        "first_reply": "first reply",
        "resolution": "resolution",
        "low": "low",
        "normal": "normal",
        "high": "high",
        "urgent": "urgent",
        "return": "return",
        "exchange": "exchange",
        "succeeded": "made",
        "failed": "refused by the shop's payment system",
        "manual": "to be made by hand",
        "pending": "on its way",
    },
    "zh-CN": {
        "draft": "草稿",
        "held": "暂缓处理",
        "awaiting_approval": "待审批",
        "confirmed": "已确认",
        "partially_shipped": "部分发货",
        "shipped": "已发货",
        "delivered": "已签收",
        "closed": "已完成",
        "returned": "已退货",
        "cancelled": "已取消",
        "info_received": "已生成运单",
        "picked_up": "已揽收",
        "in_transit": "运输中",
        "out_for_delivery": "派送中",
        "available_for_pickup": "待取件",
        "delivery_failed": "派送未成功",
        "exception": "配送异常",
        "returned_to_sender": "已退回寄件人",
        "expired": "已停止跟踪",
        "delayed": "延误",
        "lost": "丢失",
        "damaged": "破损",
        "refused": "拒收",
        "address": "地址有误",
        "customs": "海关扣留",
        "weather": "天气原因延误",
        "failed_attempt": "派送未成功",
        "open": "待处理",
        "assigned": "处理中",
        "waiting_customer": "等待您的回复",
        "resolved": "已解决",
        "first_reply": "首次回复",
        "resolution": "问题解决",
        "low": "低",
        "normal": "普通",
        "high": "高",
        "urgent": "紧急",
        "return": "退货",
        "exchange": "换货",
        "succeeded": "已完成",
        "failed": "支付系统拒绝退款",
        "manual": "待人工处理",
        "pending": "处理中",
    },
}


@pass_context
def _say(context: Any, value: object) -> object:
    words = WORDS.get(context.get("language", DEFAULT_LANGUAGE), {})
    return words.get(str(value), value) if value is not None else ""


def _environment(html: bool) -> SandboxedEnvironment:
    env = SandboxedEnvironment(
        loader=FileSystemLoader(FOLDER),
        autoescape=html,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.filters["say"] = _say
    return env


_TEXT = _environment(html=False)
_HTML = _environment(html=True)


class TemplateProblem(ValueError):
    """A tenant template that does not compile, or fails to render: where, and Jinja's
    reason (the template's own text, never a setting's value)."""


@functools.lru_cache(maxsize=512)
def _compiled(source: str, html: bool) -> Any:
    return (_HTML if html else _TEXT).from_string(source)


def check(templates: Mapping[str, Any]) -> list[dict[str, str]]:
    """Problems of a tenant's templates, each with its field (``templates.zh-CN.stock_low.
    html``): the ones that do not compile."""
    found = []
    for language, per_event in templates.items():
        for event, parts in per_event.items():
            for part, source in parts.items():
                try:
                    _compiled(source, part == "html")
                except TemplateSyntaxError as exc:
                    found.append(
                        {
                            "field": f"settings.templates.{language}.{event}.{part}",
                            "problem": f"does not compile: line {exc.lineno}: {exc.message}",
                        }
                    )
    return found


def negotiate(wanted: str, available: set[str]) -> str:
    """The language to write in: the one wanted, else one of the same primary language
    (zh-TW → zh-CN), else English."""
    lowered = {a.lower(): a for a in available}
    if wanted.lower() in lowered:
        return lowered[wanted.lower()]
    primary = wanted.split("-", 1)[0].lower()
    for lower, original in sorted(lowered.items()):
        if lower.split("-", 1)[0] == primary:
            return original
    return DEFAULT_LANGUAGE


def render(
    event: str,
    language: str,
    context: Mapping[str, Any],
    tenant_templates: Mapping[str, Any] | None = None,
    parts: tuple[str, ...] = PARTS,
) -> tuple[str, dict[str, str]]:
    """The language used and each asked-for part, rendered. Raises TemplateProblem."""
    own = tenant_templates or {}
    available = set(BUILT_IN) | {lang for lang, events in own.items() if event in events}
    chosen = negotiate(language, available)
    scope = {**context, "language": chosen}
    written = own.get(chosen, {}).get(event, {})
    out: dict[str, str] = {}
    for part in parts:
        html = part == "html"
        try:
            if part in written:
                text = _compiled(written[part], html).render(scope)
            else:
                text = _built_in(event, chosen, part, scope, html)
        except TemplateSyntaxError as exc:
            raise TemplateProblem(
                f"template {chosen}/{event}/{part} does not compile: line {exc.lineno}:"
                f" {exc.message}"
            ) from None
        except Exception as exc:  # a sandbox refusal, a type error in the tenant's template
            raise TemplateProblem(
                f"template {chosen}/{event}/{part} failed: {type(exc).__name__}: {exc}"
            ) from None
        out[part] = text.strip() if part != "html" else text
    return chosen, out


def _built_in(event: str, language: str, part: str, scope: dict[str, Any], html: bool) -> str:
    env = _HTML if html else _TEXT
    try:
        template = env.get_template(f"{language}/{event}.jinja")
    except TemplateNotFound:
        template = env.get_template(f"{DEFAULT_LANGUAGE}/{event}.jinja")
        scope = {**scope, "language": DEFAULT_LANGUAGE}
    return "".join(template.blocks[part](template.new_context(scope)))
