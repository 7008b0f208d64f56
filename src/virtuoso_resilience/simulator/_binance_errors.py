"""Binance error answers: ``{"code": -1102, "msg": "..."}`` with the HTTP status Binance uses.

The matching model (``_market.py``) speaks Bybit retCodes; :func:`from_bybit`
translates its business errors into what Binance answers for the same case.
"""

from __future__ import annotations

from collections.abc import Mapping

from ._market import BybitError

__all__ = [
    "BinanceError",
    "from_bybit",
    "illegal",
    "invalid_value",
    "mandatory",
    "message_for",
    "not_required",
]


class BinanceError(Exception):
    """A request answered with Binance's error body ``{"code": code, "msg": message}``."""

    def __init__(self, code: int, message: str, *, status: int = 400) -> None:
        self.code = code
        self.message = message
        self.status = status
        super().__init__(f"{code}: {message}")


def mandatory(name: str) -> BinanceError:
    return BinanceError(
        -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
    )


def illegal(name: str, pattern: str) -> BinanceError:
    return BinanceError(
        -1100, f"Illegal characters found in parameter '{name}'; legal range is '{pattern}'."
    )


def not_required(name: str) -> BinanceError:
    return BinanceError(-1106, f"Parameter '{name}' sent when not required.")


def invalid_value(name: str) -> BinanceError:
    return BinanceError(-1130, f"Data sent for parameter '{name}' is not valid.")


INSUFFICIENT_BALANCE = "Account has insufficient balance for requested action."

_BY_BYBIT: Mapping[int, tuple[int, str]] = {
    170131: (-2010, INSUFFICIENT_BALANCE),
    170136: (-1013, "Filter failure: LOT_SIZE"),
    170137: (-1013, "Filter failure: LOT_SIZE"),
    170135: (-1013, "Filter failure: LOT_SIZE"),
    170134: (-1013, "Filter failure: PRICE_FILTER"),
    170140: (-1013, "Filter failure: NOTIONAL"),
}


def from_bybit(error: BybitError) -> BinanceError:
    """The Binance answer for a business error of the shared matching model."""
    code, message = _BY_BYBIT.get(error.code, (-1013, "Invalid message."))
    if error.code == 10001 and "symbol" in error.message.lower():
        code, message = -1121, "Invalid symbol."
    return BinanceError(code, message)


_MESSAGES: Mapping[int, str] = {
    -1000: "An unknown error occurred while processing the request.",
    -1001: "Internal error; unable to process your request. Please try again.",
    -1003: "Too many requests; please use the websocket for live updates.",
    -1006: "An unexpected response was received from the message bus. Execution status unknown.",
    -1007: "Timeout waiting for response from backend server. Send status unknown; "
    "execution status unknown.",
    -1015: "Too many new orders.",
    -1021: "Timestamp for this request is outside of the recvWindow.",
    -1022: "Signature for this request is not valid.",
    -2010: INSUFFICIENT_BALANCE,
    -2011: "Unknown order sent.",
    -2013: "Order does not exist.",
    -2014: "API-key format invalid.",
    -2015: "Invalid API-key, IP, or permissions for action.",
}

_STATUS: Mapping[int, int] = {
    -1000: 500,
    -1001: 503,
    -1006: 503,
    -1007: 503,
    -1003: 429,
    -1015: 429,
    -2014: 401,
    -2015: 401,
}

SYSTEM_ERROR_BYBIT = 10016
"""The fault engine's default ``retcode`` (Bybit's system error): -1001 in this dialect."""


def message_for(code: int) -> tuple[int, str, int]:
    """(code, message, HTTP status) of a ``retcode`` fault in the Binance dialect.

    Bybit's 10016 (the ``system_error`` fault) becomes -1001 with HTTP 503, as
    Binance answers an internal error; other codes are sent as given.
    """
    if code == SYSTEM_ERROR_BYBIT:
        code = -1001
    message = _MESSAGES.get(code, f"simulated error {code}")
    return code, message, _STATUS.get(code, 400)
