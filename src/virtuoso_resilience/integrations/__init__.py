"""Integrations: DI registration (svcs, dependency_injector), the manager, the facade.

``register_resilience_services(container, config)`` returns a
:class:`ResilienceManager`; see ``docs/di.md``.
"""

from __future__ import annotations

from ._di import register_resilience_services
from ._facade import ResilientVirtuosoIntegration
from ._manager import ResilienceManager, UnhealthyError

__all__ = [
    "ResilienceManager",
    "ResilientVirtuosoIntegration",
    "UnhealthyError",
    "register_resilience_services",
]
