"""The seed's usage examples, as written (``core.resilience`` → ``virtuoso_resilience``).

Each test keeps the seed's lines verbatim and supplies only what the seed
leaves to the reader (an ``exchange`` object, a reachable URL).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

import virtuoso_resilience
from virtuoso_resilience import FakeClock, ResilienceRegistry, set_default_registry


@pytest.fixture(autouse=True)
async def isolated_default_registry() -> AsyncIterator[ResilienceRegistry]:
    registry = ResilienceRegistry(clock=FakeClock())
    previous = set_default_registry(registry)
    yield registry
    await registry.aclose()
    set_default_registry(previous)


class FakeExchange:
    async def fetch_ticker(self, symbol: str) -> dict[str, Any]:
        return {"symbol": symbol, "last": 65_000.0}

    async def ping(self) -> bool:
        return True


exchange = FakeExchange()


class SwitchableExchange(FakeExchange):
    """An exchange whose ping() fails while ``up`` is False."""

    def __init__(self) -> None:
        self.up = True

    async def ping(self) -> bool:
        if not self.up:
            raise ConnectionError("exchange unreachable")
        return True


async def _settle(rounds: int = 40) -> None:
    """Let every ready task run (no time passes)."""
    for _ in range(rounds):
        await asyncio.sleep(0)


async def test_week1_circuit_breaker_usage() -> None:
    from virtuoso_resilience import circuit_breaker, CircuitBreakerConfig  # noqa: I001
    from virtuoso_resilience import get_circuit_breaker

    # Decorator usage
    @circuit_breaker("exchange_api", failure_threshold=5, timeout=60.0)
    async def fetch_market_data():  # type: ignore[no-untyped-def]
        return await exchange.fetch_ticker("BTCUSDT")

    async def risky_operation() -> str:
        return "done"

    # Programmatic usage
    config = CircuitBreakerConfig(name="bybit_api", failure_threshold=3)
    cb = get_circuit_breaker("bybit_api", config)
    result = await cb.call_async(risky_operation)

    assert (await fetch_market_data())["last"] == 65_000.0
    assert result == "done"
    assert cb.config.failure_threshold == 3


async def test_week2_connection_pool_usage() -> None:
    async def ticker(request: web.Request) -> web.Response:
        return web.json_response({"last": 65_000.0})

    app = web.Application()
    app.router.add_get("/ticker", ticker)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        from virtuoso_resilience import get_connection_pool, PoolConfig  # noqa: I001

        # Get optimized connection pool
        config = PoolConfig(max_connections=50, max_connections_per_host=20)
        pool = get_connection_pool("exchange_api", config)

        # Use in application
        async with pool.get_session() as session:
            response = await session.get(f"http://127.0.0.1:{port}/ticker")
            assert await response.json() == {"last": 65_000.0}
    finally:
        await virtuoso_resilience.default_registry().aclose()
        await runner.cleanup()


async def test_week3_health_check_usage(isolated_default_registry: ResilienceRegistry) -> None:
    from virtuoso_resilience import get_health_service, SimpleHealthCheck, HealthCheckConfig  # noqa: I001
    from virtuoso_resilience import ServiceStatus

    exchange = SwitchableExchange()  # what the seed's `exchange` is left to the reader
    alerts: list[str] = []

    # Register health check
    health_service = get_health_service()
    config = HealthCheckConfig(name="exchange_health", interval=60.0)

    async def check_exchange_health():  # type: ignore[no-untyped-def]
        return await exchange.ping()

    health_check = SimpleHealthCheck("exchange", check_exchange_health, config)
    health_service.register_health_check(health_check)

    seen: list[ServiceStatus] = []

    async def send_alert(message: str) -> None:
        alerts.append(message)

    # Monitor status changes
    async def on_health_change(status):  # type: ignore[no-untyped-def]
        seen.append(status)
        if status == ServiceStatus.CRITICAL:
            await send_alert("System health critical!")

    health_service.add_status_listener(on_health_change)
    report = await health_service.run_checks()
    assert report.status is ServiceStatus.HEALTHY
    assert health_service.get_overall_status() is ServiceStatus.HEALTHY

    # What the seed promises: the listener hears of every change of the
    # overall status, and the alert goes out when it becomes CRITICAL. Driven
    # by background monitoring on the registry's virtual clock.
    clock = isolated_default_registry.clock
    assert isinstance(clock, FakeClock)
    config.critical = True  # the exchange is what the service cannot work without
    await health_service.start()
    await _settle()
    assert seen == [ServiceStatus.HEALTHY]  # the on-demand run: unknown -> healthy
    exchange.up = False
    for _ in range(config.failure_threshold):  # 3 failed runs, 60 s apart
        clock.advance(60.0)
        await _settle()
    assert seen == [ServiceStatus.HEALTHY, ServiceStatus.DEGRADED, ServiceStatus.CRITICAL]
    assert alerts == ["System health critical!"]
    assert health_service.get_overall_status() is ServiceStatus.CRITICAL
    exchange.up = True
    clock.advance(60.0)
    await _settle()
    assert seen[-1] is ServiceStatus.HEALTHY
    assert alerts == ["System health critical!"]  # once, on the change to CRITICAL
    await health_service.stop()


def test_configuration_guide() -> None:
    from virtuoso_resilience import ResilienceConfiguration

    # Recommended production settings
    resilience_config = ResilienceConfiguration(
        # Circuit breakers
        default_failure_threshold=5,  # Conservative threshold
        default_success_threshold=3,  # Ensure recovery
        default_circuit_timeout=60.0,  # 1 minute recovery window
        # Retry policies
        default_max_retries=3,  # Balanced retry attempts
        default_base_delay=1.0,  # 1 second base delay
        default_max_delay=30.0,  # 30 second max delay
        # Connection pooling
        default_max_connections=50,  # Production capacity
        default_max_connections_per_host=20,
        default_connection_timeout=10.0,
        # Health checks
        default_health_check_interval=60.0,  # Every minute
        enable_health_checks=True,
    )
    assert resilience_config == virtuoso_resilience.create_production_resilience_config()

    # Development-friendly settings
    resilience_config = ResilienceConfiguration(
        # More permissive for testing
        default_failure_threshold=8,
        default_circuit_timeout=30.0,
        default_max_retries=4,
        default_health_check_interval=30.0,
    )
    assert resilience_config == virtuoso_resilience.create_development_resilience_config()


def test_configuration_updates() -> None:
    from virtuoso_resilience import (
        HealthCheckConfig,
        RetryPolicy,
        SimpleHealthCheck,
        get_circuit_breaker,
    )

    retry_policy = RetryPolicy(name="exchange_api")
    health_check = SimpleHealthCheck("exchange", exchange.ping, HealthCheckConfig())

    # Update circuit breaker thresholds
    circuit_breaker = get_circuit_breaker("exchange_api")
    circuit_breaker.config.failure_threshold = 8

    # Adjust retry policy
    retry_policy.config.max_attempts = 5

    # Modify health check interval
    health_check.config.interval = 30.0

    assert circuit_breaker.config.failure_threshold == 8
    assert retry_policy.config.max_attempts == 5
    assert health_check.config.interval == 30.0
