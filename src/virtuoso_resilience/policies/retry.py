"""Retry policies.

A :class:`RetryPolicy` runs an async callable and, when the outcome
classifier calls the failure retryable, runs it again after a backoff delay,
within a maximum number of attempts, an optional overall deadline and a
Finagle-style retry budget.

The success path of the first attempt is: call, await, count, return. The
clock, the classifier, the backoff and the budget are only touched once an
attempt has failed (or, with ``max_elapsed`` set, one clock read per call).
"""

from __future__ import annotations

import random
import reprlib
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Annotated, Any, Final, ParamSpec, TypeVar, cast, overload

from pydantic import Field, field_validator, model_validator

from .._model import (
    ConfigModel,
    Count,
    FiniteFloat,
    NonNegativeFloat,
    PositiveSeconds,
    RuleError,
    Seconds,
)
from ..classify import DEFAULT_CLASSIFIER, Classifier, Outcome, OutcomeKind
from ..clock import MONOTONIC, Clock
from ..errors import ConfigurationError, FieldError
from ._backoff import Backoff, BackoffStrategy, JitterMode
from ._budget import RetryBudget
from ._core import MAX_NAME_LENGTH, NO_LISTENERS, PolicyName, SingleStreamPolicy, shown
from ._decorate import decorate

__all__ = [
    "BackoffStrategy",
    "JitterMode",
    "RetryBudget",
    "RetryCall",
    "RetryConfig",
    "RetryEvent",
    "RetryMetrics",
    "RetryPolicy",
    "retry",
]

P = ParamSpec("P")
T = TypeVar("T")

_TRANSIENT = OutcomeKind.TRANSIENT
_AMBIGUOUS = OutcomeKind.AMBIGUOUS
_DEFAULT_RETRY_ON: frozenset[OutcomeKind] = frozenset(
    {_TRANSIENT, OutcomeKind.RATE_LIMITED, OutcomeKind.REJECTED}
)
_REJECTED_RESULT = Outcome(_TRANSIENT, reason="result rejected by retry_on_result")

_FIRST: Final[Any] = object()
"""``_retrying``'s ``error`` when the first attempt has not run yet."""

_RETRY_ON_ALLOWED = (
    "must be a set of OutcomeKind (or their string values) other than 'success', or None"
)


