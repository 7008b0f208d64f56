"""Order journals: every order intent written durably before it is sent.

:class:`SqliteJournal` (the default: one embedded file, ``aiosqlite`` runs
SQLite on its own thread so the event loop never blocks; WAL with
``synchronous=FULL``: an intent is on disk when :meth:`intend` returns) and
:class:`RedisJournal` (shared by every process of a bot; as durable as the
server's ``appendfsync``). Both fail closed: an intent that cannot be
written raises :class:`JournalUnavailableError` and the order is not sent.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import unquote, urlsplit

import aiosqlite
import redis.asyncio as aioredis

from ..errors import ResilienceError
from ._link import DOWN, Down, RedisLink
from ._url import JOURNAL_SCHEMES, check_url, redact_url

__all__ = [
    "Intent",
    "JournalUnavailableError",
    "RedisJournal",
    "SqliteJournal",
    "open_journal",
]


class JournalUnavailableError(ResilienceError):
    """The journal could not write an intent: the order was not sent."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"order journal {where} unavailable: {reason}; the order was not sent")
        self.where = where


@dataclass(frozen=True, slots=True)
class Intent:
    """An order about to be sent. ``at`` is wall-clock time (seconds since the epoch)."""

    client_order_id: str
    symbol: str
    type: str
    side: str
    amount: float
    price: float | None
    params: dict[str, Any] = field(default_factory=dict)
    at: float = 0.0
    state: str = "intended"


def _check(amount: float, price: float | None) -> None:
    if not isinstance(amount, int | float) or isinstance(amount, bool) or not math.isfinite(amount):
        raise ValueError(f"order journal: amount must be a finite number, not {amount!r}")
    if price is not None and (
        not isinstance(price, int | float) or isinstance(price, bool) or not math.isfinite(price)
    ):
        raise ValueError(f"order journal: price must be a finite number or None, not {price!r}")


_SCHEMA = """
CREATE TABLE IF NOT EXISTS intents (
    client_order_id TEXT PRIMARY KEY,
    symbol TEXT NOT NULL, type TEXT NOT NULL, side TEXT NOT NULL,
    amount REAL NOT NULL, price REAL, params TEXT NOT NULL,
    at REAL NOT NULL, state TEXT NOT NULL, settled_at REAL
);
CREATE INDEX IF NOT EXISTS intents_open ON intents(state) WHERE state = 'intended';
"""


