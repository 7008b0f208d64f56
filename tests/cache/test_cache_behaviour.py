"""The fallback tier, write-back, single flight and stale rules, on virtual time.

The backend here is the in-process :class:`DictBackend` (expiry on the
test's :class:`FakeClock`), so every outage and every expiry is exact; the
same logic against real servers is in ``test_cache_faults.py``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from cache_servers import DictBackend

from virtuoso_resilience import CircuitState, FakeClock, HealthService, ServiceStatus
from virtuoso_resilience.cache import (
    CacheConfig,
    CacheEvent,
    ResilientCache,
    StaleRule,
)

RECOVERY = 2.0


def make(clock: FakeClock, **overrides: Any) -> tuple[ResilientCache, DictBackend]:
    backend = DictBackend(clock)
    settings: dict[str, Any] = {
        "name": "t",
        "retry_attempts": 2,
        "retry_base_delay": 0.0,
        "retry_max_delay": 0.01,
        "failure_threshold": 2,
        "recovery_timeout": RECOVERY,
    }
    settings.update(overrides)
    return ResilientCache(backend, CacheConfig(**settings), clock=clock), backend


async def settle(cache: ResilientCache, clock: FakeClock) -> None:
    """Let the breaker's wait pass until the write-back is done."""
    for _ in range(20):
        if not cache.degraded:
            return
        clock.advance(RECOVERY)
        for _ in range(10):
            await asyncio.sleep(0)
    raise AssertionError(f"still degraded: {cache!r}")


async def trip(cache: ResilientCache, backend: DictBackend) -> None:
    backend.down = True
    await cache.get("trip")
    assert cache.breaker.state is CircuitState.OPEN


async def test_outage_serves_fallback_and_writes_back_on_recovery(clock: FakeClock) -> None:
    cache, backend = make(clock)
    await cache.set("a", {"v": 1})
    await cache.set("b", [1, 2])
    await trip(cache, backend)

    await cache.set("a", {"v": 2})  # kept locally, dirty
    await cache.delete("b")  # a delete to replay
    await cache.set("c", "new")
    assert (await cache.lookup("a")).source == "fallback"
    assert await cache.get("a") == {"v": 2}
    assert await cache.get("b") is None
    assert cache.health().status == "degraded"

    backend.down = False
    await settle(cache, clock)
    assert backend._live("a") == b'{"v":2}'
    assert backend._live("b") is None
    assert backend._live("c") == b'"new"'
    snap = cache.snapshot()
    assert snap["writebacks"] == 2
    assert snap["deletes_replayed"] == 1
    assert snap["dirty"] == 0
    assert snap["degraded_seconds"] >= RECOVERY
    assert (await cache.lookup("a")).source == "backend"


async def test_no_backend_call_while_the_breaker_is_open(clock: FakeClock) -> None:
    cache, backend = make(clock)
    await trip(cache, backend)
    calls = backend.calls
    for n in range(1_000):
        await cache.set(f"k{n % 10}", n)
        await cache.get(f"k{n % 10}")
        await cache.get_many(["k1", "k2"])
        await cache.delete("k3")
    assert backend.calls == calls
    assert cache.snapshot()["fallback_hits"] > 0


async def test_expired_write_back_is_dropped_and_the_older_value_deleted(clock: FakeClock) -> None:
    cache, backend = make(clock)
    await cache.set("a", "old")  # no TTL: the backend keeps it
    await trip(cache, backend)
    await cache.set("a", "new", ttl=1.0)
    clock.advance(1.5)
    assert await cache.get("a") is None  # expired locally
    backend.down = False
    await settle(cache, clock)
    assert backend._live("a") is None  # not "old": the last write expired
    assert cache.snapshot()["writebacks_dropped"] == 1
    assert await cache.get("a") is None


