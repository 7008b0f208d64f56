"""The exchange's health checks: ping, breakers, limiter headroom, maintenance."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from ..health import (
    CheckResult,
    CircuitBreakerHealthCheck,
    HealthCheck,
    HealthCheckConfig,
    HealthService,
    ServiceStatus,
    SimpleHealthCheck,
)
from ._config import MethodGroup
from ._protocol import AdapterLike

__all__ = ["register_exchange_health"]


class _LimiterCheck(HealthCheck):
    """DEGRADED while the account is banned or drained, else HEALTHY; details: headroom."""

    def __init__(self, adapter: AdapterLike, config: HealthCheckConfig) -> None:
        super().__init__(f"exchange.{adapter.exchange_id}.rate_limit", config)
        self._adapter = adapter

    async def check(self) -> CheckResult:
        limiter = self._adapter.limiter
        ban = limiter.ban_remaining()
        paused = limiter.account.snapshot().get("pause_remaining") or 0.0
        details = {
            "headroom": limiter.headroom(),
            "ban_remaining": ban,
            "pause_remaining": paused,
            "drains": limiter.drains,
        }
        if ban > 0:
            return CheckResult(ServiceStatus.UNHEALTHY, f"host banned for {ban:.0f}s", details)
        if paused > 0:
            return CheckResult(ServiceStatus.DEGRADED, "rate limit reached: paused", details)
        return CheckResult(ServiceStatus.HEALTHY, "", details)


class _MaintenanceCheck(HealthCheck):
    def __init__(self, adapter: AdapterLike, config: HealthCheckConfig) -> None:
        super().__init__(f"exchange.{adapter.exchange_id}.maintenance", config)
        self._adapter = adapter

    async def check(self) -> CheckResult:
        guard = self._adapter.maintenance
        if guard.active:
            return CheckResult(ServiceStatus.DEGRADED, "exchange in maintenance", guard.snapshot())
        return CheckResult(ServiceStatus.HEALTHY, "", guard.snapshot())


def register_exchange_health(
    adapter: AdapterLike,
    service: HealthService,
    fetch_time: Callable[[], Awaitable[Any]],
) -> list[HealthCheck]:
    """Register the exchange's checks with ``service``; returns them.

    ``exchange.<id>.ping`` (``fetch_time`` through the adapter), one
    ``exchange.<id>.breaker.<group>`` per method group,
    ``exchange.<id>.rate_limit`` and ``exchange.<id>.maintenance``.
    """
    interval = adapter.config.health_check_interval
    prefix = f"exchange.{adapter.exchange_id}"

    async def ping() -> CheckResult:
        server_time = await fetch_time()  # through the adapter: breaker, limiter, pool
        return CheckResult(ServiceStatus.HEALTHY, "", {"server_time": server_time})

    checks: list[HealthCheck] = [
        SimpleHealthCheck(
            f"{prefix}.ping",
            ping,
            HealthCheckConfig(interval=interval, timeout=min(interval, 10.0)),
        )
    ]
    for group in MethodGroup:
        checks.append(
            CircuitBreakerHealthCheck(
                adapter.breaker(group),
                HealthCheckConfig(interval=interval),
                name=f"{prefix}.breaker.{group.value}",
            )
        )
    checks.append(_LimiterCheck(adapter, HealthCheckConfig(interval=interval)))
    checks.append(_MaintenanceCheck(adapter, HealthCheckConfig(interval=interval)))
    for check in checks:
        service.register_health_check(check)
    return checks
