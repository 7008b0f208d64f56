"""Shared state for the processes of one bot: Redis-backed budget, breaker state, order journal.

Opt-in with ``ResilienceConfiguration.shared_state_url`` (environment
``VIRTUOSO_SHARED_STATE_URL``); the order journal lives at
``order_journal_url`` (``sqlite:///path`` by default, or ``redis://...``).
See ``docs/scaling.md``.
"""

from ._breaker import SharedBreaker
from ._budget import SharedBudget
from ._config import BudgetWindow, SharedBudgetConfig
from ._health import SharedStateHealthCheck
from ._journal import Intent, JournalUnavailableError, RedisJournal, SqliteJournal, open_journal
from ._link import DOWN, Down, RedisLink, Script
from ._open import SharedState, open_shared_state
from ._url import JOURNAL_SCHEMES, SHARED_SCHEMES, check_url, redact_url

__all__ = [
    "DOWN",
    "JOURNAL_SCHEMES",
    "SHARED_SCHEMES",
    "BudgetWindow",
    "Down",
    "Intent",
    "JournalUnavailableError",
    "RedisJournal",
    "RedisLink",
    "Script",
    "SharedBreaker",
    "SharedBudget",
    "SharedBudgetConfig",
    "SharedState",
    "SharedStateHealthCheck",
    "SqliteJournal",
    "check_url",
    "open_journal",
    "open_shared_state",
    "redact_url",
]
