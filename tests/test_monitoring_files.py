"""The example alert rules and Grafana dashboard name only metrics the hub serves, and the
dashboard draws every one."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
NAME = re.compile(r"\borderhub_[a-z_]+")


def family(name: str) -> str:
    """The family a sample name belongs to (a counter's ``_total``, a histogram's parts)."""
    for suffix in ("_bucket", "_count", "_sum", "_total"):
        if name.endswith(suffix):
            return name.removesuffix(suffix)
    return name


def served(client: Any) -> set[str]:
    text = client.get("/metrics").get_data(as_text=True)
    return {f.name for f in text_string_to_metric_families(text) if f.name.startswith("orderhub_")}


def test_every_alert_rule_names_served_metrics(client: Any) -> None:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    [group] = rules["groups"]
    assert len(group["rules"]) >= 8
    assert all(rule["alert"] and rule["annotations"]["summary"] for rule in group["rules"])
    families = served(client)
    for rule in group["rules"]:
        for name in NAME.findall(rule["expr"]):
            assert family(name) in families, (name, rule["alert"])


def test_the_dashboard_draws_every_served_metric_and_nothing_else(client: Any) -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "orderhub-dashboard.json").read_text())
    drawn = {family(n) for panel in dashboard["panels"] for target in panel["targets"]
             for n in NAME.findall(target["expr"])}
    assert drawn == served(client)
