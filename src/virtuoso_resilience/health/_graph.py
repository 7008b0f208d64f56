"""The dependency graph: cycle detection, effective status and root cause.

Rules (documented in docs/health.md):

* a check's *effective* status is the worst of its own status and what each
  dependency passes on: HEALTHY nothing, UNKNOWN and DEGRADED themselves,
  UNHEALTHY passes on DEGRADED (a failed non-critical dependency degrades
  its dependants), CRITICAL passes on CRITICAL (transitively);
* a dependency that is not registered is UNKNOWN;
* the root cause of a non-healthy check follows its worst dependency (ties:
  declaration order) for as long as that dependency is at least as bad as the
  check's own status, down to the deepest failing check (possibly itself);
* the *overall* status is the worst effective status of all checks, where a
  check that is not critical counts at most as DEGRADED unless its effective
  status is CRITICAL: only critical failures fail the service.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence

from ..errors import ConfigurationError, FieldError
from ._status import ServiceStatus

__all__ = [
    "DependencyCycleError",
    "NodeStatus",
    "evaluate",
    "find_cycle",
    "overall_status",
    "reevaluate",
]

_H = ServiceStatus.HEALTHY
_PASSED_ON: dict[ServiceStatus, ServiceStatus] = {
    ServiceStatus.HEALTHY: ServiceStatus.HEALTHY,
    ServiceStatus.UNKNOWN: ServiceStatus.UNKNOWN,
    ServiceStatus.DEGRADED: ServiceStatus.DEGRADED,
    ServiceStatus.UNHEALTHY: ServiceStatus.DEGRADED,
    ServiceStatus.CRITICAL: ServiceStatus.CRITICAL,
}

NodeStatus = tuple[ServiceStatus, str | None]
"""(effective status, root cause)."""

_CAPPED = ServiceStatus.DEGRADED  # the most a non-critical check counts for overall


class DependencyCycleError(ConfigurationError):
    """Registering a check would close a dependency cycle.

    ``cycle`` is the path, first name repeated at the end: ``("a", "b", "a")``.
    """

    def __init__(self, check: str, depends_on: Sequence[str], cycle: Sequence[str]) -> None:
        self.cycle = tuple(cycle)
        path = " -> ".join(self.cycle)
        super().__init__(
            [
                FieldError(
                    f"HealthCheck {check!r}",
                    "depends_on",
                    tuple(depends_on),
                    f"would create a dependency cycle: {path}",
                )
            ]
        )
        self.args = (f"health check {check!r} cannot be registered: dependency cycle {path}",)


def find_cycle(graph: Mapping[str, Sequence[str]], start: str) -> tuple[str, ...] | None:
    """The shortest path ``start -> ... -> start`` through ``graph``, or None.

    The graph without ``start``'s edges must be acyclic, which holds when
    every registration is checked.
    """
    parents: dict[str, str] = {}
    queue = deque([start])
    seen = {start}
    while queue:
        node = queue.popleft()
        for dep in graph.get(node, ()):
            if dep == start:
                path = [node]
                while path[-1] != start:
                    path.append(parents[path[-1]])
                path.reverse()
                path.append(start)
                return tuple(path)
            if dep not in seen:
                seen.add(dep)
                parents[dep] = node
                queue.append(dep)
    return None


def evaluate(
    graph: Mapping[str, Sequence[str]], own: Mapping[str, ServiceStatus]
) -> dict[str, NodeStatus]:
    """Effective status and root cause of every node (registered or referenced).

    ``graph`` maps each registered check to its dependencies, ``own`` each
    registered check to its own status. The graph must be acyclic.
    """
    result: dict[str, NodeStatus] = {}
    _walk(graph, own.get, graph, result)
    return result


def reevaluate(
    graph: Mapping[str, Sequence[str]],
    own: Callable[[str], ServiceStatus | None],
    nodes: dict[str, NodeStatus],
    changed: str,
    dependants: Mapping[str, Iterable[str]],
) -> None:
    """Update ``nodes`` (what :func:`evaluate` returned) after ``changed``'s own
    status, registration or dependencies changed.

    Only ``changed`` and the checks that depend on it, directly or not, are
    evaluated again (``dependants`` maps a name to the checks naming it in
    their ``depends_on``), so a change costs the size of what it affects,
    not of the whole graph. ``own(name)`` is a registered check's own status.
    """
    affected = {changed}
    queue = [changed]
    while queue:
        for dependant in dependants.get(queue.pop(), ()):
            if dependant not in affected:
                affected.add(dependant)
                queue.append(dependant)
    for name in affected:
        nodes.pop(name, None)
    _walk(graph, own, affected, nodes)
    if changed not in graph and not dependants.get(changed):
        nodes.pop(changed, None)  # unregistered and referenced by nobody


def _walk(
    graph: Mapping[str, Sequence[str]],
    own: Callable[[str], ServiceStatus | None],
    roots: Iterable[str],
    result: dict[str, NodeStatus],
) -> None:
    for root in roots:
        if root in result:
            continue
        # Iterative post-order walk: a node is resolved once all its deps are.
        stack: list[tuple[str, bool]] = [(root, False)]
        while stack:
            node, expanded = stack.pop()
            if node in result:
                continue
            deps = graph.get(node)
            if deps is None:  # referenced but not registered
                result[node] = (ServiceStatus.UNKNOWN, node)
                continue
            if not expanded:
                stack.append((node, True))
                stack.extend((dep, False) for dep in deps if dep not in result)
                continue
            result[node] = _resolve(node, own(node) or ServiceStatus.UNKNOWN, deps, result)


# Plain int ranks: these functions run over the whole graph on every status
# change, and ServiceStatus's rich comparisons are Python-level calls.
_RANK: dict[ServiceStatus, int] = {status: status.severity for status in ServiceStatus}


def _resolve(
    node: str, own: ServiceStatus, deps: Sequence[str], done: Mapping[str, NodeStatus]
) -> NodeStatus:
    rank = _RANK
    effective = own
    effective_rank = own_rank = rank[own]
    worst_dep: str | None = None
    worst_dep_rank = 0
    for dep in deps:
        dep_status = done[dep][0]
        passed_on = _PASSED_ON[dep_status]
        if rank[passed_on] > effective_rank:
            effective, effective_rank = passed_on, rank[passed_on]
        if rank[dep_status] > worst_dep_rank:
            worst_dep, worst_dep_rank = dep, rank[dep_status]
    if effective is _H:
        return (_H, None)
    if worst_dep is not None and worst_dep_rank >= own_rank:
        return (effective, done[worst_dep][1])
    return (effective, node)


def overall_status(
    checks: Iterable[tuple[NodeStatus, bool]],
) -> tuple[ServiceStatus, str | None]:
    """The service's status and its root cause from ``((status, root), critical)`` pairs.

    A check that is not critical counts at most as DEGRADED, unless its
    effective status is CRITICAL (a critical dependency failed, or it said
    CRITICAL itself). Among equal counts the check whose own effective status
    is worse names the root cause; then the first one (registration order).
    """
    rank = _RANK
    capped = rank[_CAPPED]
    overall = ServiceStatus.HEALTHY
    overall_rank = worst_rank = 0
    root: str | None = None
    for (status, node_root), critical in checks:
        status_rank = counted_rank = rank[status]
        counted = status
        if not critical and status is not ServiceStatus.CRITICAL and status_rank > capped:
            counted, counted_rank = _CAPPED, capped
        if counted_rank > overall_rank or (
            counted_rank == overall_rank and status_rank > worst_rank
        ):
            overall, overall_rank, worst_rank, root = counted, counted_rank, status_rank, node_root
    return overall, (root if overall is not ServiceStatus.HEALTHY else None)
