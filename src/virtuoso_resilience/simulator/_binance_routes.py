"""The Binance spot REST endpoints served, as plain functions of the request parameters.

The shared matching model (``_market.py``) does prices, books, balances and
fills; this module keeps what is Binance's own: integer order ids, client
order ids (unique among *open* orders, reusable once an order is closed),
order types and answers in Binance's shapes. Every handler takes the parsed
parameters and returns the JSON answer, or raises
:class:`~._binance_errors.BinanceError`.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ._binance_config import BinanceLimits
from ._binance_errors import (
    BinanceError,
    from_bybit,
    illegal,
    invalid_value,
    mandatory,
    not_required,
)
from ._market import BybitError, Instrument, MarketModel

__all__ = ["BINANCE_ROUTES", "BinanceBook", "BinanceContext", "BinanceRoute"]

SPOT = "spot"
EIGHT = Decimal("0.00000001")
ZERO = Decimal(0)
CLIENT_ID = re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$")
CLIENT_ID_RANGE = r"^[\.A-Z\:/a-z0-9_-]{1,36}$"
_DECIMAL = re.compile(r"^([0-9]{1,20})(\.[0-9]{1,20})?$")
_DECIMAL_RANGE = r"^([0-9]{1,20})(\.[0-9]{1,20})?$"
_LONG = re.compile(r"^[0-9]{1,20}$")
_LONG_RANGE = r"^[0-9]{1,20}$"
_SYMBOL = re.compile(r"^[A-Z0-9-_.]{1,20}$")
_SYMBOL_RANGE = r"^[A-Z0-9-_.]{1,20}$"
_SYMBOLS_RANGE = r'^\[("[A-Z0-9-_.]{1,20}"(,"[A-Z0-9-_.]{1,20}"){0,}){0,1}\]$'
MAX_LONG = 2**63 - 1

KLINE_INTERVALS: Mapping[str, str] = {
    "1m": "1",
    "3m": "3",
    "5m": "5",
    "15m": "15",
    "30m": "30",
    "1h": "60",
    "2h": "120",
    "4h": "240",
    "6h": "360",
    "12h": "720",
    "1d": "D",
    "1w": "W",
    "1M": "M",
}
"""Binance interval -> the matching model's (Bybit) interval. 1s, 8h and 3d are not served."""
KLINE_SECONDS: Mapping[str, int] = {
    "1m": 60,
    "3m": 180,
    "5m": 300,
    "15m": 900,
    "30m": 1800,
    "1h": 3600,
    "2h": 7200,
    "4h": 14400,
    "6h": 21600,
    "12h": 43200,
    "1d": 86400,
    "1w": 604800,
    "1M": 2592000,
}
ORDER_TYPES = ("LIMIT", "LIMIT_MAKER", "MARKET")
"""The order types served (listed in ``exchangeInfo``)."""
_OTHER_TYPES = ("STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT")
_STATUS = {"New": "NEW", "PartiallyFilled": "PARTIALLY_FILLED", "Filled": "FILLED"}


def fmt8(value: Decimal) -> str:
    """A decimal as Binance writes it: 8 decimal places."""
    return format(value.quantize(EIGHT), "f")


# -- parameters -----------------------------------------------------------------


def _opt(params: Mapping[str, str], name: str) -> str | None:
    value = params.get(name)
    return None if value is None or value == "" else value


def _req(params: Mapping[str, str], name: str) -> str:
    value = _opt(params, name)
    if value is None:
        raise mandatory(name)
    return value


def _decimal(params: Mapping[str, str], name: str) -> Decimal | None:
    raw = _opt(params, name)
    if raw is None:
        return None
    if not _DECIMAL.match(raw):
        raise illegal(name, _DECIMAL_RANGE)
    return Decimal(raw)


def _long(params: Mapping[str, str], name: str) -> int | None:
    raw = _opt(params, name)
    if raw is None:
        return None
    if not _LONG.match(raw) or int(raw) > MAX_LONG:
        raise illegal(name, _LONG_RANGE)
    return int(raw)


