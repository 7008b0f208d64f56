"""The health service: registry of checks, dependency graph, monitor, listeners."""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
import weakref
from collections import deque
from collections.abc import Awaitable, Coroutine, Iterable
from types import TracebackType
from typing import Annotated, Any, TypeVar

from pydantic import Field

from .._events import Listeners
from .._model import ConfigModel, Count, PositiveSeconds
from ..clock import MONOTONIC, Clock
from ..errors import ConfigurationError, FieldError
from ._checks import HealthCheck, HealthCheckConfig, describe_error, to_result
from ._graph import (
    DependencyCycleError,
    NodeStatus,
    evaluate,
    find_cycle,
    overall_status,
    reevaluate,
)
from ._listeners import StatusCall, StatusListener
from ._metrics import CheckMetrics
from ._report import STILL_RUNNING, CheckReport, HealthReport
from ._status import CheckResult, HealthChange, ServiceStatus

__all__ = [
    "CheckReport",
    "HealthReport",
    "HealthService",
]

log = logging.getLogger("virtuoso_resilience.health")

T = TypeVar("T")

_MAX_PENDING = 100  # undelivered changes kept per listener (oldest dropped)
_MAX_METRICS_WINDOW = 100_000


# --------------------------------------------------------------------- internals


class _Entry:
    """One registered check and everything the service knows about it."""

    __slots__ = (
        "__weakref__",
        "active",
        "check",
        "depends_on",
        "inflight",
        "last_duration",
        "last_run_at",
        "last_started",
        "metrics",
        "monitor",
        "result",
        "service",
        "straggler",
        "straggler_counted",
        "straggler_since",
        "tripped",
        "tripped_critical",
        "wake",
        "watched",
    )

    def __init__(self, check: HealthCheck, depends_on: tuple[str, ...], window: int) -> None:
        self.check = check
        self.depends_on = depends_on
        self.metrics = CheckMetrics(window)
        self.active = True
        self.result: CheckResult | None = None
        self.tripped = False
        self.tripped_critical = False
        self.last_started: float | None = None
        self.last_run_at: float | None = None
        self.last_duration: float | None = None
        self.monitor: asyncio.Task[None] | None = None
        self.inflight: asyncio.Task[None] | None = None
        self.wake: asyncio.Future[None] | None = None
        self.watched: HealthCheckConfig | None = None
        self.service: weakref.ref[HealthService] | None = None  # set when watched
        # A run that was cut off (timeout, stop) and has not ended yet. While
        # it lives no other run of the check starts: at most one is alive.
        self.straggler: asyncio.Future[Any] | None = None
        self.straggler_since: float | None = None
        self.straggler_counted = False

    def config_changed(self, field_name: str) -> None:
        """The config observer: a bound method, so the config holds it weakly
        and a check unregistered (its entry dropped) is forgotten by a config
        shared with other checks."""
        service = self.service() if self.service is not None else None
        if service is not None and self.active:
            service._config_changed(self, field_name)

    def own_status(self) -> ServiceStatus:
        result = self.result
        if result is None:
            return ServiceStatus.UNKNOWN
        if self.tripped:
            critical = self.check.config.critical or self.tripped_critical
            return ServiceStatus.CRITICAL if critical else ServiceStatus.UNHEALTHY
        if result.passed:
            return result.status
        return ServiceStatus.DEGRADED

    def apply(
        self, result: CheckResult, kind: str | None, at: float, duration: float | None
    ) -> None:
        """Fold one run's result into the counters and the tripped state.

        ``duration`` None: the run did not happen (its check was still busy);
        it counts as a failure but not as a response time.
        """
        config = self.check.config
        metrics = self.metrics
        if result.passed:
            metrics.record_success(at, duration)
            if self.tripped and metrics.consecutive_successes >= config.success_threshold:
                self.tripped = False
        else:
            error = result.message or f"check reported {result.status.value}"
            metrics.record_failure(at, duration, kind or "failed", error)
            if metrics.consecutive_failures >= config.failure_threshold:
                self.tripped = True
            if self.tripped:
                self.tripped_critical = result.status is ServiceStatus.CRITICAL
        self.result = result
        self.last_run_at = at
        if duration is not None:
            self.last_duration = duration

    def straggling(self) -> bool:
        """True while a run that was cut off is still alive."""
        straggler = self.straggler
        return straggler is not None and not straggler.done()

    def abandon(self, run: asyncio.Future[Any], at: float) -> None:
        """Cancel ``run`` (a check function's task) and remember it until it ends."""
        run.cancel()
        if run.done():
            return
        self.straggler = run
        self.straggler_since = at
        self.straggler_counted = False
        run.add_done_callback(self._straggler_done)

    def count_straggler(self) -> None:
        """Count the live straggler as an abandoned run (once): it ignored cancellation."""
        if self.straggling() and not self.straggler_counted:
            self.straggler_counted = True
            self.metrics.abandoned_runs += 1

    def _straggler_done(self, run: asyncio.Future[Any]) -> None:
        _consume(run)
        if run is self.straggler:
            self.straggler = None
            self.straggler_since = None
            self.straggler_counted = False


