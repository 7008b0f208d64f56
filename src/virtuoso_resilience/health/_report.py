"""What the health service reports: one check, or the whole service at one moment."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ._metrics import CheckMetricsSnapshot
from ._status import CheckResult, ServiceStatus

__all__ = ["STILL_RUNNING", "CheckReport", "HealthReport"]

STILL_RUNNING = "ignores cancellation and is still running"
"""How messages say that a cut-off run of a check is still alive."""


@dataclass(frozen=True, slots=True)
class CheckReport:
    """One check as the service sees it at one moment (times: service clock, seconds).

    ``status`` is the *effective* status (own status combined with the
    dependencies'), ``own_status`` what the check's own results say,
    ``root_cause`` the deepest failing check behind ``status`` (None when
    HEALTHY; the check itself when nothing deeper explains it).
    """

    name: str
    status: ServiceStatus
    own_status: ServiceStatus
    root_cause: str | None
    depends_on: tuple[str, ...]
    dependants: tuple[str, ...]
    critical: bool
    component_type: str
    result: CheckResult | None
    last_run_at: float | None
    last_duration: float | None
    config: dict[str, Any]
    metrics: CheckMetricsSnapshot

    def output(self) -> str:
        """A short explanation of a non-healthy status ("" when HEALTHY)."""
        parts: list[str] = []
        if self.own_status is not ServiceStatus.HEALTHY:
            if self.result is None:
                parts.append("not checked yet")
            elif self.result.message:
                parts.append(self.result.message)
            else:
                parts.append(f"check reports {self.own_status.value}")
        if self.status > self.own_status and self.root_cause not in (None, self.name):
            parts.append(f"affected by dependency {self.root_cause!r}")
        if self.metrics.abandoned_running and not (
            self.result is not None and STILL_RUNNING in self.result.message
        ):
            parts.append(f"a run that was cut off {STILL_RUNNING}")
        return "; ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready mapping."""
        return {
            "name": self.name,
            "status": self.status.value,
            "ietf_status": self.status.ietf,
            "own_status": self.own_status.value,
            "root_cause": self.root_cause,
            "depends_on": list(self.depends_on),
            "dependants": list(self.dependants),
            "critical": self.critical,
            "component_type": self.component_type,
            "message": self.result.message if self.result is not None else None,
            "details": dict(self.result.details) if self.result is not None else {},
            "output": self.output(),
            "last_run_at": self.last_run_at,
            "last_duration": self.last_duration,
            "config": dict(self.config),
            "metrics": self.metrics.as_dict(),
        }


@dataclass(frozen=True, slots=True)
class HealthReport:
    """The whole service at one moment: overall status, root cause, every check.

    ``missing`` lists dependency names no registered check answers to (they
    count as UNKNOWN). ``at`` is the service clock's time, ``wall_time`` the
    matching Unix time (seconds).
    """

    status: ServiceStatus
    root_cause: str | None
    checks: Mapping[str, CheckReport]
    missing: tuple[str, ...]
    running: bool
    at: float
    wall_time: float

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready mapping (what :meth:`HealthService.snapshot` returns)."""
        return {
            "overall_status": self.status.value,
            "ietf_status": self.status.ietf,
            "root_cause": self.root_cause,
            "running": self.running,
            "at": self.at,
            "checks": {name: c.as_dict() for name, c in self.checks.items()},
            "missing_dependencies": list(self.missing),
        }

    def to_health_json(
        self, *, description: str | None = None, version: str | None = None
    ) -> dict[str, Any]:
        """An ``application/health+json`` body (draft-inadarei-api-health-check).

        Each check appears as ``"<name>:responseTime"`` with its effective
        status, the last run's duration in milliseconds as ``observedValue``
        and, for ``warn``/``fail``, an ``output`` that names the root cause.
        """
        body: dict[str, Any] = {"status": self.status.ietf}
        if version is not None:
            body["version"] = version
        if description is not None:
            body["description"] = description
        if self.status is not ServiceStatus.HEALTHY:
            body["output"] = f"{self.status.value}" + (
                f"; root cause: {self.root_cause}" if self.root_cause else ""
            )
        body["checks"] = self.ietf_checks()
        return body

    def ietf_checks(self, members: Iterable[str] | None = None) -> dict[str, list[dict[str, Any]]]:
        """The ``checks`` member of an ``application/health+json`` body: one
        ``"<name>:responseTime"`` entry per check (only ``members`` when given)."""
        wanted = None if members is None else set(members)
        checks: dict[str, list[dict[str, Any]]] = {}
        for name, c in self.checks.items():
            if wanted is not None and name not in wanted:
                continue
            entry: dict[str, Any] = {
                "componentId": name,
                "componentType": c.component_type,
                "status": c.status.ietf,
            }
            if c.last_duration is not None:
                entry["observedValue"] = round(c.last_duration * 1000.0, 3)
                entry["observedUnit"] = "ms"
            if c.last_run_at is not None:
                entry["time"] = _iso(self.wall_time - (self.at - c.last_run_at))
            if c.status is not ServiceStatus.HEALTHY:
                entry["output"] = c.output()
            if c.depends_on:
                entry["dependsOn"] = list(c.depends_on)
            checks[f"{name.replace(':', '_')}:responseTime"] = [entry]
        return checks


def _iso(timestamp: float) -> str:
    return (
        datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    )
