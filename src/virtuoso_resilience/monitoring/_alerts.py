"""Alerts on health status changes: the :class:`AlertSink` protocol and the notifier.

:class:`AlertNotifier` subscribes to a
:class:`~virtuoso_resilience.HealthService` (``attach``) and turns every
change of the overall status into one :class:`Alert` per sink. It never
affects the application: the status listener only appends to a bounded
queue (it never blocks and never raises); one worker task per sink sends,
spacing sends by ``min_interval`` seconds, retrying failures with the
project's :class:`~virtuoso_resilience.RetryPolicy` (backoff, and the wait a
server asks for through ``Retry-After``), each attempt cut off after
``send_timeout`` seconds. The same change repeated within ``dedupe_window``
seconds is sent once. Backoff, spacing, deduplication and rate-limit pauses
run on the injected clock; ``send_timeout`` bounds real I/O, so it runs on
the event loop's time.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, runtime_checkable

from pydantic import Field, model_validator

from .._model import ConfigModel, Count, PositiveSeconds, RuleError, Seconds
from ..clock import MONOTONIC, Clock
from ..health import HealthChange, HealthService, ServiceStatus
from ..policies import RetryConfig, RetryPolicy

__all__ = ["Alert", "AlertNotifier", "AlertNotifierConfig", "AlertSink", "SinkStats"]

log = logging.getLogger("virtuoso_resilience.monitoring.alerts")

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Alert:
    """One change of the overall health status, as sent to sinks.

    ``service`` names the application, ``previous`` and ``current`` are
    status values (``"healthy"``, ``"degraded"``, ...), ``root_cause`` the
    deepest failing check (None when healthy), ``check`` the check whose
    result caused the change, ``at`` the health service clock's time (seconds).
    """

    service: str
    previous: str
    current: str
    root_cause: str | None
    check: str | None
    at: float

    @classmethod
    def from_change(cls, service: str, change: HealthChange) -> Alert:
        """The alert for a :class:`~virtuoso_resilience.HealthChange`."""
        return cls(
            service=service,
            previous=change.previous.value,
            current=change.current.value,
            root_cause=change.root_cause,
            check=change.check,
            at=change.at,
        )

    @property
    def key(self) -> tuple[str, str, str, str | None]:
        """What makes two alerts "the same" for deduplication."""
        return (self.service, self.previous, self.current, self.root_cause)

    @property
    def recovered(self) -> bool:
        """True when the new status is healthy."""
        return self.current == ServiceStatus.HEALTHY.value

    def summary(self) -> str:
        """``"<service> health: degraded → critical (root cause: exchange)"``."""
        cause = f" (root cause: {self.root_cause})" if self.root_cause else ""
        return f"{self.service} health: {self.previous} → {self.current}{cause}"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready mapping."""
        return {
            "service": self.service,
            "previous": self.previous,
            "current": self.current,
            "root_cause": self.root_cause,
            "check": self.check,
            "at": self.at,
            "summary": self.summary(),
        }


@runtime_checkable
class AlertSink(Protocol):
    """Where alerts go. ``send`` delivers one alert or raises.

    Raise ``aiohttp.ClientResponseError`` (status, ``Retry-After`` header) or
    another exception the classifier knows: transient failures and rate limits
    are retried by the notifier, anything else is dropped and logged (by
    exception type only). ``name`` labels logs and stats; it must not hold a
    secret. ``aclose`` releases resources (an HTTP session).
    """

    name: str

    async def send(self, alert: Alert) -> None: ...

    async def aclose(self) -> None: ...


class AlertNotifierConfig(ConfigModel):
    """How :class:`AlertNotifier` sends. Times are in seconds."""

    service: str = Field(default="virtuoso-resilience", min_length=1, max_length=200)
    """The application's name, shown in every alert."""
    max_pending: Count = 100
    """Alerts queued per sink at most; beyond that the oldest is dropped (and counted)."""
    dedupe_window: Seconds = 300.0
    """The same change (previous, current, root cause) within this window is sent once."""
    min_interval: Seconds = 1.0
    """Least time between two sends to one sink (our own rate limit)."""
    max_attempts: Count = 5
    """Attempts per alert (first try included)."""
    base_delay: PositiveSeconds = 1.0
    """First backoff delay; grows exponentially with full jitter."""
    max_delay: PositiveSeconds = 60.0
    """Longest backoff, and the longest ``Retry-After`` honoured (longer: the alert is dropped)."""
    send_timeout: PositiveSeconds = 30.0
    """Each attempt is cut off after this long (event-loop time: it bounds real I/O)."""

    @model_validator(mode="after")
    def _delays_ordered(self) -> AlertNotifierConfig:
        if self.base_delay > self.max_delay:
            raise RuleError(
                {"base_delay": self.base_delay, "max_delay": self.max_delay},
                "base_delay must be <= max_delay",
            )
        return self


