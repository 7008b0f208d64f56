"""ServiceStatus, CheckResult and HealthCheckConfig."""

from __future__ import annotations

import dataclasses
import json

import pytest

from virtuoso_resilience.errors import ConfigurationError
from virtuoso_resilience.health import (
    CheckResult,
    HealthChange,
    HealthCheckConfig,
    ServiceStatus,
    SimpleHealthCheck,
)

S = ServiceStatus


def test_ietf_mapping_and_http_status() -> None:
    assert {s: s.ietf for s in S} == {
        S.HEALTHY: "pass",
        S.UNKNOWN: "warn",
        S.DEGRADED: "warn",
        S.UNHEALTHY: "fail",
        S.CRITICAL: "fail",
    }
    assert [s.http_status for s in (S.HEALTHY, S.UNKNOWN, S.DEGRADED)] == [200, 200, 200]
    assert [s.http_status for s in (S.UNHEALTHY, S.CRITICAL)] == [503, 503]
    assert [s.value for s in S] == ["healthy", "unknown", "degraded", "unhealthy", "critical"]


def test_severity_order_and_worst() -> None:
    ordered = [S.HEALTHY, S.UNKNOWN, S.DEGRADED, S.UNHEALTHY, S.CRITICAL]
    assert sorted(reversed(ordered)) == ordered
    assert [s.severity for s in ordered] == [0, 1, 2, 3, 4]
    assert S.DEGRADED < S.UNHEALTHY <= S.UNHEALTHY < S.CRITICAL
    assert S.CRITICAL > S.HEALTHY >= S.HEALTHY
    assert S.worst() is S.HEALTHY
    assert S.worst(S.HEALTHY, S.UNKNOWN) is S.UNKNOWN
    assert S.worst(S.DEGRADED, S.UNKNOWN, S.HEALTHY) is S.DEGRADED
    assert S.worst(*ordered) is S.CRITICAL
    assert not S.DEGRADED.is_failing
    assert S.UNHEALTHY.is_failing
    with pytest.raises(TypeError):
        _ = S.HEALTHY < 1


def test_check_result_is_frozen_and_copies_details() -> None:
    details = {"latency": 1}
    result = CheckResult(S.DEGRADED, "slow", details)
    details["latency"] = 99
    assert result.details == {"latency": 1}
    assert result.passed
    assert not CheckResult(S.UNHEALTHY).passed
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.status = S.HEALTHY  # type: ignore[misc]
    with pytest.raises(TypeError, match="ServiceStatus"):
        CheckResult("healthy")  # type: ignore[arg-type]
    assert json.loads(json.dumps(result.as_dict())) == {
        "status": "degraded",
        "message": "slow",
        "details": {"latency": 1},
    }


def test_health_change_as_dict() -> None:
    change = HealthChange(S.HEALTHY, S.CRITICAL, "exchange", "exchange", 12.5)
    assert change.as_dict() == {
        "previous": "healthy",
        "current": "critical",
        "check": "exchange",
        "root_cause": "exchange",
        "at": 12.5,
    }


def test_config_defaults() -> None:
    config = HealthCheckConfig(name="exchange_health", interval=60.0)
    assert config.interval == 60.0
    assert config.timeout == 10.0
    assert config.failure_threshold == 3
    assert config.success_threshold == 1
    assert config.critical is False
    assert config.depends_on == ()


@pytest.mark.parametrize(
    ("field", "value", "allowed"),
    [
        ("interval", 0.0, "> 0"),
        ("interval", -5.0, "> 0"),
        ("timeout", 0, "> 0"),
        ("failure_threshold", 0, ">= 1"),
        ("success_threshold", -1, ">= 1"),
        ("interval", "60", "a number"),
        ("critical", "yes", "a boolean"),
    ],
)
def test_config_rejects_bad_values_and_keeps_the_old(
    field: str, value: object, allowed: str
) -> None:
    with pytest.raises(ConfigurationError) as info:
        HealthCheckConfig(**{field: value})  # type: ignore[arg-type]
    assert info.value.fields == (field,)
    assert allowed in str(info.value)

    config = HealthCheckConfig()
    before = getattr(config, field)
    with pytest.raises(ConfigurationError) as info:
        setattr(config, field, value)
    assert field in str(info.value)
    assert getattr(config, field) == before


def test_runtime_update_is_validated_and_applied() -> None:
    async def ping() -> None:
        return None

    check = SimpleHealthCheck("exchange", ping, HealthCheckConfig(name="exchange_health"))
    check.config.interval = 30.0
    assert check.config.interval == 30.0
    check.config.interval = 15  # an int is a number of seconds too
    assert check.config.interval == 15.0


def test_depends_on_accepts_a_list_dedupes_and_is_fixed() -> None:
    config = HealthCheckConfig(depends_on=["exchange", "cache", "exchange"])  # type: ignore[arg-type]
    assert config.depends_on == ("exchange", "cache")
    with pytest.raises(ConfigurationError) as info:
        config.depends_on = ("other",)
    assert info.value.fields == ("depends_on",)
    assert config.depends_on == ("exchange", "cache")
    with pytest.raises(ConfigurationError):
        HealthCheckConfig(depends_on=["ok", ""])  # type: ignore[arg-type]


def test_unknown_config_field_is_rejected() -> None:
    with pytest.raises(ConfigurationError, match="unknown field"):
        HealthCheckConfig(intervall=3.0)  # type: ignore[call-arg]
