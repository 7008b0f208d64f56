"""The dashboard in a real browser (Debian's Chromium through Playwright)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiomcache
import ccxt
import ccxt.async_support as ccxt_async
import pytest
from dash_helpers import IMG, TOKEN, OpenPage, StartServer, free_port
from playwright.async_api import expect

from virtuoso_resilience import (
    CircuitState,
    FakeClock,
    ResilienceRegistry,
    create_bybit_resilient_config,
)
from virtuoso_resilience.cache import CacheConfig, ResilientCache
from virtuoso_resilience.exchange import ResilientExchange
from virtuoso_resilience.health import HealthCheckConfig, SimpleHealthCheck
from virtuoso_resilience.monitoring import MonitoringServer, MonitoringSettings
from virtuoso_resilience.simulator import Simulator

LIVE = 2000  # ms: the page must show a change within two seconds


async def _live(page: Any) -> None:
    await expect(page.locator("#updated")).to_contain_text("frame", timeout=LIVE)


def _cascade(registry: ResilienceRegistry) -> None:
    health = registry.health
    health.register_health_check(
        SimpleHealthCheck(
            "network", lambda: False, HealthCheckConfig(critical=True, failure_threshold=1)
        )
    )
    health.register_health_check(
        SimpleHealthCheck("exchange", lambda: True, HealthCheckConfig(depends_on=("network",)))
    )
    health.register_health_check(
        SimpleHealthCheck("orders", lambda: True, HealthCheckConfig(depends_on=("exchange",)))
    )


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(seed=1) as simulator:
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


async def test_the_page_loads_with_no_console_error_failed_or_foreign_request(
    start_server: StartServer, registry: ResilienceRegistry, open_page: OpenPage
) -> None:
    registry.circuit_breaker("exchange_api")
    registry.circuit_breaker("bybit.ticker")
    registry.connection_pool("exchange_api")
    health = registry.health
    health.register_health_check(SimpleHealthCheck("network", lambda: True))
    health.register_health_check(
        SimpleHealthCheck("exchange", lambda: True, HealthCheckConfig(depends_on=("network",)))
    )
    await health.run_checks()
    server = await start_server()
    page, log = await open_page(server.url + "/")
    await _live(page)
    await expect(page.locator("#connection")).to_have_attribute("data-conn", "live")
    await expect(page.locator('tr[data-breaker="exchange_api"] .state')).to_have_text("✔ closed")
    await expect(page.locator('tr[data-pool="exchange_api"]')).to_contain_text("of 50 connections")
    await expect(page.locator("#root-cause")).to_have_text("No failing dependency.")
    # No token configured: the controls are absent and the page says why.
    assert await page.locator("#breaker-table button").count() == 0
    await expect(page.locator("#control-off")).to_contain_text("the server has no token configured")
    await expect(page.locator("#token")).to_be_hidden()
    await page.screenshot(path=str(IMG / "dashboard-normal.png"), full_page=True)
    # A hostile name arrives with a later frame: it is text, not markup.
    registry.circuit_breaker('<img src=x onerror="window.pwned=1">')
    await expect(page.locator("#breaker-table tbody tr")).to_have_count(3, timeout=LIVE)
    await expect(page.locator("#breaker-table tbody")).to_contain_text("<img src=x")
    assert await page.locator("#breaker-table img").count() == 0
    assert await page.evaluate("window.pwned") is None
    # Phone width: the page still renders every panel.
    phone, phone_log = await open_page(server.url + "/", width=390, height=844)
    await _live(phone)
    await expect(phone.locator('tr[data-breaker="exchange_api"]')).to_be_visible()
    assert log.errors == [] and phone_log.errors == []
    assert log.failed == [] and phone_log.failed == []
    assert log.foreign == [] and phone_log.foreign == []


async def test_a_simulator_outage_opens_the_breaker_panel_and_recovery_closes_it(
    start_server: StartServer,
    registry: ResilienceRegistry,
    clock: FakeClock,
    open_page: OpenPage,
    sim: Simulator,
    bybit: Any,
) -> None:
    breaker = registry.circuit_breaker(
        "bybit.ticker", failure_threshold=3, success_threshold=1, timeout=30.0
    )
    _cascade(registry)
    await registry.health.run_checks()
    server = await start_server()
    page, log = await open_page(server.url + "/")
    await _live(page)
    row = page.locator('tr[data-breaker="bybit.ticker"]')
    await expect(row).to_have_attribute("data-state", "closed")
    with sim.faults.add("http@/v5/market/tickers=503"):
        for _ in range(3):
            with pytest.raises(ccxt.ExchangeNotAvailable):
                await breaker.call_async(bybit.fetch_ticker, "BTC/USDT")
    assert breaker.state is CircuitState.OPEN
    await expect(row).to_have_attribute("data-state", "open", timeout=LIVE)
    await expect(row.locator(".state")).to_have_text("✖ open")
    await expect(row).to_contain_text("30.0 s")  # next trial, virtual time stands still
    await expect(page.locator("#events")).to_contain_text("bybit.ticker: closed → open")
    await expect(page.locator("#overall")).to_contain_text("overall: critical")
    await page.screenshot(path=str(IMG / "dashboard-degraded.png"), full_page=True)
    clock.advance(30.0)  # the breaker's wait, in virtual time
    ticker = await breaker.call_async(bybit.fetch_ticker, "BTC/USDT")
    assert ticker["symbol"] == "BTC/USDT"
    assert breaker.state is CircuitState.CLOSED
    await expect(row).to_have_attribute("data-state", "closed", timeout=LIVE)
    assert log.errors == [] and log.failed == []


async def test_force_open_from_the_page_needs_the_typed_token(
    start_server: StartServer, registry: ResilienceRegistry, open_page: OpenPage
) -> None:
    breaker = registry.circuit_breaker("exchange_api")
    server = await start_server(token=TOKEN)
    page, log = await open_page(server.url + "/")
    await _live(page)
    button = page.get_by_role("button", name="Force open breaker exchange_api")
    await button.click()  # no token typed
    await expect(page.locator("#control-result")).to_contain_text("Refused (HTTP 401)")
    assert breaker.state is CircuitState.CLOSED
    await page.locator("#token").fill("not-the-token")
    await page.get_by_role("button", name="Force open breaker exchange_api").click()
    await expect(page.locator("#control-result")).to_contain_text("Refused (HTTP 401)")
    assert breaker.state is CircuitState.CLOSED
    await page.locator("#token").fill(TOKEN)
    # Keyboard: focus the button and press Enter.
    await page.get_by_role("button", name="Force open breaker exchange_api").focus()
    await page.keyboard.press("Enter")
    await expect(page.locator("#control-result")).to_contain_text("is forced open")
    assert breaker.state is CircuitState.FORCED_OPEN
    await expect(page.locator('tr[data-breaker="exchange_api"]')).to_have_attribute(
        "data-state", "forced_open", timeout=LIVE
    )
    await page.get_by_role("button", name="Close breaker exchange_api").click()
    await expect(page.locator("#control-result")).to_contain_text("is closed")
    assert breaker.state is CircuitState.CLOSED
    html = await page.content()
    assert TOKEN not in html and TOKEN not in page.url
    # The refusals are the expected 401s the page reports, not page errors.
    assert [e for e in log.errors if "401" not in e] == []


async def test_the_graph_shows_the_root_cause_of_a_cascading_failure(
    start_server: StartServer, registry: ResilienceRegistry, open_page: OpenPage
) -> None:
    _cascade(registry)
    await registry.health.run_checks()
    server = await start_server()
    page, _ = await open_page(server.url + "/")
    await _live(page)
    root = page.locator('#graph g.node[data-root-cause="true"]')
    await expect(root).to_have_count(1)
    await expect(root).to_have_attribute("data-check", "network")
    await expect(root).to_contain_text("ROOT CAUSE")
    orders = page.locator('#graph g.node[data-check="orders"]')
    await expect(orders).to_have_attribute("data-status", "critical")  # inherited
    await expect(orders).to_have_attribute("data-root-cause", "false")
    assert await page.locator("#graph path.edge").count() == 2
    await expect(page.locator("#root-cause")).to_have_text("Root cause: network (critical)")


async def test_a_dropped_event_stream_reconnects_and_says_so(
    registry: ResilienceRegistry, open_page: OpenPage, unused_port: int
) -> None:
    registry.circuit_breaker("exchange_api")
    settings = MonitoringSettings(port=unused_port)
    server = MonitoringServer(registry, settings)
    await server.start()
    try:
        page, _ = await open_page(server.url + "/")
        await _live(page)
        await expect(page.locator("#connection")).to_have_text("● live")
    finally:
        await server.stop()
    await expect(page.locator("#connection")).to_have_attribute("data-conn", "reconnecting")
    await expect(page.locator("#connection")).to_contain_text("connection lost")
    again = MonitoringServer(registry, settings)
    await again.start()
    try:
        await expect(page.locator("#connection")).to_contain_text(
            "live (reconnected)", timeout=15000
        )
    finally:
        await again.stop()


async def test_an_exchange_adapter_shows_headroom_maintenance_and_pending_orders(
    start_server: StartServer, registry: ResilienceRegistry, open_page: OpenPage, sim: Simulator
) -> None:
    client = ccxt_async.bybit({**sim.ccxt_config(), "enableRateLimit": False})
    adapter = ResilientExchange(client, create_bybit_resilient_config())
    try:
        await adapter.load_markets()
        await adapter.fetch_ticker("BTC/USDT")
        registry.register("exchanges", "bybit-main", adapter)
        server = await start_server()
        page, log = await open_page(server.url + "/")
        await _live(page)
        card = page.locator('#exchanges [data-exchange="bybit-main"]')
        await expect(card.locator("h3")).to_have_text("bybit-main (bybit)")
        await expect(card.locator('[data-field="maintenance"]')).to_have_text("✔ no maintenance")
        await expect(card.locator('[data-field="pending_orders"]')).to_have_text(
            "0 order(s) pending reconciliation"
        )
        await expect(card).to_contain_text("% of the bucket")
        await expect(card).to_contain_text("tokens, refill 50.0 /s")
        await expect(card).to_contain_text("market_data ✔ closed")
        assert log.errors == [] and log.failed == []
    finally:
        registry.unregister("exchanges", "bybit-main")
        await adapter.close()


async def test_a_cache_whose_backend_is_down_shows_degraded_and_dirty_entries(
    start_server: StartServer, registry: ResilienceRegistry, open_page: OpenPage
) -> None:
    # memcached on a port nothing listens on: the cache degrades to its fallback.
    cache = ResilientCache(aiomcache.Client("127.0.0.1", free_port()), CacheConfig(name="quotes"))
    try:
        await cache.set("BTC/USDT", 64000.5)
        assert await cache.get("BTC/USDT") == 64000.5
        assert await cache.get("ETH/USDT") is None
        registry.register("caches", "quotes", cache)
        server = await start_server()
        page, log = await open_page(server.url + "/")
        await _live(page)
        card = page.locator('#caches [data-cache="quotes"]')
        await expect(card.locator('[data-field="degraded"]')).to_contain_text("⚠ degraded")
        await expect(card.locator('[data-field="dirty"]')).to_have_text("1 waiting for write-back")
        await expect(card).to_contain_text("fallback 50.0 %")  # 1 hit of 2 reads
        assert log.errors == [] and log.failed == []
    finally:
        registry.unregister("caches", "quotes")
        await cache.close()
