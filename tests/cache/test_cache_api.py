"""The public API against real servers, and what the cache refuses.

Every client library the cache recognises is exercised against its own
server process: aiomcache and emcache against memcached, redis-py against
redis-server (as a client, a connection pool and a URL).
"""

from __future__ import annotations

import math
from typing import Any

import aiomcache
import pytest
import redis.asyncio as aioredis
from cache_servers import ClientFactory, ServerFactory, free_port

from virtuoso_resilience import (
    ConfigurationError,
    HealthService,
    create_memcached_resilient_config,
    create_redis_resilient_config,
    create_resilient_cache,
)
from virtuoso_resilience.cache import (
    BytesSerializer,
    CacheConfig,
    CacheValueError,
    InvalidCacheKeyError,
    JsonSerializer,
    ResilientCache,
    StaleRule,
)

KINDS = ["aiomcache", "emcache", "redis"]


async def build(make_server: ServerFactory, make_client: ClientFactory, kind: str) -> Any:
    server = await make_server("redis" if kind == "redis" else "memcached")
    return server, await make_client(server, kind)


@pytest.mark.parametrize("kind", KINDS)
async def test_seed_example_and_every_operation(
    make_server: ServerFactory, make_client: ClientFactory, kind: str
) -> None:
    _server, client = await build(make_server, make_client, kind)
    config = (
        create_redis_resilient_config() if kind == "redis" else create_memcached_resilient_config()
    )
    async with create_resilient_cache(client, config, health_service=HealthService()) as cache:
        data = {"symbol": "BTCUSDT", "bids": [[64_000.5, 1.25]], "ok": True, "n": None}
        await cache.set("key", data)
        assert await cache.get("key") == data
        await cache.set("market_data", data, ttl=60)
        assert await cache.get("market_data") == data
        assert await cache.get("missing") is None
        assert await cache.get("missing", "default") == "default"
        await cache.delete("key")
        assert await cache.get("key") is None
        await cache.delete("never-there")  # not an error
        await cache.set_many({"a": 1, "b": "two", "ü€": [3]}, ttl=30)
        assert await cache.get_many(["a", "b", "ü€", "nope"]) == {"a": 1, "b": "two", "ü€": [3]}
        await cache.set("raw", b"\x00\xffbytes")
        assert await cache.get("raw") == b"\x00\xffbytes"
        assert await cache.get_or_set("loaded", lambda: 42, ttl=30) == 42
        read = await cache.lookup("loaded")
        assert (read.found, read.value, read.source) == (True, 42, "backend")
        assert cache.health().status == "healthy"
        assert f"{kind} 127.0.0.1:" in repr(cache)
    assert cache.snapshot()["backend_errors_by_kind"] == {}


async def test_json_values_are_readable_by_any_client(
    make_server: ServerFactory, make_client: ClientFactory
) -> None:
    server, client = await build(make_server, make_client, "aiomcache")
    cache = create_resilient_cache(client, register_health=False)
    await cache.set("k", {"a": [1, 2.5, "x"]})
    raw = aiomcache.Client(server.host, server.port)
    assert await raw.get(b"k") == b'{"a":[1,2.5,"x"]}'
    await raw.close()
    await cache.close()


async def test_redis_client_defaults_are_made_safe(
    make_server: ServerFactory, make_client: ClientFactory
) -> None:
    _server, client = await build(make_server, make_client, "redis")
    assert client.get_retry().get_retries() > 0  # redis-py's own default
    cache = create_resilient_cache(client, register_health=False)
    assert client.get_retry().get_retries() == 0
    kwargs = client.connection_pool.connection_kwargs
    assert kwargs["socket_timeout"] == cache.config.timeout
    assert kwargs["socket_connect_timeout"] == cache.config.connect_timeout
    assert any("Retry(NoBackoff(), 0)" in change for change in cache.client_changes)
    await cache.close()


