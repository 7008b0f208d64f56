"""Cost of one Prometheus scrape, by number of registered components.

Builds a registry with ``n`` circuit breakers (each used once, one in four
tripped open), and optionally the registry's health service (one check per
breaker, all run once), then times :meth:`PrometheusExporter.exposition`:
reading every component, building the families and rendering the text
format. Reports the fastest of ``ROUNDS`` scrapes in milliseconds and the
cost per breaker, to show that the cost grows linearly.

Run: ``python -m benchmarks.bench_scrape`` (a few seconds).
"""

from __future__ import annotations

import asyncio
import gc
import time

from virtuoso_resilience import FakeClock, ResilienceRegistry
from virtuoso_resilience.monitoring import PrometheusExporter

from ._harness import measure_async

SIZES = (100, 1_000, 5_000)
ROUNDS = 9


async def _ok() -> int:
    return 1


async def _fail() -> None:
    raise ConnectionError("down")


async def _registry(n: int, *, health: bool) -> ResilienceRegistry:
    registry = ResilienceRegistry(clock=FakeClock())
    for i in range(n):
        breaker = registry.circuit_breaker(f"exchange_api_{i}", failure_threshold=1)
        await breaker.call_async(_ok)
        if i % 4 == 0:
            try:
                await breaker.call_async(_fail)
            except ConnectionError:
                pass
    if health:
        await registry.health.run_checks()
    return registry


def _best_ms(exporter: PrometheusExporter) -> tuple[float, int]:
    body, _ = exporter.exposition()
    best = float("inf")
    for _ in range(ROUNDS):
        gc.collect()
        gc.disable()
        try:
            start = time.perf_counter_ns()
            exporter.exposition()
            best = min(best, (time.perf_counter_ns() - start) / 1e6)
        finally:
            gc.enable()
    return best, len(body)


async def _main() -> str:
    lines = [
        "### Prometheus scrape (exposition of a whole registry)",
        "",
        "| breakers | health checks | scrape ms | µs per breaker | body KiB |",
        "|---:|---:|---:|---:|---:|",
    ]
    for health in (False, True):
        for n in SIZES:
            registry = await _registry(n, health=health)
            exporter = PrometheusExporter(registry, health=registry.health if health else None)
            ms, size = _best_ms(exporter)
            lines.append(
                f"| {n:,} | {n if health else 0:,} | {ms:.1f} | {ms * 1000 / n:.1f} | "
                f"{size / 1024:.0f} |"
            )
            exporter.close()
            await registry.aclose()
    lines += ["", await _hot_path()]
    return "\n".join(lines)


async def _hot_path() -> str:
    """A breaker's success path with and without the exporter watching it."""
    registry = ResilienceRegistry()
    breaker = registry.circuit_breaker("hot")

    async def calls(n: int) -> None:
        call = breaker.call_async
        for _ in range(n):
            await call(_ok)

    alone = await measure_async(calls, 200_000)
    exporter = PrometheusExporter(registry, health=None)
    watched = await measure_async(calls, 200_000)
    exporter.close()
    return "\n".join(
        [
            "| breaker success path | ns/call |",
            "|---|---:|",
            f"| no exporter | {alone:.0f} |",
            f"| exporter watching (transition listener) | {watched:.0f} |",
        ]
    )


def main() -> str:
    return asyncio.run(_main())


if __name__ == "__main__":
    print(main())
