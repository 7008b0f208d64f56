"""Fixtures for the monitoring API tests: a registry on virtual time, the real
server on a free loopback port, and a real aiohttp client."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from mon_helpers import TOKEN, Api, Start
from webhook_receiver import receiver

from virtuoso_resilience import FakeClock, ResilienceRegistry
from virtuoso_resilience.monitoring import MonitoringServer, MonitoringSettings


@pytest.fixture
async def registry(clock: FakeClock) -> AsyncIterator[ResilienceRegistry]:
    reg = ResilienceRegistry(clock=clock)
    yield reg
    await reg.aclose()


@pytest.fixture
async def start(registry: ResilienceRegistry) -> AsyncIterator[Start]:
    """``await start(**settings)`` → an :class:`Api` for a running server (port 0)."""
    stack = contextlib.AsyncExitStack()

    async def _start(reg: ResilienceRegistry | None = None, **settings: Any) -> Api:
        server = MonitoringServer(
            reg if reg is not None else registry, MonitoringSettings(port=0, **settings)
        )
        await server.start()
        stack.push_async_callback(server.stop)
        session = await stack.enter_async_context(aiohttp.ClientSession())
        return Api(server, session)

    async with stack:
        yield _start


@pytest.fixture
async def api(start: Start) -> Api:
    """A server with a token and default settings otherwise."""
    result: Api = await start(token=TOKEN)
    return result


__all__ = ["api", "receiver", "registry", "start"]
