"""The in-memory fallback tier: a bounded LRU with TTL and dirty marks.

Synchronous and clock-free: every method takes ``now`` (the cache's clock,
seconds), so the whole tier runs on virtual time in tests.

An entry is the stored bytes (or ``None``: a *tombstone*, a delete) with its
expiry. A *dirty* entry is a write or a delete the backend has not
acknowledged; it is kept until it has been written back (or has expired).
Limits (``max_entries``, ``max_bytes``) are enforced on every insert by
evicting the least recently used entries, clean ones first. When only dirty
entries are left over the byte limit, the oldest dirty *value* is turned
into a dirty tombstone (``downgraded``): on recovery the backend then loses
the key rather than keeping a value the application has replaced. When the
entry limit still cannot be met, the oldest dirty entry is dropped
(``dirty_dropped``): the only way the tier loses a write, and it is counted.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

__all__ = ["Entry", "FallbackStore"]

# Approximate per-entry overhead (dict slot, entry object, key object) in bytes.
ENTRY_OVERHEAD = 120


@dataclass(slots=True)
class Entry:
    """One key in the fallback tier. Times are clock seconds."""

    data: bytes | None
    """The stored bytes; ``None`` for a tombstone (a delete not yet replayed)."""
    expires_at: float | None
    """When the value expires here and in the backend (``None``: never)."""
    fresh_until: float | None
    """When it stops being fresh (before ``expires_at`` only under a
    stale-while-revalidate rule)."""
    stored_at: float
    """When the value was written here or last confirmed by the backend."""
    dirty: bool
    """Not yet acknowledged by the backend."""
    version: int
    """Bumped on every change; a write-back only cleans the version it sent."""
    size: int
    """Bytes counted against ``max_bytes``."""


class FallbackStore:
    """Bounded LRU + TTL map of key -> :class:`Entry`."""

    __slots__ = (
        "_version",
        "bytes",
        "dirty",
        "dirty_dropped",
        "downgraded",
        "entries",
        "evictions",
        "max_bytes",
        "max_entries",
    )

    def __init__(self, max_entries: int, max_bytes: int) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.entries: OrderedDict[str, Entry] = OrderedDict()
        """Key -> entry, least recently used first (read it; change it through the methods)."""
        self.dirty: dict[str, None] = {}
        """Keys with a dirty entry, oldest change first."""
        self._version = 0
        self.bytes = 0
        self.evictions = 0
        self.downgraded = 0
        self.dirty_dropped = 0

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, key: str) -> bool:
        return key in self.entries

    def peek(self, key: str) -> Entry | None:
        """The entry for ``key`` without touching its LRU position."""
        return self.entries.get(key)

    def get(self, key: str) -> Entry | None:
        """The entry for ``key`` (marked most recently used), expired or not."""
        entry = self.entries.get(key)
        if entry is not None:
            self.entries.move_to_end(key)
        return entry

    # ----------------------------------------------------------------- writes

    def put(
        self,
        key: str,
        data: bytes | None,
        expires_at: float | None,
        now: float,
        *,
        dirty: bool,
        fresh_until: float | None = None,
    ) -> int:
        """Store ``data`` (``None``: a tombstone) for ``key``; returns the new version."""
        self._version += 1
        size = ENTRY_OVERHEAD + len(key) + (0 if data is None else len(data))
        old = self.entries.pop(key, None)
        if old is not None:
            self.bytes -= old.size
        self.entries[key] = Entry(
            data,
            expires_at,
            expires_at if fresh_until is None else fresh_until,
            now,
            dirty,
            self._version,
            size,
        )
        self.bytes += size
        if dirty:
            self.dirty.pop(key, None)
            self.dirty[key] = None
        elif old is not None and old.dirty:
            del self.dirty[key]
        self._enforce(key)
        return self._version

    def confirm(self, key: str, now: float) -> None:
        """The backend confirmed the clean value held for ``key``: it is fresh again."""
        entry = self.entries.get(key)
        if entry is not None and not entry.dirty:
            entry.stored_at = now

    def discard(self, key: str) -> None:
        """Forget ``key`` entirely (dirty or not)."""
        entry = self.entries.pop(key, None)
        if entry is not None:
            self.bytes -= entry.size
            if entry.dirty:
                del self.dirty[key]

    def discard_clean(self, key: str) -> None:
        """Forget ``key`` unless it holds a dirty change."""
        entry = self.entries.get(key)
        if entry is not None and not entry.dirty:
            del self.entries[key]
            self.bytes -= entry.size

    def mark_clean(self, key: str, version: int) -> bool:
        """The backend acknowledged ``version`` of ``key``. A tombstone is then
        removed, a value becomes clean. Returns False when a newer change
        superseded it (the key stays dirty)."""
        entry = self.entries.get(key)
        if entry is None or entry.version != version:
            return False
        if entry.dirty:
            del self.dirty[key]
            entry.dirty = False
        if entry.data is None:
            del self.entries[key]
            self.bytes -= entry.size
        return True

    def clear(self) -> None:
        self.entries.clear()
        self.dirty.clear()
        self.bytes = 0

    # -------------------------------------------------------------- eviction

    def _over(self) -> bool:
        return len(self.entries) > self.max_entries or self.bytes > self.max_bytes

    def _enforce(self, keep: str) -> None:
        if not self._over():
            return
        # Clean entries first, least recently used first (the new key last).
        entries = self.entries
        for key in list(entries):
            if not self._over():
                return
            entry = entries[key]
            if entry.dirty or key == keep:
                continue
            del entries[key]
            self.bytes -= entry.size
            self.evictions += 1
        # Only dirty entries (and the new one) left: shrink the oldest dirty values.
        for key in list(self.dirty):
            if self.bytes <= self.max_bytes:
                break
            entry = entries[key]
            if entry.data is None or key == keep:
                continue
            new_size = ENTRY_OVERHEAD + len(key)
            self.bytes -= entry.size - new_size
            entry.data = None
            entry.size = new_size
            self._version += 1
            entry.version = self._version
            self.downgraded += 1
        # Still too many: drop the oldest dirty changes (lost writes, counted).
        for key in list(self.dirty):
            if not self._over():
                break
            if key == keep:
                continue
            entry = entries.pop(key)
            del self.dirty[key]
            self.bytes -= entry.size
            self.dirty_dropped += 1
        if self._over() and keep in entries:
            # The new entry alone exceeds the limits: it cannot be kept.
            entry = entries.pop(keep)
            self.bytes -= entry.size
            if entry.dirty:
                del self.dirty[keep]
                self.dirty_dropped += 1
            else:
                self.evictions += 1
