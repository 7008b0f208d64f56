"""Timing helpers shared by the benchmarks.

Each measurement runs the loop ``repeat`` times and keeps the fastest run
(the least disturbed by the rest of the machine); results are nanoseconds
per call. Overheads are reported against a bare ``await`` of the same
coroutine function, measured in the same process.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

__all__ = ["Result", "format_table", "measure_async", "measure_sync"]


@dataclass(frozen=True)
class Result:
    name: str
    ns_per_call: float
    baseline_ns: float

    @property
    def overhead_ns(self) -> float:
        return max(self.ns_per_call - self.baseline_ns, 0.0)


async def measure_async(body: Callable[[int], Awaitable[None]], n: int, repeat: int = 7) -> float:
    """Fastest ns/call of ``await body(n)`` (a loop of n calls) over ``repeat`` runs."""
    await body(min(n, 2000))  # warm up
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        gc.disable()
        try:
            start = time.perf_counter_ns()
            await body(n)
            elapsed = time.perf_counter_ns() - start
        finally:
            gc.enable()
        best = min(best, elapsed / n)
    return best


def measure_sync(body: Callable[[int], None], n: int, repeat: int = 7) -> float:
    """Fastest ns/call of ``body(n)`` over ``repeat`` runs."""
    body(min(n, 2000))
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        gc.disable()
        try:
            start = time.perf_counter_ns()
            body(n)
            elapsed = time.perf_counter_ns() - start
        finally:
            gc.enable()
        best = min(best, elapsed / n)
    return best


def format_table(title: str, results: list[Result], reference: str | None = None) -> str:
    """A Markdown table: ns/call, overhead over the baseline, and the ratio of
    each overhead to ``reference``'s (the row named so)."""
    ref = next((r for r in results if r.name == reference), None)
    lines = [
        f"### {title}",
        "",
        "| implementation | ns/call | overhead ns | overhead vs ours |",
        "|---|---:|---:|---:|",
    ]
    for r in results:
        ratio = ""
        if ref is not None and ref.overhead_ns > 0:
            ratio = f"{r.overhead_ns / ref.overhead_ns:.1f}×"
        lines.append(f"| {r.name} | {r.ns_per_call:.0f} | {r.overhead_ns:.0f} | {ratio} |")
    return "\n".join(lines)


def run(coro: Awaitable[str]) -> str:
    return asyncio.run(coro)  # type: ignore[arg-type]