class RetryConfig(ConfigModel):
    """How a :class:`RetryPolicy` retries. Times are in seconds.

    Validated on creation and on assignment; a rejected value raises
    :class:`~virtuoso_resilience.ConfigurationError` and leaves the old value
    in place. A change made at run time (``policy.config.max_attempts = 5``)
    applies from the next call.

    ``max_retries`` (``max_attempts - 1``) is accepted by the constructor
    (``RetryConfig(max_retries=3)``) and is a settable property.

    ``base_delay <= max_delay`` is checked on creation and on every
    assignment (the one cross-field rule mechanism: a model validator raising
    :class:`~virtuoso_resilience._model.RuleError`); to raise both, assign
    ``max_delay`` first.
    """

    name: PolicyName = "retry"
    """The policy's name, shown in its repr, metrics and logs."""
    max_attempts: Count = 4
    """Total attempts, the first one included."""
    base_delay: Seconds = 1.0
    """Backoff base delay (seconds)."""
    max_delay: PositiveSeconds = 30.0
    """Upper bound of one backoff delay (seconds); also the longest Retry-After honoured."""
    multiplier: Annotated[FiniteFloat, Field(ge=1)] = 2.0
    """Growth factor of the exponential strategy."""
    strategy: BackoffStrategy = Field(default=BackoffStrategy.EXPONENTIAL, strict=False)
    """How the delay grows: fixed, linear, exponential or decorrelated_jitter."""
    jitter: JitterMode = Field(default=JitterMode.FULL, strict=False)
    """Randomisation of the delay: none, full or equal (ignored by decorrelated_jitter)."""
    max_elapsed: PositiveSeconds | None = None
    """Overall deadline from the start of the call (seconds); None: no deadline."""
    idempotent: bool = False
    """Whether repeating the operation is harmless: AMBIGUOUS outcomes are then retried."""
    write: bool = False
    """Whether the operation has side effects (an order placement): passed to the classifier,
    which then reports timeouts and dropped connections as AMBIGUOUS."""
    retry_on: frozenset[OutcomeKind] | None = Field(default=None, strict=False)
    """Outcome kinds to retry; None: TRANSIENT, RATE_LIMITED and REJECTED (refused locally
    by an open breaker or a full bulkhead). AMBIGUOUS is added when ``idempotent`` is true."""
    retry_on_result: Callable[[Any], bool] | None = None
    """Predicate on a successful result: true means "try again" (e.g. a "try later" reply)."""
    exchange_id: str | None = None
    """Exchange whose error-code overrides the classifier applies."""
    budget_ratio: Annotated[NonNegativeFloat, Field(le=100)] | None = 0.2
    """Retries earned per call; None disables the retry budget."""
    budget_ttl: Annotated[Seconds, Field(ge=1, le=60)] = 10.0
    """Window of the retry budget (seconds)."""
    budget_min_retries_per_second: NonNegativeFloat = 1.0
    """Floor of the retry budget, so that low-traffic callers can retry."""

    @field_validator("retry_on", mode="before")
    @classmethod
    def _retry_on_kinds(cls, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, str | bytes) or not isinstance(value, Iterable):
            raise ValueError(_RETRY_ON_ALLOWED)
        kinds: set[OutcomeKind] = set()
        for item in value:
            try:
                kind = item if isinstance(item, OutcomeKind) else OutcomeKind(item)
            except (TypeError, ValueError):
                raise ValueError(
                    f"{_RETRY_ON_ALLOWED}; {reprlib.repr(item)} is not an OutcomeKind"
                ) from None
            if kind is OutcomeKind.SUCCESS:
                raise ValueError(f"{_RETRY_ON_ALLOWED} (SUCCESS cannot be retried)")
            kinds.add(kind)
        return frozenset(kinds)

    @field_validator("retry_on_result", mode="before")
    @classmethod
    def _predicate(cls, value: Any) -> Any:
        if value is not None and not callable(value):
            raise ValueError("must be a callable taking the result and returning a bool, or None")
        return value

    @model_validator(mode="before")
    @classmethod
    def _max_retries_alias(cls, data: Any) -> Any:
        if not isinstance(data, dict) or "max_retries" not in data:
            return data
        data = dict(data)
        retries = data.pop("max_retries")
        if type(retries) is not int or retries < 0:
            raise RuleError({"max_retries": retries}, "must be an integer >= 0")
        attempts = retries + 1
        if "max_attempts" in data and data["max_attempts"] != attempts:
            raise RuleError(
                {"max_retries": retries},
                f"conflicts with max_attempts={data['max_attempts']!r} "
                "(max_retries is max_attempts - 1)",
            )
        data["max_attempts"] = attempts
        return data

    @model_validator(mode="after")
    def _delays_ordered(self) -> RetryConfig:
        if self.base_delay > self.max_delay:
            raise RuleError(
                {"base_delay": self.base_delay, "max_delay": self.max_delay},
                f"base_delay ({self.base_delay:g}) must be <= max_delay ({self.max_delay:g})",
            )
        return self

    @property
    def max_retries(self) -> int:
        """Retries after the first attempt: ``max_attempts - 1`` (settable)."""
        return self.max_attempts - 1

    @max_retries.setter
    def max_retries(self, value: int) -> None:
        _check_max_retries(value)
        self.max_attempts = value + 1

    def backoff(self) -> Backoff:
        """The :class:`Backoff` schedule these settings describe."""
        return Backoff(self.strategy, self.base_delay, self.max_delay, self.multiplier, self.jitter)


def _check_max_retries(value: Any) -> None:
    if type(value) is not int or value < 0:
        raise ConfigurationError(
            [FieldError("RetryConfig", "max_retries", value, "must be an integer >= 0")]
        )


@dataclass(frozen=True, slots=True)
class RetryEvent:
    """A retry is about to happen: published before the backoff sleep (an
    async listener runs on its own worker; the sleep never waits for it).

    ``attempt`` is the number of the attempt that just failed (1 = the first
    call), ``delay`` the seconds about to be slept, ``outcome`` what the
    classifier said, ``error`` the failing exception's type name (``None``
    when a result was rejected by ``retry_on_result``), ``policy`` the name.
    """

    attempt: int
    delay: float
    outcome: Outcome
    error: str | None
    policy: str = ""


