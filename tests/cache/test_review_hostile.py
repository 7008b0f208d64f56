"""Hostile-input regressions found in review of the resilient cache.

Each test failed on the code as first merged: a 400-digit TTL escaped as
``OverflowError``; JSON silently turned non-str dict keys into strings; a
clean value read from the backend could push dirty (not yet written back)
changes out of the fallback; every write into a fallback full of dirty
changes scanned the whole tier (100,000 writes during an outage blocked the
event loop for minutes); a ``key_prefix`` that leaves no room for a key was
accepted.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import pytest
from cache_servers import DictBackend

from virtuoso_resilience import CircuitState, ConfigurationError, FakeClock
from virtuoso_resilience.cache import (
    CacheConfig,
    CacheValueError,
    InvalidCacheKeyError,
    JsonSerializer,
    ResilientCache,
)
from virtuoso_resilience.cache._store import ENTRY_OVERHEAD, FallbackStore

RECOVERY = 2.0


def make(clock: FakeClock, **overrides: Any) -> tuple[ResilientCache, DictBackend]:
    backend = DictBackend(clock)
    settings: dict[str, Any] = {
        "name": "review",
        "retry_attempts": 2,
        "retry_base_delay": 0.0,
        "retry_max_delay": 0.01,
        "failure_threshold": 1,
        "recovery_timeout": RECOVERY,
    }
    settings.update(overrides)
    return ResilientCache(backend, CacheConfig(**settings), clock=clock), backend


@pytest.mark.parametrize("ttl", [10**400, -(10**400)])
async def test_a_ttl_too_big_for_a_float_is_a_clear_error(clock: FakeClock, ttl: int) -> None:
    cache, _ = make(clock)
    for call in (
        cache.set("k", 1, ttl=ttl),
        cache.set_many({"k": 1}, ttl=ttl),
        cache.get_or_set("k", lambda: 1, ttl=ttl),
    ):
        with pytest.raises(ConfigurationError) as info:
            await call
        assert "ttl" in str(info.value) and "1e9" in str(info.value)


@pytest.mark.parametrize(
    "value",
    [
        {1: "a"},
        {None: "a"},
        {True: "a"},
        {1.5: "a"},
        {"ok": [{"deep": {2: "x"}}]},
        [({"a": 1}, {3: 4})],
        OrderedDict([(7, "seven")]),
    ],
)
def test_json_refuses_a_dict_key_that_would_read_back_as_a_str(value: Any) -> None:
    with pytest.raises(CacheValueError, match="dict key of type"):
        JsonSerializer().dumps(value)


def test_json_str_keys_round_trip_unchanged() -> None:
    class Name(str):
        pass

    s = JsonSerializer()
    value = {"a": [{"b": {"c": -0.0}}], Name("n"): ("t", 1)}
    assert s.loads(s.dumps(value)) == {"a": [{"b": {"c": -0.0}}], "n": ["t", 1]}


async def test_set_refuses_non_str_keys_instead_of_storing_a_different_value(
    clock: FakeClock,
) -> None:
    cache, backend = make(clock)
    with pytest.raises(CacheValueError):
        await cache.set("k", {1: "a", "1": "b"})
    assert await cache.get("k") is None and backend.data == {}


def test_a_clean_value_never_pushes_out_a_dirty_change() -> None:
    store = FallbackStore(max_entries=10, max_bytes=3 * ENTRY_OVERHEAD + 1000)
    store.put("w1", b"v1", None, 0.0, dirty=True)
    store.put("w2", b"v2", None, 0.0, dirty=True)
    store.put("old", b"c", None, 0.0, dirty=False)
    store.put("big", b"x" * 1000, None, 0.0, dirty=False)  # read from the backend
    w1, w2 = store.peek("w1"), store.peek("w2")
    assert w1 is not None and w1.dirty and w1.data == b"v1"
    assert w2 is not None and w2.dirty and w2.data == b"v2"
    assert "big" not in store and "old" not in store
    assert (store.downgraded, store.dirty_dropped, store.evictions) == (0, 0, 2)
    assert list(store.dirty) == ["w1", "w2"]


async def test_a_backend_value_larger_than_max_value_bytes_is_not_kept_in_the_fallback(
    clock: FakeClock,
) -> None:
    cache, backend = make(clock, max_value_bytes=1000)
    await cache.set("mine", "small")
    backend.data["huge"] = (b'"' + b"x" * 5000 + b'"', None)  # another process wrote it
    assert await cache.get("huge") == "x" * 5000
    found = await cache.get_many(["huge", "mine"])
    assert found == {"huge": "x" * 5000, "mine": "small"}
    snap = cache.snapshot()
    assert snap["fallback_entries"] == 1 and snap["fallback_evictions"] == 0


async def test_100k_writes_during_an_outage_keep_the_newest_and_count_the_rest(
    clock: FakeClock,
) -> None:
    cache, backend = make(clock, fallback_max_entries=10_000)
    backend.down = True
    await cache.get("trip")
    assert cache.breaker.state is CircuitState.OPEN
    for i in range(100_000):
        await cache.set(f"k{i}", i)
    snap = cache.snapshot()
    assert snap["dirty"] == 10_000 and snap["fallback_dirty_dropped"] == 90_000
    assert backend.calls == 1  # the failed read and nothing while the breaker is open
    assert await cache.get("k99999") == 99_999 and await cache.get("k0") is None
    backend.down = False
    clock.advance(RECOVERY)
    assert await cache.flush()
    assert not cache.degraded
    assert sorted(backend.data) == sorted(f"k{i}" for i in range(90_000, 100_000))
    assert cache.snapshot()["writebacks"] == 10_000


@pytest.mark.parametrize(
    ("prefix", "max_key_bytes"), [("p" * 250, 250), ("é" * 125, 250), ("p" * 300, 250)]
)
def test_a_key_prefix_that_leaves_no_room_for_a_key_is_refused(
    prefix: str, max_key_bytes: int
) -> None:
    with pytest.raises(ConfigurationError, match="key_prefix"):
        CacheConfig(key_prefix=prefix, max_key_bytes=max_key_bytes)
    assert CacheConfig(key_prefix="é" * 124 + "p", max_key_bytes=250).key_prefix


async def test_a_key_prefix_one_byte_short_leaves_exactly_one_byte(clock: FakeClock) -> None:
    cache, backend = make(clock, key_prefix="p" * 249)
    await cache.set("k", 1)
    assert list(backend.data) == ["p" * 249 + "k"]
    with pytest.raises(InvalidCacheKeyError, match="2 bytes long"):
        await cache.set("é", 1)


@pytest.mark.parametrize("keys", ["abc", b"abc"])
async def test_get_many_refuses_one_str_instead_of_looking_up_its_characters(
    clock: FakeClock, keys: Any
) -> None:
    cache, _ = make(clock)
    await cache.set("a", 1)
    with pytest.raises(TypeError, match="iterable of keys"):
        await cache.get_many(keys)
    assert await cache.get_many(["a", "b"]) == {"a": 1}
