"""A time limit on one attempt or on a whole operation.

:class:`TimeoutPolicy` runs the protected call under :func:`asyncio.timeout`
(event-loop time). When the limit passes, the call is cancelled and the caller
gets :class:`~virtuoso_resilience.errors.ResilienceTimeoutError` (also a
builtin :class:`TimeoutError`), chained from the cancellation that stopped the
call. A caller's own cancellation is not a timeout: the
:class:`asyncio.CancelledError` propagates untouched.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Literal, ParamSpec, TypeVar

from .._model import ConfigModel, PositiveSeconds
from ..errors import ResilienceTimeoutError
from ._core import NO_LISTENERS, PolicyName, SingleStreamPolicy
from ._decorate import decorate

__all__ = ["TimeoutConfig", "TimeoutEvent", "TimeoutPolicy", "TimeoutScope"]

P = ParamSpec("P")
T = TypeVar("T")

TimeoutScope = Literal["attempt", "operation"]
"""``"attempt"``: the limit of one try (inside retries); ``"operation"``: the
limit of the whole operation, retries and waits included (outside retries)."""


class TimeoutConfig(ConfigModel):
    """How long a protected call may take. Times are in seconds.

    Validated on creation and on assignment; a change made at run time
    (``policy.config.seconds = 5``) applies from the next call.
    """

    name: PolicyName | None = None
    """The policy's name; filled in by the policy when left out."""
    seconds: PositiveSeconds = 10.0
    """The limit in seconds (ccxt's own default request timeout is 10 s)."""
    scope: TimeoutScope = "attempt"
    """What the limit covers: one ``"attempt"`` or the whole ``"operation"``.
    The policy bounds whatever it wraps; the scope tells a pipeline where to put
    it and is reported in :class:`ResilienceTimeoutError`."""


@dataclass(frozen=True, slots=True)
class TimeoutEvent:
    """A call was stopped by the limit of ``seconds`` (``scope``: what it covered)."""

    name: str
    seconds: float
    scope: TimeoutScope


class TimeoutPolicy(SingleStreamPolicy[TimeoutConfig, TimeoutEvent]):
    """Bounds the duration of a call.

    ``await policy.call_async(fn, *args, **kwargs)`` or ``@policy`` on an
    ``async def``. Raises :class:`ResilienceTimeoutError` (``operation`` = the
    policy's name, ``limit`` = seconds, ``scope``) when the limit passes, and
    publishes a :class:`TimeoutEvent` to the listeners (:meth:`add_listener`).
    """

    kind = "timeout"
    config_type = TimeoutConfig
    default_name = "timeout"

    __slots__ = ("_calls", "_timeouts")

    def __init__(
        self, name: str | None = None, config: TimeoutConfig | None = None, **settings: Any
    ) -> None:
        """``TimeoutPolicy("fetch", seconds=5)`` or ``TimeoutPolicy("fetch", config)``.

        ``settings`` are :class:`TimeoutConfig` fields; pass them or a config,
        not both.
        """
        self._bind(name, config, settings)
        self._open_events()
        self._calls = 0
        self._timeouts = 0

    @property
    def calls(self) -> int:
        """Calls started through this policy."""
        return self._calls

    @property
    def timeouts(self) -> int:
        """Calls stopped by the limit."""
        return self._timeouts

    async def call_async(
        self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Run ``await fn(*args, **kwargs)`` within ``config.seconds``."""
        self._calls += 1
        seconds = self._config.seconds
        deadline = asyncio.timeout(seconds)
        try:
            async with deadline:
                result = await fn(*args, **kwargs)
        except TimeoutError as exc:
            # A TimeoutError raised by the call itself before our limit passed
            # is the call's own answer: let it through as it is.
            if not deadline.expired():
                raise
            cause = exc.__cause__ if isinstance(exc.__cause__, asyncio.CancelledError) else exc
            raise self._expired(seconds) from cause
        if deadline.expired():
            # The callee swallowed the cancellation and answered after the
            # limit: still a timeout (its late value is not the call's answer).
            raise self._expired(seconds)
        return result

    def _expired(self, seconds: float) -> ResilienceTimeoutError:
        """Count a call stopped by the limit, tell the listeners; the error to raise."""
        self._timeouts += 1
        scope = self._config.scope
        if self._events is not NO_LISTENERS:
            self._events.emit(TimeoutEvent(self.name, seconds, scope))
        return ResilienceTimeoutError(self.name, seconds, scope=scope)

    def __call__(
        self, fn: Callable[P, Coroutine[Any, Any, T]]
    ) -> Callable[P, Coroutine[Any, Any, T]]:
        """Decorate an ``async def`` so every call runs under this limit."""
        return decorate(
            fn,
            self.call_async,
            attribute="timeout_policy",
            owner=self,
            label=f"timeout {self.name!r}",
        )

    def snapshot(self) -> dict[str, Any]:
        """JSON-ready metrics: the limit, its scope, calls started and timeouts."""
        return {
            "name": self.name,
            "kind": "timeout",
            "seconds": self._config.seconds,
            "scope": self._config.scope,
            "calls": self._calls,
            "timeouts": self._timeouts,
        }

    def __repr__(self) -> str:
        cfg = self._config
        return (
            f"<TimeoutPolicy {self.name!r} seconds={cfg.seconds:g} scope={cfg.scope} "
            f"calls={self._calls} timeouts={self._timeouts}>"
        )
