"""Bybit v5 ``retCode`` values where the code says more than ccxt's class.

ccxt builds the message as ``"bybit " + body``; the code is in ``retCode``
(``ret_code`` in legacy answers). Bybit answers an IP ban with HTTP 403
(ccxt: ``RateLimitExceeded``); its documentation says the ban lasts 10 minutes.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from ._outcome import OutcomeKind, Signal
from ._rules import CodeRule, ExchangeTable

__all__ = ["CODES", "TABLE"]

_T = OutcomeKind.TRANSIENT
_RL = OutcomeKind.RATE_LIMITED
_BZ = OutcomeKind.BUSINESS

_SERVER: Final = CodeRule(_T)  # a server-side failure: a write may have been applied
_LIMIT: Final = CodeRule(_RL, Signal.RATE_LIMIT)
_DUPLICATE: Final = CodeRule(_BZ, Signal.DUPLICATE_CLIENT_ORDER_ID, "duplicate order id")

CODES: Final[Mapping[int, CodeRule]] = MappingProxyType(
    {
        5004: _SERVER,  # Server Timeout
        10000: _SERVER,  # Server timeout
        10016: _SERVER,  # System error / service error, please try again later
        170001: _SERVER,  # Internal error
        170007: _SERVER,  # Timeout waiting for response from backend server
        170032: _SERVER,  # Network error, please try again later
        170234: _SERVER,  # System Error
        131200: _SERVER,  # Service error
        131201: _SERVER,  # Internal error
        340099: _SERVER,  # Server error
        170146: _SERVER,  # Order creation timeout (ccxt: InvalidOrder)
        170147: _SERVER,  # Order cancellation timeout (ccxt: InvalidOrder)
        # Request expired: timestamp / recv_window. Refused before acting.
        10002: CodeRule(_T, Signal.CLOCK_SKEW, refused=True),
        10006: _LIMIT,  # too many visits (per key / endpoint)
        10018: _LIMIT,  # exceeded the IP rate limit
        170222: _LIMIT,  # too many requests in this time frame
        # The order already exists: an earlier attempt succeeded.
        110072: _DUPLICATE,  # OrderLinkedID is duplicate
        12141: _DUPLICATE,  # duplicate clientOrderId
        170141: _DUPLICATE,  # duplicate clientOrderId (spot)
        110030: _DUPLICATE,  # duplicate orderId
        140030: _DUPLICATE,  # duplicate orderId
    }
)
"""retCode -> rule."""

TABLE: Final = ExchangeTable(
    "bybit",
    code_fields=("retCode", "ret_code"),
    codes={str(code): (rule,) for code, rule in CODES.items()},
    forbidden_is_ban=True,
)
