"""Every error leaves as ``{"error": {"code", "message", "details"}}`` with a 4xx for bad input;
a 500 is always our bug, logged with its traceback and answered without internals.

An answer stays small whatever was sent: the message and each detail are capped, and so is
the number of details, so a huge bad request never comes back as a huge answer. ``details``
is never null: an empty list when there is nothing to add.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import HTTPException

from hub.core.errors import HubError

logger = logging.getLogger("orderhub.web")

MAX_MESSAGE = 500
MAX_DETAILS = 50
MAX_DETAIL_TEXT = 300


def error_body(status: int, code: str, message: str, details: Any = None) -> Response:
    shown = [] if details is None else _capped(details, 0)
    response = jsonify(
        {"error": {"code": code, "message": _cap(str(message), MAX_MESSAGE), "details": shown}}
    )
    response.status_code = status
    return response


def _capped(value: Any, depth: int) -> Any:
    """``value`` with at most ``MAX_DETAILS`` entries per list or object, texts cut to
    ``MAX_DETAIL_TEXT``, and nothing nested deeper than a few levels."""
    if isinstance(value, str):
        return _cap(value, MAX_DETAIL_TEXT)
    if isinstance(value, list | tuple):
        return [_capped(v, depth + 1) for v in value[:MAX_DETAILS]] if depth < 4 else []
    if isinstance(value, dict):
        if depth >= 4:
            return {}
        items = list(value.items())[:MAX_DETAILS]
        return {_cap(str(k), MAX_DETAIL_TEXT): _capped(v, depth + 1) for k, v in items}
    return value


def _cap(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def install(app: Flask) -> None:
    @app.errorhandler(HubError)
    def _hub_error(exc: HubError) -> ResponseReturnValue:
        response = error_body(exc.status, exc.code, exc.message, exc.details)
        response.headers.update(getattr(exc, "headers", None) or {})  # Retry-After
        return response

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> ResponseReturnValue:
        code = (exc.name or "error").lower().replace(" ", "_")
        message = exc.description or exc.name
        if exc.code == 413:
            message = "the request body is too large"
        response = error_body(exc.code or 500, code, message)
        for name, value in exc.get_headers():
            if name.lower() == "allow":
                response.headers[name] = value
        return response

    @app.errorhandler(IntegrityError)
    def _integrity(exc: IntegrityError) -> ResponseReturnValue:
        # A uniqueness race the service's own check could not see (two requests at once).
        logger.info("integrity error answered as 409: %s", exc.orig)
        return error_body(
            409, "conflict", "the change conflicts with data written at the same time; try again"
        )

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> ResponseReturnValue:
        logger.exception("unhandled error")
        return error_body(500, "internal_error", "an internal error occurred; it was logged")
