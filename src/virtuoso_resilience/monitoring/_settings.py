"""Settings of the monitoring HTTP API (a :class:`ConfigModel`)."""

from __future__ import annotations

import enum
import ipaddress
import re
from typing import Annotated, Final, Self

from pydantic import Field, SecretStr, field_validator, model_validator

from .._model import ConfigModel, PositiveSeconds, RuleError, Seconds

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "HealthGroup",
    "MonitoringSettings",
    "ShowDetails",
]

DEFAULT_HOST: Final = "127.0.0.1"
DEFAULT_PORT: Final = 8001

_GROUP_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_PATTERN = re.compile(r"[^\x00-\x1f\x7f]{1,200}")
_TOKEN = re.compile(r"[\x21-\x7e]{16,512}")  # visible ASCII, no spaces
_MAX_BODY: Final = 1 << 20

Port = Annotated[int, Field(ge=0, le=65535)]
"""A TCP port (0: any free port)."""


class ShowDetails(enum.Enum):
    """Who sees the detail endpoints (checks, breakers, pools, metrics)."""

    NEVER = "never"
    """Nobody: detail endpoints answer 403; health shows the overall status only."""
    WHEN_AUTHORIZED = "when_authorized"
    """Callers with the bearer token (401 without it)."""
    ALWAYS = "always"
    """Everybody who can reach the port (the default: it binds to loopback)."""


def _patterns(value: tuple[str, ...], field: str) -> tuple[str, ...]:
    for pattern in value:
        if not _PATTERN.fullmatch(pattern):
            raise ValueError(
                f"{field} holds {pattern[:60]!r}: each entry must be a check name or "
                "fnmatch pattern of 1 to 200 printable characters"
            )
    return value


class HealthGroup(ConfigModel):
    """A named subset of health checks with its own endpoint
    (``GET /api/monitoring/health/groups/<name>``), like Spring's actuator groups.

    ``include`` holds check names or ``fnmatch`` patterns
    (``"circuit_breaker.*"``). The group's status is the worst status of its
    members, where a non-critical check counts at most as ``degraded``
    (the health service's own rule), unless ``strict`` is true: then every
    member counts in full, so one failed check fails the group.
    """

    include: tuple[str, ...] = ("*",)
    strict: bool = False

    @field_validator("include", mode="after")
    @classmethod
    def _include_ok(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("include must name at least one check or pattern")
        return _patterns(value, "include")


class MonitoringSettings(ConfigModel):
    """How the monitoring API binds, who may see and change what, how it caches.

    Times are seconds. Binding to anything but loopback is an explicit choice
    (``host``); the write endpoints (manual breaker control) exist only with
    a ``token`` (at least 16 visible ASCII characters), sent as
    ``Authorization: Bearer <token>``.
    """

    host: str = DEFAULT_HOST
    port: Port = DEFAULT_PORT
    token: SecretStr | None = None
    show_details: ShowDetails = ShowDetails.ALWAYS
    cache_ttl: PositiveSeconds = 1.0
    """A cached body is rebuilt after this long even when nothing signalled a change."""
    min_rebuild_interval: Seconds = 0.1
    """After a change a body is rebuilt at most this often (0: at every change), so a
    flapping breaker cannot make every request rebuild; a manual change through the
    API is shown at once."""
    watch_interval: PositiveSeconds = 0.25
    """How often the registry is checked for new or replaced components."""
    event_log_size: Annotated[int, Field(ge=1, le=100_000)] = 500
    """Breaker state changes kept for ``GET .../circuit-breakers/events``."""
    max_body_bytes: Annotated[int, Field(ge=64, le=_MAX_BODY)] = 16_384
    """Request bodies larger than this are refused with 413."""
    groups: dict[str, HealthGroup] = Field(default_factory=dict)
    readiness_group: str | None = None
    """Readiness follows this group instead of the overall status."""
    fail_readiness_on_open: tuple[str, ...] = ()
    """Breaker names or patterns whose open (or forced open) state fails readiness."""
    drain_seconds: Seconds = 0.0
    """On shutdown, readiness answers 503 for this long before the listener closes."""
    shutdown_timeout: PositiveSeconds = 10.0
    """On shutdown, in-flight requests get this long to finish."""

    @field_validator("host", mode="after")
    @classmethod
    def _host_ok(cls, value: str) -> str:
        if not value or len(value) > 253 or not re.fullmatch(r"[A-Za-z0-9.:\-\[\]]+", value):
            raise ValueError("host must be an IP address or a host name")
        return value

    @field_validator("token", mode="after")
    @classmethod
    def _token_ok(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not _TOKEN.fullmatch(value.get_secret_value()):
            raise ValueError("token must be 16 to 512 visible ASCII characters (no spaces)")
        return value

    @field_validator("groups", mode="after")
    @classmethod
    def _group_names_ok(cls, value: dict[str, HealthGroup]) -> dict[str, HealthGroup]:
        for name in value:
            if not _GROUP_NAME.fullmatch(name):
                raise ValueError(f"group name {name[:60]!r} must be 1 to 64 of A-Z a-z 0-9 _ . -")
        return value

    @field_validator("fail_readiness_on_open", mode="after")
    @classmethod
    def _open_patterns_ok(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _patterns(value, "fail_readiness_on_open")

    @model_validator(mode="after")
    def _rebuild_within_ttl(self) -> Self:
        if self.min_rebuild_interval > self.cache_ttl:
            raise RuleError(
                {"min_rebuild_interval": self.min_rebuild_interval, "cache_ttl": self.cache_ttl},
                "min_rebuild_interval must be <= cache_ttl",
            )
        return self

    @model_validator(mode="after")
    def _readiness_group_known(self) -> Self:
        if self.readiness_group is not None and self.readiness_group not in self.groups:
            raise RuleError(
                {"readiness_group": self.readiness_group, "groups": sorted(self.groups)},
                "readiness_group must name one of the configured groups",
            )
        return self

    @property
    def loopback(self) -> bool:
        """Whether ``host`` is a loopback address (or ``localhost``)."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host.strip("[]")).is_loopback
        except ValueError:
            return False

    def token_value(self) -> str | None:
        """The bearer token in clear (None: write endpoints disabled)."""
        return self.token.get_secret_value() if self.token is not None else None
