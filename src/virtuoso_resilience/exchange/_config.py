"""Configuration of the resilient exchange adapter, and the per-venue presets."""

from __future__ import annotations

import enum
from typing import Any, Self

from pydantic import Field, model_validator

from .._model import (
    ConfigModel,
    Count,
    NonNegativeCount,
    PositiveFloat,
    PositiveRatio,
    PositiveSeconds,
    RuleError,
)

__all__ = [
    "ExchangeResilienceConfig",
    "GroupConfig",
    "MethodGroup",
    "create_binance_resilient_config",
    "create_bybit_resilient_config",
    "create_okx_resilient_config",
]


class MethodGroup(enum.Enum):
    """What a ccxt method does; each group has its own breaker, retry, timeout, bulkhead."""

    MARKET_DATA = "market_data"
    """Public market data: tickers, order books, candles, trades, markets, time, status."""
    ACCOUNT = "account"
    """Private reads: balances, orders, trades, positions."""
    ORDERS = "orders"
    """Order writes (create, edit, cancel) and other account writes (leverage, margin)."""
    TRANSFERS = "transfers"
    """Transfers and withdrawals: never retried after an ambiguous outcome."""


class GroupConfig(ConfigModel):
    """Breaker, retry, timeout and bulkhead settings of one method group (seconds)."""

    failure_threshold: Count = 5
    """Consecutive service failures that open the group's breaker."""
    success_threshold: Count = 2
    """Successful trial calls that close a half-open breaker."""
    recovery_timeout: PositiveSeconds = 30.0
    """Seconds an open breaker waits before a trial call."""
    max_attempts: Count = 3
    """Attempts per call, the first included (1: no retry)."""
    base_delay: PositiveSeconds = 0.2
    """First backoff delay; doubles per retry, full jitter."""
    max_delay: PositiveSeconds = 5.0
    """Largest backoff delay."""
    timeout: PositiveSeconds = 10.0
    """Limit of one attempt (the ccxt request included)."""
    max_concurrent: Count = 20
    """Calls of this group running at once against the exchange."""
    max_waiting: NonNegativeCount = 1000
    """Calls allowed to wait for a bulkhead slot."""

    @model_validator(mode="after")
    def _delays_ordered(self) -> Self:
        if self.base_delay > self.max_delay:
            raise RuleError(
                {"base_delay": self.base_delay, "max_delay": self.max_delay},
                "base_delay must be <= max_delay",
            )
        return self


def _market_data() -> GroupConfig:
    return GroupConfig(max_attempts=3, timeout=10.0, max_concurrent=50)


def _account() -> GroupConfig:
    return GroupConfig(max_attempts=3, timeout=10.0, max_concurrent=20)


def _orders() -> GroupConfig:
    return GroupConfig(max_attempts=4, timeout=10.0, max_concurrent=20, failure_threshold=5)


def _transfers() -> GroupConfig:
    return GroupConfig(max_attempts=2, timeout=30.0, max_concurrent=2, failure_threshold=3)


