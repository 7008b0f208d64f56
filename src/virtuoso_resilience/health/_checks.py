"""Health check configuration and the check types."""

from __future__ import annotations

import abc
import inspect
import itertools
import math
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Any, ClassVar, Protocol

from pydantic import Field, field_validator

from .._model import ConfigModel, Count, PositiveSeconds, check_name
from ..errors import ResilienceError
from ._status import CheckResult, ServiceStatus

__all__ = [
    "BreakerLike",
    "CircuitBreakerHealthCheck",
    "ConnectionPoolHealthCheck",
    "HealthCheck",
    "HealthCheckConfig",
    "InvalidCheckResult",
    "PoolHealthLike",
    "PoolLike",
    "SimpleHealthCheck",
    "describe_error",
]


class HealthCheckConfig(ConfigModel):
    """How one health check is scheduled and judged. Times are in seconds.

    Every field may be changed at run time (``check.config.interval = 30.0``)
    except ``depends_on``; a bad value raises
    :class:`~virtuoso_resilience.ConfigurationError` and leaves the old one.
    """

    name: str | None = None
    """A label; checks built without an explicit name take it as their name."""

    interval: PositiveSeconds = 60.0
    """Seconds between the starts of two background runs."""

    timeout: PositiveSeconds = 10.0
    """Seconds a run may take before it is cut off and counted as a failure."""

    failure_threshold: Count = 3
    """Consecutive failures that make the check UNHEALTHY (DEGRADED before that)."""

    success_threshold: Count = 1
    """Consecutive successes that make an UNHEALTHY check HEALTHY again."""

    critical: bool = False
    """A critical check that fails is CRITICAL and makes its dependants CRITICAL."""

    depends_on: Annotated[tuple[str, ...], Field(frozen=True, strict=False)] = ()
    """Names of the checks this one depends on (fixed once the config is created)."""

    @field_validator("depends_on")
    @classmethod
    def _unique_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(not name for name in value):
            raise ValueError("check names must be non-empty")
        return tuple(dict.fromkeys(value))


def _check_name(owner: str, name: object) -> str:
    return check_name(owner, name)


class HealthCheck(abc.ABC):
    """Base of every health check: a ``name``, a ``config`` and :meth:`check`.

    Subclasses implement ``async def check() -> CheckResult``. The service
    runs it under ``config.timeout`` and turns an exception or a timeout into
    a failed result, so ``check`` need not guard itself.
    """

    component_type: ClassVar[str] = "component"
    """The IETF ``componentType`` (``component``, ``datastore`` or ``system``)."""

    def __init__(self, name: str, config: HealthCheckConfig | None = None) -> None:
        self.name = _check_name(type(self).__name__, name)
        self.config = config if config is not None else HealthCheckConfig(name=name)

    @abc.abstractmethod
    async def check(self) -> CheckResult:
        """Run the check once and say what it found."""

    def __repr__(self) -> str:
        c = self.config
        deps = f" depends_on={list(c.depends_on)}" if c.depends_on else ""
        return (
            f"<{type(self).__name__} {self.name!r} interval={c.interval:g}s "
            f"timeout={c.timeout:g}s critical={c.critical}{deps}>"
        )


class InvalidCheckResult(ResilienceError, TypeError):
    """A check returned something that is not a verdict.

    Only ``True`` and ``None`` (healthy), ``False`` (unhealthy), a
    :class:`ServiceStatus` or a :class:`CheckResult` are results; anything
    else (``"DOWN"``, ``0``, a dict, a coroutine that was never awaited) is
    ambiguous, so the run fails with this error rather than pass by accident.
    The message names the check and the type returned, never the value
    (which may be a response body holding secrets).
    """

    def __init__(self, check: str, value: object) -> None:
        self.check = check
        self.returned = type(value)
        hint = (
            " (an awaitable: a check function must await it, not return it)"
            if inspect.isawaitable(value)
            else ""
        )
        super().__init__(
            f"health check {check!r} returned {type(value).__qualname__}{hint}; "
            "a check must return True, None, False, a ServiceStatus or a CheckResult"
        )


