"""``GET /metrics`` (Prometheus text) and the request counters every answer feeds.

Totals only, never per tenant: the endpoint is meant for the operator's Prometheus and is
not signed in, so it names no shop. What the database knows (inbox backlog, open stock
alerts, SLA breaches) and the broker's queue depths are read at scrape time.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Flask, Response, current_app, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, or_, select

from hub.core.db import utcnow
from hub.core.models import InboxEntry, Product, Tenant, Ticket
from hub.metrics import LATENCY, REQUESTS

if TYPE_CHECKING:
    from hub.runtime import Runtime

bp = Blueprint("metrics", __name__)


class HubCollector(Collector):
    """Figures read from the database and the broker when Prometheus asks."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = utcnow()
        with self.runtime.session() as session:
            backlog, oldest = session.execute(
                select(func.count(), func.min(InboxEntry.received_at)).where(
                    InboxEntry.status == "pending"
                )
            ).one()
            # Per tenant, so each count is a range of ix_inbox_tenant_status: the inbox keeps
            # every processed delivery, and a scrape every few seconds must not read them all.
            rejected = sum(
                session.scalar(
                    select(func.count()).where(
                        InboxEntry.tenant_id == tenant_id, InboxEntry.status == "rejected"
                    )
                )
                or 0
                for tenant_id in session.scalars(select(Tenant.id)).all()
            )
            alerts = session.scalar(
                select(func.count()).where(Product.low_stock_since.is_not(None))
            )
            breached = session.scalar(
                select(func.count()).where(
                    Ticket.status.not_in(("resolved", "closed")),
                    or_(
                        Ticket.first_reply_breached_at.is_not(None),
                        Ticket.resolution_breached_at.is_not(None),
                    ),
                )
            )
        if oldest is not None and oldest.tzinfo is None:  # SQLite hands back naive UTC
            oldest = oldest.replace(tzinfo=now.tzinfo)
        yield GaugeMetricFamily(
            "orderhub_inbox_backlog", "Channel deliveries waiting to become orders", backlog
        )
        yield GaugeMetricFamily(
            "orderhub_inbox_oldest_pending_seconds",
            "Age of the oldest delivery still waiting (0 when none waits)",
            (now - oldest).total_seconds() if oldest is not None else 0.0,
        )
        yield GaugeMetricFamily(
            "orderhub_inbox_rejected",
            "Deliveries rejected and not yet replayed or discarded",
            rejected or 0,
        )
        yield GaugeMetricFamily(
            "orderhub_stock_alerts_open", "Products below their low-stock threshold", alerts or 0
        )
        yield GaugeMetricFamily(
            "orderhub_tickets_sla_breached",
            "Open tickets past a first-reply or resolution deadline",
            breached or 0,
        )
        depth = GaugeMetricFamily(
            "orderhub_queue_depth", "Jobs waiting in the broker, by queue", labels=["queue"]
        )
        for queue, count in self.runtime.jobs.queue_depths().items():
            depth.add_metric([queue], count)
        yield depth


@bp.get("/metrics")
def metrics() -> Response:
    runtime = current_app.extensions["orderhub"]
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        counted = CollectorRegistry()
        multiprocess.MultiProcessCollector(counted)  # every process's counters, added up
    else:
        counted = REGISTRY
    read = CollectorRegistry()
    read.register(HubCollector(runtime))
    body = generate_latest(counted) + generate_latest(read)
    return Response(body, content_type=CONTENT_TYPE_LATEST)


def install(app: Flask) -> None:
    """Time and count every answer by its route's pattern (never the raw path: one series
    per route, whatever order numbers or ids fill it)."""

    @app.before_request
    def _start() -> None:
        g.metrics_started = time.perf_counter()

    @app.after_request
    def _count(response: Any) -> Any:
        started = g.pop("metrics_started", None)
        if started is not None:
            route = request.url_rule.rule if request.url_rule is not None else "unmatched"
            LATENCY.labels(route, request.method).observe(time.perf_counter() - started)
            REQUESTS.labels(route, request.method, str(response.status_code)).inc()
        return response

    app.register_blueprint(bp)
