"""Signature checks and the matching model, without the network."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from virtuoso_resilience.simulator import MarketModel, key_fingerprint
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
