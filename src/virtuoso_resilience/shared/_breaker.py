"""``SharedBreaker``: one circuit breaker state for every process, transitions only.

Failure counting stays in each process's own
:class:`~virtuoso_resilience.CircuitBreaker` (no round trip per call). Only
transitions cross processes, each one Lua script on the server's clock:

* the local breaker trips -> ``trip`` marks the shared state OPEN until
  ``now + timeout`` and publishes it; every process rejects from then on
  (pub/sub within a round trip; the state key is also polled every
  ``poll_interval`` seconds in case a message is lost);
* after the timeout, ``claim`` lets exactly one process run the half-open
  trial (a token with a deadline: a trial whose process died expires);
  the others keep rejecting until it reports;
* ``report`` closes the shared state (every process resets its local
  breaker) or opens it again.

While Redis is down the local breaker alone decides (as without sharing).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import redis.asyncio as aioredis

from ..classify import DEFAULT_CLASSIFIER, Classifier
from ..clock import MONOTONIC, Clock
from ..errors import CircuitOpenError
from ..policies import CircuitBreaker, CircuitState, StateChangeEvent
from ._link import Down, RedisLink, Script, millis_after

__all__ = ["SharedBreaker"]

T = TypeVar("T")

_NOW = "local t = redis.call('TIME'); local now = t[1] * 1000 + math.floor(t[2] / 1000)\n"

# KEYS: state hash. ARGV: timeout_ms, channel. -> {state, remaining_ms}
_TRIP = Script(
    _NOW
    + """
local state = redis.call('HGET', KEYS[1], 's')
local untilms = tonumber(redis.call('HGET', KEYS[1], 'u') or '0')
if state ~= 'open' or now >= untilms then
  untilms = now + tonumber(ARGV[1])
  redis.call('HSET', KEYS[1], 's', 'open', 'u', untilms, 'trial', '', 'td', 0)
  redis.call('HINCRBY', KEYS[1], 'trips', 1)
  redis.call('PUBLISH', ARGV[2], 'open:' .. (untilms - now))
end
return {'open', untilms - now}
"""
)

# KEYS: state hash. ARGV: token, trial_ms. -> {won (0/1), state, remaining_ms}
_CLAIM = Script(
    _NOW
    + """
local state = redis.call('HGET', KEYS[1], 's') or 'closed'
local untilms = tonumber(redis.call('HGET', KEYS[1], 'u') or '0')
local td = tonumber(redis.call('HGET', KEYS[1], 'td') or '0')
if state == 'closed' then return {0, 'closed', 0} end
if (state == 'open' and now >= untilms) or (state == 'half_open' and now >= td) then
  redis.call('HSET', KEYS[1], 's', 'half_open', 'trial', ARGV[1], 'td', now + tonumber(ARGV[2]))
  return {1, 'half_open', 0}
end
if state == 'open' then return {0, 'open', untilms - now} end
return {0, 'half_open', td - now}
"""
)

# KEYS: state hash. ARGV: token, ok (1/0), timeout_ms, channel. -> state
_REPORT = Script(
    _NOW
    + """
if redis.call('HGET', KEYS[1], 'trial') ~= ARGV[1] then
  return redis.call('HGET', KEYS[1], 's') or 'closed'
end
if ARGV[2] == '1' then
  redis.call('HSET', KEYS[1], 's', 'closed', 'trial', '', 'td', 0)
  redis.call('PUBLISH', ARGV[4], 'closed')
  return 'closed'
end
local untilms = now + tonumber(ARGV[3])
redis.call('HSET', KEYS[1], 's', 'open', 'u', untilms, 'trial', '', 'td', 0)
redis.call('PUBLISH', ARGV[4], 'open:' .. ARGV[3])
return 'open'
"""
)

# KEYS: state hash. -> {state, remaining_ms}
_READ = Script(
    _NOW
    + """
