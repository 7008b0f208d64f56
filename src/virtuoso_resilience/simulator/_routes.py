"""The Bybit v5 endpoints served, as plain functions of the request parameters.

Each handler takes the parsed parameters and returns the ``result`` object of
Bybit's envelope, or raises :class:`~._market.BybitError`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ._market import CATEGORIES, MAX_TIMESTAMP_MS, BybitError, MarketModel, echo

__all__ = ["ROUTES", "Route", "RouteContext"]


@dataclass(frozen=True, slots=True)
class RouteContext:
    """What a handler may use besides its parameters."""

    market: MarketModel
    now_ms: int
    maintenance: list[dict[str, Any]]
    """``/v5/system/status`` events (ongoing or scheduled maintenance)."""
    api_key: str | None


_INTEGER = re.compile(r"-?[0-9]{1,18}", re.ASCII)

Handler = Callable[[Mapping[str, Any], RouteContext], Any]


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    private: bool
    handler: Handler


def _int(params: Mapping[str, Any], name: str, default: int, low: int, high: int) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    text = str(raw).strip()
    # ASCII digits only ('²' and '①' pass str.isdigit()); 18 digits bound int() and the range
    if _INTEGER.fullmatch(text) is None:
        raise BybitError(10001, f"params error: {name} must be an integer")
    value = int(text)
    if not low <= value <= high:
        raise BybitError(10001, f"params error: {name} must be in {low}..{high}")
    return value


def _opt_int(params: Mapping[str, Any], name: str, low: int, high: int) -> int | None:
    if params.get(name) in (None, ""):
        return None
    return _int(params, name, 0, low, high)


def market_time(params: Mapping[str, Any], ctx: RouteContext) -> Any:
    return {"timeSecond": str(ctx.now_ms // 1000), "timeNano": str(ctx.now_ms * 1_000_000)}


def system_status(params: Mapping[str, Any], ctx: RouteContext) -> Any:
    return {"list": ctx.maintenance}


def instruments_info(params: Mapping[str, Any], ctx: RouteContext) -> Any:
    category = params.get("category")
    if not category:
        raise BybitError(10001, "params error: category is required")
    if category not in ("spot", "linear", "inverse", "option"):
        raise BybitError(10001, f"params error: category {echo(category)} is invalid")
    if params.get("status") not in (None, "", "Trading") or category not in CATEGORIES:
        items: list[Any] = []
    else:
        items = [i.info() for i in ctx.market.list_instruments(category, params.get("symbol"))]
    return {"category": category, "list": items, "nextPageCursor": ""}


def tickers(params: Mapping[str, Any], ctx: RouteContext) -> Any:
    category = params.get("category")
    if category not in ("spot", "linear", "inverse", "option"):
        raise BybitError(10001, "params error: category is invalid")
    symbol = params.get("symbol")
    market = ctx.market
    if category not in CATEGORIES:
        return {"category": category, "list": []}
    if symbol:
        inst = market.instrument(category, symbol)
        market.touch(inst.symbol)
        return {"category": category, "list": [market.ticker(inst, ctx.now_ms)]}
    market.touch(None)
    items = [market.ticker(i, ctx.now_ms) for i in market.list_instruments(category)]
    return {"category": category, "list": items}


def orderbook(params: Mapping[str, Any], ctx: RouteContext) -> Any:
    inst = ctx.market.instrument(params.get("category"), params.get("symbol"))
    high = 200 if inst.category == "spot" else 500
    limit = _int(params, "limit", 1 if inst.category == "spot" else 25, 1, high)
    ctx.market.touch(inst.symbol)
    return ctx.market.orderbook(inst, limit, ctx.now_ms)


def kline(params: Mapping[str, Any], ctx: RouteContext) -> Any:
    inst = ctx.market.instrument(params.get("category") or "linear", params.get("symbol"))
    interval = params.get("interval")
    if not interval:
        raise BybitError(10001, "params error: interval is required")
    limit = _int(params, "limit", 200, 1, 1000)
    rows = ctx.market.klines(
        inst,
        str(interval),
        _opt_int(params, "start", 0, MAX_TIMESTAMP_MS),
        _opt_int(params, "end", 0, MAX_TIMESTAMP_MS),
        limit,
        ctx.now_ms,
    )
    return {"category": inst.category, "symbol": inst.symbol, "list": rows}


def query_api(params: Mapping[str, Any], ctx: RouteContext) -> Any:
    return {
        "id": "1",
        "note": "virtuoso-resilience simulator",
        "apiKey": "***",
        "readOnly": 0,
        "secret": "",
        "permissions": {
            "ContractTrade": ["Order", "Position"],
            "Spot": ["SpotTrade"],
            "Wallet": ["AccountTransfer", "SubMemberTransfer"],
            "Options": [],
            "Derivatives": [],
            "CopyTrading": [],
            "BlockTrade": [],
            "Exchange": [],
            "NFT": [],
            "Affiliate": [],
        },
        "ips": ["*"],
        "type": 1,
        "deadlineDay": -1,
        "expiredAt": "",
        "createdAt": "2024-01-01T00:00:00Z",
        "unified": 0,
        "uta": 1,
        "userID": 1,
        "inviterID": 0,
        "vipLevel": "No VIP",
        "mktMakerLevel": "0",
        "affiliateID": 0,
        "rsaPublicKey": "",
        "isMaster": True,
        "parentUid": "0",
        "kycLevel": "LEVEL_DEFAULT",
        "kycRegion": "",
    }


def account_info(params: Mapping[str, Any], ctx: RouteContext) -> Any:
    return {
        "marginMode": "REGULAR_MARGIN",
        "updatedTime": str(ctx.now_ms),
        "unifiedMarginStatus": 6,
        "dcpStatus": "OFF",
        "timeWindow": 10,
        "smpGroup": 0,
        "isMasterTrader": False,
        "spotHedgingStatus": "OFF",
    }


def coin_info(params: Mapping[str, Any], ctx: RouteContext) -> Any:
    coins = [ctx.market.quote, *(s[: -len(ctx.market.quote)] for s in ctx.market.symbols)]
    wanted = params.get("coin")
    rows = []
    for coin in coins:
        if wanted and coin != wanted:
            continue
        rows.append(
            {
                "name": coin,
                "coin": coin,
                "remainAmount": "1000000",
                "chains": [
                    {
                        "chainType": coin,
                        "confirmation": "10",
                        "withdrawFee": "0",
                        "depositMin": "0",
                        "withdrawMin": "0",
                        "chain": coin,
                        "chainDeposit": "1",
                        "chainWithdraw": "1",
                        "minAccuracy": "8",
                        "withdrawPercentageFee": "0",
                    }
                ],
            }
        )
    return {"rows": rows}


def wallet_balance(params: Mapping[str, Any], ctx: RouteContext) -> Any:
    account_type = params.get("accountType")
    if account_type != "UNIFIED":
        raise BybitError(10001, "accountType only support UNIFIED.")
    coin = params.get("coin")
    coins = [c.strip() for c in str(coin).split(",") if c.strip()] if coin else None
    return ctx.market.wallet_balance(coins)


def order_create(params: Mapping[str, Any], ctx: RouteContext) -> Any:
    return ctx.market.create_order(params, ctx.now_ms)


def order_cancel(params: Mapping[str, Any], ctx: RouteContext) -> Any:
    return ctx.market.cancel_order(params, ctx.now_ms)


def order_realtime(params: Mapping[str, Any], ctx: RouteContext) -> Any:
    return ctx.market.query_orders(params, history=False)


def order_history(params: Mapping[str, Any], ctx: RouteContext) -> Any:
    return ctx.market.query_orders(params, history=True)


ROUTES: Mapping[str, Route] = {
    "/v5/market/time": Route("GET", False, market_time),
    "/v5/system/status": Route("GET", False, system_status),
    "/v5/market/instruments-info": Route("GET", False, instruments_info),
    "/v5/market/tickers": Route("GET", False, tickers),
    "/v5/market/orderbook": Route("GET", False, orderbook),
    "/v5/market/kline": Route("GET", False, kline),
    "/v5/market/mark-price-kline": Route("GET", False, kline),
    "/v5/market/index-price-kline": Route("GET", False, kline),
    "/v5/user/query-api": Route("GET", True, query_api),
    "/v5/account/info": Route("GET", True, account_info),
    "/v5/asset/coin/query-info": Route("GET", True, coin_info),
    "/v5/account/wallet-balance": Route("GET", True, wallet_balance),
    "/v5/order/realtime": Route("GET", True, order_realtime),
    "/v5/order/history": Route("GET", True, order_history),
    "/v5/order/create": Route("POST", True, order_create),
    "/v5/order/cancel": Route("POST", True, order_cancel),
}
"""Path -> route, for every Bybit v5 endpoint the simulator answers.

The dispatch in ``_server`` looks a request up in one such table per dialect;
another dialect brings its own table (and its own envelope and authentication).
"""
