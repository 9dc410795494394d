"""The ``email`` notifier against a real SMTP server (aiosmtpd on a free port): both parts in
the recipient's language, the headers that keep it a well-behaved automatic mail, TLS and
login as configured, and what the server refuses — for good, or for now."""

from __future__ import annotations

import re
import smtplib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import watch_secret
from notify_support import Certificate, make_certificate, smtp_server

from hub.core import outbound
from hub.core.adapters import Message, Recipient, Undeliverable
from hub.core.errors import Invalid
from plugins.notifiers.email import EmailNotifier, SmtpTrouble

PASSWORD = "smtp-password-9f3e7a"
FROM = "Acme Store <noreply@acme.test>"
STOCK_LOW = {"sku": "SKU-A", "available": 4, "threshold": 5}


def settings(port: int, **more: Any) -> dict[str, Any]:
    return {"host": "127.0.0.1", "port": port, "security": "none", "from": FROM, **more}


def message(
    recipient: Recipient | None,
    event: str = "stock_low",
    data: dict[str, Any] | None = None,
    **context: Any,
) -> Message:
    data = STOCK_LOW if data is None else data
    return Message(
        tenant="acme",
        event=event,
        subject="Low stock",
        data=data,
        id="msg_0123456789abcdef0123456789abcdef",
        recipient=recipient,
        context={
            **data,
            "tenant": {"slug": "acme", "name": "Acme Store"},
            "product": {"sku": "SKU-A", "name": "Alpha"},
            "recipient": None
            if recipient is None
            else {"name": recipient.name, "address": recipient.address},
            **context,
        },
        occurred_at=datetime(2026, 12, 20, 9, 30, tzinfo=UTC),
    )


@pytest.fixture(autouse=True)
def _allow_local() -> Iterator[None]:
    """The operator allows the local test servers (conftest resets the list after)."""
    outbound.allow(["127.0.0.1", "localhost"])
    yield


@pytest.fixture
def certificate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Certificate:
    """A self-signed certificate the client trusts, as it would a real CA's."""
    cert = make_certificate(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert.ca_file))
    return cert


# --- what arrives ------------------------------------------------------------------------------


def test_a_low_stock_mail_arrives_in_simplified_chinese_with_both_parts() -> None:
    with smtp_server() as server:
        notifier = EmailNotifier(settings(server.port))
        provider_id = notifier.send(message(Recipient("lager@acme.test", "仓库", "zh-CN")))

    [mail] = server.mailbox.received
    assert (mail.sender, mail.recipients) == ("noreply@acme.test", ["lager@acme.test"])
    parsed = mail.message
    assert parsed["Subject"] == "库存不足：SKU-A（Alpha）仅剩 4 件"
    assert parsed.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in parsed.iter_parts()] == ["text/plain", "text/html"]
    text, html = mail.part("plain"), mail.part("html")
    assert "可用库存：4" in text and "预警阈值：5" in text and "<" not in text
    assert "<td>4</td>" in html and "请及时补货或调拨库存。" in html
    assert '<html lang="zh-CN">' in html
    assert parsed["Content-Language"] == "zh-CN"
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert parsed["Message-ID"] == "<msg_0123456789abcdef0123456789abcdef@acme.test>"
    assert provider_id == parsed["Message-ID"]
    assert parsed["To"].addresses[0].display_name == "仓库"
    assert parsed["From"] == FROM


def test_english_is_the_default_and_a_close_language_is_used_when_there_is_one() -> None:
    with smtp_server() as server:
        notifier = EmailNotifier(settings(server.port))
        notifier.send(message(Recipient("ops@acme.test", None, "de")))  # no German: English
        notifier.send(message(Recipient("tw@acme.test", None, "zh-TW")))  # Chinese: zh-CN
    english, chinese = server.mailbox.received
    assert english.message["Subject"] == "Low stock: SKU-A (Alpha), 4 left"
    assert english.message["Content-Language"] == "en"
    assert "Available: 4" in english.part("plain")
    assert chinese.message["Content-Language"] == "zh-CN"


def test_every_attempt_carries_the_same_message_id() -> None:
    with smtp_server() as server:
        notifier = EmailNotifier(settings(server.port))
        first = notifier.send(message(Recipient("ops@acme.test")))
        again = notifier.send(message(Recipient("ops@acme.test")))
    assert first == again
    assert [m.message["Message-ID"] for m in server.mailbox.received] == [first, again]


