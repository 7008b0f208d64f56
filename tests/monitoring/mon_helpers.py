"""Helpers shared by the monitoring tests (imported as ``mon_helpers``)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aiohttp

from virtuoso_resilience.monitoring import MonitoringServer

TOKEN = "monitoring-test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
API = "/api/monitoring"

Start = Callable[..., Any]


class Api:
    """A client bound to one running server: ``await api.get(path)`` → (status, headers, body)."""

    def __init__(self, server: MonitoringServer, session: aiohttp.ClientSession) -> None:
        self.server = server
        self.session = session

    @property
    def url(self) -> str:
        return self.server.url

    async def request(
        self, method: str, path: str, **kwargs: Any
    ) -> tuple[int, aiohttp.typedefs.LooseHeaders, Any]:
        async with self.session.request(method, self.url + path, **kwargs) as response:
            raw = await response.read()
            body: Any = raw
            if response.content_type in ("application/json", "application/health+json"):
                body = await response.json(content_type=None)
            return response.status, response.headers, body

    async def get(self, path: str, **kwargs: Any) -> tuple[int, Any, Any]:
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> tuple[int, Any, Any]:
        return await self.request("POST", path, **kwargs)


async def settle(rounds: int = 20) -> None:
    """Let ready tasks (health listeners) run; no time passes."""
    for _ in range(rounds):
        await asyncio.sleep(0)
