"""``RedisLink``: one Redis client behind its own local circuit breaker.

Every Redis call of the shared state goes through :meth:`RedisLink.run`.
redis-py's own retries are off and its socket timeouts short, and each call
is bounded by ``timeout`` (seconds) on top: no call blocks longer. The first
failure opens the link's breaker; while it is open :meth:`run` makes no round
trip at all and returns :data:`DOWN`, so callers fall back to local state.
After ``rejoin_interval`` seconds one call is let through as a trial; when it
succeeds the link is up again and the ``on_rejoin`` callbacks run (budgets
re-subscribe, breakers re-read the shared state).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final, TypeVar

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError, RedisError

from ..clock import MONOTONIC, Clock
from ..errors import CircuitOpenError
from ..policies import CircuitBreaker, CircuitState, StateChangeEvent
from ._url import redact_url

__all__ = ["DOWN", "Down", "RedisLink", "Script", "millis_after"]


def millis_after(prefix: str, data: str) -> int | None:
    """The milliseconds in a ``"<prefix><ms>"`` message, if plain and within a day."""
    if not data.startswith(prefix):
        return None
    digits = data[len(prefix) :]
    if not (digits.isascii() and digits.isdigit() and len(digits) <= 9):
        return None
    ms = int(digits)
    return ms if 0 < ms <= 86_400_000 else None


T = TypeVar("T")


class Down:
    """The marker :meth:`RedisLink.run` returns when Redis could not answer."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "DOWN"

    def __bool__(self) -> bool:
        return False


DOWN: Final = Down()


class Script:
    """A Lua script run with ``EVALSHA``, loaded again on ``NOSCRIPT``
    (a restarted or flushed server forgot it)."""

    __slots__ = ("sha", "source")

    def __init__(self, source: str) -> None:
        import hashlib

        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    async def __call__(
        self, client: aioredis.Redis, keys: list[str], args: Sequence[str | int | float]
    ) -> Any:
        try:
            return await client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            await client.script_load(self.source)
            return await client.evalsha(self.sha, len(keys), *keys, *args)


class RedisLink:
    """A Redis connection for shared state, with a local breaker in front.

    ``timeout``: seconds any one call may take (connect included).
    ``rejoin_interval``: seconds between two trials while Redis is down.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 0.25,
        rejoin_interval: float = 1.0,
        clock: Clock = MONOTONIC,
        name: str = "shared-state",
    ) -> None:
        self.name = name
        self.timeout = timeout
        self._where = redact_url(url)
        self.client: aioredis.Redis = aioredis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry_on_timeout=False,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=0,
            decode_responses=True,
        )
        self.url = url
        self.breaker = CircuitBreaker(
            f"redis:{name}",
            failure_threshold=1,
            success_threshold=1,
            timeout=rejoin_interval,
            clock=clock,
        )
        self.breaker.add_listener(on_state_change=self._state_changed)
        self._rejoin: list[Callable[[], None]] = []
        self._down: list[Callable[[], None]] = []
        self.calls = 0
        self.failures = 0
        self.skipped = 0
        self.outages = 0
        self.last_error: str | None = None

    @property
    def up(self) -> bool:
        """Redis answered the last call (the link's breaker is closed)."""
        return self.breaker.state is CircuitState.CLOSED

    def on_rejoin(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` (sync, must not raise) each time Redis is back."""
        self._rejoin.append(callback)

    def on_down(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` (sync, must not raise) each time Redis is lost."""
        self._down.append(callback)

    def _state_changed(self, event: StateChangeEvent) -> None:
        new = event.current
        if new is CircuitState.OPEN and event.previous is CircuitState.CLOSED:
            self.outages += 1
            for callback in self._down:
                callback()
        elif new is CircuitState.CLOSED:
            for callback in self._rejoin:
                callback()

    async def run(self, operation: Callable[[aioredis.Redis], Awaitable[T]]) -> T | Down:
        """``await operation(client)``, or :data:`DOWN` (no round trip while the
        link's breaker is open; at most ``timeout`` seconds otherwise)."""
        try:
            return await self.breaker.call_async(self._bounded, operation)
        except CircuitOpenError:
            self.skipped += 1
            return DOWN
        except (RedisError, OSError, TimeoutError) as exc:
            self.failures += 1
            self.last_error = f"{type(exc).__name__}: {str(exc)[:200]}".replace(
                self.url, self._where
            )
            return DOWN

    async def _bounded(self, operation: Callable[[aioredis.Redis], Awaitable[T]]) -> T:
        self.calls += 1
        async with asyncio.timeout(self.timeout * 2):  # connect + one read at most
            return await operation(self.client)

    async def listen(
        self,
        channel: str,
        on_message: Callable[[str], None],
        closed: Callable[[], bool],
        clock: Clock,
    ) -> None:
        """Give every string published on ``channel`` to ``on_message`` until
        ``closed()``; while Redis is down, wait for the rejoin instead of
        reconnecting in a loop. Used by the shared budget and shared breakers."""
        while not closed():
            if not self.up and self.breaker.retry_after:
                await clock.sleep(self.breaker.retry_after or 0.1)
                continue
            pubsub = self.client.pubsub(ignore_subscribe_messages=True)
            try:
                await asyncio.wait_for(pubsub.subscribe(channel), self.timeout * 2)
                while not closed():
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None and isinstance(message.get("data"), str):
                        on_message(message["data"])
            except (RedisError, OSError, TimeoutError):
                await clock.sleep(self.breaker.config.timeout)
            finally:
                with contextlib.suppress(RedisError, OSError, TimeoutError):
                    await asyncio.wait_for(pubsub.aclose(), self.timeout)  # type: ignore[no-untyped-call]

    async def close(self) -> None:
        try:
            await self.client.aclose()
        except (RedisError, OSError):  # pragma: no cover - closing a dead link
            pass

    def snapshot(self) -> dict[str, Any]:
        return {
            "url": self._where,
            "up": self.up,
            "state": self.breaker.state.value,
            "calls": self.calls,
            "failures": self.failures,
            "skipped": self.skipped,
            "outages": self.outages,
            "last_error": self.last_error,
        }

    def __repr__(self) -> str:
        return (
            f"<RedisLink {self.name!r} {self._where} up={self.up} calls={self.calls} "
            f"failures={self.failures} skipped={self.skipped}>"
        )
