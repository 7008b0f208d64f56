"""From the configuration's two settings to the shared state's objects."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import ResilienceConfiguration
from ._journal import RedisJournal, SqliteJournal, open_journal
from ._link import RedisLink

__all__ = ["SharedState", "open_shared_state"]


@dataclass(frozen=True, slots=True)
class SharedState:
    """``link``: the Redis link (None: ``shared_state_url`` unset, all state
    in-process); ``journal``: the order journal at ``order_journal_url``."""

    link: RedisLink | None
    journal: SqliteJournal | RedisJournal

    async def close(self) -> None:
        await self.journal.close()
        if self.link is not None:
            await self.link.close()


def open_shared_state(
    config: ResilienceConfiguration, *, namespace: str = "default"
) -> SharedState:
    """The link and journal ``config`` asks for (no connection is made yet).
    A Redis journal on the same URL as the shared state shares its link."""
    url = config.shared_state_url
    link = None if url is None else RedisLink(url.get_secret_value())
    journal_url = config.journal_url()
    same = link is not None and url is not None and journal_url == url.get_secret_value()
    journal = open_journal(journal_url, link=link if same else None, namespace=namespace)
    return SharedState(link, journal)
