"""A local webhook receiver over real HTTP (the `receiver` fixture) for the monitoring tests."""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

SECRET_PATH = "/api/webhooks/123456789012345678/s3cr3t-T0KEN-do-not-leak"


@dataclass
class Answer:
    """One scripted answer: status, body (bytes or JSON), headers, or hang."""

    status: int = 204
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False


class Receiver:
    """Records every POST and answers from a script (then 204)."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.paths: list[str] = []
        self.script: deque[Answer] = deque()
        self.release = asyncio.Event()
        self.arrived = asyncio.Event()
        self.url = ""

    def answer(self, *answers: Answer) -> None:
        self.script.extend(answers)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        self.paths.append(request.path)
        self.headers.append(dict(request.headers))
        self.posts.append(json.loads(raw))
        self.arrived.set()
        answer = self.script.popleft() if self.script else Answer()
        if answer.hang:
            await self.release.wait()
        body = answer.body
        if body is None:
            data = b""
        elif isinstance(body, bytes):
            data = body
        else:
            data = json.dumps(body).encode()
        return web.Response(status=answer.status, body=data, headers=answer.headers)


@pytest.fixture
async def receiver(unused_port: int) -> AsyncIterator[Receiver]:
    rec = Receiver()
    app = web.Application()
    app.router.add_post(SECRET_PATH, rec.handle)
    app.router.add_post("/hook", rec.handle)
    runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", unused_port)
    await site.start()
    rec.url = f"http://127.0.0.1:{unused_port}"
    try:
        yield rec
    finally:
        rec.release.set()
        await runner.cleanup()