async def test_redis_url_and_pool(make_server: ServerFactory) -> None:
    server = await make_server("redis")
    async with create_resilient_cache(
        f"redis://:s3cret-pass@{server.host}:{server.port}/0", register_health=False
    ) as cache:
        await cache.set("u", 1)
        assert await cache.get("u") == 1
        assert "s3cret" not in repr(cache) and "s3cret" not in str(cache.snapshot())
    pool = aioredis.ConnectionPool(host=server.host, port=server.port)
    async with create_resilient_cache(pool, register_health=False) as cache:
        assert cache.config.backend == "redis"
        assert await cache.get("u") == 1


async def test_redis_requires_bytes_responses(make_server: ServerFactory) -> None:
    server = await make_server("redis")
    client = aioredis.Redis(host=server.host, port=server.port, decode_responses=True)
    with pytest.raises(ConfigurationError, match="decode_responses"):
        create_resilient_cache(client, register_health=False)
    await client.aclose()


async def test_dead_redis_costs_one_bounded_attempt_per_call() -> None:
    # Nothing listens on this port: the call fails at once and is served locally.
    client = aioredis.Redis(host="127.0.0.1", port=free_port())
    cache = create_resilient_cache(client, register_health=False)
    await cache.set("k", 1)
    assert await cache.get("k") == 1
    snap = cache.snapshot()
    assert snap["backend_errors_by_type"] == {"ConnectionError": 2}  # 2 attempts, no redis retries
    await cache.close()


def test_unsupported_client_and_mismatched_preset() -> None:
    with pytest.raises(TypeError, match="unsupported client"):
        create_resilient_cache(object(), register_health=False)
    with pytest.raises(TypeError, match="redis://"):
        create_resilient_cache("http://localhost:6379", register_health=False)
    client = aiomcache.Client("127.0.0.1", free_port())
    with pytest.raises(ConfigurationError, match="backend"):
        create_resilient_cache(client, create_redis_resilient_config(), register_health=False)


def test_default_health_registration_and_name_clash() -> None:
    service = HealthService()
    client = aiomcache.Client("127.0.0.1", free_port())
    cache = create_resilient_cache(client, health_service=service)
    assert "cache.memcached" in service.checks
    with pytest.raises(ConfigurationError, match="already registered"):
        create_resilient_cache(aiomcache.Client("127.0.0.1", free_port()), health_service=service)
    assert cache.name == "memcached"


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("", "empty"),
        ("has space", "whitespace"),
        ("tab\there", "whitespace"),
        ("new\nline", "whitespace"),
        ("nul\x00", "control character"),
        ("del\x7f", "control character"),
        ("c1\x85", "whitespace"),  # NEL is whitespace to Python
        ("c1\x9b", "control character"),
        ("nbsp\u00a0", "whitespace"),
        ("x" * 251, "251 bytes"),
        ("é" * 126, "252 bytes"),
        ("\ud800", "UTF-8"),
        (b"bytes", "not a str"),
        (42, "not a str"),
        (None, "not a str"),
    ],
)
async def test_bad_keys_are_refused_never_mangled(key: Any, reason: str) -> None:
    cache = ResilientCache(aiomcache.Client("127.0.0.1", free_port()))
    with pytest.raises(InvalidCacheKeyError, match=reason) as caught:
        await cache.set(key, 1)
    assert "allowed" in str(caught.value)
    with pytest.raises(InvalidCacheKeyError):
        await cache.get(key)
    assert cache.snapshot()["fallback_entries"] == 0


async def test_key_limits_count_utf8_bytes_and_the_prefix() -> None:
    cache = ResilientCache(
        aiomcache.Client("127.0.0.1", free_port()), CacheConfig(key_prefix="app:")
    )
    await cache.set("x" * 246, 1)  # 4 + 246 = 250 bytes
    with pytest.raises(InvalidCacheKeyError):
        await cache.set("x" * 247, 1)
    await cache.set("²①٣", 1)  # non-ASCII digits are fine as key text
    assert await cache.get("²①٣") == 1
    long_message = "k" * 1_000_000
    with pytest.raises(InvalidCacheKeyError) as caught:
        await cache.get(long_message)
    assert len(str(caught.value)) < 300  # the key is cut in the message


@pytest.mark.parametrize(
    "value",
    [math.nan, math.inf, -math.inf, {1, 2}, object(), {"a": math.nan}, {(1, 2): 3}],
)
async def test_values_json_cannot_hold_are_refused(value: Any) -> None:
    cache = ResilientCache(aiomcache.Client("127.0.0.1", free_port()))
    with pytest.raises(CacheValueError):
        await cache.set("k", value)
    assert await cache.get("k") is None


