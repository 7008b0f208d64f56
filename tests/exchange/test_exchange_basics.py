"""The adapter keeps ccxt's surface: names, signatures, values, attributes."""

from __future__ import annotations

import inspect
from typing import Any

import ccxt.async_support as ccxt
import pytest
from exchange_venues import Factory, client_for

from virtuoso_resilience.exchange import (
    AccountLimiter,
    MethodGroup,
    ResilientExchange,
    create_binance_resilient_config,
    create_bybit_resilient_config,
    create_okx_resilient_config,
    create_resilient_exchange,
)
from virtuoso_resilience.pools import ConnectionPoolManager
from virtuoso_resilience.simulator import Simulator


async def test_seed_example_market_id_and_unified_symbol(bybit_sim: Simulator) -> None:
    sim = bybit_sim
    bybit = ccxt.bybit({**sim.ccxt_config(), "rateLimit": 1})
    bybit.timeout_on_exit = 0
    config = create_bybit_resilient_config()
    resilient_bybit = create_resilient_exchange(bybit, config)
    async with ResilientExchange.of(resilient_bybit):
        ticker = await resilient_bybit.fetch_ticker("BTCUSDT")  # Circuit breaker + retry
        balance = await resilient_bybit.fetch_balance()  # Connection pooling
        unified = await resilient_bybit.fetch_ticker("BTC/USDT")
    # As in ccxt: the market id resolves through ccxt's own market table.
    assert ticker["symbol"] == bybit.market("BTCUSDT")["symbol"]
    assert unified["symbol"] == "BTC/USDT"
    assert balance["USDT"]["total"] == 100_000.0


async def test_ccxt_settings_one_retry_place_our_throttle(
    sim: Simulator, make_resilient: Factory
) -> None:
    adapter = await make_resilient(sim)
    raw: Any = adapter.exchange
    assert raw.options["maxRetriesOnFailure"] == 0
    assert raw.enableRateLimit is True
    assert isinstance(raw.throttler, AccountLimiter)
    assert raw.throttler is adapter.limiter
    # ccxt's rateLimit (20 ms for bybit) is the account rate: 50 cost units per second.
    assert adapter.limiter.account.config.rate == pytest.approx(1000 / raw.rateLimit)
    assert adapter.limiter.account.snapshot()["granted"] > 0


async def test_methods_keep_name_signature_and_value(
    sim: Simulator, make_resilient: Factory
) -> None:
    adapter = await make_resilient(sim)
    raw: Any = adapter.exchange
    wrapped = adapter.fetch_order_book
    assert wrapped.__name__ == "fetch_order_book"
    assert inspect.signature(wrapped) == inspect.signature(raw.fetch_order_book)
    book = await wrapped("ETH/USDT", 5)
    assert book["symbol"] == "ETH/USDT" and book["bids"] and book["asks"]
    candles = await adapter.fetch_ohlcv("BTC/USDT", "1m", limit=3)
    assert len(candles) == 3 and len(candles[0]) == 6


async def test_attributes_pass_through_both_ways(sim: Simulator, make_resilient: Factory) -> None:
    adapter = await make_resilient(sim)
    raw: Any = adapter.exchange
    assert adapter.id == sim.dialect
    assert adapter.markets is raw.markets
    assert adapter.market("BTC/USDT")["id"] == "BTCUSDT"  # a sync method: not wrapped
    adapter.verbose = False
    adapter.timeout = 7000
    assert raw.timeout == 7000
    assert "fetch_ticker" in dir(adapter)
    with pytest.raises(AttributeError):
        _ = adapter.no_such_attribute


async def test_one_pool_per_host_shared_by_adapters(bybit_sim: Simulator) -> None:
    sim = bybit_sim
    async with ConnectionPoolManager() as pools:
        spot = ResilientExchange(_bybit(sim), create_bybit_resilient_config(), pools=pools)
        swap = ResilientExchange(
            _bybit(
                sim, options={"defaultType": "swap", "fetchMarkets": {"types": ["spot", "linear"]}}
            ),
            create_bybit_resilient_config(),
            pools=pools,
        )
        try:
            await spot.fetch_time()
            await swap.fetch_time()
            assert spot.pool is swap.pool
            assert list(pools.pools) == [f"exchange:127.0.0.1:{sim.port}"]
        finally:
            await spot.close()
            await swap.close()
        assert not pools.pools[f"exchange:127.0.0.1:{sim.port}"].closed  # the manager owns it