class ExchangeResilienceConfig(ConfigModel):
    """Everything the adapter does, per exchange. Times are seconds.

    ``exchange_id`` selects the venue rules (client order id codec, limit
    headers, error codes); ``None`` takes the wrapped exchange's ``id``.
    """

    exchange_id: str | None = None
    # Fixed once built (an adapter holds them): change their fields instead,
    # ``config.orders.max_attempts = 2``, which applies at run time.
    market_data: GroupConfig = Field(default_factory=_market_data, frozen=True)
    account: GroupConfig = Field(default_factory=_account, frozen=True)
    orders: GroupConfig = Field(default_factory=_orders, frozen=True)
    transfers: GroupConfig = Field(default_factory=_transfers, frozen=True)

    rate_limit_burst: PositiveFloat = 5.0
    """Tokens (ccxt cost units, one per ``rateLimit`` ms) the account limiter holds at
    most: the largest burst. 1 spaces requests evenly, which keeps rolling-window budgets."""
    rate_limit_safety: PositiveRatio = 0.9
    """Fraction of a learned exchange budget the limiter uses."""
    weight_limit_per_minute: PositiveFloat | None = None
    """The account's request-weight budget per minute (Binance), learned against
    ``X-MBX-USED-WEIGHT-1M``; ``None``: use only what ccxt's ``rateLimit`` allows."""
    max_ban: PositiveSeconds = 3600.0
    """Longest ban (HTTP 418) honoured when the exchange sends no ``Retry-After``."""

    order_resolve_timeout: PositiveSeconds = 30.0
    """Seconds an order may stay ambiguous (looked up with backoff) before
    ``OrderStatusUnknownError``."""
    order_lookup_base_delay: PositiveSeconds = 0.1
    """First delay between order look-ups; doubles up to ``order_lookup_max_delay``."""
    order_lookup_max_delay: PositiveSeconds = 2.0
    """Largest delay between order look-ups."""
    client_order_id_prefix: str = Field(default="vr", pattern=r"^[A-Za-z0-9]{0,8}$")
    """Prefix of generated client order ids (letters and digits, at most 8)."""

    maintenance_poll_base: PositiveSeconds = 1.0
    """First delay between ``fetch_status`` polls while in maintenance; doubles."""
    maintenance_poll_max: PositiveSeconds = 60.0
    """Largest delay between maintenance polls."""
    maintenance_max_wait: PositiveSeconds | None = None
    """Seconds a call waits for a maintenance to end before ``MaintenanceError``;
    ``None``: fail at once with ``MaintenanceError``."""

    ticker_max_staleness: PositiveSeconds | None = 5.0
    """Largest age of a ticker served while the exchange is unavailable; ``None``: never serve."""
    order_book_max_staleness: PositiveSeconds | None = 2.0
    """Largest age of an order book served while the exchange is unavailable."""
    ohlcv_max_staleness: PositiveSeconds | None = 60.0
    """Largest age of candles served while the exchange is unavailable."""

    health_check_interval: PositiveSeconds = 30.0
    """Seconds between the registered exchange health checks."""

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.order_lookup_base_delay > self.order_lookup_max_delay:
            raise RuleError(
                {
                    "order_lookup_base_delay": self.order_lookup_base_delay,
                    "order_lookup_max_delay": self.order_lookup_max_delay,
                },
                "order_lookup_base_delay must be <= order_lookup_max_delay",
            )
        if self.maintenance_poll_base > self.maintenance_poll_max:
            raise RuleError(
                {
                    "maintenance_poll_base": self.maintenance_poll_base,
                    "maintenance_poll_max": self.maintenance_poll_max,
                },
                "maintenance_poll_base must be <= maintenance_poll_max",
            )
        return self

    def group(self, group: MethodGroup) -> GroupConfig:
        """The settings of ``group``."""
        config: GroupConfig = getattr(self, group.value)
        return config


def create_bybit_resilient_config(**overrides: Any) -> ExchangeResilienceConfig:
    """Bybit v5: per-endpoint budgets learned from ``X-Bapi-Limit*`` headers."""
    return ExchangeResilienceConfig(**{"exchange_id": "bybit", **overrides})


def create_binance_resilient_config(**overrides: Any) -> ExchangeResilienceConfig:
    """Binance spot: a 6000-weight-per-minute budget learned from ``X-MBX-USED-WEIGHT-1M``."""
    return ExchangeResilienceConfig(
        **{"exchange_id": "binance", "weight_limit_per_minute": 6000.0, **overrides}
    )


def create_okx_resilient_config(**overrides: Any) -> ExchangeResilienceConfig:
    """OKX: client order ids of 1-32 letters and digits; ccxt's per-endpoint costs."""
    return ExchangeResilienceConfig(**{"exchange_id": "okx", **overrides})
