"""What the monitoring API keeps between requests: cached bodies, the breaker
event log, readiness flags. One per application."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from ..clock import Clock
from ..health import HealthService, ServiceStatus
from ..registry import CIRCUIT_BREAKERS, ResilienceRegistry
from ._breaker_log import BreakerEventLog
from ._settings import MonitoringSettings

__all__ = ["CachedBody", "MonitoringState"]

log = logging.getLogger("virtuoso_resilience.monitoring")


BREAKERS: Final = "breakers"
"""Source: a breaker changed state."""
HEALTH: Final = "health"
"""Source: the overall health status changed."""
COMPONENTS: Final = "components"
"""Source: components came, went or were replaced (or the server started or drains)."""
ALL_SOURCES: Final = (BREAKERS, HEALTH, COMPONENTS)


@dataclass(frozen=True, slots=True)
class CachedBody:
    """A serialised response: HTTP status, content type and UTF-8 JSON bytes,
    with the versions of the sources it was built from."""

    status: int
    content_type: str
    body: bytes
    versions: tuple[int, ...]
    sequence: int
    built_at: float


class MonitoringState:
    """The registry the API reads, its settings, and what it caches.

    Bodies are cached by key. A body is rebuilt when ``settings.cache_ttl``
    seconds (on ``clock``) have passed since it was built, or when something
    changed — a breaker's state, the overall health status, the set of
    components — and at least ``settings.min_rebuild_interval`` seconds
    have passed (at once after a change made through the API, a component
    added or removed, or when the app starts or starts draining). Reading never runs a health check.
    """

    def __init__(
        self, registry: ResilienceRegistry, settings: MonitoringSettings, clock: Clock
    ) -> None:
        self.registry = registry
        self.settings = settings
        self.clock = clock
        self.health: HealthService = registry.health
        self.events = BreakerEventLog(settings.event_log_size, on_change=self._on_breaker_change)
        self.started = False
        self.draining = False
        self._versions = dict.fromkeys(ALL_SOURCES, 0)
        self._sequence = 0  # bumped by every change that must show at once
        self.rebuilds = 0
        self._cache: dict[str, CachedBody] = {}
        self._fingerprint: tuple[tuple[str, int], ...] = ()
        self._watcher: asyncio.Task[None] | None = None
        self._listening = False

    # ------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Subscribe to health changes and breakers; start the registry watcher."""
        if not self._listening:
            self.health.add_status_listener(self._on_health_change)
            self._listening = True
        self.sync()
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.get_running_loop().create_task(
                self._watch(), name="monitoring-registry-watch"
            )
        self.started = True
        self.draining = False
        self.invalidate(now=True)

    def begin_drain(self) -> None:
        """Readiness answers 503 from now on."""
        self.draining = True
        self.invalidate(now=True)

    async def stop(self) -> None:
        """Unsubscribe from everything and stop the watcher."""
        self.started = False
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
            self._watcher = None
        if self._listening:
            self.health.remove_status_listener(self._on_health_change)
            self._listening = False
        self.events.close()

    async def _watch(self) -> None:
        # A housekeeping poll on the state's clock: breakers added, removed or
        # replaced while no request arrives are followed within watch_interval.
        while True:
            await self.clock.sleep(self.settings.watch_interval)
            try:
                if self.events.watch(self.registry.components(CIRCUIT_BREAKERS)):
                    self.invalidate(COMPONENTS, now=True)
            except Exception as exc:  # never let the watcher die
                log.warning("monitoring: registry watch failed: %s", type(exc).__name__)

    # ----------------------------------------------------------------- cache

    def _on_health_change(self, status: ServiceStatus) -> None:
        self.invalidate(HEALTH)

    def _on_breaker_change(self) -> None:
        self.invalidate(BREAKERS)

    def invalidate(self, *sources: str, now: bool = False) -> None:
        """Bodies built from ``sources`` (default: all) are stale: rebuilt on
        their next request once ``settings.min_rebuild_interval`` has passed
        since they were built, or at once with ``now``."""
        for source in sources or ALL_SOURCES:
            self._versions[source] += 1
        if now:
            self._sequence += 1

    def sync(self) -> None:
        """Notice components that came or went (cheap: one count per kind)."""
        registry = self.registry
        fingerprint = tuple((kind, len(registry.components(kind))) for kind in registry.kinds)
        if fingerprint != self._fingerprint:
            self._fingerprint = fingerprint
            self.events.watch(registry.components(CIRCUIT_BREAKERS))
            self.invalidate(COMPONENTS, now=True)  # rare: show new components at once

    def cached(
        self,
        key: str,
        build: Callable[[], tuple[int, str, bytes]],
        sources: tuple[str, ...] = ALL_SOURCES,
    ) -> CachedBody:
        """The cached body for ``key``, rebuilt by ``build()`` when stale.

        ``sources`` are what the body shows: a change elsewhere leaves it
        alone (a breaker flipping does not rebuild the health bodies)."""
        self.sync()
        entry = self._cache.get(key)
        now = self.clock.now()
        versions = tuple(self._versions[s] for s in sources)
        if entry is not None:
            age = now - entry.built_at
            if age < self.settings.cache_ttl and (
                entry.versions == versions
                or (age < self.settings.min_rebuild_interval and entry.sequence == self._sequence)
            ):
                return entry
        status, content_type, body = build()
        entry = CachedBody(status, content_type, body, versions, self._sequence, now)
        self._cache[key] = entry
        self.rebuilds += 1
        return entry

    def __repr__(self) -> str:
        return (
            f"<MonitoringState started={self.started} draining={self.draining} "
            f"cached={len(self._cache)} versions={self._versions} rebuilds={self.rebuilds} "
            f"{self.events!r}>"
        )


def snapshot_of(component: Any) -> Any:
    """``component.snapshot()``, or an error marker if it raises (type name only)."""
    try:
        return component.snapshot()
    except Exception as exc:
        return {"error": f"snapshot failed: {type(exc).__name__}"}
