"""The main job: ``virtuoso-resilience serve``.

For now it polls a built-in flaky market-data feed through a circuit breaker
and prints every state change and a periodic one-line summary, so the
breaker can be watched tripping during an outage and recovering after it.
"""

from __future__ import annotations

import asyncio
import random
import sys
from dataclasses import dataclass
from typing import TextIO

from .errors import CircuitOpenError
from .policies.circuit_breaker import CircuitBreakerConfig, StateChangeEvent
from .registry import ResilienceRegistry

__all__ = ["FlakyFeed", "ServeOptions", "serve"]


@dataclass(frozen=True, slots=True)
class ServeOptions:
    duration: float | None = None
    """Seconds to run (None: until cancelled)."""
    summary_interval: float = 5.0
    """Seconds between one-line summaries."""
    poll_interval: float = 0.2
    """Seconds between ticker polls."""


class FeedDown(ConnectionError):
    """The feed is in an outage phase (a transient, connection-level error)."""


class FlakyFeed:
    """A market-data source that cycles: healthy, outage, healthy, ...

    ``healthy`` seconds with a small error rate, then ``outage`` seconds where
    every call fails.
    """

    def __init__(
        self, *, healthy: float = 12.0, outage: float = 8.0, error_rate: float = 0.02, seed: int = 7
    ) -> None:
        self.healthy = healthy
        self.outage = outage
        self.error_rate = error_rate
        self._rng = random.Random(seed)
        self._price = 65_000.0
        self._start = asyncio.get_running_loop().time()

    def in_outage(self) -> bool:
        elapsed = (asyncio.get_running_loop().time() - self._start) % (self.healthy + self.outage)
        return elapsed >= self.healthy

    async def fetch_ticker(self, symbol: str) -> dict[str, float | str]:
        await asyncio.sleep(0.005)
        if self.in_outage() or self._rng.random() < self.error_rate:
            raise FeedDown(f"feed unreachable while fetching {symbol}")
        self._price *= 1 + self._rng.gauss(0, 0.0005)
        return {"symbol": symbol, "last": round(self._price, 2)}


async def serve(options: ServeOptions, out: TextIO = sys.stdout) -> int:
    registry = ResilienceRegistry()
    breaker = registry.circuit_breaker(
        "market_data",
        CircuitBreakerConfig(failure_threshold=5, success_threshold=2, timeout=3.0),
    )

    def on_change(event: StateChangeEvent) -> None:
        print(
            f"[breaker] {event.name}: {event.previous.value} -> {event.current.value} "
            f"({event.reason})",
            file=out,
            flush=True,
        )

    breaker.add_listener(on_state_change=on_change)
    feed = FlakyFeed()
    loop = asyncio.get_running_loop()
    started = loop.time()
    next_summary = started + options.summary_interval
    last_price: float | str = "-"
    print("virtuoso-resilience serve: polling BTC/USDT through breaker 'market_data'", file=out)
    while options.duration is None or loop.time() - started < options.duration:
        try:
            ticker = await breaker.call_async(feed.fetch_ticker, "BTC/USDT")
            last_price = ticker["last"]
        except (FeedDown, CircuitOpenError):
            pass
        now = loop.time()
        if now >= next_summary:
            snap = breaker.snapshot()
            print(
                f"[summary] t={now - started:5.1f}s state={snap.state.value} calls={snap.calls} "
                f"failures={snap.failures} rejected={snap.rejected} trips={snap.trips} "
                f"last=BTC/USDT {last_price}",
                file=out,
                flush=True,
            )
            next_summary = now + options.summary_interval
        await asyncio.sleep(options.poll_interval)
    return 0
