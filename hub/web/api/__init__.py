"""The JSON REST API under /api/v1. Importing the route modules registers their routes."""

from __future__ import annotations

from flask import Blueprint


def blueprint() -> Blueprint:
    from hub.web.api import (  # noqa: F401
        admin,
        catalog,
        channels,
        logistics,
        notifications,
        openapi,
        orders,
        reports,
        returns,
        reviews,
        shipments,
        stock,
        tickets,
        tracking,
    )
    from hub.web.api.framework import bp

    return bp