@dataclass(frozen=True, slots=True)
class SinkStats:
    """What happened to one sink's alerts (counts since creation)."""

    name: str
    queued: int
    sent: int
    failed: int
    dropped: int
    deduplicated: int
    pending: int


class _Slot:
    __slots__ = (
        "deduplicated",
        "dropped",
        "failed",
        "last_sent",
        "next_at",
        "queue",
        "queued",
        "retry",
        "sent",
        "sink",
        "worker",
    )

    def __init__(self, sink: AlertSink, retry: RetryPolicy) -> None:
        self.sink = sink
        self.retry = retry
        self.queue: deque[Alert] = deque()
        self.worker: asyncio.Task[None] | None = None
        self.last_sent: dict[tuple[str, str, str, str | None], float] = {}
        self.next_at = float("-inf")
        self.queued = self.sent = self.failed = self.dropped = self.deduplicated = 0


async def _within(awaitable: Awaitable[T], seconds: float, what: str) -> T:
    """Await ``awaitable`` for at most ``seconds`` (event-loop time); TimeoutError after.

    An awaitable that ignores cancellation is left behind, not waited for.
    """
    task = asyncio.ensure_future(awaitable)
    try:
        done, _ = await asyncio.wait({task}, timeout=seconds)
    except BaseException:
        task.cancel()
        task.add_done_callback(_consume)
        raise
    if task not in done:
        task.cancel()
        task.add_done_callback(_consume)
        raise TimeoutError(f"{what}: no answer within {seconds:g}s")
    return task.result()


def _consume(task: asyncio.Future[Any]) -> None:
    """Retrieve an abandoned task's outcome so it is never reported as unhandled."""
    if not task.cancelled():
        task.exception()


def _describe(exc: BaseException) -> str:
    """An exception for a log line: its type and HTTP status, never its text (may hold a URL)."""
    status = getattr(exc, "status", None)
    if isinstance(status, int) and not isinstance(status, bool):
        return f"{type(exc).__name__} (HTTP {status})"
    return type(exc).__name__


