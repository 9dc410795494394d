"""Signature checks shared by the built-in channels that sign a body the same way.

WooCommerce and OrderHub's storefront format both put base64(HMAC-SHA256(secret, raw body))
in a header; one implementation keeps the constant-time comparison and secret rotation in one
place instead of two copies that could drift apart.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable


def base64_hmac_sha256(secret: str, body: bytes) -> str:
    """The signature a sender computes: base64 of the HMAC-SHA256 of the raw body bytes."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def signature_matches(signature: str, body: bytes, secrets: Iterable[str | None]) -> bool:
    """Whether ``signature`` is the body's signature under any configured secret.

    Every configured secret is tried (the old and the new one overlap during a rotation), and
    each comparison is constant-time over bytes, so a header with non-ASCII characters is a
    mismatch rather than a ``TypeError``.
    """
    if not signature:
        return False
    given = signature.strip().encode("utf-8", "replace")
    matched = False
    for secret in secrets:
        if secret:
            expected = base64_hmac_sha256(secret, body).encode("ascii")
            matched |= hmac.compare_digest(given, expected)
    return matched
