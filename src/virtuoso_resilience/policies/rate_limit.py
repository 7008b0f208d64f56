"""A weighted, fair token-bucket rate limiter.

The bucket holds at most ``capacity`` tokens and refills at ``rate`` tokens per
second. A call costs tokens (like a ccxt endpoint's ``cost``); it is granted
when the bucket holds its cost. Callers that must wait line up FIFO and are
granted strictly in arrival order: a costly caller at the head is never
starved by cheaper ones that arrive later, and while anyone waits a new caller
queues even if tokens are available (no barging).

Time is read and slept through the injected :class:`~virtuoso_resilience.clock.Clock`,
so tests run on a :class:`~virtuoso_resilience.clock.FakeClock`.

Besides the bucket, two restrictions can come from the exchange itself:

* a **pause** (:meth:`RateLimiter.pause_until` / :meth:`RateLimiter.pause_for`),
  what a 429 with ``Retry-After`` asks: nothing is granted before it ends;
* a **window budget** (:meth:`RateLimiter.update_from_headers`), what
  rate-limit headers say: at most ``remaining`` tokens are granted before the
  window resets.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Literal, ParamSpec, TypeVar

from .._model import MAX_SECONDS, ConfigModel, PositiveFloat
from ..clock import MONOTONIC, Clock
from ..errors import ConfigurationError, FieldError, RateLimitTimeoutError
from ._core import NO_LISTENERS, PolicyName, SingleStreamPolicy, shown
from ._decorate import decorate

__all__ = ["RateLimitEvent", "RateLimiter", "RateLimiterConfig"]

P = ParamSpec("P")
T = TypeVar("T")

_INF = math.inf
_EPS = 1e-9
"""Tokens short of a cost by less than this count as enough (float rounding)."""
_SAME_WINDOW = 1e-3
"""Resets this close (seconds) to the current budget's are the same window."""
_NUMBER = (int, float)
"""The types accepted for costs and durations (``bool`` is refused apart)."""


def _number(method: str, argument: str, value: object, allowed: str) -> float:
    """``value`` as a float if it is a finite int or float (never a bool), else
    a :class:`TypeError`/:class:`ValueError` naming the argument."""
    if type(value) is bool or not isinstance(value, _NUMBER):
        raise TypeError(
            f"{method}({argument}={shown(value)}): {argument} must be a number "
            f"({allowed}), not {type(value).__name__}"
        )
    try:
        number = float(value)
    except OverflowError:  # an int beyond any float: 10**400
        number = math.inf
    if not math.isfinite(number):
        raise ValueError(f"{method}({argument}={shown(value)}): {argument} must be {allowed}")
    return number


class RateLimiterConfig(ConfigModel):
    """The bucket's size and refill rate.

    Validated on creation and on assignment. Run-time changes
    (``limiter.config.rate = 5.0``, or :meth:`RateLimiter.resize`) apply at
    once: tokens earned so far are kept (at most the new capacity) and waiting
    callers are re-timed.
    """

    name: PolicyName | None = None
    """The limiter's name; filled in by the limiter when left out."""
    rate: PositiveFloat
    """Tokens added per second."""
    capacity: PositiveFloat
    """Tokens the bucket holds at most: the largest burst, and the largest cost
    one call may have. The bucket starts full."""


class _Waiter:
    __slots__ = ("budget_charged", "cost", "deadline", "enqueued", "future", "granted")

    def __init__(
        self, cost: float, future: asyncio.Future[None], enqueued: float, deadline: float
    ) -> None:
        self.cost = cost
        self.future = future
        self.enqueued = enqueued
        self.deadline = deadline
        self.granted = False
        self.budget_charged = False


@dataclass(frozen=True, slots=True)
class RateLimitEvent:
    """Something that holds a limiter's callers back.

    ``what`` is:

    - ``"paused"``: a pause started or was extended (:meth:`RateLimiter.pause_until`);
      ``seconds`` is how long it lasts from now;
    - ``"budget"``: rate-limit headers set a window budget
      (:meth:`RateLimiter.update_from_headers`); ``remaining`` tokens may be
      granted in the next ``seconds``;
    - ``"rejected"``: a caller's ``max_wait`` could not be met; ``cost`` is
      its cost and ``seconds`` the wait it would have needed.
    """

    name: str
    what: Literal["paused", "budget", "rejected"]
    seconds: float
    cost: float | None = None
    remaining: float | None = None


