"""Drivers: one small class per client library, all with the same async interface.

A driver speaks ``str`` keys (already validated and prefixed) and ``bytes``
values; it raises whatever its client raises (the classifier decides what it
means). :func:`make_backend` recognises the client.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any, Protocol

from ..errors import ConfigurationError, FieldError

__all__ = ["Backend", "make_backend"]

_MEMCACHED_RELATIVE_LIMIT = 30 * 24 * 3600
"""memcached reads an exptime above 30 days as a Unix timestamp."""


class Backend(Protocol):
    """What :class:`~virtuoso_resilience.cache.ResilientCache` needs from a client."""

    kind: str
    """``"aiomcache"``, ``"emcache"`` or ``"redis"``."""
    family: str
    """``"memcached"`` or ``"redis"``."""
    changes: tuple[str, ...]
    """What the adapter changed on the client it was given (documented)."""

    def describe(self) -> str:
        """Library and address, never credentials."""
        ...

    async def get(self, key: str) -> bytes | None: ...

    async def get_many(self, keys: Sequence[str]) -> dict[str, bytes]: ...

    async def set(self, key: str, data: bytes, ttl: float | None) -> None: ...

    async def delete(self, key: str) -> None: ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...


def memcached_exptime(ttl: float | None) -> int:
    """memcached's exptime for ``ttl`` seconds: whole seconds, rounded up, 0 for
    no expiry, an absolute Unix time beyond 30 days."""
    if ttl is None:
        return 0
    seconds = max(1, math.ceil(ttl))
    if seconds > _MEMCACHED_RELATIVE_LIMIT:
        return math.ceil(time.time() + ttl)
    return seconds


# ------------------------------------------------------------------ aiomcache


def _poison(conn: Any) -> None:
    """Make aiomcache's pool close ``conn`` on release instead of reusing it."""
    reader = conn.reader
    if reader.exception() is None:
        reader.set_exception(ConnectionAbortedError("request abandoned; connection dropped"))


def _harden_aiomcache(client: Any) -> tuple[str, ...]:
    """Fix two hazards of aiomcache 0.8 on the given client (instance attributes only).

    1. ``set``/``delete`` read the answer with ``readline()`` in a loop that
       never ends once the server has closed the connection (``readline``
       returns ``b""`` at EOF without suspending): the event loop spins and
       no timeout can fire. The replacement reads with ``readuntil`` and
       raises :class:`asyncio.IncompleteReadError` at EOF.
    2. A command cancelled (by our timeout) after it was sent puts the
       connection back into the pool with its answer still unread, so the
       next command on it reads the previous command's answer (a wrong value
       for a key). The replacement marks the connection broken on any
       exception or cancellation, so the pool closes it.
    """
    if getattr(client, "_virtuoso_hardened", False):
        return tuple(client._virtuoso_hardened)
    original_multi_get = client._multi_get

    async def execute_simple_command(conn: Any, raw_command: bytes) -> bytes:
        try:
            conn.writer.write(raw_command)
            await conn.writer.drain()
            line: bytes = await conn.reader.readuntil(b"\r\n")
        except BaseException:
            _poison(conn)
            raise
        return line[:-2]

    async def multi_get(conn: Any, *keys: bytes, **kwargs: Any) -> Any:
        try:
            return await original_multi_get(conn, *keys, **kwargs)
        except BaseException:
            _poison(conn)
            raise

    client._execute_simple_command = execute_simple_command
    client._multi_get = multi_get
    changes = (
        "aiomcache: _execute_simple_command replaced on this client (raises at EOF instead "
        "of spinning; drops the connection of a cancelled or failed command)",
        "aiomcache: _multi_get wrapped on this client (drops the connection of a cancelled "
        "or failed read)",
    )
    client._virtuoso_hardened = changes
    return changes


class AiomcacheBackend:
    kind = "aiomcache"
    family = "memcached"

    def __init__(self, client: Any) -> None:
        self._client = client
        self.changes = _harden_aiomcache(client)
        pool = getattr(client, "_pool", None)
        self._address = f"{getattr(pool, '_host', '?')}:{getattr(pool, '_port', '?')}"

    def describe(self) -> str:
        return f"aiomcache {self._address}"

    async def get(self, key: str) -> bytes | None:
        value: bytes | None = await self._client.get(key.encode())
        return value

    async def get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        if not keys:
            return {}
        values = await self._client.multi_get(*(k.encode() for k in keys))
        return {k: v for k, v in zip(keys, values, strict=True) if v is not None}

    async def set(self, key: str, data: bytes, ttl: float | None) -> None:
        stored = await self._client.set(key.encode(), data, memcached_exptime(ttl))
        if not stored:
            raise _not_stored("memcached", key)

    async def delete(self, key: str) -> None:
        await self._client.delete(key.encode())

    async def ping(self) -> None:
        await self._client.version()

    async def close(self) -> None:
        await self._client.close()


def _not_stored(family: str, key: str) -> Exception:
    # A set that the server refused without an error: treat it as a failed
    # write (PERMANENT for the classifier), so it stays dirty.
    return RuntimeError(f"{family} did not store the value (NOT_STORED)")


# -------------------------------------------------------------------- emcache


