"""The seed's operations commands and the read endpoints, over real HTTP."""

from __future__ import annotations

import math
from typing import Any

import aiohttp
from mon_helpers import API, Api, Start, settle

from virtuoso_resilience import (
    CheckResult,
    FakeClock,
    HealthCheckConfig,
    ResilienceRegistry,
    ServiceStatus,
    SimpleHealthCheck,
)


def jq_not_closed(body: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``jq '.[] | select(.state != "closed")'``"""
    return [item for item in body if item["state"] != "closed"]


async def test_health_answers_with_overall_status(api: Api, registry: ResilienceRegistry) -> None:
    registry.circuit_breaker("exchange_api")
    await registry.health.run_checks()
    status, headers, body = await api.get(f"{API}/health")
    assert status == 200
    assert headers["Content-Type"].startswith("application/json")
    assert headers["Cache-Control"] == "no-store"
    assert body["overall_status"] == "healthy"
    assert body["status"] == "pass"
    assert body["checks"] == {"circuit_breaker.exchange_api": "healthy"}
    assert body["counts"] == {"healthy": 1}


async def test_detailed_health_has_every_check_dependency_root_cause_and_metrics(
    api: Api, registry: ResilienceRegistry
) -> None:
    health = registry.health
    health.register_health_check(SimpleHealthCheck("network", lambda: False))
    health.register_health_check(
        SimpleHealthCheck("exchange", lambda: True, HealthCheckConfig(depends_on=("network",)))
    )
    await health.run_checks()
    status, _, body = await api.get(f"{API}/health/detailed")
    assert status == 200  # a failed non-critical check degrades, never fails
    assert body["overall_status"] == "degraded"
    exchange = body["checks"]["exchange"]
    assert exchange["depends_on"] == ["network"]
    assert exchange["root_cause"] == "network"
    assert exchange["status"] == "degraded"
    assert body["checks"]["network"]["metrics"]["failures"] == 1
    assert body["checks"]["network"]["last_run_at"] is not None


async def test_circuit_breakers_is_an_array_with_lower_case_states(
    api: Api, registry: ResilienceRegistry
) -> None:
    registry.circuit_breaker("bybit_api")
    registry.circuit_breaker("binance_api").force_open()
    registry.circuit_breaker("bybit.ticker.BTC/USDT")
    status, _, body = await api.get(f"{API}/circuit-breakers")
    assert status == 200
    assert isinstance(body, list)
    assert [b["name"] for b in body] == ["binance_api", "bybit.ticker.BTC/USDT", "bybit_api"]
    assert [b["name"] for b in jq_not_closed(body)] == ["binance_api"]
    assert jq_not_closed(body)[0]["state"] == "forced_open"
    assert {"calls", "failures", "trips", "retry_after", "config"} <= set(body[0])


async def test_one_breaker_by_name_including_a_slash(
    api: Api, registry: ResilienceRegistry
) -> None:
    registry.circuit_breaker("bybit.ticker.BTC/USDT")
    for path in ("bybit.ticker.BTC%2FUSDT", "bybit.ticker.BTC/USDT"):
        status, _, body = await api.get(f"{API}/circuit-breakers/{path}")
        assert status == 200
        assert body["name"] == "bybit.ticker.BTC/USDT"
        assert body["state"] == "closed"


async def test_connection_pools_listed(api: Api, registry: ResilienceRegistry) -> None:
    registry.connection_pool("exchange_api")
    status, _, body = await api.get(f"{API}/connection-pools")
    assert status == 200
    assert [p["name"] for p in body] == ["exchange_api"]
    assert body[0]["limits"]["max_connections"] == registry.config.default_max_connections


class _Cache:
    """A component of a kind the API has never heard of."""

    def snapshot(self) -> dict[str, Any]:
        return {"hits": 3, "fallback_active": True, "ratio": math.nan, "ttl": math.inf}


async def test_metrics_holds_every_kind_the_registry_holds(
    api: Api, registry: ResilienceRegistry
) -> None:
    registry.connection_pool("exchange_api")
    registry.circuit_breaker("exchange_api")
    registry.retry_policy("exchange_api")
    status, _, body = await api.get(f"{API}/metrics")
    assert status == 200
    assert set(body["connection_pools"]) == {"exchange_api"}
    assert body["circuit_breakers"]["exchange_api"]["state"] == "closed"
    assert "exchange_api" in body["retry_policies"]
    assert "overall_status" in body["health"]
    # A new kind plugs in without any change to the API.
    registry.register("caches", "redis", _Cache())
    _, _, body = await api.get(f"{API}/metrics")
    assert body["caches"]["redis"] == {
        "hits": 3,
        "fallback_active": True,
        "ratio": None,  # NaN and inf are not JSON: null
        "ttl": None,
    }


async def test_metrics_has_empty_groups_on_an_empty_registry(api: Api) -> None:
    status, _, body = await api.get(f"{API}/metrics")
    assert status == 200
    assert body["connection_pools"] == {}
    assert body["circuit_breakers"] == {}


class _Broken:
    def snapshot(self) -> dict[str, Any]:
        raise RuntimeError("secret-password-in-message")


async def test_a_component_whose_snapshot_raises_does_not_break_the_endpoint(
    api: Api, registry: ResilienceRegistry
) -> None:
    registry.register("caches", "broken", _Broken())
    status, _, body = await api.get(f"{API}/metrics")
    assert status == 200
    assert body["caches"]["broken"] == {"error": "snapshot failed: RuntimeError"}
    _, _, raw = await api.request("GET", f"{API}/metrics", headers={"Accept": "text/plain"})
    assert "secret-password" not in str(raw)


async def test_livez_never_consults_a_check(api: Api, registry: ResilienceRegistry) -> None:
    registry.health.register_health_check(
        SimpleHealthCheck(
            "exchange",
            lambda: CheckResult(ServiceStatus.CRITICAL, "down"),
            HealthCheckConfig(critical=True, failure_threshold=1),
        )
    )
    await registry.health.run_checks()
    status, _, body = await api.get("/livez")
    assert (status, body) == (200, {"status": "pass"})
    status, headers, _ = await api.get("/livez", headers={"Accept": "application/health+json"})
    assert status == 200
    assert headers["Content-Type"].startswith("application/health+json")


async def test_unknown_path_is_a_json_404(api: Api) -> None:
    status, headers, body = await api.get(f"{API}/nothing-here")
    assert status == 404
    assert headers["Content-Type"].startswith("application/json")
    assert body["error"] == "not_found"


async def test_wrong_method_is_a_json_405_with_allow(api: Api) -> None:
    status, headers, body = await api.request("DELETE", f"{API}/health")
    assert status == 405
    assert headers["Allow"] == "GET"
    assert body["error"] == "method_not_allowed"
    status, headers, _ = await api.post(f"{API}/circuit-breakers/events", json={})
    assert status == 405
    assert headers["Allow"] == "GET"


async def test_default_registry_clock_drives_nothing_per_request(
    start: Start, clock: FakeClock
) -> None:
    api = await start()
    await api.get(f"{API}/health")
    await settle()
    assert clock.now() == 0.0  # serving a request never moves or waits on time


def _deep(levels: int) -> list[Any]:
    value: list[Any] = [1]
    for _ in range(levels):
        value = [value]
    return value


class _Odd:
    def snapshot(self) -> dict[object, Any]:
        return {
            "huge": 10**5000,
            (1, 2): "tuple key",
            "nested": [
                [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]
            ],
            "object": object(),
            "set": {1},
        }


async def test_odd_snapshot_values_still_give_json(api: Api, registry: ResilienceRegistry) -> None:
    registry.register("caches", "odd", _Odd())
    status, _, body = await api.get(f"{API}/metrics")
    assert status == 200
    odd = body["caches"]["odd"]
    assert odd["huge"] == "<int too large>"
    assert odd["object"] == "<object>"
    assert odd["set"] == [1]
    assert "[1, 2]" in odd or "(1, 2)" in odd  # a non-string key becomes a string
    assert "<nested too deep>" in repr(odd["nested"])


async def test_an_unexpected_error_is_a_json_500_without_its_message(
    registry: ResilienceRegistry,
) -> None:
    from aiohttp import web

    from virtuoso_resilience.monitoring import MonitoringServer, MonitoringSettings

    server = MonitoringServer(registry, MonitoringSettings(port=0))

    async def broken(request: web.Request) -> web.Response:
        raise RuntimeError("apiKey=abc123 leaked")

    server.app.router.add_get("/broken", broken)
    async with (
        server,
        aiohttp.ClientSession() as session,
        session.get(f"{server.url}/broken") as response,
    ):
        assert response.status == 500
        text = await response.text()
    assert "abc123" not in text
    assert "Traceback" not in text
    assert '"error":"internal_error"' in text