def _limit(params: Mapping[str, str], default: int, high: int) -> int:
    value = _long(params, "limit")
    if value is None:
        return default
    if not 1 <= value <= high:
        raise BinanceError(
            -1100, f"Illegal characters found in parameter 'limit'; legal range is '1..{high}'."
        )
    return value


def _instrument(market: MarketModel, symbol: str) -> Instrument:
    if not _SYMBOL.match(symbol):
        raise illegal("symbol", _SYMBOL_RANGE)
    inst = market.instruments.get((SPOT, symbol))
    if inst is None:
        raise BinanceError(-1121, "Invalid symbol.")
    return inst


def _symbol(params: Mapping[str, str], market: MarketModel) -> Instrument:
    return _instrument(market, _req(params, "symbol"))


def _symbols(params: Mapping[str, str], market: MarketModel) -> list[Instrument] | None:
    """``symbol`` (one) or ``symbols`` (a JSON array) or neither (every spot market)."""
    one, many = _opt(params, "symbol"), _opt(params, "symbols")
    if one is not None and many is not None:
        raise BinanceError(-1128, "Combination of optional parameters invalid.")
    if one is not None:
        return [_instrument(market, one)]
    if many is None:
        return None
    try:
        names = json.loads(many)
    except ValueError:
        raise illegal("symbols", _SYMBOLS_RANGE) from None
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise illegal("symbols", _SYMBOLS_RANGE)
    if len(names) > 1000:
        raise illegal("symbols", _SYMBOLS_RANGE)
    return [_instrument(market, n) for n in names]


# -- orders -----------------------------------------------------------------------


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

    def state(self, order: _Order) -> _State:
        rows = self.market.query_orders(
            {"category": SPOT, "orderId": order.model_id}, history=False
        )["list"]
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
        order_id = _long(params, "orderId")
        client_id = _opt(params, "origClientOrderId")
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
        inst = _symbol(params, self.market)
        side = _req(params, "side")
        if side not in ("BUY", "SELL"):
            raise BinanceError(-1117, "Invalid side.")
        order_type = _req(params, "type")
        if order_type in _OTHER_TYPES:
            raise BinanceError(-1014, "Unsupported order combination.")
        if order_type not in ORDER_TYPES:
            raise BinanceError(-1116, "Invalid orderType.")
        client_id = _opt(params, "newClientOrderId")
        if client_id is not None and not CLIENT_ID.match(client_id):
            raise illegal("newClientOrderId", CLIENT_ID_RANGE)
        resp_type = _opt(params, "newOrderRespType")
        if resp_type is not None and resp_type not in ("ACK", "RESULT", "FULL"):
            raise invalid_value("newOrderRespType")
        quantity = _decimal(params, "quantity")
        quote_qty = _decimal(params, "quoteOrderQty")
        price = _decimal(params, "price")
        tif = _opt(params, "timeInForce")
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
        inst = _symbol(params, self.market)
        order = self.find(inst, params, -2011)
        state = self.state(order)
        if state.status not in ("NEW", "PARTIALLY_FILLED"):
            raise BinanceError(-2011, "Unknown order sent.")
        cancel_id = _opt(params, "newClientOrderId")
        if cancel_id is not None and not CLIENT_ID.match(cancel_id):
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


@dataclass(frozen=True, slots=True)
class BinanceContext:
    """What a handler may use besides its parameters."""

    market: MarketModel
    book: BinanceBook
    now_ms: int
    maintenance: bool
    """A maintenance fault is active (``/sapi/v1/system/status`` reports it)."""
    limits: BinanceLimits


Handler = Callable[[Mapping[str, str], BinanceContext], Any]


@dataclass(frozen=True, slots=True)
class BinanceRoute:
    method: str
    signed: bool
    handler: Handler
    params: frozenset[str]
    """The parameters the endpoint reads; any other is ``-1104`` (``timestamp``,
    ``recvWindow`` and ``signature`` are added for signed endpoints)."""


# -- market data -------------------------------------------------------------------


def ping(params: Mapping[str, str], ctx: BinanceContext) -> Any:
    return {}


def server_time(params: Mapping[str, str], ctx: BinanceContext) -> Any:
    return {"serverTime": ctx.now_ms}


