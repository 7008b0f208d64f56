"""show_details, and the body cache: no per-request rebuild, no inline check run."""

from __future__ import annotations

from typing import Any

import pytest
from mon_helpers import API, Start, settle

from virtuoso_resilience import (
    FakeClock,
    HealthCheckConfig,
    ResilienceRegistry,
    SimpleHealthCheck,
)
from virtuoso_resilience.monitoring import ShowDetails

DETAIL = [
    f"{API}/health/detailed",
    f"{API}/circuit-breakers",
    f"{API}/circuit-breakers/events",
    f"{API}/circuit-breakers/exchange_api",
    f"{API}/connection-pools",
    f"{API}/metrics",
]


async def test_show_details_never(start: Start, registry: ResilienceRegistry) -> None:
    registry.circuit_breaker("exchange_api")
    api = await start(show_details=ShowDetails.NEVER, token="t" * 20)
    for path in DETAIL:
        status, _, body = await api.get(path, headers={"Authorization": "Bearer " + "t" * 20})
        assert status == 403, path
        assert "show_details=never" in body["message"]
    status, _, body = await api.get(f"{API}/health")
    assert status == 200
    assert body == {"overall_status": "unknown", "status": "warn"}  # no check names
    status, _, body = await api.get(f"{API}/health", headers={"Accept": "application/health+json"})
    assert "checks" not in body


async def test_show_details_when_authorized(start: Start, registry: ResilienceRegistry) -> None:
    registry.circuit_breaker("exchange_api")
    api = await start(show_details=ShowDetails.WHEN_AUTHORIZED, token="t" * 20)
    for path in DETAIL:
        status, headers, _ = await api.get(path)
        assert status == 401, path
        assert "WWW-Authenticate" in headers
        status, _, _ = await api.get(path, headers={"Authorization": "Bearer " + "t" * 20})
        assert status == 200, path
    _, _, body = await api.get(f"{API}/health")
    assert "checks" not in body
    _, _, body = await api.get(f"{API}/health", headers={"Authorization": "Bearer " + "t" * 20})
    assert body["checks"] == {"circuit_breaker.exchange_api": "unknown"}


async def test_when_authorized_without_a_token_is_403(start: Start) -> None:
    api = await start(show_details=ShowDetails.WHEN_AUTHORIZED)
    status, _, body = await api.get(f"{API}/metrics")
    assert status == 403
    assert "no token is configured" in body["message"]


async def test_health_is_served_from_cache_and_never_runs_a_check(
    start: Start, registry: ResilienceRegistry, clock: FakeClock
) -> None:
    runs: list[int] = []
    registry.health.register_health_check(
        SimpleHealthCheck("exchange", lambda: runs.append(1), HealthCheckConfig())
    )
    api = await start(cache_ttl=1.0)
    state = api.server.state
    await api.get(f"{API}/health")
    before = state.rebuilds
    for _ in range(20):
        status, _, body = await api.get(f"{API}/health")
        assert status == 200
    assert state.rebuilds == before  # one body, served 20 times
    assert runs == []  # reading health ran nothing
    assert body["checks"] == {"exchange": "unknown"}


async def test_an_overall_status_change_rebuilds_after_the_min_interval(
    start: Start, registry: ResilienceRegistry, clock: FakeClock
) -> None:
    registry.health.register_health_check(SimpleHealthCheck("a", lambda: True))
    registry.health.register_health_check(SimpleHealthCheck("b", lambda: True))
    await registry.health.run_check("a")
    api = await start(cache_ttl=10.0, min_rebuild_interval=0.1)
    _, _, body = await api.get(f"{API}/health")
    assert body["checks"] == {"a": "healthy", "b": "unknown"}
    await registry.health.run_check("b")  # overall: unknown -> healthy
    await settle()
    _, _, body = await api.get(f"{API}/health")
    assert body["overall_status"] == "unknown"  # built less than 0.1 s ago
    clock.advance(0.1)
    _, _, body = await api.get(f"{API}/health")
    assert body["overall_status"] == "healthy"  # long before the 10 s TTL
    assert body["checks"]["b"] == "healthy"


async def test_a_result_that_changes_no_status_shows_after_the_ttl(
    start: Start, registry: ResilienceRegistry, clock: FakeClock
) -> None:
    registry.health.register_health_check(SimpleHealthCheck("a", lambda: True, HealthCheckConfig()))
    await registry.health.run_check("a")
    api = await start(cache_ttl=0.5)
    _, _, body = await api.get(f"{API}/health/detailed")
    assert body["checks"]["a"]["metrics"]["total_runs"] == 1
    await registry.health.run_check("a")
    _, _, body = await api.get(f"{API}/health/detailed")
    assert body["checks"]["a"]["metrics"]["total_runs"] == 1  # cached
    clock.advance(0.5)
    _, _, body = await api.get(f"{API}/health/detailed")
    assert body["checks"]["a"]["metrics"]["total_runs"] == 2


