"""Fallback: tiers in order, classifier-driven triggers, cancellation untouched."""

from __future__ import annotations

import asyncio
import json
import traceback
from typing import Any

import ccxt
import pytest

from virtuoso_resilience.classify import Outcome, OutcomeKind
from virtuoso_resilience.errors import ConfigurationError
from virtuoso_resilience.policies import (
    DEFAULT_FALLBACK_ON,
    DEFAULT_WRITE_FALLBACK_ON,
    Fallback,
    FallbackConfig,
    FallbackResult,
)


async def ok(value: Any = "fresh") -> Any:
    return value


async def raises(error: BaseException) -> Any:
    raise error


class Tier:
    """A tier that records the errors it received and answers or raises."""

    def __init__(self, answer: Any = None, error: BaseException | None = None) -> None:
        self.answer = answer
        self.error = error
        self.received: list[tuple[Any, ...]] = []

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.received.append((*args, kwargs) if kwargs else args)
        if self.error is not None:
            raise self.error
        return self.answer


class AsyncTier(Tier):
    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(0)
        return super().__call__(*args, **kwargs)


# ----------------------------------------------------------------- the basics


async def test_primary_success_is_returned_and_counted() -> None:
    fallback = Fallback(value="stale")
    assert await fallback.call_async(ok, "fresh") == "fresh"
    result = await fallback.call_with_result_async(ok, "fresh")
    assert result == FallbackResult("fresh", "primary", None, None)
    assert not result.from_fallback
    snap = fallback.snapshot()
    assert (snap["primary_successes"], snap["fallbacks"], snap["failures"]) == (2, 0, 0)


async def test_value_answers_a_transient_failure() -> None:
    fallback = Fallback(value={"last": 1.0})
    assert await fallback.call_async(raises, ccxt.NetworkError("down")) == {"last": 1.0}
    result = await fallback.call_with_result_async(raises, ccxt.NetworkError("down"))
    assert result == FallbackResult({"last": 1.0}, "value", "NetworkError", OutcomeKind.TRANSIENT)
    assert result.from_fallback
    assert fallback.snapshot()["fallbacks_by_tier"] == {"value": 2}


async def test_none_is_a_valid_fallback_value() -> None:
    fallback = Fallback(value=None)
    assert await fallback.call_async(raises, ConnectionResetError()) is None
    assert fallback.snapshot()["fallbacks"] == 1


async def test_sync_func_receives_the_exception() -> None:
    tier = Tier(answer="from func")
    fallback = Fallback(func=tier)
    error = ccxt.ExchangeNotAvailable("503")
    result = await fallback.call_with_result_async(raises, error)
    assert result == FallbackResult(
        "from func", "func", "ExchangeNotAvailable", OutcomeKind.TRANSIENT
    )
    assert tier.received == [(error,)]


async def test_async_func_is_awaited() -> None:
    tier = AsyncTier(answer=42)
    fallback = Fallback("f", func=tier)
    assert await fallback.call_async(raises, ccxt.RequestTimeout("slow")) == 42
    assert len(tier.received) == 1


async def test_pass_args_gives_tiers_the_primary_arguments() -> None:
    cache = {"BTC/USDT": 100.0}

    def stale(error: Exception, symbol: str, *, params: dict[str, Any]) -> float:
        assert isinstance(error, ccxt.NetworkError)
        assert params == {"type": "spot"}
        return cache[symbol]

    fallback = Fallback(tiers=[("stale_cache", stale), ("default", 0.0)], pass_args=True)

    async def fetch_last(symbol: str, *, params: dict[str, Any]) -> float:
        raise ccxt.NetworkError("down")

    assert await fallback.call_async(fetch_last, "BTC/USDT", params={"type": "spot"}) == 100.0
    result = await fallback.call_with_result_async(fetch_last, "ETH/USDT", params={"type": "spot"})
    assert (result.value, result.source) == (0.0, "default")  # KeyError moved to the next tier


# ----------------------------------------------------------------------- tiers


