"""Prometheus exporter: names match the docs, values follow the components, over real HTTP."""

from __future__ import annotations

import gc
import logging
import math
import re
import weakref
from pathlib import Path
from typing import Any

import aiohttp
import prometheus_client
import pytest
from aiohttp import web
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from virtuoso_resilience import (
    CheckResult,
    CircuitBreaker,
    FakeClock,
    HealthCheckConfig,
    ResilienceConfiguration,
    ResilienceRegistry,
    ServiceStatus,
    SimpleHealthCheck,
)
from virtuoso_resilience.monitoring import (
    CACHES,
    EXCHANGES,
    PrometheusExporter,
    make_metrics_handler,
    prometheus_exposition,
)

DOCS = Path(__file__).resolve().parents[2] / "docs"


def documented_metrics() -> set[str]:
    text = (DOCS / "metrics.md").read_text()
    return set(re.findall(r"^\| `(resilience_[a-z_]+)` \|", text, flags=re.MULTILINE))


def exposed(body: bytes) -> dict[str, Any]:
    """Family name as documented (counters with ``_total``) -> parsed family."""
    out: dict[str, Any] = {}
    for family in text_string_to_metric_families(body.decode()):
        name = family.name + "_total" if family.type == "counter" else family.name
        out[name] = family
    return out


