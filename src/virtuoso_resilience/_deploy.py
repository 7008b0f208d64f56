"""``virtuoso-resilience deploy``: validate, start step by step, verify, roll back.

A deployment is a list of :class:`Step` objects, each with a ``start``, a
``verify`` run right after it and a ``stop``. Before any step runs, every
prerequisite is checked (Python and package versions, the variables the
environment requires, reachability of the exchange, memcached, Redis and the
webhook, each with a short timeout). When a step fails to start or to
verify, the steps already completed are stopped in reverse order and the
command exits non-zero naming the failing step. ``--dry-run`` runs every
check, prints the plan and changes nothing.

Nothing printed contains a secret: values are masked at the source and, as a
last guard, every line is scrubbed of the configured secret values.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib.metadata
import re
import socket
import sys
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final, Literal, TextIO

import aiohttp
import ccxt.async_support as ccxt_async

from ._settings import ResilienceSettings, load_settings
from .cache import (
    ResilientCache,
    create_memcached_resilient_config,
    create_redis_resilient_config,
    create_resilient_cache,
)
from .errors import ConfigurationError
from .exchange import (
    MethodGroup,
    ResilientExchange,
    create_bybit_resilient_config,
    create_resilient_exchange,
)
from .health import ServiceStatus
from .monitoring import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    AlertNotifier,
    AlertNotifierConfig,
    DiscordWebhookSink,
    MonitoringServer,
    MonitoringSettings,
)
from .registry import CIRCUIT_BREAKERS, ResilienceRegistry
from .simulator import Simulator

__all__ = [
    "ENVIRONMENTS",
    "REQUIRED_VARIABLES",
    "DeployOptions",
    "Deployment",
    "Prerequisite",
    "Step",
    "StepFailed",
    "deploy",
]

Environment = Literal["dev", "prod"]
ENVIRONMENTS: Final[dict[str, Literal["development", "production"]]] = {
    "dev": "development",
    "prod": "production",
}
"""Deployment environment -> configuration preset."""

REQUIRED_VARIABLES: Final[dict[str, tuple[tuple[str, str], ...]]] = {
    "dev": (),
    "prod": (("BYBIT_API_KEY", "bybit_api_key"), ("BYBIT_API_SECRET", "bybit_api_secret")),
}
"""Per environment: (environment variable, settings field) that must be set and non-empty."""

MIN_PYTHON: Final = (3, 11)
PACKAGES: Final[tuple[tuple[str, str, bool], ...]] = (
    # (distribution, minimum version, required in dev)
    ("aiohttp", "3.12", True),
    ("ccxt", "4.3", True),
    ("pydantic", "2.6", True),
    ("pydantic-settings", "2.3", True),
    ("redis", "5.0", False),
    ("aiomcache", "0.8", False),
)
"""Packages checked before a deployment; the cache clients are optional in dev."""

BYBIT_ENDPOINT: Final = ("api.bybit.com", 443)
SYMBOL: Final = "BTC/USDT"


@dataclasses.dataclass(frozen=True, slots=True)
class DeployOptions:
    """What ``virtuoso-resilience deploy`` was asked to do (durations in seconds)."""

    environment: Environment = "dev"
    dry_run: bool = False
    verbose: bool = False
    timeout: float = 2.0
    """Seconds each reachability probe may take."""
    run_for: float | None = 0.0
    """Seconds to keep the deployment running after it is verified (None: until stopped)."""
    config_file: str | None = None
    exchange_faults: str = ""
    """Faults for the built-in simulator (dev only), in the simulator's grammar."""
    api_host: str = DEFAULT_HOST
    """Where the monitoring API listens (default 127.0.0.1)."""
    api_port: int = DEFAULT_PORT
    """The monitoring API's port (default 8001)."""


@dataclasses.dataclass(frozen=True, slots=True)
class Prerequisite:
    """One prerequisite: met (``ok``), or a failure (``fatal``) or a warning."""

    name: str
    ok: bool
    detail: str
    fatal: bool = True


@dataclasses.dataclass(frozen=True, slots=True)
class Step:
    """One start-up step: ``start``, then ``verify`` (returns a detail), and its ``stop``."""

    name: str
    plan: str
    start: Callable[[], Awaitable[None]]
    verify: Callable[[], Awaitable[str]]
    stop: Callable[[], Awaitable[None]]


