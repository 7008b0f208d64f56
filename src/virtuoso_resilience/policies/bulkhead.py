"""A bulkhead: a cap on how many calls run at once.

At most ``max_concurrent`` calls hold a slot. A call that finds every slot
taken waits in a FIFO line of at most ``max_waiting`` places, for at most
``max_wait`` seconds (event-loop time); otherwise it is rejected with
:class:`~virtuoso_resilience.errors.BulkheadFullError` without running.

A freed slot is handed straight to the first waiter, so callers arriving
later never overtake the line. A waiter cancelled while waiting gives its
place back; a waiter cancelled at the very moment a slot was handed to it
passes the slot on to the next waiter, so no slot ever leaks.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, ParamSpec, TypeVar

from .._model import ConfigModel, Count, NonNegativeCount, PositiveSeconds
from ..errors import BulkheadFullError
from ._core import NO_LISTENERS, PolicyName, SingleStreamPolicy
from ._decorate import decorate

__all__ = ["Bulkhead", "BulkheadConfig", "BulkheadRejectionEvent"]

P = ParamSpec("P")
T = TypeVar("T")

NO_WAITING_PLACE = "no waiting place"
"""``BulkheadFullError.reason`` when every slot and every waiting place is taken."""


class BulkheadConfig(ConfigModel):
    """How many calls may run and wait. Times are in seconds.

    Validated on creation and on assignment. Run-time changes apply at once:
    raising ``max_concurrent`` hands the new slots to waiters straight away;
    lowering it lets running calls finish and admits no one until the count is
    under the new limit. ``max_waiting`` and ``max_wait`` apply to calls that
    start waiting after the change.
    """

    name: PolicyName | None = None
    """The bulkhead's name; filled in by the bulkhead when left out."""
    max_concurrent: Count = 10
    """Calls allowed to run at the same time."""
    max_waiting: NonNegativeCount = 0
    """Calls allowed to wait for a slot; 0 rejects at once when all slots are taken."""
    max_wait: PositiveSeconds | None = None
    """Seconds a call may wait for a slot; ``None`` waits as long as needed."""


@dataclass(frozen=True, slots=True)
class BulkheadRejectionEvent:
    """A call was refused a slot: ``reason`` is ``"no waiting place"`` or
    ``"waited <max_wait>s"``; the counts are those at the moment of refusal."""

    name: str
    reason: str
    max_concurrent: int
    max_waiting: int
    active: int
    waiting: int


