"""The memcached clients' exceptions: aiomcache and emcache.

Their connection failures surface as builtin ``OSError`` /
``ConnectionError`` / ``asyncio.IncompleteReadError`` / ``TimeoutError`` and
are classified by the builtin table.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from ._outcome import OutcomeKind
from ._rules import LibraryTable, Rule

__all__ = ["TABLES"]

_PERMANENT: Final = Rule(OutcomeKind.PERMANENT)
_BUSINESS: Final = Rule(OutcomeKind.BUSINESS)

_AIOMCACHE: Final[LibraryTable] = (
    # An unexpected server answer ("SERVER_ERROR ...", a failed command).
    ("ClientException", _PERMANENT),
    # The caller passed a bad key or value (too long, control characters).
    ("ValidationException", _BUSINESS),
)

_EMCACHE: Final[LibraryTable] = (
    # Every node is unhealthy or was removed: nothing was sent.
    ("ClusterNoAvailableNodes", Rule(OutcomeKind.TRANSIENT)),
    ("CommandError", _PERMANENT),  # the server answered with an error
    ("StorageCommandError", _PERMANENT),
    # add / replace / cas conditions not met, or no such key: the caller's logic.
    ("NotStoredStorageCommandError", _BUSINESS),
    ("NotFoundCommandError", _BUSINESS),
    ("AuthenticationError", _PERMANENT),
)

TABLES: Final[Mapping[str, LibraryTable]] = MappingProxyType(
    {"aiomcache.exceptions": _AIOMCACHE, "emcache.client_errors": _EMCACHE}
)
"""Module name -> table."""
