"""Dependency mapping: cascades, root causes, critical checks, cycles, unknown names."""

from __future__ import annotations

from typing import Any

import pytest

from virtuoso_resilience.errors import ConfigurationError
from virtuoso_resilience.health import (
    DependencyCycleError,
    HealthCheckConfig,
    HealthService,
    ServiceStatus,
    SimpleHealthCheck,
)
from virtuoso_resilience.health._graph import evaluate, find_cycle

S = ServiceStatus


class Switch:
    """A check function whose answer the test sets."""

    def __init__(self, value: Any = True) -> None:
        self.value = value

    def __call__(self) -> Any:
        return self.value


def add(
    service: HealthService, name: str, *, depends_on: tuple[str, ...] = (), **config: Any
) -> Switch:
    switch = Switch()
    config.setdefault("failure_threshold", 1)
    service.register_health_check(
        SimpleHealthCheck(
            name, switch, HealthCheckConfig(name=name, depends_on=depends_on, **config)
        )
    )
    return switch


def state(service: HealthService) -> dict[str, tuple[S, str | None]]:
    return {n: (c.status, c.root_cause) for n, c in service.report().checks.items()}


@pytest.fixture
def three_levels(service: HealthService) -> dict[str, Switch]:
    """strategy -> market_data -> {exchange, cache}; exchange -> network."""
    return {
        "network": add(service, "network"),
        "exchange": add(service, "exchange", depends_on=("network",)),
        "cache": add(service, "cache"),
        "market_data": add(service, "market_data", depends_on=("exchange", "cache")),
        "strategy": add(service, "strategy", depends_on=("market_data",)),
    }


async def test_all_healthy(service: HealthService, three_levels: dict[str, Switch]) -> None:
    await service.run_checks()
    assert all(v == (S.HEALTHY, None) for v in state(service).values())
    assert service.get_overall_status() is S.HEALTHY


async def test_non_critical_failure_degrades_dependants_with_root_cause(
    service: HealthService, three_levels: dict[str, Switch]
) -> None:
    three_levels["network"].value = False
    await service.run_checks()
    assert state(service) == {
        "network": (S.UNHEALTHY, "network"),
        "exchange": (S.DEGRADED, "network"),
        "cache": (S.HEALTHY, None),
        "market_data": (S.DEGRADED, "network"),
        "strategy": (S.DEGRADED, "network"),
    }
    # No critical check failed: the service is degraded (IETF warn, HTTP 200), not failing.
    assert service.get_overall_status() is S.DEGRADED
    assert service.get_overall_status().http_status == 200
    assert service.root_cause() == "network"
    assert service.root_cause("strategy") == "network"


async def test_critical_failure_makes_dependants_critical(service: HealthService) -> None:
    exchange = add(service, "exchange", critical=True)
    md = add(service, "market_data", depends_on=("exchange",))
    add(service, "strategy", depends_on=("market_data",))
    add(service, "cache")
    exchange.value = False
    md.value = False  # market_data also fails by itself: the deeper cause wins
    await service.run_checks()
    assert state(service) == {
        "exchange": (S.CRITICAL, "exchange"),
        "market_data": (S.CRITICAL, "exchange"),
        "strategy": (S.CRITICAL, "exchange"),
        "cache": (S.HEALTHY, None),
    }
    assert service.get_overall_status() is S.CRITICAL
    assert service.root_cause() == "exchange"


async def test_own_failure_worse_than_a_dependency_is_its_own_root_cause(
    service: HealthService,
) -> None:
    add(service, "exchange").value = S.DEGRADED
    add(service, "market_data", depends_on=("exchange",)).value = False
    await service.run_checks()
    assert state(service)["market_data"] == (S.UNHEALTHY, "market_data")


async def test_deepest_failure_is_the_root_cause(
    service: HealthService, three_levels: dict[str, Switch]
) -> None:
    three_levels["network"].value = False
    three_levels["exchange"].value = False
    three_levels["market_data"].value = False
    await service.run_checks()
    s = state(service)
    assert s["market_data"] == (S.UNHEALTHY, "network")
    assert s["strategy"] == (S.DEGRADED, "network")


