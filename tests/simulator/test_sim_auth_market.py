"""Signature checks and the matching model (mostly without the network), malformed requests."""

from __future__ import annotations

import asyncio
import json
import math
import time
from decimal import Decimal
from typing import Any

import pytest

from virtuoso_resilience.simulator import MarketModel, Simulator, key_fingerprint
from virtuoso_resilience.simulator._auth import AuthFailure, authenticate, sign
from virtuoso_resilience.simulator._market import BybitError

SECRETS = {"k": "s3cr3t"}
NOW = 1_700_000_000_000


def headers(
    ts: int = NOW, key: str = "k", secret: str = "s3cr3t", payload: str = "a=1"
) -> dict[str, str]:
    return {
        "X-BAPI-API-KEY": key,
        "X-BAPI-TIMESTAMP": str(ts),
        "X-BAPI-RECV-WINDOW": "5000",
        "X-BAPI-SIGN": sign(secret, str(ts), key, "5000", payload),
    }


def test_valid_signature_returns_the_key() -> None:
    assert authenticate(headers(), "a=1", SECRETS, NOW) == "k"
    assert authenticate(headers(ts=NOW - 4999), "a=1", SECRETS, NOW) == "k"


@pytest.mark.parametrize(
    ("hdrs", "payload", "code"),
    [
        (headers(key="other"), "a=1", 10003),
        ({}, "a=1", 10003),
        (headers(secret="wrong"), "a=1", 10004),
        (headers(), "a=2", 10004),  # payload tampered after signing
        (headers(ts=NOW - 5001), "a=1", 10002),  # older than the receive window
        (headers(ts=NOW + 1000), "a=1", 10002),  # too far in the future
        ({**headers(), "X-BAPI-TIMESTAMP": "soon"}, "a=1", 10002),
    ],
)
def test_rejections_use_bybit_codes_and_hide_secrets(
    hdrs: dict[str, str], payload: str, code: int
) -> None:
    with pytest.raises(AuthFailure) as caught:
        authenticate(hdrs, payload, SECRETS, NOW)
    assert caught.value.code == code
    message = str(caught.value)
    assert "s3cr3t" not in message and "X-BAPI-SIGN" not in message
    assert hdrs.get("X-BAPI-SIGN", "-") not in message


def test_key_fingerprint_is_stable_and_not_the_key() -> None:
    assert key_fingerprint("my-key") == key_fingerprint("my-key")
    assert key_fingerprint("my-key") != key_fingerprint("my-key2")
    assert "my-key" not in key_fingerprint("my-key")
    assert key_fingerprint("my-key").startswith("key:")


def model(seed: int = 1, **kw: Any) -> MarketModel:
    options: dict[str, Any] = {
        "seed": seed,
        "prices": {"BTC": 65000.0, "ETH": 3500.0},
        "balances": {"USDT": 10_000.0, "BTC": 0.5},
        "volatility": 0.001,
        "leverage": 10,
        "auto_tick": True,
        "wall_ms": lambda: NOW,
    }
    options.update(kw)
    return MarketModel(**options)


def order(m: MarketModel, **params: Any) -> dict[str, Any]:
    base = {"category": "spot", "symbol": "ETHUSDT", "side": "Buy", "orderType": "Limit"}
    base.update(params)
    return m.create_order(base, NOW)


def test_price_walk_is_deterministic_per_seed() -> None:
    def path(seed: int) -> list[float]:
        m = model(seed)
        prices = []
        for _ in range(20):
            m.tick("BTCUSDT")
            prices.append(m.price("BTCUSDT"))
        return prices

    assert path(1) == path(1)
    assert path(1) != path(2)
    assert len(set(path(1))) == 20
    assert all(50_000 < p < 80_000 for p in path(1))


def test_resting_limit_order_fills_when_price_crosses() -> None:
    m = model(auto_tick=False)
    placed = order(m, qty="1", price="3000", orderLinkId="x")
    assert m.account.locked["USDT"] == Decimal(3000)
    assert m.free("USDT") == Decimal(7000)
    m.set_price("ETHUSDT", 3000.5)
    assert m.query_orders({"category": "spot"}, history=False)["list"][0]["orderStatus"] == "New"
    m.set_price("ETHUSDT", 2999.0)
    found = m.query_orders({"category": "spot", "orderId": placed["orderId"]}, history=False)
    assert found["list"][0]["orderStatus"] == "Filled"
    assert found["list"][0]["avgPrice"] == "3000.00"
    assert m.account.wallet["ETH"] == Decimal(1)
    assert m.account.wallet["USDT"] == Decimal(7000)
    assert m.account.locked["USDT"] == 0


