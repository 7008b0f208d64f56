"""The simulator dialects the adapter's tests run against, and their ccxt clients."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import ccxt.async_support as ccxt

from virtuoso_resilience.exchange import (
    ExchangeResilienceConfig,
    ResilientExchange,
    create_binance_resilient_config,
    create_bybit_resilient_config,
)
from virtuoso_resilience.simulator import Simulator

Factory = Callable[..., Awaitable[ResilientExchange[Any]]]


@dataclass(frozen=True)
class Venue:
    """One simulator dialect and what the tests need to know of it."""

    name: str
    client: Callable[[dict[str, Any]], Any]
    preset: Callable[..., ExchangeResilienceConfig]
    create_path: str
    ticker_path: str
    private_path: str  # the balance endpoint


VENUES = {
    "bybit": Venue(
        "bybit",
        ccxt.bybit,
        create_bybit_resilient_config,
        "/v5/order/create",
        "/v5/market/tickers",
        "/v5/account/wallet-balance",
    ),
    "binance": Venue(
        "binance",
        ccxt.binance,
        create_binance_resilient_config,
        "/api/v3/order",
        "/api/v3/ticker/24hr",
        "/api/v3/account",
    ),
}


def client_for(sim: Simulator, **overrides: Any) -> Any:
    """A real ccxt client of the simulator's dialect. ``rateLimit`` 1 ms by
    default: ccxt's per-endpoint costs still weigh, but tests stay quick."""
    exchange = VENUES[sim.dialect].client({**sim.ccxt_config(), "rateLimit": 1, **overrides})
    exchange.timeout_on_exit = 0  # ccxt sleeps 250 ms in close() for TLS; loopback is plain
    return exchange
