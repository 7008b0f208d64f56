"""Health bodies: the seed's JSON summary, the IETF ``application/health+json``
format, health groups and readiness. Everything reads cached state; nothing
here runs a check."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from ..health import HealthReport, HealthService, ServiceStatus
from ..policies.circuit_breaker import CircuitBreaker, CircuitState
from ._settings import HealthGroup

__all__ = [
    "HEALTH_JSON",
    "GroupStatus",
    "Readiness",
    "group_status",
    "ietf_body",
    "matches",
    "readiness",
    "summary_body",
]

HEALTH_JSON: Final = "application/health+json"
"""The IETF health-check media type (draft-inadarei-api-health-check)."""

_OPEN_STATES: Final = frozenset({CircuitState.OPEN, CircuitState.FORCED_OPEN})


def matches(name: str, patterns: Iterable[str]) -> bool:
    """Whether ``name`` is one of ``patterns`` or matches one (``fnmatch``, case-sensitive)."""
    return any(name == p or fnmatch.fnmatchcase(name, p) for p in patterns)


def _contribution(status: ServiceStatus, critical: bool, strict: bool) -> ServiceStatus:
    if strict or critical or status is ServiceStatus.CRITICAL:
        return status
    return status if status <= ServiceStatus.DEGRADED else ServiceStatus.DEGRADED


@dataclass(frozen=True, slots=True)
class GroupStatus:
    """A health group's status now: ``members`` are the check names it covers."""

    name: str
    status: ServiceStatus
    root_cause: str | None
    members: tuple[str, ...]


def group_status(service: HealthService, name: str, group: HealthGroup) -> GroupStatus:
    """The worst contribution of the group's checks (see :class:`HealthGroup`)."""
    members = tuple(n for n in service.checks if matches(n, group.include))
    worst = ServiceStatus.HEALTHY
    root: str | None = None
    for member in members:
        status = service.get_status(member)
        critical = service.get_check(member).config.critical
        contribution = _contribution(status, critical, group.strict)
        if contribution > worst:
            worst, root = contribution, service.root_cause(member)
    return GroupStatus(name, worst, root, members)


def summary_body(service: HealthService, *, details: bool) -> dict[str, Any]:
    """``GET /api/monitoring/health``: ``overall_status`` (the seed's key), the
    IETF ``status`` and, with details, each check's status and the counts."""
    overall = service.get_overall_status()
    body: dict[str, Any] = {
        "overall_status": overall.value,
        "status": overall.ietf,
    }
    if not details:
        return body
    checks = {name: service.get_status(name).value for name in service.checks}
    counts: dict[str, int] = {}
    for value in checks.values():
        counts[value] = counts.get(value, 0) + 1
    body.update(
        {
            "root_cause": service.root_cause(),
            "running": service.running,
            "checks": checks,
            "counts": counts,
        }
    )
    return body


def ietf_body(
    report: HealthReport | None,
    status: ServiceStatus,
    *,
    root_cause: str | None = None,
    members: Iterable[str] | None = None,
    description: str | None = None,
    extra_output: str | None = None,
) -> dict[str, Any]:
    """An ``application/health+json`` body with top-level ``status``.

    With a ``report`` (details allowed), ``checks`` holds one entry per check
    (only ``members`` when given), keyed ``<check>:responseTime``, with the
    last run's duration as ``observedValue`` in ``ms``, ``time`` of that
    run, the check's IETF status, and ``output`` for warn/fail.
    """
    body: dict[str, Any] = {"status": status.ietf}
    if description is not None:
        body["description"] = description
    outputs = []
    if status is not ServiceStatus.HEALTHY:
        outputs.append(status.value + (f"; root cause: {root_cause}" if root_cause else ""))
    if extra_output:
        outputs.append(extra_output)
    if outputs:
        body["output"] = "; ".join(outputs)
    if report is None:
        return body
    body["checks"] = report.ietf_checks(members)
    return body


@dataclass(frozen=True, slots=True)
class Readiness:
    """Whether the service should receive traffic, and why not."""

    ready: bool
    status: ServiceStatus
    reasons: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        """The ``/readyz`` body (IETF shape: ``status`` pass/warn/fail)."""
        body: dict[str, Any] = {
            "status": (self.status.ietf if self.ready else "fail"),
            "ready": self.ready,
        }
        if self.reasons:
            body["output"] = "; ".join(self.reasons)
        return body


def readiness(
    service: HealthService,
    breakers: Mapping[str, Any],
    *,
    started: bool,
    draining: bool,
    group: tuple[str, HealthGroup] | None,
    fail_on_open: tuple[str, ...],
) -> Readiness:
    """Ready when started, not draining, the critical checks (or the readiness
    group) pass, and no breaker named in ``fail_on_open`` is open."""
    if not started:
        return Readiness(False, ServiceStatus.UNKNOWN, ("starting",))
    if draining:
        return Readiness(False, ServiceStatus.UNKNOWN, ("draining: shutting down",))
    if group is not None:
        state = group_status(service, *group)
        status, root, label = state.status, state.root_cause, f"group {group[0]!r}"
    else:
        status, root, label = service.get_overall_status(), service.root_cause(), "health"
    reasons: list[str] = []
    if status.is_failing:
        reasons.append(f"{label} is {status.value}" + (f" (root cause: {root})" if root else ""))
    if fail_on_open:
        for name, cb in breakers.items():
            if (
                isinstance(cb, CircuitBreaker)
                and cb.state in _OPEN_STATES
                and matches(name, fail_on_open)
            ):
                reasons.append(f"circuit breaker {name!r} is {cb.state.value}")
    return Readiness(not reasons, status, tuple(reasons))