class _ServiceArguments(ConfigModel):
    """:class:`HealthService`'s numeric arguments, validated the one way."""

    listener_timeout: PositiveSeconds = 10.0
    metrics_window: Annotated[Count, Field(le=_MAX_METRICS_WINDOW)] = 100


def _arguments(**values: Any) -> _ServiceArguments:
    try:
        return _ServiceArguments(**values)
    except ConfigurationError as exc:  # name the service, not the private model
        raise ConfigurationError(
            [FieldError("HealthService", e.field, e.value, e.allowed) for e in exc.errors]
        ) from None


def _being_cancelled() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def _consume(future: asyncio.Future[Any]) -> None:
    """Retrieve an abandoned future's exception so asyncio does not complain."""
    if not future.cancelled():
        future.exception()


async def _call_check(check: HealthCheck) -> CheckResult:
    value: object = check.check()
    if inspect.isawaitable(value):
        value = await value
    return to_result(value, check.name)


async def _wait_all(tasks: Iterable[asyncio.Future[Any]], timer: asyncio.Future[Any]) -> list[Any]:
    """Wait until every one of ``tasks`` is done or ``timer`` is; return those not done."""
    pending = [t for t in tasks if not t.done()]
    while pending and not timer.done():
        await asyncio.wait((*pending, timer), return_when=asyncio.FIRST_COMPLETED)
        pending = [t for t in pending if not t.done()]
    return pending


async def _reap(task: asyncio.Future[Any]) -> None:
    """Cancel a helper task and let it end."""
    if not task.done():
        task.cancel()
        await asyncio.wait((task,))


def _cancel_once(task: asyncio.Future[Any]) -> None:
    """Cancel ``task`` unless it is already being cancelled.

    A second cancellation would interrupt the first one's cleanup (an
    ``await`` in a ``finally`` block).
    """
    if isinstance(task, asyncio.Task) and task.cancelling():
        return
    task.cancel()


def _task_name(task: asyncio.Future[Any]) -> str:
    return task.get_name() if isinstance(task, asyncio.Task) else type(task).__name__


# --------------------------------------------------------------------- service