async def test_a_breaker_state_change_rebuilds_after_the_min_interval(
    start: Start, registry: ResilienceRegistry, clock: FakeClock
) -> None:
    cb = registry.circuit_breaker("exchange_api")
    api = await start(cache_ttl=1000.0, min_rebuild_interval=0.1)
    _, _, body = await api.get(f"{API}/circuit-breakers")
    assert body[0]["state"] == "closed"
    cb.force_open()
    clock.advance(0.1)
    _, _, body = await api.get(f"{API}/circuit-breakers")
    assert body[0]["state"] == "forced_open"


async def test_a_flapping_breaker_rebuilds_at_most_once_per_interval(
    start: Start, registry: ResilienceRegistry, clock: FakeClock
) -> None:
    cb = registry.circuit_breaker("exchange_api")
    api = await start(cache_ttl=1000.0, min_rebuild_interval=0.1)
    await api.get(f"{API}/circuit-breakers")
    state = api.server.state
    before = state.rebuilds
    for _ in range(10):  # ten changes and ten reads within 0.1 s
        cb.force_open()
        cb.reset()
        clock.advance(0.005)
        await api.get(f"{API}/circuit-breakers")
    assert state.rebuilds == before
    clock.advance(0.05)
    await api.get(f"{API}/circuit-breakers")
    assert state.rebuilds == before + 1


async def test_immediate_rebuilds_with_a_zero_interval(
    start: Start, registry: ResilienceRegistry
) -> None:
    cb = registry.circuit_breaker("exchange_api")
    api = await start(min_rebuild_interval=0.0)
    await api.get(f"{API}/circuit-breakers")
    cb.force_open()
    _, _, body = await api.get(f"{API}/circuit-breakers")
    assert body[0]["state"] == "forced_open"


async def test_a_new_component_shows_at_once(start: Start, registry: ResilienceRegistry) -> None:
    api = await start(cache_ttl=1000.0)
    _, _, body = await api.get(f"{API}/circuit-breakers")
    assert body == []
    registry.circuit_breaker("exchange_api")
    _, _, body = await api.get(f"{API}/circuit-breakers")
    assert [b["name"] for b in body] == ["exchange_api"]


@pytest.mark.parametrize("path", [f"{API}/metrics", f"{API}/circuit-breakers"])
async def test_many_breakers_one_rebuild(
    start: Start, registry: ResilienceRegistry, path: str
) -> None:
    for i in range(100):
        registry.circuit_breaker(f"cb{i}")
    api = await start()
    await api.get(path)
    state = api.server.state
    before = state.rebuilds
    bodies: list[Any] = [(await api.get(path))[2] for _ in range(10)]
    assert state.rebuilds == before
    assert all(b == bodies[0] for b in bodies)


async def test_a_breaker_flip_does_not_rebuild_the_health_bodies(
    start: Start, registry: ResilienceRegistry, clock: FakeClock
) -> None:
    cb = registry.circuit_breaker("exchange_api")
    api = await start(cache_ttl=1000.0, min_rebuild_interval=0.1)
    await api.get(f"{API}/health/detailed")
    await api.get(f"{API}/circuit-breakers")
    state = api.server.state
    before = state.rebuilds
    cb.force_open()
    clock.advance(0.1)
    await api.get(f"{API}/health/detailed")
    assert state.rebuilds == before  # health did not change: same body
    _, _, body = await api.get(f"{API}/circuit-breakers")
    assert body[0]["state"] == "forced_open"
    assert state.rebuilds == before + 1


async def test_metrics_reuses_the_health_fragment_when_a_breaker_flips(
    start: Start, registry: ResilienceRegistry, clock: FakeClock
) -> None:
    cb = registry.circuit_breaker("exchange_api")
    api = await start(cache_ttl=1000.0, min_rebuild_interval=0.1)
    _, _, first = await api.get(f"{API}/metrics")
    state = api.server.state
    before = state.rebuilds
    cb.force_open()
    clock.advance(0.1)
    _, _, body = await api.get(f"{API}/metrics")
    assert body["circuit_breakers"]["exchange_api"]["state"] == "forced_open"
    assert body["health"] == first["health"]
    # circuit_breakers and connection_pools fragments and the whole body; not health
    assert state.rebuilds == before + 3
