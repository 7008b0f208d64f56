"""Fuzz every route: no 5xx that no fault asked for, and every body strict JSON.

Hypothesis builds requests for every Bybit route in the routes table (query
strings and JSON bodies, signed so authentication passes and the business
logic is reached) and for every control endpoint, mixing plausible values
(so requests get deep) with hostile ones: NaN, +-inf, 1e999999, 400-digit
numbers, -0.0, bools, non-ASCII digits, long strings, deep nesting. No
fault is installed on the Bybit routes, so any 5xx is a bug. Examples are
bounded (``max_examples``) so the suite stays fast.

Hypothesis runs in a worker thread; each example's request runs on the
test's event loop, where the simulator serves it.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from virtuoso_resilience.simulator import Simulator
from virtuoso_resilience.simulator._routes import ROUTES

BybitCall = Callable[..., Awaitable[tuple[int, Any]]]

_KLINE = ("category", "symbol", "interval", "start", "end", "limit")
_QUERY = ("category", "symbol", "orderId", "orderLinkId", "openOnly", "orderStatus", "limit")
ROUTE_PARAMS: dict[str, tuple[str, ...]] = {
    "/v5/market/time": (),
    "/v5/system/status": (),
    "/v5/market/instruments-info": ("category", "symbol", "status"),
    "/v5/market/tickers": ("category", "symbol"),
    "/v5/market/orderbook": ("category", "symbol", "limit"),
    "/v5/market/kline": _KLINE,
    "/v5/market/mark-price-kline": _KLINE,
    "/v5/market/index-price-kline": _KLINE,
    "/v5/user/query-api": (),
    "/v5/account/info": (),
    "/v5/asset/coin/query-info": ("coin",),
    "/v5/account/wallet-balance": ("accountType", "coin"),
    "/v5/order/realtime": (*_QUERY, "cursor"),
    "/v5/order/history": (*_QUERY, "cursor"),
    "/v5/order/create": (
        "category",
        "symbol",
        "side",
        "orderType",
        "qty",
        "price",
        "timeInForce",
        "orderLinkId",
        "reduceOnly",
        "marketUnit",
    ),
    "/v5/order/cancel": ("category", "symbol", "orderId", "orderLinkId"),
}
"""The parameters each route reads (the fuzz covers every route of the table)."""

PLAUSIBLE: dict[str, list[str]] = {
    "category": ["spot", "linear", "spot", "linear", "inverse", "option"],
    "symbol": ["BTCUSDT", "ETHUSDT", "SOLUSDT", "BTCUSDT", "ETHUSDT", "XYZUSDT"],
    "status": ["Trading", "PreLaunch"],
    "interval": ["1", "60", "D", "W", "M", "7"],
    "start": ["0", "1700000000000"],
    "end": ["1700000000000", "253402300799999"],
    "limit": ["1", "50", "200", "1000"],
    "coin": ["USDT", "BTC", "BTC,ETH"],
    "accountType": ["UNIFIED", "SPOT"],
    "orderId": ["", "00000000-0000-0000-0000-000000000001"],
    "orderLinkId": ["fuzz-1", "fuzz-2", "fuzz-3", "x" * 37],
    "openOnly": ["0", "1"],
    "orderStatus": ["New", "Filled", "Cancelled"],
    "cursor": ["0", "20"],
    "side": ["Buy", "Sell"],
    "orderType": ["Market", "Limit"],
    "qty": ["0.001", "0.01", "1", "150", "1000"],
    "price": ["65000", "60000.5", "70000", "0.01"],
    "timeInForce": ["GTC", "IOC", "FOK", "PostOnly"],
    "reduceOnly": ["true", "false"],
    "marketUnit": ["baseCoin", "quoteCoin"],
}
# Query strings stay under aiohttp's 8190-byte request line (beyond it aiohttp
# itself answers 400 before the simulator sees the request: docs/simulator.md);
# JSON bodies also get a 5000-digit number.
HOSTILE_TEXT = [
    "NaN",
    "Infinity",
    "-Infinity",
    "sNaN",
    "1e999999",
    "-1e999999",
    "1e30",
    "9" * 40,
    "9" * 400,
    "-" + "9" * 400,
    "9" * 400 + ".5",
    "0." + "0" * 398 + "1",
    "-0.0",
    "-1",
    "0",
    "²",
    "①",
    "٣",
    "true",
    "",
    " ",
    "a" * 2000,
    "\u202e",
    "1_000",
    "0x10",
]
HOSTILE_JSON = [
    "NaN",
    "Infinity",
    "-Infinity",
    "1e999999",
    "9" * 400,
    "9" * 400 + ".5",
    "1e300",
    "-0.0",
    "true",
    "false",
    "null",
    "0",
    "[]",
    "{}",
    "[" * 50 + "]" * 50,
    "[" * 5000 + "]" * 5000,
]
_STRUCTURAL = {"category", "symbol", "side", "orderType", "interval", "accountType"}
"""Parameters that must be right for a request to get deep: mostly plausible values."""


def _value(rnd: random.Random, name: str, texts: list[str]) -> str:
    hostile = rnd.random() < (0.05 if name in _STRUCTURAL else 0.3)
    return rnd.choice(texts if hostile else PLAUSIBLE.get(name, ["1"]))


def _names(rnd: random.Random, names: tuple[str, ...]) -> list[str]:
    """Most of a route's parameters (the structural ones with probability 0.95), shuffled."""
    chosen = [n for n in names if rnd.random() < (0.95 if n in _STRUCTURAL else 0.8)]
    rnd.shuffle(chosen)
    return chosen


