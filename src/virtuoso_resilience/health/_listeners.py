"""Status listeners, adapted to the one listener contract (``_events.Listeners``).

The health service publishes a :class:`~._status.HealthChange` on every change
of the overall status. What it promises its listeners (the seed's
``listener(status)``, or ``listener(status, change)``; errors logged with the
masked message) is kept by wrapping each listener in a :class:`StatusCall`,
the callable actually subscribed to the service's ``Listeners``.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from .._events import listener_name
from ._checks import describe_error
from ._status import HealthChange

__all__ = ["StatusCall", "StatusListener", "wants_change"]

log = logging.getLogger("virtuoso_resilience.health")

StatusListener = Callable[..., Any]
"""``f(status)`` or ``f(status, change)``, sync or async."""


def wants_change(listener: StatusListener) -> bool:
    """True when ``listener`` names a second positional parameter.

    A bare ``*args`` (a decorator without :func:`functools.wraps`) counts as
    one argument: such a listener gets the status only. A listener that takes
    no positional argument, or requires more than two, is a ``TypeError``.
    """
    try:
        signature = inspect.signature(listener)
    except (TypeError, ValueError):
        return False
    positional = required = 0
    star = False
    for param in signature.parameters.values():
        if param.kind is inspect.Parameter.VAR_POSITIONAL:
            star = True
        elif param.kind in (
            inspect.Parameter.POSITIONAL_ONLY,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
        ):
            positional += 1
            required += param.default is inspect.Parameter.empty
    if positional == 0 and not star:
        raise TypeError(
            f"status listener {listener_name(listener)} must accept the new status as an argument"
        )
    if required > 2:
        raise TypeError(
            f"status listener {listener_name(listener)} must accept (status) or (status, change), "
            f"not {required} required arguments"
        )
    return positional >= 2


def _log_error(listener: object, exc: BaseException) -> None:
    # Type and masked message only: a traceback would repeat the raw message
    # (an alert webhook's URL holds its token).
    log.warning(
        "status listener %s raised %s; ignored", listener_name(listener), describe_error(exc)
    )


class StatusCall:
    """``listener(status)`` / ``listener(status, change)`` as a ``Listeners`` callback.

    Called with a :class:`HealthChange`; calls the listener with the arity it
    asked for. A sync listener runs there and then. For an async one (a
    coroutine function, or an object whose ``__call__`` is one) a coroutine
    is returned that makes the call, so that ``Listeners`` runs it in the
    listener's own worker under its timeout, and nothing is left un-awaited
    when ``Listeners`` drops it. A sync function that returns an awaitable
    has it awaited the same way. An exception (``Exception``) is logged here
    with its masked message and swallowed; anything else is left to
    ``Listeners`` (logged by type, isolated).
    """

    def __init__(self, listener: StatusListener) -> None:
        if not callable(listener):
            raise TypeError(f"status listener must be callable, not {type(listener).__qualname__}")
        self.listener = listener
        self.with_change = wants_change(listener)
        self.is_async = inspect.iscoroutinefunction(listener) or (
            not inspect.isroutine(listener) and inspect.iscoroutinefunction(type(listener).__call__)
        )
        # Read by _events.listener_name(): log lines name the user's listener.
        self.__qualname__ = listener_name(listener)

    def __call__(self, change: HealthChange) -> Awaitable[None] | None:
        if self.is_async:
            return self._call_async(change)
        try:
            value = self._invoke(change)
        except Exception as exc:
            _log_error(self.listener, exc)
            return None
        if inspect.isawaitable(value):
            return self._finish(value)
        return None

    def _invoke(self, change: HealthChange) -> Any:
        if self.with_change:
            return self.listener(change.current, change)
        return self.listener(change.current)

    async def _call_async(self, change: HealthChange) -> None:
        try:
            await self._invoke(change)
        except Exception as exc:
            _log_error(self.listener, exc)

    async def _finish(self, awaitable: Awaitable[Any]) -> None:
        try:
            await awaitable
        except Exception as exc:
            _log_error(self.listener, exc)

    def __repr__(self) -> str:
        arity = "status, change" if self.with_change else "status"
        return f"<StatusCall {self.__qualname__}({arity})>"
