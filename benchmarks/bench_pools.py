"""Pooled session vs one session per request, against a local aiohttp server.

The server runs in a child process (its own interpreter and core), so the
client loop measures only the client. Each variant sends ``N`` GET requests
from ``CONCURRENCY`` workers and reports per-request latency percentiles
(milliseconds) and throughput (requests per second):

- ``ConnectionPool`` — this library's pool: one shared session, keep-alive,
  trace-based metrics and the acquire-deadline middleware;
- ``aiohttp session (shared)`` — a bare shared ``ClientSession`` with the same
  limits (what the pool costs on top of aiohttp);
- ``session per request`` — a new ``ClientSession`` (and connector) per call,
  the pattern the pool replaces.

Run: ``python -m benchmarks.bench_pools`` (about 10-20 s).
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from virtuoso_resilience.pools import ConnectionPool, PoolConfig

N = 2000
CONCURRENCY = 20
WARMUP = 200
ROUNDS = 3

_SERVER = """
import sys
from aiohttp import web

async def ticker(request):
    return web.json_response({"symbol": "BTCUSDT", "last": "64000.5", "bid": "64000.0"})

app = web.Application()
app.router.add_get("/ticker", ticker)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""


@dataclass(frozen=True, slots=True)
class Run:
    name: str
    latencies_ms: list[float]
    seconds: float
    connections: int

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))
        return ordered[index]

    @property
    def throughput(self) -> float:
        return len(self.latencies_ms) / self.seconds


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _wait_until_listening(port: int, deadline: float = 10.0) -> None:
    start = time.monotonic()
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if time.monotonic() - start > deadline:
                raise RuntimeError("benchmark server did not start") from None
            await asyncio.sleep(0.05)
        else:
            writer.close()
            await writer.wait_closed()
            return


def _counting_connector(created: list[int], **options: Any) -> aiohttp.TCPConnector:
    """A connector that counts the sockets it opens (no per-request cost)."""

    def socket_factory(addr_info: aiohttp.AddrInfoType) -> socket.socket:
        created[0] += 1
        family, type_, proto, _, _ = addr_info
        return socket.socket(family=family, type=type_, proto=proto)

    return aiohttp.TCPConnector(socket_factory=socket_factory, **options)


async def _drive(name: str, call: Callable[[], Awaitable[None]], n: int) -> Run:
    latencies: list[float] = []
    per_worker = n // CONCURRENCY

    async def worker() -> None:
        for _ in range(per_worker):
            t0 = time.perf_counter()
            await call()
            latencies.append((time.perf_counter() - t0) * 1000.0)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return Run(name, latencies, time.perf_counter() - start, 0)


@dataclass(slots=True)
class Variant:
    name: str
    call: Callable[[], Awaitable[None]]
    created: Callable[[], int]
    close: Callable[[], Awaitable[None]]


async def _read(session: aiohttp.ClientSession, url: str) -> None:
    async with session.get(url) as response:
        await response.read()


def _pooled(url: str) -> Variant:
    config = PoolConfig(max_connections=CONCURRENCY, max_connections_per_host=CONCURRENCY)
    pool = ConnectionPool("bench", config)
    session = pool.session
    return Variant(
        "ConnectionPool",
        lambda: _read(session, url),
        lambda: int(pool.metrics()["connections"]["created"]),
        pool.close,
    )


def _shared(url: str, name: str, *traces: aiohttp.TraceConfig) -> Variant:
    # Same limits and timeouts as the pool's session, so the difference is
    # the pool's instrumentation alone.
    created = [0]
    config = PoolConfig(max_connections=CONCURRENCY, max_connections_per_host=CONCURRENCY)
    connector = _counting_connector(
        created,
        limit=config.max_connections,
        limit_per_host=config.max_connections_per_host,
        keepalive_timeout=config.keepalive_timeout,
        ttl_dns_cache=config.dns_cache_ttl,
    )
    timeout = aiohttp.ClientTimeout(
        connect=config.acquire_timeout + config.connection_timeout,
        sock_connect=config.connection_timeout,
        sock_read=config.read_timeout,
    )
    session = aiohttp.ClientSession(
        connector=connector, timeout=timeout, trace_configs=list(traces)
    )
    return Variant(name, lambda: _read(session, url), lambda: created[0], session.close)


def _per_request(url: str) -> Variant:
    created = [0]

    async def call() -> None:
        async with aiohttp.ClientSession(connector=_counting_connector(created)) as session:
            await _read(session, url)

    async def close() -> None:
        pass

    return Variant("session per request", call, lambda: created[0], close)


async def _measure(variants: list[Variant]) -> list[Run]:
    """ROUNDS interleaved rounds; per variant, the round with the median throughput."""
    rounds: dict[str, list[Run]] = {v.name: [] for v in variants}
    for v in variants:
        await _drive("warmup", v.call, WARMUP)
    for i in range(ROUNDS):
        order = variants if i % 2 == 0 else variants[::-1]
        for v in order:
            before = v.created()
            run = await _drive(v.name, v.call, N)
            rounds[v.name].append(Run(v.name, run.latencies_ms, run.seconds, v.created() - before))
    result = []
    for v in variants:
        ordered = sorted(rounds[v.name], key=lambda r: r.throughput)
        result.append(ordered[len(ordered) // 2])
    return result


def _table(runs: list[Run]) -> str:
    lines = [
        f"### Connection pooling: {N} GET requests, {CONCURRENCY} concurrent, local aiohttp server",
        "",
        f"Median of {ROUNDS} interleaved rounds; server in a child process.",
        "",
        "| variant | req/s | p50 ms | p95 ms | p99 ms | connections opened after warm-up |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        lines.append(
            f"| {r.name} | {r.throughput:,.0f} | {r.percentile(50):.2f} | "
            f"{r.percentile(95):.2f} | {r.percentile(99):.2f} | {r.connections} |"
        )
    return "\n".join(lines)


async def main_async() -> str:
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-c", _SERVER, str(port)])  # noqa: ASYNC220
    try:
        await _wait_until_listening(port)
        url = f"http://127.0.0.1:{port}/ticker"
        variants = [
            _pooled(url),
            _shared(url, "aiohttp session (shared)"),
            _shared(url, "aiohttp session (shared) + empty TraceConfig", aiohttp.TraceConfig()),
            _per_request(url),
        ]
        try:
            runs = await _measure(variants)
        finally:
            for v in variants:
                await v.close()
    finally:
        server.terminate()
        server.wait(timeout=10)
    return _table(runs)


def main() -> str:
    return asyncio.run(main_async())


if __name__ == "__main__":
    print(main())
