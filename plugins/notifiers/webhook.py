"""The ``webhook`` notifier: each event as a JSON POST signed per Standard Webhooks.

- Body ``{"type": <event>, "timestamp": <when it happened>, "data": {<payload>, "tenant"}}``,
  thin: ids and states, for the receiver to fetch more through the API.
- Headers ``webhook-id`` (the message's id, the same on every attempt: the receiver's
  de-duplication key), ``webhook-timestamp`` (this attempt, Unix seconds) and
  ``webhook-signature``: ``v1,<base64 HMAC-SHA256 of "id.timestamp.body">`` under the
  ``whsec_`` secret, and under ``previous_secret`` too while a secret is being rotated.
- A 2xx is success. Anything else is retried by the hub with growing waits (a Retry-After is
  honoured), except 410 Gone, which disables the notifier. Redirects are never followed.
  15 s to answer.
- The URL is tenant input: the hub's outbound checks refuse an internal or plain-http host
  (unless the operator allows it) when the settings are read and on every connection.
- Errors name the endpoint's host only: a URL's path can be a secret of its own.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import urlsplit

from hub import hookimpl
from hub.core.adapters import Gone, Message, Notifier, TryLater, Undeliverable
from hub.core.errors import Invalid
from hub.core.http import HttpError, OutboundRefused
from hub.core.schema_errors import summary

TIMEOUT = 15.0
PREFIX = "whsec_"
SECRET = {
    "type": "string",
    "pattern": "^whsec_[A-Za-z0-9+/]+={0,2}$",
    "maxLength": 200,
    "description": "whsec_ and the base64 of 24 to 64 random bytes",
}


class EndpointTrouble(TryLater):
    """The endpoint did not take the message (not a 2xx, no answer): the hub retries, no
    sooner than ``retry_after`` seconds when the endpoint said so."""


def sign(secret: str, message_id: str, timestamp: str, body: bytes) -> str:
    """One ``v1,`` signature: HMAC-SHA256 over ``id.timestamp.body`` with the secret's bytes."""
    key = base64.b64decode(secret.removeprefix(PREFIX))
    digest = hmac.new(key, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


class WebhookNotifier(Notifier):
    name = "webhook"
    title = "Signed JSON POSTs to a URL (Standard Webhooks)"
    secret_settings = ("secret", "previous_secret")
    outbound_settings = ("url",)
    # Seconds since the epoch for webhook-timestamp (tests replace it).
    clock: ClassVar[Callable[[], float]] = staticmethod(time.time)
    settings_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "required": ["url", "secret"],
        "properties": {
            "url": {"type": "string", "pattern": "^https?://", "maxLength": 2000},
            "secret": SECRET,
            "previous_secret": SECRET,
        },
    }

    @classmethod
    def validate_settings(cls, settings: Any) -> None:
        super().validate_settings(settings)
        found = []
        for key in ("secret", "previous_secret"):
            if key in settings:
                try:
                    size = len(base64.b64decode(settings[key].removeprefix(PREFIX), validate=True))
                except (binascii.Error, ValueError):
                    size = 0
                if not 24 <= size <= 64:
                    found.append(
                        {
                            "field": f"settings.{key}",
                            "problem": "must be whsec_ and the base64 of 24 to 64 random bytes",
                        }
                    )
        if found:
            raise Invalid(f"{cls.name} {summary(found)}", found)

    def body(self, message: Message) -> bytes:
        when = message.occurred_at or datetime.now(UTC)
        document = {
            "type": message.event,
            "timestamp": when.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "data": {**message.data, "tenant": message.tenant},
        }
        return json.dumps(document, separators=(",", ":"), ensure_ascii=False, default=str).encode()

    def headers(self, message: Message, body: bytes, timestamp: str) -> dict[str, str]:
        secrets = [self.settings["secret"], self.settings.get("previous_secret")]
        return {
            "Content-Type": "application/json",
            "webhook-id": message.id,
            "webhook-timestamp": timestamp,
            "webhook-signature": " ".join(
                sign(s, message.id, timestamp, body) for s in secrets if s
            ),
        }

    def send(self, message: Message) -> str | None:
        body = self.body(message)
        headers = self.headers(message, body, str(int(self.clock())))
        parts = urlsplit(self.settings["url"])
        where = f"{parts.scheme}://{parts.hostname}"
        try:
            self.http.request(
                "POST",
                self.settings["url"],
                data=body,
                headers=headers,
                timeout=TIMEOUT,
                retries=0,
                allow_redirects=False,
            )
        except OutboundRefused as refused:
            reason = refused.message.removeprefix("not sent: ")
            raise Undeliverable(f"not sent to {where}: {reason}") from None
        except HttpError as err:
            if err.status == 410:
                raise Gone(
                    f"{where} answered 410 Gone: the endpoint is gone, so the notifier is disabled"
                ) from None
            said = err.message
            if err.status is not None and 300 <= err.status < 400:
                said = f"{err.status} (a redirect, which is never followed)"
            raise EndpointTrouble(
                f"POST {where} → {said}", getattr(err, "retry_after", None)
            ) from None
        return None


@hookimpl
def register_notifiers() -> list[type[Notifier]]:
    return [WebhookNotifier]