class RateLimiter(SingleStreamPolicy[RateLimiterConfig, RateLimitEvent]):
    """Spaces calls out to ``rate`` tokens per second with bursts up to ``capacity``.

    ``await limiter.acquire(cost)``, ``async with limiter.limit(cost):``,
    ``await limiter.call_async(fn, ...)`` (cost 1),
    ``await limiter.call_weighted_async(cost, fn, ...)`` or ``@limiter`` on an
    ``async def`` (cost 1). Pauses, window budgets and ``max_wait``
    rejections are published to the listeners (:meth:`add_listener`) as
    :class:`RateLimitEvent`.
    """

    kind = "rate_limiter"
    config_type = RateLimiterConfig
    default_name = "rate_limiter"

    __slots__ = (
        "_budget",
        "_budget_until",
        "_capacity",
        "_clock",
        "_exchange_limit",
        "_granted",
        "_granted_cost",
        "_muted",
        "_paused_until",
        "_queue",
        "_rate",
        "_rejected",
        "_restricted_until",
        "_timer",
        "_timer_at",
        "_tokens",
        "_updated",
        "_wait_total",
        "_waited",
    )

    def __init__(
        self,
        name: str | None = None,
        config: RateLimiterConfig | None = None,
        *,
        clock: Clock = MONOTONIC,
        **settings: Any,
    ) -> None:
        """``RateLimiter("bybit", rate=10, capacity=20)`` or ``RateLimiter("bybit", config)``.

        ``settings`` are :class:`RateLimiterConfig` fields; pass them or a
        config, not both. ``clock`` supplies time and sleeping.
        """
        config = self._bind(name, config, settings)
        self._open_events()
        self._clock = clock
        self._rate = config.rate
        self._capacity = config.capacity
        self._tokens = config.capacity
        self._updated = clock.now()
        self._paused_until = -_INF
        self._budget = _INF
        self._budget_until = -_INF
        self._exchange_limit: int | None = None
        # The fast path only needs one comparison to know that neither a pause
        # nor a window budget applies: max(paused_until, budget_until).
        self._restricted_until = -_INF
        self._queue: deque[_Waiter] = deque()
        self._timer: asyncio.Task[None] | None = None
        self._timer_at = _INF
        self._muted = False
        self._granted = 0
        self._granted_cost = 0.0
        self._waited = 0
        self._wait_total = 0.0
        self._rejected = 0
        config.subscribe(self._on_config_change)

    # ------------------------------------------------------------------ state

    @property
    def tokens(self) -> float:
        """Tokens in the bucket now."""
        now = self._clock.now()
        return min(self._capacity, self._tokens + (now - self._updated) * self._rate)

    @property
    def queue_length(self) -> int:
        """Callers waiting now."""
        return sum(1 for w in self._queue if not w.future.done())

    @property
    def paused_until(self) -> float | None:
        """Clock time until which nothing is granted, or ``None`` when not paused."""
        return self._paused_until if self._paused_until > self._clock.now() else None

    # ---------------------------------------------------------------- acquire

    async def acquire(self, cost: float = 1.0, *, max_wait: float | None = None) -> None:
        """Wait until ``cost`` tokens are granted, in arrival order.

        ``max_wait`` (seconds): if the wait this call needs, computed up front
        from the callers ahead and the rate, exceeds it,
        :class:`RateLimitTimeoutError` is raised at once without waiting. A
        later pause or resize that pushes a waiting caller past its
        ``max_wait`` rejects it the same way. ``None`` waits as long as needed.

        A cost above ``capacity`` can never be granted: it raises
        :class:`~virtuoso_resilience.errors.ConfigurationError` (a
        :class:`ValueError`) naming the cost and the capacity. A cost that is
        not a number (a bool, a string) is a :class:`TypeError`; NaN, ±inf,
        0 and negative costs are refused like a cost above capacity.

        Cancelled while waiting, the caller takes nothing; cancelled after the
        tokens were granted but before this returns, they are given back.
        """
        if type(cost) not in _NUMBER or not 0 < cost <= self._capacity:
            if type(cost) is bool or not isinstance(cost, _NUMBER):
                raise TypeError(
                    f"rate limiter {self.name!r}: acquire(cost={shown(cost)}): cost must be a "
                    f"number of tokens > 0 and <= capacity ({self._capacity:g}), "
                    f"not {type(cost).__name__}"
                )
            if not 0 < cost <= self._capacity:
                raise _cost_error(self.name, cost, self._capacity)
        if max_wait is not None:
            if type(max_wait) is bool or not isinstance(max_wait, _NUMBER):
                raise TypeError(
                    f"acquire(max_wait={shown(max_wait)}): max_wait must be a number of "
                    f"seconds >= 0 or None, not {type(max_wait).__name__}"
                )
            if not max_wait >= 0:
                raise ValueError(f"max_wait must be >= 0 seconds or None; got {shown(max_wait)}")
        if not self._take_now(cost):
            await self._acquire_slow(cost, max_wait)

    def _take_now(self, cost: float) -> bool:
        """The fast path: take ``cost`` tokens if nobody waits, no pause or
        budget applies and the bucket holds them. ``cost`` must be valid."""
        now = self._clock.now()
        if self._queue or now < self._restricted_until:
            return False
        tokens = self._tokens + (now - self._updated) * self._rate
        if tokens > self._capacity:
            tokens = self._capacity
        self._updated = now
        if tokens + _EPS >= cost:
            self._tokens = tokens - cost
            self._granted += 1
            self._granted_cost += cost
            return True
        self._tokens = tokens
        return False

    async def _acquire_slow(self, cost: float, max_wait: float | None) -> None:
        now = self._clock.now()
        self._refill(now)
        if not self._queue and self._ready_at(cost, now) <= now:
            self._take(cost, now)
            self._granted += 1
            self._granted_cost += cost
            return
        deadline = _INF
        if max_wait is not None:
            needed = self._projected_grant(cost, now) - now
            if needed > max_wait + _EPS:
                self._rejected += 1
                if self._events is not NO_LISTENERS:
                    self._events.emit(RateLimitEvent(self.name, "rejected", needed, cost=cost))
                raise RateLimitTimeoutError(self.name, cost, max_wait, needed)
            deadline = now + max_wait
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiter = _Waiter(cost, future, now, deadline)
        queue = self._queue
        queue.append(waiter)
        if queue[0] is waiter:
            self._drain()
        try:
            await future
        except asyncio.CancelledError:
            if waiter.granted:
                self._refund(waiter)
            elif future.done() and not future.cancelled():
                future.exception()  # rejected as we were cancelled: mark it seen
            self._drain()
            raise
        self._granted += 1
        self._granted_cost += cost
        self._waited += 1
        self._wait_total += self._clock.now() - now

    # ------------------------------------------------------------------ model

    def _refill(self, now: float) -> None:
        tokens = self._tokens + (now - self._updated) * self._rate
        self._tokens = tokens if tokens < self._capacity else self._capacity
        self._updated = now
        if now >= self._budget_until and self._budget_until != -_INF:
            self._budget = _INF
            self._budget_until = -_INF
            self._restricted_until = self._paused_until

    def _ready_at(self, cost: float, now: float) -> float:
        """When the head caller (of ``cost``) can be granted; ``now`` if it can be now.

        The bucket must be refilled to ``now``.
        """
        if now < self._paused_until:
            return self._paused_until
        if now < self._budget_until and self._budget + _EPS < cost:
            return self._budget_until
        deficit = cost - self._tokens
        if deficit <= _EPS:
            return now
        wake = now + deficit / self._rate
        return wake if wake > now else now

    def _take(self, cost: float, now: float) -> bool:
        self._tokens -= cost
        if now < self._budget_until:
            self._budget -= cost
            return True
        return False

    def _projected_grant(self, cost: float, now: float) -> float:
        """When a caller of ``cost`` joining the line now would be granted,
        assuming the callers ahead stay and nothing changes."""
        state = (now, self._tokens, self._budget)
        for waiter in self._queue:
            if not waiter.future.done():
                state = self._simulate(state, waiter.cost)
        return self._simulate(state, cost)[0]

    def _simulate(
        self, state: tuple[float, float, float], cost: float
    ) -> tuple[float, float, float]:
        """(time, tokens, budget) right after granting ``cost``, starting from ``state``.

        Mirrors :meth:`_drain`: pauses first, then the window budget, then the
        refill. While someone waits the bucket never fills past their cost, so
        only the waits for a pause or a budget can lose tokens to the capacity.
        """
        t, tokens, budget = state
        rate, capacity = self._rate, self._capacity
        if t < self._paused_until:
            tokens = min(capacity, tokens + (self._paused_until - t) * rate)
            t = self._paused_until
        if t < self._budget_until and budget + _EPS < cost:
            tokens = min(capacity, tokens + (self._budget_until - t) * rate)
            t = self._budget_until
        if tokens + _EPS < cost:
            t += (cost - tokens) / rate
            tokens = cost
        tokens -= cost
        if t < self._budget_until:
            budget -= cost
        return t, tokens, budget

    # ------------------------------------------------------------------ queue

    def _drain(self) -> None:
        """Grant the callers at the head of the line that can be granted now,
        in order, then arm the timer for the next one (or disarm it)."""
        queue = self._queue
        now = self._clock.now()
        self._refill(now)
        while queue:
            waiter = queue[0]
            if waiter.future.done():  # cancelled or rejected
                queue.popleft()
                continue
            wake = self._ready_at(waiter.cost, now)
            if wake > now:
                self._arm(wake, now)
                return
            queue.popleft()
            waiter.budget_charged = self._take(waiter.cost, now)
            waiter.granted = True
            waiter.future.set_result(None)
        self._disarm()

    def _arm(self, wake: float, now: float) -> None:
        if self._timer is not None:
            if self._timer_at == wake:
                return
            self._timer.cancel()
        self._timer_at = wake
        self._timer = asyncio.get_running_loop().create_task(
            self._sleep_then_drain(wake - now), name=f"rate limiter {self.name!r} timer"
        )

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self._timer_at = _INF

    async def _sleep_then_drain(self, delay: float) -> None:
        await self._clock.sleep(delay)
        self._timer = None
        self._timer_at = _INF
        self._drain()

    def _refund(self, waiter: _Waiter) -> None:
        now = self._clock.now()
        self._refill(now)
        self._tokens = min(self._capacity, self._tokens + waiter.cost)
        if waiter.budget_charged and now < self._budget_until:
            self._budget += waiter.cost

    def _reproject(self) -> None:
        """After a change that can only delay the line (pause, smaller rate or
        capacity, smaller budget): reject the waiters it pushes past their
        ``max_wait``, and those whose cost no longer fits the capacity."""
        now = self._clock.now()
        state = (now, self._tokens, self._budget)
        for waiter in self._queue:
            future = waiter.future
            if future.done():
                continue
            if waiter.cost > self._capacity:
                future.set_exception(_cost_error(self.name, waiter.cost, self._capacity))
                continue
            after = self._simulate(state, waiter.cost)
            if after[0] > waiter.deadline + _EPS:
                self._rejected += 1
                max_wait = waiter.deadline - waiter.enqueued
                needed = after[0] - waiter.enqueued
                if self._events is not NO_LISTENERS:
                    self._events.emit(
                        RateLimitEvent(self.name, "rejected", needed, cost=waiter.cost)
                    )
                future.set_exception(
                    RateLimitTimeoutError(self.name, waiter.cost, max_wait, needed)
                )
                continue
            state = after

    def _changed(self) -> None:
        """Re-time the line after an outside change; needs a running loop only
        when someone waits."""
        if self._queue:
            self._refill(self._clock.now())
            self._reproject()
            self._drain()

    # ---------------------------------------------------------------- control

    def pause_until(self, when: float) -> None:
        """Grant nothing before clock time ``when`` (seconds, the injected clock's
        monotonic time): what a 429 with ``Retry-After`` asks.

        A pause never shortens one already in force; see :meth:`resume`.
        Tokens keep accruing during the pause (up to ``capacity``).

        ``when`` must be a finite number (not a bool) at most
        ``MAX_SECONDS`` (about 31.7 years) from now: :class:`TypeError` or
        :class:`ValueError` otherwise.
        """
        when = _number(
            "pause_until", "when", when, f"a finite clock time at most {MAX_SECONDS:g}s from now"
        )
        now = self._clock.now()
        if when - now > MAX_SECONDS:
            raise ValueError(
                f"pause_until(when={shown(when)}): when must be at most {MAX_SECONDS:g}s "
                f"from now (now={now!r})"
            )
        if when <= self._paused_until:
            return
        self._paused_until = when
        self._restricted_until = max(when, self._budget_until)
        if self._events is not NO_LISTENERS and when > now:
            self._events.emit(RateLimitEvent(self.name, "paused", when - now))
        self._changed()

    def pause_for(self, seconds: float) -> None:
        """Grant nothing for the next ``seconds`` (``Retry-After: seconds``);
        ``seconds`` is a finite number from 0 to ``MAX_SECONDS``."""
        allowed = f"a finite number of seconds from 0 to {MAX_SECONDS:g}"
        seconds = _number("pause_for", "seconds", seconds, allowed)
        if not 0 <= seconds <= MAX_SECONDS:
            raise ValueError(f"pause_for(seconds={shown(seconds)}): seconds must be {allowed}")
        self.pause_until(self._clock.now() + seconds)

    def resume(self) -> None:
        """End a pause now (the window budget, if any, stays)."""
        self._paused_until = -_INF
        self._restricted_until = self._budget_until
        if self._queue:
            self._drain()

    def resize(self, *, rate: float | None = None, capacity: float | None = None) -> None:
        """Change the rate (tokens per second) and/or capacity (tokens) at once.

        Both values are validated before either is applied (a bad value raises
        :class:`~virtuoso_resilience.errors.ConfigurationError` and changes
        nothing). Tokens earned at the old rate are kept, up to the new
        capacity; waiting callers are re-timed, and those whose cost exceeds a
        smaller capacity are failed with ``ConfigurationError``.
        """
        updates: dict[str, float] = {}
        if rate is not None:
            updates["rate"] = rate
        if capacity is not None:
            updates["capacity"] = capacity
        if not updates:
            return
        RateLimiterConfig(**{**self._config.model_dump(), **updates})
        self._muted = True
        try:
            for field_name, value in updates.items():
                setattr(self._config, field_name, value)
        finally:
            self._muted = False
        self._apply_config()

    def _on_config_change(self, field_name: str) -> None:
        if field_name in ("rate", "capacity") and not self._muted:
            self._apply_config()

    def _apply_config(self) -> None:
        now = self._clock.now()
        self._refill(now)  # earn the tokens due at the old rate first
        self._rate = self._config.rate
        self._capacity = self._config.capacity
        if self._tokens > self._capacity:
            self._tokens = self._capacity
        self._changed()

    def update_from_headers(self, *, limit: int, remaining: int, reset_in: float) -> None:
        """Follow what an exchange's rate-limit headers say.

        ``limit``: requests allowed per window (e.g. Bybit's ``X-Bapi-Limit``);
        ``remaining``: what is left in the current window
        (``X-Bapi-Limit-Status``); ``reset_in``: seconds until the window
        resets (for Bybit: ``X-Bapi-Limit-Reset-Timestamp`` / 1000 minus the
        current epoch time).

        Effect: until ``reset_in`` seconds from now, at most ``remaining``
        tokens are granted (the *window budget*), on top of the bucket's own
        rule; at the reset the budget lifts and only the bucket applies.
        Nothing is added to the bucket. Another update for the same window
        (a reset within 1 ms of the current one, or earlier) can only lower the
        budget, so responses arriving out of order never raise it; a later reset
        starts a new window. ``limit`` is recorded for :meth:`snapshot` and does
        not resize the bucket (use :meth:`resize`).

        ``limit`` and ``remaining`` must be whole numbers >= 0 (ints, not
        bools; an integral float such as ``12.0`` is taken as ``12``),
        ``reset_in`` a finite number of seconds from 0 to ``MAX_SECONDS``:
        anything else (NaN, ±inf, strings) raises :class:`TypeError` or
        :class:`ValueError` naming the argument, and changes nothing.
        """
        counts = "a whole number >= 0"
        limit_n = _number("update_from_headers", "limit", limit, counts)
        remaining_n = _number("update_from_headers", "remaining", remaining, counts)
        seconds = f"a finite number of seconds from 0 to {MAX_SECONDS:g}"
        reset_n = _number("update_from_headers", "reset_in", reset_in, seconds)
        for argument, value, number in (
            ("limit", limit, limit_n),
            ("remaining", remaining, remaining_n),
        ):
            if number < 0 or not number.is_integer():
                raise ValueError(
                    f"update_from_headers({argument}={shown(value)}): {argument} must be {counts}"
                )
        if not 0 <= reset_n <= MAX_SECONDS:
            raise ValueError(
                f"update_from_headers(reset_in={shown(reset_in)}): reset_in must be {seconds}"
            )
        reset_in = reset_n
        remaining = int(remaining_n)
        self._exchange_limit = int(limit_n)
        now = self._clock.now()
        self._refill(now)
        if reset_in == 0:
            return
        reset_at = now + reset_in
        if now < self._budget_until and reset_at <= self._budget_until + _SAME_WINDOW:
            self._budget = min(self._budget, float(remaining))
        else:
            self._budget = float(remaining)
            self._budget_until = reset_at
        self._restricted_until = max(self._paused_until, self._budget_until)
        if self._events is not NO_LISTENERS:
            self._events.emit(
                RateLimitEvent(
                    self.name, "budget", self._budget_until - now, remaining=self._budget
                )
            )
        self._changed()

    # ------------------------------------------------------------------- call

    @contextlib.asynccontextmanager
    async def limit(
        self, cost: float = 1.0, *, max_wait: float | None = None
    ) -> AsyncIterator[None]:
        """``async with limiter.limit(cost):`` acquires ``cost`` tokens on entry.

        Tokens are spent, not returned, when the block exits.
        """
        await self.acquire(cost, max_wait=max_wait)
        yield

    async def call_async(
        self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Acquire one token, then run ``await fn(*args, **kwargs)``."""
        if self._capacity < 1.0 or not self._take_now(1.0):
            await self.acquire(1.0)
        return await fn(*args, **kwargs)

    async def call_weighted_async(
        self, cost: float, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Acquire ``cost`` tokens, then run ``await fn(*args, **kwargs)``
        (:meth:`call_async` is this with cost 1, its fast path inlined)."""
        await self.acquire(cost)
        return await fn(*args, **kwargs)

    def __call__(
        self, fn: Callable[P, Coroutine[Any, Any, T]]
    ) -> Callable[P, Coroutine[Any, Any, T]]:
        """Decorate an ``async def``: every call first acquires one token."""
        return decorate(
            fn,
            self.call_async,
            attribute="rate_limiter",
            owner=self,
            label=f"rate limiter {self.name!r}",
        )

    # ---------------------------------------------------------------- metrics

    def snapshot(self) -> dict[str, Any]:
        """JSON-ready metrics.

        ``waited`` counts grants that had to wait, ``total_wait_seconds`` sums
        their waits; ``rejected`` counts ``max_wait`` rejections;
        ``paused_until`` is clock time (``None`` when not paused) and
        ``pause_remaining`` the seconds left; ``budget`` is the window budget
        left (``None`` when none applies) and ``budget_reset_in`` the seconds
        until it lifts.
        """
        now = self._clock.now()
        budget_active = now < self._budget_until
        return {
            "name": self.name,
            "kind": "rate_limiter",
            "rate": self._rate,
            "capacity": self._capacity,
            "tokens": self.tokens,
            "queue_length": self.queue_length,
            "queued_cost": sum(w.cost for w in self._queue if not w.future.done()),
            "granted": self._granted,
            "granted_cost": self._granted_cost,
            "waited": self._waited,
            "total_wait_seconds": self._wait_total,
            "rejected": self._rejected,
            "paused_until": self.paused_until,
            "pause_remaining": max(0.0, self._paused_until - now),
            "budget": self._budget if budget_active else None,
            "budget_reset_in": self._budget_until - now if budget_active else None,
            "exchange_limit": self._exchange_limit,
        }

    def __repr__(self) -> str:
        paused = ""
        if self._paused_until > self._clock.now():
            paused = f" paused_for={self._paused_until - self._clock.now():.3f}s"
        return (
            f"<RateLimiter {self.name!r} rate={self._rate:g}/s capacity={self._capacity:g} "
            f"tokens={self.tokens:.3f} waiting={self.queue_length} granted={self._granted} "
            f"rejected={self._rejected}{paused}>"
        )


def _cost_error(name: str, cost: float, capacity: float) -> ConfigurationError:
    return ConfigurationError(
        [
            FieldError(
                f"RateLimiter({name!r})",
                "cost",
                shown(cost) if isinstance(cost, int) and cost.bit_length() > 64 else cost,
                f"must be > 0 and <= capacity ({capacity:g} tokens)",
            )
        ]
    )