def to_result(value: object, check: str = "?") -> CheckResult:
    """Interpret what check ``check`` returned.

    ``True`` and ``None`` pass; ``False`` fails; a :class:`ServiceStatus` is
    taken as the status; a :class:`CheckResult` as it is. Anything else
    raises :class:`InvalidCheckResult` (an awaitable returned by mistake is
    closed first, so it never runs half-way).
    """
    if value is True or value is None:
        return CheckResult(ServiceStatus.HEALTHY)
    if isinstance(value, CheckResult):
        return _safe_result(value)
    if value is False:
        return CheckResult(ServiceStatus.UNHEALTHY, "check returned False")
    if isinstance(value, ServiceStatus):
        return CheckResult(value)
    if inspect.iscoroutine(value):
        value.close()  # never awaited: close it so that it does not warn later
    raise InvalidCheckResult(check, value)


class SimpleHealthCheck(HealthCheck):
    """A check made of one function, sync or async.

    ``func()`` returns ``True`` or ``None`` (pass), ``False`` (fail), a
    :class:`ServiceStatus` or a :class:`CheckResult`; anything else is a
    failed run with :class:`InvalidCheckResult` naming the check and the type
    returned (``"DOWN"`` or ``0`` never pass by accident). Raising is a
    failure. A sync function runs on the event loop: keep it quick (wrap
    blocking work in :func:`asyncio.to_thread`).
    """

    def __init__(
        self, name: str, func: Callable[[], Any], config: HealthCheckConfig | None = None
    ) -> None:
        if not callable(func):
            raise TypeError(f"SimpleHealthCheck {name!r}: func must be callable, not {func!r}")
        super().__init__(name, config)
        self.func = func

    async def check(self) -> CheckResult:
        value = self.func()
        if inspect.isawaitable(value):
            value = await value
        return to_result(value, self.name)


class PoolHealthLike(Protocol):
    """The shape of what ``pool.health()`` returns."""

    @property
    def status(self) -> object: ...  # "healthy" | "degraded" | "unhealthy" (or such an enum)

    @property
    def utilisation(self) -> float: ...

    @property
    def waiting(self) -> int: ...

    @property
    def error_rate(self) -> float: ...

    @property
    def reason(self) -> str | None: ...


class PoolLike(Protocol):
    """A connection pool as seen by :class:`ConnectionPoolHealthCheck`."""

    @property
    def name(self) -> str: ...

    def health(self) -> PoolHealthLike | Awaitable[PoolHealthLike]: ...


class BreakerLike(Protocol):
    """A circuit breaker as seen by :class:`CircuitBreakerHealthCheck`."""

    @property
    def name(self) -> str: ...

    @property
    def state(self) -> object: ...  # an enum whose .value is "closed", "open", ...

    def snapshot(self) -> object: ...  # a mapping, or an object with as_dict()


def _value(obj: object) -> str:
    return str(getattr(obj, "value", obj))


_POOL_STATUS = {
    "healthy": ServiceStatus.HEALTHY,
    "degraded": ServiceStatus.DEGRADED,
    "unhealthy": ServiceStatus.UNHEALTHY,
}


class ConnectionPoolHealthCheck(HealthCheck):
    """Reports a connection pool's own ``health()`` verdict.

    ``"healthy"``/``"degraded"``/``"unhealthy"`` map to HEALTHY/DEGRADED/
    UNHEALTHY; the message is the pool's ``reason``; details carry
    ``utilisation``, ``waiting`` and ``error_rate``. The check is named
    ``name``, else ``config.name``, else ``"pool.<pool name>"``.
    """

    def __init__(
        self, pool: PoolLike, config: HealthCheckConfig | None = None, *, name: str | None = None
    ) -> None:
        if name is None:
            name = config.name if config is not None and config.name else f"pool.{pool.name}"
        super().__init__(name, config)
        self.pool = pool

    async def check(self) -> CheckResult:
        health = self.pool.health()
        if inspect.isawaitable(health):
            health = await health
        raw = _value(health.status)
        status = _POOL_STATUS.get(raw, ServiceStatus.UNKNOWN)
        message = health.reason or ""
        if status is ServiceStatus.UNKNOWN:
            message = f"pool reported unknown status {raw!r}" + (f": {message}" if message else "")
        return CheckResult(
            status,
            message,
            {
                "pool": self.pool.name,
                "utilisation": health.utilisation,
                "waiting": health.waiting,
                "error_rate": health.error_rate,
            },
        )


