"""The real ccxt bybit client against the project's simulator, through the policies.

Retry-After reaches the policies only because the caller attaches ccxt's
``last_response_headers`` (ccxt exceptions carry none), exactly as the
exchange adapter does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import ccxt
import ccxt.async_support as ccxt_async
import pytest

from virtuoso_resilience import (
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitState,
    FakeClock,
    RetryPolicy,
)
from virtuoso_resilience.classify import OutcomeKind, Signal, attach_response, classify
from virtuoso_resilience.simulator import Simulator

R = TypeVar("R")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(autojump=True)


@pytest.fixture
async def sim(clock: FakeClock) -> AsyncIterator[Simulator]:
    # The simulator's rate-limit windows run on the same virtual clock as the policies.
    async with Simulator(seed=1, clock=clock) as simulator:
        yield simulator


@pytest.fixture
async def bybit(sim: Simulator) -> AsyncIterator[Any]:
    exchange = ccxt_async.bybit({**sim.ccxt_config(), "enableRateLimit": False})
    exchange.timeout_on_exit = 0
    try:
        await exchange.load_markets()
        yield exchange
    finally:
        await exchange.close()


def _with_response(exchange: Any, call: Callable[[], Awaitable[R]]) -> Callable[[], Awaitable[R]]:
    """What the exchange adapter does: attach ccxt's response headers, re-raise."""

    async def run() -> R:
        try:
            return await call()
        except ccxt.BaseError as error:
            raise attach_response(error, headers=exchange.last_response_headers) from None

    return run


async def test_retry_waits_the_retry_after_of_a_simulated_429(
    sim: Simulator, bybit: Any, clock: FakeClock
) -> None:
    sim.faults.add("http@/v5/market/tickers=429#1")  # HTTP 429 with Retry-After: 1
    started: list[float] = []

    async def ticker() -> Any:
        started.append(clock.now())
        return await bybit.fetch_ticker("BTC/USDT")

    # Without Retry-After the backoff would be at most base_delay (1 ms).
    policy = RetryPolicy(max_attempts=3, base_delay=0.001, max_delay=30.0, clock=clock)
    result = await policy.call_async(_with_response(bybit, ticker))
    assert result["last"] > 0
    assert [t - started[0] for t in started] == [0.0, 1.0]
    assert policy.metrics.total_backoff_seconds == 1.0


async def test_retry_waits_the_budget_reset_of_a_simulated_10006(
    sim: Simulator, bybit: Any, clock: FakeClock
) -> None:
    sim.faults.add("rate_limit@/v5/market/tickers=1/2s")
    started: list[float] = []
    errors: list[BaseException] = []

    async def ticker() -> Any:
        started.append(clock.now())
        try:
            return await bybit.fetch_ticker("BTC/USDT")
        except ccxt.BaseError as error:
            errors.append(error)
            raise

    policy = RetryPolicy(max_attempts=3, base_delay=0.001, max_delay=30.0, clock=clock)
    call = _with_response(bybit, ticker)
    await policy.call_async(call)  # spends the budget
    await policy.call_async(call)  # refused with 10006 + Retry-After, then let through
    assert len(errors) == 1
    assert isinstance(errors[0], ccxt.RateLimitExceeded)
    outcome = classify(errors[0])
    assert (outcome.kind, outcome.signal, outcome.code) == (
        OutcomeKind.RATE_LIMITED,
        Signal.RATE_LIMIT,
        "10006",
    )
    assert outcome.retry_after is not None and outcome.retry_after >= 1.0
    waited = started[2] - started[1]
    assert waited == outcome.retry_after  # the server's wait, not a 1 ms backoff
    assert sim.violation_count() == 1


async def test_invalid_nonce_never_trips_the_breaker(bybit: Any, clock: FakeClock) -> None:
    breaker = CircuitBreaker(
        "bybit_private", CircuitBreakerConfig(failure_threshold=1), clock=clock
    )
    bybit.options["timeDifference"] = 60_000  # ccxt signs with a clock one minute late
    for _ in range(5):
        with pytest.raises(ccxt.InvalidNonce) as info:
            await breaker.call_async(_with_response(bybit, lambda: bybit.fetch_balance()))
        outcome = classify(info.value)
        assert (outcome.signal, outcome.code) == (Signal.CLOCK_SKEW, "10002")
        assert outcome.is_retryable and not outcome.is_service_failure
    assert breaker.state is CircuitState.CLOSED
    # After the resync (what the adapter does on CLOCK_SKEW) the same call succeeds.
    bybit.options["timeDifference"] = 0
    assert "USDT" in await breaker.call_async(lambda: bybit.fetch_balance())
    # A real outage still trips it.
    bybit.urls["api"] = {key: "http://127.0.0.1:9" for key in bybit.urls["api"]}
    with pytest.raises(ccxt.NetworkError):
        await breaker.call_async(lambda: bybit.fetch_balance())
    assert breaker.state is CircuitState.OPEN


@pytest.mark.parametrize("status", [400, 404, 405, 409, 410, 451])
async def test_simulated_4xx_pages_are_permanent(sim: Simulator, bybit: Any, status: int) -> None:
    order = _with_response(
        bybit, lambda: bybit.create_order("BTC/USDT", "limit", "buy", 0.01, 50_000)
    )
    with (
        sim.faults.add(f"http@/v5/order/create={status}"),
        pytest.raises(ccxt.ExchangeNotAvailable) as info,
    ):
        await order()
    outcome = classify(info.value, write=True)
    assert (outcome.kind, outcome.status) == (OutcomeKind.PERMANENT, status)


async def test_simulated_403_is_an_ip_ban(sim: Simulator, bybit: Any) -> None:
    ticker = _with_response(bybit, lambda: bybit.fetch_ticker("BTC/USDT"))
    with (
        sim.faults.add("http@/v5/market/tickers=403"),
        pytest.raises(ccxt.RateLimitExceeded) as info,
    ):
        await ticker()
    outcome = classify(info.value)
    assert (outcome.signal, outcome.retry_after) == (Signal.IP_BAN, 120.0)


async def test_simulated_maintenance_page_is_maintenance(sim: Simulator, bybit: Any) -> None:
    with sim.faults.add("maintenance=30s"), pytest.raises(ccxt.ExchangeNotAvailable) as info:
        await _with_response(bybit, lambda: bybit.fetch_ticker("BTC/USDT"))()
    outcome = classify(info.value, write=True)
    assert (outcome.kind, outcome.signal, outcome.status) == (
        OutcomeKind.MAINTENANCE,
        Signal.MAINTENANCE,
        503,
    )
    assert outcome.retry_after == 30.0  # the maintenance page's Retry-After
