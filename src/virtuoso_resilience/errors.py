"""The library's own exceptions.

Every exception raised by Virtuoso Resilience itself derives from
:class:`ResilienceError`. Messages name the component and the numbers a user
needs; they never contain secrets.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "BulkheadFullError",
    "CircuitOpenError",
    "ConfigurationError",
    "FieldError",
    "PoolExhaustedError",
    "RateLimitTimeoutError",
    "ResilienceError",
    "ResilienceTimeoutError",
    "shown",
]

_SHOWN_CHARS = 200
"""Characters of a rejected value's ``repr`` shown in an error message."""
_SHOWN_INT_BITS = 128
"""Ints longer than this (about 39 digits) are described, not printed."""


def shown(value: object) -> str:
    """``repr(value)`` for an error message, bounded whatever the value.

    A 1 MB list is cut to its first 200 characters, an int of 400 digits is
    described by its size (Python refuses to print one of over 4,300 digits at
    all), and a value whose ``repr`` fails (a hostile ``__repr__``, a
    structure nested too deep) is described by its type. Never raises.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        bits = value.bit_length()
        if bits > _SHOWN_INT_BITS:
            digits = int(bits * 0.30103) + 1  # log10(2): within one digit
            return f"<an int of about {digits} digits>"
    try:
        text = repr(value)
    except Exception:  # RecursionError, a hostile __repr__, a huge nested int
        return f"<a {type(value).__name__} that cannot be shown>"
    if not isinstance(text, str):
        return f"<a {type(value).__name__}>"
    return text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS] + "..."


class ResilienceError(Exception):
    """Base class of every error raised by Virtuoso Resilience."""


class CircuitOpenError(ResilienceError):
    """A circuit breaker rejected the call without running it.

    ``retry_after`` is the number of seconds until the breaker admits a trial
    call; ``None`` when unknown (half-open with every trial permit taken) or
    when it will not by itself (forced open).
    """

    def __init__(self, name: str, state: str, retry_after: float | None) -> None:
        # The message is built only when shown: rejections are on a hot path.
        super().__init__(name, state, retry_after)
        self.name = name
        self.state = state
        self.retry_after = retry_after

    def __str__(self) -> str:
        if self.retry_after is not None:
            when = f"next trial in {self.retry_after:.3f}s"
        elif self.state == "half_open":
            when = "trial calls in progress"
        else:
            when = "until it is reset"
        return f"circuit breaker {self.name!r} is {self.state}; call rejected ({when})"


class ResilienceTimeoutError(ResilienceError, builtins.TimeoutError):
    """An operation exceeded its time limit (seconds).

    It is also a :class:`TimeoutError` (and so an :class:`asyncio.TimeoutError`).
    """

    def __init__(self, operation: str, limit: float, *, scope: str = "attempt") -> None:
        self.operation = operation
        self.limit = limit
        self.scope = scope
        super().__init__(f"{operation!r} timed out after {limit:g}s ({scope} limit)")


class BulkheadFullError(ResilienceError):
    """A bulkhead had no free slot and no room (or time) to wait for one."""

    def __init__(self, name: str, max_concurrent: int, max_waiting: int, reason: str) -> None:
        self.name = name
        self.max_concurrent = max_concurrent
        self.max_waiting = max_waiting
        self.reason = reason
        super().__init__(
            f"bulkhead {name!r} is full (max_concurrent={max_concurrent}, "
            f"max_waiting={max_waiting}): {reason}"
        )


class RateLimitTimeoutError(ResilienceError):
    """A rate limiter could not grant tokens within the caller's wait limit."""

    def __init__(self, name: str, cost: float, max_wait: float, needed_wait: float | None) -> None:
        self.name = name
        self.cost = cost
        self.max_wait = max_wait
        self.needed_wait = needed_wait
        need = "unknown" if needed_wait is None else f"{needed_wait:.3f}s"
        super().__init__(
            f"rate limiter {name!r} cannot grant cost {cost:g} within {max_wait:g}s "
            f"(would need {need})"
        )


class PoolExhaustedError(ResilienceError):
    """A connection pool had no free connection within the configured wait."""

    def __init__(
        self, name: str, max_connections: int, max_connections_per_host: int, waited: float
    ) -> None:
        self.name = name
        self.max_connections = max_connections
        self.max_connections_per_host = max_connections_per_host
        self.waited = waited
        super().__init__(
            f"connection pool {name!r} exhausted: no connection within {waited:.3f}s "
            f"(max_connections={max_connections}, "
            f"max_connections_per_host={max_connections_per_host})"
        )


@dataclass(frozen=True, slots=True)
class FieldError:
    """One invalid configuration field: where, what was given, what is allowed."""

    model: str
    field: str
    value: object
    allowed: str

    def __str__(self) -> str:
        field = self.field
        if len(field) > _SHOWN_CHARS or not field.isprintable():
            # An unknown key from loosely typed data (a 1 MB key, a key with CR/LF).
            field = shown(field)
        return f"{self.model}.{field}={shown(self.value)} is invalid: {self.allowed}"


class ConfigurationError(ResilienceError, ValueError):
    """One or more configuration values were rejected.

    ``errors`` lists every bad field; the message names each field, the value
    given (secrets are masked) and what is allowed.
    """

    def __init__(self, errors: Sequence[FieldError]) -> None:
        self.errors = tuple(errors)
        if len(self.errors) == 1:
            message = str(self.errors[0])
        else:
            message = f"{len(self.errors)} invalid configuration values:\n" + "\n".join(
                f"  - {e}" for e in self.errors
            )
        super().__init__(message)

    @property
    def fields(self) -> tuple[str, ...]:
        """The names of the rejected fields, in order."""
        return tuple(e.field for e in self.errors)
