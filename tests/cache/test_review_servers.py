"""Review regressions against real servers (each starts its own process)."""

from __future__ import annotations

from typing import Any

import pytest
from cache_servers import ClientFactory, ServerProcess

from virtuoso_resilience.cache import ResilientCache, create_memcached_resilient_config
from virtuoso_resilience.cache._backends import memcached_exptime


@pytest.mark.parametrize("kind", ["aiomcache", "emcache"])
@pytest.mark.parametrize("ttl", [30 * 86400 + 1, 3e8, 4e8, 1e9])
async def test_a_ttl_past_2038_is_stored_by_memcached(
    memcached: ServerProcess, make_client: ClientFactory, kind: str, ttl: float
) -> None:
    """memcached reads an exptime over 30 days as a Unix time in a signed
    32-bit int: ttl=1e9 (allowed) used to be sent as ~2.8e9 and silently not
    stored. It is capped at 2038-01-19 now."""
    assert memcached_exptime(ttl) <= 2**31 - 1
    client: Any = await make_client(memcached, kind)
    raw: Any = await make_client(memcached, "aiomcache")
    cache = ResilientCache(client, create_memcached_resilient_config(cache_reads=False))
    await cache.set("long", "kept", ttl=ttl)
    assert await raw.get(b"long") == b'"kept"'
    assert not cache.degraded and cache.snapshot()["backend_errors_by_type"] == {}
    await cache.close()
