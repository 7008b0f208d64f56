"""Health of the shared state: DEGRADED while Redis is unreachable (local state)."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from ..health import CheckResult, HealthCheck, HealthCheckConfig, ServiceStatus
from ._link import Down, RedisLink

__all__ = ["SharedStateHealthCheck"]


class SharedStateHealthCheck(HealthCheck):
    """``PING`` through the link (none while its breaker is open): HEALTHY when
    Redis answers, DEGRADED while every process runs on local state. Never
    UNHEALTHY: the bot keeps working without Redis. Details never show the
    URL's password."""

    def __init__(
        self, link: RedisLink, config: HealthCheckConfig | None = None, *, name: str | None = None
    ) -> None:
        super().__init__(name or f"shared_state.{link.name}", config or HealthCheckConfig())
        self._link = link

    async def check(self) -> CheckResult:
        async def ping(client: aioredis.Redis) -> Any:
            return await client.ping()

        answer = await self._link.run(ping)
        details = self._link.snapshot()
        if isinstance(answer, Down):
            return CheckResult(
                ServiceStatus.DEGRADED, "Redis unreachable: running on local state", details
            )
        return CheckResult(ServiceStatus.HEALTHY, "", details)
