"""One-time sign-in links to the customer portal.

The token is random (``secrets.token_urlsafe(32)``) and only its SHA-256 is stored, with the
customer, an expiry and when it was used. Asking never says whether the address is known,
and using a link is one conditional UPDATE, so two clicks at once cannot both sign in.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from hub.core import events
from hub.core.db import utcnow
from hub.core.models import Customer, PortalLink

LIFETIME = timedelta(minutes=15)
MAX_TOKEN = 200


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def request_link(session: Session, tenant_id: int, email: str, url_for_token: str) -> bool:
    """Issue a link for the tenant's customer with this e-mail (any case) and emit the
    message that carries it; ``url_for_token`` has ``{token}`` where the token goes. Returns
    whether a customer was found — for logs and tests only, never for the visitor."""
    customer_id = session.scalar(
        select(Customer.id)
        .where(
            Customer.tenant_id == tenant_id,
            func.lower(Customer.email) == email.strip().lower(),
        )
        .limit(1)
    )
    if customer_id is None:
        return False
    token = secrets.token_urlsafe(32)
    expires = utcnow() + LIFETIME
    session.add(
        PortalLink(
            tenant_id=tenant_id,
            customer_id=customer_id,
            token_hash=_hash(token),
            expires_at=expires,
        )
    )
    session.flush()
    events.emit(
        session,
        tenant_id,
        events.PORTAL_LINK,
        {
            "customer_id": customer_id,
            "url": url_for_token.format(token=token),
            "expires_at": expires.isoformat(),
        },
    )
    return True


def is_live(session: Session, tenant_id: int, token: str) -> bool:
    """Whether the link would still sign in (for its confirmation page; does not use it)."""
    if not token or len(token) > MAX_TOKEN:
        return False
    return (
        session.scalar(
            select(PortalLink.id).where(
                PortalLink.tenant_id == tenant_id,
                PortalLink.token_hash == _hash(token),
                PortalLink.used_at.is_(None),
                PortalLink.expires_at > utcnow(),
            )
        )
        is not None
    )


def redeem(session: Session, tenant_id: int, token: str) -> int | None:
    """Use the link: its customer's id, or None for an unknown, used or expired one."""
    if not token or len(token) > MAX_TOKEN:
        return None
    now = utcnow()
    row = session.execute(
        update(PortalLink)
        .where(
            PortalLink.tenant_id == tenant_id,
            PortalLink.token_hash == _hash(token),
            PortalLink.used_at.is_(None),
            PortalLink.expires_at > now,
        )
        .values(used_at=now)
        .returning(PortalLink.customer_id)
    ).first()
    return None if row is None else int(row[0])