class AlertNotifier:
    """Sends health status changes to sinks, without ever affecting the application.

    ``AlertNotifier([DiscordWebhookSink.from_env()], config, clock=clock)``;
    ``notifier.attach(health_service)`` subscribes to status changes;
    :meth:`notify` queues an alert by hand. :meth:`drain` waits until every
    queued alert has been handled; :meth:`aclose` stops the workers (alerts
    still queued are dropped and counted) and closes the sinks.
    """

    def __init__(
        self,
        sinks: Iterable[AlertSink | None],
        config: AlertNotifierConfig | None = None,
        *,
        clock: Clock = MONOTONIC,
    ) -> None:
        self.config = config if config is not None else AlertNotifierConfig()
        self._clock = clock
        self._slots: list[_Slot] = []
        for sink in sinks:
            if sink is None:  # ``DiscordWebhookSink.from_env()`` with no URL set
                continue
            if not isinstance(sink, AlertSink):
                raise TypeError(
                    f"AlertNotifier(sinks=...) takes AlertSink objects (name, send, aclose), "
                    f"not {type(sink).__name__}"
                )
            self._slots.append(_Slot(sink, self._retry_policy(sink)))
        self._services: list[HealthService] = []
        self._closed = False

    def _retry_policy(self, sink: AlertSink) -> RetryPolicy:
        cfg = self.config
        return RetryPolicy(
            RetryConfig(
                name=f"alerts.{sink.name}",
                max_attempts=cfg.max_attempts,
                base_delay=cfg.base_delay,
                max_delay=cfg.max_delay,
                budget_ratio=None,
            ),
            clock=self._clock,
        )

    # ------------------------------------------------------------ subscribing

    def attach(self, service: HealthService) -> None:
        """Send an alert for every change of ``service``'s overall status."""
        service.add_status_listener(self._on_change)
        if service not in self._services:
            self._services.append(service)

    def detach(self, service: HealthService) -> None:
        """Stop listening to ``service``."""
        service.remove_status_listener(self._on_change)
        if service in self._services:
            self._services.remove(service)

    def _on_change(self, status: ServiceStatus, change: HealthChange | None = None) -> None:
        # A sync listener: runs inline, so it only queues (O(1), never raises).
        try:
            if change is None:
                change = HealthChange(status, status, None, None, self._clock.now())
            self.notify(Alert.from_change(self.config.service, change))
        except Exception as exc:  # pragma: no cover - defensive: never break health
            log.warning("alerts: change not queued (%s)", _describe(exc))

    # --------------------------------------------------------------- queueing

    def notify(self, alert: Alert) -> int:
        """Queue ``alert`` for every sink; returns how many queued it (not deduplicated).

        Never blocks; raises only ``TypeError`` for something that is not an
        :class:`Alert`. Workers start when an event loop runs.
        """
        if not isinstance(alert, Alert):
            raise TypeError(f"AlertNotifier.notify() takes an Alert, not {type(alert).__name__}")
        if self._closed:
            return 0
        now = self._clock.now()
        window = self.config.dedupe_window
        limit = self.config.max_pending
        queued = 0
        for slot in self._slots:
            last = slot.last_sent.get(alert.key)
            if last is not None and now - last < window:
                slot.deduplicated += 1
                continue
            slot.last_sent[alert.key] = now
            if len(slot.last_sent) > 4 * limit:  # bounded memory: forget the oldest keys
                for key in list(slot.last_sent)[: len(slot.last_sent) - 2 * limit]:
                    del slot.last_sent[key]
            slot.queue.append(alert)
            slot.queued += 1
            queued += 1
            while len(slot.queue) > limit:
                slot.queue.popleft()
                slot.dropped += 1
            self._start_worker(slot)
        return queued

    def _start_worker(self, slot: _Slot) -> None:
        if slot.worker is not None and not slot.worker.done():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop yet: started by the next notify() or drain() inside one
        slot.worker = loop.create_task(self._run(slot), name=f"alerts:{slot.sink.name}")

    async def _run(self, slot: _Slot) -> None:
        clock = self._clock
        try:
            while slot.queue:
                wait = slot.next_at - clock.now()
                if wait > 0:
                    await clock.sleep(wait)
                alert = slot.queue.popleft()
                try:
                    await slot.retry.call_async(self._attempt, slot.sink, alert)
                except Exception as exc:
                    slot.failed += 1
                    log.warning(
                        "alerts: %s not delivered to %s (%s)",
                        alert.current,
                        slot.sink.name,
                        _describe(exc),
                    )
                else:
                    slot.sent += 1
                slot.next_at = clock.now() + self.config.min_interval
        finally:
            if slot.worker is asyncio.current_task():
                slot.worker = None

    async def _attempt(self, sink: AlertSink, alert: Alert) -> None:
        seconds = self.config.send_timeout
        await _within(sink.send(alert), seconds, f"alert sink {sink.name}")

    # -------------------------------------------------------------- lifecycle

    async def drain(self) -> None:
        """Wait until every queued alert was sent, failed or dropped."""
        for slot in self._slots:
            if slot.queue:
                self._start_worker(slot)
        while True:
            workers = [s.worker for s in self._slots if s.worker is not None]
            if not workers:
                return
            await asyncio.wait(workers)

    async def aclose(self) -> None:
        """Detach, stop the workers (queued alerts are dropped), close the sinks."""
        self._closed = True
        for service in list(self._services):
            self.detach(service)
        workers = [s.worker for s in self._slots if s.worker is not None]
        for worker in workers:
            worker.cancel()
        if workers:
            await asyncio.wait(workers)
        for slot in self._slots:
            slot.dropped += len(slot.queue)
            slot.queue.clear()
            try:
                await slot.sink.aclose()
            except Exception as exc:
                log.warning("alerts: closing %s failed (%s)", slot.sink.name, _describe(exc))

    # ----------------------------------------------------------------- state

    def stats(self) -> list[SinkStats]:
        """Counts per sink."""
        return [
            SinkStats(
                name=s.sink.name,
                queued=s.queued,
                sent=s.sent,
                failed=s.failed,
                dropped=s.dropped,
                deduplicated=s.deduplicated,
                pending=len(s.queue),
            )
            for s in self._slots
        ]

    def snapshot(self) -> dict[str, Any]:
        """JSON-ready state: config and counts per sink (no URL, no secret)."""
        return {
            "config": self.config.model_dump(mode="json"),
            "sinks": {
                st.name: {
                    "queued": st.queued,
                    "sent": st.sent,
                    "failed": st.failed,
                    "dropped": st.dropped,
                    "deduplicated": st.deduplicated,
                    "pending": st.pending,
                }
                for st in self.stats()
            },
        }

    def __repr__(self) -> str:
        parts = " ".join(
            f"{st.name}(sent={st.sent} failed={st.failed} pending={st.pending})"
            for st in self.stats()
        )
        return f"<AlertNotifier service={self.config.service!r} sinks=[{parts}]>"
