"""What the hub counts for Prometheus (``GET /metrics``).

Counters and histograms live here and are bumped where things happen (a request answered,
an order ingested, a job failed, a call to a carrier or channel failed). Under several
processes — gunicorn workers, ``orderhub worker`` processes — set ``PROMETHEUS_MULTIPROC_DIR``
to one empty folder shared by all of them before they start: prometheus_client then keeps each
process's values in files there and a scrape adds them up. Figures read from the database
(inbox backlog, open stock alerts, SLA breaches, queue depth) are computed at scrape time by
``hub.web.metrics_route``, so they are the same whichever process answers.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics

# No "<name>_created" twin for every counter: it doubles the series and no dashboard uses it.
disable_created_metrics()

REQUESTS = Counter(
    "orderhub_http_requests", "HTTP requests answered", ["route", "method", "status"]
)
LATENCY = Histogram(
    "orderhub_http_request_duration_seconds",
    "Time to answer an HTTP request",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
ORDERS_INGESTED = Counter(
    "orderhub_orders_ingested", "Orders taken in from channel deliveries", ["channel"]
)
JOBS = Counter("orderhub_jobs", "Background jobs run, by outcome", ["actor", "outcome"])
OUTBOUND_ERRORS = Counter(
    "orderhub_outbound_errors",
    "Failed calls to carriers, channels and notifiers, by the plugin and the kind of failure",
    ["plugin", "error"],
)
BREAKERS_OPEN = Gauge(
    "orderhub_circuit_breakers_open",
    "Circuit breakers open (calls to an account refused until its next trial)",
    multiprocess_mode="livesum",
)
