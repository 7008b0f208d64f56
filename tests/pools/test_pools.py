"""Connection pools against real aiohttp servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import gc
import json
import math
import warnings
import weakref
from typing import TYPE_CHECKING, Any

import aiohttp
import ccxt.async_support as ccxt_async
import pytest

from virtuoso_resilience._model import MAX_SECONDS
from virtuoso_resilience.clock import FakeClock
from virtuoso_resilience.errors import ConfigurationError, PoolExhaustedError
from virtuoso_resilience.pools import (
    ConnectionPool,
    ConnectionPoolManager,
    PoolConfig,
    PoolHealth,
)
from virtuoso_resilience.pools._config import MAX_HEALTH_WINDOW
from virtuoso_resilience.registry import (
    ResilienceRegistry,
    get_connection_pool,
    set_default_registry,
)

if TYPE_CHECKING:
    from .conftest import LeakCheck, LocalServer, ServerFactory

# Short real waits only: a request that cannot get a connection gives up after 0.2 s.
FAST = {"acquire_timeout": 0.2, "connection_timeout": 2.0}


def conns(pool: ConnectionPool) -> dict[str, int]:
    return pool.metrics()["connections"]  # type: ignore[no-any-return]


def requests(pool: ConnectionPool) -> dict[str, Any]:
    return pool.metrics()["requests"]  # type: ignore[no-any-return]


async def until_waiting(pool: ConnectionPool, count: int = 1) -> None:
    """Let other tasks run until ``count`` requests queue for a connection."""
    async with asyncio.timeout(5):
        while conns(pool)["waiting"] < count:  # noqa: ASYNC110 (a gauge, not an event)
            await asyncio.sleep(0)


async def get_json(session: aiohttp.ClientSession, url: str) -> Any:
    async with session.get(url) as response:
        return await response.json()


# ------------------------------------------------------------------ config


def test_seed_config_and_defaults() -> None:
    config = PoolConfig(max_connections=50, max_connections_per_host=20)
    assert (config.max_connections, config.max_connections_per_host) == (50, 20)
    assert config.acquire_timeout == 5.0
    assert config.connection_timeout == 10.0
    assert config.keepalive_timeout == 30.0
    assert config.dns_cache_ttl == 300
    assert config.total_timeout is None
    assert config.health_count_5xx_as_errors is True
    assert PoolConfig(acquire_timeout=1).acquire_timeout == 1.0  # ints are fine for seconds


@pytest.mark.parametrize(
    ("field", "value", "allowed"),
    [
        ("max_connections", 0, ">= 1"),
        ("max_connections_per_host", -1, ">= 0"),
        ("acquire_timeout", 0, "> 0"),
        ("connection_timeout", -1.0, "> 0"),
        ("total_timeout", 0, "> 0"),
        ("dns_cache_ttl", -5, ">= 0"),
        ("max_connections", "50", "integer"),
        ("health_degraded_utilisation", 1.5, "<= 1"),
    ],
)
def test_bad_value_is_rejected_naming_field_and_range(field: str, value: Any, allowed: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        PoolConfig(**{field: value})
    assert info.value.fields == (field,)
    assert allowed in str(info.value)


def test_rejected_assignment_keeps_old_value() -> None:
    config = PoolConfig()
    with pytest.raises(ConfigurationError, match="acquire_timeout"):
        config.acquire_timeout = -1.0
    assert config.acquire_timeout == 5.0
    config.acquire_timeout = 0.5
    assert config.acquire_timeout == 0.5


def test_per_host_above_total_names_both_fields() -> None:
    with pytest.raises(ConfigurationError) as info:
        PoolConfig(max_connections=10, max_connections_per_host=20)
    message = str(info.value)
    assert "max_connections_per_host (20) must be 0 (no per-host limit)" in message
    assert "<= max_connections (10)" in message
    assert info.value.fields == ("max_connections_per_host, max_connections",)
    # 0 means "no per-host limit" and is fine with any total.
    assert PoolConfig(max_connections=1, max_connections_per_host=0).max_connections == 1


def test_cross_field_assignment_is_rejected_before_it_lands() -> None:
    config = PoolConfig(max_connections_per_host=20)
    seen: list[str] = []
    config.subscribe(seen.append)
    with pytest.raises(ConfigurationError) as info:
        config.max_connections = 10  # below max_connections_per_host=20
    assert info.value.fields == ("max_connections_per_host, max_connections",)
    assert "max_connections_per_host (20)" in str(info.value)
    assert config.max_connections == 50
    assert seen == []  # observers never saw the rejected value
    config.max_connections_per_host = 5
    config.max_connections = 10
    assert seen == ["max_connections_per_host", "max_connections"]


def test_bounds_left_at_their_default_follow_their_limit() -> None:
    config = PoolConfig(max_connections=10)  # the default per-host 20 would not fit
    assert config.max_connections_per_host == 10
    seen: list[str] = []
    config.subscribe(seen.append)
    config.max_connections = 4
    assert config.max_connections_per_host == 4
    config.max_connections = 100
    assert config.max_connections_per_host == 20  # back to the default
    assert seen == ["max_connections", "max_connections_per_host"] * 2
    assert PoolConfig(health_window_requests=4).health_min_requests == 4
    assert PoolConfig(health_unhealthy_error_rate=0.05).health_degraded_error_rate == 0.05


def test_health_threshold_rules() -> None:
    with pytest.raises(ConfigurationError, match="health_unhealthy_error_rate"):
        PoolConfig(health_degraded_error_rate=0.6, health_unhealthy_error_rate=0.5)
    with pytest.raises(ConfigurationError, match="health_window_requests"):
        PoolConfig(health_min_requests=20, health_window_requests=10)


TIMEOUTS = (
    "acquire_timeout",
    "connection_timeout",
    "total_timeout",
    "read_timeout",
    "keepalive_timeout",
)


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan, 1e10, -0.0, True, "5"])
@pytest.mark.parametrize("field", TIMEOUTS)
def test_timeouts_must_be_finite_seconds(field: str, value: Any) -> None:
    # Defect 7: inf was accepted, then every request failed with OverflowError
    # (and keepalive_timeout=inf kept idle connections for ever).
    with pytest.raises(ConfigurationError) as info:
        PoolConfig(**{field: value})
    assert info.value.fields == (field,)
    config = PoolConfig()
    before = getattr(config, field)
    with pytest.raises(ConfigurationError):
        setattr(config, field, value)
    assert getattr(config, field) == before


async def test_the_longest_allowed_timeouts_work(server: LocalServer) -> None:
    longest = dict.fromkeys(TIMEOUTS, MAX_SECONDS)
    pool = ConnectionPool("patient", PoolConfig(**longest))
    try:
        async with pool.get_session() as session:
            assert await get_json(session, server.url("/ok")) == {"ok": True}
        assert requests(pool)["failed"] == 0
    finally:
        await pool.close()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("health_window_requests", MAX_HEALTH_WINDOW + 1),  # one byte per request
        ("dns_cache_ttl", 10**12),
        ("max_connections", 1.5),
        ("health_degraded_utilisation", 0.0),
        ("health_exhaustion_window", math.inf),
    ],
)
def test_hostile_sizes_are_refused(field: str, value: Any) -> None:
    with pytest.raises(ConfigurationError) as info:
        PoolConfig(**{field: value})
    assert info.value.fields == (field,)


@pytest.mark.parametrize("value", ["bot\r\nX-Injected: 1", "bot\nx", "a\x00b", "x" * 1025])
def test_user_agent_is_one_header_line(value: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        PoolConfig(user_agent=value)
    assert info.value.fields == ("user_agent",)
    assert PoolConfig(user_agent="virtuoso/1.0 (ü)").user_agent == "virtuoso/1.0 (ü)"


def test_a_rejected_rule_does_not_pin_a_following_bound() -> None:
    config = PoolConfig(max_connections=10)
    with pytest.raises(ConfigurationError):
        config.max_connections_per_host = 11  # above max_connections
    assert "max_connections_per_host" not in config.model_fields_set
    config.max_connections = 100
    assert config.max_connections_per_host == 20  # still follows its limit


# ------------------------------------------------------------ the session


async def test_seed_usage_example(server: LocalServer) -> None:
    config = PoolConfig(max_connections=50, max_connections_per_host=20)
    async with ConnectionPoolManager() as manager:
        pool = manager.get_pool("exchange_api", config)
        async with pool.get_session() as session:
            response = await session.get(server.url("/ok"))
            assert await response.json() == {"ok": True}
        assert not session.closed  # leaving the block does not close it
    assert session.closed  # closing the manager does


async def test_session_is_shared_and_users_are_counted(server: LocalServer) -> None:
    pool = ConnectionPool("shared", PoolConfig(**FAST))
    try:
        assert pool.snapshot()["state"] == "unopened"
        async with pool.get_session() as first:
            async with pool.get_session() as second:
                assert first is second is pool.session
                assert pool.active_users == 2
            assert pool.active_users == 1
        assert pool.active_users == 0
        assert not first.closed
        assert await get_json(first, server.url("/ok")) == {"ok": True}
    finally:
        await pool.close()
    assert first.closed
    with pytest.raises(RuntimeError, match="'shared' is closed"):
        _ = pool.session
    with pytest.raises(RuntimeError, match="closed"):
        async with pool.get_session():
            pass


def test_limits_follow_the_config_until_the_session_exists() -> None:
    config = PoolConfig(max_connections=8, max_connections_per_host=4)
    pool = ConnectionPool("limits", config)
    assert pool.limits == (8, 4)
    config.max_connections = 16
    assert pool.limits == (16, 4)


def test_a_config_does_not_keep_its_pools_alive() -> None:
    config = PoolConfig()
    pool = ConnectionPool("short-lived", config)
    ref = weakref.ref(pool)
    del pool
    gc.collect()
    assert ref() is None
    config.health_window_requests = 50  # the dead pool's observer is a no-op
    assert config.health_window_requests == 50


def test_session_needs_a_running_loop() -> None:
    pool = ConnectionPool("no-loop")
    with pytest.raises(RuntimeError, match="running event loop"):
        _ = pool.session


async def test_session_options_reach_aiohttp(server: LocalServer) -> None:
    config = PoolConfig(
        user_agent="virtuoso-test/1",
        force_close=True,
        enable_cleanup_closed=True,
        dns_cache_ttl=0,
        verify_ssl=False,
        total_timeout=5.0,
        **FAST,
    )
    pool = ConnectionPool("options", config)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            session = pool.session  # no DeprecationWarning leaks out of aiohttp
        for _ in range(2):
            assert await get_json(session, server.url("/echo")) == {"user_agent": "virtuoso-test/1"}
        assert (conns(pool)["created"], conns(pool)["reused"]) == (2, 0)  # force_close
        assert session.timeout.total == 5.0
        assert session.timeout.sock_connect == 2.0
    finally:
        await pool.close()


async def test_keepalive_reuses_one_connection(server: LocalServer) -> None:
    pool = ConnectionPool("keepalive", PoolConfig(**FAST))
    try:
        async with pool.get_session() as session:
            for _ in range(10):
                assert await get_json(session, server.url("/ok")) == {"ok": True}
        assert conns(pool) == {
            "created": 1,
            "reused": 9,
            "open": 1,
            "in_use": 0,
            "idle": 1,
            "waiting": 0,
        }
        req = requests(pool)
        assert (req["started"], req["succeeded"], req["failed"]) == (10, 10, 0)
        assert req["responses"]["2xx"] == 10
        timings = pool.metrics()["response_seconds"]
        assert timings["count"] == 10
        assert timings["buckets"]["+Inf"] == 10
        assert pool.health().status == "healthy"
    finally:
        await pool.close()


async def test_in_use_lasts_until_the_body_is_released(server: LocalServer) -> None:
    pool = ConnectionPool("stream", PoolConfig(**FAST))
    try:
        response = await pool.session.get(server.url("/stream"))
        assert response.status == 200
        assert conns(pool)["in_use"] == 1  # headers are in, the body is not
        assert pool.health().utilisation == pytest.approx(1 / 50)
        server.release.set()
        assert await response.read() == b"first chunk;last chunk"
        assert conns(pool)["in_use"] == 0
        assert conns(pool)["idle"] == 1
    finally:
        await pool.close()


async def test_status_classes_are_counted_but_are_not_errors(server: LocalServer) -> None:
    pool = ConnectionPool("status", PoolConfig(**FAST))
    try:
        for code in (200, 404, 503, 503):
            async with pool.session.get(server.url(f"/status/{code}")) as response:
                assert response.status == code
        req = requests(pool)
        assert req["responses"] == {"1xx": 0, "2xx": 1, "3xx": 0, "4xx": 1, "5xx": 2}
        assert req["failed"] == 0
    finally:
        await pool.close()


# -------------------------------------------------------------- exhaustion


async def test_exhaustion_then_recovery(server: LocalServer) -> None:
    pool = ConnectionPool(
        "exhaust", PoolConfig(max_connections=2, max_connections_per_host=2, **FAST)
    )
    try:
        session = pool.session
        slow = [asyncio.create_task(get_json(session, server.url("/slow"))) for _ in range(2)]
        await server.wait_for("/slow", 2)
        assert conns(pool)["in_use"] == 2

        with pytest.raises(PoolExhaustedError) as info:
            await session.get(server.url("/ok"))
        error = info.value
        assert (error.name, error.max_connections, error.max_connections_per_host) == (
            "exhaust",
            2,
            2,
        )
        assert error.waited > 0
        assert "'exhaust'" in str(error)
        assert "max_connections=2" in str(error)
        assert server.hits["/ok"] == 0  # it never reached the server

        metrics = pool.metrics()
        assert metrics["exhaustion"]["events"] == 1
        assert metrics["requests"]["errors"] == {"PoolExhaustedError": 1}
        assert metrics["connections"]["waiting"] == 0
        assert metrics["wait_seconds"]["count"] == 1
        health = pool.health()
        assert health.status == "unhealthy"
        assert "exhausted" in health.reason
        assert health.utilisation == 1.0

        server.release.set()
        assert await asyncio.gather(*slow) == [{"slow": True}] * 2
        assert await get_json(session, server.url("/ok")) == {"ok": True}
        assert conns(pool)["created"] == 2
        assert conns(pool)["in_use"] == 0
    finally:
        await pool.close()


async def test_per_host_limit_leaves_other_hosts_alone(make_server: ServerFactory) -> None:
    a, b = await make_server(), await make_server()
    pool = ConnectionPool(
        "hosts", PoolConfig(max_connections=4, max_connections_per_host=1, **FAST)
    )
    try:
        session = pool.session
        held = asyncio.create_task(get_json(session, a.url("/slow")))
        await a.wait_for("/slow", 1)
        with pytest.raises(PoolExhaustedError, match="max_connections_per_host=1"):
            await session.get(a.url("/ok"))
        assert await get_json(session, b.url("/ok")) == {"ok": True}  # another endpoint
        a.release.set()
        assert await held == {"slow": True}
        assert await get_json(session, a.url("/ok")) == {"ok": True}
    finally:
        await pool.close()


async def test_many_concurrent_requests_share_few_connections(server: LocalServer) -> None:
    config = PoolConfig(max_connections=4, max_connections_per_host=4, acquire_timeout=5.0)
    pool = ConnectionPool("crowd", config)
    try:
        session = pool.session
        results = await asyncio.gather(*(get_json(session, server.url("/ok")) for _ in range(40)))
        assert results == [{"ok": True}] * 40
        c = conns(pool)
        assert c["created"] <= 4
        assert c["created"] + c["reused"] == 40
        assert (c["waiting"], c["in_use"]) == (0, 0)
        assert pool.metrics()["wait_seconds"]["count"] > 0  # some had to queue
        assert requests(pool)["failed"] == 0
    finally:
        await pool.close()


async def test_request_outside_the_pool_middleware_still_gives_up(server: LocalServer) -> None:
    # Per-request ``middlewares=()`` bypasses the pool's middleware; the wait
    # is still bounded by acquire_timeout and ends in PoolExhaustedError, not
    # in a stray CancelledError (nor in aiohttp's ConnectionTimeoutError).
    config = PoolConfig(max_connections=1, acquire_timeout=0.1, connection_timeout=0.1)
    pool = ConnectionPool("bypass", config)
    try:
        held = asyncio.create_task(get_json(pool.session, server.url("/slow")))
        await server.wait_for("/slow", 1)
        with pytest.raises(PoolExhaustedError, match="'bypass' exhausted"):
            await pool.session.get(server.url("/ok"), middlewares=())
        task = asyncio.current_task()
        assert task is not None and task.cancelling() == 0  # the pool's cancel is undone
        assert pool.metrics()["exhaustion"]["events"] == 1
        assert requests(pool)["errors"] == {"PoolExhaustedError": 1}
        assert conns(pool)["waiting"] == 0
        server.release.set()
        await held
        assert await get_json(pool.session, server.url("/ok")) == {"ok": True}
    finally:
        await pool.close()


def test_session_has_no_fixed_connect_timeout() -> None:
    # aiohttp's ``connect`` would include the pool wait, frozen at the first
    # acquire_timeout; each connect attempt is bounded by sock_connect.
    async def main() -> aiohttp.ClientTimeout:
        pool = ConnectionPool("timeouts", PoolConfig(acquire_timeout=1.0, connection_timeout=3.0))
        try:
            return pool.session.timeout
        finally:
            await pool.close()

    timeout = asyncio.run(main())
    assert (timeout.connect, timeout.sock_connect) == (None, 3.0)


@pytest.mark.looptime
async def test_acquire_timeout_raised_at_run_time_applies(server: LocalServer) -> None:
    # The loop time is virtual (looptime): waits below are not real.
    config = PoolConfig(
        max_connections=1, acquire_timeout=0.5, connection_timeout=0.5, read_timeout=None
    )
    pool = ConnectionPool("live", config)
    try:
        session = pool.session  # the session exists before the change
        held = asyncio.create_task(get_json(session, server.url("/slow")))
        await server.wait_for("/slow", 1)
        config.acquire_timeout = 30.0
        for bypass in (False, True):
            options: dict[str, Any] = {"middlewares": ()} if bypass else {}
            queued = asyncio.create_task(session.get(server.url("/ok"), **options))
            await until_waiting(pool)
            await asyncio.sleep(10.0)  # far beyond the old 0.5 s (+ connection_timeout)
            assert not queued.done()
            assert conns(pool)["waiting"] == 1
            queued.cancel()
            with pytest.raises(asyncio.CancelledError):
                await queued
        # It gives up at the new limit, as PoolExhaustedError.
        queued = asyncio.create_task(get_json(session, server.url("/ok")))
        await until_waiting(pool)
        await asyncio.sleep(29.0)
        assert not queued.done()
        with pytest.raises(PoolExhaustedError):
            await queued
        # ...and a request that gets its connection within the new limit succeeds.
        queued = asyncio.create_task(get_json(session, server.url("/ok")))
        await until_waiting(pool)
        await asyncio.sleep(20.0)
        server.release.set()
        assert await queued == {"ok": True}
        assert await held == {"slow": True}
        assert pool.metrics()["exhaustion"]["events"] == 1
        assert requests(pool)["errors"] == {"PoolExhaustedError": 1}
    finally:
        await pool.close()


# ------------------------------------------------------------ cancellation


async def test_cancel_while_queued_is_not_a_failure(server: LocalServer) -> None:
    pool = ConnectionPool("cancel-queued", PoolConfig(max_connections=1, **FAST))
    try:
        session = pool.session
        held = asyncio.create_task(get_json(session, server.url("/slow")))
        await server.wait_for("/slow", 1)
        queued = asyncio.create_task(get_json(session, server.url("/ok")))
        await until_waiting(pool)
        queued.cancel()
        with pytest.raises(asyncio.CancelledError):
            await queued
        assert conns(pool)["waiting"] == 0
        assert requests(pool)["failed"] == 0
        assert requests(pool)["errors"] == {}
        server.release.set()
        assert await held == {"slow": True}
        assert await get_json(session, server.url("/ok")) == {"ok": True}
        assert pool.metrics()["exhaustion"]["events"] == 0
        assert conns(pool)["in_use"] == 0
    finally:
        await pool.close()


async def test_outer_cancellation_wins_over_the_acquire_deadline(
    server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    deadline = ConnectionPool._acquire_deadline

    def deadline_and_outer_cancel(self: ConnectionPool, ctx: Any) -> None:
        task = ctx.task
        deadline(self, ctx)
        task.cancel()  # somebody else cancels the request in the same loop turn

    monkeypatch.setattr(ConnectionPool, "_acquire_deadline", deadline_and_outer_cancel)
    pool = ConnectionPool("race", PoolConfig(max_connections=1, **FAST))
    try:
        held = asyncio.create_task(get_json(pool.session, server.url("/slow")))
        await server.wait_for("/slow", 1)
        queued = asyncio.create_task(get_json(pool.session, server.url("/ok")))
        with pytest.raises(asyncio.CancelledError):
            await queued  # not PoolExhaustedError: the outer cancellation stands
        assert pool.metrics()["exhaustion"]["events"] == 1
        assert requests(pool)["errors"] == {}
        server.release.set()
        assert await held == {"slow": True}
    finally:
        await pool.close()


async def test_cancel_in_flight_releases_the_connection(server: LocalServer) -> None:
    pool = ConnectionPool("cancel-flight", PoolConfig(max_connections=1, **FAST))
    try:
        session = pool.session
        task = asyncio.create_task(get_json(session, server.url("/slow")))
        await server.wait_for("/slow", 1)
        assert conns(pool)["in_use"] == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert conns(pool)["in_use"] == 0
        assert requests(pool)["failed"] == 0
        # The only slot is free again: the next request does not wait.
        assert await get_json(session, server.url("/ok")) == {"ok": True}
    finally:
        await pool.close()


async def test_many_cancellations_leave_consistent_counts(server: LocalServer) -> None:
    pool = ConnectionPool(
        "churn", PoolConfig(max_connections=3, max_connections_per_host=3, **FAST)
    )
    try:
        session = pool.session
        tasks = [asyncio.create_task(get_json(session, server.url("/slow"))) for _ in range(12)]
        await server.wait_for("/slow", 3)
        for task in tasks[::2]:
            task.cancel()
        server.release.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        cancelled = [r for r in results if isinstance(r, asyncio.CancelledError)]
        assert len(cancelled) == 6
        # The survivors either got through or hit the 0.2 s acquire deadline.
        for r in results:
            assert r == {"slow": True} or isinstance(r, asyncio.CancelledError | PoolExhaustedError)
        c = conns(pool)
        assert (c["in_use"], c["waiting"]) == (0, 0)
        req = requests(pool)
        assert req["succeeded"] + req["failed"] == 6  # cancellations are neither
    finally:
        await pool.close()


# -------------------------------------------------------- servers hanging up


async def test_server_closing_each_connection(server: LocalServer) -> None:
    pool = ConnectionPool("close", PoolConfig(**FAST))
    try:
        for _ in range(3):
            assert await get_json(pool.session, server.url("/close")) == {"closing": True}
        c = conns(pool)
        assert (c["created"], c["reused"], c["in_use"]) == (3, 0, 0)
        assert requests(pool)["succeeded"] == 3
    finally:
        await pool.close()


async def test_server_dropping_the_connection(server: LocalServer) -> None:
    pool = ConnectionPool("drop", PoolConfig(**FAST))
    try:
        with pytest.raises(aiohttp.ServerDisconnectedError):
            async with pool.session.post(server.url("/drop"), data=b"x"):
                pass
        assert server.hits["/drop"] == 1  # POST is not retried
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await get_json(pool.session, server.url("/drop"))
        assert server.hits["/drop"] == 3  # aiohttp retries an idempotent GET once
        req = requests(pool)
        assert req["errors"] == {"ServerDisconnectedError": 2}
        assert req["failed"] == 2
        assert conns(pool)["in_use"] == 0
        # The pool is still usable.
        assert await get_json(pool.session, server.url("/ok")) == {"ok": True}
    finally:
        await pool.close()


async def test_connection_refused_is_counted(unused_port: int) -> None:
    pool = ConnectionPool("refused", PoolConfig(**FAST))
    try:
        with pytest.raises(aiohttp.ClientConnectorError):
            await pool.session.get(f"http://127.0.0.1:{unused_port}/")
        assert requests(pool)["errors"] == {"ClientConnectorError": 1}
        assert conns(pool) == {
            "created": 0,
            "reused": 0,
            "open": 0,
            "in_use": 0,
            "idle": 0,
            "waiting": 0,
        }
    finally:
        await pool.close()


# ----------------------------------------------------------------- closing


async def test_close_while_requests_run_and_wait(
    server: LocalServer, leak_check: LeakCheck
) -> None:
    pool = ConnectionPool("closing", PoolConfig(max_connections=1, acquire_timeout=5.0))
    session = pool.session
    running = asyncio.create_task(get_json(session, server.url("/slow")))
    await server.wait_for("/slow", 1)
    waiting = asyncio.create_task(get_json(session, server.url("/ok")))
    await until_waiting(pool)

    await asyncio.wait_for(pool.close(), 5)  # no hang

    with pytest.raises(aiohttp.ClientConnectionError, match="'closing' was closed"):
        await running
    with pytest.raises(aiohttp.ClientConnectionError, match="'closing' was closed") as info:
        await waiting  # not a stray CancelledError
    assert not isinstance(info.value, asyncio.CancelledError)
    assert session.closed
    assert pool.closed
    assert pool.health().status == "unhealthy"
    assert conns(pool)["waiting"] == 0
    with leak_check.watch():
        del session, running, waiting
    assert leak_check.found == []


async def test_close_while_a_response_body_is_read(
    server: LocalServer, leak_check: LeakCheck
) -> None:
    pool = ConnectionPool("body", PoolConfig(**FAST))
    session = pool.session
    first_chunk = asyncio.Event()

    async def read_body(session: aiohttp.ClientSession) -> bytes:
        async with session.get(server.url("/stream")) as response:
            head = await response.content.readexactly(len(b"first chunk;"))
            first_chunk.set()
            return head + await response.read()  # the rest never comes

    reader = asyncio.create_task(read_body(session))
    await asyncio.wait_for(first_chunk.wait(), 5)
    assert conns(pool)["in_use"] == 1

    await asyncio.wait_for(pool.close(), 5)

    # A clear error instead of a read that waits forever (the 5 s only guards the test).
    with pytest.raises(aiohttp.ClientConnectionError, match="'body' was closed before") as info:
        await asyncio.wait_for(reader, 5)
    assert not isinstance(info.value, asyncio.TimeoutError)
    assert conns(pool)["in_use"] == 0
    assert session.closed
    with leak_check.watch():
        del session, reader
    assert leak_check.found == []


async def test_close_spares_bodies_that_arrived_in_full(server: LocalServer) -> None:
    pool = ConnectionPool("read-later", PoolConfig(**FAST))
    response = await pool.session.get(server.url("/ok"))  # not read by the caller yet
    assert response.connection is None  # ...but received in full with the headers
    await pool.close()
    assert await response.json() == {"ok": True}


async def test_manager_close_leaves_no_unclosed_sessions_or_connectors(
    server: LocalServer, leak_check: LeakCheck
) -> None:
    async with ConnectionPoolManager() as manager:
        for name in ("a", "b", "c"):
            pool = manager.get_pool(name, PoolConfig(**FAST))
            await asyncio.gather(*(get_json(pool.session, server.url("/ok")) for _ in range(3)))
        assert all(conns(p)["open"] >= 1 for p in manager.pools.values())
        pools = list(manager.pools.values())
    assert manager.pools == {}
    assert all(p.closed for p in pools)
    with leak_check.watch():
        del pool, pools
    assert leak_check.found == []


async def test_leak_check_does_catch_an_unclosed_session(leak_check: LeakCheck) -> None:
    # The control for the two tests above: a leaked aiohttp session is seen.
    session = aiohttp.ClientSession()
    with leak_check.watch():
        del session
    assert any("Unclosed client session" in leak for leak in leak_check.found)


# -------------------------------------------------------------------- ccxt


async def test_ccxt_exchanges_share_one_pool_session(server: LocalServer) -> None:
    pool = ConnectionPool("ccxt", PoolConfig(**FAST))
    bybit = ccxt_async.bybit({"session": pool.session})
    binance = ccxt_async.binance({"session": pool.session})
    try:
        for exchange in (bybit, binance):
            exchange.timeout_on_exit = 0  # ccxt otherwise sleeps 250 ms in close()
            assert exchange.own_session is False
            assert exchange.session is pool.session
        url = server.url("/v5/market/time")
        expected = {"retCode": 0, "retMsg": "OK", "result": {"time": 1}}
        assert await bybit.fetch(url) == expected
        assert await binance.fetch(url) == expected
        assert (conns(pool)["created"], conns(pool)["reused"]) == (1, 1)

        await bybit.close()
        assert not pool.session.closed  # ccxt does not close a session it was given
        assert bybit.session is None
        assert await binance.fetch(url) == expected
        await binance.close()
        assert not pool.session.closed
        assert await get_json(pool.session, server.url("/ok")) == {"ok": True}
        assert conns(pool)["created"] == 1
    finally:
        await bybit.close()
        await binance.close()
        await pool.close()


# ------------------------------------------------------------------ health


async def test_exhaustion_marks_unhealthy_for_a_window_of_virtual_time(
    server: LocalServer,
) -> None:
    clock = FakeClock()
    config = PoolConfig(max_connections=1, health_exhaustion_window=60.0, **FAST)
    pool = ConnectionPool("window", config, clock=clock)
    try:
        held = asyncio.create_task(get_json(pool.session, server.url("/slow")))
        await server.wait_for("/slow", 1)
        with pytest.raises(PoolExhaustedError):
            await pool.session.get(server.url("/ok"))
        server.release.set()
        await held
        assert pool.health().status == "unhealthy"
        clock.advance(59.0)
        assert pool.health().status == "unhealthy"
        clock.advance(1.5)
        health = pool.health()
        assert health == PoolHealth("healthy", 0.0, 0, health.error_rate, "within thresholds")
        assert pool.metrics()["exhaustion"]["last_seconds_ago"] == 60.5
    finally:
        await pool.close()


async def test_error_rate_over_recent_requests(server: LocalServer, unused_port: int) -> None:
    config = PoolConfig(health_window_requests=4, health_min_requests=2, **FAST)
    pool = ConnectionPool("errors", config)
    refused = f"http://127.0.0.1:{unused_port}/"
    try:
        with pytest.raises(aiohttp.ClientConnectorError):
            await pool.session.get(refused)
        assert pool.health().status == "healthy"  # one request is too few to judge
        for _ in range(2):
            with pytest.raises(aiohttp.ClientConnectorError):
                await pool.session.get(refused)
        health = pool.health()
        assert (health.status, health.error_rate) == ("unhealthy", 1.0)
        assert "error rate 1.00 >= 0.5 over the last 3 requests" in health.reason
        for _ in range(3):
            await get_json(pool.session, server.url("/ok"))
        health = pool.health()  # window of 4: fail, ok, ok, ok
        assert (health.status, health.error_rate) == ("degraded", 0.25)
        await get_json(pool.session, server.url("/ok"))
        assert pool.health().status == "healthy"
        assert pool.health().error_rate == 0.0
        # Shrinking the window at run time keeps the most recent outcomes.
        config.health_window_requests = 2
        assert pool.metrics()["requests"]["recent_window"] == 2
    finally:
        await pool.close()


async def test_5xx_responses_count_as_errors_for_health(server: LocalServer) -> None:
    config = PoolConfig(health_window_requests=10, health_min_requests=4, **FAST)
    pool = ConnectionPool("5xx", config)
    try:
        for _ in range(4):
            async with pool.session.get(server.url("/status/503")) as response:
                assert response.status == 503  # a response: nothing raises
        req = requests(pool)
        assert (req["failed"], req["recent_error_rate"], req["recent_5xx_rate"]) == (0, 0.0, 1.0)
        health = pool.health()
        assert (health.status, health.error_rate) == ("unhealthy", 1.0)
        assert health.reason == (
            "error rate 1.00 >= 0.5 over the last 4 requests (exceptions 0.00, HTTP 5xx 1.00)"
        )
        for _ in range(6):  # 4xx are the client's doing: never errors here
            async with pool.session.get(server.url("/status/404")):
                pass
        health = pool.health()
        assert (health.status, health.error_rate) == ("degraded", 0.4)
        assert "(exceptions 0.00, HTTP 5xx 0.40)" in health.reason
        config.health_count_5xx_as_errors = False  # read live
        assert pool.health() == PoolHealth("healthy", 0.0, 0, 0.0, "within thresholds")
        config.health_count_5xx_as_errors = True
        config.health_window_requests = 5  # the 5 most recent: all 404
        assert pool.health().status == "healthy"
    finally:
        await pool.close()


async def test_5xx_and_exceptions_share_the_error_rate(
    server: LocalServer, unused_port: int
) -> None:
    config = PoolConfig(health_window_requests=4, health_min_requests=4, **FAST)
    pool = ConnectionPool("mixed", config)
    try:
        with pytest.raises(aiohttp.ClientConnectorError):
            await pool.session.get(f"http://127.0.0.1:{unused_port}/")
        async with pool.session.get(server.url("/status/500")):
            pass
        for _ in range(2):
            await get_json(pool.session, server.url("/ok"))
        health = pool.health()
        assert (health.status, health.error_rate) == ("unhealthy", 0.5)
        assert "(exceptions 0.25, HTTP 5xx 0.25)" in health.reason
        config.health_count_5xx_as_errors = False
        health = pool.health()
        assert (health.status, health.error_rate) == ("degraded", 0.25)
        assert health.reason == "error rate 0.25 >= 0.1 over the last 4 requests"
    finally:
        await pool.close()


async def test_utilisation_and_waiters_degrade(server: LocalServer) -> None:
    config = PoolConfig(max_connections=2, max_connections_per_host=2, acquire_timeout=5.0)
    pool = ConnectionPool("busy", config)
    try:
        held = [asyncio.create_task(get_json(pool.session, server.url("/slow"))) for _ in range(3)]
        await server.wait_for("/slow", 2)
        await until_waiting(pool)
        health = pool.health()
        assert (health.status, health.utilisation, health.waiting) == ("degraded", 1.0, 1)
        assert "utilisation 1.00 >= 0.8" in health.reason
        assert "1 request(s) waiting" in health.reason
        config.health_degraded_utilisation = 1.0
        config.health_degraded_on_waiters = False
        assert pool.health().status == "degraded"  # still full
        server.release.set()
        await asyncio.gather(*held)
        assert pool.health().status == "healthy"
    finally:
        await pool.close()


# ------------------------------------------------------------------ manager


async def test_manager_returns_one_pool_per_name() -> None:
    async with ConnectionPoolManager() as manager:
        config = PoolConfig(max_connections=10, max_connections_per_host=5)
        pool = manager.get_pool("api", config)
        assert manager.get_pool("api") is pool
        assert manager.get_pool("api", config) is pool
        same_values = PoolConfig(max_connections=10, max_connections_per_host=5)
        assert manager.get_pool("api", same_values) is pool
        with pytest.raises(ConfigurationError) as info:
            manager.get_pool("api", PoolConfig(max_connections=20, max_connections_per_host=5))
        assert info.value.fields == ("max_connections",)
        assert "'api' already exists with max_connections=10" in str(info.value)
        assert manager.get_pool("other") is not pool
        assert sorted(manager.pools) == ["api", "other"]
        with pytest.raises(TypeError):
            manager.pools["x"] = pool  # type: ignore[index]
        assert "api" in repr(manager)


async def test_manager_default_config_is_copied_per_pool() -> None:
    default = PoolConfig(max_connections=7, max_connections_per_host=7)
    async with ConnectionPoolManager(default_config=default) as manager:
        a, b = manager.get_pool("a"), manager.get_pool("b")
        assert a.config.max_connections == b.config.max_connections == 7
        assert a.config is not default
        assert a.config is not b.config


async def test_closed_pool_is_replaced_with_the_same_config(server: LocalServer) -> None:
    async with ConnectionPoolManager() as manager:
        old = manager.get_pool("api", PoolConfig(max_connections=3, max_connections_per_host=3))
        await get_json(old.session, server.url("/ok"))
        await old.close()
        new = manager.get_pool("api")
        assert new is not old
        assert new.config.max_connections == 3
        assert await get_json(new.session, server.url("/ok")) == {"ok": True}


async def test_manager_snapshot_is_json_ready(server: LocalServer) -> None:
    async with ConnectionPoolManager() as manager:
        pool = manager.get_pool("api", PoolConfig(**FAST))
        await get_json(pool.session, server.url("/ok"))
        snapshot = manager.snapshot()
        assert list(snapshot) == ["api"]
        assert json.loads(json.dumps(snapshot)) == snapshot
        entry = snapshot["api"]
        assert entry["state"] == "open"
        assert entry["limits"] == {
            "max_connections": 50,
            "max_connections_per_host": 20,
            "acquire_timeout": 0.2,
        }
        assert entry["health"]["status"] == "healthy"
        assert entry["metrics"]["connections"]["created"] == 1


async def test_get_connection_pool_uses_the_default_registry() -> None:
    registry = ResilienceRegistry()
    previous = set_default_registry(registry)
    try:
        config = PoolConfig(max_connections=50, max_connections_per_host=20)
        pool = get_connection_pool("exchange_api", config)
        assert pool is registry.pools.get_pool("exchange_api")
        assert get_connection_pool("exchange_api") is pool
    finally:
        set_default_registry(previous)
        await registry.aclose()
    assert pool.closed


async def test_repr_shows_live_state(server: LocalServer) -> None:
    pool = ConnectionPool("shown", PoolConfig(max_connections=5, max_connections_per_host=2))
    assert repr(pool) == (
        "<ConnectionPool 'shown' unopened max_connections=5 per_host=2 in_use=0 idle=0 "
        "waiting=0 created=0 reused=0 users=0>"
    )
    try:
        async with pool.get_session() as session:
            await get_json(session, server.url("/ok"))
            await get_json(session, server.url("/ok"))
            assert repr(pool) == (
                "<ConnectionPool 'shown' open max_connections=5 per_host=2 in_use=0 idle=1 "
                "waiting=0 created=1 reused=1 users=1>"
            )
    finally:
        await pool.close()
    assert repr(pool).startswith("<ConnectionPool 'shown' closed")


# --------------------------------------------------------------- histograms


def test_histogram_buckets_are_cumulative_and_inclusive() -> None:
    from virtuoso_resilience.pools._trace import _Histogram

    histogram = _Histogram((0.1, 1.0))
    for value in (0.05, 0.1, 0.5, 1.0, 3.0):
        histogram.observe(value)
    assert histogram.as_dict() == {
        "count": 5,
        "sum": pytest.approx(4.65),
        "max": 3.0,
        "buckets": {"0.1": 2, "1.0": 4, "+Inf": 5},
    }