class StepFailed(Exception):
    """A step failed to start or to verify."""

    def __init__(self, step: str, phase: str, reason: str) -> None:
        self.step, self.phase, self.reason = step, phase, reason
        super().__init__(f"step {step!r} failed to {phase}: {reason}")


def _version_tuple(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split(".")[:3]:
        match = re.match(r"[0-9]+", piece)
        if match is None:
            break
        parts.append(int(match.group()))
    return tuple(parts)


def _reason(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    text = text[:200] + ("..." if len(text) > 200 else "")
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class _Output:
    """Progress lines: plain text, colour on a terminal, secrets scrubbed."""

    _COLOURS: Final = {"ok": "32", "warn": "33", "fail": "31", "plan": "36"}

    def __init__(self, out: TextIO, verbose: bool, secrets: Sequence[str]) -> None:
        self._out = out
        self._verbose = verbose
        self._secrets = sorted((s for s in secrets if s), key=len, reverse=True)
        isatty = getattr(out, "isatty", None)
        self._tty = bool(isatty()) if callable(isatty) else False

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def line(self, text: str, mark: str | None = None) -> None:
        label = ""
        if mark is not None:
            label = f"[{mark.upper():>4}] "
            if self._tty:
                label = f"\x1b[{self._COLOURS.get(mark, '0')}m{label}\x1b[0m"
        print(label + self._scrub(text), file=self._out, flush=True)

    def detail(self, text: str) -> None:
        if self._verbose:
            print("       " + self._scrub(text), file=self._out, flush=True)


class Deployment:
    """A deployment of the resilience layer for one environment.

    ``prerequisites()`` checks without changing anything; ``steps()`` is the
    plan; ``run()`` does it all and returns the exit code.
    """

    def __init__(
        self, options: DeployOptions, settings: ResilienceSettings, out: TextIO = sys.stdout
    ) -> None:
        self.options = options
        self.settings = settings
        services = settings.services
        secrets = [
            s.get_secret_value()
            for s in (
                services.bybit_api_key,
                services.bybit_api_secret,
                services.discord_webhook_url,
            )
            if s is not None
        ]
        self.output = _Output(out, options.verbose, secrets)
        self.registry: ResilienceRegistry | None = None
        self.simulator: Simulator | None = None
        self.exchange: Any = None
        self.caches: dict[str, ResilientCache] = {}
        self.breakers: list[str] = []
        self.api: MonitoringServer | None = None
        self.alerts: AlertNotifier | None = None
        self.degraded: list[str] = []
        self.completed: list[Step] = []
        self.reachable: dict[str, bool] = {}

    # ---------------------------------------------------------------- checks

    async def prerequisites(self) -> list[Prerequisite]:
        """Every prerequisite, checked (the probes concurrently); changes nothing."""
        env = self.options.environment
        found = [self._python()]
        found += [self._package(*p) for p in PACKAGES]
        found += self._variables()
        probes = await asyncio.gather(
            self._exchange_reachable(),
            self._memcached_reachable(),
            self._redis_reachable(),
            self._webhook_reachable(),
        )
        found += probes
        self.reachable = {p.name: p.ok for p in probes}
        found.append(self._api_port_free())
        if env == "dev":
            # Caches are optional in dev: the in-memory fallback takes over.
            found = [
                dataclasses.replace(p, fatal=False)
                if p.name.startswith(("memcached", "redis"))
                else p
                for p in found
            ]
        return found

    def _python(self) -> Prerequisite:
        version = ".".join(map(str, sys.version_info[:3]))
        ok = sys.version_info[:2] >= MIN_PYTHON
        return Prerequisite("python", ok, f"{version} (needs >= {'.'.join(map(str, MIN_PYTHON))})")

    def _package(self, name: str, minimum: str, required_in_dev: bool) -> Prerequisite:
        fatal = required_in_dev or self.options.environment == "prod"
        try:
            version = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return Prerequisite(
                f"package {name}", False, f"not installed (needs >= {minimum})", fatal
            )
        ok = _version_tuple(version) >= _version_tuple(minimum)
        return Prerequisite(f"package {name}", ok, f"{version} (needs >= {minimum})", fatal)

    def _variables(self) -> list[Prerequisite]:
        env = self.options.environment
        services = self.settings.services
        found = []
        for variable, field in REQUIRED_VARIABLES[env]:
            value = getattr(services, field)
            ok = value is not None and bool(value.get_secret_value().strip())
            found.append(
                Prerequisite(
                    f"variable {variable}",
                    ok,
                    "set (value hidden)" if ok else f"missing: the {env} environment requires it",
                )
            )
        if services.discord_webhook_url is None:
            found.append(
                Prerequisite(
                    "variable DISCORD_WEBHOOK_URL", True, "not set: Discord alerts are off", False
                )
            )
        return found

    async def _connect(
        self, host: str, port: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.wait_for(asyncio.open_connection(host, port), self.options.timeout)

    async def _probe(
        self, name: str, host: str, port: int, request: bytes | None, expect: tuple[bytes, ...]
    ) -> Prerequisite:
        where = f"{host}:{port}"
        try:
            reader, writer = await self._connect(host, port)
        except (OSError, TimeoutError) as exc:
            return Prerequisite(name, False, f"{where} unreachable ({_reason(exc)})")
        try:
            if request is None:
                return Prerequisite(name, True, f"{where} accepts connections")
            writer.write(request)
            await writer.drain()
            answer = await asyncio.wait_for(reader.readline(), self.options.timeout)
            if not answer.startswith(expect):
                return Prerequisite(name, False, f"{where} answered, but not as expected")
            return Prerequisite(name, True, f"{where} answered")
        except (OSError, TimeoutError) as exc:
            return Prerequisite(name, False, f"{where} did not answer ({_reason(exc)})")
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass

    def _api_port_free(self) -> Prerequisite:
        host, port = self.options.api_host, self.options.api_port
        where = f"{host}:{port}"
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            family, kind, proto, _, address = infos[0]
            with socket.socket(family, kind, proto) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                probe.bind(address)
        except OSError as exc:
            return Prerequisite("monitoring API port", False, f"{where} not free ({_reason(exc)})")
        return Prerequisite("monitoring API port", True, f"{where} free")

    async def _exchange_reachable(self) -> Prerequisite:
        if self.options.environment == "dev":
            return Prerequisite("exchange", True, "the built-in simulator (started on a free port)")
        host, port = BYBIT_ENDPOINT
        return await self._probe("exchange", host, port, None, ())

    async def _memcached_reachable(self) -> Prerequisite:
        s = self.settings.services
        return await self._probe(
            "memcached", s.memcached_host, s.memcached_port, b"version\r\n", (b"VERSION",)
        )

    async def _redis_reachable(self) -> Prerequisite:
        s = self.settings.services
        # -NOAUTH: reachable, needs a password (the client is configured with it).
        return await self._probe(
            "redis", s.redis_host, s.redis_port, b"PING\r\n", (b"+PONG", b"-NOAUTH")
        )

    async def _webhook_reachable(self) -> Prerequisite:
        url = self.settings.services.discord_webhook_url
        if url is None:
            return Prerequisite("webhook", True, "not configured", False)
        parsed = urllib.parse.urlsplit(url.get_secret_value())
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            return Prerequisite("webhook", False, "DISCORD_WEBHOOK_URL is not an http(s) URL")
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        # Connect only: posting would send a message to the channel.
        result = await self._probe("webhook", parsed.hostname, port, None, ())
        return dataclasses.replace(result, fatal=self.options.environment == "prod")

    # ----------------------------------------------------------------- steps

    def steps(self) -> list[Step]:
        """The start-up plan, in order."""
        where = "the built-in simulator" if self.options.environment == "dev" else "api.bybit.com"
        return [
            Step(
                "configuration",
                f"resilience registry with the {self.settings.preset} settings",
                self._start_registry,
                self._verify_registry,
                self._stop_registry,
            ),
            Step(
                "caches",
                "resilient memcached and Redis caches (in-memory fallback when unreachable in dev)",
                self._start_caches,
                self._verify_caches,
                self._stop_caches,
            ),
            Step(
                "exchange",
                f"resilient ccxt bybit client (create_resilient_exchange) on {where}",
                self._start_exchange,
                self._verify_exchange,
                self._stop_exchange,
            ),
            Step(
                "connection pools",
                "the exchange's aiohttp pool in the registry",
                self._start_pools,
                self._verify_pools,
                self._stop_pools,
            ),
            Step(
                "circuit breakers",
                "the exchange's per-group breakers registered as bybit.<group>",
                self._start_breakers,
                self._verify_breakers,
                self._stop_breakers,
            ),
            Step(
                "health checks",
                "health checks for the exchange, caches, breakers and pools; background monitoring",
                self._start_health,
                self._verify_health,
                self._stop_health,
            ),
            Step(
                "alerts",
                (
                    "Discord alerts on every change of the overall health status"
                    if self.settings.services.discord_webhook_url is not None
                    else "off (DISCORD_WEBHOOK_URL not set)"
                ),
                self._start_alerts,
                self._verify_alerts,
                self._stop_alerts,
            ),
            Step(
                "monitoring API",
                f"HTTP monitoring API on {self.options.api_host}:{self.options.api_port}",
                self._start_api,
                self._verify_api,
                self._stop_api,
            ),
        ]

    def _registry(self) -> ResilienceRegistry:
        if self.registry is None:
            raise RuntimeError("the configuration step has not run")
        return self.registry

    async def _start_registry(self) -> None:
        self.registry = ResilienceRegistry(self.settings.resilience)

    async def _verify_registry(self) -> str:
        config = self._registry().config
        if config != self.settings.resilience:
            raise RuntimeError("the registry does not hold the loaded configuration")
        return (
            f"failure_threshold={config.default_failure_threshold}, "
            f"circuit_timeout={config.default_circuit_timeout}s, "
            f"max_retries={config.default_max_retries}"
        )

    async def _stop_registry(self) -> None:
        if self.registry is not None:
            await self.registry.aclose()
            self.registry = None

    def _adapter(self) -> ResilientExchange[Any]:
        if self.exchange is None:
            raise RuntimeError("the exchange step has not run")
        return ResilientExchange.of(self.exchange)

    async def _start_pools(self) -> None:
        """The adapter made its pool on its first request, in the registry's manager."""

    async def _verify_pools(self) -> str:
        pool = self._adapter().pool
        pools = self._registry().pools.pools
        if pool is None or pool.closed or pools.get(pool.name) is not pool:
            raise RuntimeError("the exchange has no open pool in the registry")
        total, per_host = pool.limits
        return f"pool {pool.name!r}: {total} connections, {per_host} per host"

    async def _stop_pools(self) -> None:
        """Closed with the exchange and the registry."""

    async def _start_breakers(self) -> None:
        adapter, registry = self._adapter(), self._registry()
        for group in MethodGroup:
            name = f"bybit.{group.value}"
            registry.register(CIRCUIT_BREAKERS, name, adapter.breaker(group), replace=True)
            self.breakers.append(name)

    async def _verify_breakers(self) -> str:
        breakers = self._registry().breakers
        missing = [n for n in self.breakers if n not in breakers]
        if missing or not self.breakers:
            raise RuntimeError("breakers not registered: " + ", ".join(missing))
        return ", ".join(f"{n}={breakers[n].state.value}" for n in self.breakers)

    async def _stop_breakers(self) -> None:
        names, self.breakers = self.breakers, []
        if self.registry is not None:
            for name in reversed(names):
                if name in self.registry.breakers:
                    self.registry.unregister(CIRCUIT_BREAKERS, name)

    async def _start_caches(self) -> None:
        s = self.settings.services
        health = self._registry().health
        try:
            import aiomcache
        except ImportError:  # a prerequisite: fatal in prod, a warning in dev
            self.degraded.append("memcached (aiomcache not installed)")
        else:
            self.caches["memcached"] = create_resilient_cache(
                aiomcache.Client(s.memcached_host, s.memcached_port),
                create_memcached_resilient_config(),
                health_service=health,
            )
        try:
            import redis.asyncio as aioredis
        except ImportError:
            self.degraded.append("redis (redis not installed)")
        else:
            self.caches["redis"] = create_resilient_cache(
                aioredis.Redis(host=s.redis_host, port=s.redis_port),
                create_redis_resilient_config(),
                health_service=health,
            )

    async def _verify_caches(self) -> str:
        found = []
        for name, cache in self.caches.items():
            # A read (no write: nothing to write back): it degrades at once if the backend fails.
            await cache.lookup("virtuoso-resilience:deploy-check")
            state = cache.health()
            if state.status == "healthy":
                found.append(f"{name} connected ({cache.backend})")
                continue
            if self.options.environment == "prod":
                raise RuntimeError(f"{name} cache is degraded: {state.reason}")
            self.degraded.append(f"{name} (in-memory fallback)")
            found.append(f"{name} degraded: in-memory fallback ({state.reason})")
        return "; ".join(found) or "no cache client installed: nothing cached"

    async def _stop_caches(self) -> None:
        caches, self.caches = self.caches, {}
        for cache in reversed(list(caches.values())):
            await cache.close()

    async def _start_exchange(self) -> None:
        registry = self._registry()
        if self.options.environment == "dev":
            self.simulator = Simulator(seed=7, faults=self.options.exchange_faults)
            await self.simulator.start()
            options: dict[str, Any] = {**self.simulator.ccxt_config(), "enableRateLimit": False}
        else:
            s = self.settings.services
            options = {
                "apiKey": s.bybit_api_key.get_secret_value() if s.bybit_api_key else None,
                "secret": s.bybit_api_secret.get_secret_value() if s.bybit_api_secret else None,
                "enableRateLimit": True,
            }
        self.exchange = create_resilient_exchange(
            ccxt_async.bybit(options),
            create_bybit_resilient_config(),
            pools=registry.pools,
            clock=registry.clock,
            classifier=registry.classifier,
            health=registry.health,
        )

    async def _verify_exchange(self) -> str:
        ticker = await self.exchange.fetch_ticker(SYMBOL)
        where = self.simulator.base_url if self.simulator is not None else "api.bybit.com"
        return f"{SYMBOL} last={ticker.get('last')} from {where}"

    async def _stop_exchange(self) -> None:
        exchange, self.exchange = self.exchange, None
        if exchange is not None:
            await exchange.close()
        simulator, self.simulator = self.simulator, None
        if simulator is not None:
            await simulator.stop()

    async def _start_health(self) -> None:
        await self._registry().start()

    async def _verify_health(self) -> str:
        report = await self._registry().health.run_checks()
        if report.status >= ServiceStatus.UNHEALTHY:
            cause = f" (root cause: {report.root_cause})" if report.root_cause else ""
            raise RuntimeError(f"health is {report.status.value}{cause}")
        checks = ", ".join(f"{n}={c.status.value}" for n, c in sorted(report.checks.items()))
        return f"overall {report.status.value}: {checks}"

    async def _stop_health(self) -> None:
        if self.registry is not None:
            await self.registry.health.stop()

    async def _start_alerts(self) -> None:
        url = self.settings.services.discord_webhook_url
        if url is None:
            return
        notifier = AlertNotifier(
            [DiscordWebhookSink(url.get_secret_value())],
            AlertNotifierConfig(service=f"virtuoso-resilience ({self.options.environment})"),
        )
        notifier.attach(self._registry().health)
        self.alerts = notifier

    async def _verify_alerts(self) -> str:
        if self.alerts is None:
            return "off: DISCORD_WEBHOOK_URL is not set"
        (stats,) = self.alerts.stats()
        return f"attached to the health service; nothing sent yet ({stats.sent} sent)"

    async def _stop_alerts(self) -> None:
        notifier, self.alerts = self.alerts, None
        if notifier is not None:
            await notifier.aclose()

    async def _start_api(self) -> None:
        settings = MonitoringSettings(host=self.options.api_host, port=self.options.api_port)
        server = MonitoringServer(self._registry(), settings)
        await server.start()
        self.api = server

    async def _verify_api(self) -> str:
        if self.api is None:
            raise RuntimeError("the monitoring API is not running")
        timeout = aiohttp.ClientTimeout(total=max(self.options.timeout, 5.0))
        found = []
        async with aiohttp.ClientSession(timeout=timeout) as session:
            for path in ("/livez", "/api/monitoring/health"):
                async with session.get(self.api.url + path) as response:
                    await response.read()
                    if response.status != 200:
                        raise RuntimeError(f"GET {path} answered HTTP {response.status}")
                    found.append(f"GET {path} 200")
        return f"{self.api.url}: " + ", ".join(found)

    async def _stop_api(self) -> None:
        server, self.api = self.api, None
        if server is not None:
            await server.stop()

    # ------------------------------------------------------------------- run

    async def run(self) -> int:
        """Check, then start and verify each step (or print the plan); the exit code."""
        out, opts = self.output, self.options
        mode = " (dry run: nothing will be changed)" if opts.dry_run else ""
        out.line(f"deploy: environment {opts.environment}, preset {self.settings.preset}{mode}")
        for line in self.settings.describe():
            out.detail(line)
        out.line("prerequisites:")
        failed = []
        for p in await self.prerequisites():
            mark = "ok" if p.ok else ("fail" if p.fatal else "warn")
            out.line(f"{p.name}: {p.detail}", mark)
            if not p.ok and p.fatal:
                failed.append(p.name)
        steps = self.steps()
        if failed:
            out.line(f"deploy failed: prerequisites not met: {', '.join(failed)}", "fail")
            return 1
        if opts.dry_run:
            out.line("plan:")
            for number, step in enumerate(steps, 1):
                out.line(f"[{number}/{len(steps)}] {step.name}: {step.plan}", "plan")
            out.line("dry run complete: no blocking problem found; nothing was started or changed")
            return 0
        try:
            for number, step in enumerate(steps, 1):
                await self._run_step(step, number, len(steps))
        except StepFailed as failure:
            out.line(str(failure), "fail")
            await self._roll_back()
            out.line(f"deploy failed at step {failure.step!r}; completed steps rolled back", "fail")
            return 1
        except BaseException:  # cancelled (SIGINT/SIGTERM) or worse: undo, then go on
            self.output.line("deploy interrupted; rolling back the completed steps", "fail")
            await self._roll_back()
            raise
        state = "degraded: " + ", ".join(self.degraded) if self.degraded else "healthy"
        out.line(f"deployment complete ({len(steps)} steps verified; {state})", "ok")
        if self.api is not None:
            out.line(f"monitoring API: {self.api.url}/api/monitoring/health")
        try:
            if opts.run_for is None:
                out.line("running; press Ctrl-C to stop")
                await asyncio.Event().wait()
            elif opts.run_for > 0:
                await asyncio.sleep(opts.run_for)
        except asyncio.CancelledError:
            # SIGINT/SIGTERM on a verified deployment: the asked-for stop, exit 0.
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
        finally:
            await self._shut_down()
        return 0

    async def _run_step(self, step: Step, number: int, total: int) -> None:
        out = self.output
        out.line(f"[{number}/{total}] {step.name}: {step.plan} ...")
        began = time.monotonic()
        try:
            await step.start()
        except Exception as exc:
            # A half-started step is stopped too (its stop is idempotent).
            self.completed.append(step)
            raise StepFailed(step.name, "start", _reason(exc)) from exc
        self.completed.append(step)
        try:
            detail = await step.verify()
        except Exception as exc:
            raise StepFailed(step.name, "verify", _reason(exc)) from exc
        out.line(f"[{number}/{total}] {step.name}: verified", "ok")
        out.detail(f"{detail} ({time.monotonic() - began:.2f}s)")

    async def _roll_back(self) -> None:
        while self.completed:
            step = self.completed.pop()
            try:
                await step.stop()
                self.output.line(f"rolled back: {step.name}", "ok")
            except Exception as exc:
                self.output.line(f"rollback of {step.name} failed: {_reason(exc)}", "fail")

    async def _shut_down(self) -> None:
        self.output.line("stopping")
        while self.completed:
            step = self.completed.pop()
            try:
                await step.stop()
                self.output.detail(f"stopped: {step.name}")
            except Exception as exc:
                self.output.line(f"stopping {step.name} failed: {_reason(exc)}", "fail")
        self.output.line("stopped")


async def deploy(options: DeployOptions, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """Load the settings for ``options.environment`` and deploy; the exit code.

    0: deployed (or a dry run that found everything in order); 1: a
    prerequisite or a step failed; 2: invalid configuration (one message
    listing every bad value).
    """
    try:
        settings = load_settings(options.config_file, preset=ENVIRONMENTS[options.environment])
    except ConfigurationError as exc:
        print(f"deploy: invalid configuration\n{exc}", file=err)
        return 2
    return await Deployment(options, settings, out).run()
