"""Shared breaker state on a private redis-server: transitions cross processes
(one link per simulated process), counting stays local."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import ccxt.async_support as ccxt
import pytest
from redis_server import RedisServer

from virtuoso_resilience import CircuitBreaker, CircuitOpenError, CircuitState
from virtuoso_resilience.exchange import ResilientExchange, create_bybit_resilient_config
from virtuoso_resilience.shared import RedisLink, SharedBreaker
from virtuoso_resilience.simulator import Simulator

TICKERS = "/v5/market/tickers"

Make = Callable[..., SharedBreaker]


@pytest.fixture
async def make(redis_server: RedisServer) -> AsyncIterator[Make]:
    made: list[tuple[SharedBreaker, RedisLink]] = []

    def factory(*, timeout: float = 0.3, trial_timeout: float = 30.0) -> SharedBreaker:
        link = RedisLink(redis_server.url, timeout=0.1, rejoin_interval=0.2)
        breaker = CircuitBreaker("venue", failure_threshold=2, success_threshold=1, timeout=timeout)
        shared = SharedBreaker(link, breaker, trial_timeout=trial_timeout, poll_interval=0.05)
        shared.start()
        made.append((shared, link))
        return shared

    yield factory
    for shared, link in made:
        await shared.close()
        await link.close()


async def until(
    check: Callable[[], bool], step: Callable[[], Awaitable[object]] | None = None
) -> None:
    for _ in range(500):
        if check():
            return
        await (step() if step is not None else asyncio.sleep(0.01))
    raise AssertionError("condition never held")


async def ok() -> str:
    return "ok"


async def boom() -> str:
    raise ConnectionError("venue down")


async def trip(shared: SharedBreaker) -> None:
    for _ in range(2):
        with pytest.raises(ConnectionError):
            await shared.call_async(boom)


async def test_an_open_seen_by_one_process_is_seen_by_all(make: Make) -> None:
    a, b, c = make(), make(), make()
    await asyncio.sleep(0.05)  # subscriptions established
    assert await b.call_async(ok) == "ok"
    await trip(a)
    assert a.state == "open"
    await until(lambda: b.state == "open" and c.state == "open")
    ran = False

    async def probe() -> str:
        nonlocal ran
        ran = True
        return "ran"

    with pytest.raises(CircuitOpenError):
        await b.call_async(probe)
    assert not ran  # rejected without running, though b saw no failure itself
    assert b.breaker.state is CircuitState.CLOSED  # b's own counting is untouched


async def test_exactly_one_process_wins_the_half_open_trial(make: Make) -> None:
    sharers = [make() for _ in range(5)]
    await asyncio.sleep(0.05)
    await trip(sharers[0])
    await until(lambda: all(s.state == "open" for s in sharers))
    await asyncio.sleep(0.35)  # the OPEN timeout passes (0.3 s)
    release = asyncio.Event()
    started = 0

    async def trial() -> str:
        nonlocal started
        started += 1
        await release.wait()
        return "recovered"

    tasks = [asyncio.create_task(s.call_async(trial)) for s in sharers]
    await until(lambda: sum(t.done() for t in tasks) == 4)
    assert started == 1
    rejected = [t for t in tasks if t.done()]
    assert all(isinstance(t.exception(), CircuitOpenError) for t in rejected)
    release.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert results.count("recovered") == 1
    assert sum(s.trials_won for s in sharers) == 1
    await until(lambda: all(s.state == "closed" for s in sharers))
    assert [await s.call_async(ok) for s in sharers] == ["ok"] * 5


async def test_a_failed_trial_opens_again_for_everyone(make: Make) -> None:
    a, b = make(), make()
    await asyncio.sleep(0.05)
    await trip(a)
    await until(lambda: b.state == "open")
    await asyncio.sleep(0.35)
    with pytest.raises(ConnectionError):
        await b.call_async(boom)  # b wins the trial; it fails
    await until(lambda: a.state == "open" and b.state == "open")
    with pytest.raises(CircuitOpenError):
        await a.call_async(ok)


async def test_a_trial_whose_process_died_expires(make: Make) -> None:
    a, b = make(trial_timeout=0.2), make(trial_timeout=0.2)
    await asyncio.sleep(0.05)
    await trip(a)
    await asyncio.sleep(0.35)
    hang = asyncio.create_task(a.call_async(asyncio.Event().wait))  # claims, never reports
    await until(lambda: a.trials_won == 1)
    hang.cancel()
    with pytest.raises(asyncio.CancelledError):
        await hang
    with pytest.raises(CircuitOpenError):
        await b.call_async(ok)  # the dead trial still holds the claim
    await asyncio.sleep(0.25)  # its claim runs out
    assert await b.call_async(ok) == "ok"
    await until(lambda: a.state == "closed")


async def test_the_state_key_is_the_fallback_to_pub_sub(make: Make) -> None:
    a, b = make(), make()
    await b.close()  # b hears nothing from now on
    await trip(a)
    await until(lambda: b.state == "open", b.refresh)


async def test_redis_down_the_local_breaker_decides(make: Make, redis_server: RedisServer) -> None:
    a, b = make(), make()
    await asyncio.sleep(0.05)
    redis_server.kill()
    assert await a.call_async(ok) == "ok"
    await trip(a)
    assert a.breaker.state is CircuitState.OPEN
    with pytest.raises(CircuitOpenError):
        await a.call_async(ok)
    assert await b.call_async(ok) == "ok"  # b is not told: no shared state without Redis
    assert b.snapshot()["shared_state"] == "closed"


async def test_an_exchange_outage_seen_by_one_adapter_stops_the_others(
    redis_server: RedisServer, quiet_sim: Simulator
) -> None:
    """Two processes' adapters (one link each) share the market-data breaker."""
    sim = quiet_sim
    made = []
    for _ in range(2):
        raw = ccxt.bybit({**sim.ccxt_config(), "rateLimit": 1})
        raw.timeout_on_exit = 0
        config = create_bybit_resilient_config()
        config.market_data.failure_threshold = 2
        config.market_data.max_attempts = 1
        adapter = ResilientExchange(raw, config)
        await adapter.load_markets()
        link = RedisLink(redis_server.url, timeout=0.1)
        shared = SharedBreaker(link, adapter.breaker("market_data"), poll_interval=0.05)
        shared.start()
        adapter.share_breaker("market_data", shared.call_async)
        made.append((adapter, shared, link))
    (a, a_shared, _), (b, b_shared, _) = made
    await asyncio.sleep(0.05)
    try:
        assert (await b.fetch_ticker("BTC/USDT"))["symbol"] == "BTC/USDT"
        with sim.faults.add(f"http@{TICKERS}=503"):
            for _ in range(2):
                with pytest.raises(ccxt.ExchangeNotAvailable):
                    await a.fetch_ticker("BTC/USDT")
            await until(lambda: b_shared.state == "open")
            sent = sim.request_count(TICKERS)
            with pytest.raises(CircuitOpenError):
                await b.fetch_ticker("ETH/USDT")  # never fetched: no stale copy to serve
            assert sim.request_count(TICKERS) == sent  # b sent nothing
        assert b.breaker("market_data").state is CircuitState.CLOSED  # counted nothing itself
        assert a_shared.snapshot()["shared_state"] == "open"
    finally:
        for adapter, shared, link in made:
            await shared.close()
            await link.close()
            await adapter.close()
