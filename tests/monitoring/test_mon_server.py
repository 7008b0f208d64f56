"""MonitoringServer: bind, graceful shutdown, clean unsubscribe."""

from __future__ import annotations

import asyncio
import socket

import aiohttp
import pytest
from aiohttp import web
from mon_helpers import settle

from virtuoso_resilience import FakeClock, ResilienceRegistry
from virtuoso_resilience.monitoring import MonitoringServer, MonitoringSettings


async def _get(url: str) -> tuple[int, dict[str, object]]:
    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session,
        session.get(url) as response,
    ):
        return response.status, await response.json()


async def test_graceful_shutdown_readiness_first_then_in_flight_requests_finish(
    registry: ResilienceRegistry, clock: FakeClock
) -> None:
    server = MonitoringServer(registry, MonitoringSettings(port=0, drain_seconds=5.0))
    entered, release = asyncio.Event(), asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        entered.set()
        await release.wait()
        return web.json_response({"done": True})

    server.app.router.add_get("/slow", slow)
    await server.start()
    url = server.url
    assert await _get(f"{url}/readyz") == (200, {"status": "pass", "ready": True})
    in_flight = asyncio.ensure_future(_get(f"{url}/slow"))
    await entered.wait()

    stopping = asyncio.ensure_future(server.stop())
    await settle()
    # Draining: still listening, readiness already 503, liveness still fine.
    assert await _get(f"{url}/readyz") == (
        503,
        {"status": "fail", "ready": False, "output": "draining: shutting down"},
    )
    assert (await _get(f"{url}/livez"))[0] == 200
    clock.advance(5.0)  # the drain period passes (virtual time)
    await settle()
    assert not stopping.done()  # waiting for the in-flight request
    release.set()
    assert await in_flight == (200, {"done": True})
    await stopping
    with pytest.raises(aiohttp.ClientConnectionError):
        await _get(f"{url}/livez")
    assert not server.running


async def test_stop_unsubscribes_from_breakers_and_health(registry: ResilienceRegistry) -> None:
    cb = registry.circuit_breaker("exchange_api")
    server = MonitoringServer(registry, MonitoringSettings(port=0))
    async with server:
        assert server.state.events.watched == ("exchange_api",)
    assert server.state.events.watched == ()
    cb.force_open()  # nobody records it any more
    assert server.state.events.total == 0
    assert not server.state.started


async def test_a_port_in_use_is_a_clear_error(registry: ResilienceRegistry) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = MonitoringServer(registry, MonitoringSettings(port=port))
        with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{port}"):
            await server.start()
        assert not server.running
        with pytest.raises(RuntimeError, match="not started"):
            _ = server.port


async def test_start_and_stop_are_idempotent(registry: ResilienceRegistry) -> None:
    server = MonitoringServer(registry, MonitoringSettings(port=0))
    await server.start()
    port = server.port
    await server.start()
    assert server.port == port
    assert f"http://127.0.0.1:{port}" in repr(server)
    await server.stop()
    await server.stop()
    assert "running=False" in repr(server)


def test_the_app_refuses_a_non_registry() -> None:
    from virtuoso_resilience.monitoring import create_monitoring_app

    with pytest.raises(TypeError, match="ResilienceRegistry"):
        create_monitoring_app({})  # type: ignore[arg-type]


async def test_ipv6_loopback_in_brackets(registry: ResilienceRegistry) -> None:
    server = MonitoringServer(registry, MonitoringSettings(host="[::1]", port=0))
    async with server:
        assert server.url.startswith("http://[::1]:")
        assert await _get(f"{server.url}/livez") == (200, {"status": "pass"})
