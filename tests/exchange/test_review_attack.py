"""Review findings (hostile user, hostile exchange): each test failed before its fix."""

from __future__ import annotations

import asyncio
from typing import Any

import ccxt.async_support as ccxt
import pytest
from exchange_venues import VENUES, Factory

from virtuoso_resilience.clock import FakeClock
from virtuoso_resilience.exchange import MaintenanceError, OrderState, ResilientExchange
from virtuoso_resilience.exchange._limits import AccountLimiter, CallState
from virtuoso_resilience.simulator import Simulator

ORDER = ("BTC/USDT", "limit", "buy", 0.002, 1000.0)


class _Abort(BaseException):
    """Not an ``Exception``: what a hostile callee (or a framework's own
    cancellation, trio/gevent style) can throw through ccxt."""


class _AbortingBybit(ccxt.bybit):  # type: ignore[misc]
    """ccxt's documented ``on_rest_response`` hook raises after the answer
    arrived: the order *is booked* when the BaseException goes up."""

    abort_path = "/v5/order/create"

    def on_rest_response(self, code: Any, reason: Any, url: str, *rest: Any) -> Any:
        if self.abort_path in url:
            raise _Abort("hostile hook")
        return super().on_rest_response(code, reason, url, *rest)


async def test_a_base_exception_after_the_send_leaves_the_order_pending_unknown(
    bybit_sim: Simulator,
) -> None:
    sim = bybit_sim
    raw = _AbortingBybit({**sim.ccxt_config(), "rateLimit": 1})
    raw.timeout_on_exit = 0
    adapter: ResilientExchange[Any] = ResilientExchange(raw, clock=FakeClock(autojump=True))
    try:
        await adapter.load_markets()
        with pytest.raises(_Abort):
            await adapter.create_order(*ORDER, {"orderLinkId": "base-1"})
        assert sim.stats.orders_created == 1  # it is live
        [pending] = adapter.pending_orders()  # so it must not be forgotten
        assert pending.client_order_id == "base-1" and pending.state is OrderState.UNKNOWN
        assert "_Abort" in pending.reason
        # The same id later reconciles (no second order), with the hook gone.
        raw.abort_path = "/never"
        creates = sim.request_count("/v5/order/create")
        order = await adapter.create_order(*ORDER, {"orderLinkId": "base-1"})
        assert order["clientOrderId"] == "base-1"
        assert sim.request_count("/v5/order/create") == creates
        assert sim.stats.orders_created == 1 and adapter.pending_orders() == []
    finally:
        await adapter.close()


def _limiter() -> AccountLimiter:
    return AccountLimiter(
        "bybit:public",
        rate=10.0,
        capacity=5.0,
        safety=0.9,
        weight_limit_per_minute=6000.0,
        max_ban=3600.0,
        clock=FakeClock(),
    )


@pytest.mark.parametrize("value", ["1_000", "1e3", "0x10", "+5", "1e308", "10000001", "٣", "²"])
def test_a_limit_header_that_is_not_a_plain_sane_number_is_ignored(value: str) -> None:
    limiter = _limiter()
    limiter.observe(CallState("fetch_ticker"), "/v5/market/tickers", 200, {"X-Bapi-Limit": value})
    assert limiter.endpoints == {}, value
    assert len(repr(limiter.snapshot())) < 2000


def test_a_plain_limit_header_is_learned() -> None:
    limiter = _limiter()
    limiter.observe(CallState("fetch_ticker"), "/p", 200, {"x-bapi-limit": " 20 "})
    assert limiter.endpoints["/p"].config.rate == pytest.approx(18.0)


@pytest.mark.parametrize("value", ["1_000", "1e308", "6e6"])
def test_a_used_weight_header_that_is_not_sane_is_ignored(value: str) -> None:
    limiter = _limiter()
    limiter.observe(None, "/api/v3/ticker/24hr", 200, {"X-MBX-USED-WEIGHT-1M": value})
    assert limiter.used_weight is None


def test_an_infinite_retry_after_drains_for_the_longest_ban_not_one_second() -> None:
    limiter = _limiter()
    assert limiter.drain(float("inf")) == 3600.0
    assert limiter.drain(float("nan")) == 1.0
    assert str(limiter.drain(-0.0)) == "0.0"


async def test_snapshot_and_repr_do_not_copy_thousands_of_pending_orders(
    bybit_sim: Simulator, make_resilient: Factory
) -> None:
    sim = bybit_sim
    adapter = await make_resilient(sim, clock=FakeClock(autojump=True))
    tracker = adapter.__dict__["_orders"]
    for i in range(5000):
        tracker._pending[f"p{i}"] = tracker._pending.get(f"p{i}") or _entry()
    assert adapter.snapshot()["pending_orders"] == 5000
    assert "pending_orders=5000" in repr(adapter)
    assert tracker.count() == 5000


def _entry() -> Any:
    from virtuoso_resilience.exchange._orders import _Entry

    return _Entry(ORDER, 0.0)


async def test_a_status_poller_killed_by_a_base_exception_does_not_pause_calls_forever(
    bybit_sim: Simulator,
) -> None:
    sim = bybit_sim
    raw = _AbortingBybit({**sim.ccxt_config(), "rateLimit": 1})
    raw.timeout_on_exit = 0
    raw.abort_path = "/v5/system/status"  # the poller's fetch_status dies, not with an Exception
    clock = FakeClock(autojump=True)
    adapter: ResilientExchange[Any] = ResilientExchange(raw, clock=clock)
    guard = adapter.maintenance
    try:
        await adapter.load_markets()
        handle = sim.faults.add("maintenance=on")
        with pytest.raises(MaintenanceError):
            await adapter.fetch_ticker("BTC/USDT")
        assert guard.active
        await _until(lambda: guard.polls >= 1 and not guard.active)
        assert guard.poller_errors == 1
        handle.remove()
        # The calls go to the exchange again (and would re-enter maintenance if it were on).
        assert (await adapter.fetch_ticker("BTC/USDT"))["symbol"] == "BTC/USDT"
    finally:
        await adapter.close()


async def _until(predicate: Any) -> None:
    for _ in range(2000):
        if predicate():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition not reached")


async def test_secrets_never_shown_in_errors_snapshots_or_health_on_either_venue(
    sim: Simulator, make_resilient: Factory
) -> None:
    from virtuoso_resilience import HealthService

    venue = VENUES[sim.dialect]
    key, secret = "k3y-review-private", "s3cret-review-private"
    sim.add_api_key(key, secret)
    adapter = await make_resilient(sim, apiKey=key, secret=secret)
    health = HealthService()
    adapter.register_health(health)
    await adapter.fetch_balance()
    texts: list[str] = []
    for fault in (f"http@{venue.private_path}=400", f"http@{venue.private_path}=503"):
        with sim.faults.add(fault), pytest.raises(ccxt.BaseError) as caught:
            await adapter.fetch_balance()
        texts += [str(caught.value), repr(caught.value), *getattr(caught.value, "__notes__", [])]
    with sim.faults.add(f"lost_response@{venue.create_path}=next:1"):
        await adapter.create_order(*ORDER)
    report = await health.run_checks()
    texts += [repr(adapter), repr(adapter.snapshot()), repr(adapter.pending_orders())]
    texts += [
        repr(adapter.limiter),
        repr(adapter.exchange.session),
        repr(report),
        repr(health.snapshot()),
    ]
    text = "\n".join(texts)
    assert key not in text and secret not in text
    assert "key:" in adapter.limiter.name
