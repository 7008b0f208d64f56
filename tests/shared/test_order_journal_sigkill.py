"""Acceptance: a process placing orders is SIGKILLed 20 times at random points and
restarted; the exchange ends with exactly the intended orders, once each."""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path

import ccxt.async_support as ccxt
from procs import read_line, spawn

from virtuoso_resilience.shared import SqliteJournal
from virtuoso_resilience.simulator import Simulator

ORDERS = 100
KILLS = 20


async def test_sigkill_at_random_points_neither_loses_nor_duplicates(
    tmp_path: Path, quiet_sim: Simulator
) -> None:
    sim = quiet_sim
    rng = random.Random(13)
    path = str(tmp_path / "orders.db")
    spec = {"ccxt": sim.ccxt_config(), "journal": path, "orders": ORDERS, "rate_limit_ms": 1}
    # Answers take a while: kills land between send and answer too.
    sim.faults.add("latency@/v5/order/create=20ms..60ms")
    kills = 0
    recovered = 0

    async def warm() -> asyncio.subprocess.Process:
        proc = await spawn("orders", spec)
        assert await read_line(proc) == "warm"
        return proc

    async def go(proc: asyncio.subprocess.Process) -> None:
        assert proc.stdin is not None
        proc.stdin.write(b"go\n")
        await proc.stdin.drain()

    # The next process starts (imports, loads markets) while this one runs; it
    # touches the journal only after the kill.
    upcoming = asyncio.ensure_future(warm())
    while kills < KILLS:
        proc = await upcoming
        await go(proc)
        upcoming = asyncio.ensure_future(warm())
        line = await read_line(proc)
        assert line.startswith("recovered ")
        report = json.loads(line.split(" ", 1)[1])
        assert report["bad"] == {}
        recovered += report["n"]
        await asyncio.sleep(rng.uniform(0.0, 0.25))
        if proc.returncode is None:
            proc.kill()  # SIGKILL
            kills += 1
        await proc.wait()
    final = await upcoming
    await go(final)
    while (line := await read_line(final, within=120)) != "finished":
        assert line.startswith(("recovered", "placed"))
    await final.wait()
    assert final.returncode == 0

    journal = SqliteJournal(path)
    intents = await journal.all()
    await journal.close()
    intended = {i.client_order_id for i in intents}
    assert intended == {f"jr-{i:03d}" for i in range(ORDERS)}
    assert all(i.state == "placed" for i in intents)
    # The exchange holds each intended order exactly once, and nothing else.
    assert sim.stats.orders_created == ORDERS
    raw = ccxt.bybit({**sim.ccxt_config(), "rateLimit": 1})
    raw.timeout_on_exit = 0
    try:
        found = set()
        for cid in sorted(intended):
            order = await raw.fetch_order(
                "", "BTC/USDT", {"orderLinkId": cid, "acknowledged": True}
            )
            found.add(order["clientOrderId"])
    finally:
        await raw.close()
    assert found == intended
    print(f"{kills} kills, {recovered} intents reconciled at start-up")
    assert recovered >= 1  # some kills did land between intent and answer