class Bulkhead(SingleStreamPolicy[BulkheadConfig, BulkheadRejectionEvent]):
    """Limits concurrent calls to one dependency.

    ``await bulkhead.call_async(fn, *args, **kwargs)``, ``@bulkhead`` on an
    ``async def``, or ``async with bulkhead:``. Rejections raise
    :class:`BulkheadFullError` whose ``reason`` is ``"no waiting place"`` or
    ``"waited <max_wait>s"``; each rejection is also published to the
    listeners (:meth:`add_listener`) as a :class:`BulkheadRejectionEvent`.
    """

    kind = "bulkhead"
    config_type = BulkheadConfig
    default_name = "bulkhead"

    __slots__ = (
        "_accepted",
        "_active",
        "_limit",
        "_peak",
        "_rejected_full",
        "_rejected_wait",
        "_wait_total",
        "_waited",
        "_waiters",
    )

    def __init__(
        self, name: str | None = None, config: BulkheadConfig | None = None, **settings: Any
    ) -> None:
        """``Bulkhead("orders", max_concurrent=5, max_waiting=20, max_wait=2.0)``
        or ``Bulkhead("orders", config)``.

        ``settings`` are :class:`BulkheadConfig` fields; pass them or a config,
        not both.
        """
        config = self._bind(name, config, settings)
        self._open_events()
        self._limit = config.max_concurrent
        self._active = 0
        # Pending waiters in arrival order; the value is unused (ordered set).
        # The future's result is True when a slot was handed over, False when
        # the wait expired.
        self._waiters: OrderedDict[asyncio.Future[bool], None] = OrderedDict()
        self._peak = 0
        self._accepted = 0
        self._waited = 0
        self._wait_total = 0.0
        self._rejected_full = 0
        self._rejected_wait = 0
        config.subscribe(self._on_config_change)

    def _on_config_change(self, field_name: str) -> None:
        if field_name == "max_concurrent":
            self._limit = self._config.max_concurrent
            self._hand_over()

    # ------------------------------------------------------------------ state

    @property
    def active(self) -> int:
        """Calls holding a slot now."""
        return self._active

    @property
    def waiting(self) -> int:
        """Calls waiting for a slot now."""
        return sum(1 for f in self._waiters if not f.done())

    @property
    def available(self) -> int:
        """Free slots now."""
        return max(0, self._limit - self._active)

    # ---------------------------------------------------------------- acquire

    async def acquire(self) -> None:
        """Take a slot, waiting for one if the configuration allows.

        Pair every successful ``acquire()`` with one :meth:`release`.
        Raises :class:`BulkheadFullError` when no slot can be had.
        """
        if self._active < self._limit and not self._waiters:
            self._active += 1
            self._accepted += 1
            if self._active > self._peak:
                self._peak = self._active
            return
        await self._wait()

    def release(self) -> None:
        """Give a slot back; the first waiter, if any, gets it."""
        if self._active <= 0:
            raise RuntimeError(f"bulkhead {self.name!r}: release() without acquire()")
        self._active -= 1
        if self._waiters:
            self._hand_over()

    async def _wait(self) -> None:
        # A free slot is handed over the moment it frees up, so here every
        # slot is taken, or callers are already in line: join the line.
        waiters = self._waiters
        cfg = self._config
        if len(waiters) >= cfg.max_waiting:
            # Some of them may be cancelled waiters that have not run their
            # clean-up yet: drop those before deciding.
            for done in [f for f in waiters if f.done()]:
                del waiters[done]
            if len(waiters) >= cfg.max_waiting:
                self._rejected_full += 1
                raise self._rejection(NO_WAITING_PLACE)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        waiters[future] = None
        max_wait = cfg.max_wait
        timer = None if max_wait is None else loop.call_later(max_wait, self._expire, future)
        started = loop.time()
        try:
            granted = await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled() and future.result():
                # A slot was handed to us as we were cancelled: pass it on.
                self.release()
            else:
                waiters.pop(future, None)
            raise
        finally:
            if timer is not None:
                timer.cancel()
        self._wait_total += loop.time() - started
        if not granted:
            self._rejected_wait += 1
            raise self._rejection(f"waited {max_wait}s")
        self._waited += 1
        self._accepted += 1

    def _rejection(self, reason: str) -> BulkheadFullError:
        max_waiting = self._config.max_waiting
        if self._events is not NO_LISTENERS:
            self._events.emit(
                BulkheadRejectionEvent(
                    self.name, reason, self._limit, max_waiting, self._active, self.waiting
                )
            )
        return BulkheadFullError(self.name, self._limit, max_waiting, reason)

    def _expire(self, future: asyncio.Future[bool]) -> None:
        if not future.done():
            self._waiters.pop(future, None)
            future.set_result(False)

    def _hand_over(self) -> None:
        """Give free slots to the first waiters, in arrival order."""
        waiters = self._waiters
        while waiters and self._active < self._limit:
            future, _ = waiters.popitem(last=False)
            if future.done():  # cancelled, clean-up still pending
                continue
            self._active += 1
            if self._active > self._peak:
                self._peak = self._active
            future.set_result(True)

    # ------------------------------------------------------------------- call

    async def call_async(
        self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Run ``await fn(*args, **kwargs)`` holding a slot."""
        if self._active < self._limit and not self._waiters:
            self._active += 1
            self._accepted += 1
            if self._active > self._peak:
                self._peak = self._active
        else:
            await self._wait()
        try:
            return await fn(*args, **kwargs)
        finally:
            self._active -= 1
            if self._waiters:
                self._hand_over()

    def __call__(
        self, fn: Callable[P, Coroutine[Any, Any, T]]
    ) -> Callable[P, Coroutine[Any, Any, T]]:
        """Decorate an ``async def`` so every call holds a slot of this bulkhead."""
        return decorate(
            fn, self.call_async, attribute="bulkhead", owner=self, label=f"bulkhead {self.name!r}"
        )

    async def __aenter__(self) -> Bulkhead:
        await self.acquire()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]:
        self.release()
        return False

    # ---------------------------------------------------------------- metrics

    def snapshot(self) -> dict[str, Any]:
        """JSON-ready metrics.

        ``waited`` counts calls that got a slot after waiting;
        ``total_wait_seconds`` sums the waits that ended with a slot or with a
        ``max_wait`` rejection (cancelled waits are not counted).
        """
        cfg = self._config
        return {
            "name": self.name,
            "kind": "bulkhead",
            "max_concurrent": self._limit,
            "max_waiting": cfg.max_waiting,
            "max_wait": cfg.max_wait,
            "active": self._active,
            "waiting": self.waiting,
            "available": self.available,
            "peak_active": self._peak,
            "accepted": self._accepted,
            "waited": self._waited,
            "rejected": self._rejected_full + self._rejected_wait,
            "rejected_by_reason": {
                "no_waiting_place": self._rejected_full,
                "max_wait": self._rejected_wait,
            },
            "total_wait_seconds": self._wait_total,
        }

    def __repr__(self) -> str:
        return (
            f"<Bulkhead {self.name!r} active={self._active}/{self._limit} "
            f"waiting={self.waiting}/{self._config.max_waiting} peak={self._peak} "
            f"accepted={self._accepted} rejected={self._rejected_full + self._rejected_wait}>"
        )