class HealthService:
    """Runs health checks, tracks the dependency graph, tells listeners of changes.

    Reading health (:meth:`get_status`, :meth:`report`, :meth:`snapshot`,
    :meth:`to_health_json`) only reads cached results; checks run in the
    background after :meth:`start`, each on its own ``config.interval``, or
    on demand with :meth:`run_checks` / :meth:`run_check`.

    ``clock`` supplies time and sleeping (inject a
    :class:`~virtuoso_resilience.FakeClock` in tests). ``listener_timeout``
    (finite seconds > 0) bounds each call of an async status listener, and
    each of the two waits of :meth:`stop`; ``metrics_window`` (1 to 100,000)
    is how many recent runs the response-time statistics cover. A bad value
    is a :class:`~virtuoso_resilience.ConfigurationError` naming it.
    """

    def __init__(
        self,
        *,
        clock: Clock = MONOTONIC,
        listener_timeout: float = 10.0,
        metrics_window: int = 100,
    ) -> None:
        if not isinstance(clock, Clock):
            raise TypeError(
                f"HealthService: clock must have now() and sleep(), not {type(clock).__qualname__}"
            )
        args = _arguments(listener_timeout=listener_timeout, metrics_window=metrics_window)
        self._clock = clock
        self._listener_timeout = args.listener_timeout
        self._window = args.metrics_window
        self._entries: dict[str, _Entry] = {}
        self._graph: dict[str, tuple[str, ...]] = {}
        self._nodes: dict[str, NodeStatus] = {}
        # Name -> the registered checks that name it in their depends_on.
        self._dependants: dict[str, set[str]] = {}
        self._overall = ServiceStatus.HEALTHY
        self._overall_root: str | None = None
        self._listeners: Listeners[HealthChange] = Listeners(
            "health service", timeout=args.listener_timeout, max_pending=_MAX_PENDING, clock=clock
        )
        self._status_calls: list[StatusCall] = []
        self._outbox: deque[HealthChange] = deque()  # changes published while publishing
        self._publishing = False
        self._tasks: set[asyncio.Task[Any]] = set()
        # Helper tasks a service task awaits (a check function's run, an async
        # listener's call, a clock timer) -> that task.
        self._awaited: dict[asyncio.Future[Any], asyncio.Task[Any] | None] = {}
        self._loop: asyncio.AbstractEventLoop | None = None  # where the tasks live
        self._running = False
        # Check name -> its cut-off run that has not ended yet; outlives the
        # entry, so unregistering and registering again never starts a second.
        self._stragglers: dict[str, asyncio.Future[Any]] = {}

    @property
    def clock(self) -> Clock:
        """The clock the service reads and sleeps on."""
        return self._clock

    @property
    def listener_timeout(self) -> float:
        """Seconds an async status listener's call may take (and each wait of :meth:`stop`).

        May be changed at run time; a bad value raises
        :class:`~virtuoso_resilience.ConfigurationError` and keeps the old one.
        """
        return self._listener_timeout

    @listener_timeout.setter
    def listener_timeout(self, value: float) -> None:
        checked = _arguments(listener_timeout=value).listener_timeout
        self._listener_timeout = checked
        self._listeners.timeout = checked

    @property
    def running(self) -> bool:
        """True between :meth:`start` and :meth:`stop`, while that event loop lives.

        A service whose loop ended without :meth:`stop` is not running; the
        next :meth:`start` (in any loop) starts monitoring again.
        """
        loop = self._loop
        return self._running and loop is not None and not loop.is_closed()

    # ------------------------------------------------------------ registration

    def register_health_check(
        self, check: HealthCheck, *, depends_on: Iterable[str] = ()
    ) -> HealthCheck:
        """Add ``check``; it depends on ``check.config.depends_on`` plus ``depends_on``.

        Dependencies need not be registered yet (until they are, they count
        as UNKNOWN). A name already taken or a dependency cycle is a
        :class:`~virtuoso_resilience.ConfigurationError`
        (:class:`DependencyCycleError` names the cycle). When the service is
        running the check starts at once. Returns ``check``.
        """
        if not isinstance(check, HealthCheck):
            raise TypeError(f"expected a HealthCheck, not {type(check).__name__}")
        name = check.name
        if name in self._entries:
            raise ConfigurationError(
                [
                    FieldError(
                        "HealthService",
                        "name",
                        name,
                        "a health check with this name is already registered (unregister it first)",
                    )
                ]
            )
        extra = (depends_on,) if isinstance(depends_on, str) else tuple(depends_on)
        for dep in extra:
            if not isinstance(dep, str) or not dep:
                raise ConfigurationError(
                    [FieldError("HealthService", "depends_on", extra, "must be non-empty names")]
                )
        deps = tuple(dict.fromkeys((*check.config.depends_on, *extra)))
        graph = dict(self._graph)
        graph[name] = deps
        cycle = find_cycle(graph, name)
        if cycle is not None:
            raise DependencyCycleError(name, deps, cycle)
        entry = _Entry(check, deps, self._window)
        straggler = self._stragglers.get(name)
        if straggler is not None and not straggler.done():
            entry.straggler = straggler
            entry.straggler_since = self._clock.now()
            straggler.add_done_callback(entry._straggler_done)
        self._entries[name] = entry
        self._graph = graph
        for dep in deps:
            self._dependants.setdefault(dep, set()).add(name)
        self._watch(entry)
        self._refresh(cause=name)
        if self._running:
            self._start_monitor(entry)
        return check

    def unregister_health_check(self, name: str) -> HealthCheck:
        """Remove a check (stopping its monitoring) and return it.

        Checks that depend on it see it as UNKNOWN from now on.
        """
        entry = self._entry(name)
        del self._entries[name]
        self._graph = {n: d for n, d in self._graph.items() if n != name}
        for dep in entry.depends_on:
            named_by = self._dependants.get(dep)
            if named_by is not None:
                named_by.discard(name)
                if not named_by:
                    del self._dependants[dep]
        entry.active = False
        for task in (entry.monitor, entry.inflight):
            if task is not None:
                task.cancel()
        entry.monitor = entry.inflight = None
        self._refresh(cause=name)
        return entry.check

    def get_check(self, name: str) -> HealthCheck:
        """The registered check called ``name`` (KeyError naming the known ones)."""
        return self._entry(name).check

    @property
    def checks(self) -> dict[str, HealthCheck]:
        """Every registered check by name, in registration order (a copy)."""
        return {name: e.check for name, e in self._entries.items()}

    def _entry(self, name: str) -> _Entry:
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(self._entries) or "none"
            raise KeyError(f"no health check named {name!r}; registered: {known}") from None

    # --------------------------------------------------------------- listeners

    def add_status_listener(self, listener: StatusListener) -> StatusListener:
        """Call ``listener`` on every change of the overall status (only on change).

        ``listener(status)`` gets the new :class:`ServiceStatus`; a listener
        that names a second positional parameter (``def f(status, change)``)
        also gets a :class:`HealthChange`; a bare ``*args`` gets the status
        only. Delivery follows the project's one listener contract
        (``virtuoso_resilience._events.Listeners``): a *sync* listener runs
        at once, on the event loop thread, where nothing can cut it off: keep
        it quick. An *async* listener's calls run in order, one at a time, in
        that listener's own task, each cut off after ``listener_timeout``
        seconds, so it never delays monitoring nor another listener. A
        listener that raises is logged (type and masked message) and
        ignored. Adding the same listener twice has no effect. Returns
        ``listener``.
        """
        if any(call.listener == listener for call in self._status_calls):
            return listener
        call = StatusCall(listener)
        self._status_calls.append(call)
        self._listeners.add(call)
        return listener

    def remove_status_listener(self, listener: StatusListener) -> None:
        """Stop calling ``listener`` (undelivered changes are dropped)."""
        for call in self._status_calls:
            if call.listener == listener:
                self._status_calls.remove(call)
                self._listeners.remove(call)
                return
        raise KeyError(f"status listener {listener!r} is not registered")

    # -------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Start background monitoring: every check runs now, then every ``interval``.

        Idempotent; may be called again after :meth:`stop`, and in another
        event loop once the previous one has ended. A check whose run was cut
        off and ignores cancellation is not run again until that run ends.
        """
        self._bind_loop()
        if self._running:
            return
        self._running = True
        for entry in self._entries.values():
            self._start_monitor(entry)

    async def stop(self) -> None:
        """Stop monitoring; return once the service's tasks have ended.

        1. Monitors and check runs in progress are cancelled (nothing is
           recorded for a cancelled run).
        2. Listener calls already queued (changes that happened before
           ``stop``) are delivered, for at most ``listener_timeout`` seconds.
        3. What is still running is cancelled (undelivered changes are
           dropped), and ``stop`` waits, again for at most
           ``listener_timeout`` seconds, for it to finish (cleanup in
           ``finally`` blocks included). A task that ignores cancellation
           longer is abandoned with a warning. A check run that had already
           ignored its cancellation before (cut off by its timeout and still
           running) is cancelled again but not waited for: it is counted in
           that check's ``abandoned_runs``.

        Both waits are on the service clock. Idempotent.
        """
        loop = self._bind_loop()
        self._running = False
        spared = self._callers(asyncio.current_task())  # stop() called from a check/listener
        stragglers: set[asyncio.Future[Any]] = set()
        for entry in self._entries.values():
            for task in (entry.monitor, entry.inflight):
                if task is not None and task not in spared:
                    task.cancel()
            entry.monitor = entry.inflight = None
            straggler = entry.straggler
            if entry.straggling() and straggler is not None and straggler not in spared:
                straggler.cancel()  # once more; it has shown it may not listen
                entry.count_straggler()
                stragglers.add(straggler)
        timer: asyncio.Task[None] | None = None
        try:
            await self._listeners.drain(within=self._listener_timeout)
            ending = self._listeners.close()
            leftovers = [
                t
                for t in (*self._tasks, *self._awaited, *ending)
                if not t.done()
                and t not in spared
                and t not in stragglers
                and self._awaited.get(t) not in spared
            ]
            if leftovers:
                for leftover in leftovers:
                    _cancel_once(leftover)
                timer = loop.create_task(self._clock.sleep(self._listener_timeout))
                stuck = await _wait_all(leftovers, timer)
                if stuck:
                    log.warning(
                        "health service stopped; %d task(s) ignored cancellation for %gs "
                        "and were abandoned: %s",
                        len(stuck),
                        self._listener_timeout,
                        ", ".join(sorted(_task_name(t) for t in stuck)),
                    )
            for entry in self._entries.values():
                entry.count_straggler()
        finally:
            if timer is not None:
                await _reap(timer)

    def _callers(self, task: asyncio.Task[Any] | None) -> set[asyncio.Future[Any]]:
        """``task`` and the service tasks awaiting it (a check or listener calling stop()).

        These are not cancelled nor waited for, and neither are their helpers.
        """
        chain: set[asyncio.Future[Any]] = set()
        current: asyncio.Future[Any] | None = task
        while current is not None and current not in chain:
            chain.add(current)
            current = self._awaited.get(current)
        return chain

    def _bind_loop(self) -> asyncio.AbstractEventLoop:
        """The running loop; the state of an earlier loop is dropped on a change."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._leave_loop()
            self._loop = loop
        return loop

    def _leave_loop(self) -> None:
        """Forget the tasks of the loop the service ran on (it ended, or is another one).

        Their loop cancels them if it still runs; queued listener changes and
        cached results are kept.
        """
        old = self._loop
        tasks = [t for t in (*self._tasks, *self._awaited) if not t.done()]
        self._tasks.clear()
        self._awaited.clear()
        if old is not None and not old.is_closed():
            for task in tasks:
                old.call_soon_threadsafe(task.cancel)
        for entry in self._entries.values():
            entry.monitor = entry.inflight = entry.wake = None
            entry.straggler = entry.straggler_since = None  # its loop cancels it
        self._stragglers.clear()
        self._running = False

    async def __aenter__(self) -> HealthService:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def _spawn(self, coro: Coroutine[Any, Any, T], name: str) -> asyncio.Task[T]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _start_monitor(self, entry: _Entry) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # registered from another thread / outside the loop
            return
        if loop is not self._loop:
            self._bind_loop()  # the loop it ran on is gone: not running any more
            return
        if entry.monitor is None or entry.monitor.done():
            entry.monitor = self._spawn(self._monitor(entry), f"health-monitor:{entry.check.name}")

    # ------------------------------------------------------------ running

    async def run_checks(self) -> HealthReport:
        """Run every check now (concurrently) and return the resulting report.

        A check already running is joined rather than started twice.
        """
        await asyncio.gather(*(self._run(e) for e in list(self._entries.values())))
        return self.report()

    async def run_check(self, name: str) -> CheckReport:
        """Run one check now (or join its run in progress) and return its report."""
        entry = self._entry(name)
        await self._run(entry)
        return self._check_report(name, entry)

    async def _run(self, entry: _Entry) -> None:
        self._bind_loop()
        task = entry.inflight
        if task is None or task.done():
            task = self._spawn(self._execute(entry), f"health-check:{entry.check.name}")
            entry.inflight = task
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            if _being_cancelled():
                raise
            # The run itself was cancelled (stop(), unregister): nothing recorded.

    async def _monitor(self, entry: _Entry) -> None:
        """Run ``entry``'s check every interval until cancelled.

        Survives everything but its own cancellation: the check's outcomes
        are recorded by :meth:`_execute`; anything that still escapes (a bug
        here, a ``BaseException`` from a foreign task) is logged and
        monitoring goes on.
        """
        while True:
            try:
                await self._run(entry)
                await self._sleep_until_due(entry)
            except asyncio.CancelledError:
                if _being_cancelled():
                    raise
                self._internal_error(entry, "CancelledError")
            except BaseException as exc:  # the monitor must not die
                self._internal_error(entry, describe_error(exc))

    def _internal_error(self, entry: _Entry, what: str) -> None:
        # No traceback: the exception may carry a check's raw text.
        log.error("health check %r: internal error: %s", entry.check.name, what)
        entry.last_started = self._clock.now()  # no busy loop: wait an interval

    async def _sleep_until_due(self, entry: _Entry) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._watch(entry)
            started = entry.last_started
            if started is None:
                return
            delay = started + entry.check.config.interval - self._clock.now()
            if delay <= 0:
                return
            wake: asyncio.Future[None] = loop.create_future()
            entry.wake = wake
            timer = self._helper(self._clock.sleep(delay))
            try:
                await asyncio.wait((timer, wake), return_when=asyncio.FIRST_COMPLETED)
            finally:
                timer.cancel()
                wake.cancel()
                entry.wake = None

    async def _wait_for(self, work: asyncio.Future[T], limit: float) -> bool:
        """Wait for ``work`` at most ``limit`` seconds on the service clock.

        True when it finished. Neither cancels ``work`` (the caller decides)
        nor waits for it beyond ``limit``, so one that ignores cancellation
        never holds the caller up.
        """
        timer = self._helper(self._clock.sleep(limit))
        try:
            await asyncio.wait((work, timer), return_when=asyncio.FIRST_COMPLETED)
        finally:
            timer.cancel()
        return work.done()

    def _helper(self, awaitable: Awaitable[T]) -> asyncio.Future[T]:
        """Run ``awaitable`` as a task the current task awaits; stop() waits for it."""
        helper = asyncio.ensure_future(awaitable)
        self._awaited[helper] = asyncio.current_task()
        helper.add_done_callback(self._helper_done)
        return helper

    def _helper_done(self, helper: asyncio.Future[Any]) -> None:
        self._awaited.pop(helper, None)

    async def _execute(self, entry: _Entry) -> None:
        check = entry.check
        clock = self._clock
        if entry.straggling():
            # The last run was cut off and ignores cancellation: never run a
            # second copy beside it (one more leaked task per interval).
            self._record_straggling(entry)
            return
        timeout = check.config.timeout
        started = clock.now()
        entry.last_started = started
        work = self._helper(_call_check(check))
        try:
            finished = await self._wait_for(work, timeout)
        except asyncio.CancelledError:  # stop(), unregister: nothing recorded
            self._abandon(entry, work)
            raise
        kind: str | None = None
        if not finished:
            self._abandon(entry, work)
            result = CheckResult(ServiceStatus.UNHEALTHY, f"timed out after {timeout:g}s")
            kind = "timeout"
        elif work.cancelled():  # the check raised CancelledError itself
            log.warning(
                "health check %r cancelled itself (CancelledError); a failed run", check.name
            )
            result = CheckResult(ServiceStatus.UNHEALTHY, "CancelledError: the check was cancelled")
            kind = "CancelledError"
        elif (exc := work.exception()) is None:
            result = work.result()
        else:
            result = CheckResult(ServiceStatus.UNHEALTHY, describe_error(exc))
            kind = type(exc).__name__
            if not isinstance(exc, Exception):
                log.warning(
                    "health check %r raised %s (a BaseException); a failed run",
                    check.name,
                    type(exc).__qualname__,
                )
        now = clock.now()
        if entry.active:
            self._record(entry, result, kind, now, now - started)

    def _abandon(self, entry: _Entry, work: asyncio.Future[Any]) -> None:
        """Cancel a run cut off and remember it, by check name, until it ends."""
        entry.abandon(work, self._clock.now())
        if work.done():
            return
        name = entry.check.name
        self._stragglers[name] = work
        stragglers = self._stragglers

        def forget(done: asyncio.Future[Any]) -> None:
            if stragglers.get(name) is done:
                del stragglers[name]

        work.add_done_callback(forget)

    def _record_straggling(self, entry: _Entry) -> None:
        straggler = entry.straggler
        if straggler is not None:
            straggler.cancel()  # ask again: it may listen this time
        entry.count_straggler()
        now = self._clock.now()
        entry.last_started = now
        since = entry.straggler_since if entry.straggler_since is not None else now
        result = CheckResult(
            ServiceStatus.UNHEALTHY,
            f"the run cut off {now - since:g}s ago {STILL_RUNNING}; no new run started",
        )
        if entry.active:
            self._record(entry, result, "abandoned", now, None)

    def _record(
        self,
        entry: _Entry,
        result: CheckResult,
        kind: str | None,
        at: float,
        duration: float | None,
    ) -> None:
        before = entry.own_status()
        entry.apply(result, kind, at, duration)
        after = entry.own_status()
        if after is not before:
            level = logging.WARNING if after.is_failing else logging.INFO
            log.log(
                level,
                "health check %r: %s -> %s%s",
                entry.check.name,
                before.value,
                after.value,
                f" ({result.message})" if result.message else "",
            )
            # Only a change of a check's own status can change the graph's
            # answer: re-evaluating it after every run made a round of N
            # checks cost N whole-graph evaluations (O(N^2) on the loop).
            self._refresh(cause=entry.check.name)

    # ------------------------------------------------------------ config

    def _watch(self, entry: _Entry) -> None:
        config = entry.check.config
        if entry.watched is not config:
            entry.service = weakref.ref(self)
            config.subscribe(entry.config_changed)
            entry.watched = config

    def _config_changed(self, entry: _Entry, field_name: str) -> None:
        if field_name == "interval":
            wake = entry.wake
            if wake is not None and not wake.done():
                wake.set_result(None)
        elif field_name == "critical" and entry.check.config is entry.watched:
            self._refresh(cause=entry.check.name)

    # ------------------------------------------------------------ status

    def _refresh(self, cause: str | None) -> None:
        entries = self._entries
        if cause is not None and self._nodes:
            # Only ``cause`` and what depends on it can have changed.
            nodes = self._nodes
            reevaluate(
                self._graph,
                lambda name: e.own_status() if (e := entries.get(name)) is not None else None,
                nodes,
                cause,
                self._dependants,
            )
        else:
            own = {name: e.own_status() for name, e in entries.items()}
            nodes = self._nodes = evaluate(self._graph, own)
        overall, root = overall_status(
            (nodes[name], entry.check.config.critical) for name, entry in self._entries.items()
        )
        previous = self._overall
        self._overall, self._overall_root = overall, root
        if overall is not previous:
            level = logging.WARNING if overall.is_failing else logging.INFO
            log.log(
                level,
                "overall health: %s -> %s (check %r, root cause %r)",
                previous.value,
                overall.value,
                cause,
                root,
            )
            self._notify(HealthChange(previous, overall, cause, root, self._clock.now()))

    def _notify(self, change: HealthChange) -> None:
        """Publish ``change`` to the status listeners, in order.

        A sync listener runs inside ``emit``; if it changes the status again
        (registers a check...), that change is published after this one has
        reached every listener, so each listener sees the changes in order.
        """
        if not self._listeners:
            return
        self._outbox.append(change)
        if self._publishing:
            return
        self._publishing = True
        try:
            while self._outbox:
                self._listeners.emit(self._outbox.popleft())
        finally:
            self._publishing = False

    def get_status(self, name: str | None = None) -> ServiceStatus:
        """The effective status of check ``name``, or the overall status.

        A name that is only a declared dependency (not registered) is UNKNOWN.
        """
        if name is None:
            return self._overall
        node = self._nodes.get(name)
        if node is None:
            self._entry(name)  # raises KeyError naming the registered checks
            return ServiceStatus.UNKNOWN  # pragma: no cover
        return node[0]

    def get_overall_status(self) -> ServiceStatus:
        """The status of the whole service (HEALTHY with no checks).

        The worst effective status of all checks, where a check that is not
        critical counts at most as DEGRADED: only critical failures (critical
        checks, and checks made CRITICAL by a critical dependency or by their
        own CRITICAL result) fail the service.
        """
        return self._overall

    def root_cause(self, name: str | None = None) -> str | None:
        """The deepest failing check behind ``name``'s status (or the overall's)."""
        if name is None:
            return self._overall_root
        node = self._nodes.get(name)
        if node is None:
            self._entry(name)
            return None  # pragma: no cover
        return node[1]

    def _check_report(self, name: str, entry: _Entry) -> CheckReport:
        status, root = self._nodes.get(name, (ServiceStatus.UNKNOWN, name))
        config = entry.check.config
        return CheckReport(
            name=name,
            status=status,
            own_status=entry.own_status(),
            root_cause=root,
            depends_on=entry.depends_on,
            dependants=tuple(n for n, e in self._entries.items() if name in e.depends_on),
            critical=config.critical,
            component_type=entry.check.component_type,
            result=entry.result,
            last_run_at=entry.last_run_at,
            last_duration=entry.last_duration,
            config=config.model_dump(mode="json", exclude={"depends_on"}),
            metrics=entry.metrics.snapshot(
                abandoned_running=entry.straggling() and entry.straggler_counted
            ),
        )

    def report(self) -> HealthReport:
        """Every check's cached state, the overall status and root cause."""
        missing = sorted(
            {d for e in self._entries.values() for d in e.depends_on} - set(self._entries)
        )
        return HealthReport(
            status=self._overall,
            root_cause=self._overall_root,
            checks={name: self._check_report(name, e) for name, e in self._entries.items()},
            missing=tuple(missing),
            running=self.running,
            at=self._clock.now(),
            wall_time=time.time(),
        )

    def snapshot(self) -> dict[str, Any]:
        """JSON-ready state: overall and IETF status, root cause, every check
        with its effective status, dependencies and metrics."""
        return self.report().as_dict()

    def to_health_json(
        self, *, description: str | None = None, version: str | None = None
    ) -> dict[str, Any]:
        """The cached state as an IETF ``application/health+json`` body."""
        return self.report().to_health_json(description=description, version=version)

    def __repr__(self) -> str:
        counts: dict[str, int] = {}
        for name in self._entries:
            status = self._nodes.get(name, (ServiceStatus.UNKNOWN, None))[0].value
            counts[status] = counts.get(status, 0) + 1
        detail = ", ".join(f"{k}={v}" for k, v in counts.items())
        return (
            f"<HealthService status={self._overall.value} checks={len(self._entries)}"
            f"{f' ({detail})' if detail else ''} running={self.running} "
            f"listeners={len(self._listeners)} tasks={len(self._tasks)}>"
        )
