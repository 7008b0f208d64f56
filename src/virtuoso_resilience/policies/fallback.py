"""Fallbacks: an answer when the protected call fails.

A :class:`Fallback` holds one or more *tiers*, tried in order after the
primary call fails: each is a fixed value or a callable (sync or async) that
receives the primary exception. The first tier that answers wins; a tier that
raises hands over to the next. When every tier fails, the **original** error
is raised, with one note per failed tier (:pep:`678`, ``add_note``) naming
the tier and the type of its error (never its message, which may hold a
URL with a password); its ``__cause__`` and traceback are left as they were.

Which failures trigger the fallback is decided by the outcome classifier:
by default every failure except business errors (``InsufficientFunds``,
``InvalidOrder``...), whose answer a fallback value would hide, and, for a
write (``write=True``), except ``AMBIGUOUS`` outcomes (a timed-out order
placement: the order may exist) unless ``on`` lists them explicitly.
:class:`asyncio.CancelledError` (and any other non-``Exception``) always
propagates and never triggers a fallback.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Generic, ParamSpec, TypeVar, cast

from pydantic import field_validator

from .._model import ConfigModel
from ..classify import DEFAULT_CLASSIFIER, Classifier, OutcomeKind
from ..errors import ConfigurationError, FieldError
from ._core import NO_LISTENERS, PolicyName, SingleStreamPolicy
from ._decorate import decorate

__all__ = [
    "DEFAULT_FALLBACK_ON",
    "DEFAULT_WRITE_FALLBACK_ON",
    "PRIMARY",
    "Fallback",
    "FallbackConfig",
    "FallbackEvent",
    "FallbackResult",
]

P = ParamSpec("P")
T = TypeVar("T")

PRIMARY: Final = "primary"
"""``FallbackResult.source`` when the primary call answered."""

DEFAULT_FALLBACK_ON: Final = frozenset(
    kind for kind in OutcomeKind if kind not in (OutcomeKind.SUCCESS, OutcomeKind.BUSINESS)
)
"""Every failure kind except :attr:`OutcomeKind.BUSINESS`: the default ``on`` of a read."""

DEFAULT_WRITE_FALLBACK_ON: Final = DEFAULT_FALLBACK_ON - {OutcomeKind.AMBIGUOUS}
"""The default ``on`` of a write (``write=True``): :data:`DEFAULT_FALLBACK_ON`
without :attr:`OutcomeKind.AMBIGUOUS`, so that an order that may have been
placed is never answered by a fallback value."""

_MISSING: Final[Any] = object()


class FallbackConfig(ConfigModel):
    """Which failures a fallback answers.

    Validated on creation and on assignment; a change made at run time
    (``fallback.config.on = frozenset({OutcomeKind.TRANSIENT})``) applies from
    the next failure. :attr:`triggers` is the set in force.
    """

    name: PolicyName | None = None
    """The fallback's name; filled in by the fallback when left out."""
    on: frozenset[OutcomeKind] | None = None
    """Outcome kinds that trigger the fallback (any iterable of
    :class:`OutcomeKind` or their lower-case values is accepted). Others
    propagate unchanged. Must not contain ``SUCCESS``. ``None`` (the
    default): :data:`DEFAULT_FALLBACK_ON` for a read,
    :data:`DEFAULT_WRITE_FALLBACK_ON` (no ``AMBIGUOUS``) for a write."""
    write: bool = False
    """The protected call is a write (order placement): the classifier reports
    failures after which the server may have acted as ``AMBIGUOUS``, and
    those trigger the fallback only if ``on`` lists ``AMBIGUOUS`` explicitly."""
    exchange_id: str | None = None
    """Exchange whose error-code overrides the classifier applies."""

    @field_validator("on", mode="before")
    @classmethod
    def _as_kinds(cls, value: Any) -> Any:
        if isinstance(value, str | bytes) or not isinstance(value, Iterable):
            return value
        kinds: list[Any] = []
        for item in value:
            if isinstance(item, str):
                try:
                    item = OutcomeKind(item)
                except ValueError:
                    pass
            kinds.append(item)
        return frozenset(kinds)

    @field_validator("on")
    @classmethod
    def _no_success(cls, value: frozenset[OutcomeKind] | None) -> frozenset[OutcomeKind] | None:
        if value is not None and OutcomeKind.SUCCESS in value:
            raise ValueError("SUCCESS is not a failure; use failure kinds only")
        return value

    @property
    def triggers(self) -> frozenset[OutcomeKind]:
        """The outcome kinds that trigger the fallback now (``on`` resolved)."""
        if self.on is not None:
            return self.on
        return DEFAULT_WRITE_FALLBACK_ON if self.write else DEFAULT_FALLBACK_ON


