"""The event stream, its shared frames, the config endpoint and the page's
assets, over a real aiohttp server (no browser)."""

from __future__ import annotations

import asyncio
import json
import math
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from dash_helpers import TOKEN, StartServer

from virtuoso_resilience import FakeClock, ResilienceRegistry
from virtuoso_resilience.health import HealthCheckConfig, SimpleHealthCheck
from virtuoso_resilience.monitoring import (
    DASHBOARD_HUB,
    MONITORING_STATE,
    DashboardHub,
    ShowDetails,
    create_monitoring_app,
)

STREAM = "/api/monitoring/stream"
ASSETS = Path(__file__).resolve().parents[2] / "src/virtuoso_resilience/monitoring/dashboard"


async def _settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def _first_frame(response: aiohttp.ClientResponse) -> tuple[str, dict[str, Any]]:
    lines: list[str] = []
    while True:
        line = (await response.content.readline()).decode()
        if line == "\n" and any(x.startswith("data:") for x in lines):
            break
        lines.append(line.rstrip("\n"))
    data = next(x for x in lines if x.startswith("data: "))[6:]
    return "\n".join(lines), json.loads(data)


def _hub(registry: ResilienceRegistry, clock: FakeClock) -> DashboardHub:
    state = create_monitoring_app(registry)[MONITORING_STATE]
    return DashboardHub(state, clock=clock, interval=1.0)


async def test_twenty_clients_share_one_build_per_interval(
    registry: ResilienceRegistry, clock: FakeClock
) -> None:
    registry.circuit_breaker("exchange_api")
    hub = _hub(registry, clock)
    queues = [hub.subscribe() for _ in range(20)]
    assert hub.frames == 1  # the first client's initial frame, reused by the others
    first = [q.get_nowait() for q in queues]
    assert all(frame is first[0] for frame in first)
    await _settle()
    clock.advance(1.0)
    await _settle()
    assert hub.frames == 2
    second = [q.get_nowait() for q in queues]
    assert all(frame is second[0] for frame in second)
    assert b"id: 2\n" in second[0]
    await hub.close()
    assert hub.clients == 0


async def test_a_client_that_lags_gets_only_the_newest_frame(
    registry: ResilienceRegistry, clock: FakeClock
) -> None:
    hub = _hub(registry, clock)
    queue = hub.subscribe()
    for _ in range(5):
        await _settle()
        clock.advance(1.0)
    await _settle()
    assert queue.qsize() == 1
    assert b"id: 6\n" in queue.get_nowait()
    await hub.close()


async def test_nobody_listening_builds_nothing(
    registry: ResilienceRegistry, clock: FakeClock
) -> None:
    hub = _hub(registry, clock)
    queue = hub.subscribe()
    hub.unsubscribe(queue)
    for _ in range(3):
        await _settle()
        clock.advance(1.0)
    await _settle()
    assert hub.frames == 1
    assert clock.sleepers == 0  # the producer ended
    await hub.close()


@pytest.mark.parametrize(
    ("interval", "error"),
    [
        (math.nan, ValueError),
        (math.inf, ValueError),
        (-math.inf, ValueError),
        (-0.0, ValueError),
        (0, ValueError),
        (61, ValueError),
        (True, TypeError),
        ("1", TypeError),
        (None, TypeError),
    ],
)
def test_a_bad_interval_is_refused_naming_it(
    registry: ResilienceRegistry, interval: Any, error: type[Exception]
) -> None:
    state = create_monitoring_app(registry)[MONITORING_STATE]
    with pytest.raises(error, match="interval"):
        DashboardHub(state, interval=interval)


async def test_the_stream_is_an_event_stream_of_compact_snapshots(
    start_server: StartServer,
    registry: ResilienceRegistry,
    session: aiohttp.ClientSession,
) -> None:
    registry.circuit_breaker("exchange_api").force_open()
    registry.connection_pool("exchange_api")
    server = await start_server()
    async with session.get(server.url + STREAM) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/event-stream; charset=utf-8"
        assert response.headers["Cache-Control"] == "no-store"
        raw, frame = await _first_frame(response)
    assert raw.startswith("retry: 1000")
    assert "event: snapshot" in raw
    assert frame["writes_enabled"] is False
    assert frame["details"] is True
    assert [(b["name"], b["state"]) for b in frame["breakers"]] == [("exchange_api", "forced_open")]
    assert frame["pools"][0]["max_connections"] == 50
    assert frame["exchanges"] == [] and frame["caches"] == []
    assert frame["health"]["checks"]["circuit_breaker.exchange_api"]["depends_on"] == []


async def test_without_show_details_always_a_frame_carries_only_the_overall_status(
    start_server: StartServer,
    registry: ResilienceRegistry,
    session: aiohttp.ClientSession,
) -> None:
    registry.circuit_breaker("secret-venue-breaker")
    server = await start_server(token=TOKEN, show_details=ShowDetails.WHEN_AUTHORIZED)
    async with session.get(server.url + STREAM) as response:
        raw, frame = await _first_frame(response)
    assert set(frame) == {
        "at",
        "frame",
        "writes_enabled",
        "details",
        "show_details",
        "interval",
        "health",
    }
    assert frame["details"] is False and frame["writes_enabled"] is True
    assert "secret-venue-breaker" not in raw
    assert TOKEN not in raw


