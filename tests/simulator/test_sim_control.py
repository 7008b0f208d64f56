"""The control API over real HTTP, configuration, lifecycle and cancellation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import ccxt.async_support as ccxt
import pytest

from virtuoso_resilience.errors import ConfigurationError
from virtuoso_resilience.simulator import FaultKind, FaultSpecError, Simulator, SimulatorConfig

Eventually = Callable[[Callable[[], bool]], Awaitable[None]]


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def call(
    http: aiohttp.ClientSession, sim: Simulator, method: str, path: str, **kw: Any
) -> tuple[int, Any]:
    async with http.request(method, sim.base_url + path, **kw) as response:
        return response.status, await response.json()


async def test_faults_round_trip_over_http(
    sim: Simulator, http: aiohttp.ClientSession, exchange: Any
) -> None:
    status, body = await call(http, sim, "POST", "/__sim__/faults", data="http=503,reset=0.5")
    assert status == 201 and body == {"ids": [1, 2], "faults": ["http=503", "reset=0.5"]}
    status, body = await call(
        http, sim, "POST", "/__sim__/faults", json={"spec": "latency=10ms..20ms"}
    )
    assert status == 201 and body["ids"] == [3]
    status, body = await call(
        http,
        sim,
        "POST",
        "/__sim__/faults",
        json={"kind": "retcode", "retcode": 10016, "endpoint": "/v5/order/*", "count": 2},
    )
    assert status == 201 and body["faults"] == ["retcode@/v5/order/*=10016#2"]
    status, body = await call(http, sim, "GET", "/__sim__/faults")
    assert [f["id"] for f in body["faults"]] == [1, 2, 3, 4]
    assert body["faults"][3]["remaining"] == 2 and body["faults"][3]["active"] is True

    with pytest.raises(ccxt.ExchangeNotAvailable):
        await exchange.fetch_time()  # the 503 fault (first in order) wins
    status, body = await call(http, sim, "DELETE", "/__sim__/faults/1")
    assert status == 200 and body == {"removed": 1}
    status, body = await call(http, sim, "DELETE", "/__sim__/faults/1")
    assert status == 404
    status, body = await call(http, sim, "DELETE", "/__sim__/faults")
    assert body == {"removed": 3}
    assert await exchange.fetch_time() is not None


@pytest.mark.parametrize(
    ("payload", "needle"),
    [
        ({"data": "latncy=1s"}, "unknown key 'latncy'"),
        ({"json": {"spec": "http=99"}}, "400..599"),
        ({"json": {"kind": "boom"}}, "allowed kinds"),
        ({"json": [{"kind": "reset", "probability": "often"}]}, "must be a number"),
        ({"data": "{not json"}, "not valid JSON"),
        ({"data": ""}, "empty body"),
    ],
)
async def test_bad_fault_specs_are_400_with_explanation(
    sim: Simulator, http: aiohttp.ClientSession, payload: dict[str, Any], needle: str
) -> None:
    status, body = await call(http, sim, "POST", "/__sim__/faults", **payload)
    assert status == 400 and needle in body["error"]
    assert len(sim.faults) == 0


async def test_stats_reset_and_market_controls(
    sim: Simulator, http: aiohttp.ClientSession, exchange: Any
) -> None:
    await exchange.create_order("ETH/USDT", "limit", "buy", 1, 3000)
    status, stats = await call(http, sim, "GET", "/__sim__/stats")
    assert status == 200
    assert stats["seed"] == 1 and stats["orders_created"] == 1
    assert stats["by_path"]["/v5/order/create"] == 1
    assert stats["requests_total"] == sim.request_count()
    assert all("/__sim__" not in p for p in stats["by_path"])  # control calls not counted

    status, market = await call(
        http, sim, "POST", "/__sim__/market/price", json={"symbol": "ETHUSDT", "price": 2900}
    )
    assert status == 200 and market["orders"] == {"Filled": 1}
    assert market["balances"]["ETH"] == "11"
    status, market = await call(http, sim, "POST", "/__sim__/market/tick", json={"steps": 3})
    assert status == 200 and market["prices"]["ETHUSDT"] != 2900
    status, _ = await call(http, sim, "POST", "/__sim__/market/price", json={"symbol": "X"})
    assert status == 400

    status, body = await call(http, sim, "POST", "/__sim__/reset", json={"seed": 9})
    assert status == 200 and body == {"seed": 9}
    status, stats = await call(http, sim, "GET", "/__sim__/stats")
    assert stats["requests_total"] == 0 and stats["orders_created"] == 0 and stats["seed"] == 9
    status, market = await call(http, sim, "GET", "/__sim__/market")
    assert market["prices"]["ETHUSDT"] == 3500.0 and market["balances"]["USDT"] == "100000"
    status, body = await call(http, sim, "GET", "/__sim__/nothing")
    assert status == 404
    status, body = await call(http, sim, "GET", "/__sim__/health")
    assert body == {"status": "ok", "seed": 9}


async def test_reset_reinstalls_configured_faults() -> None:
    async with Simulator(seed=2, faults="reset@/v5/order/*=0.5") as sim:
        sim.faults.add("hang=1")
        sim.reset()
        assert [f.describe() for f in sim.faults] == ["reset@/v5/order/*=0.5"]


def test_config_is_validated_and_masks_the_secret() -> None:
    with pytest.raises(ConfigurationError) as caught:
        SimulatorConfig(port=70000)
    assert caught.value.fields == ("port",) and "65535" in str(caught.value)
    with pytest.raises(ConfigurationError) as caught:
        SimulatorConfig(faults="latency=soon")
    assert "latency=soon" in str(caught.value)
    config = SimulatorConfig(api_secret="top-secret")
    with pytest.raises(ConfigurationError):
        config.volatility = 1.0
    assert config.volatility == 0.0005
    assert "top-secret" not in repr(config)
    with pytest.raises(ConfigurationError):
        Simulator(leverage=0)


async def test_lifecycle_and_repr() -> None:
    sim = Simulator(seed=4)
    assert "not started" in repr(sim)
    with pytest.raises(RuntimeError):
        _ = sim.base_url
    await sim.start()
    try:
        with pytest.raises(RuntimeError):
            await sim.start()
        assert sim.running and sim.base_url.startswith("http://127.0.0.1:")
        text = repr(sim)
        assert "seed=4" in text and "requests=0" in text and sim.api_secret not in text
    finally:
        await sim.stop()
    await sim.stop()  # idempotent
    assert not sim.running


async def test_stop_releases_hanging_requests(
    sim: Simulator, http: aiohttp.ClientSession, eventually: Eventually
) -> None:
    sim.faults.add("hang=1")
    request = asyncio.create_task(http.get(sim.base_url + "/v5/market/time"))
    await eventually(lambda: sim.stats.faults_fired.get("hang", 0) == 1)
    assert "hanging=1" in repr(sim)
    await sim.stop()
    with pytest.raises(aiohttp.ClientError):
        await request
    assert "hanging=0" in repr(sim)


async def test_client_cancelling_during_latency_books_nothing(
    sim: Simulator, exchange: Any, eventually: Eventually
) -> None:
    """A caller that gives up (cancellation) while the request is still 'in flight' to the
    exchange: the server-side handler is cancelled too, no order is booked."""
    sim.inject("latency", latency=30.0, endpoint="/v5/order/create")
    task = asyncio.create_task(exchange.create_order("ETH/USDT", "limit", "buy", 1, 3000))
    await eventually(lambda: sim.request_count("/v5/order/create") == 1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    sim.faults.clear()
    assert await exchange.fetch_open_orders("ETH/USDT") == []
    assert sim.market.orders_created == 0


async def test_restart_does_not_stack_configured_faults() -> None:
    sim = Simulator(seed=1, faults="latency=100ms,error_rate=0.1")
    for _ in range(3):
        await sim.start()
        try:
            assert [f.describe() for f in sim.faults] == ["latency=100ms", "http=500:0.1"]
        finally:
            await sim.stop()
    plan = sim.faults.plan_before("/v5/market/time", False)
    assert plan is not None and plan.latency == pytest.approx(0.1)
    # faults removed by the user stay removed across a restart; reset() reinstalls them
    sim.faults.clear()
    async with sim:
        assert len(sim.faults) == 0
        sim.reset()
        assert len(sim.faults) == 2


async def test_reset_before_start_installs_configured_faults_once() -> None:
    sim = Simulator(seed=1, faults="reset@/v5/order/*=0.5")
    sim.reset()
    async with sim:
        assert [f.describe() for f in sim.faults] == ["reset@/v5/order/*=0.5"]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ('{"symbol": "BTCUSDT", "price": NaN}', "price must be a finite number"),
        ('{"symbol": "BTCUSDT", "price": Infinity}', "price must be a finite number"),
        ('{"symbol": "BTCUSDT", "price": -Infinity}', "price must be a finite number"),
        ('{"symbol": "BTCUSDT", "price": 1e999999}', "price must be a finite number"),
        ('{"symbol": "BTCUSDT", "price": 1' + "1" * 400 + ".5}", "price must be a finite number"),
        ('{"symbol": "BTCUSDT", "price": 1e400}', "price must be a finite number"),
        ('{"symbol": "BTCUSDT", "price": 1' + "0" * 400 + "}", "price must be a finite number"),
        ('{"symbol": "BTCUSDT", "price": 0}', "price must be a finite number in 1e-08..1e+15"),
        ('{"symbol": "BTCUSDT", "price": -0.0}', "price must be a finite number in 1e-08..1e+15"),
        ('{"symbol": "BTCUSDT", "price": "70000"}', "price must be a finite number"),
        ('{"symbol": "BTCUSDT", "price": true}', "price must be a finite number"),
        ('{"symbol": 5, "price": 70000}', "symbol must be a string"),
    ],
)
async def test_control_price_rejects_non_finite_prices(
    sim: Simulator, http: aiohttp.ClientSession, body: str, needle: str
) -> None:
    status, answer = await call(http, sim, "POST", "/__sim__/market/price", data=body)
    assert status == 400 and needle in answer["error"]
    assert sim.market.price("BTCUSDT") == 65000.0
    async with http.get(sim.base_url + "/v5/market/tickers?category=spot&symbol=BTCUSDT") as r:
        assert r.status == 200 and (await r.json())["retCode"] == 0


def test_configured_prices_must_be_finite() -> None:
    for prices in ({"BTC": float("inf")}, {"BTC": float("nan")}, {"BTC": 1e300}):
        with pytest.raises(ConfigurationError) as caught:
            SimulatorConfig(prices=prices)
        assert caught.value.fields == ("prices",)
    with pytest.raises(ConfigurationError) as caught:
        SimulatorConfig(balances={"USDT": float("inf")})
    assert caught.value.fields == ("balances",)


def test_inject_unknown_kind_lists_the_allowed_kinds() -> None:
    sim = Simulator(seed=1)
    for kind in ("bogus", "error_rate", 5):
        with pytest.raises(FaultSpecError) as caught:
            sim.inject(kind)  # type: ignore[arg-type]
        message = str(caught.value)
        assert repr(kind) in message
        assert "allowed kinds: latency, http, maintenance, rate_limit, retcode" in message
    assert len(sim.faults) == 0
    handle = sim.inject("reset", count=1)
    assert handle.faults[0].kind is FaultKind.RESET


async def test_spent_faults_leave_the_control_listing(
    sim: Simulator, http: aiohttp.ClientSession, exchange: Any
) -> None:
    await call(http, sim, "POST", "/__sim__/faults", data="retcode@/v5/market/time=10016#1")
    with pytest.raises(ccxt.ExchangeError, match="10016"):
        await exchange.fetch_time()
    status, body = await call(http, sim, "GET", "/__sim__/faults")
    assert status == 200 and body == {"faults": []}
    status, stats = await call(http, sim, "GET", "/__sim__/stats")
    assert stats["faults_fired"] == {"retcode": 1}


async def test_window_only_faults_with_a_count_are_400(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    for fault in (
        {"kind": "maintenance", "count": 2},
        {"kind": "rate_limit", "limit": 5, "count": 3},
    ):
        status, body = await call(http, sim, "POST", "/__sim__/faults", json=fault)
        assert status == 400 and "not a count" in body["error"]
    assert len(sim.faults) == 0


async def test_control_api_answers_malformed_bodies_with_400(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    status, body = await call(http, sim, "POST", "/__sim__/faults", data=b"reset=\xff")
    assert status == 400 and "not valid UTF-8" in body["error"]
    status, body = await call(
        http, sim, "POST", "/__sim__/market/tick", json={"symbol": ["BTCUSDT"]}
    )
    assert status == 400 and "symbol must be a string" in body["error"]
    assert len(sim.faults) == 0
