"""A bot process for the multi-process tests: ``python worker.py MODE JSON``.

``budget``: 50 callers fetch tickers through one shared budget until the
deadline the parent sends on stdin; prints a JSON summary.
``orders``: reconciles its journal, then places the planned orders one by
one (the parent SIGKILLs it at random points); prints ``placed <cid>``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

import ccxt.async_support as ccxt

from virtuoso_resilience.exchange import ResilientExchange, create_bybit_resilient_config
from virtuoso_resilience.shared import (
    BudgetWindow,
    RedisLink,
    SharedBudget,
    SharedBudgetConfig,
    SqliteJournal,
)


def client(spec: dict[str, Any]) -> Any:
    exchange = ccxt.bybit({**spec["ccxt"], "rateLimit": spec.get("rate_limit_ms", 2)})
    exchange.timeout_on_exit = 0
    return exchange


async def budget(spec: dict[str, Any]) -> None:
    adapter = ResilientExchange(client(spec), create_bybit_resilient_config())
    link = RedisLink(spec["redis"], timeout=0.5, rejoin_interval=0.5)
    shared = SharedBudget(
        link,
        "bybit:acceptance",
        [BudgetWindow(**w) for w in spec["windows"]],
        SharedBudgetConfig(expected_processes=spec["processes"]),
    )
    shared.start()
    adapter.limiter.use_shared(shared)
    await adapter.load_markets()
    print("ready", flush=True)
    deadline = float((await asyncio.to_thread(sys.stdin.readline)).strip())
    done = 0
    errors: list[str] = []

    async def caller() -> None:
        nonlocal done
        while time.time() < deadline:
            try:
                await adapter.fetch_ticker("BTC/USDT")
                done += 1
            except Exception as exc:
                errors.append(type(exc).__name__)

    await asyncio.gather(*(caller() for _ in range(spec["callers"])))
    summary = {"done": done, "errors": errors, "budget": shared.snapshot()}
    await shared.close()
    await link.close()
    await adapter.close()
    print(json.dumps(summary), flush=True)


async def orders(spec: dict[str, Any]) -> None:
    adapter = ResilientExchange(client(spec), create_bybit_resilient_config())
    journal = SqliteJournal(spec["journal"])
    await adapter.load_markets()
    print("warm", flush=True)
    await asyncio.to_thread(sys.stdin.readline)  # the parent's go (after the last kill)
    recovered = await adapter.use_journal(journal)
    bad = {cid: repr(r) for cid, r in recovered.items() if not isinstance(r, dict)}
    print("recovered", json.dumps({"n": len(recovered), "bad": bad}), flush=True)
    known = {i.client_order_id for i in await journal.all()}
    for i in range(spec["orders"]):
        cid = f"jr-{i:03d}"
        if cid in known:
            continue
        await adapter.create_order(
            "BTC/USDT", "limit", "buy", 0.001, 1000.0 + i, {"clientOrderId": cid}
        )
        print("placed", cid, flush=True)
    print("finished", flush=True)
    await journal.close()
    await adapter.close()


if __name__ == "__main__":
    mode, raw = sys.argv[1], sys.argv[2]
    asyncio.run({"budget": budget, "orders": orders}[mode](json.loads(raw)))
