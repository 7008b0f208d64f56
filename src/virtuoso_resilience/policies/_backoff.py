"""Backoff delays, as a pure computation.

:class:`Backoff` turns *(retry number, previous delay, random source)* into the
number of seconds to wait before that retry. It holds no state and reads no
clock, so it can be property-tested on its own and shared freely.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass

__all__ = ["Backoff", "BackoffStrategy", "JitterMode"]


class BackoffStrategy(enum.Enum):
    """How the un-jittered delay grows from one retry to the next.

    With ``n`` the retry number (1 for the first retry), ``base`` the base
    delay and ``cap`` the maximum delay (seconds):

    * ``FIXED``: ``base``
    * ``LINEAR``: ``base * n``
    * ``EXPONENTIAL``: ``base * multiplier ** (n - 1)``
    * ``DECORRELATED_JITTER``: AWS "decorrelated jitter":
      ``uniform(base, previous * 3)`` where ``previous`` is the delay used
      before the previous retry (``base`` before the first one).

    Every delay is capped at ``cap``.
    """

    FIXED = "fixed"
    LINEAR = "linear"
    EXPONENTIAL = "exponential"
    DECORRELATED_JITTER = "decorrelated_jitter"


class JitterMode(enum.Enum):
    """Randomisation applied to the capped delay ``d`` (seconds).

    * ``NONE``: ``d``
    * ``FULL``: ``uniform(0, d)``
    * ``EQUAL``: ``d / 2 + uniform(0, d / 2)``

    Ignored by :attr:`BackoffStrategy.DECORRELATED_JITTER`, which is random by
    construction.
    """

    NONE = "none"
    FULL = "full"
    EQUAL = "equal"


@dataclass(frozen=True, slots=True)
class Backoff:
    """A backoff schedule: strategy, bounds (seconds) and jitter.

    ``base_delay`` >= 0, ``max_delay`` >= ``base_delay`` and > 0,
    ``multiplier`` >= 1 (used by ``EXPONENTIAL`` only).
    """

    strategy: BackoffStrategy = BackoffStrategy.EXPONENTIAL
    base_delay: float = 1.0
    max_delay: float = 30.0
    multiplier: float = 2.0
    jitter: JitterMode = JitterMode.FULL

    def __post_init__(self) -> None:
        if not self.base_delay >= 0:
            raise ValueError(f"Backoff.base_delay={self.base_delay!r} must be >= 0")
        if not self.max_delay > 0:
            raise ValueError(f"Backoff.max_delay={self.max_delay!r} must be > 0")
        if self.base_delay > self.max_delay:
            raise ValueError(
                f"Backoff.base_delay={self.base_delay!r} must be <= max_delay={self.max_delay!r}"
            )
        if not self.multiplier >= 1:
            raise ValueError(f"Backoff.multiplier={self.multiplier!r} must be >= 1")

    def ceiling(self, retry: int, previous: float = 0.0) -> float:
        """The largest delay (seconds) this schedule can return before retry ``retry``.

        ``retry`` counts from 1 (the first retry); ``previous`` is the delay
        used before the previous retry (only ``DECORRELATED_JITTER`` uses it).
        """
        if retry < 1:
            raise ValueError(f"retry={retry!r} must be >= 1")
        strategy = self.strategy
        base = self.base_delay
        if strategy is BackoffStrategy.EXPONENTIAL:
            if base == 0.0:
                return 0.0
            try:
                raw = base * self.multiplier ** (retry - 1)
            except OverflowError:
                return self.max_delay
        elif strategy is BackoffStrategy.FIXED:
            raw = base
        elif strategy is BackoffStrategy.LINEAR:
            raw = base * retry
        else:
            raw = max(previous, base) * 3.0
        return min(raw, self.max_delay)

    def delay(self, retry: int, previous: float, rng: random.Random) -> float:
        """Seconds to wait before retry number ``retry`` (1 = the first retry).

        ``previous`` is the delay actually used before the previous retry
        (0 or anything <= ``base_delay`` for the first one); ``rng`` is the
        random source, injected for determinism.
        """
        if self.strategy is BackoffStrategy.DECORRELATED_JITTER:
            if retry < 1:
                raise ValueError(f"retry={retry!r} must be >= 1")
            base = self.base_delay
            drawn = rng.uniform(base, max(previous, base) * 3.0)
            return min(self.max_delay, max(drawn, base))
        high = self.ceiling(retry, previous)
        jitter = self.jitter
        if jitter is JitterMode.NONE:
            return high
        if jitter is JitterMode.FULL:
            return min(rng.uniform(0.0, high), high)
        half = high / 2.0
        return min(half + rng.uniform(0.0, half), high)

    def __repr__(self) -> str:
        return (
            f"Backoff(strategy={self.strategy.value}, base_delay={self.base_delay:g}, "
            f"max_delay={self.max_delay:g}, multiplier={self.multiplier:g}, "
            f"jitter={self.jitter.value})"
        )
