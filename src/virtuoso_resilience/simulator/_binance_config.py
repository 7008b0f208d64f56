"""Binance spot budgets of the simulator's ``binance`` dialect (validated configuration)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from .._model import ConfigModel, Count, PositiveSeconds

__all__ = ["BinanceLimits"]

MAX_BAN_SECONDS = 3 * 86400.0
"""Binance bans repeat offenders for up to 3 days."""


class BinanceLimits(ConfigModel):
    """Binance's spot request-weight, order-count and IP-ban rules (times in seconds).

    Windows are fixed intervals of the simulator's clock (Binance resets its
    counters at interval boundaries), not rolling windows.
    """

    weight_limit: Count = 6000
    """Request weight allowed per IP and ``weight_period`` (Binance spot: 6000 per minute)."""
    weight_period: PositiveSeconds = 60.0
    """Length of one weight interval, seconds (reported as ``X-MBX-USED-WEIGHT-1M``)."""
    order_limit_10s: Count = 100
    """New orders allowed per account per 10 seconds (``X-MBX-ORDER-COUNT-10S``)."""
    order_limit_1d: Count = 200_000
    """New orders allowed per account per day (``X-MBX-ORDER-COUNT-1D``)."""
    ban_after: Count = 1
    """Requests received while the IP is limited (after a 429, before its
    ``Retry-After`` has passed) that earn an IP ban (HTTP 418)."""
    ban_seconds: Annotated[PositiveSeconds, Field(le=MAX_BAN_SECONDS)] = 120.0
    """Length of the first ban, seconds; each further ban doubles it, up to 3 days."""
