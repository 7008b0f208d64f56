"""Helpers shared by the dashboard tests (imported as ``dash_helpers``)."""

from __future__ import annotations

import os
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path

from playwright.async_api import ConsoleMessage, Page, Request

from virtuoso_resilience.monitoring import MonitoringServer

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
TOKEN = "dashboard-test-token-0123456789"
# Screenshots of every run go to build/screenshots (ignored by git); with
# VIRTUOSO_UPDATE_SCREENSHOTS=1 the run refreshes the ones docs/ shows.
_ROOT = Path(__file__).resolve().parents[2]
IMG = (
    _ROOT / "docs" / "img"
    if os.environ.get("VIRTUOSO_UPDATE_SCREENSHOTS") == "1"
    else _ROOT / "build" / "screenshots"
)
IMG.mkdir(parents=True, exist_ok=True)

StartServer = Callable[..., Awaitable[MonitoringServer]]


class PageLog:
    """Console errors, failed requests and requests that left the server."""

    def __init__(self, origin: str) -> None:
        self.origin = origin
        self.errors: list[str] = []
        self.failed: list[str] = []
        self.foreign: list[str] = []

    def console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def request(self, request: Request) -> None:
        if not request.url.startswith(self.origin) and not request.url.startswith("data:"):
            self.foreign.append(request.url)

    def request_failed(self, request: Request) -> None:
        # The open event stream is aborted when the page closes: not a failure.
        if not request.url.endswith("/api/monitoring/stream"):
            self.failed.append(f"{request.url} {request.failure}")


OpenPage = Callable[..., Awaitable[tuple[Page, "PageLog"]]]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
