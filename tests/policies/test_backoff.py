"""The pure backoff computation: every strategy and jitter mode within its bounds."""

from __future__ import annotations

import random
import statistics

import pytest
from hypothesis import given
from hypothesis import strategies as st

from virtuoso_resilience.policies._backoff import Backoff, BackoffStrategy, JitterMode

FIXED = BackoffStrategy.FIXED
LINEAR = BackoffStrategy.LINEAR
EXPONENTIAL = BackoffStrategy.EXPONENTIAL
DECORRELATED = BackoffStrategy.DECORRELATED_JITTER


def _delays(backoff: Backoff, n: int, seed: int = 0) -> list[float]:
    rng = random.Random(seed)
    out: list[float] = []
    previous = 0.0
    for retry in range(1, n + 1):
        previous = backoff.delay(retry, previous, rng)
        out.append(previous)
    return out


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        (FIXED, [1.5, 1.5, 1.5, 1.5, 1.5, 1.5]),
        (LINEAR, [1.5, 3.0, 4.5, 6.0, 7.5, 9.0]),
        (EXPONENTIAL, [1.5, 3.0, 6.0, 10.0, 10.0, 10.0]),
    ],
)
def test_unjittered_schedules_are_exact_and_capped(
    strategy: BackoffStrategy, expected: list[float]
) -> None:
    backoff = Backoff(strategy, base_delay=1.5, max_delay=10.0, jitter=JitterMode.NONE)
    assert _delays(backoff, 6) == expected


def test_exponential_uses_the_multiplier() -> None:
    backoff = Backoff(EXPONENTIAL, base_delay=0.1, max_delay=100.0, multiplier=3.0)
    assert [backoff.ceiling(n) for n in (1, 2, 3, 4)] == pytest.approx([0.1, 0.3, 0.9, 2.7])


def test_exponential_never_overflows() -> None:
    backoff = Backoff(EXPONENTIAL, base_delay=1.0, max_delay=30.0, multiplier=10.0)
    assert backoff.ceiling(10_000) == 30.0
    assert backoff.delay(10_000, 0.0, random.Random(1)) <= 30.0
    zero = Backoff(EXPONENTIAL, base_delay=0.0, max_delay=30.0, multiplier=10.0)
    assert zero.ceiling(10_000) == 0.0


def test_full_jitter_spreads_over_the_whole_range() -> None:
    backoff = Backoff(FIXED, base_delay=2.0, max_delay=2.0, jitter=JitterMode.FULL)
    rng = random.Random(42)
    draws = [backoff.delay(1, 0.0, rng) for _ in range(5000)]
    assert min(draws) >= 0.0
    assert max(draws) <= 2.0
    assert min(draws) < 0.05
    assert max(draws) > 1.95
    assert statistics.fmean(draws) == pytest.approx(1.0, abs=0.05)


def test_equal_jitter_keeps_half_the_delay() -> None:
    backoff = Backoff(FIXED, base_delay=2.0, max_delay=2.0, jitter=JitterMode.EQUAL)
    rng = random.Random(7)
    draws = [backoff.delay(1, 0.0, rng) for _ in range(5000)]
    assert min(draws) >= 1.0
    assert max(draws) <= 2.0
    assert statistics.fmean(draws) == pytest.approx(1.5, abs=0.05)


def test_decorrelated_jitter_follows_the_previous_delay() -> None:
    backoff = Backoff(DECORRELATED, base_delay=1.0, max_delay=20.0)
    delays = _delays(backoff, 50, seed=3)
    previous = 1.0
    for delay in delays:
        assert 1.0 <= delay <= min(20.0, 3 * previous)
        previous = delay
    assert max(delays) == 20.0  # the cap is reached and held as a ceiling
    # The first delay is drawn from [base, 3 * base].
    assert 1.0 <= backoff.delay(1, 0.0, random.Random(0)) <= 3.0


def test_the_random_source_makes_it_deterministic() -> None:
    for strategy in BackoffStrategy:
        backoff = Backoff(strategy, base_delay=0.5, max_delay=8.0)
        assert _delays(backoff, 20, seed=11) == _delays(backoff, 20, seed=11)


