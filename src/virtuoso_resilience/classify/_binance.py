"""Binance error ``code`` values where the code says more than ccxt's class.

From the codes ccxt itself maps (``ccxt/async_support/binance.py``,
``exceptions``). ccxt builds the message as ``"binance " + body`` (or, for
HTTP 418/429, ``"binance 418 <reason> " + body`` as ``DDoSProtection``).
-1003 is a rate limit, or a ban when the text says "banned until <ms>".
"""

from __future__ import annotations

from typing import Final

from ._outcome import OutcomeKind, Signal
from ._rules import CodeRule, ExchangeTable

__all__ = ["TABLE"]

_T = OutcomeKind.TRANSIENT
_RL = OutcomeKind.RATE_LIMITED

TABLE: Final = ExchangeTable(
    "binance",
    code_fields=("code",),
    aliases=("binanceusdm", "binancecoinm", "binanceus"),
    codes={
        # Timestamp for this request is outside of the recvWindow.
        "-1021": (CodeRule(_T, Signal.CLOCK_SKEW, refused=True),),
        # Too much request weight used; "Way too much request weight used;
        # IP banned until 1580000000000" when it became a ban.
        "-1003": (
            CodeRule(_RL, Signal.IP_BAN, "ip banned", text="banned until"),
            CodeRule(_RL, Signal.RATE_LIMIT),
        ),
        "-1015": (CodeRule(_RL, Signal.RATE_LIMIT),),  # too many new orders
        # NEW_ORDER_REJECTED: a duplicate only when it says so.
        "-2010": (
            CodeRule(
                OutcomeKind.BUSINESS,
                Signal.DUPLICATE_CLIENT_ORDER_ID,
                "duplicate order id",
                text="duplicate order sent",
            ),
        ),
        # DUPLICATED_CLIENT_ORDER_ID (futures: binanceusdm / binancecoinm).
        "-4116": (
            CodeRule(OutcomeKind.BUSINESS, Signal.DUPLICATE_CLIENT_ORDER_ID, "duplicate order id"),
        ),
        "-2011": (  # CANCEL_REJECTED: "Unknown order sent."
            CodeRule(OutcomeKind.BUSINESS, Signal.ORDER_NOT_FOUND, text="unknown order"),
        ),
        "-2013": (CodeRule(OutcomeKind.BUSINESS, Signal.ORDER_NOT_FOUND),),  # no such order
        # Server busy / overloaded: refused before acting.
        "-1004": (CodeRule(_T, refused=True),),
        "-1008": (CodeRule(_T, refused=True),),
        # "Execution status unknown": a write may have been applied.
        "-1006": (CodeRule(OutcomeKind.AMBIGUOUS),),
        "-1007": (CodeRule(OutcomeKind.AMBIGUOUS),),
        "-1000": (CodeRule(OutcomeKind.AMBIGUOUS),),  # unknown error while processing
        "-1001": (CodeRule(OutcomeKind.AMBIGUOUS),),  # internal error
    },
)
