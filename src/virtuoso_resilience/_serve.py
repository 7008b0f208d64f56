"""The main job: ``virtuoso-resilience serve``.

Starts the built-in Bybit simulator with a moderate fault profile (latency,
a few 500s and Bybit "System error" answers, and a scheduled outage of the
ticker endpoint every ``outage_every`` seconds), points ccxt's real bybit
client at it, and polls tickers for a few symbols through a resilience
pipeline per symbol (retry → circuit breaker → rate limiter → attempt
timeout). It prints each breaker state change and a periodic one-line
summary. Everything runs offline on 127.0.0.1.

The monitoring API (``virtuoso_resilience.monitoring``) serves the
registry's breakers, pipelines and health on ``127.0.0.1:8001`` unless
``ServeOptions.monitoring`` is None.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

import ccxt.async_support as ccxt_async

from .monitoring import MonitoringServer, MonitoringSettings
from .policies.circuit_breaker import CircuitBreakerConfig, CircuitState, StateChangeEvent
from .policies.pipeline import ResiliencePipeline
from .policies.rate_limit import RateLimiter
from .policies.retry import RetryPolicy
from .policies.timeout import TimeoutPolicy
from .registry import PIPELINES, RATE_LIMITERS, RETRY_POLICIES, ResilienceRegistry
from .simulator import Simulator

__all__ = ["MODERATE_FAULTS", "MarketDataService", "ServeOptions", "serve"]

MODERATE_FAULTS = "latency=5ms..60ms,error_rate=0.03,system_error=0.02"
"""Background faults: a little latency, 3 % HTTP 500, 2 % retCode 10016."""

DEFAULT_SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT")


@dataclass(frozen=True, slots=True)
class ServeOptions:
    """How ``serve`` runs. Times are in seconds."""

    duration: float | None = None
    """Stop after this long (None: until cancelled)."""
    summary_interval: float = 5.0
    poll_interval: float = 0.5
    symbols: Sequence[str] = DEFAULT_SYMBOLS
    faults: str = MODERATE_FAULTS
    outage_every: float = 30.0
    """A ticker-endpoint outage (HTTP 503) starts this often (0: never)."""
    outage_length: float = 8.0
    seed: int = 7
    """Simulator seed. The simulator replays the same prices and fault draws
    for the same sequence of requests; a whole ``serve`` run also depends on
    timing (outage windows, breaker open periods), so two runs differ a little."""
    monitoring: MonitoringSettings | None = field(default_factory=MonitoringSettings)
    """Where the monitoring API listens (None: no monitoring API)."""


class MarketDataService:
    """Polls tickers through one pipeline per symbol and keeps the counts."""

    def __init__(
        self,
        exchange: Any,
        symbols: Sequence[str],
        registry: ResilienceRegistry,
        out: TextIO,
    ) -> None:
        self.exchange = exchange
        self.symbols = tuple(symbols)
        self.registry = registry
        self.out = out
        # Bybit's public budget is generous; stay well inside it.
        self.limiter = RateLimiter("bybit.public", rate=20.0, capacity=20.0)
        self.retry = RetryPolicy(
            name="bybit.fetch_ticker", max_attempts=3, base_delay=0.2, max_delay=2.0
        )
        self.pipelines = {symbol: self._pipeline(symbol) for symbol in self.symbols}
        registry.register(RATE_LIMITERS, self.limiter.name, self.limiter)
        registry.register(RETRY_POLICIES, self.retry.name, self.retry)
        for pipeline in self.pipelines.values():
            registry.register(PIPELINES, pipeline.name, pipeline)
        self.last: dict[str, float | None] = dict.fromkeys(self.symbols)

    def _pipeline(self, symbol: str) -> ResiliencePipeline:
        name = f"bybit.ticker.{symbol}"
        breaker = self.registry.circuit_breaker(
            name,
            CircuitBreakerConfig(
                failure_threshold=4, success_threshold=2, timeout=3.0, exchange_id="bybit"
            ),
        )
        breaker.add_listener(on_state_change=self._on_change)
        return ResiliencePipeline(
            name,
            retry=self.retry,
            circuit_breaker=breaker,
            rate_limiter=self.limiter,
            timeout=TimeoutPolicy(name, seconds=3.0),
        )

    def _on_change(self, event: StateChangeEvent) -> None:
        self.print(
            f"[breaker] {event.name}: {event.previous.value} -> {event.current.value} "
            f"({event.reason})"
        )

    def print(self, line: str) -> None:
        print(line, file=self.out, flush=True)

    async def poll_once(self) -> None:
        await asyncio.gather(*(self._poll(symbol) for symbol in self.symbols))

    async def _poll(self, symbol: str) -> None:
        try:
            ticker = await self.pipelines[symbol].call_async(self.exchange.fetch_ticker, symbol)
        except Exception:  # counted by the policies; the next poll tries again
            return
        self.last[symbol] = ticker.get("last")

    def summary(self) -> str:
        calls = sum(p.snapshot()["calls"] for p in self.pipelines.values())
        failures = sum(p.snapshot()["failures"] for p in self.pipelines.values())
        breakers = [p.circuit_breaker for p in self.pipelines.values() if p.circuit_breaker]
        open_ = sum(b.state is not CircuitState.CLOSED for b in breakers)
        rejected = sum(b.snapshot().rejected for b in breakers)
        prices = " ".join(
            f"{s.split('/')[0]}={v:,.2f}" if v is not None else f"{s.split('/')[0]}=-"
            for s, v in self.last.items()
        )
        return (
            f"calls={calls} failures={failures} retries={self.retry.retries} "
            f"rejected={rejected} open_breakers={open_}/{len(breakers)} {prices}"
        )


async def serve(options: ServeOptions, out: TextIO | None = None) -> int:
    """Run the market-data service until ``options.duration`` or cancellation.

    ``out`` defaults to the ``sys.stdout`` of the moment of the call."""
    out = out if out is not None else sys.stdout
    registry = ResilienceRegistry()
    monitor: MonitoringServer | None = None
    async with Simulator(seed=options.seed) as sim:
        if options.faults:
            sim.faults.add(options.faults)
        exchange = ccxt_async.bybit({**sim.ccxt_config(credentials=False), "timeout": 5000})
        try:
            service = MarketDataService(exchange, options.symbols, registry, out)
            service.print(
                f"virtuoso-resilience serve: Bybit simulator at {sim.base_url} (seed {sim.seed}), "
                f"faults '{options.faults}', outage of /v5/market/tickers every "
                f"{options.outage_every:g}s for {options.outage_length:g}s"
            )
            if options.monitoring is not None:
                monitor = MonitoringServer(registry, options.monitoring)
                try:
                    await monitor.start()
                except OSError as exc:
                    print(f"error: {exc.strerror}", file=sys.stderr, flush=True)
                    return 2
                service.print(
                    f"[monitoring] {monitor.url}/api/monitoring/health "
                    f"(livez, readyz, circuit-breakers, connection-pools, metrics)"
                )
            await registry.start()
            await _load_markets(exchange, service)
            await _run(options, sim, service)
        finally:
            if monitor is not None:
                await monitor.stop()
            await exchange.close()
            await registry.aclose()
    return 0


async def _load_markets(exchange: Any, service: MarketDataService) -> None:
    loader = ResiliencePipeline(
        "bybit.load_markets",
        retry=RetryPolicy(name="bybit.load_markets", max_attempts=10, base_delay=0.2),
    )
    markets = await loader.call_async(exchange.load_markets)
    service.print(f"[ready] {len(markets)} markets loaded; polling {', '.join(service.symbols)}")


async def _run(options: ServeOptions, sim: Simulator, service: MarketDataService) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    next_summary = started + options.summary_interval
    next_outage = started + options.outage_every if options.outage_every > 0 else None
    while options.duration is None or loop.time() - started < options.duration:
        now = loop.time()
        if next_outage is not None and now >= next_outage:
            sim.faults.add(f"http@/v5/market/tickers=503~{options.outage_length:g}s")
            service.print(
                f"[chaos] /v5/market/tickers answers HTTP 503 for {options.outage_length:g}s"
            )
            next_outage = now + options.outage_every
        await service.poll_once()
        now = loop.time()
        if now >= next_summary:
            stats = sim.stats
            service.print(
                f"[summary] t={now - started:6.1f}s {service.summary()} "
                f"sim_requests={stats.requests_total} sim_violations={stats.violations_total}"
            )
            next_summary = now + options.summary_interval
        await asyncio.sleep(options.poll_interval)
