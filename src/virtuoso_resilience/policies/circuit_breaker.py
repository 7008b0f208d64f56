"""An asyncio circuit breaker.

States: CLOSED → OPEN → HALF_OPEN (→ CLOSED or back to OPEN), plus
FORCED_OPEN and DISABLED for manual control. What counts as a failure is
decided by the outcome classifier; business errors pass through uncounted.

The success path in CLOSED state does one state check, the await and two
integer updates; it reads the clock only when a time-based window or
slow-call rule needs it.
"""

from __future__ import annotations

import asyncio
import enum
import math
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from types import TracebackType
from typing import Annotated, Any, Literal, ParamSpec, TypeVar

from pydantic import Field, model_validator

from .._model import (
    MAX_SECONDS,
    ConfigModel,
    Count,
    FiniteFloat,
    Percent,
    PositiveSeconds,
    RuleError,
)
from ..classify import DEFAULT_CLASSIFIER, Classifier, Outcome, OutcomeKind
from ..clock import MONOTONIC, Clock
from ..errors import CircuitOpenError
from ._core import NO_LISTENERS, Policy, PolicyName
from ._decorate import decorate
from ._window import FAILED, SLOW, CountWindow, TimeWindow, WindowTotals

__all__ = [
    "CallEvent",
    "CircuitBreaker",
    "CircuitBreakerConfig",
    "CircuitBreakerSnapshot",
    "CircuitState",
    "RejectionEvent",
    "SlidingWindowType",
    "StateChangeEvent",
]

P = ParamSpec("P")
T = TypeVar("T")


class CircuitState(enum.Enum):
    """Where a breaker is. ``value`` is the lower-case name used in JSON."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"
    FORCED_OPEN = "forced_open"
    DISABLED = "disabled"


class SlidingWindowType(enum.Enum):
    """How the failure-rate window is measured."""

    COUNT_BASED = "count_based"
    """The last ``sliding_window_size`` calls."""
    TIME_BASED = "time_based"
    """The calls of the last ``sliding_window_size`` seconds."""


class CircuitBreakerConfig(ConfigModel):
    """How a breaker trips and recovers. Times are in seconds.

    Validated on creation and on assignment; a change made at run time
    (``cb.config.failure_threshold = 8``) applies from the next call.
    """

    name: PolicyName | None = None
    """The breaker's name; filled in by the registry when left out."""
    failure_threshold: Count = 5
    """Consecutive failures that trip a CLOSED breaker."""
    success_threshold: Count = 3
    """Successful trial calls that close a HALF_OPEN breaker (the seed's default)."""
    timeout: PositiveSeconds = 60.0
    """Seconds a breaker stays OPEN before it admits trial calls."""
    half_open_max_calls: Count = 1
    """Trial calls admitted at the same time while HALF_OPEN."""
    max_wait_in_half_open: PositiveSeconds | None = None
    """Seconds a breaker may stay HALF_OPEN without deciding; then it reopens."""
    timeout_multiplier: Annotated[FiniteFloat, Field(ge=1)] = 1.0
    """Growth of the OPEN timeout on each trip that follows a failed recovery."""
    max_timeout: PositiveSeconds | None = None
    """Upper bound of the grown OPEN timeout (None: ``MAX_SECONDS``, about 31.7
    years). Growth saturates at the bound however many trips follow."""
    failure_rate_threshold: Percent | None = None
    """Trip when this percentage of the windowed calls failed (off when None)."""
    slow_call_rate_threshold: Percent | None = None
    """Trip when this percentage of the windowed calls was slow (off when None)."""
    slow_call_duration: PositiveSeconds = 5.0
    """A call that takes at least this many seconds is slow."""
    sliding_window_type: SlidingWindowType = SlidingWindowType.COUNT_BASED
    sliding_window_size: Annotated[Count, Field(le=100_000)] = 100
    """Calls (count based) or seconds (time based) in the window."""
    minimum_calls: Count = 10
    """Calls the window must hold before rates are evaluated."""
    count_rate_limits: bool = False
    """Whether rate-limit answers count as service failures."""
    exchange_id: str | None = None
    """Exchange whose error-code overrides the classifier applies."""

    @model_validator(mode="after")
    def _window_can_fill(self) -> CircuitBreakerConfig:
        if (
            self.uses_window
            and self.sliding_window_type is SlidingWindowType.COUNT_BASED
            and self.minimum_calls > self.sliding_window_size
        ):
            raise RuleError(
                {
                    "minimum_calls": self.minimum_calls,
                    "sliding_window_size": self.sliding_window_size,
                },
                f"minimum_calls ({self.minimum_calls}) must be <= sliding_window_size "
                f"({self.sliding_window_size}) for a count-based window, or the rate "
                "rules could never fire",
            )
        return self

    @model_validator(mode="after")
    def _timeouts_ordered(self) -> CircuitBreakerConfig:
        if self.max_timeout is not None and self.max_timeout < self.timeout:
            raise RuleError(
                {"timeout": self.timeout, "max_timeout": self.max_timeout},
                f"max_timeout ({self.max_timeout:g}) must be >= timeout ({self.timeout:g})",
            )
        return self

    @property
    def uses_window(self) -> bool:
        """Whether a failure-rate or slow-call-rate rule is on."""
        return self.failure_rate_threshold is not None or self.slow_call_rate_threshold is not None


