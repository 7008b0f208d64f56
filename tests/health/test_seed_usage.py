"""The seed's usage examples, as written (imports from virtuoso_resilience.health)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from virtuoso_resilience.clock import FakeClock
from virtuoso_resilience.health import (
    HealthCheckConfig,
    HealthService,
    ServiceStatus,
    SimpleHealthCheck,
)
from virtuoso_resilience.registry import (
    ResilienceRegistry,
    get_health_service,
    set_default_registry,
)


@pytest.fixture
def registry(clock: FakeClock) -> Iterator[ResilienceRegistry]:
    registry = ResilienceRegistry(clock=clock)
    previous = set_default_registry(registry)
    try:
        yield registry
    finally:
        set_default_registry(previous)


class FakeExchange:
    def __init__(self) -> None:
        self.up = True
        self.pings = 0

    async def ping(self) -> None:
        self.pings += 1
        if not self.up:
            raise ConnectionError("exchange unreachable")


async def test_seed_example(registry: ResilienceRegistry, clock: FakeClock, settle: Any) -> None:
    exchange = FakeExchange()
    alerts: list[str] = []

    async def send_alert(message: str) -> None:
        alerts.append(message)

    # --- as in the seed -------------------------------------------------
    health_service = get_health_service()
    config = HealthCheckConfig(name="exchange_health", interval=60.0)

    async def check_exchange_health():  # type: ignore[no-untyped-def]
        return await exchange.ping()

    health_check = SimpleHealthCheck("exchange", check_exchange_health, config)
    health_service.register_health_check(health_check)

    async def on_health_change(status):  # type: ignore[no-untyped-def]
        if status == ServiceStatus.CRITICAL:
            await send_alert("System health critical!")

    health_service.add_status_listener(on_health_change)
    health_check.config.interval = 30.0
    # ---------------------------------------------------------------------

    assert isinstance(health_service, HealthService)
    assert health_service is get_health_service() is registry.health
    assert health_service.clock is clock
    health_check.config.critical = True
    health_check.config.failure_threshold = 2
    await health_service.start()
    await settle()
    assert exchange.pings == 1
    assert health_service.get_status() is ServiceStatus.HEALTHY  # None from ping() passes
    exchange.up = False
    for _ in range(2):
        clock.advance(30)
        await settle()
    assert exchange.pings == 3
    assert health_service.get_status() is ServiceStatus.CRITICAL
    assert alerts == ["System health critical!"]
    report = health_service.report().checks["exchange"]
    assert report.result is not None
    assert report.result.message == "ConnectionError: exchange unreachable"
    await registry.aclose()
    assert not health_service.running
