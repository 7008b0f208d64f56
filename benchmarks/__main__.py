"""Run every benchmark and print Markdown (``make bench``)."""

from __future__ import annotations

import importlib
import platform
import sys

MODULES = [
    "bench_breaker",
    "bench_retry",
    "bench_pipeline",
    "bench_pools",
    "bench_classify",
    "bench_health",
    "bench_cache",
    "bench_exchange",
    "bench_monitoring",
    "bench_scrape",
    "bench_shared",
    "bench_dashboard",
]


def main() -> None:
    print(f"Python {platform.python_version()} on {platform.machine()}, {platform.system()}\n")
    only = sys.argv[1:]
    for name in MODULES:
        if only and name not in only:
            continue
        module = importlib.import_module(f"benchmarks.{name}")
        print(module.main())
        print()


if __name__ == "__main__":
    main()
