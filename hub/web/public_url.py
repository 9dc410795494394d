"""The hub's address as the outside world knows it: the configured ``public_url``, never the
``Host`` header of a request. The caller writes that header, so a forged one would put the
caller's host into the webhook URLs the hub hands out (and a channel would post orders there).
"""

from __future__ import annotations

from flask import current_app, request

PROBLEM = (
    "the hub does not know its public address: set [server] public_url in hub.toml"
    " (or ORDERHUB_PUBLIC_URL) to the https:// address channels reach it at"
)


def external_url(path: str) -> str | None:
    """``path`` (starting with "/") under the public URL; None when none is configured."""
    base = current_app.extensions["orderhub"].settings.public_url
    return f"{base}{path}" if base else None


def addressed_url() -> str:
    """The URL a sender (a channel, a carrier) posted to, for signatures that cover it: this
    request's path and query under the public URL, which is what the sender was given. Without
    a public URL, the URL this server saw."""
    base = current_app.extensions["orderhub"].settings.public_url
    if not base:
        return request.url
    query = request.query_string.decode("latin-1")
    return f"{base}{request.path}" + (f"?{query}" if query else "")
