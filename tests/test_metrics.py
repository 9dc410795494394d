"""``/metrics`` (Prometheus text) and ``/healthz`` (alive): what an operator's monitoring
reads after real work through the hub."""

from __future__ import annotations

from typing import Any

import responses
from conftest import ORDER, Api
from flask import Flask
from prometheus_client.parser import text_string_to_metric_families

from hub.runtime import Runtime


def scrape(client: Any) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """{family or sample name: {sorted labels: value}} from one scrape."""
    answer = client.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("text/plain")
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(answer.get_data(as_text=True)):
        for sample in family.samples:
            out.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def value(found: dict[str, Any], name: str, **labels: str) -> float:
    return found.get(name, {}).get(tuple(sorted(labels.items())), 0.0)


def test_healthz_only_says_the_process_is_alive(client: Any) -> None:
    answer = client.get("/healthz")
    assert answer.status_code == 200 and answer.get_json() == {"status": "ok"}


def test_requests_are_counted_by_route_pattern_and_status(api: Api, client: Any) -> None:
    before = scrape(client)
    _, order = api.post("/orders", ORDER)
    api.get(f"/orders/{order['number']}")
    api.get("/orders/SO-999999")
    after = scrape(client)
    route = "/api/v1/orders/<number>"
    for status, more in (("200", 1), ("404", 1)):
        grew = value(after, "orderhub_http_requests_total", route=route, method="GET",
                     status=status) - value(before, "orderhub_http_requests_total",
                                            route=route, method="GET", status=status)
        assert grew == more, status
    # one series per route, never per order number
    assert not any("SO-" in str(labels) for labels in after["orderhub_http_requests_total"])
    count = value(after, "orderhub_http_request_duration_seconds_count", route=route,
                  method="GET")
    assert count >= 2


def test_the_database_figures_are_read_at_scrape_time(api: Api, client: Any,
                                                      runtime: Runtime) -> None:
    found = scrape(client)
    for name in ("orderhub_inbox_backlog", "orderhub_inbox_oldest_pending_seconds",
                 "orderhub_inbox_rejected", "orderhub_stock_alerts_open",
                 "orderhub_tickets_sla_breached"):
        assert name in found, name
    assert value(found, "orderhub_stock_alerts_open") == 0
    # SKU-A's threshold is 5 (conftest): selling down to 4 opens its alert
    api.post("/stock/outbound", {"warehouse": "MAIN", "items": [{"sku": "SKU-A",
                                                                  "quantity": 16}]})
    api.post("/stock/outbound", {"warehouse": "WEST", "items": [{"sku": "SKU-A",
                                                                  "quantity": 10}]})
    assert value(scrape(client), "orderhub_stock_alerts_open") == 1


def test_jobs_are_counted_by_actor_and_outcome(client: Any, runtime: Runtime) -> None:
    runtime.jobs.start_worker(1, sweep=False)
    before = scrape(client)
    runtime.jobs.send("ingest", 999_999)  # a delivery that is not there: done, nothing to do
    runtime.jobs.join()
    after = scrape(client)
    grew = value(after, "orderhub_jobs_total", actor="ingest", outcome="done") - value(
        before, "orderhub_jobs_total", actor="ingest", outcome="done")
    assert grew == 1
    assert value(after, "orderhub_queue_depth", queue="default") == 0


@responses.activate
def test_outbound_errors_are_counted_by_plugin_and_kind(runtime: Runtime, client: Any) -> None:
    from hub.core.http import HttpClient, HttpError

    responses.add(responses.GET, "https://carrier.example/rates", status=503)
    http = HttpClient("acmeparcel:account:7", retries=0)
    before = scrape(client)
    try:
        http.request("GET", "https://carrier.example/rates")
    except HttpError as exc:
        kind = type(exc).__name__
    after = scrape(client)
    grew = value(after, "orderhub_outbound_errors_total", plugin="acmeparcel", error=kind) - (
        value(before, "orderhub_outbound_errors_total", plugin="acmeparcel", error=kind))
    assert grew == 1


def test_metrics_name_no_shop(api: Api, client: Any, app: Flask) -> None:
    api.post("/orders", ORDER)
    labels = {v for samples in scrape(client).values() for key in samples for _, v in key}
    assert not labels & {"acme", "other"}
