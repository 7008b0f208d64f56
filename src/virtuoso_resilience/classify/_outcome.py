"""The outcome types: what a call's outcome means, and what it signals."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

__all__ = ["SUCCESS", "Outcome", "OutcomeKind", "Signal"]


class OutcomeKind(enum.Enum):
    """What a call's outcome means to a resilience policy."""

    SUCCESS = "success"
    """The call succeeded."""
    TRANSIENT = "transient"
    """A temporary failure; trying again (after a backoff) may succeed."""
    RATE_LIMITED = "rate_limited"
    """The server refused the request because of a rate limit; wait, then retry."""
    MAINTENANCE = "maintenance"
    """The service said it is down for maintenance; retrying soon is pointless."""
    AMBIGUOUS = "ambiguous"
    """A write failed in a way that leaves unknown whether the server acted."""
    PERMANENT = "permanent"
    """A failure that retrying will not fix (unsupported, misconfigured, a bug)."""
    BUSINESS = "business"
    """The caller's or the account's problem (bad order, no funds, bad key)."""
    REJECTED = "rejected"
    """Refused locally by a resilience policy (open breaker, full bulkhead, no
    pooled connection): the call never reached the service. Retryable, but
    never a service failure, so a breaker does not count it."""


class Signal(enum.Enum):
    """What an adapter must *do* about an outcome, beyond its kind.

    Adapters read :attr:`Outcome.signal`, never exception types: the
    classifier is the one place that knows which ccxt class, HTTP status or
    exchange error code means what.
    """

    CLOCK_SKEW = "clock_skew"
    """The request's timestamp was refused (ccxt ``InvalidNonce``, Bybit 10002,
    Binance -1021, OKX 50102): re-sync the time difference, then retry once.
    Never a service failure."""
    IP_BAN = "ip_ban"
    """The host is banned (HTTP 418, Binance -1003 "IP banned until ...", a
    Bybit HTTP 403): stop calling that host until ``retry_after`` has passed."""
    DUPLICATE_CLIENT_ORDER_ID = "duplicate_client_order_id"
    """The client order id is already taken (Bybit 110072, Binance -2010
    "Duplicate order sent", OKX 51016): an earlier attempt landed; look it up."""
    ORDER_NOT_FOUND = "order_not_found"
    """The exchange does not know the order (ccxt ``OrderNotFound``)."""
    CANCEL_PENDING = "cancel_pending"
    """A cancel is already in flight (ccxt ``CancelPending``): query again.
    Never a service failure."""
    RATE_LIMIT = "rate_limit"
    """The account's or the IP's request budget is spent (HTTP 429, Bybit
    10006, Binance -1003, OKX 50011): every caller of that budget must wait,
    not only this one."""
    MAINTENANCE = "maintenance"
    """The exchange is down for maintenance (``OnMaintenance``, a 503 page
    saying so, OKX 50001): pause the exchange and poll its status."""


_RETRYABLE: Final = frozenset(
    {OutcomeKind.TRANSIENT, OutcomeKind.RATE_LIMITED, OutcomeKind.REJECTED}
)
_SERVICE_FAILURES: Final = frozenset(
    {
        OutcomeKind.TRANSIENT,
        OutcomeKind.MAINTENANCE,
        OutcomeKind.AMBIGUOUS,
        OutcomeKind.PERMANENT,
    }
)
# Answers of a healthy service that happen to be failures of this call.
_NOT_SERVICE_FAILURES: Final = frozenset({Signal.CLOCK_SKEW, Signal.CANCEL_PENDING})


@dataclass(frozen=True, slots=True, repr=False)
class Outcome:
    """The meaning of one call's outcome.

    ``retry_after`` is the number of seconds to wait before trying again when
    the failure says so (a ``Retry-After`` header, Bybit's
    ``X-Bapi-Limit-Reset-Timestamp``, a ban's end, an open breaker's next
    trial); ``None`` when unknown. ``reason`` is short and never contains
    secrets (no messages, no URLs): an exception class name, ``"HTTP 503"``,
    or ``"bybit retCode 10016"``. ``status`` is the HTTP status when known,
    ``code`` the exchange's error code when known (a string: ``"10006"``,
    ``"-1021"``), and ``signal`` what an adapter must do about it.
    """

    kind: OutcomeKind
    retry_after: float | None = None
    reason: str = ""
    status: int | None = None
    code: str | None = None
    signal: Signal | None = None

    @property
    def is_success(self) -> bool:
        """The call succeeded."""
        return self.kind is OutcomeKind.SUCCESS

    @property
    def is_retryable(self) -> bool:
        """Trying again may succeed: transient, rate limited or rejected locally."""
        return self.kind in _RETRYABLE

    @property
    def is_service_failure(self) -> bool:
        """The service failed: what a circuit breaker counts by default.

        Transient, maintenance, ambiguous and permanent outcomes count, except
        a refused timestamp (:attr:`Signal.CLOCK_SKEW`: our clock drifted) and
        a cancel in flight (:attr:`Signal.CANCEL_PENDING`). Rate limits are
        left to the breaker's own configuration; business errors never count.
        """
        return self.kind in _SERVICE_FAILURES and self.signal not in _NOT_SERVICE_FAILURES

    def __repr__(self) -> str:
        parts = [self.kind.name]
        if self.retry_after is not None:
            parts.append(f"retry_after={self.retry_after:g}")
        if self.reason:
            parts.append(f"reason={self.reason!r}")
        if self.status is not None:
            parts.append(f"status={self.status}")
        if self.code is not None:
            parts.append(f"code={self.code!r}")
        if self.signal is not None:
            parts.append(f"signal={self.signal.name}")
        return f"Outcome({', '.join(parts)})"


SUCCESS: Final = Outcome(OutcomeKind.SUCCESS)
"""The outcome of every successful call."""
