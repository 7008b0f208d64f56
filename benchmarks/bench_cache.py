"""What the resilient cache costs over the raw client, and how fast the fallback answers.

Starts its own ``memcached`` and ``redis-server`` on free loopback ports and
measures, in one process against the same server:

1. **Overhead per operation over the raw client** (``get`` of a hit, ``set``)
   for aiomcache, emcache and redis-py: CPU time of this process per
   operation (``time.process_time``; the server's time is not counted) and
   wall time, raw and wrapped, in interleaved rounds (the fastest round of
   each is kept).
2. **The layer's own cost**, without I/O noise: the same operations over an
   in-process driver that answers at once, against calling that driver
   directly.
3. **Fallback read latency while degraded**: the breaker is open, ``get`` of
   a key held in the fallback tier.

Run: ``python -m benchmarks.bench_cache`` (about 20-40 s).
"""

from __future__ import annotations

import asyncio
import gc
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aiomcache
import emcache
import redis.asyncio as aioredis

from virtuoso_resilience import FakeClock
from virtuoso_resilience.cache import CacheConfig, JsonSerializer, ResilientCache
from virtuoso_resilience.cache._deadline import Deadlines

N = 4000
ROUNDS = 7
VALUE = {"symbol": "BTCUSDT", "last": 64000.5, "bid": 64000.0, "ask": 64001.0}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(kind: str) -> tuple[subprocess.Popen[bytes], int]:
    port = _free_port()
    if kind == "memcached":
        argv = [shutil.which("memcached") or "/usr/bin/memcached", "-l", "127.0.0.1"]
        argv += ["-p", str(port), "-U", "0"] + (["-u", "root"] if os.geteuid() == 0 else [])
    else:
        argv = [shutil.which("redis-server") or "/usr/bin/redis-server", "--port", str(port)]
        argv += ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(500):
        try:
            socket.create_connection(("127.0.0.1", port), 0.1).close()
            return proc, port
        except OSError:
            time.sleep(0.01)
    raise RuntimeError(f"{kind} did not start")


Body = Callable[[int], Awaitable[None]]


async def _timed(body: Body, n: int) -> tuple[float, float]:
    """(CPU µs/op, wall µs/op) of one run of ``body(n)``."""
    gc.collect()
    gc.disable()
    try:
        cpu0, wall0 = time.process_time_ns(), time.perf_counter_ns()
        await body(n)
        cpu, wall = time.process_time_ns() - cpu0, time.perf_counter_ns() - wall0
    finally:
        gc.enable()
    return cpu / n / 1000, wall / n / 1000


async def _compare(raw: Body, wrapped: Body) -> tuple[float, float, float, float]:
    """Fastest (cpu, wall) of raw and of wrapped over interleaved rounds."""
    await raw(500)
    await wrapped(500)
    best = [float("inf")] * 4
    for _ in range(ROUNDS):
        rc, rw = await _timed(raw, N)
        wc, ww = await _timed(wrapped, N)
        best = [min(best[0], rc), min(best[1], rw), min(best[2], wc), min(best[3], ww)]
    return best[0], best[1], best[2], best[3]


def _row(name: str, raw_cpu: float, raw_wall: float, cpu: float, wall: float) -> str:
    over = cpu - raw_cpu
    return (
        f"| {name} | {raw_cpu:.1f} | {cpu:.1f} | {over:+.2f} | {over / raw_cpu * 100:+.1f} % "
        f"| {raw_wall:.1f} | {wall:.1f} |"
    )


def _config(name: str) -> CacheConfig:
    return CacheConfig(name=name, cache_reads=True)


async def _bench_client(kind: str, port: int) -> list[str]:
    # The raw loops serialise and parse JSON too, as a caller of the raw client must.
    codec = JsonSerializer()
    loads, dumps = codec.loads, codec.dumps
    rows = []
    if kind == "aiomcache":
        raw: Any = aiomcache.Client("127.0.0.1", port, pool_size=1)
        mine = aiomcache.Client("127.0.0.1", port, pool_size=1)

        async def raw_get(n: int) -> None:
            for _ in range(n):
                loads(await raw.get(b"bench"))

        async def raw_set(n: int) -> None:
            for _ in range(n):
                await raw.set(b"bench-raw", dumps(VALUE))

    elif kind == "emcache":
        address = [emcache.MemcachedHostAddress("127.0.0.1", port)]
        raw = await emcache.create_client(address, max_connections=1)
        mine = await emcache.create_client(address, max_connections=1)

        async def raw_get(n: int) -> None:
            for _ in range(n):
                loads((await raw.get(b"bench")).value)

        async def raw_set(n: int) -> None:
            for _ in range(n):
                await raw.set(b"bench-raw", dumps(VALUE))

    else:
        raw = aioredis.Redis(port=port)
        mine = aioredis.Redis(port=port)

        async def raw_get(n: int) -> None:
            for _ in range(n):
                loads(await raw.get("bench"))

        async def raw_set(n: int) -> None:
            for _ in range(n):
                await raw.set("bench-raw", dumps(VALUE))

    cache = ResilientCache(mine, _config(kind))
    await cache.set("bench", VALUE)

    async def get(n: int) -> None:
        for _ in range(n):
            await cache.get("bench")

    async def set_(n: int) -> None:
        for _ in range(n):
            await cache.set("bench-mine", VALUE)

    rows.append(_row(f"{kind} get", *(await _compare(raw_get, get))))
    rows.append(_row(f"{kind} set", *(await _compare(raw_set, set_))))
    await cache.close()
    closer = getattr(raw, "aclose", None) or raw.close
    await closer()
    return rows


