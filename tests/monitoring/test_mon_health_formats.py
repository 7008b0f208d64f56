"""IETF health format, health groups, readiness — an open breaker is a warning."""

from __future__ import annotations

import pytest
from mon_helpers import API, Start

from virtuoso_resilience import (
    CheckResult,
    HealthCheckConfig,
    ResilienceRegistry,
    ServiceStatus,
    SimpleHealthCheck,
)
from virtuoso_resilience.errors import ConfigurationError
from virtuoso_resilience.monitoring import HealthGroup, MonitoringSettings

IETF = {"Accept": "application/health+json"}


def add_check(registry: ResilienceRegistry, name: str, ok: bool, *, critical: bool = False) -> None:
    result = CheckResult(
        ServiceStatus.HEALTHY if ok else ServiceStatus.UNHEALTHY, "" if ok else "down"
    )
    registry.health.register_health_check(
        SimpleHealthCheck(
            name,
            lambda: result,
            HealthCheckConfig(critical=critical, failure_threshold=1),
        )
    )


async def test_ietf_format_when_asked_with_accept(
    start: Start, registry: ResilienceRegistry
) -> None:
    add_check(registry, "exchange", True)
    await registry.health.run_checks()
    api = await start()
    status, headers, body = await api.get(f"{API}/health", headers=IETF)
    assert status == 200
    assert headers["Content-Type"].startswith("application/health+json")
    assert body["status"] == "pass"
    entry = body["checks"]["exchange:responseTime"][0]
    assert entry["status"] == "pass"
    assert entry["observedUnit"] == "ms"
    assert entry["observedValue"] >= 0
    assert entry["time"].endswith("Z")


async def test_critical_failure_is_fail_and_503_in_both_formats(
    start: Start, registry: ResilienceRegistry
) -> None:
    add_check(registry, "exchange", False, critical=True)
    await registry.health.run_checks()
    api = await start()
    status, _, body = await api.get(f"{API}/health", headers=IETF)
    assert status == 503
    assert body["status"] == "fail"
    assert "root cause: exchange" in body["output"]
    status, _, body = await api.get(f"{API}/health")
    assert status == 503
    assert body["overall_status"] == "critical"
    status, _, body = await api.get("/readyz")
    assert status == 503
    assert body["ready"] is False
    assert "exchange" in body["output"]


async def test_an_open_breaker_is_warn_not_fail(start: Start, registry: ResilienceRegistry) -> None:
    registry.circuit_breaker("exchange_api").force_open()
    await registry.health.run_checks()
    api = await start()
    status, _, body = await api.get(f"{API}/health", headers=IETF)
    assert status == 200
    assert body["status"] == "warn"
    assert body["checks"]["circuit_breaker.exchange_api:responseTime"][0]["status"] == "warn"
    status, _, body = await api.get("/readyz")
    assert status == 200
    assert body == {"status": "warn", "ready": True}


async def test_an_open_breaker_fails_readiness_when_configured(
    start: Start, registry: ResilienceRegistry
) -> None:
    registry.circuit_breaker("exchange_api")
    registry.circuit_breaker("cache_api").force_open()
    api = await start(fail_readiness_on_open=("exchange_*",))
    status, _, body = await api.get("/readyz")
    assert status == 200  # cache_api is open, but it is not named
    registry.circuit_breaker("exchange_api").force_open()
    status, _, body = await api.get("/readyz")
    assert status == 503
    assert body["output"] == "circuit breaker 'exchange_api' is forced_open"
    status, _, body = await api.get(f"{API}/health")
    assert status == 200  # health itself still says warn


async def test_health_groups_have_their_own_endpoint(
    start: Start, registry: ResilienceRegistry
) -> None:
    add_check(registry, "exchange", True)
    add_check(registry, "cache", False)
    add_check(registry, "metrics_sink", False)
    await registry.health.run_checks()
    api = await start(
        groups={
            "trading": HealthGroup(include=("exchange",)),
            "storage": HealthGroup(include=("cache",)),
            "storage-strict": HealthGroup(include=("cache", "nothing*"), strict=True),
        }
    )
    status, _, body = await api.get(f"{API}/health/groups/trading")
    assert (status, body["overall_status"], body["status"]) == (200, "healthy", "pass")
    assert body["checks"] == {"exchange": "healthy"}
    status, _, body = await api.get(f"{API}/health/groups/storage")
    assert (status, body["overall_status"]) == (200, "degraded")  # non-critical: warn
    status, _, body = await api.get(f"{API}/health/groups/storage-strict", headers=IETF)
    assert status == 503
    assert body["status"] == "fail"
    assert list(body["checks"]) == ["cache:responseTime"]
    assert body["description"] == "health group storage-strict"
    status, _, body = await api.get(f"{API}/health/groups")
    assert [g["name"] for g in body] == ["trading", "storage", "storage-strict"]
    assert body[0]["members"] == ["exchange"]


async def test_unknown_group_is_404_naming_the_known(start: Start) -> None:
    api = await start(groups={"trading": HealthGroup(include=("exchange",))})
    status, _, body = await api.get(f"{API}/health/groups/..%2F..%2Fetc%2Fpasswd")
    assert status == 404
    assert "configured groups: trading" in body["message"]


async def test_readiness_can_follow_a_group(start: Start, registry: ResilienceRegistry) -> None:
    add_check(registry, "exchange", True)
    add_check(registry, "reporting", False)
    await registry.health.run_checks()
    api = await start(
        groups={"ready": HealthGroup(include=("reporting",), strict=True)},
        readiness_group="ready",
    )
    status, _, body = await api.get("/readyz", headers=IETF)
    assert status == 503
    assert body["output"].startswith("group 'ready' is unhealthy")


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"readiness_group": "missing"}, "readiness_group"),
        ({"groups": {"bad name!": HealthGroup()}}, "groups"),
        ({"fail_readiness_on_open": ("ok", "bad\x00")}, "fail_readiness_on_open"),
        ({"host": "127.0.0.1; rm -rf /"}, "host"),
        ({"host": ""}, "host"),
        ({"port": 65536}, "port"),
        ({"port": True}, "port"),
        ({"show_details": "sometimes"}, "show_details"),
        ({"cache_ttl": 0.0}, "cache_ttl"),
        ({"max_body_bytes": 10**9}, "max_body_bytes"),
        ({"cache_ttl": 0.5, "min_rebuild_interval": 1.0}, "min_rebuild_interval"),
    ],
)
def test_bad_settings_name_the_field(settings: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        MonitoringSettings(**settings)  # type: ignore[arg-type]
    assert field in str(caught.value)


def test_group_needs_at_least_one_pattern() -> None:
    with pytest.raises(ConfigurationError, match="include"):
        HealthGroup(include=())


def test_defaults_bind_loopback_8001_without_write_access() -> None:
    settings = MonitoringSettings()
    assert (settings.host, settings.port) == ("127.0.0.1", 8001)
    assert settings.loopback
    assert settings.token is None
    assert not MonitoringSettings(host="0.0.0.0").loopback
    assert MonitoringSettings(host="::1").loopback
