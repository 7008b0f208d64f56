"""Binance spot request weights, order counts and IP bans.

Binance counts *weight* per IP in fixed intervals (``X-MBX-USED-WEIGHT-1M``),
new orders per account in 10-second and daily intervals
(``X-MBX-ORDER-COUNT-10S`` / ``-1D``). Over the weight budget the answer is
HTTP 429 ``-1003`` with ``Retry-After``; a client that keeps sending while
limited is banned: HTTP 418 with ``Retry-After`` until the ban ends (the
first ban lasts ``ban_seconds``, each further one twice as long, at most
3 days). Rejected requests consume no weight.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from ..clock import Clock
from ._binance_config import MAX_BAN_SECONDS, BinanceLimits

__all__ = ["BinanceLimiter", "Rejection", "interval", "interval_label", "request_weight"]

DAY = 86400.0

_FIXED_WEIGHTS: Mapping[tuple[str, str], int] = {
    ("GET", "/api/v3/ping"): 1,
    ("GET", "/api/v3/time"): 1,
    ("GET", "/api/v3/exchangeInfo"): 20,
    ("GET", "/api/v3/klines"): 2,
    ("GET", "/api/v3/uiKlines"): 2,
    ("GET", "/api/v3/avgPrice"): 2,
    ("GET", "/api/v3/account"): 20,
    ("GET", "/api/v3/order"): 4,
    ("POST", "/api/v3/order"): 1,
    ("DELETE", "/api/v3/order"): 1,
    ("GET", "/api/v3/allOrders"): 20,
    ("GET", "/api/v3/myTrades"): 20,
    ("GET", "/sapi/v1/system/status"): 1,
    ("GET", "/sapi/v1/capital/config/getall"): 10,
    ("GET", "/sapi/v1/margin/allPairs"): 1,
    ("GET", "/sapi/v1/margin/isolated/allPairs"): 10,
}


_UNITS = ((86400, "DAY", "D"), (3600, "HOUR", "H"), (60, "MINUTE", "M"))


def interval(seconds: float) -> tuple[str, int]:
    """Binance's ``(interval, intervalNum)`` of a window: 60 s -> ``("MINUTE", 1)``."""
    whole = max(1, round(seconds))
    for size, name, _ in _UNITS:
        if whole % size == 0:
            return name, whole // size
    return "SECOND", whole


def interval_label(seconds: float) -> str:
    """A Binance limit header suffix: 60 s -> ``1M`` (``X-MBX-USED-WEIGHT-1M``), 10 s -> ``10S``."""
    name, count = interval(seconds)
    return f"{count}{name[0]}"


def _symbols_weight(count: int) -> int:
    # ticker/24hr with ``symbols``: 2 for 1-20 symbols, 40 for 21-100, 80 beyond
    return 2 if count <= 20 else 40 if count <= 100 else 80


def request_weight(method: str, path: str, params: Mapping[str, str]) -> int:
    """Binance's request weight of one request (1 for a path it does not serve)."""
    fixed = _FIXED_WEIGHTS.get((method, path))
    if fixed is not None:
        return fixed
    if path == "/api/v3/depth":
        raw = params.get("limit", "")
        limit = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 6 else 100
        return 5 if limit <= 100 else 25 if limit <= 500 else 50 if limit <= 1000 else 250
    if path == "/api/v3/ticker/24hr":
        if params.get("symbol"):
            return 2
        symbols = params.get("symbols")
        return _symbols_weight(symbols.count(",") + 1) if symbols else 80
    if path in ("/api/v3/ticker/price", "/api/v3/ticker/bookTicker"):
        return 2 if params.get("symbol") else 4
    if path == "/api/v3/openOrders":
        return 6 if params.get("symbol") else 80
    return 1


@dataclass(frozen=True, slots=True)
class Rejection:
    """A request refused by a budget: the HTTP answer and what to record."""

    status: int
    code: int
    message: str
    retry_after: int
    """Seconds, for the ``Retry-After`` header."""
    rule: str
    """``weight``, ``ban``, ``orders_10s`` or ``orders_1d``."""
    limit: int
    period: float


@dataclass(slots=True)
class _Window:
    start: float = -math.inf
    used: int = 0

    def roll(self, now: float, period: float) -> None:
        start = math.floor(now / period) * period
        if start != self.start:
            self.start = start
            self.used = 0


