"""The monitoring API under load: 1,000 requests/s on loopback.

The server (``MonitoringServer`` over a registry with 100 circuit breakers
and 50 health checks that run every second) runs in a child process. A
bounded, open-loop Python load generator in this process sends requests on
a fixed schedule — one every millisecond — for ``SECONDS`` per endpoint and
measures each latency from its *scheduled* start, so a slow answer that
delays the next send counts against the server (no coordinated omission).

Two server conditions:

- ``quiet``: checks run, nothing changes state — bodies come from the cache;
- ``busy``: in addition one breaker changes state every 20 ms, so every
  cached body is rebuilt about 50 times a second.

Run: ``python -m benchmarks.bench_monitoring`` (about 60 s).
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
from dataclasses import dataclass

RATE = 1000  # requests per second
SECONDS = 4.0
WARMUP = 0.5
CONNECTIONS = 32
ENDPOINTS = (
    "/api/monitoring/health",
    "/api/monitoring/health/detailed",
    "/api/monitoring/circuit-breakers",
    "/api/monitoring/metrics",
    "/readyz",
)

_SERVER = """
import asyncio, sys
from virtuoso_resilience import HealthCheckConfig, ResilienceRegistry, SimpleHealthCheck
from virtuoso_resilience.config import ResilienceConfiguration
from virtuoso_resilience.monitoring import MonitoringServer, MonitoringSettings

async def main(port, busy):
    registry = ResilienceRegistry(ResilienceConfiguration(default_health_check_interval=1.0))
    breakers = [registry.circuit_breaker(f"exchange.{i}") for i in range(100)]
    health = registry.health
    # 100 breaker checks come with the breakers; keep 50 checks in all.
    for name in list(health.checks)[50:]:
        health.unregister_health_check(name)
    async def ok():
        return True
    while len(health.checks) < 50:
        health.register_health_check(
            SimpleHealthCheck(f"dep.{len(health.checks)}", ok, HealthCheckConfig(interval=1.0))
        )
    await health.start()
    server = MonitoringServer(registry, MonitoringSettings(port=port))
    await server.start()
    print("ready", flush=True)
    i = 0
    while True:
        await asyncio.sleep(0.02)
        if busy:
            cb = breakers[(i // 2) % len(breakers)]  # open, then close, then the next
            cb.force_open() if i % 2 == 0 else cb.reset()
            i += 1

asyncio.run(main(int(sys.argv[1]), sys.argv[2] == "busy"))
"""


@dataclass(frozen=True, slots=True)
class Run:
    condition: str
    endpoint: str
    latencies_ms: list[float]
    errors: int
    achieved_rate: float
    server_cpu_us: float
    """Server process CPU time (user + system) per request, microseconds."""

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        if not ordered:
            return float("nan")
        index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))
        return ordered[index]


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` (Linux ``/proc``)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Connection:
    """One keep-alive HTTP/1.1 connection: a minimal client, much cheaper per
    request than a full client library, so the load generator is not the
    bottleneck on a small machine."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def get(self, request: bytes) -> int:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        await self.reader.readexactly(length)
        return status


async def _load(port: int, path: str, seconds: float) -> tuple[list[float], int, float]:
    """Open loop: request k is due at start + k / RATE; latency from that moment."""
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
    idle: asyncio.Queue[_Connection] = asyncio.Queue()
    for _ in range(CONNECTIONS):
        idle.put_nowait(_Connection(*await asyncio.open_connection("127.0.0.1", port)))
    latencies: list[float] = []
    errors = 0

    async def one(due: float, record: bool) -> None:
        nonlocal errors
        connection = await idle.get()
        try:
            status = await connection.get(request)
        finally:
            idle.put_nowait(connection)
        if record:
            latencies.append((time.perf_counter() - due) * 1000.0)
            errors += status not in (200, 503)

    tasks: list[asyncio.Task[None]] = []
    total = int((seconds + WARMUP) * RATE)
    start = time.perf_counter()
    for k in range(total):
        due = start + k / RATE
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(one(due, k >= WARMUP * RATE)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    while not idle.empty():
        idle.get_nowait().writer.close()
    return latencies, errors, total / elapsed


async def _measure(condition: str) -> list[Run]:
    port = _free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _SERVER, str(port), condition, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        if (await proc.stdout.readline()).strip() != b"ready":
            raise RuntimeError("monitoring server did not start")
        runs = []
        for endpoint in ENDPOINTS:
            cpu = _cpu_seconds(proc.pid)
            latencies, errors, rate = await _load(port, endpoint, SECONDS)
            cpu = _cpu_seconds(proc.pid) - cpu
            sent = int((SECONDS + WARMUP) * RATE)
            runs.append(Run(condition, endpoint, latencies, errors, rate, cpu / sent * 1e6))
        return runs
    finally:
        proc.terminate()
        await proc.wait()


def main() -> str:
    runs = []
    load = os.getloadavg()[0]
    for condition in ("quiet", "busy"):
        runs += asyncio.run(_measure(condition))
    lines = [
        f"### Monitoring API at {RATE:,} requests/s: 100 breakers, 50 health checks",
        "",
        f"Open-loop load for {SECONDS:g} s per endpoint after {WARMUP:g} s warm-up, "
        f"{CONNECTIONS} keep-alive connections (a minimal asyncio HTTP/1.1 client); "
        "latency from each request's scheduled start; server in a child process. "
        "`busy`: a breaker changes state every 20 ms. "
        f"Machine load average at the start: {load:.1f} on {os.cpu_count()} cores.",
        "",
        "| condition | endpoint | sent/s | p50 ms | p90 ms | p99 ms | max ms | errors "
        "| server CPU µs/req |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        lines.append(
            f"| {r.condition} | `{r.endpoint}` | {r.achieved_rate:,.0f} | "
            f"{r.percentile(50):.2f} | {r.percentile(90):.2f} | {r.percentile(99):.2f} | "
            f"{max(r.latencies_ms):.2f} | {r.errors} | {r.server_cpu_us:.0f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(main())
