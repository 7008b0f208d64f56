"""CPU cost of the exchange adapter over the raw ccxt call, against the simulator.

Client and simulator run in one process and one event loop, so a call's CPU
time (``time.process_time``) covers ccxt building and signing the request,
aiohttp on both ends, the simulator answering and ccxt parsing the answer.
Three variants make the same sequential ``fetch_ticker`` calls:

- ``ccxt (no throttle)`` — ``enableRateLimit: False``: the bare call;
- ``ccxt (own throttle)`` — ``enableRateLimit: True`` with ccxt's leaky bucket;
- ``ccxt on the pool's session`` — the bare call through this library's
  ``ConnectionPool`` session (its trace metrics and middleware), which the
  adapter uses: what the pool costs, apart from the adapter's own logic;
- ``ResilientExchange`` — the adapter: breaker, bulkhead, attempt timeout,
  retry loop, the account limiter in place of ccxt's throttle, the observing
  session (response headers per call) and the stale-data store.

ccxt's ``rateLimit`` is set to 1 µs so no variant ever waits: the numbers are
CPU, not pacing. Rounds are interleaved; per variant the fastest round is
kept (the least disturbed by the rest of the machine).

Run: ``python -m benchmarks.bench_exchange`` (about 20-40 s).
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Awaitable, Callable
from typing import Any

import ccxt.async_support as ccxt

from virtuoso_resilience.exchange import ResilientExchange, create_bybit_resilient_config
from virtuoso_resilience.pools import ConnectionPool
from virtuoso_resilience.simulator import Simulator

N = 100
ROUNDS = 41


def _client(sim: Simulator, *, throttle: bool) -> Any:
    exchange = ccxt.bybit({**sim.ccxt_config(), "enableRateLimit": throttle, "rateLimit": 0.001})
    exchange.timeout_on_exit = 0
    return exchange


async def _cpu_per_call(call: Callable[[], Awaitable[Any]], n: int) -> float:
    gc.collect()
    gc.disable()
    try:
        start = time.process_time_ns()
        for _ in range(n):
            await call()
        return (time.process_time_ns() - start) / n / 1000.0  # µs
    finally:
        gc.enable()


async def _run() -> dict[str, float]:
    async with Simulator(seed=1, rate_limits=False, auto_tick=False) as sim:
        raw = _client(sim, throttle=False)
        throttled = _client(sim, throttle=True)
        pool = ConnectionPool("bench")
        pooled = _client(sim, throttle=False)
        pooled.session = pool.session
        pooled.own_session = False
        adapter = ResilientExchange(_client(sim, throttle=True), create_bybit_resilient_config())
        try:
            for exchange in (raw, throttled, pooled, adapter):
                await exchange.load_markets()
            variants: dict[str, Callable[[], Awaitable[Any]]] = {
                "ccxt (no throttle)": lambda: raw.fetch_ticker("BTC/USDT"),
                "ccxt (own throttle)": lambda: throttled.fetch_ticker("BTC/USDT"),
                "ccxt on the pool's session": lambda: pooled.fetch_ticker("BTC/USDT"),
                "ResilientExchange": lambda: adapter.fetch_ticker("BTC/USDT"),
            }
            for call in variants.values():  # warm up
                await _cpu_per_call(call, 100)
            best = dict.fromkeys(variants, float("inf"))
            for i in range(ROUNDS):
                names = list(variants) if i % 2 == 0 else list(variants)[::-1]
                for name in names:
                    best[name] = min(best[name], await _cpu_per_call(variants[name], N))
            return best
        finally:
            await raw.close()
            await throttled.close()
            await pooled.close()
            await adapter.close()
            await pool.close()


def main() -> str:
    best = asyncio.run(_run())
    base = best["ccxt (no throttle)"]
    on_pool = best["ccxt on the pool's session"]
    lines = [
        "### Exchange adapter: CPU per `fetch_ticker`, client and simulator in one process",
        "",
        f"Fastest of {ROUNDS} interleaved rounds of {N} sequential calls; "
        "CPU time (`time.process_time`), µs per call.",
        "",
        "| variant | CPU µs/call | over bare ccxt |",
        "|---|---:|---:|",
    ]
    for name, micros in best.items():
        extra = micros - base
        lines.append(f"| {name} | {micros:.0f} | {extra:+.1f} µs ({extra / base:+.2%}) |")
    own = best["ResilientExchange"] - on_pool
    lines += [
        "",
        f"The adapter's own logic (over ccxt on the same pool session): {own:+.1f} µs "
        f"({own / base:+.2%} of the bare call).",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(main())