class _Instant:
    """A driver that answers at once (no I/O): isolates the layer's own cost."""

    kind = "instant"
    family = "memcached"
    changes: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}

    def describe(self) -> str:
        return "instant"

    async def get(self, key: str) -> bytes | None:
        return self.data.get(key)

    async def get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        return {k: self.data[k] for k in keys if k in self.data}

    async def set(self, key: str, data: bytes, ttl: float | None) -> None:
        self.data[key] = data

    async def delete(self, key: str) -> None:
        self.data.pop(key, None)

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None


async def _bench_layer() -> list[str]:
    driver = _Instant()
    cache = ResilientCache(driver, _config("instant"))
    await cache.set("bench", VALUE)
    data = driver.data["bench"]
    loads = cache._serializer.loads
    dumps = cache._serializer.dumps

    async def raw_get(n: int) -> None:
        for _ in range(n):
            loads(await driver.get("bench"))  # type: ignore[arg-type]

    async def raw_set(n: int) -> None:
        for _ in range(n):
            await driver.set("bench", dumps(VALUE), None)

    async def get(n: int) -> None:
        for _ in range(n):
            await cache.get("bench")

    async def set_(n: int) -> None:
        for _ in range(n):
            await cache.set("bench", VALUE)

    rows = []
    for name, raw, wrapped in (("get", raw_get, get), ("set", raw_set, set_)):
        rc, _, wc, _ = await _compare(raw, wrapped)
        rows.append(f"| {name} | {rc:.2f} | {wc:.2f} | {wc - rc:+.2f} |")
    del data
    return rows


async def _bench_limit() -> list[str]:
    """The per-call time limit: a loop timer per call vs the cache's watchdog."""
    driver = _Instant()
    driver.data["bench"] = b"1"
    deadlines = Deadlines("bench", 0.25)

    async def bare(n: int) -> None:
        for i in range(n):
            await driver.get("bench")
            if i % 10 == 0:
                await asyncio.sleep(0)  # let the loop run, as real I/O does

    async def timer(n: int) -> None:
        for i in range(n):
            async with asyncio.timeout(0.25):
                await driver.get("bench")
            if i % 10 == 0:
                await asyncio.sleep(0)

    async def watchdog(n: int) -> None:
        for i in range(n):
            await deadlines.call(driver.get, "bench")
            if i % 10 == 0:
                await asyncio.sleep(0)

    base = min([(await _timed(bare, N * 5))[0] for _ in range(ROUNDS)])
    rows = []
    for name, body in (
        ("`asyncio.timeout` (a timer per call)", timer),
        ("`Deadlines` (one watchdog)", watchdog),
    ):
        await body(500)
        best = min([(await _timed(body, N * 5))[0] for _ in range(ROUNDS)])
        rows.append(f"| {name} | {best - base:+.2f} |")
    deadlines.close()
    return rows


async def _bench_degraded() -> list[str]:
    driver = _Instant()
    clock = FakeClock()
    cache = ResilientCache(driver, _config("degraded"), clock=clock)
    await cache.set("bench", VALUE)
    await cache.set("bench-bytes", b"x" * 100)
    cache.breaker.force_open()
    rows = []
    for key in ("bench", "bench-bytes", "absent"):

        async def body(n: int, key: str = key) -> None:
            for _ in range(n):
                await cache.get(key)

        await body(500)
        best = min([(await _timed(body, N * 5))[0] for _ in range(ROUNDS)])
        rows.append(f"| `get({key!r})` | {best:.2f} |")
    assert cache.snapshot()["fallback_hits"] > 0
    return rows


async def _main() -> str:
    out = ["### Resilient cache: overhead over the raw client (same process, same server)", ""]
    out.append(
        "CPU µs per operation of this process (server time excluded), fastest of "
        f"{ROUNDS} interleaved rounds of {N} sequential operations; wall µs for reference."
    )
    out.append("")
    out.append(
        "| operation | raw CPU µs | wrapped CPU µs | overhead µs | overhead | raw wall µs "
        "| wrapped wall µs |"
    )
    out.append("|---|---:|---:|---:|---:|---:|---:|")
    procs = []
    try:
        mc, mc_port = _start("memcached")
        rd, rd_port = _start("redis")
        procs = [mc, rd]
        out += await _bench_client("aiomcache", mc_port)
        out += await _bench_client("emcache", mc_port)
        out += await _bench_client("redis", rd_port)
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(5)
    out += ["", "### Resilient cache: the layer's own cost (driver answering at once, no I/O)", ""]
    out += ["| operation | driver + JSON µs | cache µs | layer µs |", "|---|---:|---:|---:|"]
    out += await _bench_layer()
    out += ["", "### Resilient cache: cost of the per-call time limit", ""]
    out += ["| mechanism | µs per call |", "|---|---:|"]
    out += await _bench_limit()
    out += ["", "### Resilient cache: fallback read while degraded (breaker open)", ""]
    out += ["| read | µs |", "|---|---:|"]
    out += await _bench_degraded()
    return "\n".join(out)


def main() -> str:
    return asyncio.run(_main())


if __name__ == "__main__":
    print(main())