def _query(rnd: random.Random, names: tuple[str, ...], noise: str) -> str:
    pairs = [(name, _value(rnd, name, [*HOSTILE_TEXT, noise])) for name in _names(rnd, names)]
    if rnd.random() < 0.2:
        pairs.append((rnd.choice(["extra", "²", "limit"]), noise))
    return "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in pairs)


def _json_body(rnd: random.Random, names: tuple[str, ...], noise: str) -> str:
    if rnd.random() < 0.1:  # a whole body that is not an object, or not JSON
        return rnd.choice(["", "garbage", "[]", "null", "[" * 100_000, *HOSTILE_JSON])
    items = []
    for name in _names(rnd, names):
        if rnd.random() < 0.03:
            literal = rnd.choice(HOSTILE_JSON)
        else:
            literal = json.dumps(_value(rnd, name, [*HOSTILE_TEXT, "9" * 5000, noise]))
        items.append(f"{json.dumps(name)}: {literal}")
    return "{" + ", ".join(items) + "}"


@st.composite
def bybit_requests(draw: st.DrawFn, path: str) -> tuple[str, str, str]:
    # Structure from a Random seeded by hypothesis (true distribution, replayable);
    # free text from hypothesis itself.
    rnd = draw(st.randoms(use_true_random=True))
    noise = draw(st.text(max_size=12))
    route = ROUTES[path]
    method = route.method if rnd.random() < 0.95 else rnd.choice(["GET", "POST"])
    names = ROUTE_PARAMS[path]
    if method == "GET":
        return method, _query(rnd, names, noise), ""
    return method, "", _json_body(rnd, names, noise)


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    """No budgets: every example reaches the business logic, not a 429."""
    async with Simulator(seed=5, rate_limits=False) as simulator:
        yield simulator


def test_the_fuzz_covers_every_route() -> None:
    assert set(ROUTE_PARAMS) == set(ROUTES)


