"""Health statuses and the value objects checks and listeners exchange."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["CheckResult", "HealthChange", "ServiceStatus"]

IetfStatus = Literal["pass", "warn", "fail"]


class ServiceStatus(enum.Enum):
    """How healthy a check, a component or the whole service is.

    Statuses are ordered by severity (``HEALTHY < UNKNOWN < DEGRADED <
    UNHEALTHY < CRITICAL``) and compare with ``<``/``>``; :meth:`worst` picks
    the most severe. ``value`` is the lower-case name used in JSON.

    Mapping to the IETF health-check draft (``draft-inadarei-api-health-check``),
    available as :attr:`ietf`:

    ========== =====
    HEALTHY    pass
    UNKNOWN    warn  (not checked yet, or a dependency is not registered)
    DEGRADED   warn
    UNHEALTHY  fail
    CRITICAL   fail
    ========== =====
    """

    HEALTHY = "healthy"
    UNKNOWN = "unknown"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"
    CRITICAL = "critical"

    @property
    def severity(self) -> int:
        """0 (HEALTHY) to 4 (CRITICAL)."""
        return _SEVERITY[self]

    @property
    def ietf(self) -> IetfStatus:
        """``"pass"``, ``"warn"`` or ``"fail"`` (see the class docstring)."""
        return _IETF[self]

    @property
    def is_failing(self) -> bool:
        """True for UNHEALTHY and CRITICAL (IETF ``fail``)."""
        return self.severity >= _SEVERITY_UNHEALTHY

    @property
    def http_status(self) -> int:
        """The HTTP status a health endpoint answers with: 200, or 503 when failing."""
        return 503 if self.is_failing else 200

    @classmethod
    def worst(cls, *statuses: ServiceStatus) -> ServiceStatus:
        """The most severe of ``statuses`` (HEALTHY when none are given)."""
        result = cls.HEALTHY
        for status in statuses:
            if _SEVERITY[status] > _SEVERITY[result]:
                result = status
        return result

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, ServiceStatus):
            return NotImplemented
        return _SEVERITY[self] < _SEVERITY[other]

    def __le__(self, other: object) -> bool:
        if not isinstance(other, ServiceStatus):
            return NotImplemented
        return _SEVERITY[self] <= _SEVERITY[other]

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, ServiceStatus):
            return NotImplemented
        return _SEVERITY[self] > _SEVERITY[other]

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, ServiceStatus):
            return NotImplemented
        return _SEVERITY[self] >= _SEVERITY[other]


_SEVERITY: dict[ServiceStatus, int] = {
    ServiceStatus.HEALTHY: 0,
    ServiceStatus.UNKNOWN: 1,
    ServiceStatus.DEGRADED: 2,
    ServiceStatus.UNHEALTHY: 3,
    ServiceStatus.CRITICAL: 4,
}
_SEVERITY_UNHEALTHY = 3
_IETF: dict[ServiceStatus, IetfStatus] = {
    ServiceStatus.HEALTHY: "pass",
    ServiceStatus.UNKNOWN: "warn",
    ServiceStatus.DEGRADED: "warn",
    ServiceStatus.UNHEALTHY: "fail",
    ServiceStatus.CRITICAL: "fail",
}


@dataclass(frozen=True, slots=True)
class CheckResult:
    """What one run of a check found.

    ``status`` is the check's own verdict (HEALTHY passes; DEGRADED and
    UNKNOWN are warnings that still count as a success for the thresholds;
    UNHEALTHY and CRITICAL are failures). ``message`` is a short human text,
    ``details`` a JSON-ready mapping (copied on creation).
    """

    status: ServiceStatus
    message: str = ""
    details: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if not isinstance(self.status, ServiceStatus):
            raise TypeError(
                f"CheckResult.status must be a ServiceStatus, not {type(self.status).__name__}"
            )
        object.__setattr__(self, "details", dict(self.details))

    @property
    def passed(self) -> bool:
        """True unless the status is UNHEALTHY or CRITICAL."""
        return not self.status.is_failing

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready mapping."""
        return {"status": self.status.value, "message": self.message, "details": dict(self.details)}


@dataclass(frozen=True, slots=True)
class HealthChange:
    """A change of the overall status, as given to two-argument status listeners.

    ``check`` names the check whose result (or registration) caused the
    change, ``root_cause`` the deepest failing check behind the new status
    (None when it is HEALTHY), ``at`` the service clock's time in seconds.
    """

    previous: ServiceStatus
    current: ServiceStatus
    check: str | None
    root_cause: str | None
    at: float

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready mapping."""
        return {
            "previous": self.previous.value,
            "current": self.current.value,
            "check": self.check,
            "root_cause": self.root_cause,
            "at": self.at,
        }
