"""The in-memory exchange: instruments, moving prices, order books, one account.

Prices follow a seeded geometric random walk per symbol (one step per
ticker, order-book or order-creation request for that symbol, or per
:meth:`MarketModel.tick`).
Spot and linear (USDT perpetual) markets of a coin share one mid price.
Market orders fill at once, in full, at the best bid/ask; limit orders that
cross fill at once at the best price, the others rest and fill in full at
their limit price when the price crosses them. There are no fees.

Amounts are :class:`~decimal.Decimal`; Bybit answers carry them as strings.
"""

from __future__ import annotations

import functools
import math
import random
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import (
    ROUND_FLOOR,
    Context,
    Decimal,
    DivisionByZero,
    InvalidOperation,
    Overflow,
    localcontext,
)
from typing import Any, ParamSpec, TypeVar

__all__ = [
    "MAX_BALANCE",
    "MAX_PRICE",
    "MIN_PRICE",
    "BybitError",
    "Instrument",
    "MarketModel",
    "check_price",
    "echo",
]

ZERO = Decimal(0)
KLINE_INTERVALS: Mapping[str, int] = {
    "1": 60,
    "3": 180,
    "5": 300,
    "15": 900,
    "30": 1800,
    "60": 3600,
    "120": 7200,
    "240": 14400,
    "360": 21600,
    "720": 43200,
    "D": 86400,
    "W": 604800,
    "M": 2592000,
}
CATEGORIES = ("spot", "linear")
MAX_PRICE = 1e15
"""Highest mid price accepted (quote coin); beyond it Bybit-style decimals lose precision."""
MIN_PRICE = 1e-8
"""Lowest mid price accepted (quote coin): a market's lot sizes derive from its price."""
MAX_BALANCE = 1e15
"""Largest starting balance of a coin."""
MAX_ORDER_VALUE = Decimal(10) ** 15
"""Largest quote amount of a spot market buy (``marketUnit=quoteCoin``)."""
_MAX_ORDER_PRICE = Decimal(repr(MAX_PRICE))
MAX_TIMESTAMP_MS = 253_402_300_799_999
"""The last millisecond of the year 9999: the range of candle ``start`` / ``end``."""

# Amounts are bounded (prices 1e-8..1e15, quantities by the instrument), so 60
# significant digits hold every product exactly; InvalidOperation, Overflow and
# DivisionByZero stay trapped so that a bug is loud rather than a silent NaN.
_DECIMALS = Context(prec=60, traps=[InvalidOperation, Overflow, DivisionByZero])
_P = ParamSpec("_P")
_R = TypeVar("_R")


def _exact(method: Callable[_P, _R]) -> Callable[_P, _R]:
    """Run ``method`` under the model's own decimal context (not the caller's)."""

    @functools.wraps(method)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with localcontext(_DECIMALS):
            return method(*args, **kwargs)

    return wrapper


_OPEN = ("New", "PartiallyFilled", "Untriggered")


def echo(value: object, limit: int = 40) -> str:
    """``repr(value)`` cut to ``limit`` characters: a hostile parameter is not echoed in full."""
    try:
        text = repr(value)
    except (RecursionError, ValueError):
        return f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