@pytest.mark.parametrize("path", sorted(ROUTES))
async def test_fuzz_every_bybit_route(sim: Simulator, bybit: BybitCall, path: str) -> None:
    loop = asyncio.get_running_loop()
    codes: set[int] = set()

    @settings(
        max_examples=80,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(bybit_requests(path))
    def check(request: tuple[str, str, str]) -> None:
        method, query, body = request
        call = bybit(method, path, query=query, body=body)  # asserts < 500 and strict JSON
        status, answer = asyncio.run_coroutine_threadsafe(call, loop).result(timeout=60)
        assert isinstance(answer["retCode"], int), answer
        assert isinstance(answer["retMsg"], str) and len(answer["retMsg"]) < 1000, answer
        if method != ROUTES[path].method:
            assert (status, answer["retCode"]) == (404, 10017)
        else:
            assert status == 200, (status, answer)
        codes.add(answer["retCode"])

    await asyncio.to_thread(check)
    assert codes  # every example was answered
    assert sim.stats.faults_fired == {}


_CONTROL_KEYS = [
    "spec",
    "faults",
    "kind",
    "seed",
    "symbol",
    "price",
    "steps",
    "probability",
    "count",
    "start",
    "duration",
    "latency",
    "latency_max",
    "status",
    "retcode",
    "limit",
    "period",
    "delay",
    "endpoint",
    "message",
]
_CONTROL_PLAUSIBLE = [
    '"http"',
    '"latency"',
    '"rate_limit"',
    '"late_response"',
    '"BTCUSDT"',
    '"http=503:0.5"',
    '"/v5/market/*"',
    "1",
    "2",
    "0.5",
    "503",
    "70000",
]
_SPECS = [
    "http=503",
    "latency=1ms..2ms",
    "rate_limit=5/s",
    "late_response=1ms",
    "reset=0.5#2",
    "http=²",
    "reset=1#①",
    "latency=٣s",
    "late_response=1e999999s",
    "rate_limit=1/" + "9" * 400 + "s",
    "retcode=" + "9" * 40,
    "error_rate=nan",
    "maintenance=on~1h..2h",
    ",,,",
    "x" * 5000,
]


@st.composite
def _control_body(draw: st.DrawFn) -> tuple[str, str]:
    shape = draw(st.integers(0, 4))
    if shape == 0:
        return draw(st.sampled_from(_SPECS)), "text/plain"
    if shape == 1:
        return draw(st.sampled_from(["", "garbage", "[" * 100_000, *HOSTILE_JSON])), "text/plain"
    keys = draw(st.lists(st.sampled_from(_CONTROL_KEYS), unique=True, max_size=4))
    values = st.sampled_from(HOSTILE_JSON + _CONTROL_PLAUSIBLE)
    items = ", ".join(f'"{k}": {draw(values)}' for k in keys)
    body = "{" + items + "}"
    if shape == 3:
        body = "[" + body + "]"
    elif shape == 4:
        body = '{"faults": [' + body + "]}"
    return body, "application/json"


_CONTROL_PATHS = [
    ("GET", "/__sim__/health"),
    ("GET", "/__sim__/stats"),
    ("GET", "/__sim__/faults"),
    ("POST", "/__sim__/faults"),
    ("DELETE", "/__sim__/faults"),
    ("DELETE", "/__sim__/faults/{id}"),
    ("POST", "/__sim__/reset"),
    ("GET", "/__sim__/market"),
    ("POST", "/__sim__/market/price"),
    ("POST", "/__sim__/market/tick"),
    ("PUT", "/__sim__/faults"),
    ("GET", "/__sim__/nowhere"),
]


@st.composite
def control_requests(draw: st.DrawFn) -> tuple[str, str, str, str]:
    method, path = draw(st.sampled_from(_CONTROL_PATHS))
    if "{id}" in path:
        raw_id = draw(st.sampled_from(["1", "2", "²", "①", "٣", "9" * 5000, "-1", "x"]))
        path = path.replace("{id}", quote(raw_id, safe=""))
    body, ctype = draw(_control_body()) if method in ("POST", "PUT") else ("", "text/plain")
    return method, path, body, ctype


def _strict(text: str) -> Any:
    def refuse(name: str) -> Any:
        raise AssertionError(f"{name} is not JSON: {text[:200]!r}")

    return json.loads(text, parse_constant=refuse)


async def test_fuzz_the_control_api(sim: Simulator) -> None:
    loop = asyncio.get_running_loop()
    statuses: set[int] = set()
    async with aiohttp.ClientSession() as http:

        async def send(method: str, path: str, body: str, ctype: str) -> tuple[int, Any]:
            headers = {"Content-Type": ctype}
            url = sim.base_url + path
            async with http.request(method, url, data=body.encode(), headers=headers) as r:
                text = await r.text()
                assert r.status < 500, (method, path, body[:200], r.status, text[:300])
                return r.status, _strict(text)

        @settings(
            max_examples=250,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(control_requests())
        def check(request: tuple[str, str, str, str]) -> None:
            status, answer = asyncio.run_coroutine_threadsafe(send(*request), loop).result(60)
            if status >= 400:
                assert isinstance(answer["error"], str) and len(answer["error"]) < 2000, answer
            statuses.add(status)

        await asyncio.to_thread(check)
        assert {200, 400} <= statuses
        # whatever the fuzz installed, every listing is strict JSON and the exchange answers
        status, listing = await send("GET", "/__sim__/faults", "", "text/plain")
        assert status == 200 and isinstance(listing["faults"], list)
        await send("DELETE", "/__sim__/faults", "", "text/plain")
        async with http.get(sim.base_url + "/v5/market/time") as r:
            assert r.status == 200 and _strict(await r.text())["retCode"] == 0
