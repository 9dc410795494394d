"""Signed links in customers' messages: unsubscribe from a kind of message, review an order,
answer a ticket's satisfaction survey. Customers are not users, so the link itself is the
credential: its token names the tenant and the record it is for, signed with the hub's secret
key under a salt per purpose (a review link never works as an unsubscribe link).

A token that is forged, altered, expired, for another purpose, or naming a record its tenant
does not have is refused the same way, saying nothing of why (``LinkInvalid``)."""

from __future__ import annotations

import hashlib
from typing import Any

from itsdangerous import BadData, URLSafeTimedSerializer

from hub.core.errors import NotFound

# Purpose → (path under the hub's public URL, how long a link works in seconds; None: always).
# An unsubscribe link must keep working long after the message (30 days at least, by law in
# places); a review link lasts a season, a survey link a month.
PURPOSES: dict[str, tuple[str, int | None]] = {
    "unsubscribe": ("/care/unsubscribe/", None),
    "review": ("/care/review/", 90 * 86400),
    "survey": ("/care/survey/", 30 * 86400),
}
MAX_TOKEN = 500


class LinkInvalid(NotFound):
    """Any token the hub will not honour: one answer for all, so a guesser learns nothing."""

    def __init__(self) -> None:
        super().__init__("this link is not valid (or no longer valid)")


def _serializer(secret_key: str, purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(
        secret_key,
        salt=f"orderhub.care.{purpose}",
        signer_kwargs={"digest_method": hashlib.sha256},
    )


def sign(secret_key: str, purpose: str, data: dict[str, Any]) -> str:
    return str(_serializer(secret_key, purpose).dumps(data))


def read(secret_key: str, purpose: str, token: str) -> dict[str, Any]:
    """The data a valid token carries (a dict with an integer tenant ``t``); LinkInvalid for
    anything else."""
    if len(token) > MAX_TOKEN:
        raise LinkInvalid
    try:
        data = _serializer(secret_key, purpose).loads(token, max_age=PURPOSES[purpose][1])
    except BadData:
        raise LinkInvalid from None
    if not isinstance(data, dict) or not isinstance(data.get("t"), int):
        raise LinkInvalid
    return data


def url(public_url: str | None, secret_key: str, purpose: str, data: dict[str, Any]) -> str | None:
    """The link for a message; None while the hub has no public URL to put in it."""
    if not public_url:
        return None
    return f"{public_url}{PURPOSES[purpose][0]}{sign(secret_key, purpose, data)}"
