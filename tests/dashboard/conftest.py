"""Fixtures for the dashboard tests: the real monitoring server on a free
loopback port, and Debian's Chromium driven by Playwright (never a browser
Playwright downloads)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from dash_helpers import CHROMIUM, CHROMIUM_ARGS, OpenPage, PageLog, StartServer
from playwright.async_api import Browser, Page, async_playwright

from virtuoso_resilience import FakeClock, ResilienceRegistry
from virtuoso_resilience.monitoring import MonitoringServer, MonitoringSettings


@pytest.fixture
async def registry(clock: FakeClock) -> AsyncIterator[ResilienceRegistry]:
    reg = ResilienceRegistry(clock=clock)
    yield reg
    await reg.aclose()


@pytest.fixture
async def start_server(registry: ResilienceRegistry) -> AsyncIterator[StartServer]:
    stack = contextlib.AsyncExitStack()

    async def _start(**settings: Any) -> MonitoringServer:
        server = MonitoringServer(registry, MonitoringSettings(**{"port": 0, **settings}))
        await server.start()
        stack.push_async_callback(server.stop)
        return server

    async with stack:
        yield _start


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture
async def open_page(browser: Browser) -> AsyncIterator[OpenPage]:
    contexts = []

    async def _open(url: str, width: int = 1280, height: int = 800) -> tuple[Page, PageLog]:
        context = await browser.new_context(viewport={"width": width, "height": height})
        contexts.append(context)
        page = await context.new_page()
        log = PageLog(url.rstrip("/"))
        page.on("console", log.console)
        page.on("pageerror", lambda exc: log.errors.append(str(exc)))
        page.on("request", log.request)
        page.on("requestfailed", log.request_failed)
        await page.goto(url)
        return page, log

    yield _open
    for context in contexts:
        await context.close()