def bounds(backoff: Backoff, retry: int, previous: float = 0.0) -> tuple[float, float]:
    """The closed interval ``(low, high)`` (seconds) ``backoff.delay`` draws from,
    as the docs of each strategy and jitter mode state it."""
    high = backoff.ceiling(retry, previous)
    if backoff.strategy is BackoffStrategy.DECORRELATED_JITTER:
        return (min(backoff.base_delay, high), high)
    if backoff.jitter is JitterMode.NONE:
        return (high, high)
    if backoff.jitter is JitterMode.FULL:
        return (0.0, high)
    return (high / 2.0, high)


def test_bounds_describe_each_mode() -> None:
    assert bounds(Backoff(LINEAR, 1.0, 10.0, jitter=JitterMode.NONE), 3) == (3.0, 3.0)
    assert bounds(Backoff(LINEAR, 1.0, 10.0, jitter=JitterMode.FULL), 3) == (0.0, 3.0)
    assert bounds(Backoff(LINEAR, 1.0, 10.0, jitter=JitterMode.EQUAL), 3) == (1.5, 3.0)
    assert bounds(Backoff(DECORRELATED, 1.0, 10.0), 3, previous=2.0) == (1.0, 6.0)
    assert bounds(Backoff(DECORRELATED, 1.0, 10.0), 3, previous=5.0) == (1.0, 10.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"base_delay": -1.0}, "base_delay"),
        ({"max_delay": 0.0}, "max_delay"),
        ({"base_delay": 5.0, "max_delay": 1.0}, "base_delay=5.0 must be <= max_delay"),
        ({"multiplier": 0.5}, "multiplier"),
    ],
)
def test_invalid_schedules_are_rejected(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Backoff(**kwargs)  # type: ignore[arg-type]


def test_retry_numbers_start_at_one() -> None:
    for strategy in BackoffStrategy:
        with pytest.raises(ValueError, match="retry=0"):
            Backoff(strategy).delay(0, 0.0, random.Random())


def test_repr_shows_the_schedule() -> None:
    assert repr(Backoff()) == (
        "Backoff(strategy=exponential, base_delay=1, max_delay=30, multiplier=2, jitter=full)"
    )


_delay_values = st.floats(min_value=0.0, max_value=1e6, allow_nan=False, allow_infinity=False)


@st.composite
def _backoffs(draw: st.DrawFn) -> Backoff:
    max_delay = draw(st.floats(min_value=1e-6, max_value=1e6, allow_nan=False))
    base_delay = draw(st.floats(min_value=0.0, max_value=max_delay, allow_nan=False))
    return Backoff(
        draw(st.sampled_from(BackoffStrategy)),
        base_delay=base_delay,
        max_delay=max_delay,
        multiplier=draw(st.floats(min_value=1.0, max_value=100.0, allow_nan=False)),
        jitter=draw(st.sampled_from(JitterMode)),
    )


@given(
    backoff=_backoffs(),
    retry=st.integers(min_value=1, max_value=5000),
    previous=_delay_values,
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_every_delay_lies_within_its_bounds(
    backoff: Backoff, retry: int, previous: float, seed: int
) -> None:
    low, high = bounds(backoff, retry, previous)
    assert 0.0 <= low <= high <= backoff.max_delay
    delay = backoff.delay(retry, previous, random.Random(seed))
    assert low <= delay <= high


@given(
    strategy=st.sampled_from([FIXED, LINEAR, EXPONENTIAL]),
    base_delay=st.floats(min_value=0.0, max_value=100.0),
    max_delay=st.floats(min_value=100.0, max_value=1e6),
    multiplier=st.floats(min_value=1.0, max_value=100.0),
)
def test_unjittered_delays_never_shrink(
    strategy: BackoffStrategy, base_delay: float, max_delay: float, multiplier: float
) -> None:
    backoff = Backoff(strategy, base_delay, max_delay, multiplier, JitterMode.NONE)
    delays = _delays(backoff, 40)
    assert delays == sorted(delays)
    assert all(base_delay <= d <= max_delay for d in delays)
