"""Order safety against the simulator: lost answers, 5xx, duplicates, unknown orders."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from exchange_venues import Factory, Venue, client_for

from virtuoso_resilience.clock import FakeClock
from virtuoso_resilience.exchange import (
    InvalidClientOrderIdError,
    OrderState,
    OrderStatusUnknownError,
    ResilientExchange,
    codec_for,
)
from virtuoso_resilience.simulator import Simulator

# A resting limit buy far below the market: it stays open, costs 2 USDT.
ORDER = ("BTC/USDT", "limit", "buy", 0.002, 1000.0)


async def _find(sim: Simulator, cid: str) -> Any:
    """Look the order up with a plain ccxt client (no adapter): what the exchange holds."""
    raw = client_for(sim)
    try:
        await raw.load_markets()
        if sim.dialect == "bybit":
            return await raw.fetch_order("", "BTC/USDT", {"orderLinkId": cid, "acknowledged": True})
        return await raw.fetch_order("", "BTC/USDT", {"origClientOrderId": cid})
    finally:
        await raw.close()


async def test_lost_answer_is_looked_up_not_resent(
    venue: Venue, sim: Simulator, make_resilient: Factory
) -> None:
    adapter = await make_resilient(sim)
    with sim.faults.add(f"lost_response@{venue.create_path}=next:1") as handle:
        order = await adapter.create_order(*ORDER)
    assert handle.fired == 1
    assert sim.stats.orders_created == 1
    assert order["status"] == "open" and order["clientOrderId"].startswith("vr")
    assert (await _find(sim, order["clientOrderId"]))["id"] == order["id"]
    assert adapter.pending_orders() == []


async def test_refused_before_booking_is_sent_again_with_the_same_id(
    venue: Venue, sim: Simulator, make_resilient: Factory
) -> None:
    adapter = await make_resilient(sim)
    with sim.faults.add(f"http@{venue.create_path}=503:next:1"):
        order = await adapter.create_order(*ORDER, {"clientOrderId": "mine-1"})
    assert order["clientOrderId"] == "mine-1"
    assert sim.stats.orders_created == 1
    orders = ResilientExchange.of(adapter)
    assert orders.snapshot()["pending_orders"] == 0


async def test_duplicate_rejection_proves_the_order_exists(
    sim: Simulator, make_resilient: Factory
) -> None:
    first = await make_resilient(sim)
    placed = await first.create_order(*ORDER, {"clientOrderId": "dup-1"})
    # Another process (no memory of the first) sends the same id: the exchange
    # rejects it as a duplicate, and the adapter answers with the existing order.
    second = await make_resilient(sim)
    again = await second.create_order(*ORDER, {"clientOrderId": "dup-1"})
    assert again["id"] == placed["id"]
    assert sim.stats.orders_created == 1


async def test_business_refusal_is_raised_and_forgotten(
    sim: Simulator, make_resilient: Factory
) -> None:
    import ccxt.async_support as ccxt

    adapter = await make_resilient(sim)
    with pytest.raises(ccxt.InsufficientFunds):
        await adapter.create_order("BTC/USDT", "limit", "buy", 150.0, 1000.0)
    assert adapter.pending_orders() == []
    assert sim.stats.orders_created == 0


async def test_unknown_order_raises_keeps_pending_and_reconciles(
    bybit_sim: Simulator, make_resilient: Factory
) -> None:
    sim = bybit_sim
    clock = FakeClock(autojump=True)
    config = VENUE_PRESET(order_resolve_timeout=3.0)
    adapter = await make_resilient(sim, config, clock=clock)
    sim.faults.add("lost_response@/v5/order/create=next:1")
    lookups_down = sim.faults.add("http@/v5/order/realtime=503")
    with pytest.raises(OrderStatusUnknownError) as caught:
        await adapter.create_order(*ORDER, {"orderLinkId": "unknown-1"})
    error = caught.value
    assert error.client_order_id == "unknown-1" and error.waited >= 3.0
    assert "unknown-1" in str(error)
    [pending] = adapter.pending_orders()
    assert pending.client_order_id == "unknown-1" and pending.state is OrderState.UNKNOWN
    assert sim.stats.orders_created == 1  # it is live: not a rejection

    lookups_down.remove()
    # The failed look-ups opened the account breaker: it admits a trial after its timeout.
    assert adapter.breaker("account").state.value == "open"
    clock.advance(adapter.config.account.recovery_timeout)
    creates = sim.request_count("/v5/order/create")
    order = await adapter.create_order(*ORDER, {"orderLinkId": "unknown-1"})
    assert order["clientOrderId"] == "unknown-1"
    assert sim.request_count("/v5/order/create") == creates  # reconciled, not sent
    assert adapter.pending_orders() == [] and sim.stats.orders_created == 1


async def test_unknown_order_absent_on_reconcile_is_sent(
    bybit_sim: Simulator, make_resilient: Factory
) -> None:
    sim = bybit_sim
    clock = FakeClock(autojump=True)
    adapter = await make_resilient(sim, VENUE_PRESET(order_resolve_timeout=2.0), clock=clock)
    sim.faults.add("http@/v5/order/create=503:next:1")  # refused: nothing booked
    with sim.faults.add("http@/v5/order/realtime=503"), pytest.raises(OrderStatusUnknownError):
        await adapter.create_order(*ORDER, {"orderLinkId": "absent-1"})
    assert sim.stats.orders_created == 0
    clock.advance(adapter.config.account.recovery_timeout)
    order = await adapter.create_order(*ORDER, {"orderLinkId": "absent-1"})
    assert order["clientOrderId"] == "absent-1" and sim.stats.orders_created == 1


async def test_concurrent_creates_with_one_id_place_one_order(
    sim: Simulator, make_resilient: Factory
) -> None:
    adapter = await make_resilient(sim)
    results = await asyncio.gather(
        *(adapter.create_order(*ORDER, {"clientOrderId": "same-1"}) for _ in range(5))
    )
    assert {r["id"] for r in results} == {results[0]["id"]}
    assert sim.stats.orders_created == 1


async def test_cancel_after_lost_answer_reports_the_order_gone(
    bybit_sim: Simulator, make_resilient: Factory
) -> None:
    sim = bybit_sim
    adapter = await make_resilient(sim)
    order = await adapter.create_order(*ORDER)
    with sim.faults.add("lost_response@/v5/order/cancel=next:1") as handle:
        result = await adapter.cancel_order(order["id"], "BTC/USDT")
    # The first cancel landed, its answer was lost; the second is "not found":
    # the order is gone, and the adapter answers with the order as it is now.
    assert handle.fired == 1 and sim.request_count("/v5/order/cancel") == 2
    assert result["id"] == order["id"] and result["status"] == "canceled"
    assert (await _find(sim, order["clientOrderId"]))["status"] == "canceled"


async def test_cancel_refused_by_a_5xx_is_sent_again(
    venue: Venue, sim: Simulator, make_resilient: Factory
) -> None:
    # (Binance cancels are DELETEs: aiohttp itself resends an idempotent request
    # whose keep-alive connection dropped, so a lost cancel answer there reaches
    # ccxt as the resend's "Unknown order", as it would in production.)
    adapter = await make_resilient(sim)
    order = await adapter.create_order(*ORDER)
    cancel_path = "/v5/order/cancel" if venue.name == "bybit" else venue.create_path
    with sim.faults.add(f"http@{cancel_path}=502:next:1") as handle:
        await adapter.cancel_order(order["id"], "BTC/USDT")
    assert handle.fired == 1
    assert (await _find(sim, order["clientOrderId"]))["status"] == "canceled"


@pytest.mark.parametrize(
    ("venue_id", "bad"),
    [
        ("bybit", "x" * 37),
        ("bybit", "has space"),
        ("bybit", "٣٣"),  # Arabic-Indic digits are not ASCII digits
        ("binance", "①"),
        ("binance", ""),
        ("binance", "é"),
        ("okx", "with-hyphen"),
        ("okx", "a" * 33),
        ("okx", "x" * 1_000_000),
    ],
)
def test_codec_refuses_ids_the_venue_refuses(venue_id: str, bad: str) -> None:
    codec = codec_for(venue_id)
    with pytest.raises(InvalidClientOrderIdError) as caught:
        codec.take({"clientOrderId": bad}, "vr")
    assert caught.value.field == "clientOrderId"
    assert len(str(caught.value)) < 400  # a 1 MB id is not copied into the message


@pytest.mark.parametrize("bad", [True, 12, None.__class__, 1.5])
def test_codec_refuses_ids_that_are_not_text(bad: object) -> None:
    with pytest.raises(InvalidClientOrderIdError, match="must be a string"):
        codec_for("bybit").take({"orderLinkId": bad}, "vr")


@pytest.mark.parametrize("venue_id", ["bybit", "binance", "okx", "kraken"])
def test_generated_ids_follow_the_venue_rules_and_are_unique(venue_id: str) -> None:
    codec = codec_for(venue_id)
    ids = {codec.take({}, "vr")[0] for _ in range(1000)}
    assert len(ids) == 1000
    for cid in ids:
        assert codec.validate(cid, "clientOrderId") == cid


def test_codec_moves_the_venue_field_to_client_order_id() -> None:
    cid, params = codec_for("binance").take({"newClientOrderId": "abc", "x": 1}, "vr")
    assert cid == "abc" and params == {"clientOrderId": "abc", "x": 1}
    with pytest.raises(InvalidClientOrderIdError, match="conflicts"):
        codec_for("bybit").take({"clientOrderId": "a", "orderLinkId": "b"}, "vr")


from virtuoso_resilience.exchange import create_bybit_resilient_config as VENUE_PRESET  # noqa: E402
