"""Posting a test delivery to the hub's own public webhook URL, and saying what came back.

The URL is the operator's ``public_url`` (never anything a tenant wrote), so this is the hub
calling itself through whatever stands in front of it: a proxy, a load balancer, a tunnel.
"""

from __future__ import annotations

from typing import Any

import requests

TIMEOUT = 10


def send(url: str, headers: dict[str, str], body: bytes) -> dict[str, Any]:
    """{"url", "ok", "status", "message"}: ``ok`` when the hub answered 200 (reached, and
    the signature matched)."""
    try:
        answer = requests.post(
            url, data=body, headers=headers, timeout=TIMEOUT, allow_redirects=False
        )
    except requests.RequestException as exc:
        return {
            "url": url,
            "ok": False,
            "status": None,
            "message": f"could not reach the webhook URL: {type(exc).__name__}",
        }
    status = answer.status_code
    if status == 200:
        message = "the hub received the test delivery and its signature matched"
    elif status == 401:
        message = (
            "a hub answered but refused the signature: the public URL may lead to"
            " another hub (with another secret key)"
        )
    elif status == 404:
        message = (
            "the server at the webhook URL does not know this connection: the public"
            " URL may lead somewhere else"
        )
    elif 300 <= status < 400:
        message = (
            f"the webhook URL redirects ({status}); channels do not follow redirects,"
            " so set public_url to the final address"
        )
    else:
        message = f"the webhook URL answered {status}"
    return {"url": url, "ok": status == 200, "status": status, "message": message}
