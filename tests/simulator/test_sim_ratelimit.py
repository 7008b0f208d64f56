"""Bybit's request budgets: the limiter alone (virtual time) and through ccxt."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import ccxt.async_support as ccxt
import pytest

from virtuoso_resilience.clock import FakeClock
from virtuoso_resilience.simulator import Simulator, Violation, key_fingerprint
from virtuoso_resilience.simulator._ratelimit import RateLimiter
from virtuoso_resilience.simulator._stats import VIOLATIONS_KEPT, Counters


def make_limiter(clock: FakeClock, **kw: Any) -> RateLimiter:
    options: dict[str, Any] = {"ip_limit": 5, "ip_period": 5.0, "key_default": 3}
    options.update(kw)
    return RateLimiter(clock, **options)


def test_rolling_window_admits_limit_then_rejects_until_oldest_expires(clock: FakeClock) -> None:
    limiter = make_limiter(clock, ip_limit=100, key_limits={"/p": 2})
    first = limiter.check("/p", "ip:a", "key:k")
    assert first is not None and first.allowed and first.remaining == 1 and first.limit == 2
    clock.advance(0.4)
    second = limiter.check("/p", "ip:a", "key:k")
    assert second is not None and second.remaining == 0
    assert second.reset_in == pytest.approx(0.6)  # when the first request leaves the window
    rejected = limiter.check("/p", "ip:a", "key:k")
    assert rejected is not None and not rejected.allowed and rejected.rule == "key"
    assert rejected.reset_in == pytest.approx(0.6)
    clock.advance(0.6)
    assert limiter.check("/p", "ip:a", "key:k").allowed  # type: ignore[union-attr]


def test_rejected_requests_do_not_consume_budget(clock: FakeClock) -> None:
    limiter = make_limiter(clock, ip_limit=100, key_default=1)
    assert limiter.check("/p", "ip:a", "key:k").allowed  # type: ignore[union-attr]
    for _ in range(5):
        assert not limiter.check("/p", "ip:a", "key:k").allowed  # type: ignore[union-attr]
    clock.advance(1.0)
    assert limiter.check("/p", "ip:a", "key:k").allowed  # type: ignore[union-attr]


def test_budgets_are_per_key_and_per_endpoint(clock: FakeClock) -> None:
    limiter = make_limiter(clock, ip_limit=100, key_default=1)
    assert limiter.check("/a", "ip:x", "key:1").allowed  # type: ignore[union-attr]
    assert limiter.check("/b", "ip:x", "key:1").allowed  # type: ignore[union-attr]
    assert limiter.check("/a", "ip:x", "key:2").allowed  # type: ignore[union-attr]
    assert not limiter.check("/a", "ip:x", "key:1").allowed  # type: ignore[union-attr]


def test_ip_budget_spans_all_endpoints(clock: FakeClock) -> None:
    limiter = make_limiter(clock, ip_limit=2, ip_period=5.0)
    assert limiter.check("/a", "ip:x", None).allowed  # type: ignore[union-attr]
    assert limiter.check("/b", "ip:x", None).allowed  # type: ignore[union-attr]
    verdict = limiter.check("/c", "ip:x", None)
    assert verdict is not None and verdict.rule == "ip" and verdict.reset_in == pytest.approx(5.0)
    assert limiter.check("/c", "ip:y", None).allowed  # type: ignore[union-attr]


def test_disabled_limiter_only_applies_fault_rules(clock: FakeClock) -> None:
    limiter = make_limiter(clock, enabled=False)
    assert limiter.check("/a", "ip:x", "key:1") is None
    verdict = limiter.check("/a", "ip:x", "key:1", [("fault#1", 1, 1.0)])
    assert verdict is not None and verdict.rule == "fault#1" and verdict.remaining == 0
    assert not limiter.check("/a", "ip:x", "key:1", [("fault#1", 1, 1.0)]).allowed  # type: ignore[union-attr]


@pytest.fixture
async def frozen_sim() -> AsyncIterator[Simulator]:
    """A simulator whose budget windows never roll over (virtual clock, never advanced)."""
    async with Simulator(
        seed=3, clock=FakeClock(), key_limits={"/v5/order/realtime": 3}, ip_limit=50
    ) as simulator:
        yield simulator


@pytest.fixture
async def frozen_exchange(frozen_sim: Simulator) -> AsyncIterator[Any]:
    exchange = ccxt.bybit(
        {**frozen_sim.ccxt_config(), "enableRateLimit": False, "enableLastResponseHeaders": True}
    )
    exchange.timeout_on_exit = 0
    try:
        await exchange.load_markets()
        yield exchange
    finally:
        await exchange.close()


async def test_private_answers_carry_bybit_limit_headers(
    frozen_sim: Simulator, frozen_exchange: Any
) -> None:
    before = frozen_exchange.milliseconds()
    await frozen_exchange.fetch_open_orders("BTC/USDT")
    headers = frozen_exchange.last_response_headers
    assert headers["X-Bapi-Limit"] == "3"
    assert headers["X-Bapi-Limit-Status"] == "2"
    assert int(headers["X-Bapi-Limit-Reset-Timestamp"]) >= before


async def test_client_exceeding_key_budget_gets_10006_and_is_counted(
    frozen_sim: Simulator, frozen_exchange: Any
) -> None:
    results = await asyncio.gather(
        *(frozen_exchange.fetch_open_orders("BTC/USDT") for _ in range(5)), return_exceptions=True
    )
    errors = [r for r in results if isinstance(r, BaseException)]
    assert len(errors) == 2
    assert all(isinstance(e, ccxt.RateLimitExceeded) and "10006" in str(e) for e in errors)
    assert frozen_sim.request_count("/v5/order/realtime") == 5
    assert frozen_sim.violation_count("/v5/order/realtime", api_key=frozen_sim.api_key) == 2
    violation = frozen_sim.violations[0]
    assert violation.rule == "key" and violation.limit == 3 and violation.period == 1.0
    assert violation.client == key_fingerprint(frozen_sim.api_key)
    assert frozen_sim.stats.violations_total == 2


async def test_a_second_key_has_its_own_budget(frozen_sim: Simulator, frozen_exchange: Any) -> None:
    frozen_sim.add_api_key("second-key", "second-secret")
    other = ccxt.bybit(
        {
            **frozen_sim.ccxt_config(),
            "apiKey": "second-key",
            "secret": "second-secret",
            "enableRateLimit": False,
        }
    )
    other.timeout_on_exit = 0
    try:
        for _ in range(3):
            await frozen_exchange.fetch_open_orders("BTC/USDT")
        with pytest.raises(ccxt.RateLimitExceeded):
            await frozen_exchange.fetch_open_orders("BTC/USDT")
        other.markets = frozen_exchange.markets
        other.markets_by_id = frozen_exchange.markets_by_id
        assert await other.fetch_open_orders("BTC/USDT") == []
    finally:
        await other.close()
    assert frozen_sim.request_count("/v5/order/realtime", api_key="second-key") == 1
    assert frozen_sim.violation_count(api_key="second-key") == 0


async def test_ip_budget_answers_429_with_retry_after(
    frozen_sim: Simulator, frozen_exchange: Any
) -> None:
    used = frozen_sim.request_count()
    for _ in range(50 - used):
        await frozen_exchange.fetch_time()
    with pytest.raises(ccxt.RateLimitExceeded, match="10018"):
        await frozen_exchange.fetch_time()
    headers = frozen_exchange.last_response_headers
    assert int(headers["Retry-After"]) >= 1
    assert frozen_sim.violations[-1].rule == "ip"
    assert frozen_sim.violations[-1].client == "ip:127.0.0.1"


async def test_client_within_budget_has_no_violations(sim: Simulator, exchange: Any) -> None:
    exchange.enableRateLimit = True  # ccxt's own throttle keeps it under Bybit's budgets
    for _ in range(5):
        await exchange.fetch_open_orders("BTC/USDT")
    assert sim.violations == ()
    assert sim.request_count("/v5/order/realtime") == 5


async def test_limit_headers_on_public_answers_only_under_a_fault_budget(
    frozen_sim: Simulator, frozen_exchange: Any
) -> None:
    await frozen_exchange.fetch_time()
    assert "X-Bapi-Limit" not in frozen_exchange.last_response_headers
    frozen_sim.faults.add("rate_limit@public=5/s")
    await frozen_exchange.fetch_time()
    headers = frozen_exchange.last_response_headers
    assert (headers["X-Bapi-Limit"], headers["X-Bapi-Limit-Status"]) == ("5", "4")


def _violation(i: int, client: str = "ip:a", path: str = "/p") -> Violation:
    return Violation(float(i), client, path, "ip", 5, 5.0)


def test_violation_records_are_bounded_but_counts_stay_exact() -> None:
    counters = Counters()
    for i in range(VIOLATIONS_KEPT + 500):
        counters.record_violation(_violation(i, path="/a" if i % 2 else "/b"))
    counters.record_violation(_violation(-1, client="key:k", path="/a"))
    stats = counters.snapshot(1, {}, 0, 0)
    assert VIOLATIONS_KEPT == 1000
    assert stats.violations_total == 1501
    assert len(stats.violations) == 1000
    assert stats.violations[0].at == 501.0 and stats.violations[-1].client == "key:k"
    assert counters.violation_count(None, None) == 1501
    assert counters.violation_count("/a", None) == 751
    assert counters.violation_count(None, "ip:a") == 1500
    assert counters.violation_count("/a", "key:k") == 1
    counters.reset()
    assert counters.violation_count(None, None) == 0 and not counters.violations


async def test_removed_rate_limit_faults_leave_no_budget_log_behind() -> None:
    clock = FakeClock()
    async with (
        Simulator(seed=1, clock=clock, rate_limits=False) as sim,
        aiohttp.ClientSession() as http,
    ):

        async def get() -> None:
            async with http.get(sim.base_url + "/v5/market/time") as response:
                assert response.status == 200

        for _ in range(5):  # like serve: a short budget now and then
            sim.faults.add("rate_limit@/v5/market/time=5/s~10s")
            await get()
            clock.advance(10)
        assert len(sim.faults) == 0
        assert len(sim._limiter) == 0  # the expired faults' request logs went with them
        with sim.faults.add("rate_limit@public=5/s"):
            await get()
            assert len(sim._limiter) == 1
        assert len(sim._limiter) == 0