def test_marketable_limit_takes_the_book_and_ioc_is_cancelled() -> None:
    m = model(auto_tick=False)
    taken = order(m, qty="0.5", price="3600")
    _bid, ask = m.best(m.instrument("spot", "ETHUSDT"))
    filled = m.query_orders({"category": "spot", "orderId": taken["orderId"]}, history=False)
    assert Decimal(filled["list"][0]["avgPrice"]) == ask
    ioc = order(m, qty="0.5", price="3000", timeInForce="IOC")
    done = m.query_orders({"category": "spot", "orderId": ioc["orderId"]}, history=False)
    assert done["list"][0]["orderStatus"] == "Cancelled"
    post = order(m, qty="0.5", price="3600", timeInForce="PostOnly")
    rejected = m.query_orders({"category": "spot", "orderId": post["orderId"]}, history=False)
    assert rejected["list"][0]["rejectReason"] == "EC_PostOnlyWillTakeLiquidity"
    assert m.account.locked.get("USDT", 0) == 0


def test_spot_market_buy_in_quote_units() -> None:
    m = model(auto_tick=False)
    placed = order(m, orderType="Market", qty="1000")  # marketUnit defaults to quoteCoin
    item = m.query_orders({"category": "spot", "orderId": placed["orderId"]}, history=False)
    bought = Decimal(item["list"][0]["cumExecQty"])
    assert 0 < bought * Decimal(item["list"][0]["avgPrice"]) <= 1000
    assert m.account.wallet["ETH"] == bought


def test_business_errors_use_bybit_codes() -> None:
    m = model(auto_tick=False)
    with pytest.raises(BybitError) as caught:
        order(m, qty="10", price="3000")  # 30k > 10k USDT
    assert caught.value.code == 170131
    with pytest.raises(BybitError) as caught:
        order(m, qty="0.000001", price="3000")
    assert caught.value.code == 170137  # too many decimals for the lot size
    with pytest.raises(BybitError) as caught:
        order(m, qty="1", price="3000.001")
    assert caught.value.code == 170134
    with pytest.raises(BybitError) as caught:
        order(m, symbol="DOGEUSDT", qty="1", price="1")
    assert caught.value.code == 10001 and "Not supported symbols" in caught.value.message
    order(m, category="linear", qty="10", price="3000")  # 3k margin needed, fine
    with pytest.raises(BybitError) as caught:
        order(m, category="linear", qty="100", price="3000")  # 30k margin needed
    assert caught.value.code == 110007
    with pytest.raises(BybitError) as caught:
        m.cancel_order({"category": "linear", "symbol": "ETHUSDT", "orderId": "nope"}, NOW)
    assert caught.value.code == 110001


def test_linear_position_and_realised_pnl() -> None:
    m = model(auto_tick=False)
    m.set_price("BTCUSDT", 60_000.0)
    m.create_order(
        {
            "category": "linear",
            "symbol": "BTCUSDT",
            "side": "Buy",
            "orderType": "Market",
            "qty": "0.1",
        },
        NOW,
    )
    size, entry = m.positions()["BTCUSDT"]
    assert size == Decimal("0.1") and entry == Decimal("60000.1")
    m.set_price("BTCUSDT", 61_000.0)
    m.create_order(
        {
            "category": "linear",
            "symbol": "BTCUSDT",
            "side": "Sell",
            "orderType": "Market",
            "qty": "0.1",
            "reduceOnly": True,
        },
        NOW,
    )
    assert "BTCUSDT" not in m.positions()
    assert m.account.wallet["USDT"] == Decimal(10_000) + Decimal("0.1") * (
        Decimal("61000.0") - Decimal("60000.1")
    )
    with pytest.raises(BybitError) as caught:
        m.create_order(
            {
                "category": "linear",
                "symbol": "BTCUSDT",
                "side": "Sell",
                "orderType": "Market",
                "qty": "0.1",
                "reduceOnly": True,
            },
            NOW,
        )
    assert caught.value.code == 110017


