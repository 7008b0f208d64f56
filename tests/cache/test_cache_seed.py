"""The seed's cache examples, as written (``core.resilience`` → ``virtuoso_resilience``),
against a real memcached, then with the server killed ("falls back if cache is down")."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiomcache
import pytest
from cache_servers import ServerFactory

from virtuoso_resilience import (
    FakeClock,
    ResilienceRegistry,
    get_health_service,
    set_default_registry,
)


@pytest.fixture(autouse=True)
async def isolated_default_registry() -> AsyncIterator[ResilienceRegistry]:
    registry = ResilienceRegistry(clock=FakeClock())
    previous = set_default_registry(registry)
    yield registry
    await registry.aclose()
    set_default_registry(previous)


async def test_resilient_cache_adapter_example(make_server: ServerFactory) -> None:
    server = await make_server("memcached")
    memcached_client = aiomcache.Client(server.host, server.port)
    data = {"BTCUSDT": {"last": 64_000.5}}

    from virtuoso_resilience import create_memcached_resilient_config, create_resilient_cache

    # Create resilient cache with fallback
    config = create_memcached_resilient_config()
    resilient_cache = create_resilient_cache(memcached_client, config)

    # Operations gracefully degrade to in-memory cache on failure
    await resilient_cache.set("key", data)  # Falls back if cache is down
    value = await resilient_cache.get("key")  # Returns from fallback cache
    assert value == data
    assert "cache.memcached" in get_health_service().checks

    server.kill()
    await resilient_cache.set("key", {"changed": True})  # Falls back if cache is down
    value = await resilient_cache.get("key")  # Returns from fallback cache
    assert value == {"changed": True}
    assert resilient_cache.snapshot()["fallback_hits"] >= 1
    await resilient_cache.close()


async def test_cache_operations_with_fallback_example(make_server: ServerFactory) -> None:
    server = await make_server("memcached")
    from virtuoso_resilience import create_resilient_cache

    cache = resilient_cache = create_resilient_cache(aiomcache.Client(server.host, server.port))
    data = [1, 2, 3]

    # Existing code
    await cache.set("market_data", data)
    result = await cache.get("market_data")
    assert result == data

    server.kill()
    # With resilience (seamless)
    await resilient_cache.set("market_data", data)
    result = await resilient_cache.get("market_data")
    assert result == data
    assert (await resilient_cache.lookup("market_data")).source == "fallback"
    await resilient_cache.close()