async def test_the_config_says_whether_writes_are_enabled_and_never_shows_the_token(
    start_server: StartServer, session: aiohttp.ClientSession
) -> None:
    without = await start_server()
    with_token = await start_server(token=TOKEN)
    async with session.get(without.url + "/api/monitoring/dashboard/config") as r:
        assert (await r.json())["writes_enabled"] is False
    async with session.get(with_token.url + "/api/monitoring/dashboard/config") as r:
        text = await r.text()
    assert json.loads(text)["writes_enabled"] is True
    assert TOKEN not in text


async def test_too_many_streams_is_503_and_shutdown_ends_every_stream(
    start_server: StartServer, session: aiohttp.ClientSession
) -> None:
    server = await start_server()
    hub = server.app[DASHBOARD_HUB]
    hub.max_clients = 2
    first = await session.get(server.url + STREAM)
    second = await session.get(server.url + STREAM)
    await _first_frame(first)
    await _first_frame(second)
    async with session.get(server.url + STREAM) as third:
        assert third.status == 503
        assert (await third.json())["error"] == "unavailable"
    assert hub.clients == 2
    await server.stop()  # must not wait out the shutdown timeout on open streams
    assert await first.content.read() == b""
    assert await second.content.read() == b""
    first.release()
    second.release()
    assert hub.clients == 0


async def test_disconnect_all_ends_open_streams(
    start_server: StartServer, session: aiohttp.ClientSession
) -> None:
    server = await start_server()
    hub = server.app[DASHBOARD_HUB]
    async with session.get(server.url + STREAM) as response:
        await _first_frame(response)
        assert hub.disconnect_all() == 1
        assert await response.content.read() == b""


async def test_the_page_weighs_under_200_kb_and_asks_only_its_own_server(
    start_server: StartServer, session: aiohttp.ClientSession
) -> None:
    server = await start_server()
    total = 0
    for path in ("/", "/dashboard/dashboard.js", "/dashboard/dashboard.css"):
        async with session.get(server.url + path) as response:
            assert response.status == 200
            body = await response.read()
            assert "default-src 'self'" in response.headers["Content-Security-Policy"]
            total += len(body)
    assert total < 200_000
    assert total == sum(p.stat().st_size for p in ASSETS.iterdir() if p.is_file())
    sources = "".join(p.read_text() for p in ASSETS.iterdir() if p.is_file())
    urls = set(re.findall(r"https?://[^\s\"')]+", sources))
    assert urls == {"http://www.w3.org/2000/svg"}  # a namespace name, never fetched
    assert "localStorage" not in sources and "sessionStorage" not in sources


@pytest.mark.parametrize(
    "path", ["/dashboard/index.html", "/dashboard/x.js", "/dashboard/..%2f_app.py"]
)
async def test_only_the_shipped_assets_are_served(
    start_server: StartServer, session: aiohttp.ClientSession, path: str
) -> None:
    server = await start_server()
    async with session.get(server.url + path) as response:
        assert response.status == 404
        assert (await response.json())["error"] == "not_found"


async def test_a_check_changing_status_shows_in_the_next_frame_despite_the_health_cache(
    registry: ResilienceRegistry, clock: FakeClock
) -> None:
    up = [True]
    registry.health.register_health_check(
        SimpleHealthCheck("venue", lambda: up[0], HealthCheckConfig(failure_threshold=1))
    )
    await registry.health.run_checks()
    hub = _hub(registry, clock)
    assert hub.snapshot()["health"]["checks"]["venue"]["status"] == "healthy"
    assert hub.snapshot()["health"] is hub.snapshot()["health"]  # reused while unchanged
    up[0] = False
    await registry.health.run_checks()
    part = hub.snapshot()["health"]
    assert part["checks"]["venue"]["status"] == "unhealthy"
    assert part["root_cause"] == "venue"
    clock.advance(10.0)  # HEALTH_REFRESH: rebuilt for messages even without a change
    assert hub.snapshot()["health"] is not part
    await hub.close()


async def test_a_server_stopped_and_started_again_serves_streams_again(
    start_server: StartServer, session: aiohttp.ClientSession
) -> None:
    server = await start_server()
    async with session.get(server.url + STREAM) as response:
        await _first_frame(response)
    await server.stop()
    await server.start()
    async with session.get(server.url + STREAM) as response:
        assert response.status == 200
        _, frame = await _first_frame(response)
    assert frame["details"] is True


async def test_the_first_listener_after_a_quiet_spell_gets_a_fresh_frame(
    registry: ResilienceRegistry, clock: FakeClock
) -> None:
    breaker = registry.circuit_breaker("exchange_api")
    hub = _hub(registry, clock)
    hub.unsubscribe(hub.subscribe())
    breaker.force_open()
    frame = hub.subscribe().get_nowait()
    assert b'"state":"forced_open"' in frame
    await hub.close()