@dataclass(frozen=True, slots=True)
class StateChangeEvent:
    """A breaker moved from one state to another at ``at`` (clock seconds)."""

    name: str
    previous: CircuitState
    current: CircuitState
    reason: str
    at: float


@dataclass(frozen=True, slots=True)
class CallEvent:
    """A call finished. ``outcome`` is what the classifier said; ``counted``
    whether it counted as a service failure."""

    name: str
    outcome: Outcome
    counted: bool
    duration: float | None


@dataclass(frozen=True, slots=True)
class RejectionEvent:
    """A call was rejected without running."""

    name: str
    state: CircuitState
    retry_after: float | None


@dataclass(frozen=True, slots=True)
class CircuitBreakerSnapshot:
    """A breaker's metrics at one moment. ``as_dict()`` is JSON-ready."""

    name: str
    state: CircuitState
    calls: int
    successes: int
    failures: int
    ignored: int
    rejected: int
    cancelled: int
    slow_calls: int
    failures_by_kind: dict[str, int]
    outcomes_by_kind: dict[str, int]
    consecutive_failures: int
    failure_rate: float
    slow_call_rate: float
    window_calls: int
    trips: int
    current_timeout: float
    retry_after: float | None
    last_transition_at: float | None
    seconds_in_state: dict[str, float]
    recoveries: int
    last_recovery_seconds: float | None
    mean_recovery_seconds: float | None
    config: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready mapping (enums as their string values)."""
        data = {name: getattr(self, name) for name in self.__dataclass_fields__}
        data["state"] = self.state.value
        return data


_CLOSED = CircuitState.CLOSED
_OPEN = CircuitState.OPEN
_HALF_OPEN = CircuitState.HALF_OPEN
_FORCED_OPEN = CircuitState.FORCED_OPEN
_DISABLED = CircuitState.DISABLED

_Entry = tuple[int, float]  # (generation admitted in, start time or -1.0)
_MAX_TRACKED_TASKS = 1024
"""Tasks with an open ``async with`` block tracked before done ones are pruned."""


def grown_timeout(base: float, multiplier: float, trips: int, cap: float | None) -> float:
    """``base * multiplier ** (trips - 1)``, saturated at ``cap`` (seconds).

    ``cap`` None means :data:`~virtuoso_resilience._model.MAX_SECONDS`. The
    power is never computed once it would pass the cap, so any number of
    trips (an outage thousands of trips long) gives a finite timeout.
    """
    limit = MAX_SECONDS if cap is None else cap
    if trips <= 1 or multiplier <= 1.0 or base >= limit:
        return min(base, limit)
    if (trips - 1) * math.log(multiplier) >= math.log(limit / base):
        return limit
    return min(base * multiplier ** (trips - 1), limit)


class CircuitBreaker(Policy[CircuitBreakerConfig]):
    """Protects calls to one dependency.

    ``await cb.call_async(fn, *args, **kwargs)``, ``@cb`` on an ``async def``,
    or ``async with cb:``. Rejections raise :class:`CircuitOpenError`.
    """

    kind = "circuit_breaker"
    config_type = CircuitBreakerConfig
    default_name = "circuit_breaker"

    __slots__ = (
        "_call_hub",
        "_calls",
        "_cancelled",
        "_classifier",
        "_clock",
        "_consecutive_failures",
        "_consecutive_trips",
        "_current_timeout",
        "_entries",
        "_failures",
        "_failures_by_kind",
        "_fast",
        "_generation",
        "_half_open_in_flight",
        "_half_open_successes",
        "_ignored",
        "_last_recovery",
        "_last_transition_at",
        "_open_until",
        "_opened_at",
        "_outcomes_by_kind",
        "_recoveries",
        "_recovery_total",
        "_reject_hub",
        "_rejected",
        "_seconds_in_state",
        "_slow",
        "_state",
        "_state_hub",
        "_state_since",
        "_successes",
        "_timed",
        "_trips",
        "_window",
    )

    def __init__(
        self,
        name: str,
        config: CircuitBreakerConfig | None = None,
        *,
        clock: Clock = MONOTONIC,
        classifier: Classifier = DEFAULT_CLASSIFIER,
        **settings: Any,
    ) -> None:
        """``CircuitBreaker("bybit", failure_threshold=5, timeout=60.0)`` or
        ``CircuitBreaker("bybit", config)``.

        ``settings`` are :class:`CircuitBreakerConfig` fields; pass them or a
        config, not both. ``clock`` supplies time; ``classifier`` decides what
        a failure means.
        """
        config = self._bind(name, config, settings)
        self._clock = clock
        self._classifier = classifier
        self._state = _CLOSED
        # True only in CLOSED with no window, timing rule or call listener:
        # then a success is three counter updates and nothing else.
        self._fast = True
        self._timed = False
        self._generation = 0
        self._state_since = clock.now()
        self._open_until = 0.0
        self._opened_at: float | None = None
        self._current_timeout = config.timeout
        self._consecutive_trips = 0
        self._half_open_in_flight = 0
        self._half_open_successes = 0
        self._consecutive_failures = 0
        # counters
        self._calls = 0
        self._successes = 0
        self._failures = 0
        self._ignored = 0
        self._rejected = 0
        self._cancelled = 0
        self._slow = 0
        self._trips = 0
        self._failures_by_kind: dict[str, int] = {}
        self._outcomes_by_kind: dict[str, int] = {}
        self._last_transition_at: float | None = None
        self._seconds_in_state: dict[CircuitState, float] = {}
        self._recoveries = 0
        self._recovery_total = 0.0
        self._last_recovery: float | None = None
        self._window: CountWindow | TimeWindow | None = None
        self._state_hub = self._call_hub = self._reject_hub = NO_LISTENERS
        # Open ``async with`` blocks: the admission records of each task.
        self._entries: dict[asyncio.Task[Any] | None, list[_Entry]] | None = None
        self._configure()
        config.subscribe(self._on_config_change)

    # ------------------------------------------------------------------ config

    def _configure(self) -> None:
        cfg = self._config
        if cfg.uses_window:
            size = cfg.sliding_window_size
            window_cls = (
                CountWindow
                if cfg.sliding_window_type is SlidingWindowType.COUNT_BASED
                else TimeWindow
            )
            window = self._window
            if not isinstance(window, window_cls) or window.size != size:
                self._window = window_cls(size)
        else:
            self._window = None
        self._timed = cfg.slow_call_rate_threshold is not None or isinstance(
            self._window, TimeWindow
        )
        self._refresh_fast()

    def _refresh_fast(self) -> None:
        self._fast = (
            self._state is _CLOSED
            and not self._timed
            and self._window is None
            and self._call_hub is NO_LISTENERS
        )

    def _on_config_change(self, field_name: str) -> None:
        if field_name == "timeout" and self._consecutive_trips <= 1:
            self._current_timeout = self._config.timeout
            if self._state is _OPEN:  # the open period in progress follows the change
                self._open_until = self._state_since + self._current_timeout
        self._configure()

    # ------------------------------------------------------------------ state

    @property
    def state(self) -> CircuitState:
        """The current state. An OPEN breaker whose timeout has passed still
        reads OPEN until the next call turns it HALF_OPEN."""
        return self._state

    @property
    def retry_after(self) -> float | None:
        """Seconds until an OPEN breaker admits a trial (0 when it would now;
        None when CLOSED/HALF_OPEN/DISABLED, or FORCED_OPEN)."""
        if self._state is _OPEN:
            return max(0.0, self._open_until - self._clock.now())
        return None

    def _transition(self, new: CircuitState, reason: str) -> None:
        old = self._state
        if old is new:
            return
        now = self._clock.now()
        self._seconds_in_state[old] = self._seconds_in_state.get(old, 0.0) + (
            now - self._state_since
        )
        self._state = new
        self._state_since = now
        self._last_transition_at = now
        self._generation += 1
        self._half_open_in_flight = 0
        self._half_open_successes = 0
        self._refresh_fast()
        if new is _OPEN:
            self._trips += 1
            if old is _HALF_OPEN:
                self._consecutive_trips += 1
                cfg = self._config
                self._current_timeout = grown_timeout(
                    cfg.timeout, cfg.timeout_multiplier, self._consecutive_trips, cfg.max_timeout
                )
            else:
                self._consecutive_trips = 1
                self._current_timeout = self._config.timeout
                self._opened_at = now
            self._open_until = now + self._current_timeout
        elif new is _CLOSED:
            self._consecutive_failures = 0
            if self._window is not None:
                self._window.clear()
            if old is _HALF_OPEN and self._opened_at is not None:
                recovery = now - self._opened_at
                self._recoveries += 1
                self._recovery_total += recovery
                self._last_recovery = recovery
            self._opened_at = None
            self._consecutive_trips = 0
            self._current_timeout = self._config.timeout
        if self._state_hub is not NO_LISTENERS:
            self._state_hub.emit(StateChangeEvent(self.name, old, new, reason, now))

    def _admit(self) -> int:
        """Admission outside the fast path: returns the generation of the
        admitted call or raises CircuitOpenError."""
        state = self._state
        if state is _CLOSED or state is _DISABLED:
            return self._generation
        now = self._clock.now()
        if state is _OPEN:
            if now >= self._open_until:
                self._transition(_HALF_OPEN, "recovery timeout elapsed")
                state = _HALF_OPEN
            else:
                self._reject(self._open_until - now)
        if state is _HALF_OPEN:
            limit = self._config.max_wait_in_half_open
            if limit is not None and now - self._state_since >= limit:
                self._transition(_OPEN, f"no decision within max_wait_in_half_open={limit:g}s")
                self._reject(self._open_until - now)
            if self._half_open_in_flight < self._config.half_open_max_calls:
                self._half_open_in_flight += 1
                return self._generation
            self._reject(None)  # unknown: it depends on the trial calls in flight
        self._reject(None)  # FORCED_OPEN
        raise AssertionError("unreachable")  # pragma: no cover

    def _reject(self, retry_after: float | None) -> None:
        self._rejected += 1
        if self._reject_hub is not NO_LISTENERS:
            self._reject_hub.emit(RejectionEvent(self.name, self._state, retry_after))
        raise CircuitOpenError(self.name, self._state.value, retry_after)

    # ----------------------------------------------------------------- record

    def _record_success(self, generation: int, started: float | None) -> None:
        self._calls += 1
        self._successes += 1
        flags = 0
        now = 0.0
        duration: float | None = None
        if started is not None:
            now = self._clock.now()
            duration = now - started
            if duration >= self._config.slow_call_duration:
                flags = SLOW
                self._slow += 1
        state = self._state
        if generation == self._generation:
            self._consecutive_failures = 0
            if state is _CLOSED:
                if self._window is not None:
                    self._window.record(flags, now)
                    if flags:
                        self._evaluate_window(now)
            elif state is _HALF_OPEN:
                self._half_open_in_flight -= 1
                self._half_open_successes += 1
                if self._half_open_successes >= self._config.success_threshold:
                    self._transition(_CLOSED, "trial calls succeeded")
        if self._call_hub is not NO_LISTENERS:
            self._call_hub.emit(CallEvent(self.name, _SUCCESS, False, duration))

    def _record_error(self, error: Exception, generation: int, started: float | None) -> None:
        outcome = self._classifier.classify(error, exchange_id=self._config.exchange_id)
        kind = outcome.kind
        counted = outcome.is_service_failure or (
            kind is OutcomeKind.RATE_LIMITED and self._config.count_rate_limits
        )
        self._calls += 1
        by_kind = self._outcomes_by_kind
        by_kind[kind.value] = by_kind.get(kind.value, 0) + 1
        now = self._clock.now() if (started is not None or self._window is not None) else 0.0
        duration = None if started is None else now - started
        if not counted:
            self._ignored += 1
            if generation == self._generation and self._state is _HALF_OPEN:
                self._half_open_in_flight -= 1
        else:
            self._failures += 1
            self._failures_by_kind[kind.value] = self._failures_by_kind.get(kind.value, 0) + 1
            flags = FAILED
            if duration is not None and duration >= self._config.slow_call_duration:
                flags |= SLOW
                self._slow += 1
            # A result from an older generation (admitted before a transition
            # or a reset) changes counters but never the breaker's state.
            if generation == self._generation:
                self._consecutive_failures += 1
                state = self._state
                if state is _HALF_OPEN:
                    self._transition(_OPEN, f"trial call failed ({outcome.reason or kind.value})")
                elif state is _CLOSED:
                    if self._window is not None:
                        self._window.record(flags, now)
                    if self._consecutive_failures >= self._config.failure_threshold:
                        self._transition(
                            _OPEN,
                            f"{self._consecutive_failures} consecutive failures "
                            f"(failure_threshold={self._config.failure_threshold})",
                        )
                    elif self._window is not None:
                        self._evaluate_window(now)
        if self._call_hub is not NO_LISTENERS:
            self._call_hub.emit(CallEvent(self.name, outcome, counted, duration))

    def _record_cancel(self, generation: int) -> None:
        self._cancelled += 1
        if generation == self._generation and self._state is _HALF_OPEN:
            self._half_open_in_flight -= 1

    def _evaluate_window(self, now: float) -> None:
        assert self._window is not None
        totals = self._window.totals(now)
        cfg = self._config
        if totals.calls < cfg.minimum_calls:
            return
        if (
            cfg.failure_rate_threshold is not None
            and totals.failure_rate >= cfg.failure_rate_threshold
        ):
            self._transition(
                _OPEN,
                f"failure rate {totals.failure_rate:.1f}% >= {cfg.failure_rate_threshold:g}% "
                f"over {totals.calls} calls",
            )
        elif (
            cfg.slow_call_rate_threshold is not None
            and totals.slow_rate >= cfg.slow_call_rate_threshold
        ):
            self._transition(
                _OPEN,
                f"slow-call rate {totals.slow_rate:.1f}% >= {cfg.slow_call_rate_threshold:g}% "
                f"over {totals.calls} calls",
            )

    # ------------------------------------------------------------------- call

    async def call_async(
        self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Run ``await fn(*args, **kwargs)`` under the breaker."""
        if self._fast:
            generation = self._generation
            try:
                result = await fn(*args, **kwargs)
            except Exception as exc:
                self._record_error(exc, generation, None)
                raise
            except BaseException:
                self._cancelled += 1
                raise
            self._calls += 1
            self._successes += 1
            if generation == self._generation:
                self._consecutive_failures = 0
            return result
        generation = self._admit()
        started = self._clock.now() if self._timed else None
        try:
            result = await fn(*args, **kwargs)
        except Exception as exc:
            self._record_error(exc, generation, started)
            raise
        except BaseException:
            self._record_cancel(generation)
            raise
        self._record_success(generation, started)
        return result

    def __call__(
        self, fn: Callable[P, Coroutine[Any, Any, T]]
    ) -> Callable[P, Coroutine[Any, Any, T]]:
        """Decorate an ``async def`` so every call goes through this breaker."""
        return decorate(
            fn,
            self.call_async,
            attribute="circuit_breaker",
            owner=self,
            label=f"circuit breaker {self.name!r}",
        )

    async def __aenter__(self) -> CircuitBreaker:
        generation = self._generation if self._fast else self._admit()
        started = self._clock.now() if self._timed else -1.0
        task = asyncio.current_task()
        entries = self._entries
        if entries is None:
            entries = self._entries = {}
        stack = entries.get(task)
        if stack is None:
            if len(entries) >= _MAX_TRACKED_TASKS:
                self._prune_entries()
            entries[task] = [(generation, started)]
        else:
            stack.append((generation, started))
        return self

    def _claim_entry(self) -> _Entry | None:
        """The admission record of the block being left, or None if unknown.

        A block is normally left by the task that entered it (innermost block
        first). A block left from another task (an async generator stepped by
        ``asyncio.wait_for``, each step its own task) belongs to a task that
        has finished meanwhile: the oldest such record is claimed. A task
        still running holds its own blocks: an exit from elsewhere never
        takes them (it would hand back a half-open permit it never took).
        """
        entries = self._entries
        if not entries:
            return None
        task = asyncio.current_task()
        stack = entries.get(task)
        if stack is None:
            for other, other_stack in entries.items():
                if other is not None and other.done():
                    task, stack = other, other_stack
                    break
            else:
                return None
        entry = stack.pop()
        if not stack:
            del entries[task]
        return entry

    def _prune_entries(self) -> None:
        entries = self._entries
        if entries:
            for task in [t for t in entries if t is not None and t.done()]:
                del entries[task]

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]:
        entry = self._claim_entry()
        if entry is None:
            # No admission record: which generation admitted the call, and
            # whether it holds a half-open permit, is unknown. Count the
            # outcome in the metrics only (generation -1 never matches): never
            # touch the state or the permits, never raise over the caller's
            # own outcome.
            generation, started = -1, None
        else:
            generation = entry[0]
            started = None if entry[1] < 0 else entry[1]
        if exc is None:
            self._record_success(generation, started)
        elif isinstance(exc, Exception):
            self._record_error(exc, generation, started)
        else:
            self._record_cancel(generation)
        return False

    # ---------------------------------------------------------------- control

    def force_open(self) -> None:
        """Reject every call until :meth:`reset` (or :meth:`disable`)."""
        self._transition(_FORCED_OPEN, "forced open")

    def disable(self) -> None:
        """Let every call through and never trip, until :meth:`reset`."""
        self._transition(_DISABLED, "disabled")

    def reset(self) -> None:
        """Back to CLOSED with cleared failure counts (metrics are kept)."""
        self._transition(_CLOSED, "reset")
        self._generation += 1  # calls admitted before the reset no longer count
        self._consecutive_failures = 0
        if self._window is not None:
            self._window.clear()
        self._consecutive_trips = 0
        self._current_timeout = self._config.timeout

    # -------------------------------------------------------------- listeners

    def add_listener(
        self,
        *,
        on_state_change: Callable[[StateChangeEvent], Any] | None = None,
        on_call: Callable[[CallEvent], Any] | None = None,
        on_rejection: Callable[[RejectionEvent], Any] | None = None,
    ) -> None:
        """Subscribe callbacks, sync or async, by the one listener contract
        (:mod:`virtuoso_resilience._events`): an async callback runs on its
        own worker and never delays or fails the call; one that raises or
        hangs is logged and isolated."""
        if on_state_change is not None:
            self._state_hub = self._subscribe("state changes", on_state_change)
        if on_call is not None:
            self._call_hub = self._subscribe("calls", on_call)
        if on_rejection is not None:
            self._reject_hub = self._subscribe("rejections", on_rejection)
        self._refresh_fast()

    def remove_listener(self, callback: Callable[[Any], Any]) -> bool:
        """Unsubscribe ``callback`` wherever it was subscribed; returns whether it was."""
        from_state, self._state_hub = self._unsubscribe("state changes", callback)
        from_calls, self._call_hub = self._unsubscribe("calls", callback)
        from_rejections, self._reject_hub = self._unsubscribe("rejections", callback)
        self._refresh_fast()
        return from_state or from_calls or from_rejections

    # ---------------------------------------------------------------- metrics

    def window_totals(self) -> WindowTotals | None:
        """What the sliding window holds now (None when no rate rule is on)."""
        if self._window is None:
            return None
        return self._window.totals(self._clock.now())

    def snapshot(self) -> CircuitBreakerSnapshot:
        """The breaker's metrics now."""
        now = self._clock.now()
        seconds = {s.value: v for s, v in self._seconds_in_state.items()}
        seconds[self._state.value] = seconds.get(self._state.value, 0.0) + (now - self._state_since)
        totals = self.window_totals()
        return CircuitBreakerSnapshot(
            name=self.name,
            state=self._state,
            calls=self._calls,
            successes=self._successes,
            failures=self._failures,
            ignored=self._ignored,
            rejected=self._rejected,
            cancelled=self._cancelled,
            slow_calls=self._slow,
            failures_by_kind=dict(self._failures_by_kind),
            outcomes_by_kind=dict(self._outcomes_by_kind),
            consecutive_failures=self._consecutive_failures,
            failure_rate=totals.failure_rate if totals else 0.0,
            slow_call_rate=totals.slow_rate if totals else 0.0,
            window_calls=totals.calls if totals else 0,
            trips=self._trips,
            current_timeout=self._current_timeout,
            retry_after=self.retry_after,
            last_transition_at=self._last_transition_at,
            seconds_in_state=seconds,
            recoveries=self._recoveries,
            last_recovery_seconds=self._last_recovery,
            mean_recovery_seconds=(
                self._recovery_total / self._recoveries if self._recoveries else None
            ),
            config=self._config.model_dump(mode="json"),
        )

    def __repr__(self) -> str:
        extra = ""
        if self._state is _OPEN:
            extra = f" retry_after={self.retry_after:.3f}s"
        return (
            f"<CircuitBreaker {self.name!r} state={self._state.value} calls={self._calls} "
            f"failures={self._failures} consecutive_failures={self._consecutive_failures}/"
            f"{self._config.failure_threshold} rejected={self._rejected} "
            f"trips={self._trips}{extra}>"
        )


_SUCCESS = Outcome(OutcomeKind.SUCCESS)