def system_status(params: Mapping[str, str], ctx: BinanceContext) -> Any:
    if ctx.maintenance:
        return {"status": 1, "msg": "system maintenance"}
    return {"status": 0, "msg": "normal"}


def _symbol_info(inst: Instrument) -> dict[str, Any]:
    return {
        "symbol": inst.symbol,
        "status": "TRADING",
        "baseAsset": inst.base,
        "baseAssetPrecision": 8,
        "quoteAsset": inst.quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8,
        "quoteCommissionPrecision": 8,
        "orderTypes": list(ORDER_TYPES),
        "icebergAllowed": False,
        "ocoAllowed": False,
        "otoAllowed": False,
        "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": False,
        "cancelReplaceAllowed": False,
        "amendAllowed": False,
        "pegInstructionsAllowed": False,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": fmt8(inst.tick),
                "maxPrice": fmt8(Decimal(1_000_000_000)),
                "tickSize": fmt8(inst.tick),
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": fmt8(inst.min_qty),
                "maxQty": fmt8(inst.max_qty),
                "stepSize": fmt8(inst.qty_step),
            },
            {
                "filterType": "MARKET_LOT_SIZE",
                "minQty": fmt8(ZERO),
                "maxQty": fmt8(inst.max_qty),
                "stepSize": fmt8(ZERO),
            },
            {
                "filterType": "NOTIONAL",
                "minNotional": fmt8(inst.min_notional),
                "applyMinToMarket": True,
                "maxNotional": fmt8(Decimal(9_000_000)),
                "applyMaxToMarket": False,
                "avgPriceMins": 5,
            },
        ],
        "permissions": [],
        "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": ["NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
    }


def exchange_info(params: Mapping[str, str], ctx: BinanceContext) -> Any:
    selected = _symbols(params, ctx.market)
    permissions = _opt(params, "permissions")
    status = _opt(params, "symbolStatus")
    if status is not None and status not in ("TRADING", "HALT", "BREAK"):
        raise invalid_value("symbolStatus")
    if selected is None:
        selected = ctx.market.list_instruments(SPOT)
        if status not in (None, "TRADING") or permissions not in (None, "SPOT", '["SPOT"]'):
            selected = []
    limits = ctx.limits
    return {
        "timezone": "UTC",
        "serverTime": ctx.now_ms,
        "rateLimits": [
            {
                "rateLimitType": "REQUEST_WEIGHT",
                "interval": "SECOND",
                "intervalNum": max(1, round(limits.weight_period)),
                "limit": limits.weight_limit,
            },
            {
                "rateLimitType": "ORDERS",
                "interval": "SECOND",
                "intervalNum": 10,
                "limit": limits.order_limit_10s,
            },
            {
                "rateLimitType": "ORDERS",
                "interval": "DAY",
                "intervalNum": 1,
                "limit": limits.order_limit_1d,
            },
        ],
        "exchangeFilters": [],
        "symbols": [_symbol_info(inst) for inst in selected],
    }


def _ticker(inst: Instrument, ctx: BinanceContext, mini: bool) -> dict[str, Any]:
    raw = ctx.market.ticker(inst, ctx.now_ms)
    last = Decimal(raw["lastPrice"])
    open_ = Decimal(raw["prevPrice24h"])
    volume = Decimal(raw["volume24h"])
    quote_volume = Decimal(raw["turnover24h"])
    data: dict[str, Any] = {"symbol": inst.symbol}
    if not mini:
        change = last - open_
        data.update(
            {
                "priceChange": fmt8(change),
                "priceChangePercent": format((change / open_ * 100).quantize(Decimal("0.001")), "f")
                if open_
                else "0.000",
                "weightedAvgPrice": fmt8(quote_volume / volume if volume else last),
                "prevClosePrice": fmt8(open_),
                "lastPrice": fmt8(last),
                "lastQty": fmt8(inst.qty_step),
                "bidPrice": fmt8(Decimal(raw["bid1Price"])),
                "bidQty": fmt8(Decimal(raw["bid1Size"])),
                "askPrice": fmt8(Decimal(raw["ask1Price"])),
                "askQty": fmt8(Decimal(raw["ask1Size"])),
            }
        )
    else:
        data["lastPrice"] = fmt8(last)
    data.update(
        {
            "openPrice": fmt8(open_),
            "highPrice": fmt8(Decimal(raw["highPrice24h"])),
            "lowPrice": fmt8(Decimal(raw["lowPrice24h"])),
            "volume": fmt8(volume),
            "quoteVolume": fmt8(quote_volume),
            "openTime": ctx.now_ms - 86_400_000,
            "closeTime": ctx.now_ms,
            "firstId": 0,
            "lastId": 0,
            "count": 0,
        }
    )
    return data


