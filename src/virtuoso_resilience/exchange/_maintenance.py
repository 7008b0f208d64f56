"""Maintenance: pause the exchange's calls and poll its status until it ends.

Signals combined: an ``OnMaintenance`` / 503 maintenance answer from any call
enters maintenance; ``fetch_status()`` (unreliable on some venues, so never
trusted alone to *end* it) is polled with backoff; the maintenance ends when
status says ``ok`` *and* a ``fetch_time`` probe answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from ..clock import Clock
from ._config import ExchangeResilienceConfig
from ._errors import MaintenanceError
from ._protocol import AdapterLike

__all__ = ["MaintenanceGuard"]


class MaintenanceGuard:
    """Whether the exchange is in maintenance, and the poller that ends it."""

    def __init__(
        self, adapter: AdapterLike, config: ExchangeResilienceConfig, clock: Clock
    ) -> None:
        self._adapter = adapter
        self._config = config
        self._clock = clock
        self.active = False
        self.expected_end: float | None = None  # Unix time (seconds)
        self.entered = 0
        self.polls = 0
        self._ended: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None

    def enter(self, retry_after: float | None) -> None:
        """An answer said "maintenance": pause calls, start polling."""
        if retry_after is not None:
            self.expected_end = time.time() + retry_after
        if self.active:
            return
        self.active = True
        self.entered += 1
        self._ended = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._poll())

    def _end(self) -> None:
        self.active = False
        self.expected_end = None
        if self._ended is not None:
            self._ended.set()

    def error(self) -> MaintenanceError:
        left = None if self.expected_end is None else max(0.0, self.expected_end - time.time())
        return MaintenanceError(self._adapter.exchange_id, self.expected_end, left)

    async def wait(self, method: str) -> None:
        """Called before a call while in maintenance: wait for the end (up to
        ``maintenance_max_wait``) or raise :class:`MaintenanceError`."""
        limit = self._config.maintenance_max_wait
        ended = self._ended
        if limit is None or ended is None:
            raise self.error()
        try:
            async with asyncio.timeout(limit):
                await ended.wait()
        except TimeoutError:
            raise self.error() from None

    async def _poll(self) -> None:
        raw: Any = self._adapter.exchange
        delay = self._config.maintenance_poll_base
        while self.active:
            await self._clock.sleep(delay)
            delay = min(delay * 2.0, self._config.maintenance_poll_max)
            self.polls += 1
            try:
                status = await raw.fetch_status()
            except Exception:
                continue  # still down, or status unavailable: keep polling
            state = status.get("status") if isinstance(status, dict) else None
            eta = status.get("eta") if isinstance(status, dict) else None
            if state == "maintenance":
                if isinstance(eta, int | float) and not isinstance(eta, bool) and eta > 0:
                    self.expected_end = float(eta) / 1000.0
                continue
            try:  # status says ok: believe it only when a real call answers
                await raw.fetch_time()
            except Exception:
                continue
            self._end()

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._end()

    def snapshot(self) -> dict[str, Any]:
        return {
            "active": self.active,
            "expected_end": self.expected_end,
            "entered": self.entered,
            "polls": self.polls,
        }

    def __repr__(self) -> str:
        end = "unknown" if self.expected_end is None else f"{self.expected_end:.0f}"
        return (
            f"<MaintenanceGuard {self._adapter.exchange_id} active={self.active} "
            f"expected_end={end} entered={self.entered} polls={self.polls}>"
        )
