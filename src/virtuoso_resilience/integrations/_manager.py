"""The resilience manager: one registry's life cycle (initialize, shutdown)."""

from __future__ import annotations

import asyncio
from typing import Any

from ..config import ResilienceConfiguration, create_default_resilience_config
from ..errors import ResilienceError
from ..health import HealthReport, HealthService, ServiceStatus
from ..registry import ResilienceRegistry

__all__ = ["ResilienceManager", "UnhealthyError"]


class UnhealthyError(ResilienceError):
    """The health checks found the service unhealthy (``report`` says which checks)."""

    def __init__(self, report: HealthReport) -> None:
        self.report = report
        failing = sorted(
            name for name, check in report.checks.items() if check.status >= ServiceStatus.UNHEALTHY
        )
        cause = f"; root cause: {report.root_cause}" if report.root_cause else ""
        super().__init__(
            f"resilience health is {report.status.value}: "
            f"failing checks: {', '.join(failing) or 'none'}{cause}"
        )


class ResilienceManager:
    """Owns a :class:`~virtuoso_resilience.ResilienceRegistry` and its life cycle.

    ``await initialize()`` starts background health checks (when
    ``config.enable_health_checks``); ``await shutdown()`` stops them and
    closes every pool and component. Both are idempotent and safe to call
    concurrently. What :func:`register_resilience_services` returns.
    """

    def __init__(
        self,
        config: ResilienceConfiguration | None = None,
        *,
        registry: ResilienceRegistry | None = None,
    ) -> None:
        if registry is None:
            registry = ResilienceRegistry(config or create_default_resilience_config())
        elif config is not None and registry.config is not config:
            raise ValueError("pass a config or a registry built with it, not both")
        self.registry = registry
        self._lock = asyncio.Lock()
        self._state = "created"

    @property
    def config(self) -> ResilienceConfiguration:
        """The configuration in force (change its fields at run time)."""
        return self.registry.config

    @property
    def health(self) -> HealthService:
        """The registry's health service."""
        return self.registry.health

    @property
    def state(self) -> str:
        """``"created"``, ``"running"`` or ``"stopped"``."""
        return self._state

    async def initialize(self) -> None:
        """Start background health checks (once); a stopped manager starts again."""
        async with self._lock:
            if self._state == "running":
                return
            await self.registry.start()
            self._state = "running"

    async def shutdown(self) -> None:
        """Stop health checks, close pools and components (once)."""
        async with self._lock:
            if self._state == "stopped":
                return
            await self.registry.aclose()
            self._state = "stopped"

    async def check_health(self) -> HealthReport:
        """Run every health check now; raise :class:`UnhealthyError` when unhealthy.

        DEGRADED and UNKNOWN pass (a warning): only an overall UNHEALTHY or CRITICAL
        raises (a failing check marked ``critical``; a non-critical failure degrades).
        """
        report = await self.registry.health.run_checks()
        if report.status >= ServiceStatus.UNHEALTHY:
            raise UnhealthyError(report)
        return report

    def snapshot(self) -> dict[str, Any]:
        """The registry's snapshot plus the manager's state."""
        return {"state": self._state, **self.registry.snapshot()}

    async def __aenter__(self) -> ResilienceManager:
        await self.initialize()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.shutdown()

    def __repr__(self) -> str:
        return f"<ResilienceManager {self._state} {self.registry!r}>"