async def test_worst_dependency_wins_the_root_cause(
    service: HealthService, three_levels: dict[str, Switch]
) -> None:
    three_levels["exchange"].value = S.DEGRADED
    three_levels["cache"].value = False
    await service.run_checks()
    s = state(service)
    assert s["market_data"] == (S.DEGRADED, "cache")
    assert s["exchange"] == (S.DEGRADED, "exchange")


async def test_recovery_clears_the_cascade(
    service: HealthService, three_levels: dict[str, Switch]
) -> None:
    three_levels["network"].value = False
    await service.run_checks()
    assert service.get_status("strategy") is S.DEGRADED
    three_levels["network"].value = True
    await service.run_check("network")
    assert service.get_status("strategy") is S.HEALTHY
    assert service.get_overall_status() is S.HEALTHY


async def test_unknown_dependency_is_unknown_until_registered(service: HealthService) -> None:
    add(service, "market_data", depends_on=("exchange",))
    await service.run_checks()
    assert service.get_status("exchange") is S.UNKNOWN
    assert state(service)["market_data"] == (S.UNKNOWN, "exchange")
    assert service.report().missing == ("exchange",)
    assert service.snapshot()["missing_dependencies"] == ["exchange"]
    with pytest.raises(KeyError, match="no health check named 'nope'"):
        service.get_status("nope")

    add(service, "exchange")
    assert service.report().missing == ()
    await service.run_checks()
    assert state(service)["market_data"] == (S.HEALTHY, None)

    service.unregister_health_check("exchange")
    assert service.get_status("market_data") is S.UNKNOWN
    assert service.report().missing == ("exchange",)


async def test_dependencies_given_at_registration(service: HealthService) -> None:
    add(service, "exchange").value = False
    service.register_health_check(
        SimpleHealthCheck("md", lambda: True, HealthCheckConfig(failure_threshold=1)),
        depends_on=["exchange"],
    )
    await service.run_checks()
    report = service.report().checks["md"]
    assert report.depends_on == ("exchange",)
    assert (report.status, report.root_cause) == (S.DEGRADED, "exchange")


@pytest.mark.parametrize(
    ("edges", "last", "cycle"),
    [
        ({}, ("a", ("a",)), ("a", "a")),
        ({"b": ("a",)}, ("a", ("b",)), ("a", "b", "a")),
        ({"b": ("c",), "c": ("a",)}, ("a", ("b",)), ("a", "b", "c", "a")),
    ],
)
async def test_cycles_are_rejected_with_the_path(
    service: HealthService,
    edges: dict[str, tuple[str, ...]],
    last: tuple[str, tuple[str, ...]],
    cycle: tuple[str, ...],
) -> None:
    for name, deps in edges.items():
        add(service, name, depends_on=deps)
    name, deps = last
    with pytest.raises(DependencyCycleError) as info:
        add(service, name, depends_on=deps)
    assert info.value.cycle == cycle
    assert " -> ".join(cycle) in str(info.value)
    assert isinstance(info.value, ConfigurationError)
    assert info.value.fields == ("depends_on",)
    assert name not in service.checks  # nothing half-registered


async def test_cycle_closed_by_a_late_registration(service: HealthService) -> None:
    add(service, "a", depends_on=("b",))  # b unknown for now: allowed
    add(service, "x", depends_on=("a",))
    with pytest.raises(DependencyCycleError, match="b -> a -> b"):
        add(service, "b", depends_on=("a",))
    add(service, "b")  # without the cycle it is fine
    assert set(service.checks) == {"a", "x", "b"}


def test_find_cycle_and_evaluate_directly() -> None:
    graph = {"a": ("b",), "b": ("c",), "c": ()}
    assert find_cycle(graph, "a") is None
    assert find_cycle({**graph, "c": ("a",)}, "c") == ("c", "a", "b", "c")
    nodes = evaluate(graph, {"a": S.HEALTHY, "b": S.HEALTHY, "c": S.CRITICAL})
    assert nodes == {
        "a": (S.CRITICAL, "c"),
        "b": (S.CRITICAL, "c"),
        "c": (S.CRITICAL, "c"),
    }


