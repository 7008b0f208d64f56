"""The one policy core: name and configuration binding, events, snapshots.

Every policy (circuit breaker, retry, timeout, bulkhead, rate limiter,
fallback) derives from :class:`Policy`, which does three things once:

- **binding**: :meth:`Policy._bind` validates the policy's name, takes the
  given configuration or builds one from keyword settings, fills in the
  configuration's name or refuses a configuration named for another policy;
- **events**: each event stream is a :class:`~virtuoso_resilience._events.Listeners`
  hub (the one listener contract). A stream nobody listens to holds the
  shared, empty :data:`NO_LISTENERS`, so a policy publishes with
  ``if hub is not NO_LISTENERS: hub.emit(event)`` — the same test as
  ``bool(hub)``, as a C-level identity check instead of a Python
  ``__bool__`` call on the hot path — and builds an event only when someone
  listens;
- **snapshots**: ``snapshot()`` is the policy's metrics now and
  :meth:`Policy.snapshot_dict` their JSON-ready form, the same for every policy.

A policy's configuration holds it only weakly (``ConfigModel.subscribe``
keeps bound methods as weak references), so one configuration shared by many
policies never keeps a dropped policy alive.
"""

from __future__ import annotations

import asyncio
import reprlib
from collections.abc import Callable, Mapping
from typing import Annotated, Any, ClassVar, Generic, TypeVar

from pydantic import AfterValidator, Field

from .._events import Listeners, ListenerStats
from .._model import ConfigModel
from ..errors import ConfigurationError, FieldError

__all__ = [
    "MAX_NAME_LENGTH",
    "NO_LISTENERS",
    "Policy",
    "PolicyName",
    "SingleStreamPolicy",
    "check_name",
    "name_conflict",
    "shown",
]

C = TypeVar("C", bound=ConfigModel)
E = TypeVar("E")

MAX_NAME_LENGTH = 200
"""The longest policy name accepted (names appear in logs, metrics and reprs)."""
_NAME_RULE = f"must be 1 to {MAX_NAME_LENGTH} printable characters (no control characters)"


class _NoListeners(Listeners[Any]):
    """The shared empty hub: it can never be subscribed to."""

    __slots__ = ()

    def add(self, listener: Callable[[Any], Any]) -> Callable[[Any], Any]:
        raise RuntimeError("NO_LISTENERS is shared: subscribe through the policy's add_listener")


NO_LISTENERS: Listeners[Any] = _NoListeners("no listeners")
"""The hub of every stream nobody listens to: shared, always empty (false).
A stream holds its own hub while it has listeners and this sentinel
otherwise (:meth:`Policy._subscribe` / :meth:`Policy._unsubscribe` keep that
true), so ``hub is not NO_LISTENERS`` means ``bool(hub)``. Saves a hub per
stream per policy (10,000 breakers with no listeners allocate none)."""


def shown(value: object) -> str:
    """``repr(value)`` fit for an error message: short, and never raising.

    A caller's bad value goes into the error that refuses it; a 1 MB string
    or a 5,000-digit int (whose ``repr`` raises ``ValueError`` in CPython)
    must not make that error huge or break it.
    """
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"<int of {value.bit_length()} bits>"
    return reprlib.repr(value)


def check_name(model: str, name: object) -> str:
    """``name`` if it is a usable policy name, else a :class:`ConfigurationError`.

    A name is a non-empty string of at most :data:`MAX_NAME_LENGTH` printable
    characters (no newlines or control characters: names go into log lines
    and metric labels).
    """
    if not isinstance(name, str):
        raise ConfigurationError(
            [FieldError(model, "name", type(name).__name__, "must be a string")]
        )
    if not name or len(name) > MAX_NAME_LENGTH or not name.isprintable():
        shown = name if len(name) <= 40 else name[:40] + "..."
        raise ConfigurationError(
            [
                FieldError(
                    model,
                    "name",
                    shown,
                    _NAME_RULE,
                )
            ]
        )
    return name


def _printable(name: str) -> str:
    if not name.isprintable():
        raise ValueError(_NAME_RULE)
    return name


PolicyName = Annotated[
    str, Field(min_length=1, max_length=MAX_NAME_LENGTH), AfterValidator(_printable)
]
"""The type of a configuration's ``name`` field: what :func:`check_name` accepts."""


def name_conflict(model: str, existing: str, wanted: str) -> ConfigurationError:
    """The error for a configuration already named for another policy."""
    return ConfigurationError([FieldError(model, "name", existing, f"must be {wanted!r}")])


