"""One weighted limiter per exchange account, installed as ccxt's throttler.

ccxt calls ``exchange.throttle(cost)`` before every request it signs, with
the endpoint's ``cost`` (in units of its ``rateLimit``). The adapter installs
an :class:`AccountLimiter` as ``exchange.throttler``: ccxt's own cost table
feeds it and ccxt's leaky bucket is gone (``enableRateLimit`` stays ``True``
so that ccxt keeps calling it). On top of the account bucket it learns
per-endpoint budgets from the answers' headers, drains the budget for every
caller after a rate-limit rejection and stops everything during a ban.
"""

from __future__ import annotations

import asyncio
import contextvars
import math
import time
from collections.abc import Mapping
from typing import Any

from multidict import CIMultiDict, CIMultiDictProxy

from ..classify import parse_retry_after
from ..clock import Clock
from ..policies import RateLimiter
from ._errors import ExchangeBannedError

__all__ = ["AccountLimiter", "CallState", "current_call"]


class CallState:
    """What one adapter call saw of its HTTP requests (the last one wins)."""

    __slots__ = ("headers", "method", "path", "probe", "requests", "status")

    def __init__(self, method: str) -> None:
        self.method = method
        self.path: str | None = None
        self.status: int | None = None
        self.headers: Mapping[str, str] | None = None
        self.requests = 0
        self.probe = False

    def __repr__(self) -> str:
        return (
            f"<CallState {self.method} path={self.path} status={self.status} "
            f"requests={self.requests}>"
        )


current_call: contextvars.ContextVar[CallState | None] = contextvars.ContextVar(
    "virtuoso_resilience_exchange_call", default=None
)


def _number(value: object) -> float | None:
    """A finite, non-negative header number; ``None`` for anything else."""
    if not isinstance(value, str) or not value.isascii():
        return None
    try:
        number = float(value.strip())
    except ValueError:
        return None
    if not math.isfinite(number) or number < 0:
        return None
    return number


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """``headers[name]``, case-insensitively (aiohttp's headers already are)."""
    value = headers.get(name)
    if value is None and not isinstance(headers, CIMultiDictProxy | CIMultiDict):
        lowered = name.lower()
        for key, item in headers.items():
            if key.lower() == lowered:
                return item
    return value


