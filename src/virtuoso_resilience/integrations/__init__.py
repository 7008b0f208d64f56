"""Integrations: DI registration (svcs, dependency_injector) and the resilience manager.

``register_resilience_services(container, config)`` returns a
:class:`ResilienceManager`; see ``docs/di.md``.
"""

from __future__ import annotations

from ._di import register_resilience_services
from ._manager import ResilienceManager, UnhealthyError

__all__ = ["ResilienceManager", "UnhealthyError", "register_resilience_services"]
