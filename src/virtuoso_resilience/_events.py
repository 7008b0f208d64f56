"""The one listener contract: :class:`Listeners`, an event stream's subscribers.

Every component that publishes events (circuit breakers, retry policies,
rate limiters, bulkheads, the health service, adapters) holds one
:class:`Listeners` per event stream and calls :meth:`Listeners.emit`. The
contract, the same everywhere:

- A listener is ``listener(event)``: a plain function, or a coroutine
  function (or any callable returning an awaitable).
- :meth:`~Listeners.emit` never raises, never awaits and never blocks: a sync
  listener runs inline (keep it cheap); an async listener's awaitable is
  queued to that listener's own worker task, so it never delays or fails the
  call that published the event.
- Deliveries to one listener happen in order, one at a time, each for at most
  ``timeout`` seconds; a listener still running then is cancelled and left
  behind (a listener that ignores cancellation cannot hold up the next event).
- A listener that raises (anything but ``KeyboardInterrupt``/``SystemExit``)
  is logged with its name and the exception type only (messages can carry
  secrets) and counted; the others still get the event.
- Delivery is bounded: at most ``max_pending`` undelivered events per
  listener; beyond that the oldest is dropped and counted. Events still
  queued or in delivery when the hub is closed, a listener removed, or the
  event loop shut down are dropped and counted too (their coroutines are
  closed, never left "never awaited"): every event published to an async
  listener ends up ``delivered``, ``failed``, ``timed_out``, ``dropped`` or
  ``pending``.
- With no running event loop (an event published from set-up code) an async
  listener's event is dropped and counted; sync listeners still run.
- ``clock`` (optional) is the clock the delivery and drain timeouts run on
  (a component's injected clock, so tests drive them on virtual time);
  without one they run on the event loop's time.
- :meth:`~Listeners.drain` and :meth:`~Listeners.close` called from inside a
  listener (a listener that stops its publisher) neither wait for nor cancel
  that listener's own delivery.

``bool(listeners)`` is the hot-path check: publish only when someone listens.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from .clock import Clock

__all__ = ["ListenerStats", "Listeners", "listener_name"]

log = logging.getLogger("virtuoso_resilience.events")

E = TypeVar("E")

Listener = Callable[[E], Any]


def listener_name(listener: object) -> str:
    """A listener's name for logs; never its repr (which may show secrets).

    Never raises: ``getattr`` with a default swallows only AttributeError,
    and a callable whose attribute lookup raises something else (a proxy, an
    attribute-dict object) must not make :meth:`Listeners.emit` raise.
    """
    try:
        name = getattr(listener, "__qualname__", None)
    except Exception:
        name = None
    return name if isinstance(name, str) else type(listener).__qualname__


@dataclass(frozen=True, slots=True)
class ListenerStats:
    """What happened to the events of one stream (counts since creation)."""

    listeners: int
    delivered: int
    failed: int
    timed_out: int
    dropped: int
    pending: int


class _Slot:
    __slots__ = ("callback", "current", "queue", "worker")

    def __init__(self, callback: Callable[[Any], Any]) -> None:
        self.callback = callback
        self.queue: deque[Awaitable[Any]] = deque()
        self.worker: asyncio.Task[None] | None = None
        self.current: asyncio.Future[Any] | None = None  # the delivery in progress

    def runs(self, task: asyncio.Future[Any] | None) -> bool:
        """True when ``task`` is this slot's worker or its delivery in progress."""
        return task is not None and (task is self.worker or task is self.current)


def _discard(awaitable: Awaitable[Any]) -> None:
    if inspect.iscoroutine(awaitable):
        awaitable.close()


def _cancel_once(task: asyncio.Future[Any]) -> None:
    """Cancel ``task`` unless it is being cancelled already (a second request
    would interrupt the cleanup the first one started)."""
    if isinstance(task, asyncio.Task) and task.cancelling():
        return
    task.cancel()


def _current_task() -> asyncio.Task[Any] | None:
    try:
        return asyncio.current_task()
    except RuntimeError:  # no running loop
        return None


def _foreign(task: asyncio.Future[Any]) -> bool:
    """True when ``task`` belongs to an event loop other than the running one."""
    try:
        return task.get_loop() is not asyncio.get_running_loop()
    except RuntimeError:  # no running loop: only a closed loop's tasks are foreign
        return task.get_loop().is_closed()


