"""One composable pipeline of resilience policies.

Order, outermost first::

    fallback → operation timeout → retry → circuit breaker → bulkhead
             → rate limiter → attempt timeout → call

- the fallback sees the final outcome, after every retry;
- the operation timeout bounds the whole operation, retries and backoff included;
- each retry attempt passes the breaker again, so an opening breaker stops retries;
- a call rejected by the breaker takes no bulkhead slot and no rate-limit token;
- the attempt timeout starts only once the call may run (not while queued).

The layers are chained without closures: each layer's ``call_async`` is given
the next layer's ``call_async`` as its function, so a call costs one
coroutine frame per layer and nothing else. Every entry point
(:meth:`ResiliencePipeline.call_async`, ``call_with_result_async``,
``call_weighted_async``, the decorator) runs the chain the same one way,
``ResiliencePipeline._run``.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

from ..classify import DEFAULT_CLASSIFIER, Classifier
from ..clock import MONOTONIC, Clock
from ..config import ResilienceConfiguration
from ._core import check_name
from ._decorate import decorate
from .bulkhead import Bulkhead, BulkheadConfig
from .circuit_breaker import CircuitBreaker, CircuitBreakerConfig
from .fallback import Fallback, FallbackResult
from .rate_limit import RateLimiter, RateLimiterConfig
from .retry import RetryConfig, RetryPolicy
from .timeout import TimeoutConfig, TimeoutPolicy

__all__ = ["ResiliencePipeline"]

P = ParamSpec("P")
T = TypeVar("T")

_Layer = Callable[..., Awaitable[Any]]


class ResiliencePipeline:
    """Composes any of the policies into one ``call_async`` and one decorator.

    Every argument is optional; a pipeline with none just awaits the call.
    """

    __slots__ = (
        "_calls",
        "_chain",
        "_entry",
        "_failures",
        "bulkhead",
        "circuit_breaker",
        "fallback",
        "name",
        "operation_timeout",
        "rate_limiter",
        "retry",
        "timeout",
    )

    def __init__(
        self,
        name: str,
        *,
        fallback: Fallback | None = None,
        operation_timeout: TimeoutPolicy | None = None,
        retry: RetryPolicy | None = None,
        circuit_breaker: CircuitBreaker | None = None,
        bulkhead: Bulkhead | None = None,
        rate_limiter: RateLimiter | None = None,
        timeout: TimeoutPolicy | None = None,
    ) -> None:
        self.name = check_name("ResiliencePipeline", name)
        self.fallback = fallback
        self.operation_timeout = operation_timeout
        self.retry = retry
        self.circuit_breaker = circuit_breaker
        self.bulkhead = bulkhead
        self.rate_limiter = rate_limiter
        self.timeout = timeout
        # The fallback stays outside the chain so that its tiers receive the
        # caller's own arguments (``pass_args``), not the inner layers.
        layers: list[_Layer] = [
            policy.call_async
            for policy in (
                operation_timeout,
                retry,
                circuit_breaker,
                bulkhead,
                rate_limiter,
                timeout,
            )
            if policy is not None
        ]
        self._entry: _Layer | None = layers[0] if layers else None
        self._chain: tuple[_Layer, ...] = tuple(layers[1:])
        self._calls = 0
        self._failures = 0

    @classmethod
    def from_config(
        cls,
        name: str,
        config: ResilienceConfiguration,
        *,
        clock: Clock = MONOTONIC,
        classifier: Classifier = DEFAULT_CLASSIFIER,
        circuit_breaker: CircuitBreaker | None = None,
        fallback: Fallback | None = None,
        exchange_id: str | None = None,
        write: bool = False,
        idempotent: bool = False,
    ) -> ResiliencePipeline:
        """A pipeline with the defaults of a :class:`ResilienceConfiguration`.

        - circuit breaker: ``default_failure_threshold``, ``default_success_threshold``,
          ``default_circuit_timeout`` (pass ``circuit_breaker`` to share a registry's);
        - retry (when ``default_max_retries`` > 0): ``default_max_retries``,
          ``default_base_delay``, ``default_max_delay``, ``default_retry_max_elapsed``;
        - bulkhead when ``default_max_concurrent`` is set;
        - rate limiter when ``default_rate_limit`` is set (burst
          ``default_rate_limit_burst``, else one second's worth, at least 1);
        - attempt timeout when ``default_call_timeout`` is set.

        ``write`` marks operations with side effects (orders): an ambiguous
        outcome is then never retried unless ``idempotent``.
        """
        if circuit_breaker is None:
            circuit_breaker = CircuitBreaker(
                name,
                CircuitBreakerConfig(
                    failure_threshold=config.default_failure_threshold,
                    success_threshold=config.default_success_threshold,
                    timeout=config.default_circuit_timeout,
                    exchange_id=exchange_id,
                ),
                clock=clock,
                classifier=classifier,
            )
        retry = None
        if config.default_max_retries > 0:
            retry = RetryPolicy(
                RetryConfig(
                    name=name,
                    max_attempts=config.default_max_retries + 1,
                    base_delay=config.default_base_delay,
                    max_delay=config.default_max_delay,
                    max_elapsed=config.default_retry_max_elapsed,
                    exchange_id=exchange_id,
                    write=write,
                    idempotent=idempotent,
                ),
                clock=clock,
                classifier=classifier,
            )
        bulkhead = None
        if config.default_max_concurrent is not None:
            bulkhead = Bulkhead(name, BulkheadConfig(max_concurrent=config.default_max_concurrent))
        limiter = None
        if config.default_rate_limit is not None:
            burst = config.default_rate_limit_burst
            capacity = float(burst) if burst is not None else max(1.0, config.default_rate_limit)
            limiter = RateLimiter(
                name,
                RateLimiterConfig(rate=config.default_rate_limit, capacity=capacity),
                clock=clock,
            )
        timeout = None
        if config.default_call_timeout is not None:
            timeout = TimeoutPolicy(name, TimeoutConfig(seconds=config.default_call_timeout))
        return cls(
            name,
            fallback=fallback,
            retry=retry,
            circuit_breaker=circuit_breaker,
            bulkhead=bulkhead,
            rate_limiter=limiter,
            timeout=timeout,
        )

    @property
    def order(self) -> tuple[str, ...]:
        """The names of the layers present, outermost first."""
        return tuple(
            label
            for label, policy in (
                ("fallback", self.fallback),
                ("operation_timeout", self.operation_timeout),
                ("retry", self.retry),
                ("circuit_breaker", self.circuit_breaker),
                ("bulkhead", self.bulkhead),
                ("rate_limiter", self.rate_limiter),
                ("timeout", self.timeout),
            )
            if policy is not None
        )

    def call_async(
        self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs
    ) -> Coroutine[Any, Any, T]:
        """Run ``await fn(*args, **kwargs)`` through every layer (await the result)."""
        return self._run(self._entry, self._chain, fn, args, kwargs, False)

    def call_with_result_async(
        self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs
    ) -> Coroutine[Any, Any, FallbackResult[T]]:
        """Like :meth:`call_async`, but say where the value came from.

        Returns a :class:`~virtuoso_resilience.policies.FallbackResult`:
        ``source`` is ``"primary"`` when the call (through the inner layers)
        answered, else the name of the fallback tier that answered, with the
        primary error's type name and outcome kind. Without a fallback the
        result is always ``FallbackResult(value, source="primary")``. Errors
        propagate as from :meth:`call_async`; the pipeline counts the call the
        same way.
        """
        return self._run(self._entry, self._chain, fn, args, kwargs, True)

    def call_weighted_async(
        self, cost: float, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs
    ) -> Coroutine[Any, Any, T]:
        """Like :meth:`call_async`, taking ``cost`` rate-limit tokens (ccxt's
        per-endpoint ``cost``) instead of 1."""
        entry, chain = self._entry, self._chain
        limiter = self.rate_limiter
        if limiter is not None:
            plain = limiter.call_async
            weighted = functools.partial(limiter.call_weighted_async, cost)
            entry = weighted if entry == plain else entry
            chain = tuple(weighted if layer == plain else layer for layer in chain)
        return self._run(entry, chain, fn, args, kwargs, False)

    async def _run(
        self,
        entry: _Layer | None,
        chain: tuple[_Layer, ...],
        fn: Callable[..., Awaitable[Any]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        with_result: bool,
    ) -> Any:
        """The one way a call goes through the layers: the fallback (if any)
        around ``entry(*chain, fn, *args, **kwargs)``, the call counted."""
        self._calls += 1
        fallback = self.fallback
        try:
            if fallback is not None:
                # The fallback gets the caller's own arguments (for ``pass_args``);
                # the layers below it are bound into one callable.
                inner = fn if entry is None else functools.partial(entry, *chain, fn)
                if with_result:
                    return await fallback.call_with_result_async(inner, *args, **kwargs)
                return await fallback.call_async(inner, *args, **kwargs)
            if entry is None:
                result = await fn(*args, **kwargs)
            else:
                result = await entry(*chain, fn, *args, **kwargs)
        except Exception:
            self._failures += 1
            raise
        return FallbackResult(result) if with_result else result

    def __call__(self, fn: Callable[P, Awaitable[T]]) -> Callable[P, Coroutine[Any, Any, T]]:
        """Decorate an ``async def`` so every call goes through the pipeline."""
        return decorate(
            fn, self.call_async, attribute="pipeline", owner=self, label=f"pipeline {self.name!r}"
        )

    def snapshot_dict(self) -> dict[str, Any]:
        """The snapshot (already JSON-ready), named as every policy's is."""
        return self.snapshot()

    def snapshot(self) -> dict[str, Any]:
        """One JSON-ready snapshot: the pipeline's counts and each layer's metrics."""
        data: dict[str, Any] = {
            "name": self.name,
            "order": list(self.order),
            "calls": self._calls,
            "failures": self._failures,
        }
        for label in self.order:
            policy = getattr(self, label)
            data[label] = policy.snapshot_dict()
        return data

    def __repr__(self) -> str:
        layers = " → ".join(self.order) or "(no policies)"
        return (
            f"<ResiliencePipeline {self.name!r} {layers} calls={self._calls} "
            f"failures={self._failures}>"
        )