class BybitError(Exception):
    """A business error answered as ``{"retCode": code, "retMsg": message}``."""

    def __init__(self, code: int, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")


def check_price(price: object, name: str = "price") -> float:
    """``price`` as a float, or :class:`ValueError` naming ``name`` unless 1e-8 <= p <= 1e15.

    NaN, infinities, bools and strings are rejected: they would break every later answer.
    """
    value = math.nan
    if not isinstance(price, bool) and isinstance(price, int | float):
        try:
            value = float(price)
        except OverflowError:
            value = math.inf
    if not (math.isfinite(value) and MIN_PRICE <= value <= MAX_PRICE):
        if isinstance(price, int | float) and not isinstance(price, bool) and abs(value) >= 1e40:
            shown = f"{value:g}"  # not a 400-digit repr
        else:
            shown = repr(price)
            shown = shown if len(shown) <= 60 else shown[:57] + "..."
        raise ValueError(
            f"{name} must be a finite number in {MIN_PRICE:g}..{MAX_PRICE:g}, got {shown}"
        )
    return value


def _floor(value: Decimal, step: Decimal) -> Decimal:
    return (value / step).to_integral_value(rounding=ROUND_FLOOR) * step


def _fmt(value: Decimal, step: Decimal | None = None) -> str:
    """A plain decimal string: quantized to ``step``, else without trailing zeros."""
    value = value.quantize(step) if step is not None else value.normalize()
    return format(value, "f")


def _dec(text: object, name: str) -> Decimal:
    """A finite decimal parameter (a string or a JSON number), else Bybit's 10001."""
    if text is None or text == "":
        raise BybitError(10001, f"params error: {name} is required")
    if isinstance(text, bool):
        raise BybitError(10001, f"params error: {name} is invalid")
    try:
        value = Decimal(str(text).strip())
    except (ArithmeticError, ValueError):  # ValueError: an int too long to print
        raise BybitError(10001, f"params error: {name} is invalid") from None
    if not value.is_finite():
        raise BybitError(10001, f"params error: {name} is invalid")
    return value


@dataclass(frozen=True, slots=True)
class Instrument:
    """One tradable market (a Bybit ``symbol`` in a ``category``)."""

    symbol: str
    category: str
    base: str
    quote: str
    tick: Decimal
    qty_step: Decimal
    min_qty: Decimal
    max_qty: Decimal
    min_notional: Decimal

    @classmethod
    def build(cls, category: str, base: str, quote: str, price: float) -> Instrument:
        digits = max(1, math.floor(math.log10(price)) + 1)
        if category == "spot":
            tick = Decimal(1).scaleb(-2) if price >= 1 else Decimal(1).scaleb(-(6 - digits))
            qty_step = Decimal(1).scaleb(-max(0, digits + 1))
            min_notional = Decimal(1)
        else:
            tick = Decimal(1).scaleb(-max(0, 6 - digits))
            qty_step = Decimal(1).scaleb(-max(0, digits - 2))
            min_notional = Decimal(5)
        return cls(
            symbol=base + quote,
            category=category,
            base=base,
            quote=quote,
            tick=tick,
            qty_step=qty_step,
            min_qty=qty_step,
            max_qty=(Decimal(10_000_000) / Decimal(str(price))).quantize(qty_step),
            min_notional=min_notional,
        )

    def info(self) -> dict[str, Any]:
        """The ``/v5/market/instruments-info`` entry."""
        if self.category == "spot":
            return {
                "symbol": self.symbol,
                "baseCoin": self.base,
                "quoteCoin": self.quote,
                "innovation": "0",
                "status": "Trading",
                "marginTrading": "none",
                "stTag": "0",
                "lotSizeFilter": {
                    "basePrecision": _fmt(self.qty_step),
                    "quotePrecision": "0.00000001",
                    "minOrderQty": _fmt(self.min_qty),
                    "maxOrderQty": _fmt(self.max_qty),
                    "minOrderAmt": _fmt(self.min_notional),
                    "maxOrderAmt": "2000000",
                },
                "priceFilter": {"tickSize": _fmt(self.tick)},
                "riskParameters": {"priceLimitRatioX": "0.05", "priceLimitRatioY": "0.05"},
            }
        return {
            "symbol": self.symbol,
            "contractType": "LinearPerpetual",
            "status": "Trading",
            "baseCoin": self.base,
            "quoteCoin": self.quote,
            "launchTime": "1585526400000",
            "deliveryTime": "0",
            "deliveryFeeRate": "",
            "priceScale": str(-self.tick.as_tuple().exponent),  # type: ignore[operator]
            "leverageFilter": {"minLeverage": "1", "maxLeverage": "100.00", "leverageStep": "0.01"},
            "priceFilter": {
                "minPrice": _fmt(self.tick),
                "maxPrice": "1999999.80",
                "tickSize": _fmt(self.tick),
            },
            "lotSizeFilter": {
                "maxOrderQty": _fmt(self.max_qty),
                "minOrderQty": _fmt(self.min_qty),
                "qtyStep": _fmt(self.qty_step),
                "postOnlyMaxOrderQty": _fmt(self.max_qty),
                "maxMktOrderQty": _fmt(self.max_qty),
                "minNotionalValue": _fmt(self.min_notional),
            },
            "unifiedMarginTrade": True,
            "fundingInterval": 480,
            "settleCoin": self.quote,
            "copyTrading": "both",
            "upperFundingRate": "0.005",
            "lowerFundingRate": "-0.005",
            "isPreListing": False,
        }


@dataclass(slots=True)
class _Quote:
    """The price state of one symbol (shared by its spot and linear markets)."""

    mid: float
    open24: float
    high: float
    low: float
    volume: Decimal
    turnover: Decimal
    step: int = 0
    phases: tuple[float, ...] = ()


@dataclass(slots=True)
class _Order:
    order_id: str
    link_id: str
    inst: Instrument
    side: str
    order_type: str
    price: Decimal
    qty: Decimal
    market_unit: str
    tif: str
    reduce_only: bool
    created: int
    updated: int
    status: str = "New"
    cum_qty: Decimal = ZERO
    cum_value: Decimal = ZERO
    locked_coin: str = ""
    locked: Decimal = ZERO
    cancel_type: str = "UNKNOWN"
    reject_reason: str = "EC_NoError"
    last_price_on_created: str = ""

    @property
    def is_open(self) -> bool:
        return self.status in _OPEN

    def to_bybit(self) -> dict[str, Any]:
        inst = self.inst
        avg = (self.cum_value / self.cum_qty) if self.cum_qty else ZERO
        leaves = ZERO if not self.is_open else self.qty - self.cum_qty
        data: dict[str, Any] = {
            "orderId": self.order_id,
            "orderLinkId": self.link_id,
            "blockTradeId": "",
            "symbol": inst.symbol,
            "price": _fmt(self.price, inst.tick) if self.order_type == "Limit" else "0",
            "qty": _fmt(self.qty),
            "side": self.side,
            "isLeverage": "0",
            "positionIdx": 0,
            "orderStatus": self.status,
            "cancelType": self.cancel_type,
            "rejectReason": self.reject_reason,
            "avgPrice": _fmt(avg, inst.tick) if self.cum_qty else "0",
            "leavesQty": _fmt(leaves),
            "leavesValue": _fmt((leaves * self.price).quantize(Decimal("0.00000001"))),
            "cumExecQty": _fmt(self.cum_qty),
            "cumExecValue": _fmt(self.cum_value.quantize(Decimal("0.00000001"))),
            "cumExecFee": "0",
            "timeInForce": self.tif,
            "orderType": self.order_type,
            "stopOrderType": "",
            "orderIv": "",
            "triggerPrice": "0",
            "takeProfit": "0",
            "stopLoss": "0",
            "tpTriggerBy": "",
            "slTriggerBy": "",
            "triggerDirection": 0,
            "triggerBy": "",
            "lastPriceOnCreated": self.last_price_on_created,
            "reduceOnly": self.reduce_only,
            "closeOnTrigger": False,
            "smpType": "None",
            "smpGroup": 0,
            "smpOrderId": "",
            "placeType": "",
            "createdTime": str(self.created),
            "updatedTime": str(self.updated),
        }
        if inst.category == "spot":
            if self.order_type == "Market":
                data["marketUnit"] = self.market_unit
        else:
            data["tpslMode"] = ""
        return data


@dataclass(slots=True)
class _Position:
    size: Decimal = ZERO  # signed: > 0 long
    entry: Decimal = ZERO


@dataclass(slots=True)
class _Account:
    wallet: dict[str, Decimal] = field(default_factory=dict)
    locked: dict[str, Decimal] = field(default_factory=dict)
    positions: dict[str, _Position] = field(default_factory=dict)
    realised: Decimal = ZERO


def _after_fill(
    size: Decimal, entry: Decimal, delta: Decimal, price: Decimal
) -> tuple[Decimal, Decimal, Decimal]:
    """A one-way position after a fill of ``delta`` (signed) at ``price``: (size, entry, PnL)."""
    if size == 0 or (size > 0) == (delta > 0):
        new = size + delta
        return new, (abs(size) * entry + abs(delta) * price) / abs(new), ZERO
    closing = min(abs(delta), abs(size))
    pnl = closing * (price - entry) * (1 if size > 0 else -1)
    new = size + delta
    if new == 0:
        entry = ZERO
    elif (new > 0) != (size > 0):
        entry = price
    return new, entry, pnl


def _excess_reduce_only(size: Decimal, orders: Iterable[_Order]) -> list[_Order]:
    """The reduce-only orders a position of ``size`` does not cover (oldest keep their place)."""
    closing_side = "Sell" if size > 0 else "Buy" if size < 0 else ""
    room = abs(size)
    excess: list[_Order] = []
    for order in orders:
        if not order.reduce_only:
            continue
        if order.side == closing_side and order.qty <= room:
            room -= order.qty
        else:
            excess.append(order)
    return excess


class MarketModel:
    """Instruments, prices, books and the single simulated account."""

    def __init__(
        self,
        *,
        seed: int,
        prices: Mapping[str, float],
        balances: Mapping[str, float],
        volatility: float,
        leverage: int,
        auto_tick: bool,
        wall_ms: Callable[[], int],
        quote: str = "USDT",
    ) -> None:
        for base, price in prices.items():
            check_price(price, f"prices[{echo(base)}]")
        for coin, amount in balances.items():
            if (
                isinstance(amount, bool)
                or not isinstance(amount, int | float)
                or not 0 <= amount <= MAX_BALANCE
            ):
                raise ValueError(
                    f"balances[{echo(coin)}] must be a finite number in 0..{MAX_BALANCE:g}, "
                    f"got {echo(amount)}"
                )
        if isinstance(leverage, bool) or not isinstance(leverage, int) or not 1 <= leverage <= 100:
            raise ValueError(f"leverage must be an integer in 1..100, got {echo(leverage)}")
        if not (isinstance(volatility, int | float) and 0 <= volatility <= 0.1):
            shown = echo(volatility)
            raise ValueError(f"volatility must be a finite number in 0..0.1, got {shown}")
        self._wall_ms = wall_ms
        self.seed = seed
        self.quote = quote
        self.volatility = volatility
        self.leverage = Decimal(leverage)
        self.auto_tick = auto_tick
        self._initial_prices = dict(prices)
        self._initial_balances = dict(balances)
        self.rng = random.Random(f"{seed}/prices")
        self.instruments: dict[tuple[str, str], Instrument] = {}
        self._quotes: dict[str, _Quote] = {}
        self._orders: dict[str, _Order] = {}
        self._by_link: dict[str, _Order] = {}
        self._resting: dict[str, dict[str, _Order]] = {}
        """Symbol -> open (resting) limit orders by id, in creation order: what a tick matches."""
        self._next_id = 0
        self._id_prefix = 0
        self.account = _Account()
        self.orders_created = 0
        self.orders_filled = 0
        self.reset()

    @_exact
    def reset(self, seed: int | None = None) -> None:
        """Back to the initial prices and balances, no orders; optionally with a new seed."""
        if seed is not None:
            self.seed = seed
        self.rng = random.Random(f"{self.seed}/prices")
        phase_rng = random.Random(f"{self.seed}/history")
        self.instruments.clear()
        self._quotes.clear()
        for base, price in self._initial_prices.items():
            for category in CATEGORIES:
                inst = Instrument.build(category, base, self.quote, price)
                self.instruments[(category, inst.symbol)] = inst
            symbol = base + self.quote
            volume = Decimal(str(round(5e8 / price, 3)))
            self._quotes[symbol] = _Quote(
                mid=price,
                open24=price,
                high=price,
                low=price,
                volume=volume,
                turnover=(volume * Decimal(str(price))).quantize(Decimal("0.0001")),
                phases=tuple(phase_rng.uniform(0, 2 * math.pi) for _ in range(4)),
            )
        self._orders.clear()
        self._by_link.clear()
        self._resting.clear()
        self._next_id = 0
        self._id_prefix = random.Random(f"{self.seed}/ids").getrandbits(64)
        self.account = _Account(
            wallet={coin: Decimal(str(amount)) for coin, amount in self._initial_balances.items()}
        )
        self.account.wallet.setdefault(self.quote, ZERO)
        for base in self._initial_prices:
            self.account.wallet.setdefault(base, ZERO)
        self.orders_created = 0
        self.orders_filled = 0

    # -- lookup -----------------------------------------------------------------

    def instrument(self, category: str | None, symbol: str | None) -> Instrument:
        if not category:
            raise BybitError(10001, "params error: category is required")
        if category not in CATEGORIES:
            raise BybitError(10001, f"params error: category {echo(category)} is not supported")
        if not symbol:
            raise BybitError(10001, "params error: symbol is required")
        inst = self.instruments.get((category, symbol))
        if inst is None:
            raise BybitError(10001, "Not supported symbols")
        return inst

    def list_instruments(self, category: str, symbol: str | None = None) -> list[Instrument]:
        return [
            inst
            for (cat, sym), inst in self.instruments.items()
            if cat == category and (not symbol or sym == symbol)
        ]

    @property
    def symbols(self) -> tuple[str, ...]:
        """Bybit symbol ids (``BTCUSDT``, ...)."""
        return tuple(self._quotes)

    def price(self, symbol: str) -> float:
        """Current mid price of ``symbol`` (e.g. ``"BTCUSDT"``)."""
        return self._quote(symbol).mid

    def _quote(self, symbol: str) -> _Quote:
        quote = self._quotes.get(symbol)
        if quote is None:
            raise KeyError(f"unknown symbol {echo(symbol)}; known: {', '.join(self._quotes)}")
        return quote

    # -- prices -----------------------------------------------------------------

    @_exact
    def tick(self, symbol: str | None = None, steps: int = 1) -> None:
        """Advance the random walk of ``symbol`` (or of every symbol) by ``steps`` steps."""
        symbols = [symbol] if symbol is not None else list(self._quotes)
        for _ in range(steps):
            for sym in symbols:
                quote = self._quote(sym)
                step = math.exp(self.volatility * self.rng.gauss(0.0, 1.0))
                quote.mid = min(MAX_PRICE, max(MIN_PRICE, quote.mid * step))
                quote.step += 1
                quote.high = max(quote.high, quote.mid)
                quote.low = min(quote.low, quote.mid)
                self._match(sym)

    def touch(self, symbol: str | None) -> None:
        """A request looked at ``symbol``: advance it one step when ``auto_tick`` is on."""
        if self.auto_tick and (symbol is None or symbol in self._quotes):
            self.tick(symbol)

    @_exact
    def set_price(self, symbol: str, price: float) -> None:
        """Move ``symbol``'s mid price (resting orders that now cross are filled).

        Raises :class:`ValueError` unless ``price`` is a finite number in
        ``0 < price <= 1e15``, :class:`KeyError` for an unknown symbol.
        """
        value = check_price(price)
        quote = self._quote(symbol)
        quote.mid = value
        quote.high = max(quote.high, quote.mid)
        quote.low = min(quote.low, quote.mid)
        self._match(symbol)

    def best(self, inst: Instrument) -> tuple[Decimal, Decimal]:
        """(best bid, best ask) of ``inst``: one tick apart around the mid price."""
        mid = Decimal(repr(self._quote(inst.symbol).mid))
        bid = _floor(mid, inst.tick)
        if bid <= 0:
            bid = inst.tick
        return bid, bid + inst.tick

    @_exact
    def orderbook(self, inst: Instrument, limit: int, now_ms: int) -> dict[str, Any]:
        quote = self._quote(inst.symbol)
        bid, ask = self.best(inst)
        rng = random.Random(f"{self.seed}/{inst.category}/{inst.symbol}/{quote.step}")
        step = inst.qty_step
        scale = Decimal(str(max(quote.mid, 1e-9)))

        def size() -> str:
            notional = Decimal(str(round(rng.uniform(500, 50_000), 2)))
            return _fmt(max(step, _floor(notional / scale, step)))

        bids = [[_fmt(bid - inst.tick * i, inst.tick), size()] for i in range(limit)]
        asks = [[_fmt(ask + inst.tick * i, inst.tick), size()] for i in range(limit)]
        bids = [level for level in bids if Decimal(level[0]) > 0]
        return {
            "s": inst.symbol,
            "b": bids,
            "a": asks,
            "ts": now_ms,
            "u": quote.step + 1,
            "seq": quote.step + 1,
            "cts": now_ms,
        }

    @_exact
    def ticker(self, inst: Instrument, now_ms: int) -> dict[str, Any]:
        quote = self._quote(inst.symbol)
        bid, ask = self.best(inst)
        tick = inst.tick
        last = Decimal(repr(quote.mid)).quantize(tick)
        open24 = Decimal(repr(quote.open24)).quantize(tick)
        change = (last - open24) / open24 if open24 else ZERO
        data: dict[str, Any] = {
            "symbol": inst.symbol,
            "bid1Price": _fmt(bid, tick),
            "bid1Size": _fmt(inst.qty_step * 1000),
            "ask1Price": _fmt(ask, tick),
            "ask1Size": _fmt(inst.qty_step * 1000),
            "lastPrice": _fmt(last, tick),
            "prevPrice24h": _fmt(open24, tick),
            "price24hPcnt": _fmt(change.quantize(Decimal("0.000001"))),
            "highPrice24h": _fmt(Decimal(repr(quote.high)).quantize(tick)),
            "lowPrice24h": _fmt(Decimal(repr(quote.low)).quantize(tick)),
            "turnover24h": _fmt(quote.turnover.quantize(Decimal("0.0001"))),
            "volume24h": _fmt(quote.volume),
        }
        if inst.category == "spot":
            data["usdIndexPrice"] = _fmt(last, tick)
        else:
            data.update(
                {
                    "indexPrice": _fmt(last, tick),
                    "markPrice": _fmt(last, tick),
                    "prevPrice1h": _fmt(open24, tick),
                    "openInterest": "1000",
                    "openInterestValue": _fmt((last * 1000).quantize(Decimal("0.01"))),
                    "fundingRate": "0.0001",
                    "nextFundingTime": str((now_ms // 28_800_000 + 1) * 28_800_000),
                    "predictedDeliveryPrice": "",
                    "basisRate": "",
                    "deliveryFeeRate": "",
                    "deliveryTime": "0",
                }
            )
        return data

    @_exact
    def klines(
        self,
        inst: Instrument,
        interval: str,
        start: int | None,
        end: int | None,
        limit: int,
        now_ms: int,
    ) -> list[list[str]]:
        """Synthetic candles, newest first; the newest closes at the current price."""
        seconds = KLINE_INTERVALS.get(interval)
        if seconds is None:
            raise BybitError(10001, f"params error: Invalid period {echo(interval)}")
        width = seconds * 1000
        last = (now_ms // width) * width
        if end is not None:
            last = min(last, (end // width) * width)
        first = last - (limit - 1) * width
        if start is not None:
            first = max(first, -(-start // width) * width)
        if first > last:
            return []
        quote = self._quote(inst.symbol)
        scale = self.volatility * 40.0

        def level(t: int) -> float:
            x = t / 1000.0
            total = 0.0
            for i, phase in enumerate(quote.phases):
                period = 3600.0 * (6**i)
                total += math.sin(2 * math.pi * x / period + phase) / (i + 1)
            return total

        anchor = level(last)
        tick = inst.tick
        rows: list[list[str]] = []
        t = last
        while t >= first:
            close = quote.mid * math.exp(scale * (level(t) - anchor))
            open_ = quote.mid * math.exp(scale * (level(t - width) - anchor))
            rng = random.Random(f"{self.seed}/{inst.symbol}/{interval}/{t}")
            high = max(open_, close) * (1 + abs(rng.gauss(0, self.volatility)))
            low = min(open_, close) * (1 - abs(rng.gauss(0, self.volatility)))
            volume = Decimal(str(round(rng.uniform(1e4, 1e6) / quote.mid, 6)))
            closing = Decimal(repr(close)).quantize(tick)
            rows.append(
                [
                    str(t),
                    _fmt(Decimal(repr(open_)).quantize(tick)),
                    _fmt(Decimal(repr(high)).quantize(tick)),
                    _fmt(Decimal(repr(low)).quantize(tick)),
                    _fmt(closing),
                    _fmt(volume),
                    _fmt((volume * closing).quantize(Decimal("0.0001"))),
                ]
            )
            t -= width
        return rows

    # -- account ----------------------------------------------------------------

    def _linear_orders(self, symbol: str) -> list[_Order]:
        """The resting linear orders of ``symbol``, oldest first."""
        resting = self._resting.get(symbol)
        if not resting:
            return []
        return [o for o in resting.values() if o.inst.category == "linear"]

    def _order_im(self, size: Decimal, orders: Iterable[_Order]) -> Decimal:
        """Initial margin of resting linear orders against a position of ``size`` (signed).

        As on Bybit, an order on the closing side needs no margin for the part
        the position covers; the part beyond it opens a position and needs
        margin like any opening order. Reduce-only orders use the position
        first (they never exceed it: see :meth:`_enforce_reduce_only`); the
        other closing orders share what is left, and the excess is charged at
        their highest prices, so no fill, in any order, raises the
        requirement: resting orders never drive the available balance below zero.
        """
        closing_side = "Sell" if size > 0 else "Buy" if size < 0 else ""
        capacity = abs(size)
        closing: list[_Order] = []
        notional = ZERO
        for order in orders:
            if order.side != closing_side:
                notional += order.qty * order.price
            elif order.reduce_only:
                capacity -= order.qty
            else:
                closing.append(order)
        excess = sum((o.qty for o in closing), ZERO) - max(capacity, ZERO)
        for order in sorted(closing, key=lambda o: o.price, reverse=True):
            if excess <= 0:
                break
            part = min(order.qty, excess)
            notional += part * order.price
            excess -= part
        return notional / self.leverage

    def _order_margin(self) -> Decimal:
        """Initial margin held by every resting linear order."""
        total = ZERO
        positions = self.account.positions
        for symbol in self._resting:
            orders = self._linear_orders(symbol)
            if orders:
                pos = positions.get(symbol)
                total += self._order_im(pos.size if pos is not None else ZERO, orders)
        return total

    def _position_margin(self) -> Decimal:
        total = ZERO
        for pos in self.account.positions.values():
            total += abs(pos.size) * pos.entry / self.leverage
        return total

    def _unrealised(self) -> Decimal:
        total = ZERO
        for symbol, pos in self.account.positions.items():
            if pos.size:
                mid = Decimal(repr(self._quote(symbol).mid))
                total += pos.size * (mid - pos.entry)
        return total

    @_exact
    def free(self, coin: str) -> Decimal:
        """Spendable amount of ``coin``: wallet minus locked funds and margins."""
        acct = self.account
        free = acct.wallet.get(coin, ZERO) - acct.locked.get(coin, ZERO)
        if coin == self.quote:
            free -= self._order_margin() + self._position_margin()
        return free

    @_exact
    def wallet_balance(self, coins: Iterable[str] | None = None) -> dict[str, Any]:
        """The ``/v5/account/wallet-balance`` result of the unified account."""
        acct = self.account
        wanted = set(coins) if coins else None
        order_im = self._order_margin()
        position_im = self._position_margin()
        upl = self._unrealised()
        entries = []
        total_usd = ZERO
        for coin, amount in acct.wallet.items():
            quote = self._quotes.get(coin + self.quote)
            if coin == self.quote:
                price = Decimal(1)
            else:
                price = Decimal(repr(quote.mid)) if quote is not None else ZERO
            is_quote = coin == self.quote
            equity = amount + (upl if is_quote else ZERO)
            usd = (equity * price).quantize(Decimal("0.00000001"))
            total_usd += usd
            if wanted is not None and coin not in wanted:
                continue
            entries.append(
                {
                    "coin": coin,
                    "equity": _fmt(equity),
                    "usdValue": _fmt(usd),
                    "walletBalance": _fmt(amount),
                    "locked": _fmt(acct.locked.get(coin, ZERO)),
                    "totalOrderIM": _fmt(order_im if is_quote else ZERO),
                    "totalPositionIM": _fmt(position_im if is_quote else ZERO),
                    "totalPositionMM": "0",
                    "unrealisedPnl": _fmt(upl if is_quote else ZERO),
                    "cumRealisedPnl": _fmt(acct.realised if is_quote else ZERO),
                    "availableToWithdraw": "",
                    "borrowAmount": "0",
                    "accruedInterest": "0",
                    "bonus": "0",
                    "collateralSwitch": True,
                    "marginCollateral": True,
                    "spotHedgingQty": "0",
                }
            )
        return {
            "list": [
                {
                    "accountType": "UNIFIED",
                    "accountIMRate": "0",
                    "accountMMRate": "0",
                    "accountLTV": "0",
                    "totalEquity": _fmt(total_usd),
                    "totalWalletBalance": _fmt(total_usd - upl),
                    "totalMarginBalance": _fmt(total_usd),
                    "totalAvailableBalance": _fmt(self.free(self.quote)),
                    "totalPerpUPL": _fmt(upl),
                    "totalInitialMargin": _fmt(order_im + position_im),
                    "totalMaintenanceMargin": "0",
                    "coin": entries,
                }
            ]
        }

    def positions(self) -> dict[str, tuple[Decimal, Decimal]]:
        """Open linear positions: symbol -> (signed size, entry price)."""
        return {s: (p.size, p.entry) for s, p in self.account.positions.items() if p.size}

    # -- orders -----------------------------------------------------------------

    def _new_id(self) -> str:
        self._next_id += 1
        return str(uuid.UUID(int=(self._id_prefix << 64) | self._next_id))

    @_exact
    def create_order(self, params: Mapping[str, Any], now_ms: int) -> dict[str, Any]:
        """Book an order from ``/v5/order/create`` parameters; return ``{orderId, orderLinkId}``."""
        inst = self.instrument(params.get("category"), params.get("symbol"))
        spot = inst.category == "spot"
        side = params.get("side")
        if side not in ("Buy", "Sell"):
            raise BybitError(170117 if spot else 10001, "Invalid side.")
        order_type = params.get("orderType")
        if order_type not in ("Market", "Limit"):
            raise BybitError(170116 if spot else 10001, "Invalid orderType.")
        link_id = str(params.get("orderLinkId") or "")
        if len(link_id) > 36:
            raise BybitError(10001, "params error: orderLinkId is longer than 36 characters")
        if link_id and link_id in self._by_link:
            if spot:
                raise BybitError(170141, "Duplicate clientOrderId.")
            raise BybitError(110072, "OrderLinkedID is duplicate")
        qty = _dec(params.get("qty"), "qty")
        if qty <= 0:
            raise BybitError(170136 if spot else 10001, "Order quantity lower than the minimum.")
        tif = str(params.get("timeInForce") or ("IOC" if order_type == "Market" else "GTC"))
        if tif not in ("GTC", "IOC", "FOK", "PostOnly"):
            raise BybitError(170115 if spot else 10001, "Invalid timeInForce.")
        price = ZERO
        if order_type == "Limit":
            price = _dec(params.get("price"), "price")
            if price > _MAX_ORDER_PRICE:  # checked first: a huge price overflows the tick check
                if spot:
                    raise BybitError(170132, "Order price too high.")
                raise BybitError(110003, "Order price is out of permissible range.")
            if price <= 0 or price % inst.tick:
                raise BybitError(
                    170134 if spot else 10001, "Order price decimal too long or not positive."
                )
        market_unit = ""
        if spot and order_type == "Market":
            default_unit = "quoteCoin" if side == "Buy" else "baseCoin"
            market_unit = str(params.get("marketUnit") or default_unit)
            if market_unit not in ("baseCoin", "quoteCoin"):
                raise BybitError(170130, "Data sent for parameter 'marketUnit' is not valid.")
        qty_in_quote = market_unit == "quoteCoin"
        if qty > (MAX_ORDER_VALUE if qty_in_quote else inst.max_qty):
            # checked first: a huge quantity overflows the step check
            raise BybitError(170135 if spot else 10001, "Order quantity too large.")
        if not qty_in_quote:
            if qty % inst.qty_step:
                raise BybitError(170137 if spot else 10001, "Order quantity has too many decimals.")
            if qty < inst.min_qty:
                raise BybitError(
                    170136 if spot else 10001, "Order quantity lower than the minimum."
                )
        reduce_only = str(params.get("reduceOnly", "")).lower() == "true"

        self.touch(inst.symbol)
        bid, ask = self.best(inst)
        order = _Order(
            order_id=self._new_id(),
            link_id=link_id,
            inst=inst,
            side=side,
            order_type=order_type,
            price=price,
            qty=qty,
            market_unit=market_unit,
            tif=tif,
            reduce_only=reduce_only,
            created=now_ms,
            updated=now_ms,
            last_price_on_created=_fmt(Decimal(repr(self._quote(inst.symbol).mid)), inst.tick),
        )
        buy = side == "Buy"
        take_price = ask if buy else bid
        marketable = order_type == "Market" or (price >= ask if buy else price <= bid)

        # funds
        if spot:
            self._reserve_spot(order, take_price, marketable)
        else:
            takes = marketable and tif != "PostOnly"
            self._reserve_linear(order, take_price if takes else None)

        self._orders[order.order_id] = order
        if link_id:
            self._by_link[link_id] = order
        self.orders_created += 1

        if marketable:
            if tif == "PostOnly":
                self._close(order, "Cancelled", now_ms, reject="EC_PostOnlyWillTakeLiquidity")
            else:
                self._fill(order, take_price, now_ms)
        elif tif in ("IOC", "FOK"):
            self._close(order, "Cancelled", now_ms, reject="EC_NoImmediateQtyToFill")
        else:
            self._resting.setdefault(inst.symbol, {})[order.order_id] = order
        return {"orderId": order.order_id, "orderLinkId": order.link_id}

    def _reserve_spot(self, order: _Order, take_price: Decimal, marketable: bool) -> None:
        inst = order.inst
        buy = order.side == "Buy"
        if order.market_unit == "quoteCoin":
            base_qty = _floor(order.qty / take_price, inst.qty_step)
            if base_qty < inst.min_qty:
                raise BybitError(170136, "Order quantity lower than the minimum.")
            order.qty = base_qty
            order.market_unit = "baseCoin"
        notional = order.qty * (take_price if order.order_type == "Market" else order.price)
        if notional < inst.min_notional:
            raise BybitError(170140, "Order value exceeded lower limit.")
        if buy:
            need, coin = notional, inst.quote
        else:
            need, coin = order.qty, inst.base
        if need > self.free(coin):
            raise BybitError(170131, "Insufficient balance.")
        if order.order_type == "Limit" and not marketable:
            order.locked_coin = coin
            order.locked = need
            self.account.locked[coin] = self.account.locked.get(coin, ZERO) + need

    def _reserve_linear(self, order: _Order, fill_price: Decimal | None) -> None:
        """Check a linear order's margin before it is booked.

        ``fill_price``: the order takes at once at that price; ``None``: it
        rests at its limit price. The account is evaluated as it would be
        after the order (resting, or filled with its PnL realised): an order
        that raises the margin requirement is refused (110007) if the
        available balance would go below zero. Reduce-only orders never need
        margin but must fit in the position (resting ones: what other resting
        reduce-only orders leave of it), else 110017.
        """
        inst = order.inst
        symbol = inst.symbol
        price = fill_price if fill_price is not None else order.price
        if order.qty * price < inst.min_notional and not order.reduce_only:
            raise BybitError(110094, "Order notional value below the lower limit.")
        pos = self.account.positions.get(symbol) or _Position()
        resting = self._linear_orders(symbol)
        if order.reduce_only:
            closing = pos.size != 0 and (pos.size > 0) != (order.side == "Buy")
            room = abs(pos.size)
            if fill_price is None:
                room -= sum((o.qty for o in resting if o.reduce_only), ZERO)
            if not closing or order.qty > room:
                raise BybitError(110017, "Reduce-only rule not satisfied.")
            return
        lev = self.leverage
        before = abs(pos.size) * pos.entry / lev + self._order_im(pos.size, resting)
        pnl = ZERO
        if fill_price is None:
            after = abs(pos.size) * pos.entry / lev + self._order_im(pos.size, [*resting, order])
        else:
            delta = order.qty if order.side == "Buy" else -order.qty
            size, entry, pnl = _after_fill(pos.size, pos.entry, delta, fill_price)
            cancelled = {id(o) for o in _excess_reduce_only(size, resting)}
            kept = [o for o in resting if id(o) not in cancelled]
            after = abs(size) * entry / lev + self._order_im(size, kept)
        if after > before and self.free(inst.quote) + pnl - (after - before) < 0:
            raise BybitError(110007, "ab not enough for new order")

    def _enforce_reduce_only(self, symbol: str, now_ms: int) -> None:
        """Cancel the resting reduce-only orders the position no longer covers (newest first)."""
        pos = self.account.positions.get(symbol)
        size = pos.size if pos is not None else ZERO
        for order in _excess_reduce_only(size, self._linear_orders(symbol)):
            self._close(order, "Cancelled", now_ms)
            order.cancel_type = "CancelByReduceOnly"

    def _release(self, order: _Order) -> None:
        """Free the order's locked funds and margin and drop it from the resting index."""
        resting = self._resting.get(order.inst.symbol)
        if resting is not None:
            resting.pop(order.order_id, None)
        if order.locked:
            coin = order.locked_coin
            self.account.locked[coin] = self.account.locked.get(coin, ZERO) - order.locked
            order.locked = ZERO

    def _close(self, order: _Order, status: str, now_ms: int, *, reject: str = "") -> None:
        self._release(order)
        order.status = status
        order.updated = now_ms
        if status == "Cancelled":
            order.cancel_type = "CancelByUser" if not reject else "UNKNOWN"
        if reject:
            order.reject_reason = reject

    def _fill(self, order: _Order, price: Decimal, now_ms: int) -> None:
        inst = order.inst
        acct = self.account
        qty = order.qty
        self._release(order)
        value = qty * price
        if inst.category == "spot":
            sign = 1 if order.side == "Buy" else -1
            acct.wallet[inst.base] = acct.wallet.get(inst.base, ZERO) + sign * qty
            acct.wallet[inst.quote] = acct.wallet.get(inst.quote, ZERO) - sign * value
        else:
            self._apply_position(inst.symbol, qty if order.side == "Buy" else -qty, price)
            self._enforce_reduce_only(inst.symbol, now_ms)
        order.cum_qty = qty
        order.cum_value = value
        order.status = "Filled"
        order.updated = now_ms
        quote = self._quote(inst.symbol)
        quote.volume += qty
        quote.turnover += value
        self.orders_filled += 1

    def _apply_position(self, symbol: str, delta: Decimal, price: Decimal) -> None:
        acct = self.account
        pos = acct.positions.setdefault(symbol, _Position())
        pos.size, pos.entry, pnl = _after_fill(pos.size, pos.entry, delta, price)
        if pnl:
            acct.wallet[self.quote] = acct.wallet.get(self.quote, ZERO) + pnl
            acct.realised += pnl

    def _match(self, symbol: str) -> None:
        """Fill the resting limit orders of ``symbol`` that the price now crosses.

        Costs O(open orders of ``symbol``), whatever the order history.
        """
        by_id = self._resting.get(symbol)
        if not by_id:
            return
        now_ms = self._wall_ms()
        for order in list(by_id.values()):  # _fill removes from the index
            if not order.is_open:  # cancelled by a fill before it (reduce-only)
                continue
            bid, ask = self.best(order.inst)
            if (order.side == "Buy" and ask <= order.price) or (
                order.side == "Sell" and bid >= order.price
            ):
                self._fill(order, order.price, now_ms)

    def _find(self, category: str, params: Mapping[str, Any]) -> _Order | None:
        order_id = params.get("orderId") or ""
        link_id = params.get("orderLinkId") or ""
        order: _Order | None = None
        if order_id:
            order = self._orders.get(str(order_id))
        elif link_id:
            order = self._by_link.get(str(link_id))
        if order is None or order.inst.category != category:
            return None
        symbol = params.get("symbol")
        if symbol and order.inst.symbol != symbol:
            return None
        return order

    @_exact
    def cancel_order(self, params: Mapping[str, Any], now_ms: int) -> dict[str, Any]:
        inst = self.instrument(params.get("category"), params.get("symbol"))
        if not params.get("orderId") and not params.get("orderLinkId"):
            raise BybitError(10001, "params error: orderId or orderLinkId is required")
        order = self._find(inst.category, params)
        if order is None or not order.is_open:
            if inst.category == "spot":
                raise BybitError(170213, "Order does not exist.")
            raise BybitError(110001, "order not exists or too late to cancel")
        self._close(order, "Cancelled", now_ms)
        return {"orderId": order.order_id, "orderLinkId": order.link_id}

    @_exact
    def query_orders(self, params: Mapping[str, Any], *, history: bool) -> dict[str, Any]:
        """``/v5/order/realtime`` (open orders, or any order asked for by id) and ``/history``."""
        category = params.get("category")
        if category not in CATEGORIES:
            raise BybitError(10001, "params error: category is invalid")
        symbol = params.get("symbol") or None
        if symbol and (category, symbol) not in self.instruments:
            raise BybitError(10001, "Not supported symbols")
        try:
            limit = int(str(params.get("limit") or 20))
            offset = int(str(params.get("cursor") or 0))
        except ValueError:  # also: '²', or more than 4300 digits
            raise BybitError(10001, "params error: limit or cursor is invalid") from None
        if offset < 0:
            raise BybitError(10001, "params error: limit or cursor is invalid")
        limit = max(1, min(limit, 50))
        by_id = bool(params.get("orderId") or params.get("orderLinkId"))
        if by_id:
            found = self._find(str(category), params)
            selected = [found] if found is not None else []
        else:
            open_only = str(params.get("openOnly") or "0") == "0"
            status = params.get("orderStatus") or None
            selected = [
                o
                for o in self._orders.values()
                if o.inst.category == category
                and (not symbol or o.inst.symbol == symbol)
                and (not status or o.status == status)
                and (not o.is_open if history else (o.is_open or not open_only))
            ]
        selected.sort(key=lambda o: (o.created, o.order_id), reverse=True)
        page = selected[offset : offset + limit]
        more = offset + limit < len(selected)
        return {
            "category": category,
            "list": [o.to_bybit() for o in page],
            "nextPageCursor": str(offset + limit) if more else "",
        }

    def order_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for order in self._orders.values():
            counts[order.status] = counts.get(order.status, 0) + 1
        return counts

    @_exact
    def snapshot(self) -> dict[str, Any]:
        """Prices, balances, positions and order counts (JSON-ready)."""
        return {
            "seed": self.seed,
            "prices": {s: q.mid for s, q in self._quotes.items()},
            "balances": {c: _fmt(a) for c, a in self.account.wallet.items()},
            "locked": {c: _fmt(a) for c, a in self.account.locked.items() if a},
            "positions": {
                s: {"size": _fmt(size), "entry": _fmt(entry)}
                for s, (size, entry) in self.positions().items()
            },
            "orders": self.order_counts(),
        }

    def __repr__(self) -> str:
        prices = ", ".join(f"{s}={q.mid:.6g}" for s, q in self._quotes.items())
        open_orders = sum(len(resting) for resting in self._resting.values())
        return (
            f"<MarketModel seed={self.seed} {prices} orders={len(self._orders)} "
            f"open={open_orders} filled={self.orders_filled}>"
        )
