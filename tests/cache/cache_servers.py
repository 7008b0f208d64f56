"""Server processes for the cache tests (imported by conftest and the tests)."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from virtuoso_resilience import FakeClock


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


MEMCACHED = shutil.which("memcached") or "/usr/bin/memcached"
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


@dataclass
class ServerProcess:
    """One server process on ``port``; :meth:`restart` reuses the port."""

    kind: str  # "memcached" or "redis"
    port: int
    host: str = "127.0.0.1"
    proc: subprocess.Popen[bytes] | None = None
    paused: bool = False
    starts: int = 0
    _extra: list[str] = field(default_factory=list)

    def _argv(self) -> list[str]:
        if self.kind == "memcached":
            argv = [MEMCACHED, "-l", self.host, "-p", str(self.port), "-U", "0", "-m", "64"]
            if os.geteuid() == 0:
                argv += ["-u", "root"]
            return argv + self._extra
        return [
            REDIS_SERVER,
            "--port",
            str(self.port),
            "--bind",
            self.host,
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "no",
            "--daemonize",
            "no",
            *self._extra,
        ]

    async def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None
        self.proc = subprocess.Popen(  # noqa: ASYNC220 - returns at once; readiness is awaited
            self._argv(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self.starts += 1
        self.paused = False
        await self._wait_ready()

    async def _wait_ready(self) -> None:
        """Wait (5 s at most, as a guard) until the server answers a command."""
        probe = b"version\r\n" if self.kind == "memcached" else b"PING\r\n"
        for _ in range(500):
            assert self.proc is not None and self.proc.poll() is None, f"{self.kind} exited"
            try:
                reader, writer = await asyncio.open_connection(self.host, self.port)
            except OSError:
                await asyncio.sleep(0.01)
                continue
            try:
                writer.write(probe)
                await writer.drain()
                line = await asyncio.wait_for(reader.readline(), 1.0)
            except (OSError, TimeoutError):
                line = b""
            finally:
                writer.close()
            if line:
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"{self.kind} on port {self.port} did not come up within 5 s")

    def kill(self) -> None:
        """SIGKILL: the server is gone (connections reset, data lost)."""
        assert self.proc is not None
        if self.paused:
            self.proc.send_signal(signal.SIGCONT)
        self.proc.kill()
        self.proc.wait(5)
        self.paused = False

    def pause(self) -> None:
        """SIGSTOP: the server hangs (connections stay open, nothing is answered)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)
        self.paused = False

    async def restart(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.kill()
        await self.start()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            if self.paused:
                self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


ServerFactory = Callable[..., Awaitable[ServerProcess]]
ClientFactory = Callable[..., Awaitable[Any]]


class DictBackend:
    """A memcached-like backend in memory; expiry on the test's clock."""

    kind = "dict"
    family = "memcached"
    changes: tuple[str, ...] = ()

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.data: dict[str, tuple[bytes, float | None]] = {}
        self.down = False
        self.calls = 0

    def describe(self) -> str:
        return "dict"

    async def _enter(self) -> None:
        self.calls += 1
        await asyncio.sleep(0)  # a real round trip yields to the loop
        if self.down:
            raise ConnectionRefusedError(111, "Connection refused")

    def _live(self, key: str) -> bytes | None:
        item = self.data.get(key)
        if item is None:
            return None
        if item[1] is not None and item[1] <= self.clock.now():
            del self.data[key]
            return None
        return item[0]

    async def get(self, key: str) -> bytes | None:
        await self._enter()
        return self._live(key)

    async def get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        await self._enter()
        return {k: v for k in keys if (v := self._live(k)) is not None}

    async def set(self, key: str, data: bytes, ttl: float | None) -> None:
        await self._enter()
        self.data[key] = (data, None if ttl is None else self.clock.now() + ttl)

    async def delete(self, key: str) -> None:
        await self._enter()
        self.data.pop(key, None)

    async def ping(self) -> None:
        await self._enter()

    async def close(self) -> None:
        return None
