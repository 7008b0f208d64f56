"""Binance request parameters, checked as Binance checks them, and Binance number formatting.

Decimals must match ``^([0-9]{1,20})(\\.[0-9]{1,20})?$`` and integers
``^[0-9]{1,20}$`` (whole string: no NaN, exponent, sign, non-ASCII digit or
trailing newline); symbols ``^[A-Z0-9-_.]{1,20}$``. Failures raise
:class:`~._binance_errors.BinanceError` (-1102 missing, -1100 illegal, -1121
unknown symbol).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from decimal import Decimal

from ._binance_errors import BinanceError, illegal, mandatory
from ._market import Instrument, MarketModel

__all__ = [
    "CLIENT_ID",
    "CLIENT_ID_RANGE",
    "EIGHT",
    "SPOT",
    "ZERO",
    "decimal_param",
    "fmt8",
    "instrument",
    "limit_param",
    "long_param",
    "opt",
    "req",
    "symbol_param",
    "symbols_param",
]

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
_SYMBOLS = re.compile(r'\[("[A-Z0-9_.-]{1,20}"(,"[A-Z0-9_.-]{1,20}")*)?\]')
"""Checked before ``json.loads``: no nesting (deep nesting would exhaust the recursion limit)."""
MAX_LONG = 2**63 - 1


def fmt8(value: Decimal) -> str:
    """A decimal as Binance writes it: 8 decimal places."""
    return format(value.quantize(EIGHT), "f")


# -- parameters -----------------------------------------------------------------


def opt(params: Mapping[str, str], name: str) -> str | None:
    value = params.get(name)
    return None if value is None or value == "" else value


def req(params: Mapping[str, str], name: str) -> str:
    value = opt(params, name)
    if value is None:
        raise mandatory(name)
    return value


def decimal_param(params: Mapping[str, str], name: str) -> Decimal | None:
    raw = opt(params, name)
    if raw is None:
        return None
    if not _DECIMAL.fullmatch(raw):
        raise illegal(name, _DECIMAL_RANGE)
    return Decimal(raw)


def long_param(params: Mapping[str, str], name: str) -> int | None:
    raw = opt(params, name)
    if raw is None:
        return None
    if not _LONG.fullmatch(raw) or int(raw) > MAX_LONG:
        raise illegal(name, _LONG_RANGE)
    return int(raw)


def limit_param(params: Mapping[str, str], default: int, high: int) -> int:
    value = long_param(params, "limit")
    if value is None:
        return default
    if not 1 <= value <= high:
        raise BinanceError(
            -1100, f"Illegal characters found in parameter 'limit'; legal range is '1..{high}'."
        )
    return value


def instrument(market: MarketModel, symbol: str) -> Instrument:
    if not _SYMBOL.fullmatch(symbol):
        raise illegal("symbol", _SYMBOL_RANGE)
    inst = market.instruments.get((SPOT, symbol))
    if inst is None:
        raise BinanceError(-1121, "Invalid symbol.")
    return inst


def symbol_param(params: Mapping[str, str], market: MarketModel) -> Instrument:
    return instrument(market, req(params, "symbol"))


def symbols_param(params: Mapping[str, str], market: MarketModel) -> list[Instrument] | None:
    """``symbol`` (one) or ``symbols`` (a JSON array) or neither (every spot market)."""
    one, many = opt(params, "symbol"), opt(params, "symbols")
    if one is not None and many is not None:
        raise BinanceError(-1128, "Combination of optional parameters invalid.")
    if one is not None:
        return [instrument(market, one)]
    if many is None:
        return None
    if len(many) > 25_000 or not _SYMBOLS.fullmatch(many):
        raise illegal("symbols", _SYMBOLS_RANGE)
    try:
        names = json.loads(many)
    except (ValueError, RecursionError):  # pragma: no cover - the pattern admits neither
        raise illegal("symbols", _SYMBOLS_RANGE) from None
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise illegal("symbols", _SYMBOLS_RANGE)
    if len(names) > 1000:
        raise illegal("symbols", _SYMBOLS_RANGE)
    return [instrument(market, n) for n in names]
