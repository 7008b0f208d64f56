"""Rate limits the exchange's way: learned budgets, drained after a rejection, bans."""

from __future__ import annotations

import asyncio
from typing import Any

import ccxt.async_support as ccxt
import pytest
from exchange_venues import Factory, client_for

from virtuoso_resilience.clock import FakeClock
from virtuoso_resilience.exchange import (
    AccountLimiter,
    ExchangeBannedError,
    create_binance_resilient_config,
)
from virtuoso_resilience.simulator import Simulator

TICKERS = "/v5/market/tickers"
# ccxt's bybit: ticker cost 5. With rateLimit 2 ms ccxt's throttle allows
# 500 / 5 = 100 tickers per second; the simulator's budget is half of that.
RATE_LIMIT_MS = 2
CCXT_TICKERS_PER_S = 1000 / RATE_LIMIT_MS / 5
BUDGET = int(CCXT_TICKERS_PER_S / 2)


async def test_raw_ccxt_throttle_breaks_a_half_budget(bybit_sim: Simulator) -> None:
    """The baseline the adapter must beat: ccxt's own throttle exceeds this budget."""
    sim = bybit_sim
    raw = client_for(sim, rateLimit=RATE_LIMIT_MS, enableRateLimit=True)
    try:
        await raw.load_markets()
        sim.faults.add(f"rate_limit@{TICKERS}={BUDGET}/s")
        results = await asyncio.gather(
            *(raw.fetch_ticker("BTC/USDT") for _ in range(80)), return_exceptions=True
        )
    finally:
        await raw.close()
    assert sum(isinstance(r, ccxt.RateLimitExceeded) for r in results) > 1
    assert sim.violation_count(TICKERS) > 1


# venue -> (ccxt rateLimit ms, ccxt's cost of one fetch_ticker, the ticker path)
HALF_BUDGET_CASES = {
    "bybit": (RATE_LIMIT_MS, 5.0, TICKERS),
    "binance": (50, 0.4, "/api/v3/ticker/24hr"),  # ccxt's own rateLimit for binance
}


async def test_200_callers_keep_a_half_budget_and_use_it(
    sim: Simulator, make_resilient: Factory
) -> None:
    """Bybit announces the budget in its headers: learned before the limit, no
    violation. Binance does not: the first rejection teaches it (one violation),
    the account rate is halved and every caller waits out the Retry-After."""
    rate_limit_ms, cost, path = HALF_BUDGET_CASES[sim.dialect]
    budget = int(1000 / rate_limit_ms / cost / 2)
    adapter = await make_resilient(sim, rateLimit=rate_limit_ms)
    sim.faults.add(f"rate_limit@{path}={budget}/s")
    loop = asyncio.get_running_loop()
    before = sim.request_count(path)
    started = loop.time()
    results = await asyncio.gather(
        *(adapter.fetch_ticker("BTC/USDT") for _ in range(200)), return_exceptions=True
    )
    elapsed = loop.time() - started
    assert [r for r in results if not isinstance(r, dict)] == []  # every call completed
    assert sim.violation_count(path) <= 1
    sent = sim.request_count(path) - before
    utilisation = sent / (elapsed * budget)
    print(f"{sim.dialect}: achieved {sent / elapsed:.1f}/s of {budget}/s: {utilisation:.0%}")
    assert utilisation >= 0.8
    if sim.dialect == "bybit":
        assert adapter.limiter.endpoints[path].config.rate == pytest.approx(budget * 0.9)
    else:
        assert adapter.limiter.decreases == sim.violation_count(path)


async def test_a_rejection_drains_the_budget_for_every_caller(
    bybit_sim: Simulator, make_resilient: Factory
) -> None:
    sim = bybit_sim
    adapter = await make_resilient(sim)
    limiter = adapter.limiter
    with sim.faults.add(f"retcode@{TICKERS}=10006:next:1") as handle:
        tickers = await asyncio.gather(*(adapter.fetch_ticker("BTC/USDT") for _ in range(5)))
    assert handle.fired == 1 and len(tickers) == 5
    assert limiter.drains == 1
    # The pause held every caller of the account: it was granted nothing meanwhile.
    assert limiter.account.snapshot()["waited"] >= 1


async def test_429_retry_after_pauses_the_account(
    bybit_sim: Simulator, make_resilient: Factory
) -> None:
    sim = bybit_sim
    adapter = await make_resilient(sim)
    with sim.faults.add(f"http@{TICKERS}=429:next:1"):
        ticker = await adapter.fetch_ticker("BTC/USDT")
    assert ticker["symbol"] == "BTC/USDT"
    assert adapter.limiter.drains == 1
    assert adapter.breaker("market_data").state.value == "closed"  # a rate limit is no failure


