"""Binance order ids and client order ids over the shared matching model.

The matching model (``_market.py``) does fills, locking and balances; the
book keeps what is Binance's own: integer order ids, client order ids
(unique among *open* orders, reusable once an order is closed), order types
and statuses, and the order JSON in Binance's shape.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ._binance_errors import (
    BinanceError,
    from_bybit,
    illegal,
    invalid_value,
    mandatory,
    not_required,
)
from ._binance_params import (
    CLIENT_ID,
    CLIENT_ID_RANGE,
    SPOT,
    ZERO,
    decimal_param,
    fmt8,
    long_param,
    opt,
    req,
    symbol_param,
)
from ._market import BybitError, Instrument, MarketModel

__all__ = ["ORDER_TYPES", "BinanceBook"]

ORDER_TYPES = ("LIMIT", "LIMIT_MAKER", "MARKET")
"""The order types served (listed in ``exchangeInfo``)."""
_OTHER_TYPES = ("STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT")
_STATUS = {"New": "NEW", "PartiallyFilled": "PARTIALLY_FILLED", "Filled": "FILLED"}


@dataclass(slots=True)
class _Order:
    """What Binance knows of an order besides the matching model's state."""

    order_id: int
    model_id: str
    client_id: str
    inst: Instrument
    side: str
    type: str
    tif: str
    price: Decimal
    orig_qty: Decimal
    quote_qty: Decimal
    created: int


@dataclass(frozen=True, slots=True)
class _State:
    """The matching model's view of one order, in Binance's terms."""

    status: str
    executed: Decimal
    quote: Decimal
    qty: Decimal
    updated: int