class EmcacheBackend:
    kind = "emcache"
    family = "memcached"
    changes: tuple[str, ...] = ()

    def __init__(self, client: Any) -> None:
        self._client = client
        import emcache

        self._not_found = emcache.NotFoundCommandError
        nodes: list[str] = []
        try:
            for address in client.cluster_managment().nodes():
                port = getattr(address, "port", None)
                host = getattr(address, "address", None) or getattr(address, "path", "?")
                nodes.append(f"{host}:{port}" if port is not None else str(host))
        except Exception:
            pass
        self._address = ",".join(nodes) or "?"

    def describe(self) -> str:
        return f"emcache {self._address}"

    async def get(self, key: str) -> bytes | None:
        item = await self._client.get(key.encode())
        return None if item is None else bytes(item.value)

    async def get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        if not keys:
            return {}
        by_bytes = {k.encode(): k for k in keys}
        items = await self._client.get_many(list(by_bytes))
        return {by_bytes[k]: bytes(item.value) for k, item in items.items()}

    async def set(self, key: str, data: bytes, ttl: float | None) -> None:
        await self._client.set(key.encode(), data, exptime=memcached_exptime(ttl))

    async def delete(self, key: str) -> None:
        try:
            await self._client.delete(key.encode())
        except self._not_found:
            pass

    async def ping(self) -> None:
        await self._client.version(self._client.cluster_managment().nodes()[0])

    async def close(self) -> None:
        await self._client.close()


# ---------------------------------------------------------------------- redis


class RedisBackend:
    kind = "redis"
    family = "redis"

    def __init__(
        self, client: Any, timeout: float, connect_timeout: float, *, close_pool: bool = False
    ) -> None:
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        pool = client.connection_pool
        kwargs = pool.connection_kwargs
        if kwargs.get("decode_responses"):
            raise ConfigurationError(
                [
                    FieldError(
                        "create_resilient_cache",
                        "client.decode_responses",
                        True,
                        "must be False: the cache stores bytes (build the client with "
                        "decode_responses=False)",
                    )
                ]
            )
        # redis-py 8: 10 retries with exponential backoff (10 ms to 1 s) and
        # 5 s socket timeouts per attempt: about a minute for one call to a
        # paused server. The adapter's own timeout and retry policy take
        # over; the client must fail fast.
        client.set_retry(Retry(NoBackoff(), 0))
        kwargs["socket_timeout"] = timeout
        kwargs["socket_connect_timeout"] = connect_timeout
        self.changes: tuple[str, ...] = (
            "redis: retry set to Retry(NoBackoff(), 0) on the client and its pool "
            "(the cache's retry policy retries)",
            f"redis: pool connection_kwargs socket_timeout={timeout:g}, "
            f"socket_connect_timeout={connect_timeout:g} (new connections)",
        )
        self._client = client
        self._close_pool = close_pool
        host = kwargs.get("host") or kwargs.get("path") or "?"
        port = kwargs.get("port")
        self._address = f"{host}:{port}" if port is not None else str(host)

    def describe(self) -> str:
        return f"redis {self._address}"

    async def get(self, key: str) -> bytes | None:
        value: bytes | None = await self._client.get(key)
        return value

    async def get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        if not keys:
            return {}
        values = await self._client.mget(list(keys))
        return {k: v for k, v in zip(keys, values, strict=True) if v is not None}

    async def set(self, key: str, data: bytes, ttl: float | None) -> None:
        if ttl is None:
            await self._client.set(key, data)
        else:
            await self._client.set(key, data, px=max(1, math.ceil(ttl * 1000)))

    async def delete(self, key: str) -> None:
        await self._client.delete(key)

    async def ping(self) -> None:
        await self._client.ping()

    async def close(self) -> None:
        # A pool given to the cache is closed with it (a client closes its own).
        if self._close_pool:
            await self._client.aclose(close_connection_pool=True)
        else:
            await self._client.aclose()


# ------------------------------------------------------------------ recognise


def make_backend(client: Any, timeout: float, connect_timeout: float) -> Backend:
    """The driver for ``client``: an ``aiomcache.Client``, an ``emcache`` client,
    a ``redis.asyncio.Redis``, a ``redis.asyncio.ConnectionPool``, a
    ``redis://`` / ``rediss://`` / ``unix://`` URL, or a driver already."""
    if isinstance(client, str):
        if client.startswith(("redis://", "rediss://", "unix://")):
            from redis.asyncio import Redis

            client = Redis.from_url(
                client, socket_timeout=timeout, socket_connect_timeout=connect_timeout
            )
        else:
            raise TypeError(
                "create_resilient_cache: a URL must start with redis://, rediss:// or unix:// "
                "(memcached clients are passed as objects)"
            )
    try:
        from redis.asyncio import ConnectionPool, Redis
    except ImportError:  # pragma: no cover - redis is an optional extra
        pass
    else:
        if isinstance(client, ConnectionPool):
            return RedisBackend(
                Redis(connection_pool=client), timeout, connect_timeout, close_pool=True
            )
        if isinstance(client, Redis):
            return RedisBackend(client, timeout, connect_timeout)
    module = type(client).__module__
    if module.startswith("aiomcache"):
        return AiomcacheBackend(client)
    if module.startswith("emcache"):
        return EmcacheBackend(client)
    needed = ("get", "get_many", "set", "delete", "ping", "close", "kind", "family", "changes")
    if all(hasattr(client, name) for name in needed):
        driver: Backend = client  # already a driver (tests, custom backends)
        return driver
    raise TypeError(
        f"create_resilient_cache: unsupported client {type(client).__module__}."
        f"{type(client).__qualname__} (supported: aiomcache.Client, an emcache client, "
        "redis.asyncio.Redis, redis.asyncio.ConnectionPool, a redis:// URL)"
    )
