"""Fixtures: a running simulator on a free loopback port and ccxt clients pointed at it."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import ccxt.async_support as ccxt
import pytest
from yarl import URL

from virtuoso_resilience.simulator import Simulator
from virtuoso_resilience.simulator._auth import sign

ExchangeFactory = Callable[..., Awaitable[Any]]
Eventually = Callable[[Callable[[], bool]], Awaitable[None]]
BybitCall = Callable[..., Awaitable[tuple[int, Any]]]
"""``await bybit(method, path, query=..., body=...)`` -> (HTTP status, parsed strict JSON)."""


def strict_json(text: str) -> Any:
    """Parse ``text`` as strict JSON: a bare NaN / Infinity fails the test."""

    def refuse(name: str) -> Any:
        raise AssertionError(f"{name} in a response body is not JSON: {text[:200]!r}")

    return json.loads(text, parse_constant=refuse)


async def _signed_request(
    session: aiohttp.ClientSession,
    sim: Simulator,
    method: str,
    path: str,
    *,
    query: str = "",
    body: str | bytes = b"",
) -> tuple[int, Any]:
    raw = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    payload = query if method == "GET" else raw.decode("utf-8", "replace")
    ts = str(int(time.time() * 1000))
    headers = {
        "X-BAPI-API-KEY": sim.api_key,
        "X-BAPI-TIMESTAMP": ts,
        "X-BAPI-RECV-WINDOW": "5000",
        "X-BAPI-SIGN": sign(sim.api_secret, ts, sim.api_key, "5000", payload),
    }
    if method != "GET":
        headers["Content-Type"] = "application/json"
    url = URL(sim.base_url + path + ("?" + query if query else ""), encoded=True)
    async with session.request(method, url, data=raw or None, headers=headers) as response:
        text = await response.text()
        assert response.status < 500, (response.status, text[:300])
        return response.status, strict_json(text)


@pytest.fixture
async def bybit(sim: Simulator) -> AsyncIterator[BybitCall]:
    """Send raw Bybit v5 requests to ``sim``, signed as ccxt signs them.

    The query string goes out byte for byte (no re-encoding), so the signature
    matches what the simulator receives and authentication passes. Every
    answer must be below 500 and strict JSON.
    """
    async with aiohttp.ClientSession() as session:

        async def call(method: str, path: str, **kw: Any) -> tuple[int, Any]:
            return await _signed_request(session, sim, method, path, **kw)

        yield call


@pytest.fixture
def eventually() -> Eventually:
    """Wait (a few ms at a time, 5 s at most) until a condition about the server holds."""

    async def wait(predicate: Callable[[], bool]) -> None:
        for _ in range(1000):
            if predicate():
                return
            await asyncio.sleep(0.005)
        raise AssertionError("condition not reached within 5 s")

    return wait


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(seed=1) as simulator:
        yield simulator


@pytest.fixture
async def make_exchange(sim: Simulator) -> AsyncIterator[ExchangeFactory]:
    """Build ccxt bybit clients against ``sim``; every one is closed at teardown.

    Keyword arguments are merged into the ccxt constructor config;
    ``load=True`` (default) loads the markets first.
    """
    created: list[Any] = []

    async def factory(*, load: bool = True, **overrides: Any) -> Any:
        config = {**sim.ccxt_config(), "enableRateLimit": False, **overrides}
        exchange = ccxt.bybit(config)
        exchange.timeout_on_exit = 0  # ccxt sleeps 250 ms in close() for TLS; loopback is plain
        created.append(exchange)
        if load:
            await exchange.load_markets()
        return exchange

    yield factory
    for exchange in created:
        await exchange.close()


@pytest.fixture
async def exchange(make_exchange: ExchangeFactory) -> Any:
    """A ccxt bybit client with the simulator's credentials and markets loaded."""
    return await make_exchange()
