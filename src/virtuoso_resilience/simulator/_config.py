"""Validated configuration of the exchange simulator."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator

from .._model import ConfigModel, NonNegativeFloat, PositiveFloat, PositiveSeconds
from ._binance_config import BinanceLimits
from ._faults import MAX_COUNT, parse_faults
from ._market import MAX_BALANCE, MAX_PRICE
from ._ratelimit import DEFAULT_KEY_LIMITS

__all__ = ["DEFAULT_API_KEY", "DEFAULT_API_SECRET", "SimulatorConfig"]

DEFAULT_API_KEY = "sim-api-key"
"""The simulator's default API key. For testing only: it is public."""
DEFAULT_API_SECRET = "sim-api-secret"
"""The simulator's default API secret. For testing only: it is public."""

MAX_SEED = 2**64 - 1
"""The largest seed accepted (seeds are 0..2**64-1)."""

# The shared rule (strict: no bools or strings for numbers; finite; bounded), as
# in every ConfigModel: a price or balance beyond these bounds breaks Bybit-style decimals.
Price = Annotated[PositiveFloat, Field(le=MAX_PRICE)]
Balance = Annotated[NonNegativeFloat, Field(le=MAX_BALANCE)]
Budget = Annotated[int, Field(ge=1, le=MAX_COUNT)]
Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]


class SimulatorConfig(ConfigModel):
    """How the simulator listens, what it trades and which budgets it enforces.

    Times are seconds; prices are in the quote coin (USDT).
    """

    host: str = "127.0.0.1"
    """Address to bind. Keep the loopback default unless you mean to expose it."""
    port: Annotated[int, Field(ge=0, le=65535)] = 0
    """TCP port; 0 picks a free one (read it back from ``Simulator.port``)."""
    seed: Seed | None = None
    """Seed of the fault and price random generators; ``None`` draws one (see ``sim.seed``)."""
    api_key: Annotated[str, Field(min_length=1)] = DEFAULT_API_KEY
    api_secret: Annotated[str, Field(min_length=1)] = DEFAULT_API_SECRET
    prices: dict[str, Price] = Field(
        default_factory=lambda: {"BTC": 65000.0, "ETH": 3500.0, "SOL": 150.0}
    )
    """Base coin -> starting mid price (finite, 0 < p <= 1e15); each gets a spot and a linear
    (perpetual) USDT market."""
    balances: dict[str, Balance] = Field(
        default_factory=lambda: {"USDT": 100_000.0, "BTC": 1.0, "ETH": 10.0, "SOL": 100.0}
    )
    """Starting wallet of the unified account, per coin (finite, 0 <= amount <= 1e15)."""
    volatility: Annotated[NonNegativeFloat, Field(le=0.1)] = 0.0005
    """Standard deviation of one random-walk step of the log price (0.0005 = 0.05 %)."""
    auto_tick: bool = True
    """Advance a symbol's price one step per ticker, order-book or order-creation request."""
    leverage: Annotated[int, Field(ge=1, le=100)] = 10
    """Leverage used for the initial margin of linear (perpetual) orders and positions."""
    rate_limits: bool = True
    """Enforce Bybit's per-IP and per-key budgets (fault budgets apply regardless)."""
    ip_limit: Budget = 600
    """Requests per ``ip_period`` allowed per client IP (Bybit: 600 per 5 s)."""
    ip_period: PositiveSeconds = 5.0
    """Window of the per-IP budget, seconds (finite, > 0, at most 1e9)."""
    key_limit_default: Budget = 20
    """Requests per second per API key on a private endpoint not in ``key_limits``."""
    key_limits: dict[str, Budget] = Field(default_factory=lambda: dict(DEFAULT_KEY_LIMITS))
    """Private path -> requests per second per API key."""
    faults: str = ""
    """Faults installed at start, in the grammar of ``parse_faults``."""
    dialect: Literal["bybit", "binance"] = "bybit"
    """The exchange API served: Bybit v5 (default) or Binance spot REST v3."""
    binance: BinanceLimits = Field(default_factory=BinanceLimits)
    """Request-weight, order-count and ban rules of the ``binance`` dialect."""

    @field_validator("faults")
    @classmethod
    def _check_faults(cls, value: str) -> str:
        parse_faults(value)
        return value
