"""``SharedBudget``: one weighted budget per exchange account, shared through Redis.

Each decision is one Lua script (``EVALSHA``) on the server's clock
(``TIME``): every window's bucket is refilled, the pause key is checked, and
either a lease is granted from all windows at once or the wait until one
could be is returned. A process spends its lease locally (no round trip per
call) and drops what is left after ``lease_ttl`` seconds, so a token granted
is spent soon after the bucket granted it.

A rate-limit answer (429) or a ban (418) seen by one process sets the pause
key (the longest pause wins) and is published on the budget's channel: every
process drops its lease and stops granting at once; processes that miss the
message meet the pause key at their next refill. A correction from the
exchange's headers lowers one window's bucket to what the exchange says is
left.

While Redis is down (:class:`~virtuoso_resilience.shared.RedisLink`), the
process uses a local bucket holding its share of each window
(``local_share``, default ``1 / expected_processes``) or, with
``on_outage="wait"``, waits until Redis is back. A Redis outage never raises
into a caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from typing import Any

import redis.asyncio as aioredis

from ..clock import MONOTONIC, Clock
from ..errors import RateLimitTimeoutError
from ..policies import RateLimiter
from ._config import BudgetWindow, SharedBudgetConfig
from ._link import Down, RedisLink, Script, millis_after

__all__ = ["SharedBudget"]

_LOCAL_STEP = 0.1
"""Longest wait (seconds) in the local share's queue before looking at Redis again."""

# KEYS: bucket hash, pause key. ARGV: want, need, n, then rate_i, capacity_i.
# Returns {granted (string), wait_ms (int)}.
_ACQUIRE = Script(
    """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local pttl = redis.call('PTTL', KEYS[2])
if pttl > 0 then return {'0', pttl} end
local want = tonumber(ARGV[1])
local need = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local last = tonumber(redis.call('HGET', KEYS[1], 't') or now)
local elapsed = math.max(0, now - last)
local tokens = {}
local avail = math.huge
for i = 1, n do
  local rate = tonumber(ARGV[2 + 2 * i])
  local cap = tonumber(ARGV[3 + 2 * i])
  local stored = tonumber(redis.call('HGET', KEYS[1], 'b' .. i) or cap)
  local b = math.min(cap, stored + rate * elapsed)
  tokens[i] = b
  if b < avail then avail = b end
end
local granted = 0
local wait = 0
if avail >= need then
  granted = math.min(want, avail)
  for i = 1, n do tokens[i] = tokens[i] - granted end
else
  for i = 1, n do
    local rate = tonumber(ARGV[2 + 2 * i])
    local w = (need - tokens[i]) / rate
    if w > wait then wait = w end
  end
end
redis.call('HSET', KEYS[1], 't', string.format('%.6f', now))
local longest = 1
for i = 1, n do
  redis.call('HSET', KEYS[1], 'b' .. i, string.format('%.17g', tokens[i]))
  local span = tonumber(ARGV[3 + 2 * i]) / tonumber(ARGV[2 + 2 * i])
  if span > longest then longest = span end
end
redis.call('EXPIRE', KEYS[1], math.ceil(longest) + 60)
return {tostring(granted), math.ceil(wait * 1000)}
"""
)

# KEYS: pause key. ARGV: ms, channel. The longest pause wins; published.
_PAUSE = Script(
    """
local ms = tonumber(ARGV[1])
if redis.call('PTTL', KEYS[1]) < ms then
  redis.call('SET', KEYS[1], '1', 'PX', ms)
end
redis.call('PUBLISH', ARGV[2], 'pause:' .. ARGV[1])
return ms
"""
)

# KEYS: bucket hash. ARGV: window index, remaining. Lowers that window's bucket.
_CORRECT = Script(
    """
local field = 'b' .. ARGV[1]
local stored = tonumber(redis.call('HGET', KEYS[1], field) or ARGV[2])
local remaining = tonumber(ARGV[2])
if remaining < stored then redis.call('HSET', KEYS[1], field, tostring(remaining)) end
return 1
"""
)


