"""Order journals (SQLite, Redis) and the adapter's journal hooks, against the simulator."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import ccxt.async_support as ccxt
import pytest
from redis_server import RedisServer

from virtuoso_resilience.exchange import ResilientExchange, create_bybit_resilient_config
from virtuoso_resilience.shared import (
    JournalUnavailableError,
    RedisJournal,
    RedisLink,
    SqliteJournal,
    check_url,
    open_journal,
)
from virtuoso_resilience.simulator import Simulator

ORDER = ("BTC/USDT", "limit", "buy", 0.001, 1000.0)


def adapter_for(sim: Simulator) -> ResilientExchange[Any]:
    raw = ccxt.bybit({**sim.ccxt_config(), "rateLimit": 1})
    raw.timeout_on_exit = 0
    return ResilientExchange(raw, create_bybit_resilient_config())


async def test_sqlite_journal_round_trip(tmp_path: Path) -> None:
    journal = SqliteJournal(str(tmp_path / "j.db"))
    await journal.intend("a-1", "BTC/USDT", "limit", "buy", 0.5, 100.0, {"tif": "GTC"}, 1.0)
    await journal.intend("a-2", "BTC/USDT", "market", "sell", 0.25, None, {}, 2.0)
    await journal.intend("a-1", "X", "limit", "buy", 9.0, 9.0, {}, 3.0)  # same id: kept as first
    await journal.settle("a-2", "placed")
    await journal.close()
    again = SqliteJournal(str(tmp_path / "j.db"))  # what a restarted process reads
    [open_one] = await again.unsettled()
    assert (open_one.client_order_id, open_one.amount, open_one.params) == (
        "a-1",
        0.5,
        {"tif": "GTC"},
    )
    assert {i.state for i in await again.all()} == {"intended", "placed"}
    await again.close()


@pytest.mark.parametrize("amount", [math.nan, math.inf, -math.inf, True, "1"])
async def test_journal_refuses_non_numbers(tmp_path: Path, amount: Any) -> None:
    journal = SqliteJournal(str(tmp_path / "j.db"))
    with pytest.raises(ValueError, match="amount"):
        await journal.intend("a", "S", "limit", "buy", amount, 1.0, {}, 0.0)
    with pytest.raises(ValueError, match="price"):
        await journal.intend("a", "S", "limit", "buy", 1.0, math.nan, {}, 0.0)
    assert await journal.all() == []
    await journal.close()


async def test_an_unwritable_journal_sends_nothing(tmp_path: Path, sim: Simulator) -> None:
    adapter = adapter_for(sim)
    await adapter.load_markets()
    with pytest.raises(JournalUnavailableError):  # start-up cannot reconcile: it says so
        await adapter.use_journal(SqliteJournal(str(tmp_path / "missing-dir" / "j.db")))
    with pytest.raises(JournalUnavailableError, match="not sent"):
        await adapter.create_order(*ORDER)
    assert sim.stats.orders_created == 0
    assert adapter.pending_orders() == []
    await adapter.close()


async def test_intents_are_written_before_and_settled_after(tmp_path: Path, sim: Simulator) -> None:
    journal = SqliteJournal(str(tmp_path / "j.db"))
    adapter = adapter_for(sim)
    await adapter.load_markets()
    assert await adapter.use_journal(journal) == {}
    order = await adapter.create_order(*ORDER, {"clientOrderId": "w-1"})
    [intent] = await journal.all()
    assert (intent.client_order_id, intent.state) == ("w-1", "placed")
    assert order["clientOrderId"] == "w-1"
    with pytest.raises(ccxt.InvalidOrder):  # refused: settled as such
        await adapter.create_order(
            "BTC/USDT", "limit", "buy", 1e6, 1000.0, {"clientOrderId": "w-2"}
        )
    assert {i.client_order_id: i.state for i in await journal.all()} == {
        "w-1": "placed",
        "w-2": "refused",
    }
    await adapter.close()
    await journal.close()


async def test_startup_reconciles_unsettled_intents_by_client_id(
    tmp_path: Path, sim: Simulator
) -> None:
    """A process died after writing two intents: one reached the exchange, one did not."""
    path = str(tmp_path / "j.db")
    first = adapter_for(sim)
    await first.load_markets()
    await first.create_order(*ORDER, {"clientOrderId": "r-sent"})  # no journal: just placed
    await first.close()
    journal = SqliteJournal(path)
    await journal.intend("r-sent", *ORDER, {}, 1.0)
    await journal.intend("r-lost", *ORDER, {}, 2.0)
    await journal.close()
    assert sim.stats.orders_created == 1

    second = adapter_for(sim)
    await second.load_markets()
    journal = SqliteJournal(path)
    results = await second.use_journal(journal)
    assert {cid: r["clientOrderId"] for cid, r in results.items()} == {
        "r-sent": "r-sent",
        "r-lost": "r-lost",
    }
    assert sim.stats.orders_created == 2  # the lost one sent once, the other not again
    assert await journal.unsettled() == []
    assert await second.use_journal(journal) == {}  # nothing left: a second start is a no-op
    await second.close()
    await journal.close()


async def test_redis_journal_round_trip_and_outage(redis_server: RedisServer) -> None:
    link = RedisLink(redis_server.url, timeout=0.1, rejoin_interval=60.0)
    journal = RedisJournal(link, "bot-1")
    await journal.intend("x-1", *ORDER, {"a": 1}, 1.0)
    await journal.intend("x-2", "ETH/USDT", "market", "sell", 2.0, None, {}, 2.0)
    await journal.settle("x-1", "placed")
    [left] = await journal.unsettled()
    assert (left.client_order_id, left.price, left.side) == ("x-2", None, "sell")
    other = RedisJournal(RedisLink(redis_server.url), "bot-1")  # another process
    assert [i.client_order_id for i in await other.unsettled()] == ["x-2"]
    redis_server.kill()
    with pytest.raises(JournalUnavailableError, match="not sent"):  # fail closed
        await journal.intend("x-3", *ORDER, {}, 3.0)
    await link.close()


def test_journal_urls() -> None:
    assert isinstance(open_journal("sqlite:///rel.db"), SqliteJournal)
    assert open_journal("sqlite:////abs/dir/x.db").path == "/abs/dir/x.db"
    assert open_journal("sqlite:///rel.db").path == "rel.db"
    assert isinstance(open_journal("redis://127.0.0.1:1/0"), RedisJournal)
    for bad in ("http://h/x", "sqlite://", "redis:///0", "redis://:pw@h:99999/0"):
        with pytest.raises(ValueError, match=r"URL|scheme|host|path|port") as info:
            check_url(bad, frozenset({"sqlite", "redis"}))
        assert "pw" not in str(info.value)
