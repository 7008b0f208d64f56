"""The Grafana dashboard: valid JSON, templated, every expression on documented metrics."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from virtuoso_resilience.monitoring import METRIC_NAMES

DOCS = Path(__file__).resolve().parents[2] / "docs"
METRIC = re.compile(r"\bresilience_[a-z_]+")


def documented() -> set[str]:
    text = (DOCS / "metrics.md").read_text()
    return set(re.findall(r"^\| `(resilience_[a-z_]+)` \|", text, flags=re.MULTILINE))


def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in items:
        yield panel
        yield from panels(panel.get("panels", []))


def test_dashboard_expressions_use_documented_metrics_only() -> None:
    dashboard = json.loads((DOCS / "grafana" / "resilience.json").read_text())
    names = documented()
    assert names == METRIC_NAMES
    histograms = {n for n in names if n.endswith("_seconds") and "duration" in n}
    used: set[str] = set()
    exprs = [t["expr"] for p in panels(dashboard["panels"]) for t in p.get("targets", [])]
    assert len(exprs) > 30
    for expr in exprs:
        assert 'instance=~"$instance"' in expr, expr
        for metric in METRIC.findall(expr):
            base = re.sub(r"_(bucket|count|sum)$", "", metric)
            if base in histograms:
                metric = base
            assert metric in names, f"{metric} in {expr!r} is not in docs/metrics.md"
            used.add(metric)
    # The dashboard shows every group of metrics.
    for group in (
        "circuitbreaker",
        "retry",
        "ratelimiter",
        "bulkhead",
        "pool",
        "cache",
        "exchange",
        "health",
        "build",
    ):
        assert any(f"resilience_{group}_" in m for m in used), group


def test_dashboard_is_templated_on_instance_and_component_name() -> None:
    dashboard = json.loads((DOCS / "grafana" / "resilience.json").read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert {"datasource", "instance", "name"} <= set(variables)
    assert "instance" in variables["instance"]["definition"]
    assert variables["name"]["definition"].endswith(", name)")
    component_panels = [
        t["expr"]
        for p in panels(dashboard["panels"])
        for t in p.get("targets", [])
        if "health" not in t["expr"] and "build_info" not in t["expr"]
    ]
    assert all('name=~"$name"' in e for e in component_panels)
    ids = [p["id"] for p in panels(dashboard["panels"])]
    assert len(ids) == len(set(ids))