def test_reset_restores_the_initial_state() -> None:
    m = model()
    order(m, qty="1", price="3000", orderLinkId="keep")
    m.tick(steps=5)
    m.reset()
    assert m.price("ETHUSDT") == 3500.0
    assert m.account.wallet["USDT"] == Decimal(10_000)
    assert m.snapshot()["orders"] == {}
    order(m, qty="1", price="3000", orderLinkId="keep")  # the id is free again


def test_klines_are_deterministic_and_end_at_the_current_price() -> None:
    m = model(auto_tick=False)
    inst = m.instrument("linear", "BTCUSDT")
    rows = m.klines(inst, "60", None, None, 5, NOW)
    assert rows == model(auto_tick=False).klines(inst, "60", None, None, 5, NOW)
    assert Decimal(rows[0][4]) == Decimal("65000.0")  # newest first, closes at the mid
    assert [int(r[0]) for r in rows] == sorted((int(r[0]) for r in rows), reverse=True)
    with pytest.raises(BybitError):
        m.klines(inst, "7", None, None, 5, NOW)


# -- regressions: malformed requests --------------------------------------------


def test_garbled_headers_get_bybit_codes_not_exceptions() -> None:
    # aiohttp decodes header bytes as UTF-8 with surrogateescape: both shapes occur
    for sign_header in ("\xe9", "\udcff", "ab\u20ac"):
        with pytest.raises(AuthFailure) as caught:
            authenticate({**headers(), "X-BAPI-SIGN": sign_header}, "a=1", SECRETS, NOW)
        assert caught.value.code == 10004
    for key in ("\udcff", "k\xe9"):
        with pytest.raises(AuthFailure) as caught:
            authenticate({**headers(), "X-BAPI-API-KEY": key}, "a=1", SECRETS, NOW)
        assert caught.value.code == 10003
        assert key_fingerprint(key).startswith("key:")
    with pytest.raises(AuthFailure) as caught:
        authenticate({**headers(), "X-BAPI-TIMESTAMP": "\udcff"}, "a=1", SECRETS, NOW)
    assert caught.value.code == 10002
    with pytest.raises(AuthFailure) as caught:
        authenticate(headers(), "a=\udcff", SECRETS, NOW)
    assert caught.value.code == 10004