async def test_tiers_are_tried_in_order_until_one_answers() -> None:
    fresh = Tier(error=KeyError("not cached"))
    stale = AsyncTier(error=LookupError("expired"))
    fallback = Fallback(
        "ticker",
        tiers=[("fresh_cache", fresh), ("stale_cache", stale), ("default", {"last": None})],
    )
    error = ccxt.NetworkError("down")
    result = await fallback.call_with_result_async(raises, error)
    assert result == FallbackResult(
        {"last": None}, "default", "NetworkError", OutcomeKind.TRANSIENT
    )
    assert fresh.received == [(error,)] and stale.received == [(error,)]
    stale.error = None
    stale.answer = {"last": 9.0}
    result = await fallback.call_with_result_async(raises, error)
    assert (result.value, result.source) == ({"last": 9.0}, "stale_cache")
    assert fallback.tiers == ("fresh_cache", "stale_cache", "default")
    assert fallback.snapshot()["fallbacks_by_tier"] == {
        "fresh_cache": 0,
        "stale_cache": 1,
        "default": 1,
    }


async def test_when_every_tier_fails_the_original_error_is_raised_with_notes() -> None:
    fallback = Fallback(
        "ticker",
        tiers=[
            ("fresh_cache", Tier(error=KeyError("BTC"))),
            ("stale_cache", AsyncTier(error=OSError("disk"))),
        ],
    )
    root = ConnectionResetError("reset by peer")
    original = ccxt.NetworkError("bybit GET /v5/market/tickers")
    original.__cause__ = root
    with pytest.raises(ccxt.NetworkError) as info:
        await fallback.call_async(raises, original)
    assert info.value is original
    assert original.__cause__ is root  # the chain is left alone
    assert original.__notes__ == [
        "fallback 'ticker': tier 'fresh_cache' failed: KeyError",
        "fallback 'ticker': tier 'stale_cache' failed: OSError",
    ]
    snap = fallback.snapshot()
    assert (snap["primary_failures"], snap["fallbacks"], snap["failures"]) == (1, 0, 1)


async def test_notes_never_copy_a_tier_errors_message() -> None:
    secret = "redis://default:S3cr3tPassw0rd@cache.internal:6379"

    def redis_tier(error: Exception) -> Any:
        raise ConnectionError(f"Error connecting to {secret}")

    fallback = Fallback("ticker", tiers=[("redis", redis_tier)])
    with pytest.raises(ccxt.NetworkError) as info:
        await fallback.call_async(raises, ccxt.NetworkError("bybit GET /v5/market/tickers"))
    assert info.value.__notes__ == ["fallback 'ticker': tier 'redis' failed: ConnectionError"]
    rendered = "".join(traceback.format_exception(info.value))
    assert "S3cr3tPassw0rd" not in rendered
    assert "tier 'redis' failed: ConnectionError" in rendered


async def test_the_original_errors_context_is_not_replaced_by_a_tier_error() -> None:
    async def primary() -> None:
        try:
            raise ValueError("parse")
        except ValueError:
            raise ccxt.BadResponse("garbled") from None

    fallback = Fallback(func=Tier(error=RuntimeError("tier")))
    with pytest.raises(ccxt.BadResponse) as info:
        await fallback.call_async(primary)
    assert isinstance(info.value.__context__, ValueError)
    assert info.value.__suppress_context__


async def test_a_callable_value_in_tiers_is_called() -> None:
    fallback = Fallback(tiers=[("factory", lambda error: [])])
    assert await fallback.call_async(raises, ccxt.NetworkError()) == []


# -------------------------------------------------------------- what triggers


async def test_business_errors_propagate_without_trying_any_tier() -> None:
    tier = Tier(answer="hidden")
    fallback = Fallback(func=tier)
    for error in (
        ccxt.InsufficientFunds("no money"),
        ccxt.InvalidOrder("bad qty"),
        ccxt.AuthenticationError("bad key"),
    ):
        with pytest.raises(type(error)) as info:
            await fallback.call_async(raises, error)
        assert info.value is error
        assert not getattr(error, "__notes__", None)
    assert tier.received == []
    snap = fallback.snapshot()
    assert (snap["passed_through"], snap["primary_failures"], snap["fallbacks"]) == (3, 0, 0)


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (ccxt.NetworkError("x"), OutcomeKind.TRANSIENT),
        (ccxt.RateLimitExceeded("x"), OutcomeKind.RATE_LIMITED),
        (ccxt.OnMaintenance("x"), OutcomeKind.MAINTENANCE),
        (ccxt.NotSupported("x"), OutcomeKind.PERMANENT),
        (ValueError("a bug"), OutcomeKind.PERMANENT),
    ],
)
async def test_every_other_failure_triggers_by_default(error: Exception, kind: OutcomeKind) -> None:
    fallback = Fallback(value="v")
    result = await fallback.call_with_result_async(raises, error)
    assert (result.value, result.outcome) == ("v", kind)