@dataclass(frozen=True, slots=True)
class FallbackResult(Generic[T]):
    """What :meth:`Fallback.call_with_result_async` returns.

    ``source`` is ``"primary"`` or the name of the tier that answered;
    ``error`` the type name of the primary call's exception and ``outcome``
    its classified kind (both ``None`` when the primary answered).
    """

    value: T
    source: str = PRIMARY
    error: str | None = None
    outcome: OutcomeKind | None = None

    @property
    def from_fallback(self) -> bool:
        """Whether a fallback tier (not the primary call) answered."""
        return self.source != PRIMARY


@dataclass(frozen=True, slots=True)
class FallbackEvent:
    """The primary call failed in a way the fallback answers.

    ``tier`` is the tier that answered (``None`` when every tier failed and
    the original error was raised); ``error`` the primary exception's type
    name, ``outcome`` its classified kind; ``failed_tiers`` the tiers that
    raised before, in order.
    """

    name: str
    tier: str | None
    error: str
    outcome: OutcomeKind
    failed_tiers: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class _Tier:
    name: str
    answer: Any
    call: bool


def _tiers(
    value: Any, func: Callable[..., Any] | None, tiers: Sequence[tuple[str, Any]] | None
) -> tuple[_Tier, ...]:
    given = [value is not _MISSING, func is not None, tiers is not None]
    if sum(given) != 1:
        raise TypeError("Fallback takes exactly one of value=, func= or tiers=")
    if value is not _MISSING:
        return (_Tier("value", value, False),)
    if func is not None:
        if not callable(func):
            raise ConfigurationError(
                [FieldError("Fallback", "func", type(func).__name__, "must be callable")]
            )
        return (_Tier("func", func, True),)
    assert tiers is not None
    result: list[_Tier] = []
    errors: list[FieldError] = []
    seen: set[str] = set()
    for index, tier in enumerate(tiers):
        if not isinstance(tier, tuple) or len(tier) != 2:
            errors.append(
                FieldError(
                    "Fallback",
                    f"tiers[{index}]",
                    type(tier).__name__,
                    "must be a (name, answer) pair",
                )
            )
            continue
        name, answer = tier
        if not isinstance(name, str) or not name or name == PRIMARY or name in seen:
            errors.append(
                FieldError(
                    "Fallback",
                    f"tiers[{index}]",
                    name,
                    f"name must be a unique non-empty string other than {PRIMARY!r}",
                )
            )
            continue
        seen.add(name)
        result.append(_Tier(name, answer, callable(answer)))
    if not result and not errors:
        errors.append(FieldError("Fallback", "tiers", [], "must hold at least one tier"))
    if errors:
        raise ConfigurationError(errors)
    return tuple(result)