def test_a_customer_mail_links_the_tracking_page_and_escapes_what_the_customer_wrote() -> None:
    data = {"number": "SO-7", "from": "confirmed", "to": "shipped", "reason": None}
    with smtp_server() as server:
        EmailNotifier(settings(server.port)).send(
            message(
                Recipient("ann@example.com", "Ann <script>", "en"),
                "order_status_changed",
                data,
                tracking_url="https://track.example.com/1Z999?x=1&y=2",
                shipment={"tracking_number": "1Z999"},
            )
        )
    [mail] = server.mailbox.received
    assert mail.message["Subject"] == "Acme Store: order SO-7 is shipped"
    assert "Track your parcel: https://track.example.com/1Z999?x=1&y=2" in mail.part("plain")
    html = mail.part("html")
    assert '<a href="https://track.example.com/1Z999?x=1&amp;y=2">' in html
    assert "Ann &lt;script&gt;" in html and "<script>" not in html
    assert "Hello Ann <script>," in mail.part("plain")  # text is not HTML: shown as written


def test_the_tenants_own_template_replaces_the_built_in_part_it_writes() -> None:
    own = {"zh-CN": {"stock_low": {"subject": "【补货】{{ sku }} 剩 {{ available }}"}}}
    with smtp_server() as server:
        EmailNotifier(settings(server.port, templates=own)).send(
            message(Recipient("lager@acme.test", None, "zh-CN"))
        )
    [mail] = server.mailbox.received
    assert mail.message["Subject"] == "【补货】SKU-A 剩 4"
    assert "可用库存：4" in mail.part("plain")  # the parts it did not write stay built-in


def test_a_tenant_template_runs_sandboxed() -> None:
    own = {"en": {"stock_low": {"text": "{{ ''.__class__.__mro__[1].__subclasses__() }}"}}}
    refused = pytest.raises(Undeliverable, match="template en/stock_low/text failed: Security")
    with smtp_server() as server, refused:
        notifier = EmailNotifier(settings(server.port, templates=own))
        notifier.send(message(Recipient("ops@acme.test")))
    assert server.mailbox.received == []


# --- TLS and login -----------------------------------------------------------------------------


def test_starttls_then_login(certificate: Certificate) -> None:
    watch_secret(PASSWORD)
    with smtp_server(starttls=certificate.server_context(), login=("acme", PASSWORD)) as server:
        EmailNotifier(
            settings(
                server.port,
                host="localhost",
                security="starttls",
                username="acme",
                password=PASSWORD,
            )
        ).send(message(Recipient("ops@acme.test")))
    assert server.mailbox.logins == [("PLAIN", "accepted")]
    assert len(server.mailbox.received) == 1


def test_implicit_tls(certificate: Certificate) -> None:
    with smtp_server(implicit_tls=certificate.server_context()) as server:
        EmailNotifier(settings(server.port, host="localhost", security="tls")).send(
            message(Recipient("ops@acme.test"))
        )
    assert len(server.mailbox.received) == 1


def test_starttls_is_never_skipped_when_the_server_does_not_offer_it() -> None:
    with smtp_server() as server:
        notifier = EmailNotifier(settings(server.port, security="starttls"))
        with pytest.raises(Undeliverable, match="does not offer STARTTLS"):
            notifier.send(message(Recipient("ops@acme.test")))
    assert server.mailbox.received == []


def test_a_certificate_the_client_cannot_verify_is_refused(tmp_path: Path) -> None:
    untrusted = make_certificate(tmp_path)  # SSL_CERT_FILE not set: nobody vouches for it
    with smtp_server(implicit_tls=untrusted.server_context()) as server:
        notifier = EmailNotifier(settings(server.port, host="localhost", security="tls"))
        with pytest.raises(Undeliverable, match=r"certificate .* could not be verified"):
            notifier.send(message(Recipient("ops@acme.test")))


def test_a_refused_login_fails_for_good_without_the_password(certificate: Certificate) -> None:
    watch_secret(PASSWORD)
    with smtp_server(starttls=certificate.server_context(), login=("acme", "other")) as server:
        notifier = EmailNotifier(
            settings(
                server.port,
                host="localhost",
                security="starttls",
                username="acme",
                password=PASSWORD,
            )
        )
        with pytest.raises(Undeliverable) as refused:
            notifier.send(message(Recipient("ops@acme.test")))
    assert str(refused.value) == "the SMTP server localhost refused the login (535)"
    assert PASSWORD not in str(refused.value)


