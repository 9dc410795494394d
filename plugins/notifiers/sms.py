"""The ``sms`` notifier: a text message to the recipient's phone through an SMS gateway with
Twilio's Messages API (Twilio itself, or a gateway that offers the same API at ``api_base``).

``POST {api_base}/2010-04-01/Accounts/{account_sid}/Messages.json`` with the form fields To,
From (or MessagingServiceSid) and Body, basic auth with the account SID and auth token; the
answer (201) carries the message's ``sid``, which the hub keeps. The text is the template's
``short`` part in the recipient's language.

A refusal that trying again cannot mend (an invalid number, a recipient who replied STOP,
credentials refused) fails the message at once; 429 and 5xx are retried by the hub. The
gateway has no idempotency key: a request whose answer was lost may, when retried, send the
text twice — rare, and better than not at all for what the hub sends (shipping news).
"""

from __future__ import annotations

import json
from typing import Any, ClassVar
from urllib.parse import quote

from hub import hookimpl
from hub.core.adapters import Message, Notifier, TryLater, Undeliverable
from hub.core.http import AuthError, HttpError, OutboundRefused
from plugins.notifiers import _templates

API_BASE = "https://api.twilio.com"
TIMEOUT = 15.0
# The gateway's documented error codes that say what to fix; others are named by number.
REFUSALS = {
    21211: "the 'To' number is not a valid phone number",
    21408: "the account may not send to that region",
    21606: "the 'From' number cannot send text messages",
    21610: "the recipient has opted out (replied STOP)",
    21612: "the gateway cannot reach that number",
    21614: "the 'To' number cannot receive text messages",
}


class GatewayTrouble(TryLater):
    """The gateway could not take the message now (429, 5xx, no answer): the hub retries."""


class SmsNotifier(Notifier):
    name = "sms"
    title = "Text messages through an SMS gateway with Twilio's Messages API"
    addressed = "phone"
    secret_settings = ("auth_token",)
    outbound_settings = ("api_base",)
    settings_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "required": ["account_sid", "auth_token"],
        "anyOf": [{"required": ["from"]}, {"required": ["messaging_service_sid"]}],
        "properties": {
            "account_sid": {"type": "string", "pattern": "^[A-Za-z0-9]{2,64}$"},
            "auth_token": {"type": "string", "minLength": 1, "maxLength": 200},
            # An E.164 number or an alphanumeric sender id.
            "from": {"type": "string", "pattern": "^(\\+[1-9][0-9]{6,14}|[A-Za-z0-9 ]{1,11})$"},
            "messaging_service_sid": {"type": "string", "pattern": "^[A-Za-z0-9]{2,64}$"},
            "api_base": {"type": "string", "pattern": "^https?://", "maxLength": 500},
            "templates": _templates.TEMPLATES_SCHEMA,
        },
    }

    def send(self, message: Message) -> str | None:
        recipient = message.recipient
        if recipient is None or not recipient.address:
            raise Undeliverable("no recipient: route this notifier's events with to = [...]")
        try:
            _, parts = _templates.render(
                message.event,
                recipient.language,
                message.context,
                self.settings.get("templates"),
                ("short",),
            )
        except _templates.TemplateProblem as problem:
            raise Undeliverable(str(problem)) from None
        sid = self.settings["account_sid"]
        form = {"To": recipient.address, "Body": parts["short"]}
        if self.settings.get("messaging_service_sid"):
            form["MessagingServiceSid"] = self.settings["messaging_service_sid"]
        else:
            form["From"] = self.settings["from"]
        base = self.settings.get("api_base", API_BASE).rstrip("/")
        url = f"{base}/2010-04-01/Accounts/{quote(sid, safe='')}/Messages.json"
        try:
            answer = self.http.json(
                "POST",
                url,
                data=form,
                auth=(sid, self.settings["auth_token"]),
                timeout=TIMEOUT,
                retries=0,
                allow_redirects=False,
            )
        except OutboundRefused as refused:
            raise Undeliverable(refused.message) from None
        except AuthError:
            raise Undeliverable("the gateway refused the account SID or auth token") from None
        except HttpError as err:
            raise _classified(err) from None
        if not isinstance(answer, dict) or not isinstance(answer.get("sid"), str):
            raise GatewayTrouble("the gateway answered without a message sid")
        if answer.get("status") in ("failed", "undelivered"):
            raise Undeliverable(f"the gateway could not send it ({answer.get('error_code')})")
        return str(answer["sid"])


def _classified(err: HttpError) -> Exception:
    """A gateway error as the hub should treat it: a 4xx with a documented code is final."""
    if err.retryable or err.status is None:
        return GatewayTrouble(f"the gateway: {err.message}", getattr(err, "retry_after", None))
    code = _code(err.body)
    if code in REFUSALS:
        return Undeliverable(f"the gateway refused the message: {REFUSALS[code]} ({code})")
    if code is not None:
        return Undeliverable(f"the gateway refused the message (error {code})")
    return Undeliverable(f"the gateway refused the message ({err.status})")


def _code(body: str | None) -> int | None:
    try:
        code = json.loads(body or "").get("code")
    except (ValueError, AttributeError):
        return None
    return code if isinstance(code, int) else None


@hookimpl
def register_notifiers() -> list[type[Notifier]]:
    return [SmsNotifier]