class Fallback(SingleStreamPolicy[FallbackConfig, FallbackEvent]):
    """Answers with a fallback when the protected call fails.

    Build it with exactly one of:

    * ``Fallback(value=x)``: answer ``x`` (tier ``"value"``);
    * ``Fallback(func=f)``: answer ``f(error)``, awaited if it returns an
      awaitable (tier ``"func"``);
    * ``Fallback(tiers=[("stale_cache", f), ("default", x)])``: try each tier
      in order; a callable tier is called with the error, anything else is
      the answer itself (wrap a callable *value* in a lambda).

    With ``pass_args=True`` callables receive ``(error, *args, **kwargs)``, the
    primary call's arguments, e.g. to look a symbol up in a cache.

    ``await fallback.call_async(fn, *args, **kwargs)`` returns the value,
    ``call_with_result_async`` a :class:`FallbackResult` saying where it came
    from; ``@fallback`` decorates an ``async def``. Tiers should answer with
    the primary call's type. Each answered (or unanswerable) failure is
    published to the listeners (:meth:`add_listener`) as a :class:`FallbackEvent`.
    """

    kind = "fallback"
    config_type = FallbackConfig
    default_name = "fallback"

    __slots__ = (
        "_by_tier",
        "_classifier",
        "_exhausted",
        "_pass_args",
        "_passed_through",
        "_primary_failures",
        "_successes",
        "_tiers",
    )

    def __init__(
        self,
        name: str | None = None,
        config: FallbackConfig | None = None,
        *,
        value: Any = _MISSING,
        func: Callable[..., Any] | None = None,
        tiers: Sequence[tuple[str, Any]] | None = None,
        pass_args: bool = False,
        classifier: Classifier = DEFAULT_CLASSIFIER,
        **settings: Any,
    ) -> None:
        """``settings`` are :class:`FallbackConfig` fields; pass them or a
        config, not both."""
        self._tiers = _tiers(value, func, tiers)
        self._bind(name, config, settings)
        self._open_events()
        self._classifier = classifier
        self._pass_args = pass_args
        self._successes = 0
        self._primary_failures = 0
        self._passed_through = 0
        self._by_tier = [0] * len(self._tiers)
        self._exhausted = 0

    @property
    def tiers(self) -> tuple[str, ...]:
        """The tier names, in the order they are tried."""
        return tuple(t.name for t in self._tiers)

    # ------------------------------------------------------------------- call

    async def call_async(
        self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """``await fn(*args, **kwargs)``, or the first tier's answer if it fails
        in a way listed in ``config.on``."""
        return (await self.call_with_result_async(fn, *args, **kwargs)).value

    async def call_with_result_async(
        self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs
    ) -> FallbackResult[T]:
        """Like :meth:`call_async`, but say where the value came from.

        The one implementation: :meth:`call_async` is this, unwrapped."""
        try:
            result = await fn(*args, **kwargs)
        except Exception as exc:
            error = exc
        else:
            self._successes += 1
            return FallbackResult(result)
        answer, source, kind = await self._recover(error, args, kwargs)
        return FallbackResult(cast(T, answer), source, type(error).__name__, kind)

    async def _recover(
        self, error: Exception, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[Any, str, OutcomeKind]:
        """The first tier's answer, or raise ``error`` (called outside any
        ``except`` block, so ``error.__context__`` is left alone)."""
        cfg = self._config
        kind = self._classifier.classify(error, write=cfg.write, exchange_id=cfg.exchange_id).kind
        if kind not in cfg.triggers:
            self._passed_through += 1
            raise error
        self._primary_failures += 1
        failed: list[tuple[str, Exception]] = []
        for index, tier in enumerate(self._tiers):
            try:
                if tier.call:
                    if self._pass_args:
                        answer = tier.answer(error, *args, **kwargs)
                    else:
                        answer = tier.answer(error)
                    if inspect.isawaitable(answer):
                        answer = await answer
                else:
                    answer = tier.answer
            except Exception as tier_error:
                failed.append((tier.name, tier_error))
                continue
            self._by_tier[index] += 1
            if self._events is not NO_LISTENERS:
                self._events.emit(
                    FallbackEvent(
                        self.name,
                        tier.name,
                        type(error).__name__,
                        kind,
                        tuple(name for name, _ in failed),
                    )
                )
            return answer, tier.name, kind
        self._exhausted += 1
        if self._events is not NO_LISTENERS:
            self._events.emit(
                FallbackEvent(
                    self.name, None, type(error).__name__, kind, tuple(n for n, _ in failed)
                )
            )
        for tier_name, problem in failed:
            # The type only: a tier's message may hold secrets (a cache URL
            # with a password, a signed query string).
            error.add_note(
                f"fallback {self.name!r}: tier {tier_name!r} failed: {type(problem).__name__}"
            )
        raise error

    def __call__(
        self, fn: Callable[P, Coroutine[Any, Any, T]]
    ) -> Callable[P, Coroutine[Any, Any, T]]:
        """Decorate an ``async def`` so its failures are answered by this fallback."""
        return decorate(
            fn, self.call_async, attribute="fallback", owner=self, label=f"fallback {self.name!r}"
        )

    # ---------------------------------------------------------------- metrics

    def snapshot(self) -> dict[str, Any]:
        """JSON-ready metrics.

        ``on`` lists the kinds that trigger the fallback now
        (:attr:`FallbackConfig.triggers`); ``primary_failures`` counts failures
        that triggered the fallback, ``passed_through`` those propagated
        because their kind is not in it; ``fallbacks_by_tier`` counts answers
        per tier and ``failures`` the calls where every tier failed (the
        original error was raised).
        """
        by_tier = {t.name: n for t, n in zip(self._tiers, self._by_tier, strict=True)}
        return {
            "name": self.name,
            "kind": "fallback",
            "tiers": list(by_tier),
            "on": sorted(k.value for k in self._config.triggers),
            "primary_successes": self._successes,
            "primary_failures": self._primary_failures,
            "passed_through": self._passed_through,
            "fallbacks": sum(self._by_tier),
            "fallbacks_by_tier": by_tier,
            "failures": self._exhausted,
        }

    def __repr__(self) -> str:
        return (
            f"<Fallback {self.name!r} tiers={list(self.tiers)} "
            f"primary_successes={self._successes} fallbacks={sum(self._by_tier)} "
            f"failures={self._exhausted}>"
        )