async def test_write_back_keeps_the_remaining_ttl(clock: FakeClock) -> None:
    cache, backend = make(clock)
    await trip(cache, backend)
    await cache.set("a", 1, ttl=10.0)
    clock.advance(3.0)
    backend.down = False
    await settle(cache, clock)
    expires_at = backend.data["a"][1]
    assert expires_at is not None and expires_at == pytest.approx(10.0)


async def test_a_newer_write_supersedes_the_write_back(clock: FakeClock) -> None:
    cache, backend = make(clock)
    await trip(cache, backend)
    for n in range(5):
        await cache.set("a", n)
    backend.down = False
    await settle(cache, clock)
    assert backend._live("a") == b"4"
    assert cache.snapshot()["writebacks"] == 1


async def test_writes_during_the_write_back_are_not_overwritten(clock: FakeClock) -> None:
    cache, backend = make(clock)
    await trip(cache, backend)
    for n in range(50):
        await cache.set(f"k{n}", "outage")
    backend.down = False
    clock.advance(RECOVERY)
    # The recovery task now writes back, one key per round trip; meanwhile:
    for n in range(50):
        await cache.set(f"k{n}", "after")
        assert await cache.get(f"k{n}") == "after"
    await settle(cache, clock)
    await cache.flush()
    assert all(backend._live(f"k{n}") == b'"after"' for n in range(50))


async def test_cancelled_write_stays_dirty_and_is_written_back(clock: FakeClock) -> None:
    cache, backend = make(clock)
    task = asyncio.ensure_future(cache.set("a", 1))
    await asyncio.sleep(0)  # the set is in flight (DictBackend yields once)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cache.snapshot()["dirty"] == 1
    await cache.flush()
    assert backend._live("a") == b"1"
    assert cache.snapshot()["dirty"] == 0


async def test_fallback_entry_and_byte_limits(clock: FakeClock) -> None:
    cache, backend = make(clock, fallback_max_entries=10, max_value_bytes=100)
    for n in range(50):
        await cache.set(f"k{n}", n)
    snap = cache.snapshot()
    assert snap["fallback_entries"] == 10
    assert snap["fallback_evictions"] == 40
    # Dirty entries are kept over clean ones; past the entry limit the oldest are dropped.
    await trip(cache, backend)
    for n in range(12):
        await cache.set(f"d{n}", n)
    snap = cache.snapshot()
    assert snap["fallback_entries"] == 10
    assert snap["fallback_dirty_dropped"] == 2
    assert await cache.get("d11") == 11


async def test_byte_limit_turns_the_oldest_dirty_values_into_deletes(clock: FakeClock) -> None:
    cache, backend = make(clock, fallback_max_bytes=4_000, max_value_bytes=1_000)
    await cache.set("a", "x" * 900)
    await trip(cache, backend)
    for n in range(6):
        await cache.set("a" if n == 0 else f"k{n}", "y" * 900)
    snap = cache.snapshot()
    assert snap["fallback_bytes"] <= 4_000
    assert snap["fallback_downgraded"] >= 1
    assert await cache.get("a") is None  # never the older "x" value
    backend.down = False
    await settle(cache, clock)
    assert backend._live("a") is None


async def test_get_or_set_calls_the_loader_once_for_concurrent_misses(clock: FakeClock) -> None:
    cache, backend = make(clock)
    calls = 0
    release = asyncio.Event()

    async def loader() -> dict[str, float]:
        nonlocal calls
        calls += 1
        await release.wait()
        return {"last": 64_000.0}

    waiters = [asyncio.ensure_future(cache.get_or_set("ticker", loader, ttl=5)) for _ in range(100)]
    for _ in range(5):
        await asyncio.sleep(0)
    release.set()
    results = await asyncio.gather(*waiters)
    assert calls == 1
    assert all(r == {"last": 64_000.0} for r in results)
    assert await cache.get_or_set("ticker", loader, ttl=5) == {"last": 64_000.0}
    assert calls == 1
    assert backend._live("ticker") == b'{"last":64000.0}'