async def test_binance_ban_stops_the_host_until_retry_after(make_resilient: Factory) -> None:
    clock = FakeClock()
    async with Simulator(seed=2, dialect="binance") as sim:
        adapter = await make_resilient(sim, create_binance_resilient_config(), clock=clock)
        with (
            sim.faults.add("http@/api/v3/ticker/24hr=418:next:1"),
            pytest.raises(ccxt.DDoSProtection),
        ):
            await adapter.fetch_ticker("BTC/USDT")
        requests = sim.request_count()
        with pytest.raises(ExchangeBannedError) as caught:
            await adapter.fetch_ticker("BTC/USDT")
        assert caught.value.retry_after > 0
        with pytest.raises(ExchangeBannedError):  # an unwrapped call: the throttle refuses it
            await adapter.exchange.fetch_ticker("BTC/USDT")
        assert sim.request_count() == requests  # nothing was sent during the ban
        assert adapter.breaker("market_data").snapshot().failures == 0
        clock.advance(adapter.config.max_ban)
        assert (await adapter.fetch_ticker("BTC/USDT"))["symbol"] == "BTC/USDT"


def _limiter(**kwargs: Any) -> AccountLimiter:
    options: dict[str, Any] = {
        "rate": 20.0,
        "capacity": 1.0,
        "safety": 0.9,
        "weight_limit_per_minute": None,
        "max_ban": 3600.0,
        "clock": FakeClock(),
    }
    options.update(kwargs)
    return AccountLimiter("test", **options)


def test_binance_weight_header_sets_the_window_budget() -> None:
    limiter = _limiter(weight_limit_per_minute=6000.0)
    limiter.observe(None, "/api/v3/ticker/24hr", 200, {"X-MBX-USED-WEIGHT-1M": "5700"})
    snapshot = limiter.account.snapshot()
    # 300 weight of 6000 left this minute: 5 % of the minute's 1200 tokens.
    assert snapshot["budget"] == pytest.approx(60.0, abs=1.0)
    assert limiter.used_weight == 5700.0


@pytest.mark.parametrize(
    "value", ["nan", "inf", "-1", "1e999", "²", "٣", "①", "", "12abc", "x" * 1_000_000]
)
def test_hostile_limit_headers_are_ignored(value: str) -> None:
    limiter = _limiter(weight_limit_per_minute=6000.0)
    limiter.observe(
        None,
        "/v5/market/tickers",
        200,
        {
            "X-Bapi-Limit": value,
            "X-Bapi-Limit-Status": value,
            "X-Bapi-Limit-Reset-Timestamp": value,
            "X-MBX-USED-WEIGHT-1M": value,
            "X-MBX-ORDER-COUNT-10S": value,
        },
    )
    assert limiter.endpoints == {}
    assert limiter.account.snapshot()["budget"] is None
    assert limiter.used_weight is None and limiter.order_counts == {}


def test_order_count_headers_are_recorded() -> None:
    limiter = _limiter()
    headers = {
        "X-MBX-USED-WEIGHT-1M": "3",
        "X-MBX-ORDER-COUNT-10S": "3",
        "x-mbx-order-count-1d": "40",
    }
    limiter.observe(None, "/api/v3/order", 200, headers)
    assert limiter.order_counts == {"10S": 3.0, "1D": 40.0}
    assert limiter.used_weight == 3.0


def test_rejections_halve_the_account_rate_and_answers_win_it_back() -> None:
    limiter = _limiter(rate=20.0, capacity=5.0)
    limiter.drain(2.0)
    assert limiter.account.config.rate == pytest.approx(20.0 * 0.5 * 0.9)
    assert limiter.account.snapshot()["pause_remaining"] == pytest.approx(2.0)
    for _ in range(100):
        limiter.observe(None, "/api/v3/time", 200, {})
    assert limiter.account.config.rate == pytest.approx(9.0 + 0.2)
    for _ in range(100_000):  # never above ccxt's own rate
        limiter.observe(None, "/api/v3/time", 200, {})
    assert limiter.account.config.rate == 20.0 and limiter.account.config.capacity == 5.0
    for _ in range(200):  # a long outage of rejections keeps a floor
        limiter.drain(0.0)
    assert limiter.account.config.rate == pytest.approx(20.0 * 0.02)


async def test_costs_above_the_burst_wait_in_chunks_and_follow_config_changes() -> None:
    clock = FakeClock(autojump=True)
    limiter = _limiter(rate=10.0, capacity=2.0, clock=clock)
    await limiter.acquire(5.0)  # 2 now, then 3 more at 10/s
    assert clock.now() == pytest.approx(0.3)
    limiter.account.config.capacity = 0.5  # changed by hand: the chunks follow
    await limiter.acquire(1.0)
    assert limiter.account.snapshot()["granted"] >= 4
    for hostile in (float("nan"), float("inf"), -1.0, 0.0):
        await limiter.acquire(hostile)  # treated as ccxt's default cost, 1


async def test_a_ban_fails_unwrapped_requests_at_once_too() -> None:
    clock = FakeClock()
    limiter = _limiter(clock=clock)
    limiter.observe(None, "/api/v3/ticker/24hr", 418, {"Retry-After": "120"})
    limiter.ban(120.0)  # the classified answer reports the same ban
    assert limiter.bans == 1
    with pytest.raises(ExchangeBannedError) as caught:
        await limiter(1.0)  # what ccxt awaits before any request, wrapped or not
    assert caught.value.retry_after == pytest.approx(120.0)
    clock.advance(120.0)
    await limiter(1.0)
    assert limiter.ban_remaining() == 0.0