# --- refusals: for good, or for now ---------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "raised", "text"),
    [
        ("550 5.1.1 no such user", Undeliverable, "refused the recipient (550)"),
        ("451 4.3.0 try again later", SmtpTrouble, "deferred the recipient (451)"),
    ],
)
def test_a_refused_recipient(reply: str, raised: type[Exception], text: str) -> None:
    """A 5xx is final (the message fails at once); a 4xx is retried."""
    with smtp_server() as server:
        server.mailbox.refuse["gone@acme.test"] = reply
        with pytest.raises(raised, match=re.escape(f"the SMTP server 127.0.0.1 {text}")):
            EmailNotifier(settings(server.port)).send(message(Recipient("gone@acme.test")))


def test_a_server_that_does_not_answer_is_tried_again_later() -> None:
    with smtp_server() as server:
        port = server.port
    with pytest.raises(SmtpTrouble, match=f"could not reach the SMTP server 127.0.0.1:{port}"):
        EmailNotifier(settings(port, timeout=2)).send(message(Recipient("ops@acme.test")))


def test_without_a_recipient_there_is_nobody_to_write_to() -> None:
    with pytest.raises(Undeliverable, match="no recipient"):
        EmailNotifier(settings(2525)).send(message(None))


# --- settings ---------------------------------------------------------------------------------


def problems(notifier_settings: dict[str, Any]) -> list[dict[str, str]]:
    with pytest.raises(Invalid) as refused:
        EmailNotifier.validate_settings(notifier_settings)
    return refused.value.details


def test_an_internal_host_needs_the_operators_allow_list() -> None:
    outbound.allow([])
    found = problems(settings(2525))
    assert found == [{"field": "settings.host", "problem": outbound.NOT_PUBLIC}]


def test_plain_smtp_only_to_a_host_the_operator_allows() -> None:
    public = "93.184.216.34"  # a public address: the checks need no connection
    found = problems({**settings(25), "host": public})
    assert [p["field"] for p in found] == ["settings.security"]
    assert "in clear" in found[0]["problem"]
    EmailNotifier.validate_settings({**settings(465), "host": public, "security": "tls"})


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"from": "not an address"}, "settings.from"),
        ({"reply_to": "nobody"}, "settings.reply_to"),
        ({"username": "acme"}, "settings.password"),  # a username needs its password
        ({"security": "ssl"}, "settings.security"),
        ({"port": 0}, "settings.port"),
        ({"timeout": 0}, "settings.timeout"),
        ({"templates": {"en": {"stock_low": {"subject": "{% if %}"}}}}, None),
        ({"templates": {"en": {"stock_gone": {"subject": "x"}}}}, None),
    ],
)
def test_bad_settings_name_the_field(change: dict[str, Any], field: str | None) -> None:
    found = problems({**settings(2525), **change})
    fields = [p["field"] for p in found]
    if field is not None:
        assert field in fields
    else:
        assert any(f.startswith("settings.templates") for f in fields), found


def test_a_template_that_does_not_compile_is_named_with_its_line() -> None:
    found = problems(
        {**settings(2525), "templates": {"zh-CN": {"stock_low": {"html": "<p>\n{% if %}"}}}}
    )
    assert found == [
        {
            "field": "settings.templates.zh-CN.stock_low.html",
            "problem": "does not compile: line 2: Expected an expression, got 'end of statement"
            " block'",
        }
    ]


def test_smtplib_is_what_the_plugin_speaks() -> None:
    """Guards the pinned connection: it is smtplib's own client with one method replaced."""
    from plugins.notifiers.email import _PinnedSMTP, _PinnedSMTPS

    assert issubclass(_PinnedSMTP, smtplib.SMTP) and issubclass(_PinnedSMTPS, smtplib.SMTP_SSL)


def test_every_event_has_every_part_in_every_built_in_language() -> None:
    """A new event without its texts would fail every message about it at send time."""
    from jinja2 import Environment, FileSystemLoader

    from hub.core.events import EVENT_NAMES
    from plugins.notifiers import _templates

    env = Environment(loader=FileSystemLoader(_templates.FOLDER))
    env.filters["say"] = lambda value: value
    assert set(_templates.BUILT_IN) == {"en", "zh-CN"}
    for language in _templates.BUILT_IN:
        for event in EVENT_NAMES:
            template = env.get_template(f"{language}/{event}.jinja")
            assert set(template.blocks) == set(_templates.PARTS), (language, event)
