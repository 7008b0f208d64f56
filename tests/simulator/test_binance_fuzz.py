"""Fuzzing the Binance routes: whatever a client sends, no 5xx unless a fault asked for one.

One simulator runs on an event loop in a background thread for the whole
module; hypothesis sends it arbitrary methods, paths, parameters (non-ASCII
digits, NaN, huge numbers, control characters), correctly signed or not, and
checks every answer: a status below 500, strict JSON (no NaN / Infinity), a
Binance error body ``{"code": <negative int>, "msg": <str>}`` on a 4xx, and
the weight header.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from virtuoso_resilience.simulator import Simulator
from virtuoso_resilience.simulator._binance_auth import sign
from virtuoso_resilience.simulator._binance_routes import BINANCE_ROUTES


class _Server:
    """A simulator and an HTTP session living on their own loop thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.sim = Simulator(seed=11, dialect="binance", rate_limits=False)
        self.run(self.sim.start())
        self.http = self.run(self._session())

    @staticmethod
    async def _session() -> aiohttp.ClientSession:
        return aiohttp.ClientSession()

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)

    async def send(
        self, method: str, path: str, query: str, body: str | None, key: str | None
    ) -> tuple[int, str, str, dict[str, str]]:
        headers = {"X-MBX-APIKEY": key} if key is not None else {}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        url = self.sim.base_url + path + ("?" + query if query else "")
        async with self.http.request(method, url, data=body, headers=headers) as response:
            return (
                response.status,
                response.content_type,
                await response.text(),
                dict(response.headers),
            )

    def close(self) -> None:
        self.run(self.http.close())
        self.run(self.sim.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


@pytest.fixture(scope="module")
def server() -> Iterator[_Server]:
    running = _Server()
    yield running
    running.close()


_NAMES = sorted(
    {name for route in BINANCE_ROUTES.values() for name in route.params}
    - {"signature", "timestamp"}
)
_PATHS = sorted({path for _, path in BINANCE_ROUTES})
_NASTY = [
    "NaN",
    "nan",
    "Infinity",
    "-inf",
    "1e400",
    "-0.0",
    "0",
    "-1",
    "²",
    "①",
    "٣",
    "1_000",
    "0x10",
    " 1",
    "1\n",
    "9" * 30,
    "0.000000000000000000001",
    "BTCUSDT",
    "btcusdt",
    "LIMIT",
    "MARKET",
    "LIMIT_MAKER",
    "BUY",
    "SELL",
    "GTC",
    "IOC",
    "FOK",
    "FULL",
    "ACK",
    "RESULT",
    "1m",
    "1M",
    '["BTCUSDT"]',
    '["BTCUSDT","NOPE"]',
    "[]",
    "{}",
    "null",
    "true",
    "😀",
    "\x00",
    "",
    "0.01",
    "60000",
    "65000.00",
    "100",
    "5000",
]
_routes = st.sampled_from(sorted(BINANCE_ROUTES))
"""(method, path) of a served endpoint: most examples, so that they reach the handlers."""
_anywhere = st.tuples(
    st.sampled_from(["GET", "POST", "DELETE", "PUT"]),
    st.one_of(st.sampled_from(_PATHS), st.text(max_size=20).map(lambda t: "/api/v3/" + t)),
)
_values = st.one_of(
    st.sampled_from(_NASTY),
    st.text(max_size=40),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
)
_params = st.dictionaries(
    st.integers(0, 9).flatmap(
        lambda i: st.sampled_from(_NAMES) if i else st.text(min_size=1, max_size=12)
    ),
    st.integers(0, 2).flatmap(lambda i: st.sampled_from(_NASTY) if i else _values),
    max_size=10,
)


def _strict(text: str) -> Any:
    def refuse(constant: str) -> Any:
        raise ValueError(f"non-standard JSON constant {constant}")

    return json.loads(text, parse_constant=refuse)


@settings(
    max_examples=600,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    target=st.integers(0, 9).flatmap(lambda i: _routes if i else _anywhere),
    params=_params,
    signing=st.sampled_from(["signed", "unsigned", "wrong"]),
    in_body=st.booleans(),
)
def test_no_request_gets_a_5xx_or_loose_json(
    server: _Server, target: tuple[str, str], params: dict[str, str], signing: str, in_body: bool
) -> None:
    sim = server.sim
    method, path = target
    encoded = urlencode(params)
    key: str | None = None
    if signing != "unsigned":
        key = sim.api_key
        encoded = urlencode({**params, "timestamp": int(time.time() * 1000)})
        secret = sim.api_secret if signing == "signed" else "wrong"
        encoded += "&signature=" + sign(secret, encoded)
    body = encoded if in_body and method in ("POST", "DELETE", "PUT") else None
    query = "" if body is not None else encoded
    try:
        status, content_type, text, headers = server.run(
            server.send(method, path, query, body, key)
        )
    except aiohttp.InvalidURL:
        return  # the client refuses to build the URL: nothing reached the server
    event(f"HTTP {status}")
    assert status < 500, (status, text)
    assert "X-MBX-USED-WEIGHT-1M" in headers
    if status == 404:
        return  # unknown path or method: an HTML 404 page, as behind Binance's gateway
    assert content_type == "application/json", (status, text)
    data = _strict(text)
    if status >= 400:
        assert set(data) == {"code", "msg"}, data
        assert isinstance(data["code"], int) and data["code"] < 0
        assert isinstance(data["msg"], str) and data["msg"]
        assert sim.api_secret not in data["msg"]
    else:
        assert status == 200
        assert isinstance(data, dict | list)


def test_the_fuzzed_simulator_is_still_consistent(server: _Server) -> None:
    """After the fuzzing above (or alone), the account still balances and orders answer."""
    snapshot = server.sim.market.snapshot()
    for coin, amount in snapshot["balances"].items():
        assert float(amount) >= 0, (coin, amount)
    status, _, text, _ = server.run(server.send("GET", "/api/v3/ping", "", None, None))
    assert (status, _strict(text)) == (200, {})