def _bybit(sim: Simulator, **overrides: Any) -> Any:
    exchange = ccxt.bybit({**sim.ccxt_config(), "rateLimit": 1, **overrides})
    exchange.timeout_on_exit = 0
    return exchange


async def test_close_is_idempotent_and_closes_own_pool(sim: Simulator) -> None:
    adapter = ResilientExchange(client_for(sim))
    await adapter.fetch_time()
    pool = adapter.pool
    assert pool is not None and not pool.closed
    await adapter.close()
    await adapter.close()
    assert pool.closed


def test_groups_of_methods() -> None:
    from virtuoso_resilience.exchange._groups import spec_for

    def group(name: str) -> MethodGroup | None:
        spec = spec_for(name)
        return None if spec is None else spec.group

    assert group("fetch_ticker") is MethodGroup.MARKET_DATA
    assert group("load_markets") is MethodGroup.MARKET_DATA
    assert group("fetch_balance") is MethodGroup.ACCOUNT
    assert group("fetch_open_orders") is MethodGroup.ACCOUNT
    assert group("fetch_my_trades") is MethodGroup.ACCOUNT
    assert group("create_order") is MethodGroup.ORDERS
    assert group("cancel_all_orders") is MethodGroup.ORDERS
    assert group("set_leverage") is MethodGroup.ORDERS
    assert group("withdraw") is MethodGroup.TRANSFERS
    assert group("transfer") is MethodGroup.TRANSFERS
    assert group("market") is None and group("_private") is None and group("watch_ticker") is None


def test_presets_name_their_venue() -> None:
    assert create_bybit_resilient_config().exchange_id == "bybit"
    binance = create_binance_resilient_config()
    assert binance.exchange_id == "binance" and binance.weight_limit_per_minute == 6000.0
    assert create_okx_resilient_config(order_resolve_timeout=5.0).order_resolve_timeout == 5.0


async def test_repr_and_snapshot_show_state_without_secrets(
    sim: Simulator, make_resilient: Factory
) -> None:
    adapter = await make_resilient(sim)
    await adapter.fetch_balance()
    text = repr(adapter) + repr(adapter.snapshot())
    assert "market_data=closed" in repr(adapter)
    assert "active=False" in repr(adapter.maintenance)
    assert "pending=0" in repr(adapter.__dict__["_orders"])
    assert sim.api_key not in text and "sim-api-secret" not in text
    snap = adapter.snapshot()
    assert set(snap["groups"]) == {g.value for g in MethodGroup}
    assert snap["pending_orders"] == 0


def test_config_errors_name_the_field_value_and_rule() -> None:
    from virtuoso_resilience import ConfigurationError
    from virtuoso_resilience.exchange import ExchangeResilienceConfig, GroupConfig

    with pytest.raises(ConfigurationError, match="client_order_id_prefix"):
        ExchangeResilienceConfig(client_order_id_prefix="with-hyphen")
    with pytest.raises(ConfigurationError, match="base_delay must be <= max_delay"):
        GroupConfig(base_delay=10.0, max_delay=1.0)
    with pytest.raises(ConfigurationError, match="order_lookup_base_delay"):
        ExchangeResilienceConfig(order_lookup_base_delay=5.0, order_lookup_max_delay=1.0)
    config = ExchangeResilienceConfig()
    with pytest.raises(ConfigurationError, match="market_data"):
        config.market_data = {"max_attempts": 2}  # type: ignore[assignment]
    with pytest.raises(ConfigurationError, match="ticker_max_staleness"):
        config.ticker_max_staleness = float("nan")
    assert config.ticker_max_staleness == 5.0  # the old value stays
    with pytest.raises(ConfigurationError, match="no_such_field"):
        ExchangeResilienceConfig(no_such_field=1)
