"""The Binance spot REST endpoints served, as plain functions of the request parameters.

Every handler takes the parsed parameters and a :class:`BinanceContext` and
returns the JSON answer, or raises :class:`~._binance_errors.BinanceError`.
Market data come from the shared matching model (``_market.py``), orders
from :class:`~._binance_orders.BinanceBook`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ._binance_config import BinanceLimits
from ._binance_errors import BinanceError, invalid_value
from ._binance_limits import interval
from ._binance_orders import ORDER_TYPES, BinanceBook
from ._binance_params import (
    EIGHT,
    SPOT,
    ZERO,
    fmt8,
    instrument,
    limit_param,
    long_param,
    opt,
    req,
    symbol_param,
    symbols_param,
)
from ._market import Instrument, MarketModel

__all__ = ["BINANCE_ROUTES", "BinanceContext", "BinanceRoute"]

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
    selected = symbols_param(params, ctx.market)
    permissions = opt(params, "permissions")
    status = opt(params, "symbolStatus")
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
                "interval": interval(limits.weight_period)[0],
                "intervalNum": interval(limits.weight_period)[1],
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
    selected = symbols_param(params, ctx.market)
    if selected is not None and opt(params, "symbol") is not None:
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
    kind = opt(params, "type") or "FULL"
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
    inst = symbol_param(params, ctx.market)
    limit = limit_param(params, 100, 5000)
    ctx.market.touch(inst.symbol)
    book = ctx.market.orderbook(inst, limit, ctx.now_ms)
    return {
        "lastUpdateId": int(book["u"]),
        "bids": [[fmt8(Decimal(p)), fmt8(Decimal(q))] for p, q in book["b"]],
        "asks": [[fmt8(Decimal(p)), fmt8(Decimal(q))] for p, q in book["a"]],
    }


def klines(params: Mapping[str, str], ctx: BinanceContext) -> Any:
    inst = symbol_param(params, ctx.market)
    interval = req(params, "interval")
    model_interval = KLINE_INTERVALS.get(interval)
    if model_interval is None:
        raise BinanceError(-1120, "Invalid interval.")
    limit = limit_param(params, 500, 1000)
    start = long_param(params, "startTime")
    end = long_param(params, "endTime")
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
    omit_zero = opt(params, "omitZeroBalances")
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
    resp_type = opt(params, "newOrderRespType") or (
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
    inst = symbol_param(params, ctx.market)
    return ctx.book.to_json(ctx.book.find(inst, params, -2013))


def order_cancel(params: Mapping[str, str], ctx: BinanceContext) -> Any:
    return ctx.book.cancel(params, ctx.now_ms)


def open_orders(params: Mapping[str, str], ctx: BinanceContext) -> Any:
    symbol = opt(params, "symbol")
    inst = instrument(ctx.market, symbol) if symbol is not None else None
    return ctx.book.open_orders(inst)


def _window(params: Mapping[str, str]) -> tuple[int | None, int | None]:
    start, end = long_param(params, "startTime"), long_param(params, "endTime")
    if start is not None and end is not None:
        if start > end:
            raise BinanceError(-1023, "Start time is greater than end time.")
        if end - start > 86_400_000:
            raise BinanceError(-1127, "More than 24 hours between startTime and endTime.")
    return start, end


def all_orders(params: Mapping[str, str], ctx: BinanceContext) -> Any:
    inst = symbol_param(params, ctx.market)
    from_id = long_param(params, "orderId")
    start, end = _window(params)
    limit = limit_param(params, 500, 1000)
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
    inst = symbol_param(params, ctx.market)
    order_id = long_param(params, "orderId")
    from_id = long_param(params, "fromId")
    start, end = _window(params)
    if from_id is not None and (start is not None or end is not None):
        raise BinanceError(-1128, "Combination of optional parameters invalid.")
    limit = limit_param(params, 500, 1000)
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


def coins(params: Mapping[str, str], ctx: BinanceContext) -> Any:
    """``/sapi/v1/capital/config/getall``: what ccxt's ``fetch_currencies`` reads."""
    wallet = ctx.market.wallet_balance()["list"][0]["coin"]
    out = []
    for entry in wallet:
        coin = entry["coin"]
        total, locked = Decimal(entry["walletBalance"]), Decimal(entry["locked"])
        out.append(
            {
                "coin": coin,
                "name": coin,
                "depositAllEnable": True,
                "withdrawAllEnable": True,
                "free": fmt8(total - locked),
                "locked": fmt8(locked),
                "freeze": fmt8(ZERO),
                "withdrawing": fmt8(ZERO),
                "ipoing": fmt8(ZERO),
                "ipoable": fmt8(ZERO),
                "storage": fmt8(ZERO),
                "isLegalMoney": False,
                "trading": True,
                "networkList": [
                    {
                        "network": coin,
                        "coin": coin,
                        "name": coin,
                        "isDefault": True,
                        "depositEnable": True,
                        "withdrawEnable": True,
                        "withdrawFee": fmt8(ZERO),
                        "withdrawMin": fmt8(ZERO),
                        "withdrawMax": fmt8(Decimal(10_000_000)),
                        "withdrawIntegerMultiple": fmt8(EIGHT),
                        "depositDust": fmt8(EIGHT),
                        "minConfirm": 1,
                        "unLockConfirm": 1,
                        "sameAddress": False,
                        "busy": False,
                    }
                ],
            }
        )
    return out


def no_margin_pairs(params: Mapping[str, str], ctx: BinanceContext) -> Any:
    """``/sapi/v1/margin/allPairs`` and ``.../isolated/allPairs``: no margin trading."""
    return []


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
    ("GET", "/sapi/v1/capital/config/getall"): _route("GET", True, coins),
    ("GET", "/sapi/v1/margin/allPairs"): _route("GET", True, no_margin_pairs, "symbol"),
    ("GET", "/sapi/v1/margin/isolated/allPairs"): _route("GET", True, no_margin_pairs, "symbol"),
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