async def _raw(port: int, head: list[bytes], body: bytes = b"") -> tuple[int, dict[str, Any]]:
    """Send bytes no well-behaved client would send; return (HTTP status, JSON answer)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"\r\n".join([*head, b"Host: x", b"Connection: close"]) + b"\r\n\r\n" + body)
        await writer.drain()
        data = await reader.read()
    finally:
        writer.close()
        await writer.wait_closed()
    status_line, _, rest = data.partition(b"\r\n")
    payload = rest.split(b"\r\n\r\n", 1)[1]
    return int(status_line.split()[1]), json.loads(payload)


def _auth_head(sim: Simulator, payload: str, **overrides: bytes) -> list[bytes]:
    ts = str(int(time.time() * 1000))
    values = {
        "X-BAPI-API-KEY": sim.api_key.encode(),
        "X-BAPI-TIMESTAMP": ts.encode(),
        "X-BAPI-RECV-WINDOW": b"5000",
        "X-BAPI-SIGN": sign(sim.api_secret, ts, sim.api_key, "5000", payload).encode(),
    }
    values.update({k.replace("_", "-"): v for k, v in overrides.items()})
    return [name.encode() + b": " + value for name, value in values.items()]


async def test_malformed_requests_are_answered_and_counted(sim: Simulator) -> None:
    get = b"GET /v5/order/realtime?category=spot HTTP/1.1"
    query = "category=spot"
    status, answer = await _raw(sim.port, [get, *_auth_head(sim, query, X_BAPI_SIGN=b"\xc3\xa9")])
    assert (status, answer["retCode"]) == (200, 10004)
    status, answer = await _raw(sim.port, [get, *_auth_head(sim, query, X_BAPI_SIGN=b"\xff")])
    assert (status, answer["retCode"]) == (200, 10004)
    status, answer = await _raw(sim.port, [get, *_auth_head(sim, query, X_BAPI_API_KEY=b"\xff")])
    assert (status, answer["retCode"]) == (200, 10003)

    def post(body: bytes) -> list[bytes]:
        return [
            b"POST /v5/order/create HTTP/1.1",
            b"Content-Type: application/json",
            b"Content-Length: %d" % len(body),
            *_auth_head(sim, body.decode("utf-8", "replace")),
        ]

    body = b'{"category":"spot","orderLinkId":"\xff"}'
    status, answer = await _raw(sim.port, post(body), body)
    assert (status, answer["retCode"]) == (200, 10001) and "UTF-8" in answer["retMsg"]
    body = json.dumps(
        {"category": "spot", "symbol": ["BTCUSDT"], "side": "Buy", "orderType": "Market"}
    ).encode()
    status, answer = await _raw(sim.port, post(body), body)
    assert (status, answer["retCode"]) == (200, 10001) and "symbol" in answer["retMsg"]

    assert sim.request_count("/v5/order/realtime") == 3
    assert sim.request_count("/v5/order/create") == 2
    assert sim.request_count(client=key_fingerprint("\udcff")) == 1
    assert sim.market.orders_created == 0


# -- regressions: prices and the resting-order index ---------------------------


@pytest.mark.parametrize(
    "price", [math.nan, math.inf, -math.inf, 0.0, -1.0, 1e16, True, "70000", 10**400]
)
def test_set_price_rejects_non_finite_prices(price: Any) -> None:
    m = model(auto_tick=False)
    with pytest.raises(ValueError, match="price must be"):
        m.set_price("BTCUSDT", price)
    assert m.price("BTCUSDT") == 65000.0
    assert m.ticker(m.instrument("spot", "BTCUSDT"), NOW)["lastPrice"] == "65000.00"


def test_model_refuses_non_finite_starting_prices() -> None:
    with pytest.raises(ValueError, match=r"prices\['BTC'\] must be a finite number"):
        model(prices={"BTC": math.inf})


class _NoScan(dict[str, Any]):
    """An order table that fails the test if a price step walks through it."""

    def values(self) -> Any:
        raise AssertionError("a price step scanned every order ever placed")

    items = values
    __iter__ = values


def test_price_steps_only_visit_open_orders_of_their_symbol() -> None:
    m = model(auto_tick=False, balances={"USDT": 1e9, "BTC": 100.0, "ETH": 100.0})
    for _ in range(200):  # a long, closed history
        order(m, symbol="BTCUSDT", orderType="Market", qty="0.01", marketUnit="baseCoin")
    first = order(m, qty="1", price="3000")
    cancelled = order(m, qty="1", price="2995")
    second = order(m, qty="2", price="2990")
    linear = order(m, category="linear", qty="1", price="2990")
    above = order(m, side="Sell", qty="1", price="4000")
    m.cancel_order({"category": "spot", "symbol": "ETHUSDT", **cancelled}, NOW)
    margin = m.free("USDT")

    history = m._orders
    m._orders = _NoScan(history)
    try:
        m.tick("BTCUSDT", 50)
        m.tick(steps=5)
        m.set_price("ETHUSDT", 2980.0)  # crosses the three resting buys
        # the spot buys' locked USDT was spent, the linear order's margin became the position's
        assert m.free("USDT") == margin
    finally:
        m._orders = history

    def status(placed: dict[str, Any], category: str = "spot") -> str:
        found = m.query_orders({"category": category, **placed}, history=False)
        return str(found["list"][0]["orderStatus"])

    assert [status(first), status(second), status(linear, "linear")] == ["Filled"] * 3
    assert status(cancelled) == "Cancelled" and status(above) == "New"
    assert m.positions()["ETHUSDT"] == (Decimal(1), Decimal(2990))
    assert "open=1" in repr(m) and m.orders_filled == 203


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ({"balances": {"USDT": math.inf}}, r"balances\['USDT'\] must be a finite number"),
        ({"balances": {"USDT": math.nan}}, r"balances\['USDT'\] must be a finite number"),
        ({"balances": {"USDT": 1e16}}, r"balances\['USDT'\] must be a finite number"),
        ({"balances": {"USDT": True}}, r"balances\['USDT'\] must be a finite number"),
        ({"leverage": 0}, "leverage must be an integer in 1..100"),
        ({"leverage": 10.0}, "leverage must be an integer in 1..100"),
        ({"volatility": math.nan}, "volatility must be a finite number"),
        ({"volatility": math.inf}, "volatility must be a finite number"),
        ({"prices": {"BTC": 1e-9}}, r"prices\['BTC'\] must be a finite number in 1e-08..1e\+15"),
    ],
)
def test_model_refuses_bad_numbers_at_construction(override: dict[str, Any], needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        model(**override)