class Policy(Generic[C]):
    """The shared base of every policy: name, configuration, events, snapshot.

    Subclasses set :attr:`kind` (``"circuit_breaker"``, ``"bulkhead"``...),
    :attr:`config_type` and :attr:`default_name`, call :meth:`_bind` first in
    ``__init__`` and make their hubs with :meth:`_hub`.
    """

    __slots__ = ("__weakref__", "_config", "_hubs", "name")
    # _hubs: stream name -> its hub, made on the first subscription and kept
    # (its counts outlive its listeners); None until then.

    kind: ClassVar[str] = "policy"
    """What the policy is, as shown in snapshots and log lines."""
    config_type: ClassVar[type[ConfigModel]]
    """The configuration class."""
    default_name: ClassVar[str] = "policy"
    """The name used when neither the caller nor the configuration gives one."""

    name: str
    _config: C
    _hubs: dict[str, Listeners[Any]] | None

    def _bind(self, name: str | None, config: C | None, settings: Mapping[str, Any]) -> C:
        """Set ``self.name`` and ``self._config`` from what the caller gave.

        - ``config`` and ``settings`` are exclusive (:class:`TypeError`);
        - without ``config`` one is built from ``settings`` (and the name);
        - the name is ``name``, else the configuration's, else
          :attr:`default_name`; a configuration without a name gets it, one
          with another name is refused (:class:`ConfigurationError`).
        """
        label = self.config_type.__name__
        if name is not None:
            check_name(label, name)
        if config is None:
            data = dict(settings)
            if name is not None:
                if "name" in data and data["name"] != name:
                    raise name_conflict(label, data["name"], name)
                data["name"] = name
            config = self.config_type(**data)  # type: ignore[assignment]
            assert config is not None
        elif settings:
            raise TypeError(
                f"pass either a {label} or keyword settings, not both "
                f"(got {', '.join(sorted(settings))})"
            )
        elif not isinstance(config, self.config_type):
            raise TypeError(f"config must be a {label}, not {type(config).__name__}")
        current = getattr(config, "name", None)
        if name is None:
            name = current if current is not None else self.default_name
            check_name(label, name)
        if current is None:
            config.name = name
        elif current != name:
            raise name_conflict(label, current, name)
        self.name = name
        self._config = config
        self._hubs = None
        return config

    @property
    def config(self) -> C:
        """The live configuration; changes made to it at run time apply as
        its class documents."""
        return self._config

    # ----------------------------------------------------------------- events

    def _subscribe(self, stream: str, listener: Callable[[Any], Any]) -> Listeners[Any]:
        """Add ``listener`` to ``stream``'s hub (made on first use); returns the
        hub, which the policy stores as the stream's publisher."""
        hubs = self._hubs
        if hubs is None:
            hubs = self._hubs = {}
        hub = hubs.get(stream)
        if hub is None:
            owner = f"{self.kind.replace('_', ' ')} {self.name!r}"
            hub = hubs[stream] = Listeners(f"{owner} {stream}" if stream else owner)
        hub.add(listener)
        return hub

    def _unsubscribe(
        self, stream: str, listener: Callable[[Any], Any]
    ) -> tuple[bool, Listeners[Any]]:
        """Remove ``listener`` from ``stream``: (whether it was subscribed, the
        stream's publisher now — :data:`NO_LISTENERS` once nobody is left)."""
        hub = None if self._hubs is None else self._hubs.get(stream)
        if hub is None:
            return False, NO_LISTENERS
        removed = hub.remove(listener)
        return removed, hub if hub else NO_LISTENERS

    def _all_hubs(self) -> tuple[Listeners[Any], ...]:
        return () if self._hubs is None else tuple(self._hubs.values())

    def listener_stats(self) -> ListenerStats:
        """What happened to this policy's events (every stream summed)."""
        stats = [hub.stats() for hub in self._all_hubs()]
        return ListenerStats(
            listeners=sum(s.listeners for s in stats),
            delivered=sum(s.delivered for s in stats),
            failed=sum(s.failed for s in stats),
            timed_out=sum(s.timed_out for s in stats),
            dropped=sum(s.dropped for s in stats),
            pending=sum(s.pending for s in stats),
        )

    async def drain_listeners(self, within: float | None = None) -> bool:
        """Wait (at most ``within`` seconds) until every queued event of this
        policy reached its async listeners; True when none is left pending."""
        hubs = self._all_hubs()
        if not hubs:
            return True
        drained = await asyncio.gather(*(hub.drain(within) for hub in hubs))
        return all(drained)

    def close_listeners(self) -> None:
        """Cancel pending async deliveries (listeners stay subscribed)."""
        for hub in self._all_hubs():
            hub.close()

    # --------------------------------------------------------------- snapshot

    def snapshot(self) -> Any:
        """The policy's metrics now (each policy documents its shape)."""
        raise NotImplementedError

    def snapshot_dict(self) -> dict[str, Any]:
        """The snapshot as JSON-ready data (what the monitoring API serialises)."""
        snap = self.snapshot()
        as_dict: Callable[[], dict[str, Any]] | None = getattr(snap, "as_dict", None)
        return as_dict() if as_dict is not None else dict(snap)


class SingleStreamPolicy(Policy[C], Generic[C, E]):
    """A policy with one event stream: ``add_listener(listener)``."""

    __slots__ = ("_events",)

    _events: Listeners[E]

    def _open_events(self) -> None:
        self._events = NO_LISTENERS

    def add_listener(self, listener: Callable[[E], Any]) -> Callable[[E], Any]:
        """Call ``listener(event)`` for each event (a plain or a coroutine
        function; see :mod:`virtuoso_resilience._events` for the contract).
        Returns the listener, so this works as a decorator."""
        self._events = self._subscribe("", listener)
        return listener

    def remove_listener(self, listener: Callable[[E], Any]) -> bool:
        """Stop calling ``listener``; returns whether it was subscribed."""
        removed, self._events = self._unsubscribe("", listener)
        return removed
