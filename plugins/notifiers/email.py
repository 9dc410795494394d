"""The ``email`` notifier: each message as an e-mail (plain text and HTML) to its recipient, in
the recipient's language, through the tenant's SMTP server.

- STARTTLS (port 587), implicit TLS (465) or, only to a host the operator allows, plain SMTP;
  the server's certificate is verified; login when a username is set; an explicit timeout
  (smtplib's default is to wait for ever).
- The SMTP host is tenant input: it is resolved once and checked like any outbound connection
  (no internal address unless the operator allows the host), and the connection is made to
  that very address.
- The Message-ID is made from the message's id, so every attempt carries the same one (a
  receiving server can tell a repeat); it is returned for the hub to keep. ``Auto-Submitted:
  auto-generated`` keeps auto-responders from answering. A message with an unsubscribe link
  (customer care) carries it as ``List-Unsubscribe`` with RFC 8058 one-click.
- What the server refuses for good (the login, the recipient, a 5xx) fails the message at
  once; what may mend (a 4xx, the server unreachable) is retried by the hub.
"""

from __future__ import annotations

import smtplib
import ssl
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from typing import Any, ClassVar, NoReturn

from hub import hookimpl
from hub.core import outbound
from hub.core.adapters import Message, Notifier, TryLater, Undeliverable
from hub.core.errors import Invalid
from hub.core.schema_errors import summary
from plugins.notifiers import _templates

PORTS = {"starttls": 587, "tls": 465, "none": 25}
DEFAULT_TIMEOUT = 15.0


class SmtpTrouble(TryLater):
    """The server could not take the message now (unreachable, a 4xx): the hub retries."""


class _PinnedSMTP(smtplib.SMTP):
    """SMTP to an address checked beforehand; the name stays the host's for TLS and EHLO."""

    def __init__(self, address: str, host: str, port: int, **kw: Any) -> None:
        self._address = address
        super().__init__(host, port, **kw)

    def _get_socket(self, host: str, port: int, timeout: float) -> Any:
        return super()._get_socket(self._address, port, timeout)


class _PinnedSMTPS(smtplib.SMTP_SSL):
    def __init__(self, address: str, host: str, port: int, **kw: Any) -> None:
        self._address = address
        super().__init__(host, port, **kw)

    def _get_socket(self, host: str, port: int, timeout: float) -> Any:
        return super()._get_socket(self._address, port, timeout)