async def test_huge_and_deep_values_are_refused_with_a_clear_error() -> None:
    cache = ResilientCache(aiomcache.Client("127.0.0.1", free_port()))
    with pytest.raises(CacheValueError, match="max_value_bytes"):
        await cache.set("k", "x" * 2_000_000)
    deep: Any = []
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(CacheValueError, match="nested too deeply"):
        await cache.set("k", deep)


@pytest.mark.parametrize("ttl", [0, -1, math.nan, math.inf, True, "5", 2e9, -0.0])
async def test_bad_ttl_names_the_field(ttl: Any) -> None:
    cache = ResilientCache(aiomcache.Client("127.0.0.1", free_port()))
    with pytest.raises(ConfigurationError, match="ttl"):
        await cache.set("k", 1, ttl=ttl)


def test_serializers_round_trip_and_refuse() -> None:
    json_ = JsonSerializer()
    for value in [None, True, 0, -0.0, 1.5, "²①٣", [1, "a"], {"k": {"n": [None]}}, b"", b"\xff"]:
        assert json_.loads(json_.dumps(value)) == value
    assert json_.dumps(b"abc") == b"\xffabc"
    assert json_.dumps((1, 2)) == b"[1,2]"
    raw = BytesSerializer()
    assert raw.dumps(b"abc") == b"abc" and raw.loads(b"abc") == b"abc"
    with pytest.raises(CacheValueError, match="bytes only"):
        raw.dumps("text")


def test_config_rules_name_the_fields() -> None:
    with pytest.raises(ConfigurationError, match="retry_base_delay"):
        CacheConfig(retry_base_delay=1.0, retry_max_delay=0.5)
    with pytest.raises(ConfigurationError, match="fallback_max_bytes"):
        CacheConfig(fallback_max_bytes=1_000)
    with pytest.raises(ConfigurationError, match="max_key_bytes"):
        create_memcached_resilient_config(max_key_bytes=1_000)
    with pytest.raises(ConfigurationError, match="key_prefix"):
        CacheConfig(key_prefix="has space")
    with pytest.raises(ConfigurationError, match="stale"):
        CacheConfig(stale=[StaleRule(prefix="a"), StaleRule(prefix="a")])
    config = CacheConfig(stale=[StaleRule(prefix="a", stale_if_error=1.0), StaleRule(prefix="ab")])
    rule = config.stale_rule("abc")
    assert rule is not None and rule.prefix == "ab"
    assert config.stale_rule("zzz") is None
    config.timeout = 0.5
    with pytest.raises(ConfigurationError, match="timeout"):
        config.timeout = math.nan
    assert config.timeout == 0.5


async def test_run_time_config_changes_apply() -> None:
    cache = ResilientCache(aiomcache.Client("127.0.0.1", free_port()))
    cache.config.timeout = 0.05
    assert cache._deadlines.seconds == 0.05
    cache.config.fallback_max_entries = 3
    for n in range(10):
        await cache.set(f"k{n}", n)
    assert cache.snapshot()["fallback_entries"] == 3


async def test_no_round_trip_reaches_a_real_server_while_the_breaker_is_open(
    make_server: ServerFactory, make_client: ClientFactory
) -> None:
    server, client = await build(make_server, make_client, "redis")
    cache = create_resilient_cache(client, register_health=False)
    await cache.set("k", 1)
    probe = aioredis.Redis(host=server.host, port=server.port)
    cache.breaker.force_open()
    before = (await probe.info("stats"))["total_commands_processed"]
    for n in range(500):
        await cache.set(f"k{n % 7}", n)
        await cache.get(f"k{n % 7}")
        await cache.get_many(["k", "k1"])
        await cache.delete("k6")
    after = (await probe.info("stats"))["total_commands_processed"]
    assert after - before == 1  # the first INFO itself; nothing from the cache
    assert cache.snapshot()["fallback_hits"] > 0
    await probe.aclose()
    cache.breaker.reset()
    await cache.close()