def _each(
    params: Mapping[str, str], ctx: BinanceContext, build: Callable[[Instrument], dict[str, Any]]
) -> Any:
    selected = _symbols(params, ctx.market)
    if selected is not None and _opt(params, "symbol") is not None:
        ctx.market.touch(selected[0].symbol)
        return build(selected[0])
    if selected is None:
        ctx.market.touch(None)
        selected = ctx.market.list_instruments(SPOT)
    else:
        for inst in selected:
            ctx.market.touch(inst.symbol)
    return [build(inst) for inst in selected]


def ticker_24hr(params: Mapping[str, str], ctx: BinanceContext) -> Any:
    kind = _opt(params, "type") or "FULL"
    if kind not in ("FULL", "MINI"):
        raise invalid_value("type")
    return _each(params, ctx, lambda inst: _ticker(inst, ctx, kind == "MINI"))


def ticker_price(params: Mapping[str, str], ctx: BinanceContext) -> Any:
    def build(inst: Instrument) -> dict[str, Any]:
        last = Decimal(ctx.market.ticker(inst, ctx.now_ms)["lastPrice"])
        return {"symbol": inst.symbol, "price": fmt8(last)}

    return _each(params, ctx, build)


def book_ticker(params: Mapping[str, str], ctx: BinanceContext) -> Any:
    def build(inst: Instrument) -> dict[str, Any]:
        raw = ctx.market.ticker(inst, ctx.now_ms)
        return {
            "symbol": inst.symbol,
            "bidPrice": fmt8(Decimal(raw["bid1Price"])),
            "bidQty": fmt8(Decimal(raw["bid1Size"])),
            "askPrice": fmt8(Decimal(raw["ask1Price"])),
            "askQty": fmt8(Decimal(raw["ask1Size"])),
        }

    return _each(params, ctx, build)


def depth(params: Mapping[str, str], ctx: BinanceContext) -> Any:
    inst = _symbol(params, ctx.market)
    limit = _limit(params, 100, 5000)
    ctx.market.touch(inst.symbol)
    book = ctx.market.orderbook(inst, limit, ctx.now_ms)
    return {
        "lastUpdateId": int(book["u"]),
        "bids": [[fmt8(Decimal(p)), fmt8(Decimal(q))] for p, q in book["b"]],
        "asks": [[fmt8(Decimal(p)), fmt8(Decimal(q))] for p, q in book["a"]],
    }


def klines(params: Mapping[str, str], ctx: BinanceContext) -> Any:
    inst = _symbol(params, ctx.market)
    interval = _req(params, "interval")
    model_interval = KLINE_INTERVALS.get(interval)
    if model_interval is None:
        raise BinanceError(-1120, "Invalid interval.")
    limit = _limit(params, 500, 1000)
    start = _long(params, "startTime")
    end = _long(params, "endTime")
    if start is not None and end is not None and start > end:
        raise BinanceError(-1023, "Start time is greater than end time.")
    width = KLINE_SECONDS[interval] * 1000
    if start is not None and end is None:
        # Binance: from startTime onwards (the oldest ``limit`` candles), not the newest
        end = start + limit * width - 1
    rows = ctx.market.klines(inst, model_interval, start, end, limit, ctx.now_ms)
    out = []
    for t, o, h, low, c, v, turnover in reversed(rows):
        out.append(
            [
                int(t),
                fmt8(Decimal(o)),
                fmt8(Decimal(h)),
                fmt8(Decimal(low)),
                fmt8(Decimal(c)),
                fmt8(Decimal(v)),
                int(t) + width - 1,
                fmt8(Decimal(turnover)),
                0,
                fmt8(ZERO),
                fmt8(ZERO),
                "0",
            ]
        )
    return out


