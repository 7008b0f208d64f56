"""Binance request weight, order counts and IP bans: the limiter alone and through ccxt.

Budget windows run on a ``FakeClock``: the tests move time, they never wait.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import ccxt.async_support as ccxt
import pytest

from virtuoso_resilience.clock import FakeClock
from virtuoso_resilience.errors import ConfigurationError
from virtuoso_resilience.simulator import BinanceLimits, Simulator, SimulatorConfig
from virtuoso_resilience.simulator._binance_limits import (
    BinanceLimiter,
    interval_label,
    request_weight,
)


def test_weights_follow_binance_per_endpoint_and_parameter() -> None:
    assert request_weight("GET", "/api/v3/ping", {}) == 1
    assert request_weight("GET", "/api/v3/exchangeInfo", {}) == 20
    assert request_weight("GET", "/api/v3/depth", {}) == 5
    assert request_weight("GET", "/api/v3/depth", {"limit": "100"}) == 5
    assert request_weight("GET", "/api/v3/depth", {"limit": "101"}) == 25
    assert request_weight("GET", "/api/v3/depth", {"limit": "1000"}) == 50
    assert request_weight("GET", "/api/v3/depth", {"limit": "5000"}) == 250
    assert request_weight("GET", "/api/v3/depth", {"limit": "٣"}) == 5  # not a number: default
    assert request_weight("GET", "/api/v3/ticker/24hr", {"symbol": "BTCUSDT"}) == 2
    assert request_weight("GET", "/api/v3/ticker/24hr", {}) == 80
    symbols = '["' + '","'.join(f"S{i}" for i in range(21)) + '"]'
    assert request_weight("GET", "/api/v3/ticker/24hr", {"symbols": symbols}) == 40
    assert request_weight("GET", "/api/v3/openOrders", {"symbol": "BTCUSDT"}) == 6
    assert request_weight("GET", "/api/v3/openOrders", {}) == 80
    assert request_weight("GET", "/api/v3/order", {}) == 4
    assert request_weight("POST", "/api/v3/order", {}) == 1
    assert request_weight("GET", "/api/v3/account", {}) == 20
    assert request_weight("GET", "/nowhere", {}) == 1


def test_interval_labels() -> None:
    assert [interval_label(s) for s in (60.0, 10.0, 1.0, 3600.0, 86400.0, 120.0, 0.2)] == [
        "1M",
        "10S",
        "1S",
        "1H",
        "1D",
        "2M",
        "1S",
    ]


def test_fixed_window_refuses_over_budget_and_resets_at_the_boundary(clock: FakeClock) -> None:
    limiter = BinanceLimiter(clock, BinanceLimits(weight_limit=10, ban_after=3))
    clock.advance(30.0)  # mid-window: the window is [0, 60)
    assert limiter.charge("ip:a", 6) is None
    assert limiter.charge("ip:a", 4) is None
    assert limiter.used_weight("ip:a") == 10
    refused = limiter.charge("ip:a", 1)
    assert refused is not None
    assert (refused.status, refused.code, refused.rule, refused.retry_after) == (
        429,
        -1003,
        "weight",
        30,
    )
    assert limiter.used_weight("ip:a") == 10  # a refused request consumes nothing
    assert limiter.charge("ip:b", 10) is None  # per IP
    clock.advance(30.0)
    assert limiter.used_weight("ip:a") == 0
    assert limiter.charge("ip:a", 10) is None


def test_hammering_while_limited_earns_a_ban_that_doubles(clock: FakeClock) -> None:
    limiter = BinanceLimiter(clock, BinanceLimits(weight_limit=1, ban_after=2, ban_seconds=100.0))
    assert limiter.charge("ip:a", 1) is None
    first = limiter.charge("ip:a", 1)
    assert first is not None and first.status == 429
    second = limiter.charge("ip:a", 1)  # strike 1 of 2: still a 429
    assert second is not None and second.status == 429
    banned = limiter.charge("ip:a", 1)  # strike 2: banned
    assert banned is not None
    assert (banned.status, banned.code, banned.rule, banned.retry_after) == (418, -1003, "ban", 100)
    clock.advance(99.5)
    still = limiter.charge("ip:a", 1)
    assert still is not None and still.status == 418 and still.retry_after == 1
    clock.advance(0.5)
    assert limiter.charge("ip:a", 1) is None  # ban over, new window
    clock.advance(60.0)
    assert limiter.charge("ip:a", 1) is None
    for _ in range(2):
        assert limiter.charge("ip:a", 1) is not None
    again = limiter.charge("ip:a", 1)
    assert again is not None and again.status == 418 and again.retry_after == 200
    assert "banned=1" in repr(limiter)


def test_a_ban_lasts_three_days_at_most(clock: FakeClock) -> None:
    limiter = BinanceLimiter(clock, BinanceLimits(weight_limit=1, ban_seconds=200_000.0))
    for _ in range(3):
        assert limiter.charge("ip:a", 1) is None
        assert limiter.charge("ip:a", 1) is not None  # 429
        banned = limiter.charge("ip:a", 1)
        assert banned is not None and banned.status == 418
        assert banned.retry_after <= 3 * 86400
        clock.advance(banned.retry_after + 60.0)
    assert banned.retry_after == 3 * 86400


def test_order_counts_per_10_seconds_and_day(clock: FakeClock) -> None:
    limiter = BinanceLimiter(clock, BinanceLimits(order_limit_10s=2, order_limit_1d=3))
    assert limiter.order() is None
    assert limiter.order() is None
    refused = limiter.order()
    assert refused is not None
    assert (refused.status, refused.code, refused.rule) == (429, -1015, "orders_10s")
    assert "100" not in refused.message and "2 orders per 10 SECOND" in refused.message
    assert limiter.order_counts() == (2, 2)
    clock.advance(10.0)
    assert limiter.order() is None
    daily = limiter.order()
    assert daily is not None and daily.rule == "orders_1d"
    assert limiter.order_counts() == (1, 3)


def test_disabled_limits_count_but_never_refuse(clock: FakeClock) -> None:
    limiter = BinanceLimiter(clock, BinanceLimits(weight_limit=1, order_limit_10s=1), enabled=False)
    for _ in range(5):
        assert limiter.charge("ip:a", 1) is None
        assert limiter.order() is None
    assert limiter.used_weight("ip:a") == 5
    assert limiter.order_counts() == (5, 5)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("weight_limit", 0),
        ("weight_period", float("nan")),
        ("weight_period", -0.0),
        ("ban_seconds", float("inf")),
        ("ban_seconds", 4 * 86400.0),
        ("ban_after", True),
        ("order_limit_10s", "100"),
    ],
)
def test_bad_limits_are_refused_naming_the_field(field: str, value: Any) -> None:
    with pytest.raises(ConfigurationError, match=field):
        BinanceLimits(**{field: value})


def test_dialect_is_validated() -> None:
    with pytest.raises(ConfigurationError, match="dialect"):
        SimulatorConfig(dialect="kraken")  # type: ignore[arg-type]
    assert SimulatorConfig().dialect == "bybit"


@pytest.fixture
async def limited(clock: FakeClock) -> AsyncIterator[Simulator]:
    limits = BinanceLimits(weight_limit=3, order_limit_10s=1, ban_seconds=120.0)
    async with Simulator(seed=1, dialect="binance", binance=limits, clock=clock) as simulator:
        yield simulator


@pytest.fixture
async def client(limited: Simulator) -> AsyncIterator[Any]:
    exchange = ccxt.binance({**limited.ccxt_config(), "enableRateLimit": False})
    exchange.timeout_on_exit = 0
    yield exchange
    await exchange.close()


async def test_over_the_weight_budget_ccxt_raises_ddos_protection_then_the_ban(
    client: Any, limited: Simulator, clock: FakeClock
) -> None:
    for _ in range(3):
        await client.fetch_time()
    assert client.last_response_headers["X-MBX-USED-WEIGHT-1M"] == "3"
    with pytest.raises(ccxt.DDoSProtection, match="-1003") as caught:
        await client.fetch_time()
    # ccxt's binance raises DDoSProtection for 429, not its sibling RateLimitExceeded
    assert not isinstance(caught.value, ccxt.RateLimitExceeded)
    headers = client.last_response_headers
    assert headers["Retry-After"] == "60"
    assert headers["X-MBX-USED-WEIGHT-1M"] == "3"
    assert [v.rule for v in limited.violations] == ["weight"]
    with pytest.raises(ccxt.DDoSProtection, match=r"418 .*IP banned"):
        await client.fetch_time()  # still limited: banned
    assert client.last_response_headers["Retry-After"] == "120"
    assert [v.rule for v in limited.violations] == ["weight", "ban"]
    assert limited.violation_count("/api/v3/time") == 2
    clock.advance(120.0)
    assert isinstance(await client.fetch_time(), int)


async def test_order_count_limit_through_ccxt(clock: FakeClock) -> None:
    limits = BinanceLimits(order_limit_10s=1)
    async with Simulator(seed=2, dialect="binance", clock=clock, binance=limits) as sim:
        exchange = ccxt.binance({**sim.ccxt_config(), "enableRateLimit": False})
        exchange.timeout_on_exit = 0
        try:
            await exchange.load_markets()
            await exchange.create_order("BTC/USDT", "limit", "buy", 0.01, 50000)
            assert exchange.last_response_headers["X-MBX-ORDER-COUNT-10S"] == "1"
            with pytest.raises(ccxt.DDoSProtection, match="-1015"):
                await exchange.create_order("BTC/USDT", "limit", "buy", 0.01, 50000)
            assert [v.rule for v in sim.violations] == ["orders_10s"]
            clock.advance(10.0)
            await exchange.create_order("BTC/USDT", "limit", "buy", 0.01, 50000)
            assert sim.stats.orders_created == 2
        finally:
            await exchange.close()


async def test_without_rate_limits_nothing_is_refused_and_headers_stay(clock: FakeClock) -> None:
    limits = BinanceLimits(weight_limit=1)
    async with (
        Simulator(dialect="binance", binance=limits, rate_limits=False, clock=clock) as sim,
        aiohttp.ClientSession() as http,
    ):
        for expected in range(1, 6):
            async with http.get(sim.base_url + "/api/v3/ping") as response:
                assert response.status == 200
                assert await response.json() == {}
                assert response.headers["X-MBX-USED-WEIGHT-1M"] == str(expected)
        assert sim.violations == ()


async def test_a_rate_limit_fault_adds_a_budget(clock: FakeClock) -> None:
    async with (
        Simulator(dialect="binance", clock=clock, faults="rate_limit@/api/v3/time=2/s") as sim,
        aiohttp.ClientSession() as http,
    ):
        statuses = []
        for _ in range(3):
            async with http.get(sim.base_url + "/api/v3/time") as response:
                statuses.append(response.status)
                body = await response.json()
        assert statuses == [200, 200, 429]
        assert body["code"] == -1003
        assert response.headers["Retry-After"] == "1"
        assert sim.violations[0].rule.startswith("fault#")
        async with http.get(sim.base_url + "/api/v3/ping") as response:
            assert response.status == 200  # other paths are not under the fault's budget
