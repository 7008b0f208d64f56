"""Errors raised by the resilient exchange adapter."""

from __future__ import annotations

from ..errors import ResilienceError

__all__ = [
    "ExchangeBannedError",
    "InvalidClientOrderIdError",
    "MaintenanceError",
    "OrderStatusUnknownError",
]


class OrderStatusUnknownError(ResilienceError):
    """An order's fate stayed unknown for ``waited`` seconds.

    The order may be live on the exchange: it is *not* terminal. It stays in
    :meth:`ResilientExchange.pending_orders`; calling ``create_order`` again
    with the same ``client_order_id`` reconciles (looks it up, sends only when
    the exchange confirms it is absent) instead of placing a second order.
    """

    def __init__(self, client_order_id: str, symbol: str, waited: float, reason: str) -> None:
        super().__init__(client_order_id, symbol, waited, reason)
        self.client_order_id = client_order_id
        self.symbol = symbol
        self.waited = waited
        self.reason = reason

    def __str__(self) -> str:
        return (
            f"order {self.client_order_id!r} on {self.symbol} is in an unknown state after "
            f"{self.waited:.3f}s ({self.reason}); it is still pending: look it up or call "
            "create_order again with the same client order id to reconcile"
        )


class MaintenanceError(ResilienceError):
    """The exchange is down for maintenance; calls are paused.

    ``expected_end`` is the Unix time (seconds) the exchange announced for the
    end, ``None`` when unknown; ``retry_after`` the seconds until then (or
    until the next status poll when the end is unknown).
    """

    def __init__(
        self, exchange_id: str, expected_end: float | None, retry_after: float | None
    ) -> None:
        super().__init__(exchange_id, expected_end, retry_after)
        self.exchange_id = exchange_id
        self.expected_end = expected_end
        self.retry_after = retry_after

    def __str__(self) -> str:
        if self.expected_end is not None:
            return (
                f"{self.exchange_id} is in maintenance until Unix time "
                f"{self.expected_end:.0f} (in {self.retry_after or 0.0:.1f}s)"
            )
        return f"{self.exchange_id} is in maintenance (end unknown)"


class ExchangeBannedError(ResilienceError):
    """The exchange banned this host (HTTP 418); no request is sent until the ban ends.

    ``retry_after`` is the number of seconds left of the ban.
    """

    def __init__(self, exchange_id: str, retry_after: float) -> None:
        super().__init__(exchange_id, retry_after)
        self.exchange_id = exchange_id
        self.retry_after = retry_after

    def __str__(self) -> str:
        return f"{self.exchange_id} banned this host: no request for {self.retry_after:.1f}s"


class InvalidClientOrderIdError(ResilienceError, ValueError):
    """A caller's client order id breaks the venue's rules (length, characters)."""

    def __init__(self, exchange_id: str, field: str, value: str, allowed: str) -> None:
        super().__init__(exchange_id, field, value, allowed)
        self.exchange_id = exchange_id
        self.field = field
        self.value = value
        self.allowed = allowed

    def __str__(self) -> str:
        shown = self.value if len(self.value) <= 80 else self.value[:77] + "..."
        return f"{self.exchange_id} {self.field}={shown!r} is invalid: {self.allowed}"