def test_evaluate_a_deep_chain_without_recursion() -> None:
    n = 5000
    graph: dict[str, tuple[str, ...]] = {f"n{i}": (f"n{i + 1}",) for i in range(n)}
    graph[f"n{n}"] = ()
    own = dict.fromkeys(graph, S.HEALTHY)
    own[f"n{n}"] = S.UNHEALTHY
    nodes = evaluate(graph, own)
    assert nodes["n0"] == (S.DEGRADED, f"n{n}")


# ------------------------------------------------------- the overall status


async def test_failed_non_critical_leaf_only_degrades_the_service(
    service: HealthService,
) -> None:
    add(service, "exchange", critical=True)
    add(service, "optional_metrics_sink").value = False
    await service.run_checks()
    assert service.get_status("optional_metrics_sink") is S.UNHEALTHY  # its own status stays
    overall = service.get_overall_status()
    assert (overall, overall.ietf, overall.http_status) == (S.DEGRADED, "warn", 200)
    assert service.root_cause() == "optional_metrics_sink"
    body = service.to_health_json()
    assert body["status"] == "warn"
    assert body["checks"]["optional_metrics_sink:responseTime"][0]["status"] == "fail"


async def test_failed_critical_check_fails_the_service(service: HealthService) -> None:
    exchange = add(service, "exchange", critical=True)
    add(service, "optional_metrics_sink").value = False
    exchange.value = False
    await service.run_checks()
    overall = service.get_overall_status()
    assert (overall, overall.ietf, overall.http_status) == (S.CRITICAL, "fail", 503)
    assert service.root_cause() == "exchange"


async def test_critical_through_a_dependency_counts_in_full(service: HealthService) -> None:
    add(service, "market_data", depends_on=("exchange",))  # not critical itself
    add(service, "exchange", critical=True).value = False
    await service.run_checks()
    assert service.report().checks["market_data"].critical is False
    assert service.get_status("market_data") is S.CRITICAL
    assert service.get_overall_status() is S.CRITICAL
    assert service.root_cause() == "exchange"  # the first counted (market_data) names it


async def test_a_check_reporting_critical_itself_counts_in_full(service: HealthService) -> None:
    add(service, "disk").value = S.CRITICAL  # not configured critical, but says so
    await service.run_checks()
    assert service.get_overall_status() is S.CRITICAL


async def test_overall_root_cause_prefers_the_worse_check(service: HealthService) -> None:
    add(service, "slow_cache").value = S.DEGRADED  # registered first
    add(service, "broken_feed").value = False
    await service.run_checks()
    assert service.get_overall_status() is S.DEGRADED
    assert service.root_cause() == "broken_feed"  # UNHEALTHY beats DEGRADED for the cause


async def test_critical_flag_changes_the_overall_status_at_once(service: HealthService) -> None:
    sink = add(service, "sink")
    sink.value = False
    await service.run_checks()
    assert service.get_overall_status() is S.DEGRADED
    service.get_check("sink").config.critical = True
    assert service.get_overall_status() is S.CRITICAL
    service.get_check("sink").config.critical = False
    assert service.get_overall_status() is S.DEGRADED


def test_overall_status_rule_directly() -> None:
    from virtuoso_resilience.health._graph import overall_status

    assert overall_status([]) == (S.HEALTHY, None)
    assert overall_status([((S.UNHEALTHY, "a"), False)]) == (S.DEGRADED, "a")
    assert overall_status([((S.UNHEALTHY, "a"), True)]) == (S.UNHEALTHY, "a")
    assert overall_status([((S.CRITICAL, "c"), False), ((S.UNHEALTHY, "a"), True)]) == (
        S.CRITICAL,
        "c",
    )
    assert overall_status([((S.UNKNOWN, "u"), False), ((S.HEALTHY, None), True)]) == (
        S.UNKNOWN,
        "u",
    )