@dataclass(frozen=True, slots=True)
class RetryMetrics:
    """A retry policy's counters at one moment. :meth:`as_dict` is JSON-ready.

    A call "fails" when it raises, or returns a result that ``retry_on_result``
    still rejects after the last attempt. Cancelled calls are not counted.
    """

    name: str
    calls: int
    """Finished calls."""
    success_without_retry: int
    success_with_retry: int
    failed_without_retry: int
    failed_with_retry: int
    retries: int
    """Retries made (attempts after the first)."""
    attempts: dict[int, int]
    """Finished calls by number of attempts made."""
    success_rate_by_attempt: dict[int, float]
    """For attempt ``n``: calls that succeeded on attempt ``n`` / calls that made attempt ``n``."""
    success_rate: float | None
    """Successful calls / finished calls (None before the first call)."""
    total_backoff_seconds: float
    not_retryable: int
    """Calls given up because the classifier called the failure not retryable."""
    exhausted: int
    """Calls given up because ``max_attempts`` was reached."""
    gave_up_on_deadline: int
    """Calls given up because the next backoff would end after ``max_elapsed``."""
    gave_up_on_retry_after: int
    """Calls given up because a Retry-After wait exceeded ``max_delay`` or the deadline."""
    budget_exhausted: int
    """Calls given up because the retry budget was empty."""
    budget: dict[str, float | int] | None = field(default=None)
    """The retry budget's state (None when disabled)."""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready mapping (attempt numbers as string keys)."""
        data = {name: getattr(self, name) for name in self.__dataclass_fields__}
        data["attempts"] = {str(k): v for k, v in self.attempts.items()}
        data["success_rate_by_attempt"] = {
            str(k): v for k, v in self.success_rate_by_attempt.items()
        }
        return data


class RetryPolicy(SingleStreamPolicy[RetryConfig, RetryEvent]):
    """Runs async callables again on retryable failures.

    ``config`` (or keyword settings, the fields of :class:`RetryConfig`)
    says how; ``clock`` supplies time and sleep (seconds); ``classifier``
    decides what a failure means (default: the library's); ``rng`` is the
    random source of the jitter (inject a seeded :class:`random.Random` for
    determinism).

    Use ``await policy.call_async(fn, *args, **kwargs)``, or decorate an
    ``async def`` with ``@policy``. Each retry is published to the listeners
    (:meth:`add_listener`) as a :class:`RetryEvent`.
    """

    kind = "retry"
    config_type = RetryConfig
    default_name = "retry"

    __slots__ = (
        "_attempts",
        "_backoff_seconds",
        "_budget",
        "_budget_exhausted",
        "_budget_key",
        "_classifier",
        "_clock",
        "_deposited",
        "_exhausted",
        "_failed_first",
        "_failed_retry",
        "_gave_up_deadline",
        "_gave_up_retry_after",
        "_not_retryable",
        "_ok_at",
        "_ok_first",
        "_ok_retry",
        "_retries",
        "_rng",
        "_slow_calls",
    )

    def __init__(
        self,
        config: RetryConfig | None = None,
        *,
        clock: Clock = MONOTONIC,
        classifier: Classifier | None = None,
        rng: random.Random | None = None,
        **config_kwargs: Any,
    ) -> None:
        self._bind(None, config, config_kwargs)
        self._open_events()
        self._clock = clock
        self._classifier = DEFAULT_CLASSIFIER if classifier is None else classifier
        self._rng = random.Random() if rng is None else rng
        self._budget: RetryBudget | None = None
        self._budget_key: tuple[float, float, float] | None = None
        # Hot-path counter: the only thing a first-try success touches.
        self._ok_first = 0
        # Failure-path counters.
        self._slow_calls = 0
        self._deposited = 0
        self._ok_retry = 0
        self._failed_first = 0
        self._failed_retry = 0
        self._retries = 0
        self._attempts: dict[int, int] = {}
        self._ok_at: dict[int, int] = {}
        self._backoff_seconds = 0.0
        self._not_retryable = 0
        self._exhausted = 0
        self._gave_up_deadline = 0
        self._gave_up_retry_after = 0
        self._budget_exhausted = 0
        self._current_budget()

    # ------------------------------------------------------------- calling

    async def call_async(
        self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Await ``fn(*args, **kwargs)``, retrying it as configured; return its result.

        Raises the last error when the policy gives up (not retryable, attempts
        exhausted, deadline, Retry-After too long, budget empty). With
        ``retry_on_result`` set, the last result is returned when attempts run
        out. :class:`asyncio.CancelledError` propagates at once, uncounted.

        This is the first attempt's fast path; everything after a failure is
        :meth:`_retrying`, which :class:`RetryCall` runs from the start.
        """
        config = self._config
        started = None if config.max_elapsed is None else self._clock.now()
        try:
            result = await fn(*args, **kwargs)
        except Exception as exc:
            return await self._retrying(fn, args, kwargs, exc, None, started, None, None)
        if config.retry_on_result is not None and config.retry_on_result(result):
            return await self._retrying(fn, args, kwargs, None, result, started, None, None)
        self._ok_first += 1
        return result

    def with_options(
        self, *, idempotent: bool | None = None, write: bool | None = None
    ) -> RetryCall:
        """A view of this policy with per-call ``idempotent`` / ``write`` settings.

        ``await policy.with_options(write=True, idempotent=True).call_async(fn, ...)``
        shares the policy's configuration and metrics; ``None`` keeps the
        configured value.
        """
        for argument, value in (("idempotent", idempotent), ("write", write)):
            if value is not None and type(value) is not bool:
                raise TypeError(
                    f"with_options({argument}={shown(value)}): {argument} must be True, False "
                    f"or None, not {type(value).__name__}"
                )
        return RetryCall(self, idempotent, write)

    def __call__(self, fn: Callable[P, Awaitable[T]]) -> Callable[P, Coroutine[Any, Any, T]]:
        """Decorate an ``async def`` so that every call goes through this policy."""
        return decorate(
            fn,
            self.call_async,
            attribute="retry_policy",
            owner=self,
            label=f"retry policy {self.name!r}",
        )

    # ------------------------------------------------------------- failure path

    async def _retrying(
        self,
        fn: Callable[..., Awaitable[T]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        error: Exception | None,
        result: Any,
        started: float | None,
        idempotent: bool | None,
        write: bool | None,
    ) -> T:
        """Everything after a first attempt that failed or returned a rejected
        result; with ``error`` :data:`_FIRST`, the first attempt too."""
        config = self._config
        clock = self._clock
        accept = config.retry_on_result
        if error is _FIRST:
            if config.max_elapsed is not None:
                started = clock.now()
            try:
                result = await fn(*args, **kwargs)
            except Exception as exc:
                error = exc
            else:
                error = None
                if accept is None or not accept(result):
                    self._ok_first += 1
                    return cast(T, result)
        self._slow_calls += 1
        classify = self._classifier.classify
        write = config.write if write is None else write
        idempotent = config.idempotent if idempotent is None else idempotent
        retry_on = _DEFAULT_RETRY_ON if config.retry_on is None else config.retry_on
        if idempotent and _AMBIGUOUS not in retry_on:
            retry_on = retry_on | {_AMBIGUOUS}
        exchange_id = config.exchange_id
        max_attempts = config.max_attempts
        max_delay = config.max_delay
        deadline: float | None = None
        if config.max_elapsed is not None:
            deadline = (clock.now() if started is None else started) + config.max_elapsed
        backoff = config.backoff()
        rng = self._rng
        budget = self._current_budget()
        attempt = 1
        previous = 0.0
        while True:
            # -- decide whether, and after how long, to try again
            if error is not None:
                outcome = classify(error, write=write, exchange_id=exchange_id)
                if outcome.kind not in retry_on:
                    self._not_retryable += 1
                    break
            else:
                outcome = _REJECTED_RESULT
            if attempt >= max_attempts:
                self._exhausted += 1
                break
            now = clock.now() if deadline is not None else 0.0
            if outcome.retry_after is not None:
                delay = max(outcome.retry_after, 0.0)
                if not delay <= max_delay or (deadline is not None and now + delay > deadline):
                    self._gave_up_retry_after += 1
                    break
            else:
                delay = backoff.delay(attempt, previous, rng)
                if deadline is not None and now + delay > deadline:
                    self._gave_up_deadline += 1
                    break
            receipt: int | None = None
            if budget is not None:
                pending = self._ok_first + self._slow_calls - self._deposited
                if pending:
                    self._deposited += pending
                    budget.deposit(pending)
                receipt = budget.withdraw()
                if receipt is None:
                    self._budget_exhausted += 1
                    break
            # -- back off (a cancelled backoff gives its budget token back)
            events = self._events
            if events is not NO_LISTENERS:
                events.emit(
                    RetryEvent(
                        attempt,
                        delay,
                        outcome,
                        None if error is None else type(error).__name__,
                        self.name,
                    )
                )
            try:
                await clock.sleep(delay)
            except BaseException:
                if budget is not None:
                    budget.refund(receipt)
                raise
            self._backoff_seconds += delay
            previous = delay
            attempt += 1
            self._retries += 1
            # -- try again
            try:
                result = await fn(*args, **kwargs)
            except Exception as exc:
                error = exc
                continue
            error = None
            if accept is not None and accept(result):
                continue
            self._ok_retry += 1
            self._attempts[attempt] = self._attempts.get(attempt, 0) + 1
            self._ok_at[attempt] = self._ok_at.get(attempt, 0) + 1
            return cast(T, result)
        # -- give up: raise the last error, or return the last (rejected) result
        if attempt == 1:
            self._failed_first += 1
        else:
            self._failed_retry += 1
            self._attempts[attempt] = self._attempts.get(attempt, 0) + 1
        if error is not None:
            raise error
        return cast(T, result)

    def _current_budget(self) -> RetryBudget | None:
        config = self._config
        ratio = config.budget_ratio
        if ratio is None:
            self._budget = None
            self._budget_key = None
            return None
        key = (ratio, config.budget_ttl, config.budget_min_retries_per_second)
        old = self._budget
        if key != self._budget_key or old is None:
            # The calls counted but not yet deposited arrived since the old
            # budget's last deposit: the new budget spreads them over that
            # time, as the old one would have. Without an old budget (the
            # first one, or the budget was off) they are dropped.
            if old is None:
                self._deposited = self._ok_first + self._slow_calls
            self._budget = RetryBudget(
                ratio=ratio,
                ttl=config.budget_ttl,
                min_retries_per_second=config.budget_min_retries_per_second,
                clock=self._clock,
                last_deposit_at=None if old is None else old.last_deposit_at,
            )
            self._budget_key = key
        return self._budget

    # ------------------------------------------------------------- metrics

    @property
    def calls(self) -> int:
        """Finished calls (successful or not; cancelled calls are not counted)."""
        return self._ok_first + self._ok_retry + self._failed_first + self._failed_retry

    @property
    def retries(self) -> int:
        """Retries made so far."""
        return self._retries

    @property
    def budget(self) -> RetryBudget | None:
        """The retry budget in use (None when ``budget_ratio`` is None)."""
        return self._current_budget()

    @property
    def metrics(self) -> RetryMetrics:
        """A frozen snapshot of the counters, with rates derived now."""
        first = self._ok_first + self._failed_first
        attempts = dict(self._attempts)
        if first:
            attempts[1] = first
        attempts = dict(sorted(attempts.items()))
        ok_at = dict(self._ok_at)
        ok_at[1] = self._ok_first
        rates: dict[int, float] = {}
        reached = 0
        for n in range(max(attempts, default=0), 0, -1):
            reached += attempts.get(n, 0)
            rates[n] = ok_at.get(n, 0) / reached
        calls = self.calls
        successes = self._ok_first + self._ok_retry
        budget = self._current_budget()
        return RetryMetrics(
            name=self._config.name,
            calls=calls,
            success_without_retry=self._ok_first,
            success_with_retry=self._ok_retry,
            failed_without_retry=self._failed_first,
            failed_with_retry=self._failed_retry,
            retries=self._retries,
            attempts=attempts,
            success_rate_by_attempt=dict(sorted(rates.items())),
            success_rate=successes / calls if calls else None,
            total_backoff_seconds=self._backoff_seconds,
            not_retryable=self._not_retryable,
            exhausted=self._exhausted,
            gave_up_on_deadline=self._gave_up_deadline,
            gave_up_on_retry_after=self._gave_up_retry_after,
            budget_exhausted=self._budget_exhausted,
            budget=None if budget is None else budget.snapshot(),
        )

    def snapshot(self) -> dict[str, Any]:
        """JSON-ready metrics plus the main settings."""
        data = self.metrics.as_dict()
        config = self._config
        data["config"] = {
            "max_attempts": config.max_attempts,
            "strategy": config.strategy.value,
            "jitter": config.jitter.value,
            "base_delay": config.base_delay,
            "max_delay": config.max_delay,
            "multiplier": config.multiplier,
            "max_elapsed": config.max_elapsed,
            "idempotent": config.idempotent,
            "write": config.write,
            "budget_ratio": config.budget_ratio,
        }
        return data

    def __repr__(self) -> str:
        config = self._config
        return (
            f"<RetryPolicy {config.name!r} max_attempts={config.max_attempts} "
            f"strategy={config.strategy.value} calls={self.calls} retries={self._retries}>"
        )


class RetryCall:
    """A :class:`RetryPolicy` with per-call ``idempotent`` / ``write`` overrides.

    Made by :meth:`RetryPolicy.with_options`; shares the policy's config and
    metrics. A thin view: its calls run the policy's one retry loop
    (:meth:`RetryPolicy._retrying`) from the first attempt.
    """

    __slots__ = ("_idempotent", "_policy", "_write")

    def __init__(self, policy: RetryPolicy, idempotent: bool | None, write: bool | None) -> None:
        self._policy = policy
        self._idempotent = idempotent
        self._write = write

    async def call_async(
        self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Like :meth:`RetryPolicy.call_async`, with this view's overrides."""
        return await self._policy._retrying(
            fn, args, kwargs, _FIRST, None, None, self._idempotent, self._write
        )

    def __repr__(self) -> str:
        return (
            f"<RetryCall {self._policy.name!r} idempotent={self._idempotent} write={self._write}>"
        )


@overload
def retry(fn: Callable[P, Awaitable[T]], /) -> Callable[P, Coroutine[Any, Any, T]]: ...


@overload
def retry(
    fn: None = None,
    /,
    *,
    config: RetryConfig | None = None,
    clock: Clock = MONOTONIC,
    classifier: Classifier | None = None,
    rng: random.Random | None = None,
    **settings: Any,
) -> Callable[[Callable[P, Awaitable[T]]], Callable[P, Coroutine[Any, Any, T]]]: ...


def retry(
    fn: Callable[P, Awaitable[T]] | None = None,
    /,
    *,
    config: RetryConfig | None = None,
    clock: Clock = MONOTONIC,
    classifier: Classifier | None = None,
    rng: random.Random | None = None,
    **settings: Any,
) -> (
    Callable[P, Coroutine[Any, Any, T]]
    | Callable[[Callable[P, Awaitable[T]]], Callable[P, Coroutine[Any, Any, T]]]
):
    """Decorate an ``async def`` with its own :class:`RetryPolicy`.

    ``@retry`` uses the defaults; ``@retry(max_attempts=5, base_delay=0.5)``
    takes :class:`RetryConfig` fields (or ``config=``). The policy is named
    after the function unless ``name`` is given, and is reachable as
    ``decorated.retry_policy``.
    """

    def decorate(func: Callable[P, Awaitable[T]]) -> Callable[P, Coroutine[Any, Any, T]]:
        if config is None and "name" not in settings:
            qualname = getattr(func, "__qualname__", None)
            label = qualname if isinstance(qualname, str) and qualname.isprintable() else "retry"
            named = {"name": label[-MAX_NAME_LENGTH:], **settings}
        else:
            named = settings
        policy = RetryPolicy(config, clock=clock, classifier=classifier, rng=rng, **named)
        return policy(func)

    if fn is not None:
        return decorate(fn)
    return decorate
