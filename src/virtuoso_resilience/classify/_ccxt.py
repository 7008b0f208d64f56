"""ccxt's exception classes (``ccxt.base.errors``, ccxt 4.5).

Every class is listed on purpose; the test suite walks ccxt's hierarchy so
that a class added by an upgrade is noticed. ``by_status`` marks the classes
ccxt raises from its ``httpExceptions`` table (the HTTP status is then in the
message: ``"binance POST https://... 400 Bad Request {}"``).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from ._outcome import OutcomeKind, Signal
from ._rules import LibraryTable, Rule

__all__ = ["TABLES"]

_T = OutcomeKind.TRANSIENT
_PM = OutcomeKind.PERMANENT
_BZ = OutcomeKind.BUSINESS
_RL = OutcomeKind.RATE_LIMITED

_BUSINESS: Final = Rule(_BZ)
_PERMANENT: Final = Rule(_PM)
_MAYBE_SENT: Final = Rule(_T, ambiguous_on_write=True)

_CCXT: Final[LibraryTable] = (
    ("BaseError", Rule(_PM, by_status=True)),
    # Plain and unknown: permanent unless a code says otherwise (ccxt also
    # raises it for HTTP 422).
    ("ExchangeError", Rule(_PM, by_status=True)),
    ("AuthenticationError", _BUSINESS),
    ("PermissionDenied", _BUSINESS),
    ("AccountNotEnabled", _BUSINESS),
    ("AccountSuspended", _BUSINESS),
    ("ArgumentsRequired", _BUSINESS),
    ("BadRequest", _BUSINESS),
    ("BadSymbol", _BUSINESS),
    ("OperationRejected", _BUSINESS),
    ("NoChange", _BUSINESS),
    ("MarginModeAlreadySet", _BUSINESS),
    ("MarketClosed", _BUSINESS),
    ("ManualInteractionNeeded", _BUSINESS),
    ("RestrictedLocation", _BUSINESS),
    ("InsufficientFunds", _BUSINESS),
    ("InvalidAddress", _BUSINESS),
    ("AddressPending", _BUSINESS),
    ("InvalidOrder", _BUSINESS),
    ("OrderNotFound", Rule(_BZ, signal=Signal.ORDER_NOT_FOUND)),
    ("OrderNotCached", _BUSINESS),
    ("OrderImmediatelyFillable", _BUSINESS),
    ("OrderNotFillable", _BUSINESS),
    # The order already exists: an earlier attempt of this write succeeded.
    (
        "DuplicateOrderId",
        Rule(_BZ, note="duplicate order id", signal=Signal.DUPLICATE_CLIENT_ORDER_ID),
    ),
    ("ContractUnavailable", _BUSINESS),
    ("NotSupported", _PERMANENT),
    ("InvalidProxySettings", _PERMANENT),
    ("ExchangeClosedByUser", _PERMANENT),
    ("OperationFailed", Rule(_T, ambiguous_on_write=True, by_status=True)),
    ("NetworkError", Rule(_T, ambiguous_on_write=True, by_status=True)),
    ("DDoSProtection", Rule(_RL, signal=Signal.RATE_LIMIT, by_status=True)),
    ("RateLimitExceeded", Rule(_RL, signal=Signal.RATE_LIMIT, by_status=True)),
    # ccxt also raises it for HTTP 4xx and 5xx answers (the status is in the
    # message): 5xx may have reached the server; a 503 page saying
    # "maintenance" is a maintenance answer; 4xx are permanent.
    (
        "ExchangeNotAvailable",
        Rule(_T, ambiguous_on_write=True, maintenance_hint=True, by_status=True),
    ),
    ("OnMaintenance", Rule(OutcomeKind.MAINTENANCE, signal=Signal.MAINTENANCE)),
    # Refused before acting: our clock drifted. Re-sync and retry; the
    # exchange is healthy (never a service failure).
    ("InvalidNonce", Rule(_T, signal=Signal.CLOCK_SKEW)),
    ("ChecksumError", Rule(_T)),
    ("RequestTimeout", Rule(_T, ambiguous_on_write=True, by_status=True)),
    ("BadResponse", _MAYBE_SENT),
    ("NullResponse", _MAYBE_SENT),
    # The cancel is in flight: query again (never a service failure).
    ("CancelPending", Rule(_T, signal=Signal.CANCEL_PENDING)),
    ("UnsubscribeError", _BUSINESS),  # the caller unsubscribed; not a service failure
)

TABLES: Final[Mapping[str, LibraryTable]] = MappingProxyType({"ccxt.base.errors": _CCXT})
"""Module name -> table."""
