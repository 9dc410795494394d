"""What a carrier's failure means to whoever asked the hub to buy a label, void one or check
tracking: one mapping, so every route answers a carrier's trouble alike and none with a 500.

- The carrier refused (``BusinessError``: an address it cannot deliver to, a service it does
  not offer on that lane, a label it will not void): **422** ``carrier_refused`` with the
  carrier's words as its plugin reworded them. Trying again will not help; changing the
  request may.
- The carrier is over its quota, unreachable, slow or failing (``RateLimited``, ``Timeout``,
  ``Unavailable``, ``CircuitOpen``): **503** (or **502** when it answered with a server error
  other than 503 — a bad gateway), ``details.retryable`` true and ``Retry-After`` when the
  carrier said how long. A buy whose request may have reached the carrier says so
  (``details.label_may_exist``): the carrier may have made a label the hub never heard of.
- The carrier refused the hub's credentials (``AuthError``): **502** ``carrier_auth_failed``,
  telling an admin to fix the account's settings — the caller did nothing wrong, and nothing
  they change will help.
- An answer the plugin cannot read, or a plugin that fails: **502**, not retryable (a buy
  might have been made), logged with its traceback when it is a plugin's bug.

The carrier's words are capped (``MESSAGE_LENGTH``): an error page must not become an answer.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from hub.core.adapters import PayloadError
from hub.core.errors import HubError
from hub.core.http import (
    AuthError,
    BusinessError,
    CircuitOpen,
    HttpError,
    ParseError,
    RateLimited,
    Timeout,
    Unavailable,
)

logger = logging.getLogger("orderhub.carriers")

MESSAGE_LENGTH = 500


class CarrierFailed(HubError):
    """A carrier call that failed, as the API answers it (status and code per instance)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: dict[str, Any],
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message, details)
        self.status, self.code = status, code
        self.headers = headers or {}

    @property
    def retryable(self) -> bool:
        return bool(self.details.get("retryable"))


def said(exc: BaseException) -> str:
    """The carrier's words as the plugin (or the hub's client) put them, capped."""
    text = exc.message if isinstance(exc, HttpError) else str(exc)
    text = " ".join((text or type(exc).__name__).split())
    return text if len(text) <= MESSAGE_LENGTH else text[: MESSAGE_LENGTH - 1] + "…"


def failed(exc: BaseException, *, account: str, plugin: str, doing: str) -> HubError:
    """The answer for ``exc``, raised while carrier account ``account`` (of ``plugin``) was
    asked to ``doing`` ("buy the label", "void the label", "report tracking"). A HubError
    (a plugin refusing its settings, say) is returned as it is."""
    if isinstance(exc, HubError):
        return exc
    who = f"carrier account {account!r} ({plugin})"
    details: dict[str, Any] = {"carrier_account": account, "carrier": plugin, "retryable": False}
    buying = doing == "buy the label"
    if isinstance(exc, BusinessError):
        return CarrierFailed(
            422, "carrier_refused", f"{who} refused to {doing}: {said(exc)}", details
        )
    if isinstance(exc, AuthError):
        return CarrierFailed(
            502,
            "carrier_auth_failed",
            f"{who} refused the hub's credentials ({said(exc)}); an admin must fix the carrier"
            " account's settings",
            details,
        )
    if isinstance(exc, RateLimited | Timeout | Unavailable | CircuitOpen):
        details["retryable"] = True
        if buying and not exc.unprocessed:
            details["label_may_exist"] = True
        headers: dict[str, str] = {}
        if isinstance(exc, RateLimited) and exc.retry_after is not None:
            details["retry_after"] = math.ceil(exc.retry_after)
            headers["Retry-After"] = str(details["retry_after"])
        what = {
            RateLimited: "is over its rate limit",
            Timeout: "did not answer in time",
            CircuitOpen: "failed repeatedly and is left alone for a while",
        }.get(type(exc), "is unavailable")
        status, code = 503, "carrier_unavailable"
        if isinstance(exc, Unavailable) and exc.status is not None and exc.status != 503:
            status, code, what = 502, "carrier_error", "answered with a server error"
        caveat = (
            "; it may have made a label before failing: check the carrier account before"
            " trying again"
            if details.get("label_may_exist")
            else "; try again later"
        )
        return CarrierFailed(
            status, code, f"{who} {what} ({said(exc)}){caveat}", details, headers or None
        )
    if isinstance(exc, ParseError | PayloadError):
        return CarrierFailed(
            502,
            "carrier_bad_answer",
            f"{who} answered with something OrderHub cannot read ({said(exc)})"
            + ("; it may have made a label: check the carrier account" if buying else ""),
            details,
        )
    if isinstance(exc, HttpError):
        return CarrierFailed(502, "carrier_error", f"{who} failed to {doing}: {said(exc)}", details)
    logger.error("the %s plugin failed to %s", plugin, doing, exc_info=exc)
    return CarrierFailed(
        502,
        "carrier_plugin_failed",
        f"the {plugin} plugin failed to {doing} ({type(exc).__name__}); it was logged",
        details,
    )