def samples(body: bytes, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    found: dict[tuple[tuple[str, str], ...], float] = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


class CacheLike:
    """A component shaped like the resilient cache's snapshot (docs/metrics.md)."""

    def __init__(self, snapshot: dict[str, Any]) -> None:
        self._snapshot = snapshot

    def snapshot(self) -> dict[str, Any]:
        return self._snapshot


class Broken:
    def snapshot(self) -> dict[str, Any]:
        raise RuntimeError("token=hunter2 https://discord.com/api/webhooks/1/secret")


async def _ok() -> int:
    return 1


async def _fail() -> None:
    raise ConnectionError("down")


async def rich_registry(clock: FakeClock) -> ResilienceRegistry:
    """One component of every exported kind, each used, one breaker open."""
    cfg = ResilienceConfiguration(
        default_max_concurrent=5, default_rate_limit=10.0, default_call_timeout=5.0
    )
    registry = ResilienceRegistry(cfg, clock=clock)
    pipeline = registry.pipeline("bybit")
    await pipeline.call_async(_ok)
    breaker = registry.circuit_breaker("orders", failure_threshold=1)
    with pytest.raises(ConnectionError):
        await breaker.call_async(_fail)
    registry.connection_pool("exchange_api")
    registry.register(
        CACHES,
        "tickers",
        CacheLike(
            {
                "status": "degraded",
                "reads_by_source": {"backend": 3, "fallback": 2, "stale": 0, "miss": 1},
                "backend_errors_by_kind": {"transient": 4},
                "fallback_writes": 2,
            }
        ),
    )
    registry.register(
        EXCHANGES,
        "bybit",
        CacheLike(
            {
                "rate_limit": {"account": {"tokens": 5.0, "capacity": 20.0}},
                "market_data_age": {"BTC/USDT": 1.5, "ETH/USDT": 0.25},
                "pending_orders": 2,
                "maintenance": {"active": False},
            }
        ),
    )
    registry.register("broken_kind_without_adapter", "x", Broken())
    registry.register(CACHES, "broken", Broken())
    registry.health.register_health_check(
        SimpleHealthCheck("exchange", lambda: False, HealthCheckConfig(critical=True))
    )
    await registry.health.run_checks()
    return registry


async def test_exposition_has_exactly_the_documented_metrics(clock: FakeClock) -> None:
    registry = await rich_registry(clock)
    exporter = PrometheusExporter(registry)
    registry.circuit_breaker("bybit").force_open()  # a transition the exporter sees
    body, content_type = prometheus_exposition(exporter)
    assert content_type.startswith("text/plain; version=0.0.4")
    families = exposed(body)
    documented = documented_metrics()
    assert len(documented) > 40
    assert set(families) == documented
    # In this registry every family has at least one sample.
    empty = sorted(name for name, family in families.items() if not family.samples)
    assert empty == []
    await registry.aclose()


async def test_direct_rendering_is_what_generate_latest_writes(clock: FakeClock) -> None:
    registry = await rich_registry(clock)
    registry.circuit_breaker('we"ird\\name with ünïcode ② ٣')  # control chars: refused by name
    registry.unregister(CACHES, "broken")  # its error count would grow between the two
    exporter = PrometheusExporter(registry)
    registry.circuit_breaker("bybit").force_open()
    body, _ = exporter.exposition()
    assert body == generate_latest(exporter.collector_registry)
    await registry.aclose()


async def test_openmetrics_when_asked(clock: FakeClock) -> None:
    registry = await rich_registry(clock)
    exporter = PrometheusExporter(registry)
    body, content_type = exporter.exposition("application/openmetrics-text; version=1.0.0")
    assert content_type.startswith("application/openmetrics-text")
    assert body.rstrip().endswith(b"# EOF")
    assert b"resilience_circuitbreaker_state" in body
    await registry.aclose()


async def test_breaker_state_is_one_hot_and_transitions_are_counted(clock: FakeClock) -> None:
    registry = ResilienceRegistry(clock=clock)
    breaker = registry.circuit_breaker(
        "api", failure_threshold=1, success_threshold=1, timeout=10.0
    )
    exporter = PrometheusExporter(registry, health=None)
    with pytest.raises(ConnectionError):
        await breaker.call_async(_fail)  # closed -> open
    body, _ = exporter.exposition()
    state = samples(body, "resilience_circuitbreaker_state")
    assert {dict(k)["state"]: v for k, v in state.items()} == {
        "closed": 0.0,
        "open": 1.0,
        "half_open": 0.0,
        "forced_open": 0.0,
        "disabled": 0.0,
    }
    assert samples(body, "resilience_circuitbreaker_retry_after_seconds") == {
        (("name", "api"),): 10.0
    }
    clock.advance(10.0)
    await breaker.call_async(_ok)  # open -> half_open -> closed
    breaker.force_open()
    breaker.reset()
    body, _ = exporter.exposition()
    transitions = {
        (dict(k)["from_state"], dict(k)["to_state"]): v
        for k, v in samples(body, "resilience_circuitbreaker_transitions_total").items()
    }
    assert transitions == {
        ("closed", "open"): 1.0,
        ("open", "half_open"): 1.0,
        ("half_open", "closed"): 1.0,
        ("closed", "forced_open"): 1.0,
        ("forced_open", "closed"): 1.0,
    }
    calls = {
        dict(k)["outcome"]: v
        for k, v in samples(body, "resilience_circuitbreaker_calls_total").items()
    }
    assert calls == {"success": 1.0, "failure": 1.0, "ignored": 0.0, "cancelled": 0.0}
    assert samples(body, "resilience_circuitbreaker_trips_total") == {(("name", "api"),): 1.0}
    exporter.close()
    breaker.force_open()
    body, _ = exporter.exposition()
    assert samples(body, "resilience_circuitbreaker_transitions_total") == {}


async def test_breakers_made_after_the_exporter_are_watched_from_the_next_scrape(
    clock: FakeClock,
) -> None:
    registry = ResilienceRegistry(clock=clock)
    exporter = PrometheusExporter(registry, health=None)
    exporter.exposition()
    late = registry.circuit_breaker("late")
    exporter.exposition()  # sees it: from now on transitions count
    late.force_open()
    body, _ = exporter.exposition()
    assert samples(body, "resilience_circuitbreaker_transitions_total") == {
        (("from_state", "closed"), ("name", "late"), ("to_state", "forced_open")): 1.0
    }
    assert "breakers_watched=1" in repr(exporter)


async def test_label_values_round_trip_whatever_the_name(clock: FakeClock) -> None:
    registry = ResilienceRegistry(clock=clock)
    # Component names are printable (newlines are refused by the registry);
    # quotes, backslashes and any script still need escaping in labels.
    names = ['quote"d', "back\\slash", "日本語 ② ① ٣", "x" * 200]
    for name in names:
        registry.circuit_breaker(name)
    body, _ = PrometheusExporter(registry, health=None).exposition()
    found = {dict(k)["name"] for k in samples(body, "resilience_circuitbreaker_trips_total")}
    assert found == set(names)


async def test_hostile_snapshot_values_are_left_out(clock: FakeClock) -> None:
    registry = ResilienceRegistry(clock=clock)
    registry.register(
        EXCHANGES,
        "evil",
        CacheLike(
            {
                "rate_limit": {"account": {"tokens": math.nan, "capacity": 0}},
                "market_data_age": {"A": math.inf, "B": True, "C": "12", "D": -0.0, "E": 1e308},
                "pending_orders": -3,
                "maintenance": {"active": "yes"},
            }
        ),
    )
    registry.register(
        CACHES,
        "evil",
        CacheLike(
            {
                "status": None,
                "reads_by_source": {"backend": math.nan, "fallback": -1, "stale": True},
                "backend_errors_by_kind": [1, 2, 3],
                "fallback_writes": math.inf,
            }
        ),
    )
    nested: dict[str, Any] = {}
    cursor = nested
    for _ in range(500):
        cursor["metrics"] = {}
        cursor = cursor["metrics"]
    registry.register(CACHES, "deep", CacheLike(nested))
    body, _ = PrometheusExporter(registry, health=None).exposition()
    ages = samples(body, "resilience_exchange_market_data_age_seconds")
    assert {dict(k)["symbol"]: v for k, v in ages.items()} == {"D": 0.0, "E": 1e308}
    assert samples(body, "resilience_exchange_rate_limit_headroom_ratio") == {}
    # pending_orders is a gauge: -3 is a value, exported as such
    assert samples(body, "resilience_exchange_orders_pending_reconciliation") == {
        (("name", "evil"),): -3.0
    }
    assert samples(body, "resilience_exchange_maintenance") == {}
    assert samples(body, "resilience_cache_reads_total") == {}
    assert samples(body, "resilience_cache_fallback_writes_total") == {}
    assert samples(body, "resilience_exporter_errors_total") == {}


async def test_a_failing_component_is_counted_and_logged_without_its_message(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    registry = ResilienceRegistry(clock=clock)
    registry.register(CACHES, "broken", Broken())
    registry.circuit_breaker("fine")
    exporter = PrometheusExporter(registry, health=None)
    with caplog.at_level(logging.DEBUG):
        exporter.exposition()
        body, _ = exporter.exposition()
    assert samples(body, "resilience_exporter_errors_total") == {(("kind", "caches"),): 2.0}
    assert samples(body, "resilience_circuitbreaker_trips_total") == {(("name", "fine"),): 0.0}
    assert "RuntimeError" in caplog.text
    assert "hunter2" not in caplog.text and "webhooks" not in caplog.text
    assert "hunter2" not in body.decode()


async def test_health_checks_are_exported(clock: FakeClock) -> None:
    registry = ResilienceRegistry(clock=clock)
    health = registry.health
    health.register_health_check(
        SimpleHealthCheck("exchange", lambda: False, HealthCheckConfig(critical=True))
    )
    health.register_health_check(
        SimpleHealthCheck("cache", lambda: CheckResult(ServiceStatus.DEGRADED, "slow"))
    )
    await health.run_checks()
    body, _ = PrometheusExporter(registry).exposition()
    overall = {dict(k)["status"]: v for k, v in samples(body, "resilience_health_status").items()}
    assert overall["degraded"] == 1.0 and sum(overall.values()) == 1.0
    status = {
        (dict(k)["check"], dict(k)["status"]): v
        for k, v in samples(body, "resilience_health_check_status").items()
        if v == 1.0
    }
    assert status == {("exchange", "degraded"): 1.0, ("cache", "degraded"): 1.0}
    durations = samples(body, "resilience_health_check_duration_seconds")
    assert set(durations) == {(("check", "exchange"),), (("check", "cache"),)}
    runs = samples(body, "resilience_health_check_runs_total")
    assert runs[(("check", "exchange"), ("result", "failure"))] == 1.0
    assert runs[(("check", "cache"), ("result", "success"))] == 1.0


async def test_health_none_exports_no_checks_and_makes_no_service(clock: FakeClock) -> None:
    registry = ResilienceRegistry(clock=clock)
    registry.circuit_breaker("a")
    body, _ = PrometheusExporter(registry, health=None).exposition()
    assert samples(body, "resilience_health_status") == {}
    assert "health=off" in repr(registry)


async def test_own_collector_registry_not_the_global_one(clock: FakeClock) -> None:
    registry = ResilienceRegistry(clock=clock)
    registry.circuit_breaker("isolated")
    exporter = PrometheusExporter(registry, health=None)
    assert b"isolated" in exporter.exposition()[0]
    assert b"isolated" not in generate_latest(prometheus_client.REGISTRY)
    assert exporter.collector_registry is not prometheus_client.REGISTRY


async def test_bad_arguments_name_the_parameter() -> None:
    with pytest.raises(TypeError, match="registry"):
        PrometheusExporter("registry")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="health"):
        PrometheusExporter(ResilienceRegistry(), health="yes")  # type: ignore[arg-type]


async def test_custom_adapter_for_a_new_kind(clock: FakeClock) -> None:
    registry = ResilienceRegistry(clock=clock)
    registry.register(CACHES, "mine", CacheLike({"custom": 7}))

    def adapter(out: Any, name: str, component: Any) -> None:
        out.counter("resilience_cache_fallback_writes", [name], component.snapshot()["custom"])

    body, _ = PrometheusExporter(registry, health=None, adapters={CACHES: adapter}).exposition()
    assert samples(body, "resilience_cache_fallback_writes_total") == {(("name", "mine"),): 7.0}


async def test_metrics_endpoint_over_real_http(clock: FakeClock, unused_port: int) -> None:
    registry = await rich_registry(clock)
    app = web.Application()
    app.router.add_get("/metrics", make_metrics_handler(registry))
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", unused_port).start()
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{unused_port}/metrics") as response:
                assert response.status == 200
                assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
                body = await response.read()
            headers = {"Accept": "application/openmetrics-text; version=1.0.0"}
            async with session.get(
                f"http://127.0.0.1:{unused_port}/metrics", headers=headers
            ) as response:
                assert response.headers["Content-Type"].startswith("application/openmetrics-text")
                assert (await response.read()).rstrip().endswith(b"# EOF")
    finally:
        await runner.cleanup()
    assert set(exposed(body)) == documented_metrics()
    # the same exporter serves every request: transition counts accumulate
    assert prometheus_exposition(registry)[0].count(b"resilience_circuitbreaker_state{") == 10
    await registry.aclose()


async def test_the_cached_exporter_never_keeps_a_registry_alive(clock: FakeClock) -> None:
    registry = ResilienceRegistry(clock=clock)
    registry.circuit_breaker("a")
    assert b'name="a"' in prometheus_exposition(registry)[0]
    ref = weakref.ref(registry)
    del registry
    gc.collect()
    assert ref() is None


async def test_a_replaced_breaker_does_not_export_its_old_transitions(clock: FakeClock) -> None:
    registry = ResilienceRegistry(clock=clock)
    old = registry.circuit_breaker("api")
    exporter = PrometheusExporter(registry, health=None)
    old.force_open()
    registry.register("circuit_breakers", "api", CircuitBreaker("api", clock=clock), replace=True)
    body, _ = exporter.exposition()
    assert samples(body, "resilience_circuitbreaker_transitions_total") == {}
    state = samples(body, "resilience_circuitbreaker_state")
    assert state[(("name", "api"), ("state", "closed"))] == 1.0
    assert body == generate_latest(exporter.collector_registry)  # no duplicate series