async def test_on_is_configurable_and_changes_apply_at_once() -> None:
    fallback = Fallback(value="v", on=frozenset({OutcomeKind.RATE_LIMITED}))
    assert await fallback.call_async(raises, ccxt.RateLimitExceeded("429")) == "v"
    with pytest.raises(ccxt.NetworkError):
        await fallback.call_async(raises, ccxt.NetworkError("down"))
    fallback.config.on = frozenset({OutcomeKind.TRANSIENT})
    assert await fallback.call_async(raises, ccxt.NetworkError("down")) == "v"
    with pytest.raises(ccxt.RateLimitExceeded):
        await fallback.call_async(raises, ccxt.RateLimitExceeded("429"))
    fallback.config.on = {"business", "transient"}  # type: ignore[assignment]
    assert await fallback.call_async(raises, ccxt.InsufficientFunds("x")) == "v"
    assert fallback.snapshot()["on"] == ["business", "transient"]


async def test_write_calls_classify_ambiguous_failures() -> None:
    on = DEFAULT_FALLBACK_ON - {OutcomeKind.AMBIGUOUS}
    fallback = Fallback(value="v", on=on, write=True)
    with pytest.raises(ccxt.RequestTimeout):  # an order may have been placed
        await fallback.call_async(raises, ccxt.RequestTimeout("timeout"))
    read = Fallback(value="v", on=on)
    assert await read.call_async(raises, ccxt.RequestTimeout("timeout")) == "v"


async def test_a_write_never_answers_an_ambiguous_outcome_by_default() -> None:
    # A timed-out order placement may have placed the order: a fallback value
    # would hide it.
    fallback = Fallback("orders", value={"id": None, "status": "rejected"}, write=True)
    assert fallback.config.on is None
    assert fallback.config.triggers == DEFAULT_WRITE_FALLBACK_ON
    timeout = ccxt.RequestTimeout("bybit POST /v5/order/create timed out")
    with pytest.raises(ccxt.RequestTimeout) as info:
        await fallback.call_with_result_async(raises, timeout)
    assert info.value is timeout
    snap = fallback.snapshot()
    assert (snap["passed_through"], snap["fallbacks"]) == (1, 0)
    assert "ambiguous" not in snap["on"]
    # Clear failures of the same write still get the fallback.
    result = await fallback.call_with_result_async(raises, ccxt.RateLimitExceeded("429"))
    assert (result.source, result.outcome) == ("value", OutcomeKind.RATE_LIMITED)
    # Switching to a read at run time brings AMBIGUOUS back (a read's timeout is
    # TRANSIENT anyway).
    fallback.config.write = False
    assert fallback.config.triggers == DEFAULT_FALLBACK_ON


async def test_a_write_answers_ambiguous_outcomes_only_when_asked_explicitly() -> None:
    explicit = Fallback(value="v", write=True, on={"ambiguous", "transient"})
    result = await explicit.call_with_result_async(raises, ccxt.RequestTimeout("timeout"))
    assert (result.value, result.outcome) == ("v", OutcomeKind.AMBIGUOUS)
    # The full default set, named explicitly, is explicit too.
    named = Fallback(value="v", write=True)
    named.config.on = DEFAULT_FALLBACK_ON
    assert await named.call_async(raises, ccxt.RequestTimeout("timeout")) == "v"
    assert named.snapshot()["on"] == sorted(k.value for k in DEFAULT_FALLBACK_ON)