@dataclass(slots=True)
class _IpState:
    weight: _Window
    limited_until: float = -math.inf
    strikes: int = 0
    banned_until: float = -math.inf
    bans: int = 0


class BinanceLimiter:
    """Weight per IP, order counts per account, bans per IP (times from ``clock``, seconds)."""

    __slots__ = ("_ips", "_orders_1d", "_orders_10s", "clock", "enabled", "limits")

    def __init__(self, clock: Clock, limits: BinanceLimits, *, enabled: bool = True) -> None:
        self.clock = clock
        self.limits = limits
        self.enabled = enabled
        self._ips: dict[str, _IpState] = {}
        self._orders_10s = _Window()
        self._orders_1d = _Window()

    def reset(self) -> None:
        self._ips.clear()
        self._orders_10s = _Window()
        self._orders_1d = _Window()

    def _ip(self, client: str) -> _IpState:
        state = self._ips.get(client)
        if state is None:
            state = self._ips[client] = _IpState(_Window())
        return state

    def used_weight(self, client: str) -> int:
        """Weight used by ``client`` in the current interval."""
        state = self._ips.get(client)
        if state is None:
            return 0
        state.weight.roll(self.clock.now(), self.limits.weight_period)
        return state.weight.used

    def charge(self, client: str, weight: int) -> Rejection | None:
        """Ban check, then weight: consume ``weight`` or say why the request is refused.

        With ``enabled=False`` the weight is counted (for the headers) and never refused.
        """
        now = self.clock.now()
        state = self._ip(client)
        limits = self.limits
        if not self.enabled:
            state.weight.roll(now, limits.weight_period)
            state.weight.used += weight
            return None
        if now < state.banned_until:
            return self._banned(state, now)
        if now < state.limited_until:
            state.strikes += 1
            if state.strikes >= limits.ban_after:
                state.bans += 1
                length = min(limits.ban_seconds * 2 ** min(state.bans - 1, 32), MAX_BAN_SECONDS)
                state.banned_until = now + length
                state.limited_until = -math.inf
                state.strikes = 0
                return self._banned(state, now)
        window = state.weight
        window.roll(now, limits.weight_period)
        if window.used + weight > limits.weight_limit:
            reset = window.start + limits.weight_period
            state.limited_until = reset
            return Rejection(
                429,
                -1003,
                f"Too much request weight used; current limit is {limits.weight_limit} "
                f"request weight per {limits.weight_period:g} SECOND. "
                "Please use WebSocket Streams for live updates to avoid polling the API.",
                max(1, math.ceil(reset - now)),
                "weight",
                limits.weight_limit,
                limits.weight_period,
            )
        window.used += weight
        return None

    def _banned(self, state: _IpState, now: float) -> Rejection:
        remaining = state.banned_until - now
        return Rejection(
            418,
            -1003,
            f"Way too much request weight used; IP banned for {math.ceil(remaining)} more "
            "seconds. Please use WebSocket Streams for live updates to avoid bans.",
            max(1, math.ceil(remaining)),
            "ban",
            self.limits.weight_limit,
            self.limits.weight_period,
        )

    def order(self) -> Rejection | None:
        """Count one new order of the account, or refuse it (``-1015``)."""
        now = self.clock.now()
        limits = self.limits
        for window, limit, period, rule, label in (
            (self._orders_10s, limits.order_limit_10s, 10.0, "orders_10s", "10 SECOND"),
            (self._orders_1d, limits.order_limit_1d, DAY, "orders_1d", "1 DAY"),
        ):
            window.roll(now, period)
            if self.enabled and window.used >= limit:
                return Rejection(
                    429,
                    -1015,
                    f"Too many new orders; current limit is {limit} orders per {label}.",
                    max(1, math.ceil(window.start + period - now)),
                    rule,
                    limit,
                    period,
                )
        self._orders_10s.used += 1
        self._orders_1d.used += 1
        return None

    def order_counts(self) -> tuple[int, int]:
        """New orders counted in the current 10-second and daily intervals."""
        now = self.clock.now()
        self._orders_10s.roll(now, 10.0)
        self._orders_1d.roll(now, DAY)
        return self._orders_10s.used, self._orders_1d.used

    def __repr__(self) -> str:
        banned = sum(1 for s in self._ips.values() if s.banned_until > self.clock.now())
        return (
            f"<BinanceLimiter enabled={self.enabled} weight={self.limits.weight_limit}/"
            f"{self.limits.weight_period:g}s clients={len(self._ips)} banned={banned}>"
        )
