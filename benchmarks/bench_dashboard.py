"""What open dashboards cost the server: 0 vs 20 event-stream clients.

The server (``MonitoringServer`` over a registry with 100 circuit breakers,
50 health checks running every second and 10 pools) runs in a child process
that also makes one protected call (``breaker.call_async`` of a trivial
coroutine) every millisecond and measures each call's latency from its
*scheduled* start. For ``SECONDS`` it measures with no dashboard open, then
with ``CLIENTS`` clients reading ``/api/monitoring/stream`` from this
process. Reported: p50/p99 of the protected calls, server CPU per second,
frames and bytes per client per second.

Run: ``python -m benchmarks.bench_dashboard`` (about 15 s).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import time

import aiohttp

CLIENTS = 20
SECONDS = 5.0

_SERVER = """
import asyncio, json, os, sys, time
from virtuoso_resilience import HealthCheckConfig, ResilienceRegistry, SimpleHealthCheck
from virtuoso_resilience.config import ResilienceConfiguration
from virtuoso_resilience.monitoring import MonitoringServer, MonitoringSettings

def cpu():
    t = os.times()
    return t.user + t.system

async def main(port):
    registry = ResilienceRegistry(ResilienceConfiguration(default_health_check_interval=1.0))
    breakers = [registry.circuit_breaker(f"exchange.{i}") for i in range(100)]
    for i in range(10):
        registry.connection_pool(f"pool.{i}")
    health = registry.health
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
    latencies = []
    async def work():
        return None
    async def calls():
        loop = asyncio.get_running_loop()
        step = 0.001
        due = loop.time()
        i = 0
        while True:
            due += step
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            await breakers[i % 100].call_async(work)
            latencies.append((loop.time() - due) * 1000)
            i += 1
    task = asyncio.create_task(calls())
    print("ready", flush=True)
    reader = asyncio.StreamReader()
    await asyncio.get_running_loop().connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        seconds = float(line)
        latencies.clear()
        c0, t0 = cpu(), time.monotonic()
        await asyncio.sleep(seconds)
        c1, t1 = cpu(), time.monotonic()
        got = sorted(latencies)
        pick = lambda q: got[min(len(got) - 1, int(q * len(got)))]
        print(json.dumps({"calls": len(got), "p50": pick(0.5), "p99": pick(0.99),
                          "cpu": (c1 - c0) / (t1 - t0)}), flush=True)
    task.cancel()
    await server.stop()

asyncio.run(main(int(sys.argv[1])))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _client(session: aiohttp.ClientSession, url: str, counts: list[int]) -> None:
    async with session.get(url, timeout=aiohttp.ClientTimeout(total=None)) as response:
        async for line in response.content:
            counts[1] += len(line)
            if line.startswith(b"event: snapshot"):
                counts[0] += 1


async def _run() -> str:
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _SERVER,
        str(port),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        env=env,
    )
    assert proc.stdin is not None and proc.stdout is not None
    assert (await proc.stdout.readline()).strip() == b"ready"

    async def measure() -> dict[str, float]:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(f"{SECONDS}\n".encode())
        await proc.stdin.drain()
        result: dict[str, float] = json.loads(await proc.stdout.readline())
        return result

    rows = []
    try:
        await asyncio.sleep(1.0)  # warm-up: checks have run once
        rows.append((0, await measure(), 0.0, 0.0))
        async with aiohttp.ClientSession() as session:
            counts = [[0, 0] for _ in range(CLIENTS)]
            url = f"http://127.0.0.1:{port}/api/monitoring/stream"
            tasks = [asyncio.create_task(_client(session, url, c)) for c in counts]
            await asyncio.sleep(1.0)
            for c in counts:
                c[0] = c[1] = 0
            started = time.monotonic()
            result = await measure()
            elapsed = time.monotonic() - started
            frames = sum(c[0] for c in counts) / CLIENTS / elapsed
            size = sum(c[1] for c in counts) / CLIENTS / elapsed
            rows.append((CLIENTS, result, frames, size))
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()
    lines = [
        f"### Dashboards: protected calls (1 every ms) while event streams are open "
        f"({SECONDS:.0f} s each)",
        "",
        "| dashboards | calls | p50 | p99 | server CPU | frames/s per client | KB/s per client |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for clients, r, frames, size in rows:
        lines.append(
            f"| {clients} | {r['calls']:.0f} | {r['p50']:.3f} ms | {r['p99']:.3f} ms | "
            f"{r['cpu'] * 100:.1f} % | {frames:.2f} | {size / 1000:.1f} |"
        )
    base, loaded = rows[0][1], rows[1][1]
    change = (loaded["p99"] - base["p99"]) / base["p99"] * 100 if base["p99"] else float("nan")
    lines.append("")
    lines.append(f"p99 with {CLIENTS} dashboards: {change:+.1f} % against none.")
    return "\n".join(lines)


async def _frame_cost() -> str:
    """Time to build one frame in-process, same registry as the server's."""
    from virtuoso_resilience import ResilienceRegistry
    from virtuoso_resilience.monitoring import MONITORING_STATE, DashboardHub, create_monitoring_app

    registry = ResilienceRegistry()
    for i in range(100):
        registry.circuit_breaker(f"exchange.{i}")
    for i in range(10):
        registry.connection_pool(f"pool.{i}")
    await registry.health.run_checks()
    hub = DashboardHub(create_monitoring_app(registry)[MONITORING_STATE])
    n = 200
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(n):
            frame = hub.frame()
        best = min(best, (time.perf_counter() - started) / n)
    await registry.aclose()
    return (
        f"One frame (100 breakers, 110 checks, 10 pools): {best * 1000:.2f} ms to build, "
        f"{len(frame) / 1000:.1f} KB; at one frame a second that is "
        f"{best * 100:.2f} % of one core, whatever the number of dashboards."
    )


def main() -> str:
    return asyncio.run(_run()) + "\n\n" + asyncio.run(_frame_cost())


if __name__ == "__main__":
    print(main())