async def test_get_or_set_loader_error_propagates_to_every_waiter(clock: FakeClock) -> None:
    cache, _ = make(clock)

    async def loader() -> int:
        await asyncio.sleep(0)
        raise LookupError("upstream down")

    results = await asyncio.gather(
        *(cache.get_or_set("k", loader) for _ in range(10)), return_exceptions=True
    )
    assert all(isinstance(r, LookupError) for r in results)
    assert cache.snapshot()["loader_calls"] == 1


async def test_stale_if_error_per_prefix(clock: FakeClock) -> None:
    cache, backend = make(
        clock,
        stale=[
            StaleRule(prefix="ticker:", stale_if_error=30.0),
            StaleRule(prefix="order:", stale_if_error=0.0),
        ],
    )
    await cache.set("ticker:BTC", 1, ttl=5)
    await cache.set("order:1", 2, ttl=5)
    await trip(cache, backend)
    clock.advance(10)  # both expired
    read = await cache.lookup("ticker:BTC")
    assert (read.value, read.source) == (1, "stale")
    assert (await cache.lookup("order:1")).source == "miss"
    clock.advance(30)  # past the stale window
    assert (await cache.lookup("ticker:BTC")).source == "miss"


async def test_max_fallback_age_refuses_old_values(clock: FakeClock) -> None:
    cache, backend = make(clock, stale=[StaleRule(prefix="md:", max_fallback_age=5.0)])
    await cache.set("md:book", {"bids": []})
    await cache.set("cfg", 1)
    await trip(cache, backend)
    assert await cache.get("md:book") == {"bids": []}
    clock.advance(6)
    assert (await cache.lookup("md:book")).source == "miss"
    assert await cache.get("cfg") == 1
    assert cache.snapshot()["fallback_refused"] == 1


async def test_stale_if_error_when_the_loader_fails(clock: FakeClock) -> None:
    cache, _ = make(clock, stale=[StaleRule(prefix="px:", stale_if_error=60.0)])
    assert await cache.get_or_set("px:BTC", lambda: 1, ttl=5) == 1
    clock.advance(10)

    def broken() -> int:
        raise ConnectionError("exchange down")

    assert await cache.get_or_set("px:BTC", broken, ttl=5) == 1
    clock.advance(100)
    with pytest.raises(ConnectionError):
        await cache.get_or_set("px:BTC", broken, ttl=5)


async def test_stale_while_revalidate_refreshes_in_the_background(clock: FakeClock) -> None:
    cache, backend = make(clock, stale=[StaleRule(prefix="px:", stale_while_revalidate=10.0)])
    versions = iter(range(1, 100))
    assert await cache.get_or_set("px:BTC", lambda: next(versions), ttl=5) == 1
    assert backend.data["px:BTC"][1] == pytest.approx(15.0)  # ttl + the SWR window
    clock.advance(6)  # stale, inside the window: served at once, refreshed behind
    assert await cache.get_or_set("px:BTC", lambda: next(versions), ttl=5) == 1
    for _ in range(10):
        await asyncio.sleep(0)
    assert await cache.get("px:BTC") == 2
    assert cache.snapshot()["swr_refreshes"] == 1


async def test_health_is_degraded_not_failed_while_the_fallback_serves(clock: FakeClock) -> None:
    service = HealthService(clock=clock)
    cache, backend = make(clock)
    cache.register_health(service)
    report = await service.run_check("cache.t")
    assert report.status is ServiceStatus.HEALTHY
    backend.down = True
    for _ in range(5):
        report = await service.run_check("cache.t")
        assert report.status is ServiceStatus.DEGRADED
    assert cache.health().status == "degraded"
    backend.down = False
    await settle(cache, clock)
    assert (await service.run_check("cache.t")).status is ServiceStatus.HEALTHY
    await cache.close()
    assert "cache.t" not in service.checks


