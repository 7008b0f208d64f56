"""Fixtures for the connection pool tests: real aiohttp servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import gc
import logging
import socket
import sys
import warnings
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web


@dataclass
class LocalServer:
    """One aiohttp server. ``/slow`` and ``/stream`` hold until :attr:`release` is set."""

    host: str
    port: int
    release: asyncio.Event = field(default_factory=asyncio.Event)
    hits: Counter[str] = field(default_factory=Counter)
    arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"

    async def wait_for(self, path: str, count: int) -> None:
        """Wait (at most 5 s, as a guard against hangs) until ``path`` was hit ``count`` times."""
        async with asyncio.timeout(5), self.arrived:
            await self.arrived.wait_for(lambda: self.hits[path] >= count)

    async def _arrive(self, path: str) -> None:
        async with self.arrived:
            self.hits[path] += 1
            self.arrived.notify_all()

    def app(self) -> web.Application:
        async def ok(request: web.Request) -> web.Response:
            await self._arrive("/ok")
            return web.json_response({"ok": True})

        async def slow(request: web.Request) -> web.Response:
            await self._arrive("/slow")
            await self.release.wait()
            return web.json_response({"slow": True})

        async def close(request: web.Request) -> web.Response:
            await self._arrive("/close")
            response = web.json_response({"closing": True})
            response.force_close()  # "Connection: close", then the server hangs up
            return response

        async def drop(request: web.Request) -> web.Response:
            await self._arrive("/drop")
            assert request.transport is not None
            request.transport.close()  # hang up without answering
            return web.Response()

        async def stream(request: web.Request) -> web.StreamResponse:
            await self._arrive("/stream")
            response = web.StreamResponse()
            await response.prepare(request)
            await response.write(b"first chunk;")
            await self.release.wait()
            try:
                await response.write(b"last chunk")
                await response.write_eof()
            except ConnectionResetError:  # the client went away meanwhile: fine here
                pass
            return response

        async def exchange_time(request: web.Request) -> web.Response:
            # What a Bybit v5 endpoint answers; Binance's error check accepts it too.
            await self._arrive("/v5/market/time")
            return web.json_response({"retCode": 0, "retMsg": "OK", "result": {"time": 1}})

        async def echo(request: web.Request) -> web.Response:
            await self._arrive("/echo")
            return web.json_response({"user_agent": request.headers.get("User-Agent")})

        async def status(request: web.Request) -> web.Response:
            await self._arrive("/status")
            return web.json_response({}, status=int(request.match_info["code"]))

        app = web.Application()
        app.router.add_get("/ok", ok)
        app.router.add_get("/slow", slow)
        app.router.add_get("/close", close)
        app.router.add_route("*", "/drop", drop)
        app.router.add_get("/stream", stream)
        app.router.add_get("/status/{code}", status)
        app.router.add_get("/v5/market/time", exchange_time)
        app.router.add_get("/echo", echo)
        return app


ServerFactory = Callable[[], Awaitable[LocalServer]]


@pytest.fixture
async def make_server() -> AsyncIterator[ServerFactory]:
    """Start any number of servers on free 127.0.0.1 ports; all stop at teardown."""
    runners: list[tuple[LocalServer, web.AppRunner]] = []

    async def start() -> LocalServer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        server = LocalServer("127.0.0.1", sock.getsockname()[1])
        runner = web.AppRunner(server.app(), shutdown_timeout=1.0, handle_signals=False)
        await runner.setup()
        await web.SockSite(runner, sock).start()
        runners.append((server, runner))
        return server

    yield start
    for server, runner in runners:
        server.release.set()
        await runner.cleanup()


@pytest.fixture
async def server(make_server: ServerFactory) -> LocalServer:
    return await make_server()


class LeakCheck:
    """Drop objects and collect garbage with warnings as errors; keep every leak report.

    A ``ResourceWarning`` raised (as an error) inside ``__del__`` reaches
    ``sys.unraisablehook``; aiohttp also reports leaks to the asyncio logger.
    Only network leaks are kept: an event loop's own self-pipe (AF_UNIX) is
    pytest-asyncio's business, not the pool's.
    """

    def __init__(self, caplog: pytest.LogCaptureFixture) -> None:
        self._caplog = caplog
        caplog.set_level(logging.DEBUG, logger="asyncio")
        self.found: list[str] = []

    @contextmanager
    def watch(self) -> Iterator[None]:
        """Inside: ``del`` what should be gone. On exit: collect and record leaks."""

        def hook(unraisable: Any) -> None:
            self.found.append(f"{type(unraisable.exc_value).__name__}: {unraisable.exc_value}")

        previous = sys.unraisablehook
        sys.unraisablehook = hook
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                yield
                for _ in range(3):
                    gc.collect()
        finally:
            sys.unraisablehook = previous
        self.found.extend(
            r.getMessage()
            for r in self._caplog.records
            if r.name == "asyncio" and r.levelno >= logging.WARNING
        )
        self.found = [f for f in self.found if "event loop" not in f and "family=1," not in f]


@pytest.fixture
def leak_check(caplog: pytest.LogCaptureFixture) -> LeakCheck:
    return LeakCheck(caplog)
