"""Classifier: the cost of classifying a failure, and of a 1 MB error message.

The success path never calls the classifier (``classify(None)`` is a constant);
these are the costs of the failure path. The 1 MB row shows the message
rules are cut first: a ccxt error echoing a 1 MB body costs about what a
1 KB one does, not a thousand times more.
"""

from __future__ import annotations

import ccxt

from virtuoso_resilience.classify import attach_response, classify

from ._harness import measure_sync

N = 20_000


def _row(name: str, error: Exception, *, write: bool = False, n: int = N) -> str:
    def body(count: int) -> None:
        for _ in range(count):
            classify(error, write=write)

    return f"| {name} | {measure_sync(body, n) / 1000:.2f} |"


def main() -> str:
    body_1k = "<html>" + "x" * 1024 + "</html>"
    body_1m = "<html>" + "x" * 1_000_000 + "</html>"
    limited = attach_response(
        ccxt.RateLimitExceeded('bybit {"retCode":10006,"retMsg":"Too many visits!"}'),
        headers={"Retry-After": "1", "X-Bapi-Limit-Status": "0", "Content-Type": "json"},
    )
    rows = [
        _row("`TimeoutError` (type only, cached)", TimeoutError()),
        _row("ccxt `NetworkError`, no code", ccxt.NetworkError("bybit GET https://x")),
        _row("ccxt bybit retCode 10006 + attached headers", limited),
        _row(
            "ccxt `ExchangeNotAvailable` 400, 1 KB body",
            ccxt.ExchangeNotAvailable(f"binance POST https://x 400 Bad Request {body_1k}"),
            write=True,
        ),
        _row(
            "ccxt `ExchangeNotAvailable` 503, 1 KB body (maintenance check)",
            ccxt.ExchangeNotAvailable(f"bybit GET https://x 503 Unavailable {body_1k}"),
        ),
        _row(
            "ccxt `ExchangeNotAvailable` 503, 1 MB body (maintenance check)",
            ccxt.ExchangeNotAvailable(f"bybit GET https://x 503 Unavailable {body_1m}"),
            n=2_000,
        ),
    ]
    return "\n".join(
        [
            "### Classifier (failure path)",
            "",
            "| failure | µs/classify |",
            "|---|---:|",
            *rows,
        ]
    )


if __name__ == "__main__":
    print(main())
