"""The classifier's settings."""

from __future__ import annotations

from typing import Self

from pydantic import model_validator

from .._model import ConfigModel, PositiveSeconds, RuleError

__all__ = ["ClassifierConfig"]


class ClassifierConfig(ConfigModel):
    """How long the classifier tells callers to wait when the server did not say.

    Validated on creation and on assignment; a classifier reads its config on
    every classification, so a change takes effect at once.
    """

    ban_pause: PositiveSeconds = 120.0
    """Seconds to wait after an IP ban (HTTP 418, a Bybit 403, Binance
    "IP banned until") whose answer says neither ``Retry-After`` nor the
    ban's end. Bybit documents a 10-minute ban: 600 is a sound value there."""
    max_retry_after: PositiveSeconds = 3600.0
    """The longest wait the classifier passes on, in seconds: a larger
    ``Retry-After``, reset timestamp or ban end is cut to this."""

    @model_validator(mode="after")
    def _pause_within_cap(self) -> Self:
        if self.ban_pause > self.max_retry_after:
            raise RuleError(
                {"ban_pause": self.ban_pause, "max_retry_after": self.max_retry_after},
                "ban_pause must be <= max_retry_after",
            )
        return self
