"""redis-py's exceptions (``redis.exceptions``, shared by ``redis.asyncio``)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from ._outcome import OutcomeKind
from ._rules import LibraryTable, Rule

__all__ = ["TABLES"]

_TRANSIENT: Final = Rule(OutcomeKind.TRANSIENT)  # refused: nothing was done
_MAYBE_SENT: Final = Rule(OutcomeKind.TRANSIENT, ambiguous_on_write=True)
_PERMANENT: Final = Rule(OutcomeKind.PERMANENT)
_BUSINESS: Final = Rule(OutcomeKind.BUSINESS)

_REDIS: Final[LibraryTable] = (
    ("RedisError", _PERMANENT),
    ("ConnectionError", _MAYBE_SENT),
    # Credentials: for a cache, a permanent failure (count it, fall back, do not retry).
    ("AuthenticationError", _PERMANENT),
    ("AuthorizationError", _PERMANENT),
    ("ExternalAuthProviderError", _PERMANENT),
    ("NoPermissionError", _PERMANENT),
    ("AuthenticationWrongNumberOfArgsError", _PERMANENT),
    ("BusyLoadingError", _TRANSIENT),  # refused while loading the dataset
    ("MaxConnectionsError", _TRANSIENT),  # client pool exhausted: nothing was sent
    ("TimeoutError", _MAYBE_SENT),
    ("InvalidResponse", _MAYBE_SENT),
    ("ResponseError", _PERMANENT),
    ("DataError", _PERMANENT),
    ("NoScriptError", _PERMANENT),
    ("OutOfMemoryError", _PERMANENT),
    ("ExecAbortError", _PERMANENT),
    ("ModuleError", _PERMANENT),
    ("NoSuchFieldsetError", _PERMANENT),
    ("ReadOnlyError", _TRANSIENT),  # a replica during failover refused the write
    ("ClusterError", _MAYBE_SENT),
    ("ClusterDownError", _TRANSIENT),
    ("MasterDownError", _TRANSIENT),
    ("TryAgainError", _TRANSIENT),
    ("AskError", _TRANSIENT),
    ("MovedError", _TRANSIENT),
    ("ClusterCrossSlotError", _PERMANENT),
    ("PubSubError", _PERMANENT),
    ("WatchError", _BUSINESS),  # optimistic-lock conflict: the caller's transaction logic
    ("LockError", _BUSINESS),
    ("LockNotOwnedError", _BUSINESS),
    ("ChildDeadlockedError", _PERMANENT),
    ("RedisClusterException", _PERMANENT),
    ("SlotNotCoveredError", _TRANSIENT),  # cluster topology is changing
    ("CrossSlotTransactionError", _PERMANENT),
    ("InvalidPipelineStack", _PERMANENT),
    ("IncorrectPolicyType", _PERMANENT),
)

_SENTINEL: Final[LibraryTable] = (
    ("MasterNotFoundError", _TRANSIENT),
    ("SlaveNotFoundError", _TRANSIENT),
)

TABLES: Final[Mapping[str, LibraryTable]] = MappingProxyType(
    {
        "redis.exceptions": _REDIS,
        "redis.sentinel": _SENTINEL,
        "redis.asyncio.sentinel": _SENTINEL,
    }
)
"""Module name -> table."""