class SqliteJournal:
    """An order journal in one SQLite file (``path``)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._db: aiosqlite.Connection | None = None
        self.writes = 0

    async def _conn(self) -> aiosqlite.Connection:
        db = self._db
        if db is None:
            try:
                db = await aiosqlite.connect(self.path)
                await db.execute("PRAGMA journal_mode=WAL")
                await db.execute("PRAGMA synchronous=FULL")
                await db.executescript(_SCHEMA)
                await db.commit()
            except Exception as exc:
                raise JournalUnavailableError(self.path, type(exc).__name__) from exc
            self._db = db
        return db

    async def intend(
        self,
        client_order_id: str,
        symbol: str,
        type: str,
        side: str,
        amount: float,
        price: float | None,
        params: dict[str, Any],
        at: float,
    ) -> None:
        """Write the intent; returns once it is on disk."""
        _check(amount, price)
        db = await self._conn()
        try:
            await db.execute(
                "INSERT OR IGNORE INTO intents VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'intended', NULL)",
                (client_order_id, symbol, type, side, amount, price, json.dumps(params), at),
            )
            await db.commit()
        except Exception as exc:
            raise JournalUnavailableError(self.path, exc.__class__.__name__) from exc
        self.writes += 1

    async def settle(self, client_order_id: str, outcome: str) -> None:
        """Mark the intent settled (``"placed"``, ``"refused"``...)."""
        import time

        db = await self._conn()
        await db.execute(
            "UPDATE intents SET state = ?, settled_at = ? WHERE client_order_id = ?",
            (outcome, time.time(), client_order_id),
        )
        await db.commit()

    async def unsettled(self) -> list[Intent]:
        """Intents sent (maybe) but never settled, oldest first."""
        return await self._select("WHERE state = 'intended' ORDER BY at, rowid")

    async def all(self) -> list[Intent]:
        """Every intent, oldest first."""
        return await self._select("ORDER BY at, rowid")

    async def _select(self, where: str) -> list[Intent]:
        db = await self._conn()
        async with db.execute(
            "SELECT client_order_id, symbol, type, side, amount, price, params, at, state "
            f"FROM intents {where}"
        ) as cursor:
            rows = await cursor.fetchall()
        return [
            Intent(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]), r[7], r[8]) for r in rows
        ]

    async def close(self) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None

    def __repr__(self) -> str:
        return f"<SqliteJournal {self.path!r} writes={self.writes}>"


class RedisJournal:
    """An order journal in Redis, shared by every process (``namespace``: the bot)."""

    def __init__(self, link: RedisLink, namespace: str = "default") -> None:
        self._link = link
        self._prefix = f"virtuoso:journal:{{{namespace}}}"
        self._open = f"{self._prefix}:open"
        self.writes = 0

    def _key(self, cid: str) -> str:
        return f"{self._prefix}:order:{cid}"

    async def intend(
        self,
        client_order_id: str,
        symbol: str,
        type: str,
        side: str,
        amount: float,
        price: float | None,
        params: dict[str, Any],
        at: float,
    ) -> None:
        _check(amount, price)
        record = {
            "client_order_id": client_order_id,
            "symbol": symbol,
            "type": type,
            "side": side,
            "amount": repr(float(amount)),
            "price": "" if price is None else repr(float(price)),
            "params": json.dumps(params),
            "at": repr(at),
            "state": "intended",
        }
        key, open_key = self._key(client_order_id), self._open

        async def call(client: aioredis.Redis) -> Any:
            async with client.pipeline(transaction=True) as pipe:
                pipe.hsetnx(key, "state", "intended")
                pipe.hset(key, mapping=cast(Any, record))
                pipe.zadd(open_key, {client_order_id: at})
                return await pipe.execute()

        if await self._link.run(call) is DOWN:
            raise JournalUnavailableError(redact_url(self._link.url), "Redis is down")
        self.writes += 1

    async def settle(self, client_order_id: str, outcome: str) -> None:
        key, open_key = self._key(client_order_id), self._open

        async def call(client: aioredis.Redis) -> Any:
            async with client.pipeline(transaction=True) as pipe:
                pipe.hset(key, "state", outcome)
                pipe.zrem(open_key, client_order_id)
                pipe.expire(key, 7 * 86_400)
                return await pipe.execute()

        if await self._link.run(call) is DOWN:
            raise JournalUnavailableError(redact_url(self._link.url), "Redis is down")

    async def unsettled(self) -> list[Intent]:
        open_key = self._open

        async def call(client: aioredis.Redis) -> Any:
            cids = await client.zrange(open_key, 0, -1)
            records = []
            for cid in cids:
                records.append(await client.hgetall(self._key(str(cid))))
            return records

        records = await self._link.run(call)
        if isinstance(records, Down):
            raise JournalUnavailableError(redact_url(self._link.url), "Redis is down")
        out: list[Intent] = []
        for r in records:
            if not r:
                continue
            price = r.get("price") or ""
            out.append(
                Intent(
                    r["client_order_id"],
                    r["symbol"],
                    r["type"],
                    r["side"],
                    float(r["amount"]),
                    float(price) if price else None,
                    json.loads(r.get("params") or "{}"),
                    float(r.get("at") or 0.0),
                    r.get("state", "intended"),
                )
            )
        return out

    async def close(self) -> None:
        return None

    def __repr__(self) -> str:
        return f"<RedisJournal {self._prefix!r} writes={self.writes}>"


def open_journal(
    url: str, *, link: RedisLink | None = None, namespace: str = "default"
) -> SqliteJournal | RedisJournal:
    """The journal at ``url``: ``sqlite:///path`` or ``redis://...`` (then ``link``
    may be an existing :class:`RedisLink` to share)."""
    check_url(url, JOURNAL_SCHEMES)
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        # sqlite:///relative.db and sqlite:////absolute/path.db, as SQLAlchemy reads them
        return SqliteJournal(unquote(parts.path)[1:])
    return RedisJournal(link or RedisLink(url, name="journal"), namespace)
