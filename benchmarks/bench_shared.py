"""What sharing costs: the shared budget per call, and breaker OPEN propagation.

Starts its own ``redis-server`` on a free loopback port (never the shared
one on 6379).

1. Budget, CPU µs (``time.process_time``: client, simulator and aiohttp in
   one process; the Redis server's CPU is not counted) per ``fetch_ticker``
   through the adapter against the simulator (sequential calls, budget far
   above the load):
   the adapter alone, with the shared budget (leases), and with a round trip
   per call (``EVALSHA`` of the budget script before each call). Rounds are
   interleaved; the fastest round per variant is kept.
2. The budget's own cost per ``acquire`` without HTTP: local bucket, shared
   with leases, one round trip per acquire.
3. Breaker propagation: one process trips, another (its own connection)
   sees OPEN; p50/p99 over 200 trips (pub/sub path).

Run: ``python -m benchmarks.bench_shared`` (about 20-40 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import ccxt.async_support as ccxt

from virtuoso_resilience import CircuitBreaker, RateLimiter
from virtuoso_resilience.exchange import ResilientExchange, create_bybit_resilient_config
from virtuoso_resilience.shared import BudgetWindow, RedisLink, SharedBreaker, SharedBudget
from virtuoso_resilience.shared._budget import _ACQUIRE
from virtuoso_resilience.simulator import Simulator

CALLS = 100
ROUNDS = 25
ACQUIRES = 20_000
TRIPS = 200
WIDE = [BudgetWindow(limit=10_000_000, seconds=1.0, burst=100_000)]


@contextlib.contextmanager
def _redis() -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.Popen(
            ["/usr/bin/redis-server", "--port", str(port), "--save", "", "--dir", tmp],
            stdout=subprocess.DEVNULL,
        )
        try:
            for _ in range(500):
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                        break
                except OSError:
                    time.sleep(0.01)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            proc.kill()
            proc.wait()


class _RoundTrip:
    """A 'budget' that pays one EVALSHA per call (what leases avoid)."""

    def __init__(self, link: RedisLink) -> None:
        self._link = link
        self._args = ["1", "1", 1, "1e7", "1e5"]

    async def acquire(self, cost: float) -> None:
        args = self._args

        async def call(client: Any) -> Any:
            return await _ACQUIRE(client, ["bench:rt", "bench:rt:p"], args)

        await self._link.run(call)

    def pause(self, seconds: float) -> None: ...

    def correct(self, index: int, remaining: float) -> None: ...


async def _calls(url: str) -> dict[str, float]:
    async with Simulator(seed=1, rate_limits=False) as sim:
        links = [RedisLink(url, timeout=0.5), RedisLink(url, timeout=0.5)]
        shared = SharedBudget(links[0], "bench", WIDE)
        variants: dict[str, Any] = {"adapter alone": None, "shared budget (leases)": shared}
        variants["round trip per call"] = _RoundTrip(links[1])
        variants["adapter alone (again: the noise floor)"] = None
        adapters = {}
        for name, budget in variants.items():
            raw = ccxt.bybit({**sim.ccxt_config(), "rateLimit": 0.001})
            raw.timeout_on_exit = 0
            adapter = ResilientExchange(raw, create_bybit_resilient_config())
            await adapter.load_markets()
            if budget is not None:
                adapter.limiter.use_shared(budget)
            adapters[name] = adapter
        best = dict.fromkeys(adapters, float("inf"))
        for _ in range(ROUNDS):
            for name, adapter in adapters.items():
                start = time.process_time()
                for _ in range(CALLS):
                    await adapter.fetch_ticker("BTC/USDT")
                best[name] = min(best[name], (time.process_time() - start) / CALLS * 1e6)
        best["(shared budget round trips)"] = shared.round_trips
        for adapter in adapters.values():
            await adapter.close()
        for link in links:
            await link.close()
    return best


async def _acquires(url: str) -> dict[str, float]:
    link = RedisLink(url, timeout=0.5)
    local = RateLimiter("bench", rate=1e7, capacity=1e5)
    shared = SharedBudget(link, "bench-acq", WIDE)
    trip = _RoundTrip(link)
    out = {}
    for name, acquire in (
        ("local bucket", local.acquire),
        ("shared, leases", shared.acquire),
        ("shared, round trip each", trip.acquire),
    ):
        n = ACQUIRES if name != "shared, round trip each" else ACQUIRES // 10
        fn: Callable[[float], Awaitable[Any]] = acquire
        start = time.perf_counter()
        for _ in range(n):
            await fn(1.0)
        out[name] = (time.perf_counter() - start) / n * 1e6
    await link.close()
    return out


async def _propagation(url: str) -> list[float]:
    links = [RedisLink(url, timeout=0.5) for _ in range(2)]
    a = SharedBreaker(links[0], CircuitBreaker("bench", failure_threshold=1, timeout=60.0))
    b = SharedBreaker(links[1], CircuitBreaker("bench", failure_threshold=1, timeout=60.0))
    a.start()
    b.start()
    await asyncio.sleep(0.2)

    async def boom() -> None:
        raise ConnectionError("down")

    seen: list[float] = []
    loop = asyncio.get_running_loop()
    for _ in range(TRIPS):
        start = loop.time()
        with contextlib.suppress(ConnectionError):
            await a.call_async(boom)
        for _ in range(10_000_000):  # spin on the loop until b has seen it
            if b.state == "open":
                break
            await asyncio.sleep(0)
        seen.append((loop.time() - start) * 1000)
        await links[0].client.delete("virtuoso:breaker:{bench}")
        a.breaker.reset()
        a.state = b.state = "closed"
        await asyncio.sleep(0.005)
    await a.close()
    await b.close()
    for link in links:
        await link.close()
    return seen


async def _run() -> str:
    with _redis() as url:
        calls = await _calls(url)
        acquires = await _acquires(url)
        seen = await _propagation(url)
    base = min(calls["adapter alone"], calls["adapter alone (again: the noise floor)"])
    lines = [
        "### Shared budget: CPU µs per fetch_ticker (adapter + ccxt + simulator, one process)",
        "",
        "| variant | µs/call | added |",
        "|---|---:|---:|",
    ]
    trips = calls.pop("(shared budget round trips)")
    for name, micros in calls.items():
        extra = micros - base
        lines.append(f"| {name} | {micros:.0f} | {extra:+.1f} µs ({extra / base:+.2%}) |")
    lines += [
        "",
        f"The shared budget made {trips:.0f} round trips for {ROUNDS * CALLS} calls.",
        "",
        "### Shared budget: µs per acquire (no HTTP)",
        "",
        f"| variant | µs/acquire | vs a {base:.0f} µs call |",
        "|---|---:|---:|",
    ]
    lines += [
        f"| {name} | {micros:.2f} | {micros / base:.2%} |" for name, micros in acquires.items()
    ]
    q = statistics.quantiles(seen, n=100)
    lines += [
        "",
        f"### Shared breaker: OPEN propagation to another process ({TRIPS} trips)",
        "",
        "| p50 ms | p99 ms | max ms |",
        "|---:|---:|---:|",
        f"| {q[49]:.2f} | {q[98]:.2f} | {max(seen):.2f} |",
    ]
    return "\n".join(lines)


def main() -> str:
    return asyncio.run(_run())


if __name__ == "__main__":
    print(main())