local state = redis.call('HGET', KEYS[1], 's') or 'closed'
local untilms = tonumber(redis.call('HGET', KEYS[1], 'u') or '0')
return {state, math.max(0, untilms - now)}
"""
)


class SharedBreaker:
    """``breaker``'s state shared by every process through ``link``.

    ``await shared.call_async(fn, *args)`` in place of
    ``breaker.call_async``. ``trial_timeout``: seconds a half-open trial may
    take before another process may claim it. ``poll_interval``: seconds
    between reads of the state key (the fallback to pub/sub).
    """

    def __init__(
        self,
        link: RedisLink,
        breaker: CircuitBreaker,
        *,
        trial_timeout: float = 30.0,
        poll_interval: float = 0.5,
        clock: Clock = MONOTONIC,
        classifier: Classifier = DEFAULT_CLASSIFIER,
        prefix: str = "virtuoso:breaker",
    ) -> None:
        self.breaker = breaker
        self.name = breaker.name
        self._link = link
        self._clock = clock
        self._classifier = classifier
        self._trial_ms = max(1, int(trial_timeout * 1000))
        self._poll = poll_interval
        self._key = f"{prefix}:{{{breaker.name}}}"
        self.channel = f"{prefix}:{{{breaker.name}}}:events"
        self._token = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self.state = "closed"
        """The shared state as this process last saw it."""
        self._until = 0.0  # local clock: when the shared OPEN ends
        self._tasks: set[asyncio.Task[Any]] = set()
        self._listener: asyncio.Task[None] | None = None
        self._closed = False
        self.trials_won = 0
        self.trials_lost = 0
        self.rejected = 0
        self.opens_received = 0
        breaker.add_listener(on_state_change=self._local_change)

    # ------------------------------------------------------------ transitions
    def _timeout_ms(self) -> int:
        return max(1, int(self.breaker.config.timeout * 1000))

    def _local_change(self, event: StateChangeEvent) -> None:
        if event.current is CircuitState.OPEN and self.state == "closed" and self._link.up:
            self._seen_open(self._timeout_ms())  # reject here at once
            key = self._key
            args: list[str | int] = [self._timeout_ms(), self.channel]

            async def trip(client: aioredis.Redis) -> Any:
                return await _TRIP(client, [key], args)

            self._spawn(self._run(trip))

    def _seen_open(self, remaining_ms: float) -> None:
        self.state = "open"
        self._until = self._clock.now() + remaining_ms / 1000.0

    def _seen_closed(self) -> None:
        if self.state != "closed":
            self.state = "closed"
            if self.breaker.state is not CircuitState.CLOSED:
                self.breaker.reset()

    async def _run(self, op: Callable[[aioredis.Redis], Awaitable[Any]]) -> Any:
        result = await self._link.run(op)
        if isinstance(result, Down):
            return None
        return result

    # ------------------------------------------------------------------- calls
    async def call_async(self, fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        """Run ``fn`` under the shared state (the local breaker alone while Redis is down)."""
        link = self._link
        if self.state == "closed" or not link.up:
            return await self.breaker.call_async(fn, *args, **kwargs)
        now = self._clock.now()
        if self.state == "open" and now < self._until:
            self.rejected += 1
            raise CircuitOpenError(self.name, "open", self._until - now)
        key = self._key
        claim_args: list[str | int] = [self._token, self._trial_ms]

        async def claim(client: aioredis.Redis) -> Any:
            return await _CLAIM(client, [key], claim_args)

        result = await link.run(claim)
        if isinstance(result, Down):
            return await self.breaker.call_async(fn, *args, **kwargs)
        won, state, remaining = int(result[0]), str(result[1]), int(result[2])
        if state == "closed":
            self._seen_closed()
            return await self.breaker.call_async(fn, *args, **kwargs)
        if not won:
            self.trials_lost += 1
            self.rejected += 1
            if state == "open":
                self._seen_open(remaining)
            else:
                self.state = "half_open"
                self._until = now + remaining / 1000.0
            raise CircuitOpenError(self.name, state, None if state != "open" else remaining / 1e3)
        self.trials_won += 1
        self.state = "half_open"
        try:
            value = await fn(*args, **kwargs)
        except Exception as exc:
            failed = self._classifier.classify(exc).is_service_failure
            await self._report(not failed)
            raise
        # A cancelled trial reports nothing: its claim expires after trial_timeout.
        await self._report(True)
        return value

    async def _report(self, ok: bool) -> None:
        key = self._key
        args = [self._token, 1 if ok else 0, self._timeout_ms(), self.channel]

        async def report(client: aioredis.Redis) -> Any:
            return await _REPORT(client, [key], args)

        state = await self._run(report)
        if state == "closed" or (state is None and ok):
            self._seen_closed()
        elif state == "open" or state is None:
            self._seen_open(self._timeout_ms())

    # --------------------------------------------------------------- listening
    def start(self) -> None:
        """Listen for transitions (pub/sub) and poll the state key (call in a running loop)."""
        if self._listener is None:
            self._listener = asyncio.get_running_loop().create_task(self._listen())
            self._spawn(self._poll_loop())

    async def refresh(self) -> str:
        """Read the shared state now (one round trip); the state seen."""
        key = self._key

        async def read(client: aioredis.Redis) -> Any:
            return await _READ(client, [key], [])

        result = await self._run(read)
        if result is not None:
            self._apply(str(result[0]), int(result[1]))
        return self.state

    def _apply(self, state: str, remaining_ms: int) -> None:
        if state == "closed":
            self._seen_closed()
        elif state == "open":
            self._seen_open(remaining_ms)
        elif state == "half_open":
            self.state = "half_open"

    async def _poll_loop(self) -> None:
        while not self._closed:
            await self._clock.sleep(self._poll)
            if self._link.up:
                await self.refresh()

    async def _listen(self) -> None:
        await self._link.listen(self.channel, self._message, lambda: self._closed, self._clock)

    def _message(self, data: str) -> None:
        if data == "closed":
            self._seen_closed()
            return
        ms = millis_after("open:", data)
        if ms is not None:
            self.opens_received += 1
            self._seen_open(ms)

    def _spawn(self, coro: Any) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            coro.close()
            return
        task = loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

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
            "name": self.name,
            "shared_state": self.state,
            "local_state": self.breaker.state.value,
            "redis_up": self._link.up,
            "trials_won": self.trials_won,
            "trials_lost": self.trials_lost,
            "rejected": self.rejected,
            "opens_received": self.opens_received,
        }

    def __repr__(self) -> str:
        return (
            f"<SharedBreaker {self.name!r} shared={self.state} local={self.breaker.state.value} "
            f"trials_won={self.trials_won} rejected={self.rejected}>"
        )