# -- account and orders ---------------------------------------------------------------


def account(params: Mapping[str, str], ctx: BinanceContext) -> Any:
    omit_zero = _opt(params, "omitZeroBalances")
    if omit_zero not in (None, "true", "false"):
        raise invalid_value("omitZeroBalances")
    wallet = ctx.market.wallet_balance()["list"][0]["coin"]
    balances = []
    for entry in wallet:
        total = Decimal(entry["walletBalance"])
        locked = Decimal(entry["locked"])
        if omit_zero == "true" and not total:
            continue
        balances.append(
            {"asset": entry["coin"], "free": fmt8(total - locked), "locked": fmt8(locked)}
        )
    return {
        "makerCommission": 0,
        "takerCommission": 0,
        "buyerCommission": 0,
        "sellerCommission": 0,
        "commissionRates": {
            "maker": fmt8(ZERO),
            "taker": fmt8(ZERO),
            "buyer": fmt8(ZERO),
            "seller": fmt8(ZERO),
        },
        "canTrade": True,
        "canWithdraw": True,
        "canDeposit": True,
        "brokered": False,
        "requireSelfTradePrevention": False,
        "preventSor": False,
        "updateTime": ctx.now_ms,
        "accountType": "SPOT",
        "balances": balances,
        "permissions": ["SPOT"],
        "uid": 1,
    }


def order_create(params: Mapping[str, str], ctx: BinanceContext) -> Any:
    order, state = ctx.book.create(params, ctx.now_ms)
    resp_type = _opt(params, "newOrderRespType") or (
        "FULL" if order.type in ("MARKET", "LIMIT") else "ACK"
    )
    ack = {
        "symbol": order.inst.symbol,
        "orderId": order.order_id,
        "orderListId": -1,
        "clientOrderId": order.client_id,
        "transactTime": ctx.now_ms,
    }
    if resp_type == "ACK":
        return ack
    data = ctx.book.to_json(order, state)
    result = {
        **ack,
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
                "workingTime",
                "selfTradePreventionMode",
            )
        },
    }
    if resp_type == "FULL":
        fills = []
        if state.executed:
            fills.append(
                {
                    "price": fmt8(state.quote / state.executed),
                    "qty": fmt8(state.executed),
                    "commission": fmt8(ZERO),
                    "commissionAsset": order.inst.quote,
                    "tradeId": order.order_id,
                }
            )
        result["fills"] = fills
    return result


def order_query(params: Mapping[str, str], ctx: BinanceContext) -> Any:
    inst = _symbol(params, ctx.market)
    return ctx.book.to_json(ctx.book.find(inst, params, -2013))


def order_cancel(params: Mapping[str, str], ctx: BinanceContext) -> Any:
    return ctx.book.cancel(params, ctx.now_ms)


def open_orders(params: Mapping[str, str], ctx: BinanceContext) -> Any:
    symbol = _opt(params, "symbol")
    inst = _instrument(ctx.market, symbol) if symbol is not None else None
    return ctx.book.open_orders(inst)


def _window(params: Mapping[str, str]) -> tuple[int | None, int | None]:
    start, end = _long(params, "startTime"), _long(params, "endTime")
    if start is not None and end is not None:
        if start > end:
            raise BinanceError(-1023, "Start time is greater than end time.")
        if end - start > 86_400_000:
            raise BinanceError(-1127, "More than 24 hours between startTime and endTime.")
    return start, end


def all_orders(params: Mapping[str, str], ctx: BinanceContext) -> Any:
    inst = _symbol(params, ctx.market)
    from_id = _long(params, "orderId")
    start, end = _window(params)
    limit = _limit(params, 500, 1000)
    orders = [
        o
        for o in ctx.book.of_symbol(inst)
        if (from_id is None or o.order_id >= from_id)
        and (start is None or o.created >= start)
        and (end is None or o.created <= end)
    ]
    orders = orders[:limit] if from_id is not None or start is not None else orders[-limit:]
    return [ctx.book.to_json(o) for o in orders]


