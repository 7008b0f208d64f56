"""The Binance order book-keeping as a hypothesis state machine (no HTTP, no clock).

Random creates (limit / market / IOC / post-only, reused client ids), cancels and
queries by id or client id, and price moves; after every step the invariants of
a Binance spot account hold: a client id names at most one open order, the
open-order list is exactly the open orders, locked funds are what the open
orders reserve, no balance goes negative.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from virtuoso_resilience.simulator._binance_config import BinanceLimits
from virtuoso_resilience.simulator._binance_errors import BinanceError
from virtuoso_resilience.simulator._binance_orders import BinanceBook
from virtuoso_resilience.simulator._binance_routes import (
    BinanceContext,
    open_orders,
    order_cancel,
    order_create,
    order_query,
)
from virtuoso_resilience.simulator._market import MarketModel

CLIENT_IDS = ["a", "b", "c", "d"]
PRICES = ["60000", "64000", "64999.99", "65000.01", "66000", "70000"]
QUANTITIES = ["0.001", "0.01", "0.5", "2"]


class BookMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.market = MarketModel(
            seed=1,
            prices={"BTC": 65000.0},
            balances={"USDT": 50_000.0, "BTC": 1.0},
            volatility=0.0,
            leverage=10,
            auto_tick=False,
            wall_ms=lambda: int(time.time() * 1000),
        )
        self.book = BinanceBook(self.market, 1)
        self.ids: list[int] = []

    def ctx(self) -> BinanceContext:
        return BinanceContext(self.market, self.book, 1, False, BinanceLimits())

    def call(self, handler: Any, params: dict[str, str]) -> tuple[Any, int | None]:
        """(answer, None) or (None, Binance error code): only business errors may occur."""
        try:
            return handler({"symbol": "BTCUSDT", **params}, self.ctx()), None
        except BinanceError as error:
            code = error.code
        assert code in {-2010, -2011, -2013, -1013}, code
        return None, code

    @rule(
        side=st.sampled_from(["BUY", "SELL"]),
        kind=st.sampled_from(["LIMIT", "MARKET", "IOC", "LIMIT_MAKER"]),
        price=st.sampled_from(PRICES),
        quantity=st.sampled_from(QUANTITIES),
        client=st.sampled_from([None, *CLIENT_IDS]),
    )
    def create(self, side: str, kind: str, price: str, quantity: str, client: str | None) -> None:
        params = {"side": side, "quantity": quantity}
        if kind == "MARKET":
            params["type"] = "MARKET"
        elif kind == "LIMIT_MAKER":
            params.update(type="LIMIT_MAKER", price=price)
        else:
            params.update(type="LIMIT", price=price, timeInForce="IOC" if kind == "IOC" else "GTC")
        was_open = False
        if client is not None:
            params["newClientOrderId"] = client
            was_open = any(o["clientOrderId"] == client for o in self.open())
        result, code = self.call(order_create, params)
        if result is not None:
            self.ids.append(result["orderId"])
            assert not was_open  # an open client id is never accepted twice
        elif was_open:
            assert code == -2010

    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        if data.draw(st.booleans()) and self.ids:
            params = {"orderId": str(data.draw(st.sampled_from(self.ids)))}
        else:
            params = {"origClientOrderId": data.draw(st.sampled_from(CLIENT_IDS))}
        before = {o["orderId"] for o in self.open()}
        result, _ = self.call(order_cancel, params)
        if result is not None:
            assert result["orderId"] in before
            assert result["status"] == "CANCELED"

    @rule(data=st.data())
    def query(self, data: st.DataObject) -> None:
        if not self.ids:
            return
        order_id = data.draw(st.sampled_from(self.ids))
        by_id, _ = self.call(order_query, {"orderId": str(order_id)})
        assert by_id is not None and by_id["orderId"] == order_id
        by_client, _ = self.call(order_query, {"origClientOrderId": by_id["clientOrderId"]})
        assert by_client is not None and by_client["clientOrderId"] == by_id["clientOrderId"]
        assert by_client["orderId"] >= order_id  # the newest order with that client id

    @rule(price=st.sampled_from([60000.0, 63000.0, 65000.0, 67000.0, 71000.0]))
    def move(self, price: float) -> None:
        self.market.set_price("BTCUSDT", price)

    def open(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = open_orders({}, self.ctx())
        return result

    @invariant()
    def client_ids_are_unique_among_open_orders(self) -> None:
        clients = [o["clientOrderId"] for o in self.open()]
        assert len(clients) == len(set(clients))

    @invariant()
    def open_orders_are_the_open_ones(self) -> None:
        listed = {o["orderId"] for o in self.open()}
        statuses = {
            i: order_query({"symbol": "BTCUSDT", "orderId": str(i)}, self.ctx())["status"]
            for i in self.ids
        }
        assert listed == {i for i, status in statuses.items() if status == "NEW"}
        assert set(statuses.values()) <= {"NEW", "FILLED", "CANCELED", "EXPIRED"}

    @invariant()
    def locked_funds_are_what_open_orders_reserve(self) -> None:
        want = {"USDT": Decimal(0), "BTC": Decimal(0)}
        for order in self.open():
            qty, price = Decimal(order["origQty"]), Decimal(order["price"])
            if order["side"] == "BUY":
                want["USDT"] += qty * price
            else:
                want["BTC"] += qty
        locked = {c: Decimal(a) for c, a in self.market.snapshot()["locked"].items()}
        for coin, amount in want.items():
            assert locked.get(coin, Decimal(0)) == amount, (coin, locked, want)
            assert self.market.free(coin) >= 0
        for coin, amount in self.market.snapshot()["balances"].items():
            assert Decimal(amount) >= 0, coin


BookMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
TestBinanceBook = BookMachine.TestCase