class SharedBudget:
    """An account's weighted budget shared by every process through ``link``.

    ``await budget.acquire(cost)`` before each request (ccxt's cost units).
    ``pause(seconds)`` after a 429/418; ``correct(index, remaining)`` from the
    exchange's headers.
    """

    def __init__(
        self,
        link: RedisLink,
        account: str,
        windows: list[BudgetWindow],
        config: SharedBudgetConfig | None = None,
        *,
        clock: Clock = MONOTONIC,
        prefix: str = "virtuoso:budget",
    ) -> None:
        if not windows:
            raise ValueError("SharedBudget needs at least one BudgetWindow")
        self.account = account
        self.config = config or SharedBudgetConfig()
        self.windows = list(windows)
        self._link = link
        self._clock = clock
        self._key = f"{prefix}:{{{account}}}:bucket"
        self._pause_key = f"{prefix}:{{{account}}}:pause"
        self.channel = f"{prefix}:{{{account}}}:events"
        self._args: list[str | int | float] = [len(windows)]
        for window in windows:
            self._args += [repr(window.rate), repr(window.capacity)]
        self._capacity = min(w.capacity for w in windows)
        self._min_rate = min(w.rate for w in windows)
        self._lease = 0.0
        self._lease_until = -math.inf
        self._lease_size = self._lease_ceiling()
        self._paused_until = -math.inf
        self._refill: asyncio.Future[None] | None = None
        self._wake = asyncio.Event()
        self._local: RateLimiter | None = None
        self._listener: asyncio.Task[None] | None = None
        self._closed = False
        self._tasks: set[asyncio.Task[Any]] = set()
        # counters
        self.grants = 0
        self.round_trips = 0
        self.local_grants = 0
        self.waits = 0
        self.pauses_received = 0
        self.corrections = 0
        self._last_correction = -math.inf

    # ------------------------------------------------------------ leasing
    def _lease_ceiling(self) -> float:
        cfg = self.config
        return max(1.0, cfg.max_lease_fraction * self._capacity / cfg.expected_processes)

    @property
    def degraded(self) -> bool:
        """Redis is down: this process runs on its local share."""
        return not self._link.up

    async def acquire(self, cost: float = 1.0) -> None:
        """Wait until ``cost`` units may be spent (never raises for a Redis outage)."""
        if not 0 < cost < math.inf:
            cost = 1.0
        now = self._clock.now()
        if self._lease >= cost and now < self._lease_until and now >= self._paused_until:
            self._lease -= cost
            return
        capacity = self._capacity
        while cost > capacity:  # a costly request: several bucket-fulls, in line
            await self._slow(capacity)
            cost -= capacity
        await self._slow(cost)

    async def _slow(self, cost: float) -> None:
        while True:
            now = self._clock.now()
            if now < self._paused_until:
                await self._sleep(self._paused_until - now)
                continue
            if self._lease >= cost and now < self._lease_until:
                self._lease -= cost
                return
            if not self._link.up and self._link.breaker.retry_after:
                if await self._outage(cost):
                    return
                continue
            refill = self._refill
            if refill is not None:
                await asyncio.shield(refill)
                continue
            # This caller refills for everyone in the process; the others wait
            # for it (and for its sleep when the budget says wait).
            refill = self._refill = asyncio.get_running_loop().create_future()
            try:
                wait = await self._take(cost)
                if wait is not None and wait > 0:
                    self.waits += 1
                    await self._sleep(min(wait, self.config.max_wait))
            finally:
                self._refill = None
                refill.set_result(None)
            if wait is None:  # Redis is down
                if await self._outage(cost):
                    return
            elif wait == 0:  # granted: ``cost`` came out of the new lease
                return

    async def _take(self, cost: float) -> float | None:
        """One round trip: a lease (returns 0), a wait in seconds, or None (down)."""
        rest = self._lease if self._clock.now() < self._lease_until else 0.0
        need = max(cost - rest, 1e-9)  # the rest of a live lease counts towards the cost
        want = max(need, min(self._lease_size, self._lease_ceiling()))
        args = [repr(want), repr(need), *self._args]
        self.round_trips += 1
        key, pause = self._key, self._pause_key

        async def call(client: aioredis.Redis) -> Any:
            return await _ACQUIRE(client, [key, pause], args)

        result = await self._link.run(call)
        if isinstance(result, Down):
            return None
        granted = float(result[0])
        wait_ms = int(result[1])
        now = self._clock.now()
        if granted > 0:
            self.grants += 1
            self._lease = rest + granted
            self._lease_until = now + self.config.lease_ttl
            if granted >= want:  # plenty: grow the next lease
                self._lease_size = min(self._lease_ceiling(), want * 2.0)
            else:  # the bucket is running low: smaller leases
                self._lease_size = max(need, want / 2.0)
            self._lease -= cost
            return 0.0
        self._lease_size = max(1.0, self._lease_size / 2.0)  # contended: smaller leases
        return wait_ms / 1000.0

    async def _outage(self, cost: float) -> bool:
        """Redis is down: take ``cost`` from the local share (True) or wait (False)."""
        if self.config.on_outage == "wait":
            self.waits += 1
            await self._sleep(max(0.01, self._link.breaker.retry_after or 0.05))
            return False
        local = self._local
        if local is None:
            local = self._local = self._make_local()
        remaining = cost
        capacity = local.config.capacity
        # Never queue long on the local share: a caller still queued there when
        # Redis is back would spend local tokens beside the shared ones.
        try:
            while remaining > capacity:
                await local.acquire(capacity, max_wait=_LOCAL_STEP)
                remaining -= capacity
            await local.acquire(remaining, max_wait=_LOCAL_STEP)
        except RateLimitTimeoutError:
            await self._sleep(_LOCAL_STEP)
            return False  # look again: Redis may be back
        self.local_grants += 1
        return True

    def _make_local(self) -> RateLimiter:
        cfg = self.config
        share = cfg.local_share if cfg.local_share is not None else 1.0 / cfg.expected_processes
        rate = max(self._min_rate * share, 1e-6)
        capacity = max(1.0, self._capacity * share)
        return RateLimiter(
            f"{self.account}:local-share", rate=rate, capacity=capacity, clock=self._clock
        )

    async def _sleep(self, seconds: float) -> None:
        """Sleep up to ``seconds``, or until a pause message wakes us."""
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._wake.wait()

    # --------------------------------------------------------- corrections
    def pause(self, seconds: float) -> None:
        """A 429/418: nobody on the account is granted anything for ``seconds``.
        Applies here at once and, within one round trip, in every process."""
        if not math.isfinite(seconds) or seconds <= 0:
            return
        self._apply_pause(seconds)
        ms = max(1, math.ceil(seconds * 1000))
        pause_key, channel = self._pause_key, self.channel

        async def call(client: aioredis.Redis) -> Any:
            return await _PAUSE(client, [pause_key], [ms, channel])

        self._spawn(self._link.run(call))

    def _apply_pause(self, seconds: float) -> None:
        until = self._clock.now() + seconds
        if until > self._paused_until:
            self._paused_until = until
        self._lease = 0.0
        self._wake.set()

    def correct(self, index: int, remaining: float) -> None:
        """The exchange says ``remaining`` units are left of window ``index``:
        lower the shared bucket to it (at most once per 100 ms per process)."""
        if not 0 <= index < len(self.windows) or not math.isfinite(remaining) or remaining < 0:
            return
        now = self._clock.now()
        if now - self._last_correction < 0.1:
            return
        self._last_correction = now
        self.corrections += 1
        key = self._key
        remaining = min(remaining, self.windows[index].capacity)

        async def call(client: aioredis.Redis) -> Any:
            return await _CORRECT(client, [key], [index + 1, repr(remaining)])

        self._spawn(self._link.run(call))

    def _spawn(self, coro: Any) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            coro.close()
            return
        task = loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --------------------------------------------------------------- pub/sub
    def start(self) -> None:
        """Listen for pauses published by the other processes (call in a running loop)."""
        if self._listener is None:
            self._listener = asyncio.get_running_loop().create_task(self._listen())

    async def _listen(self) -> None:
        await self._link.listen(self.channel, self._message, lambda: self._closed, self._clock)

    def _message(self, data: str) -> None:
        ms = millis_after("pause:", data)
        if ms is not None:
            self.pauses_received += 1
            self._apply_pause(ms / 1000.0)

    async def close(self) -> None:
        self._closed = True
        tasks = [t for t in (self._listener, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def snapshot(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "degraded": self.degraded,
            "paused_for": max(0.0, self._paused_until - self._clock.now()),
            "lease": self._lease,
            "lease_size": self._lease_size,
            "grants": self.grants,
            "round_trips": self.round_trips,
            "local_grants": self.local_grants,
            "waits": self.waits,
            "pauses_received": self.pauses_received,
            "corrections": self.corrections,
            "windows": [{"limit": w.limit, "seconds": w.seconds} for w in self.windows],
        }

    def __repr__(self) -> str:
        return (
            f"<SharedBudget {self.account!r} degraded={self.degraded} lease={self._lease:g} "
            f"round_trips={self.round_trips} local_grants={self.local_grants}>"
        )