async def test_repr_and_snapshot_show_live_state(clock: FakeClock) -> None:
    cache, backend = make(clock)
    await trip(cache, backend)
    await cache.set("a", 1)
    text = repr(cache)
    assert "degraded" in text and "breaker=open" in text and "dirty=1" in text
    snap = cache.snapshot()
    assert snap["reads_by_source"]["miss"] >= 1
    assert snap["backend_errors_by_kind"] == {"transient": 2}
    assert snap["backend_errors_by_type"] == {"ConnectionRefusedError": 2}


async def test_an_outage_thousands_of_trials_long_stays_bounded(clock: FakeClock) -> None:
    cache, backend = make(clock, fallback_max_entries=100)
    await trip(cache, backend)
    for n in range(3_000):
        await cache.set(f"k{n % 50}", n)
        clock.advance(RECOVERY)  # the breaker's wait passes: one trial each time
        for _ in range(3):
            await asyncio.sleep(0)
    trials = backend.calls
    assert 3_000 <= trials <= 2 * 3_000 + 10  # about one ping per wait, no storm
    snap = cache.snapshot()
    assert snap["fallback_entries"] <= 100 and snap["dirty"] == 50
    assert len(cache._tasks) == 0
    backend.down = False
    await settle(cache, clock)
    assert all(backend._live(f"k{n}") is not None for n in range(50))
    assert backend._live("k49") == b"2999"


class Stop(BaseException):
    """Not an Exception: must pass through everything untouched."""


async def test_loader_base_exception_propagates_and_is_not_cached(clock: FakeClock) -> None:
    cache, _ = make(clock)

    def stop() -> int:
        raise Stop

    with pytest.raises(Stop):
        await cache.get_or_set("k", stop)
    assert await cache.get_or_set("k", lambda: 7) == 7


async def test_a_cancelled_waiter_does_not_cancel_the_shared_load(clock: FakeClock) -> None:
    cache, _ = make(clock)
    release = asyncio.Event()

    async def loader() -> str:
        await release.wait()
        return "loaded"

    first = asyncio.ensure_future(cache.get_or_set("k", loader))
    second = asyncio.ensure_future(cache.get_or_set("k", loader))
    for _ in range(5):
        await asyncio.sleep(0)
    first.cancel()
    release.set()
    assert await second == "loaded"
    with pytest.raises(asyncio.CancelledError):
        await first
    assert cache.snapshot()["loader_calls"] == 1


async def test_close_writes_back_when_it_can_and_never_hangs(clock: FakeClock) -> None:
    cache, backend = make(clock)
    await trip(cache, backend)
    await cache.set("a", 1)
    backend.down = False
    clock.advance(RECOVERY)
    await cache.close()
    assert backend._live("a") == b"1"

    cache, backend = make(clock)
    await trip(cache, backend)
    await cache.set("a", 1)
    await cache.close()  # still down and the breaker open: nothing sent, nothing raised
    assert backend._live("a") is None
    assert cache.snapshot()["dirty"] == 1


async def test_listeners_hear_degraded_and_recovered(clock: FakeClock) -> None:
    cache, backend = make(clock)
    heard: list[CacheEvent] = []
    heard_async: list[bool] = []

    async def slow_listener(event: CacheEvent) -> None:
        heard_async.append(event.degraded)

    def broken_listener(event: CacheEvent) -> None:
        raise RuntimeError("listener bug")

    cache.add_listener(heard.append)
    cache.add_listener(slow_listener)
    cache.add_listener(broken_listener)
    await trip(cache, backend)
    await cache.set("a", 1)  # a broken listener never fails a cache call
    backend.down = False
    await settle(cache, clock)
    assert [(e.degraded, e.name) for e in heard] == [(True, "t"), (False, "t")]
    assert heard[0].dirty == 0 and "fallback serving" in heard[0].reason
    assert cache.remove_listener(broken_listener)
    await cache.close()  # drains the async listener
    assert heard_async == [True, False]