async def test_exchange_overrides_reach_the_classifier() -> None:
    error = ccxt.ExchangeError('bybit {"retCode":10006,"retMsg":"Too many visits!"}')
    fallback = Fallback(value="v", on=frozenset({OutcomeKind.RATE_LIMITED}), exchange_id="bybit")
    result = await fallback.call_with_result_async(raises, error)
    assert result.outcome is OutcomeKind.RATE_LIMITED


async def test_an_injected_classifier_decides() -> None:
    class Everything:
        def classify(self, error: BaseException | None, **_: Any) -> Outcome:
            return Outcome(OutcomeKind.MAINTENANCE, None, "test")

    fallback = Fallback(value="v", classifier=Everything())  # type: ignore[arg-type]
    result = await fallback.call_with_result_async(raises, ccxt.InsufficientFunds("x"))
    assert (result.value, result.outcome) == ("v", OutcomeKind.MAINTENANCE)


# ---------------------------------------------------------------- cancellation


async def test_cancellation_of_the_primary_propagates_and_triggers_nothing() -> None:
    tier = Tier(answer="no")
    fallback = Fallback(func=tier)
    started = asyncio.Event()

    async def hangs() -> None:
        started.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(fallback.call_async(hangs))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert tier.received == []
    with pytest.raises(asyncio.CancelledError):
        await fallback.call_async(raises, asyncio.CancelledError())
    assert tier.received == []
    snap = fallback.snapshot()
    assert snap["primary_successes"] == snap["primary_failures"] == snap["passed_through"] == 0


async def test_cancellation_inside_a_tier_propagates_and_skips_later_tiers() -> None:
    later = Tier(answer="no")
    fallback = Fallback(tiers=[("cache", Tier(error=asyncio.CancelledError())), ("default", later)])
    with pytest.raises(asyncio.CancelledError):
        await fallback.call_async(raises, ccxt.NetworkError())
    assert later.received == []
    assert fallback.snapshot()["failures"] == 0


async def test_cancelling_the_caller_while_an_async_tier_runs() -> None:
    later = Tier(answer="no")
    entered = asyncio.Event()

    async def slow_cache(error: Exception) -> str:
        entered.set()
        await asyncio.Event().wait()
        return "never"

    fallback = Fallback(tiers=[("slow_cache", slow_cache), ("default", later)])
    task = asyncio.create_task(fallback.call_async(raises, ccxt.NetworkError()))
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert later.received == []


async def test_other_base_exceptions_propagate() -> None:
    class Stop(BaseException):
        pass

    tier = Tier(answer="no")
    fallback = Fallback(func=tier)
    with pytest.raises(Stop):
        await fallback.call_async(raises, Stop())
    assert tier.received == []


# ----------------------------------------------------------------- concurrency


async def test_hundreds_of_concurrent_calls_are_counted_right() -> None:
    fallback = Fallback(tiers=[("cache", AsyncTier(answer="cached"))])

    async def sometimes(i: int) -> str:
        await asyncio.sleep(0)
        if i % 3 == 0:
            raise ccxt.NetworkError("down")
        if i % 3 == 1:
            raise ccxt.InvalidOrder("no")
        return "fresh"

    results = await asyncio.gather(
        *(fallback.call_async(sometimes, i) for i in range(300)), return_exceptions=True
    )
    assert results.count("cached") == 100
    assert results.count("fresh") == 100
    assert sum(isinstance(r, ccxt.InvalidOrder) for r in results) == 100
    snap = fallback.snapshot()
    assert (snap["primary_successes"], snap["fallbacks"], snap["passed_through"]) == (100, 100, 100)


# ---------------------------------------------------------------- construction


async def test_decorator() -> None:
    fallback = Fallback("ticker", value=0.0)

    @fallback
    async def fetch_last(symbol: str) -> float:
        raise ccxt.NetworkError(symbol)

    assert fetch_last.__name__ == "fetch_last"
    assert await fetch_last("BTC/USDT") == 0.0
    with pytest.raises(TypeError, match="async def"):
        fallback(lambda: None)  # type: ignore[arg-type, return-value]