def my_trades(params: Mapping[str, str], ctx: BinanceContext) -> Any:
    inst = _symbol(params, ctx.market)
    order_id = _long(params, "orderId")
    from_id = _long(params, "fromId")
    start, end = _window(params)
    if from_id is not None and (start is not None or end is not None):
        raise BinanceError(-1128, "Combination of optional parameters invalid.")
    limit = _limit(params, 500, 1000)
    trades = []
    for order in ctx.book.of_symbol(inst):
        if order_id is not None and order.order_id != order_id:
            continue
        state = ctx.book.state(order)
        if not state.executed:
            continue
        if (from_id is not None and order.order_id < from_id) or (
            (start is not None and state.updated < start)
            or (end is not None and state.updated > end)
        ):
            continue
        trades.append(
            {
                "symbol": inst.symbol,
                "id": order.order_id,
                "orderId": order.order_id,
                "orderListId": -1,
                "price": fmt8(state.quote / state.executed),
                "qty": fmt8(state.executed),
                "quoteQty": fmt8(state.quote),
                "commission": fmt8(ZERO),
                "commissionAsset": inst.quote,
                "time": state.updated,
                "isBuyer": order.side == "BUY",
                "isMaker": order.type != "MARKET" and state.updated > order.created,
                "isBestMatch": True,
            }
        )
    trades.sort(key=lambda t: (t["time"], t["id"]))
    return trades[:limit] if from_id is not None or start is not None else trades[-limit:]


def _route(method: str, signed: bool, handler: Handler, *names: str) -> BinanceRoute:
    extra = ("timestamp", "recvWindow", "signature") if signed else ()
    return BinanceRoute(method, signed, handler, frozenset((*names, *extra)))


_ORDER_PARAMS = (
    "symbol",
    "side",
    "type",
    "timeInForce",
    "quantity",
    "quoteOrderQty",
    "price",
    "newClientOrderId",
    "newOrderRespType",
    "selfTradePreventionMode",
    "strategyId",
    "strategyType",
)

BINANCE_ROUTES: Mapping[tuple[str, str], BinanceRoute] = {
    ("GET", "/api/v3/ping"): _route("GET", False, ping),
    ("GET", "/api/v3/time"): _route("GET", False, server_time),
    ("GET", "/sapi/v1/system/status"): _route("GET", False, system_status),
    ("GET", "/api/v3/exchangeInfo"): _route(
        "GET",
        False,
        exchange_info,
        "symbol",
        "symbols",
        "permissions",
        "showPermissionSets",
        "symbolStatus",
    ),
    ("GET", "/api/v3/ticker/24hr"): _route("GET", False, ticker_24hr, "symbol", "symbols", "type"),
    ("GET", "/api/v3/ticker/price"): _route("GET", False, ticker_price, "symbol", "symbols"),
    ("GET", "/api/v3/ticker/bookTicker"): _route("GET", False, book_ticker, "symbol", "symbols"),
    ("GET", "/api/v3/depth"): _route("GET", False, depth, "symbol", "limit"),
    ("GET", "/api/v3/klines"): _route(
        "GET", False, klines, "symbol", "interval", "startTime", "endTime", "timeZone", "limit"
    ),
    ("GET", "/api/v3/account"): _route("GET", True, account, "omitZeroBalances"),
    ("POST", "/api/v3/order"): _route("POST", True, order_create, *_ORDER_PARAMS),
    ("GET", "/api/v3/order"): _route(
        "GET", True, order_query, "symbol", "orderId", "origClientOrderId"
    ),
    ("DELETE", "/api/v3/order"): _route(
        "DELETE",
        True,
        order_cancel,
        "symbol",
        "orderId",
        "origClientOrderId",
        "newClientOrderId",
        "cancelRestrictions",
    ),
    ("GET", "/api/v3/openOrders"): _route("GET", True, open_orders, "symbol"),
    ("GET", "/api/v3/allOrders"): _route(
        "GET", True, all_orders, "symbol", "orderId", "startTime", "endTime", "limit"
    ),
    ("GET", "/api/v3/myTrades"): _route(
        "GET", True, my_trades, "symbol", "orderId", "startTime", "endTime", "fromId", "limit"
    ),
}
"""(method, path) -> route, for every Binance endpoint the simulator answers."""