class EmailNotifier(Notifier):
    name = "email"
    title = "E-mail (SMTP) in the recipient's language, text and HTML"
    addressed = "email"
    secret_settings = ("password",)
    settings_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "required": ["host", "from"],
        "properties": {
            "host": {"type": "string", "minLength": 1, "maxLength": 253},
            "port": {"type": "integer", "minimum": 1, "maximum": 65535},
            "security": {"enum": list(PORTS)},
            "username": {"type": "string", "minLength": 1, "maxLength": 254},
            "password": {"type": "string", "minLength": 1, "maxLength": 1000},
            "from": {"type": "string", "minLength": 3, "maxLength": 254},
            "reply_to": {"type": "string", "minLength": 3, "maxLength": 254},
            "timeout": {"type": "number", "exclusiveMinimum": 0, "maximum": 120},
            "templates": _templates.TEMPLATES_SCHEMA,
        },
        "dependentRequired": {"password": ["username"], "username": ["password"]},
    }

    @classmethod
    def validate_settings(cls, settings: Any) -> None:
        """The schema, then what it cannot say: addresses that are addresses, a host the hub
        may connect to, plain SMTP only where the operator allows it, templates that
        compile. Problems name the field, never its value."""
        super().validate_settings(settings)
        found: list[dict[str, str]] = []
        for key in ("from", "reply_to"):
            if key in settings and "@" not in parseaddr(settings[key])[1]:
                found.append({"field": f"settings.{key}", "problem": "is not an e-mail address"})
        security = settings.get("security", "starttls")
        port = settings.get("port", PORTS[security])
        where = f"{settings['host']}:{port}"
        problem = outbound.setting_problem(where)
        if problem is not None:
            found.append({"field": "settings.host", "problem": problem})
        elif security == "none" and not outbound.allowed(settings["host"], port):
            found.append(
                {
                    "field": "settings.security",
                    "problem": '"none" sends mail and password in clear: only to a host the'
                    " operator allows in hub.toml [outbound] allow; use starttls or tls",
                }
            )
        found.extend(_templates.check(settings.get("templates", {})))
        if found:
            raise Invalid(f"{cls.name} {summary(found)}", found)

    def send(self, message: Message) -> str | None:
        recipient = message.recipient
        if recipient is None or not recipient.address:
            raise Undeliverable("no recipient: route this notifier's events with to = [...]")
        try:
            language, parts = _templates.render(
                message.event,
                recipient.language,
                message.context,
                self.settings.get("templates"),
                ("subject", "text", "html"),
            )
        except _templates.TemplateProblem as problem:
            raise Undeliverable(str(problem)) from None
        mail = self.compose(message, language, parts)
        self._deliver(mail)
        return str(mail["Message-ID"])

    def compose(self, message: Message, language: str, parts: dict[str, str]) -> EmailMessage:
        """The e-mail: multipart/alternative, text first, then HTML."""
        assert message.recipient is not None
        sender = self.settings["from"]
        domain = parseaddr(sender)[1].rpartition("@")[2]
        mail = EmailMessage()
        mail["Subject"] = " ".join(parts["subject"].split())
        mail["From"] = sender
        try:
            mail["To"] = Address(
                display_name=message.recipient.name or "", addr_spec=message.recipient.address
            )
        except (ValueError, IndexError):
            raise Undeliverable("the recipient's address is not an e-mail address") from None
        if self.settings.get("reply_to"):
            mail["Reply-To"] = self.settings["reply_to"]
        mail["Date"] = formatdate(usegmt=True)
        mail["Message-ID"] = f"<{message.id}@{domain}>"
        mail["Auto-Submitted"] = "auto-generated"
        unsubscribe = message.context.get("unsubscribe_url")
        if unsubscribe:
            # RFC 8058: mail clients offer "unsubscribe" and POST to the link in one click.
            mail["List-Unsubscribe"] = f"<{unsubscribe}>"
            mail["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        mail.set_content(parts["text"] + "\n")
        mail.add_alternative(_document(parts["html"], language), subtype="html")
        # After the parts: setting content clears the Content-* headers.
        mail["Content-Language"] = language
        return mail

    def _deliver(self, mail: EmailMessage) -> None:
        host = self.settings["host"]
        security = self.settings.get("security", "starttls")
        port = self.settings.get("port", PORTS[security])
        timeout = float(self.settings.get("timeout", DEFAULT_TIMEOUT))
        helo = parseaddr(self.settings["from"])[1].rpartition("@")[2] or "localhost"
        try:
            address = outbound.connect_address(host, port)
            if security == "tls":
                smtp: smtplib.SMTP = _PinnedSMTPS(
                    address,
                    host,
                    port,
                    timeout=timeout,
                    local_hostname=helo,
                    context=ssl.create_default_context(),
                )
            else:
                smtp = _PinnedSMTP(address, host, port, timeout=timeout, local_hostname=helo)
            with smtp:
                if security == "starttls":
                    smtp.starttls(context=ssl.create_default_context())
                if self.settings.get("username"):
                    smtp.login(self.settings["username"], self.settings["password"])
                smtp.send_message(mail)
        except outbound.Refused as refused:
            raise Undeliverable(f"not sent to {host}: {refused}") from None
        except smtplib.SMTPAuthenticationError as exc:
            raise Undeliverable(
                f"the SMTP server {host} refused the login ({exc.smtp_code})"
            ) from None
        except smtplib.SMTPNotSupportedError:
            raise Undeliverable(
                f'the SMTP server {host} does not offer STARTTLS; use security = "tls"'
                " (port 465) if it takes TLS from the start"
            ) from None
        except smtplib.SMTPRecipientsRefused as exc:
            codes = sorted({code for code, _ in exc.recipients.values()})
            _refused(host, "the recipient", codes[-1] if codes else 550)
        except smtplib.SMTPSenderRefused as exc:
            _refused(host, "the sender address", exc.smtp_code)
        except smtplib.SMTPResponseException as exc:
            _refused(host, "the message", exc.smtp_code)
        except ssl.SSLCertVerificationError:
            raise Undeliverable(
                f"the certificate of the SMTP server {host} could not be verified"
            ) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise SmtpTrouble(
                f"could not reach the SMTP server {host}:{port} ({type(exc).__name__})"
            ) from None


def _refused(host: str, what: str, code: int) -> NoReturn:
    """A 5xx is the server's final word; a 4xx asks to try later."""
    if 500 <= code < 600:
        raise Undeliverable(f"the SMTP server {host} refused {what} ({code})")
    raise SmtpTrouble(f"the SMTP server {host} deferred {what} ({code}); trying again later")


def _document(html: str, language: str) -> str:
    """An HTML part as a whole document, unless the template wrote one."""
    if html.lstrip()[:15].lower().startswith(("<!doctype", "<html")):
        return html
    return (
        f'<!DOCTYPE html>\n<html lang="{language}">\n<head><meta charset="utf-8"></head>\n'
        f"<body>\n{html}\n</body>\n</html>\n"
    )


@hookimpl
def register_notifiers() -> list[type[Notifier]]:
    return [EmailNotifier]
