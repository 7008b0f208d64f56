"""Health: the cost of making a check's error safe to show (``describe_error``).

An exchange that echoes a whole response body into a ccxt error hands the
health service a message of many kilobytes. ``describe_error`` runs on the
event loop for every failed run, so its cost must not grow with the message:
it cuts the message to a fixed window first and scrubs that in linear time.

Reported: milliseconds per call (fastest of several runs) for 1 MB messages
built to make backtracking patterns quadratic, and, for comparison, the
scrub-then-cut order the health service used before (the same patterns with
an unbounded scheme, run over the whole message) on much shorter inputs;
its cost grows with the square of the length (an 80 KB message of the
"dotted" kind took about 27 s).

Run: ``python -m benchmarks.bench_health`` (a few seconds).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from virtuoso_resilience.health._checks import describe_error

MEGABYTE = 10**6
BUDGET_MS = 10.0  # what a 1 MB message may cost at most

CASES: dict[str, str] = {
    "http:// repeated": "http://" * 150_000,
    "one letter repeated": "a" * MEGABYTE,
    "a. repeated (dotted)": "a." * (MEGABYTE // 2),
    "a-a+ repeated": "a-a+" * (MEGABYTE // 4),
    "scheme then @ * 1e6": "http://" + "@" * MEGABYTE,
    "token: repeated": "token: " * (MEGABYTE // 7),
    "Bearer repeated": "Bearer " * (MEGABYTE // 7),
    "1 MB of spaces, then text": " " * MEGABYTE + "text",
    "URL with secrets, then a 1 MB body": (
        "POST https://u:p@api.bybit.com/v5/order/create?apiKey=K&sign=S " + "x" * MEGABYTE
    ),
}

# The patterns as they were before the fix, applied before the cut.
_OLD_URL = re.compile(
    r"(?i)\b([a-z][a-z0-9+.-]*://)(?:[^\s/?#@'\"<>]*@)?([^\s/?#'\"<>\\]*)[^\s'\"<>]*"
)


def _old_scrub(text: str) -> str:
    text = _OLD_URL.sub(r"\1\2", text)
    return " ".join(text.split())[:200]


def _best_ms(call: Callable[[], object], repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - start)
    return best * 1000.0


def main() -> str:
    lines = [
        "### Health: `describe_error` on hostile messages",
        "",
        f"| message (1 MB) | ms/call | within {BUDGET_MS:g} ms |",
        "|---|---:|:---:|",
    ]
    for name, text in CASES.items():
        exc = RuntimeError(text)
        ms = _best_ms(lambda exc=exc: describe_error(exc))
        lines.append(f"| {name} | {ms:.3f} | {'yes' if ms < BUDGET_MS else '**no**'} |")
    lines += [
        "",
        "| before the fix: scrub, then cut (dotted text) | ms/call |",
        "|---|---:|",
    ]
    for size in (1_000, 2_000, 4_000, 8_000):
        text = "a." * (size // 2)
        ms = _best_ms(lambda text=text: _old_scrub(text), repeat=3)
        lines.append(f"| {size:,} characters | {ms:.1f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(main())