class CircuitBreakerHealthCheck(HealthCheck):
    """Reports a circuit breaker's state.

    ``closed``/``disabled`` are HEALTHY, ``half_open`` is DEGRADED, ``open``
    and ``forced_open`` are DEGRADED (an open breaker is a warning: it is
    protecting the system) or UNHEALTHY with ``fail_when_open=True``.
    Details are the breaker's ``snapshot()``. The check is named ``name``,
    else ``config.name``, else ``"circuit_breaker.<breaker name>"``.
    """

    def __init__(
        self,
        breaker: BreakerLike,
        config: HealthCheckConfig | None = None,
        *,
        fail_when_open: bool = False,
        name: str | None = None,
    ) -> None:
        if name is None:
            name = (
                config.name
                if config is not None and config.name
                else f"circuit_breaker.{breaker.name}"
            )
        super().__init__(name, config)
        self.breaker = breaker
        self.fail_when_open = fail_when_open

    async def check(self) -> CheckResult:
        state = _value(self.breaker.state)
        if state in ("closed", "disabled"):
            status = ServiceStatus.HEALTHY
        elif state == "half_open":
            status = ServiceStatus.DEGRADED
        elif state in ("open", "forced_open"):
            status = ServiceStatus.UNHEALTHY if self.fail_when_open else ServiceStatus.DEGRADED
        else:
            status = ServiceStatus.UNKNOWN
        message = "" if status is ServiceStatus.HEALTHY else f"circuit breaker is {state}"
        return CheckResult(status, message, _snapshot_dict(self.breaker.snapshot()))


def _snapshot_dict(snapshot: object) -> dict[str, Any]:
    as_dict = getattr(snapshot, "as_dict", None)
    if callable(as_dict):
        snapshot = as_dict()
    if isinstance(snapshot, Mapping):
        return dict(snapshot)
    return {}


_MAX_ERROR_CHARS = 200
"""The longest message :func:`describe_error` returns (after the type name)."""
_SCRUB_WINDOW = 1000
"""How many characters of a message the scrubber ever looks at.

The message is cut to this many characters *before* any pattern runs, so a
1 MB exchange body echoed into an exception costs the same as a short one.
The window is wider than the output because masking and whitespace folding
shorten the text.
"""
_SECRET_VALUE = re.compile(
    r"(?i)\b((?:api[_-]?key|apikey|secret|token|password|passwd|passphrase|signature|"
    r"sign|auth[a-z_]*|access[_-]?key|private[_-]?key)[\"']?\s?[:=]\s?[\"']?)[^\"'&\s,;}]+"
)
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+")
# scheme://[userinfo@]host[:port] then path, query, fragment up to a space or quote.
# The scheme is at most 32 characters: an unbounded one made every start inside
# "a.a.a.a..." scan to the end of the text (quadratic).
_URL = re.compile(
    r"(?i)\b([a-z][a-z0-9+.-]{0,31}://)"  # scheme
    r"(?:[^\s/?#@'\"<>]*@)?"  # userinfo (dropped)
    r"([^\s/?#'\"<>\\]*)"  # host[:port]
    r"[^\s'\"<>]*"  # path, query, fragment (dropped)
)


def _scrub(text: str) -> str:
    """Mask URLs and secret values in ``text`` (already cut, whitespace folded).

    Every pattern is linear in ``len(text)``; callers pass at most
    ``_SCRUB_WINDOW`` characters.
    """
    text = _URL.sub(r"\1\2", text)
    text = _BEARER.sub(r"\1 ***", text)
    return _SECRET_VALUE.sub(r"\1***", text)


