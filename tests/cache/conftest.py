"""Fixtures for the cache tests: real memcached and redis-server processes.

Each test gets its own server on a free 127.0.0.1 port (never the shared
Redis on 6379) that it can kill (SIGKILL), pause (SIGSTOP), resume (SIGCONT)
and restart on the same port. Every process is stopped at teardown.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiomcache
import pytest
import redis.asyncio as aioredis
from cache_servers import ClientFactory, ServerFactory, ServerProcess, free_port


@pytest.fixture
async def make_server() -> AsyncIterator[ServerFactory]:
    """Start ``make_server("memcached")`` / ``make_server("redis")``; all stop at teardown."""
    started: list[ServerProcess] = []

    async def start(kind: str, *extra: str) -> ServerProcess:
        server = ServerProcess(kind, free_port(), _extra=list(extra))
        started.append(server)
        await server.start()
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
async def memcached(make_server: ServerFactory) -> ServerProcess:
    return await make_server("memcached")


@pytest.fixture
async def redis_server(make_server: ServerFactory) -> ServerProcess:
    return await make_server("redis")


@pytest.fixture
async def make_client() -> AsyncIterator[ClientFactory]:
    """A raw client of the server's kind (the library's own, unwrapped); closed at teardown.

    ``kind`` may be "aiomcache" (default for memcached), "emcache" or "redis".
    """
    clients: list[Any] = []

    async def build(server: ServerProcess, kind: str | None = None) -> Any:
        kind = kind or ("aiomcache" if server.kind == "memcached" else "redis")
        client: Any
        if kind == "aiomcache":
            client = aiomcache.Client(server.host, server.port, pool_size=4)
        elif kind == "emcache":
            import emcache

            client = await emcache.create_client(
                [emcache.MemcachedHostAddress(server.host, server.port)],
                timeout=0.5,
                connection_timeout=0.5,
                max_connections=4,
            )
        else:
            client = aioredis.Redis(host=server.host, port=server.port)
        clients.append(client)
        return client

    yield build
    for client in clients:
        close = getattr(client, "aclose", None) or client.close
        try:
            await close()
        except Exception:  # already closed by the cache under test
            pass
