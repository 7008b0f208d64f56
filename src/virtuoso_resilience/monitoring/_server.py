"""Running the monitoring app: bind, start, drain, stop."""

from __future__ import annotations

import logging
from types import TracebackType

from aiohttp import web

from ..clock import Clock
from ..registry import ResilienceRegistry
from ._app import MONITORING_STATE, create_monitoring_app
from ._settings import MonitoringSettings, ShowDetails
from ._state import MonitoringState

__all__ = ["MonitoringServer"]

log = logging.getLogger("virtuoso_resilience.monitoring")


class MonitoringServer:
    """Serves :func:`create_monitoring_app` on ``settings.host:settings.port``
    (default ``127.0.0.1:8001``) in the running event loop.

    ``stop()`` is graceful: readiness answers 503 at once, for
    ``settings.drain_seconds`` (on ``clock``) new requests are still
    served, then the listener closes and in-flight requests get up to
    ``settings.shutdown_timeout`` seconds to finish. ``async with`` starts
    and stops it.
    """

    def __init__(
        self,
        registry: ResilienceRegistry,
        settings: MonitoringSettings | None = None,
        *,
        clock: Clock | None = None,
    ) -> None:
        self.settings = settings if settings is not None else MonitoringSettings()
        self.app = create_monitoring_app(registry, self.settings, clock=clock)
        """The aiohttp application; add routes to ``app.router`` before :meth:`start`."""
        self._clock = self.state.clock
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    @property
    def state(self) -> MonitoringState:
        """The app's cached state (registry, settings, event log)."""
        return self.app[MONITORING_STATE]

    @property
    def running(self) -> bool:
        """Whether the server is listening."""
        return self._runner is not None

    @property
    def port(self) -> int:
        """The port it listens on (the real one when ``settings.port`` is 0)."""
        if self._port is None:
            raise RuntimeError("the monitoring server is not started")
        return self._port

    @property
    def url(self) -> str:
        """``http://host:port`` of the running server."""
        host = self.settings.host
        shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
        return f"http://{shown}:{self.port}"

    async def start(self) -> None:
        """Bind and serve. A port in use is an ``OSError`` naming host and port."""
        if self._runner is not None:
            return
        settings = self.settings
        if not settings.loopback and settings.show_details is ShowDetails.ALWAYS:
            log.warning(
                "monitoring API binds %s (not loopback) with show_details=always: "
                "anyone who reaches the port sees breaker and pool details",
                settings.host,
            )
        runner = web.AppRunner(
            self.app,
            handle_signals=False,
            access_log=None,
            shutdown_timeout=settings.shutdown_timeout,
        )
        await runner.setup()
        site = web.TCPSite(runner, settings.host.strip("[]"), settings.port)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise OSError(
                exc.errno,
                f"monitoring API cannot listen on {settings.host}:{settings.port}: "
                f"{exc.strerror or type(exc).__name__}",
            ) from None
        self._runner = runner
        self._port = int(runner.addresses[0][1])
        log.info("monitoring API listening on %s", self.url)

    async def stop(self) -> None:
        """Graceful stop: readiness 503, drain, close the listener, finish in-flight requests."""
        runner = self._runner
        if runner is None:
            return
        self.state.begin_drain()
        if self.settings.drain_seconds > 0:
            await self._clock.sleep(self.settings.drain_seconds)
        self._runner = None
        await runner.cleanup()
        log.info("monitoring API stopped")

    aclose = stop

    async def __aenter__(self) -> MonitoringServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def __repr__(self) -> str:
        where = self.url if self._port is not None else "not started"
        return f"<MonitoringServer {where} running={self.running} {self.state!r}>"