class AccountLimiter:
    """The account's request budget, shaped like ccxt's ``Throttler``.

    ``rate`` is in ccxt cost units per second (``1000 / exchange.rateLimit``),
    ``capacity`` the burst. Endpoint budgets learned from ``X-Bapi-Limit``
    (requests per second) are kept per path at ``safety`` of what the
    exchange allows.
    """

    def __init__(
        self,
        name: str,
        *,
        rate: float,
        capacity: float,
        safety: float,
        weight_limit_per_minute: float | None,
        max_ban: float,
        clock: Clock,
    ) -> None:
        self.name = name
        self.exchange_id = name.split(":", 1)[0]
        self.loop: asyncio.AbstractEventLoop | None = None  # ccxt assigns it in open()
        self._clock = clock
        self._safety = safety
        self._weight_limit = weight_limit_per_minute
        self._max_ban = max_ban
        self.account = RateLimiter(name, rate=rate, capacity=capacity, clock=clock)
        self._base_rate = rate
        self._base_capacity = capacity
        self._capacity = capacity  # the account bucket's, kept in step with its config
        self.account.config.subscribe(self._account_changed)
        self._answered = 0
        self.decreases = 0
        self.endpoints: dict[str, RateLimiter] = {}
        self._method_paths: dict[str, set[str]] = {}
        self._probes: dict[str, asyncio.Future[None]] = {}
        self.banned_until: float | None = None
        self.drains = 0
        self.bans = 0
        self.learned = 0
        self.used_weight: float | None = None
        self.order_counts: dict[str, float] = {}

    # ------------------------------------------------------------- ccxt side
    def __call__(self, cost: float | None = None) -> Any:
        """What ccxt awaits before each request: ``cost`` tokens (default 1)."""
        return self.acquire(1.0 if cost is None else float(cost))

    async def acquire(self, cost: float) -> None:
        """Wait for ``cost`` account tokens, then for the endpoint budgets of the
        current call's method."""
        if self.banned_until is not None:
            left = self.ban_remaining()
            if left > 0:
                raise ExchangeBannedError(self.exchange_id, left)
        if not 0 < cost < math.inf:
            cost = 1.0
        account = self.account
        if cost > self._capacity:
            capacity = account.config.capacity
            while cost > capacity:  # a costly endpoint: several bucket-fulls, in line
                await account.acquire(capacity)
                cost -= capacity
        await account.acquire(cost)
        state = current_call.get()
        if state is None:
            return
        paths = self._method_paths.get(state.method)
        if paths is None:
            probe = self._probes.get(state.method)
            if probe is None:
                # The first request of this method: learn its budget before a burst.
                loop = asyncio.get_running_loop()
                self._probes[state.method] = loop.create_future()
                state.probe = True
                return
            await asyncio.shield(probe)
            paths = self._method_paths.get(state.method)
            if paths is None:
                return
        for path in paths:
            limiter = self.endpoints.get(path)
            if limiter is not None:
                await limiter.acquire()

    def finish(self, state: CallState) -> None:
        """A call's attempt ended: a probe that saw no answer releases the callers behind it."""
        self._end_probe(state)

    def _end_probe(self, state: CallState) -> None:
        if state.probe:
            state.probe = False
            probe = self._probes.pop(state.method, None)
            if probe is not None and not probe.done():
                probe.set_result(None)
            self._method_paths.setdefault(state.method, set())

    # --------------------------------------------------------- response side
    def observe(
        self, state: CallState | None, path: str, status: int, headers: Mapping[str, str]
    ) -> None:
        """Learn from one answer's headers (every answer, success or not)."""
        limit = _number(_header(headers, "X-Bapi-Limit"))
        if limit is not None and limit >= 1:
            self._learn_endpoint(path, limit, headers)
            if state is not None:  # this method's requests now pass this endpoint's budget
                self._method_paths.setdefault(state.method, set()).add(path)
        weight = _header(headers, "X-MBX-USED-WEIGHT-1M")
        if weight is not None:  # Binance: the weight, and the order counts beside it
            used = _number(weight)
            if used is not None:
                self._learn_weight(used)
            for key, value in headers.items():
                upper = key.upper()
                if upper.startswith("X-MBX-ORDER-COUNT-"):
                    count = _number(value)
                    if count is not None:
                        self.order_counts[upper[len("X-MBX-ORDER-COUNT-") :]] = count
        if status == 418:
            self.ban(parse_retry_after(_header(headers, "Retry-After")))
        elif status < 400 and self.account.config.rate < self._base_rate:
            self._answered += 1
            if self._answered >= self._INCREASE_EVERY:
                self._answered = 0
                self._increase()
        if state is not None:
            self._end_probe(state)

    def _learn_endpoint(self, path: str, limit: float, headers: Mapping[str, str]) -> None:
        # Bybit budgets are per second. A bucket of ``rate`` with ``capacity``
        # grants at most capacity + rate in any second: keep that under the
        # limit, with one request of margin for the one in flight while learning.
        rate = max(limit * self._safety, 0.1)
        capacity = max(1.0, limit - rate - 1.0)
        limiter = self.endpoints.get(path)
        if limiter is None:
            self.endpoints[path] = limiter = RateLimiter(
                f"{self.name}:{path}", rate=rate, capacity=capacity, clock=self._clock
            )
            self.learned += 1
        elif limiter.config.rate != rate or limiter.config.capacity != capacity:
            limiter.resize(rate=rate, capacity=capacity)
        remaining = _number(_header(headers, "X-Bapi-Limit-Status"))
        reset = _number(_header(headers, "X-Bapi-Limit-Reset-Timestamp"))
        if remaining is not None and reset is not None:
            reset_in = reset / 1000.0 - time.time()
            if 0 < reset_in <= 60:
                limiter.update_from_headers(
                    limit=int(limit), remaining=int(remaining), reset_in=reset_in
                )

    def _learn_weight(self, used: float) -> None:
        self.used_weight = used
        if self._weight_limit is None:
            return
        remaining_weight = max(0.0, self._weight_limit - used)
        reset_in = 60.0 - (time.time() % 60.0)
        # weight -> account tokens: the whole minute's weight is worth rate*60 tokens
        tokens = remaining_weight * self.account.config.rate * 60.0 / self._weight_limit
        self.account.update_from_headers(
            limit=int(self._weight_limit), remaining=int(tokens), reset_in=reset_in
        )

    # ------------------------------------------------------------ rejections
    def drain(self, retry_after: float | None) -> float:
        """A rate-limit rejection: nobody on this account is granted anything
        for ``retry_after`` seconds (1 s when the exchange did not say)."""
        wait = 1.0 if retry_after is None or not math.isfinite(retry_after) else retry_after
        wait = min(max(wait, 0.0), self._max_ban)
        self.drains += 1
        self.account.pause_for(wait)
        self._decrease()
        return wait

    # The budget is below what ccxt's rateLimit says (a shared IP, a lower tier):
    # halve the account rate at each rejection, win it back slowly (AIMD).
    _INCREASE_EVERY = 100  # answers
    _INCREASE_STEP = 0.01  # of the base rate

    def _decrease(self) -> None:
        rate = max(self._base_rate * 0.02, self.account.config.rate * 0.5 * self._safety)
        capacity = max(0.1, min(self._base_capacity, rate * 0.1))
        self._resize(rate, capacity)
        self._answered = 0
        self.decreases += 1

    def _increase(self) -> None:
        config = self.account.config
        rate = min(self._base_rate, config.rate + self._base_rate * self._INCREASE_STEP)
        capacity = max(0.1, min(self._base_capacity, rate * 0.1))
        if rate >= self._base_rate:
            capacity = self._base_capacity
        self._resize(rate, capacity)

    def _resize(self, rate: float, capacity: float) -> None:
        self.account.resize(rate=rate, capacity=capacity)
        self._capacity = self.account.config.capacity

    def _account_changed(self, field: str) -> None:
        if field == "capacity":
            self._capacity = self.account.config.capacity

    def ban(self, retry_after: float | None) -> None:
        """HTTP 418: the host is banned for ``retry_after`` seconds. Every request
        until then fails at once with :class:`ExchangeBannedError` (see
        :meth:`acquire`): nothing waits an hour in the bucket."""
        wait = self._max_ban if retry_after is None else min(max(retry_after, 0.0), self._max_ban)
        until = self._clock.now() + wait
        if self.banned_until is None or until > self.banned_until:
            if self.ban_remaining() == 0.0:
                self.bans += 1  # a new ban (the answer and its classification both report it)
            self.banned_until = until

    def ban_remaining(self) -> float:
        """Seconds left of a ban (0 when none)."""
        if self.banned_until is None:
            return 0.0
        left = self.banned_until - self._clock.now()
        if left <= 0:
            self.banned_until = None
            return 0.0
        return left

    def headroom(self) -> float:
        """Fraction (0..1) of the account bucket available now."""
        return max(0.0, min(1.0, self.account.tokens / self.account.config.capacity))

    def snapshot(self) -> dict[str, Any]:
        return {
            "account": self.account.snapshot(),
            "endpoints": {path: lim.snapshot() for path, lim in sorted(self.endpoints.items())},
            "drains": self.drains,
            "decreases": self.decreases,
            "base_rate": self._base_rate,
            "bans": self.bans,
            "ban_remaining": self.ban_remaining(),
            "used_weight_1m": self.used_weight,
            "order_counts": dict(self.order_counts),
        }

    def __repr__(self) -> str:
        acc = self.account
        return (
            f"<AccountLimiter {self.name!r} rate={acc.config.rate:g}/s "
            f"tokens={acc.tokens:.2f}/{acc.config.capacity:g} endpoints={len(self.endpoints)} "
            f"drains={self.drains} bans={self.bans}>"
        )