def test_exactly_one_of_value_func_tiers() -> None:
    with pytest.raises(TypeError, match="exactly one"):
        Fallback()
    with pytest.raises(TypeError, match="exactly one"):
        Fallback(value=1, func=lambda e: 2)
    with pytest.raises(TypeError, match="exactly one"):
        Fallback(value=1, tiers=[("a", 1)])


@pytest.mark.parametrize(
    "tiers",
    [
        [],
        [("a", 1), ("a", 2)],
        [("primary", 1)],
        [("", 1)],
        [(1, 1)],
        [("a", 1, 2)],
        ["a"],
    ],
)
def test_bad_tiers_are_configuration_errors(tiers: Any) -> None:
    with pytest.raises(ConfigurationError, match="tiers"):
        Fallback(tiers=tiers)


def test_func_must_be_callable() -> None:
    with pytest.raises(ConfigurationError, match="callable"):
        Fallback(func=42)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "on",
    [
        frozenset({OutcomeKind.SUCCESS}),
        {"success", "transient"},
        {"nonsense"},
        "transient",
        5,
    ],
)
def test_bad_on_is_rejected_and_leaves_the_old_value(on: Any) -> None:
    with pytest.raises(ConfigurationError) as info:
        FallbackConfig(on=on)
    assert info.value.fields == ("on",)
    fallback = Fallback(value=1)
    with pytest.raises(ConfigurationError):
        fallback.config.on = on
    assert fallback.config.on is None
    assert fallback.config.triggers == DEFAULT_FALLBACK_ON


def test_default_on_is_every_failure_but_business() -> None:
    assert FallbackConfig().on is None
    assert FallbackConfig().triggers == DEFAULT_FALLBACK_ON
    assert FallbackConfig(write=True).triggers == DEFAULT_WRITE_FALLBACK_ON
    assert {OutcomeKind.AMBIGUOUS} | DEFAULT_WRITE_FALLBACK_ON == DEFAULT_FALLBACK_ON
    assert OutcomeKind.AMBIGUOUS not in DEFAULT_WRITE_FALLBACK_ON
    assert OutcomeKind.BUSINESS not in DEFAULT_FALLBACK_ON
    assert OutcomeKind.SUCCESS not in DEFAULT_FALLBACK_ON
    assert len(DEFAULT_FALLBACK_ON) == len(OutcomeKind) - 2
    assert FallbackConfig(on=[OutcomeKind.TRANSIENT, "maintenance"]).triggers == {  # type: ignore[arg-type]
        OutcomeKind.TRANSIENT,
        OutcomeKind.MAINTENANCE,
    }


def test_construction_variants() -> None:
    config = FallbackConfig(on=frozenset({OutcomeKind.TRANSIENT}))
    fallback = Fallback("a", config, value=1)
    assert fallback.config is config and config.name == "a"
    assert Fallback(value=1).name == "fallback"
    with pytest.raises(ConfigurationError, match="name"):
        Fallback("b", FallbackConfig(name="c"), value=1)
    with pytest.raises(TypeError, match="not both"):
        Fallback("d", config, value=1, write=True)
    with pytest.raises(ConfigurationError, match="unknown field"):
        Fallback("e", value=1, bogus=True)


async def test_snapshot_is_json_ready_and_repr_shows_counts() -> None:
    fallback = Fallback("ticker", tiers=[("stale", Tier(error=KeyError())), ("default", 0)])
    await fallback.call_async(ok)
    await fallback.call_async(raises, ccxt.NetworkError())
    with pytest.raises(ccxt.InvalidOrder):
        await fallback.call_async(raises, ccxt.InvalidOrder())
    snap = fallback.snapshot()
    assert json.loads(json.dumps(snap)) == snap
    assert snap == {
        "name": "ticker",
        "kind": "fallback",
        "tiers": ["stale", "default"],
        "on": ["ambiguous", "maintenance", "permanent", "rate_limited", "rejected", "transient"],
        "primary_successes": 1,
        "primary_failures": 1,
        "passed_through": 1,
        "fallbacks": 1,
        "fallbacks_by_tier": {"stale": 0, "default": 1},
        "failures": 0,
    }
    assert repr(fallback) == (
        "<Fallback 'ticker' tiers=['stale', 'default'] primary_successes=1 fallbacks=1 failures=0>"
    )