class BinanceBook:
    """Integer order ids and client order ids over the shared matching model.

    A client id is unique among open orders: reusing the id of an open order
    is ``-2010 Duplicate order sent.``; once that order is closed the id may
    be used again (lookups by client id then find the newest order).
    """

    __slots__ = ("_by_client", "_next", "_open", "_orders", "market", "seed")

    def __init__(self, market: MarketModel, seed: int) -> None:
        self.market = market
        self.seed = seed
        self._orders: dict[int, _Order] = {}
        self._by_client: dict[str, int] = {}
        self._open: dict[int, None] = {}
        """Ids of the orders last seen open, in creation order: what ``openOrders`` scans."""
        self._next = 0
        self.reset(seed)

    def reset(self, seed: int | None = None) -> None:
        if seed is not None:
            self.seed = seed
        self._orders.clear()
        self._by_client.clear()
        self._open.clear()
        self._next = random.Random(f"{self.seed}/binance-ids").randrange(10**9, 10**10)

    def __len__(self) -> int:
        return len(self._orders)

    def sync(self) -> None:
        """Forget every order if the matching model was reset behind the book's back.

        (``Simulator.reset`` resets both; ``sim.market.reset()`` alone only the model.)
        """
        if self._orders and self.market.orders_created < len(self._orders):
            self.reset()

    def state(self, order: _Order) -> _State:
        rows = self.market.query_orders(
            {"category": SPOT, "orderId": order.model_id}, history=False
        )["list"]
        if not rows:  # the model no longer knows it (reset on its own)
            self.reset()
            raise BinanceError(-2013, "Order does not exist.")
        row = rows[0]
        status = _STATUS.get(row["orderStatus"], "CANCELED")
        if status == "CANCELED" and row["rejectReason"] == "EC_NoImmediateQtyToFill":
            status = "EXPIRED"
        if status not in ("NEW", "PARTIALLY_FILLED"):
            self._open.pop(order.order_id, None)
        return _State(
            status,
            Decimal(row["cumExecQty"]),
            Decimal(row["cumExecValue"]),
            Decimal(row["qty"]),
            int(row["updatedTime"]),
        )

    def find(self, inst: Instrument, params: Mapping[str, str], code: int) -> _Order:
        """The order named by ``orderId`` and/or ``origClientOrderId`` (``code`` if none)."""
        order_id = long_param(params, "orderId")
        client_id = opt(params, "origClientOrderId")
        message = "Order does not exist." if code == -2013 else "Unknown order sent."
        if order_id is None and client_id is None:
            raise BinanceError(
                -1102,
                "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!",
            )
        order: _Order | None = None
        if order_id is not None:
            order = self._orders.get(order_id)
            if order is not None and client_id is not None and order.client_id != client_id:
                order = None
        elif client_id is not None:
            found = self._by_client.get(client_id)
            order = self._orders.get(found) if found is not None else None
        if order is None or order.inst.symbol != inst.symbol:
            raise BinanceError(code, message)
        return order

    def to_json(self, order: _Order, state: _State | None = None) -> dict[str, Any]:
        state = state if state is not None else self.state(order)
        return {
            "symbol": order.inst.symbol,
            "orderId": order.order_id,
            "orderListId": -1,
            "clientOrderId": order.client_id,
            "price": fmt8(order.price),
            "origQty": fmt8(state.qty if order.orig_qty == ZERO else order.orig_qty),
            "executedQty": fmt8(state.executed),
            "cummulativeQuoteQty": fmt8(state.quote),
            "status": state.status,
            "timeInForce": order.tif,
            "type": order.type,
            "side": order.side,
            "stopPrice": fmt8(ZERO),
            "icebergQty": fmt8(ZERO),
            "time": order.created,
            "updateTime": state.updated,
            "isWorking": True,
            "workingTime": order.created,
            "origQuoteOrderQty": fmt8(order.quote_qty),
            "selfTradePreventionMode": "EXPIRE_MAKER",
        }

    # -- create / cancel ----------------------------------------------------------

    def create(self, params: Mapping[str, str], now_ms: int) -> tuple[_Order, _State]:
        inst = symbol_param(params, self.market)
        side = req(params, "side")
        if side not in ("BUY", "SELL"):
            raise BinanceError(-1117, "Invalid side.")
        order_type = req(params, "type")
        if order_type in _OTHER_TYPES:
            raise BinanceError(-1014, "Unsupported order combination.")
        if order_type not in ORDER_TYPES:
            raise BinanceError(-1116, "Invalid orderType.")
        client_id = opt(params, "newClientOrderId")
        if client_id is not None and not CLIENT_ID.fullmatch(client_id):
            raise illegal("newClientOrderId", CLIENT_ID_RANGE)
        resp_type = opt(params, "newOrderRespType")
        if resp_type is not None and resp_type not in ("ACK", "RESULT", "FULL"):
            raise invalid_value("newOrderRespType")
        quantity = decimal_param(params, "quantity")
        quote_qty = decimal_param(params, "quoteOrderQty")
        price = decimal_param(params, "price")
        tif = opt(params, "timeInForce")
        if order_type == "LIMIT":
            if tif is None:
                raise mandatory("timeInForce")
            if tif not in ("GTC", "IOC", "FOK"):
                raise BinanceError(-1115, "Invalid timeInForce.")
        elif tif is not None:
            raise not_required("timeInForce")
        if order_type == "MARKET":
            if price is not None:
                raise not_required("price")
            if quantity is not None and quote_qty is not None:
                raise not_required("quoteOrderQty")
            if quantity is None and quote_qty is None:
                raise BinanceError(
                    -1102,
                    "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!",
                )
        else:
            if quote_qty is not None:
                raise not_required("quoteOrderQty")
            if quantity is None:
                raise mandatory("quantity")
            if price is None:
                raise mandatory("price")
            if price <= 0:
                raise BinanceError(-1013, "Invalid price.")
        amount = quantity if quantity is not None else quote_qty
        if amount is None or amount <= 0:
            raise BinanceError(-1013, "Invalid quantity.")
        if client_id is not None:
            previous = self._by_client.get(client_id)
            if previous is not None and previous in self._open:
                state = self.state(self._orders[previous])
                if state.status in ("NEW", "PARTIALLY_FILLED"):
                    raise BinanceError(-2010, "Duplicate order sent.")
        model_params: dict[str, Any] = {
            "category": SPOT,
            "symbol": inst.symbol,
            "side": "Buy" if side == "BUY" else "Sell",
            "orderType": "Market" if order_type == "MARKET" else "Limit",
            "qty": str(amount),
        }
        if order_type == "MARKET":
            model_params["marketUnit"] = "baseCoin" if quantity is not None else "quoteCoin"
        else:
            model_params["price"] = str(price)
            model_params["timeInForce"] = "PostOnly" if order_type == "LIMIT_MAKER" else tif
        try:
            result = self.market.create_order(model_params, now_ms)
        except BybitError as error:
            raise from_bybit(error) from None
        self._next += 1
        if client_id is None:
            client_id = f"sim{self._next:x}"
        order = _Order(
            order_id=self._next,
            model_id=str(result["orderId"]),
            client_id=client_id,
            inst=inst,
            side=side,
            type=order_type,
            tif=tif or "GTC",
            price=price if price is not None else ZERO,
            orig_qty=quantity if quantity is not None else ZERO,
            quote_qty=quote_qty if quote_qty is not None else ZERO,
            created=now_ms,
        )
        self._orders[order.order_id] = order
        self._open[order.order_id] = None
        state = self.state(order)
        if order_type == "LIMIT_MAKER" and state.status == "CANCELED":
            # the model cancelled a post-only order that would take: Binance refuses it
            self._orders.pop(order.order_id, None)
            self._open.pop(order.order_id, None)
            raise BinanceError(-2010, "Order would immediately match and take.")
        self._by_client[client_id] = order.order_id
        return order, state

    def cancel(self, params: Mapping[str, str], now_ms: int) -> dict[str, Any]:
        inst = symbol_param(params, self.market)
        order = self.find(inst, params, -2011)
        state = self.state(order)
        if state.status not in ("NEW", "PARTIALLY_FILLED"):
            raise BinanceError(-2011, "Unknown order sent.")
        cancel_id = opt(params, "newClientOrderId")
        if cancel_id is not None and not CLIENT_ID.fullmatch(cancel_id):
            raise illegal("newClientOrderId", CLIENT_ID_RANGE)
        try:
            self.market.cancel_order(
                {"category": SPOT, "symbol": inst.symbol, "orderId": order.model_id}, now_ms
            )
        except BybitError:
            raise BinanceError(-2011, "Unknown order sent.") from None
        data = self.to_json(order)
        return {
            "symbol": inst.symbol,
            "origClientOrderId": order.client_id,
            "orderId": order.order_id,
            "orderListId": -1,
            "clientOrderId": cancel_id or f"simcancel{order.order_id:x}",
            "transactTime": now_ms,
            **{
                k: data[k]
                for k in (
                    "price",
                    "origQty",
                    "executedQty",
                    "origQuoteOrderQty",
                    "cummulativeQuoteQty",
                    "status",
                    "timeInForce",
                    "type",
                    "side",
                    "selfTradePreventionMode",
                )
            },
        }

    def open_orders(self, inst: Instrument | None) -> list[dict[str, Any]]:
        out = []
        for order_id in list(self._open):
            order = self._orders[order_id]
            if inst is not None and order.inst.symbol != inst.symbol:
                continue
            state = self.state(order)
            if state.status in ("NEW", "PARTIALLY_FILLED"):
                out.append(self.to_json(order, state))
        return out

    def of_symbol(self, inst: Instrument) -> list[_Order]:
        return [o for o in self._orders.values() if o.inst.symbol == inst.symbol]

    def __repr__(self) -> str:
        return f"<BinanceBook orders={len(self._orders)} open={len(self._open)}>"