class Listeners(Generic[E]):
    """The subscribers of one event stream, delivered by the one contract.

    ``owner`` names the publisher in log lines (``"circuit breaker 'bybit'"``);
    ``timeout`` (seconds) bounds each async delivery; ``max_pending`` bounds
    the undelivered events kept per listener; ``clock`` (optional) is what
    the timeouts run on.
    """

    __slots__ = (
        "_abandoned",
        "_clock",
        "_delivered",
        "_dropped",
        "_failed",
        "_slots",
        "_timed_out",
        "max_pending",
        "owner",
        "timeout",
    )

    def __init__(
        self,
        owner: str,
        *,
        timeout: float = 10.0,
        max_pending: int = 100,
        clock: Clock | None = None,
    ) -> None:
        self.owner = owner
        self.timeout = timeout
        self.max_pending = max_pending
        self._clock = clock
        self._slots: tuple[_Slot, ...] = ()
        self._delivered = 0
        self._failed = 0
        self._timed_out = 0
        self._dropped = 0
        # Deliveries cut off at their timeout and still running (made on first use).
        self._abandoned: set[asyncio.Task[Any]] | None = None

    def __bool__(self) -> bool:
        return bool(self._slots)

    def __len__(self) -> int:
        return len(self._slots)

    def __repr__(self) -> str:
        s = self.stats()
        return (
            f"<Listeners {self.owner} listeners={s.listeners} delivered={s.delivered} "
            f"failed={s.failed} timed_out={s.timed_out} dropped={s.dropped} pending={s.pending}>"
        )

    # ------------------------------------------------------------ subscribers

    def add(self, listener: Listener[E]) -> Listener[E]:
        """Subscribe ``listener`` (adding it twice has no effect); returns it."""
        if not callable(listener):
            raise TypeError(f"{self.owner}: a listener must be callable, not {type(listener)!r}")
        if not any(slot.callback == listener for slot in self._slots):
            self._slots = (*self._slots, _Slot(listener))
        return listener

    def remove(self, listener: Listener[E]) -> bool:
        """Unsubscribe ``listener``; its undelivered events are dropped.

        Returns whether it was subscribed.
        """
        kept = tuple(s for s in self._slots if s.callback != listener)
        removed = [s for s in self._slots if s.callback == listener]
        self._slots = kept
        for slot in removed:
            self._cancel_slot(slot)
        return bool(removed)

    def clear(self) -> None:
        """Unsubscribe every listener."""
        slots, self._slots = self._slots, ()
        for slot in slots:
            self._cancel_slot(slot)

    # ------------------------------------------------------------- publishing

    def emit(self, event: E) -> None:
        """Give ``event`` to every listener; never raises, never awaits."""
        for slot in self._slots:
            try:
                result = slot.callback(event)
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as exc:
                self._failed += 1
                self._log_failure(slot.callback, exc)
                continue
            if result is None or not inspect.isawaitable(result):
                self._delivered += 1
                continue
            self._enqueue(slot, result)

    def _enqueue(self, slot: _Slot, awaitable: Awaitable[Any]) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # published from set-up code: nowhere to run it
            _discard(awaitable)
            self._dropped += 1
            log.warning(
                "%s: async listener %s skipped (no running event loop)",
                self.owner,
                listener_name(slot.callback),
            )
            return
        slot.queue.append(awaitable)
        while len(slot.queue) > self.max_pending:
            _discard(slot.queue.popleft())
            self._dropped += 1
        worker = slot.worker
        if worker is None or worker.done() or worker.get_loop() is not loop:
            worker = loop.create_task(self._deliver(slot), name=f"{self.owner}-listener")
            worker.add_done_callback(functools.partial(self._worker_done, slot))
            slot.worker = worker

    def _worker_done(self, slot: _Slot, worker: asyncio.Task[None]) -> None:
        # A worker cancelled (by close(), remove(), or the loop shutting down,
        # perhaps before it ever ran) leaves its queue behind: drop it, closing
        # the coroutines so none is reported as "never awaited".
        if worker.cancelled() and slot.worker is worker:
            while slot.queue:
                _discard(slot.queue.popleft())
                self._dropped += 1

    async def _deliver(self, slot: _Slot) -> None:
        loop = asyncio.get_running_loop()
        while slot.queue:
            awaitable = slot.queue.popleft()
            task = asyncio.ensure_future(awaitable, loop=loop)
            slot.current = task
            try:
                done = await self._wait({task}, self.timeout)
            except asyncio.CancelledError:  # closed, removed, or the loop is ending
                _cancel_once(task)
                self._dropped += 1
                raise
            finally:
                slot.current = None
            if not done:
                task.cancel()
                self._timed_out += 1
                if self._abandoned is None:
                    self._abandoned = set()
                self._abandoned.add(task)
                task.add_done_callback(self._abandoned.discard)
                log.warning(
                    "%s: listener %s timed out after %gs; cut off",
                    self.owner,
                    listener_name(slot.callback),
                    self.timeout,
                )
                continue
            if task.cancelled():
                self._failed += 1
                continue
            exc = task.exception()
            if exc is None:
                self._delivered += 1
            else:
                self._failed += 1
                self._log_failure(slot.callback, exc)

    async def _wait(self, tasks: set[asyncio.Future[Any]], within: float | None) -> bool:
        """Wait until every one of ``tasks`` is done, for at most ``within``
        seconds (on the clock when there is one); True when they all are."""
        clock = self._clock
        if clock is None or within is None:
            _, pending = await asyncio.wait(tasks, timeout=within)
            return not pending
        timer = asyncio.ensure_future(clock.sleep(within))
        try:
            pending = {t for t in tasks if not t.done()}
            while pending and not timer.done():
                await asyncio.wait((*pending, timer), return_when=asyncio.FIRST_COMPLETED)
                pending = {t for t in pending if not t.done()}
            return not pending
        finally:
            if not timer.done():
                timer.cancel()
                await asyncio.wait((timer,))

    def _log_failure(self, callback: object, exc: BaseException) -> None:
        log.warning(
            "%s: listener %s raised %s; ignored",
            self.owner,
            listener_name(callback),
            type(exc).__qualname__,
        )

    def _cancel_slot(self, slot: _Slot) -> list[asyncio.Future[Any]]:
        """Drop ``slot``'s queue and cancel its worker; the tasks left ending.

        From inside the slot's own delivery nothing is cancelled: the worker
        ends when that delivery returns, the queue being empty.
        """
        while slot.queue:
            _discard(slot.queue.popleft())
            self._dropped += 1
        worker, current = slot.worker, slot.current
        if worker is None or worker.done() or _foreign(worker):
            slot.worker = None
            return []
        if slot.runs(_current_task()):
            return []
        worker.cancel()
        if current is not None:
            _cancel_once(current)
        slot.worker = None
        return [t for t in (worker, current) if t is not None and not t.done()]

    # --------------------------------------------------------------- shutdown

    async def drain(self, within: float | None = None) -> bool:
        """Wait until every queued event is delivered (at most ``within`` s).

        Returns True when nothing is left pending. Used by ``stop()`` methods
        so that the last changes reach their listeners. Called from inside a
        listener, it does not wait for that listener's own deliveries.
        """
        me = _current_task()
        workers: set[asyncio.Future[Any]] = {
            s.worker
            for s in self._slots
            if s.worker is not None
            and not s.worker.done()
            and not _foreign(s.worker)
            and not s.runs(me)
        }
        if not workers:
            return True
        return await self._wait(workers, within)

    def close(self) -> list[asyncio.Future[Any]]:
        """Cancel every worker and drop what is queued (listeners stay subscribed).

        Returns the cancelled tasks that have not ended yet (a delivery whose
        ``finally`` still runs, one that ignores cancellation), for a caller
        that wants to wait for them. Workers of another event loop (one that
        ended) are forgotten, not cancelled: that loop owns them.
        """
        ending: list[asyncio.Future[Any]] = []
        for slot in self._slots:
            ending += self._cancel_slot(slot)
        for task in tuple(self._abandoned or ()):
            if not task.done() and not _foreign(task):
                task.cancel()
                ending.append(task)
        return ending

    def stats(self) -> ListenerStats:
        """Counts since creation, and the events waiting now."""
        return ListenerStats(
            listeners=len(self._slots),
            delivered=self._delivered,
            failed=self._failed,
            timed_out=self._timed_out,
            dropped=self._dropped,
            pending=sum(len(s.queue) for s in self._slots),
        )
