"""Domain errors. The web edge maps each to its HTTP status; the CLI prints its message."""

from __future__ import annotations

from typing import Any


class HubError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class NotFound(HubError):
    status = 404
    code = "not_found"


class Invalid(HubError):
    """The request is well-formed but its content is wrong (unknown SKU, bad quantity …)."""

    status = 422
    code = "validation_failed"


class Conflict(HubError):
    """The request clashes with the current state (illegal transition, duplicate key …)."""

    status = 409
    code = "conflict"


class InsufficientStock(Conflict):
    code = "insufficient_stock"


def line_problem(line: int, problem: str, error: type[HubError] = Invalid, **more: Any) -> HubError:
    """A problem with one line of what was sent (a CSV file's line counting its header, an
    order's or a batch's line counting from 1), in the shape every 422 has: ``details`` lists
    the problem, here naming ``line N`` as its field and the line's number for a program."""
    return error(
        f"line {line}: {problem}",
        [{"field": f"line {line}", "problem": problem, "line": line, **more}],
    )


class IllegalTransition(Conflict):
    code = "illegal_transition"


class Forbidden(HubError):
    """The caller is known but may not do this (an approval level above their role)."""

    status = 403
    code = "forbidden"


class Unauthorized(HubError):
    """No valid credentials: the API answers 401."""

    status = 401
    code = "unauthorized"


class TokenExpired(Unauthorized):
    code = "token_expired"