def _drop_cut_url(word: str) -> str:
    """``word`` (cut at its end) without its last URL, which may be cut short.

    A URL cut before the ``@`` that ends its user info would show the user
    info as the host.
    """
    at = word.rfind("://")
    if at < 0:
        return word
    start = at
    while start > 0 and (word[start - 1] in _SCHEME_CHARS):
        start -= 1
    return word[:start]


_SCHEME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-")


_MAX_DETAIL_DEPTH = 16
"""Nesting levels of a check's ``details`` kept; deeper ones are replaced."""
_MAX_DETAIL_ITEMS = 1000
"""Entries of one mapping or list in a check's ``details`` kept."""
_MAX_DETAIL_CHARS = 1000
"""Characters of one string in a check's ``details`` kept."""


def _safe_result(result: CheckResult) -> CheckResult:
    """``result`` fit for logs, snapshots and health JSON.

    A check's own ``message`` gets what :func:`describe_error` does to an
    exception's (cut first, URLs reduced to their host, secret values
    masked); its ``details`` become strict JSON (NaN and infinities become
    ``None``) and bounded (depth, items, string length). Unchanged results
    are returned as they are.
    """
    message = result.message
    safe_message = safe_text(message if isinstance(message, str) else str(message))
    details = _json_safe(result.details, 0)
    if safe_message == message and details == result.details:
        return result
    return CheckResult(result.status, safe_message, details if isinstance(details, dict) else {})


def _json_safe(value: Any, depth: int) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return value if len(value) <= _MAX_DETAIL_CHARS else value[:_MAX_DETAIL_CHARS] + "..."
    if isinstance(value, Mapping | list | tuple) and depth >= _MAX_DETAIL_DEPTH:
        return "<nested too deep>"
    if isinstance(value, Mapping):
        return {
            (key if isinstance(key, str) else str(key)): _json_safe(item, depth + 1)
            for key, item in itertools.islice(value.items(), _MAX_DETAIL_ITEMS)
        }
    if isinstance(value, list | tuple):
        return [_json_safe(item, depth + 1) for item in value[:_MAX_DETAIL_ITEMS]]
    return value


def safe_text(text: str) -> str:
    """``text`` safe to show: cut to 200 characters (only the first 1,000 are
    ever looked at), whitespace folded, URLs reduced to their host, secret
    values masked. What :func:`describe_error` does to an exception's message."""
    cut = mid_word = False
    if len(text) > _SCRUB_WINDOW:
        text = text.lstrip()
        if len(text) > _SCRUB_WINDOW:
            cut = True
            mid_word = not (text[_SCRUB_WINDOW - 1].isspace() or text[_SCRUB_WINDOW].isspace())
            text = text[:_SCRUB_WINDOW]
    words = text.split()
    if mid_word and words:
        words[-1] = _drop_cut_url(words[-1])
    text = _scrub(" ".join(words))
    if cut or len(text) > _MAX_ERROR_CHARS:
        text = text[: _MAX_ERROR_CHARS - 3] + "..."
    return text


def describe_error(exc: BaseException) -> str:
    """``"<TypeName>: <message>"`` for an exception, safe to show.

    Every URL is reduced to ``scheme://host[:port]`` (no user info, path,
    query or fragment: a webhook's path is its secret), values that follow
    secret-looking keys (``apiKey=``, ``"secret": ``, ``signature=``,
    ``Bearer ...``) are masked, best effort, and the text is cut to 200
    characters. Only the first 1,000 characters of the message are ever
    looked at, so the cost does not grow with the message (an exchange's
    whole response body echoed into a ccxt error).
    """
    try:
        text = str(exc)
    except Exception:  # an exception whose __str__ fails still has a type
        text = ""
    name = type(exc).__name__
    if not isinstance(text, str):
        text = ""
    text = safe_text(text)
    return f"{name}: {text}" if text else name
