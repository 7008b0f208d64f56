"""The simulator: an aiohttp server that answers like Bybit v5, with faults on demand."""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from ..clock import Clock
from ._auth import AuthFailure, authenticate, key_fingerprint
from ._binance_server import BinanceDialect
from ._config import MAX_SEED, SimulatorConfig
from ._control import NonFinite, dumps_strict, handle_control, loads_strict
from ._faults import Fault, FaultHandle, FaultKind, FaultSet, FaultSpecError, Plan
from ._market import BybitError, MarketModel
from ._ratelimit import RateLimiter, Verdict, Violation
from ._routes import ROUTES, Route, RouteContext
from ._stats import Counters, SimulatorStats
from ._transport import abort, transport_fault

__all__ = ["CCXT_URL_KEYS", "Simulator"]

CCXT_URL_KEYS = ("spot", "futures", "v2", "public", "private")
"""The keys of ccxt bybit's ``urls['api']`` (all point at the simulator)."""
_CONTROL_PREFIX = "/__sim__"
_STATUS_PATH = "/v5/system/status"
_JSON = "application/json"


class _LoopClock:
    """The running event loop's clock (virtual under ``looptime``), monotonic otherwise."""

    __slots__ = ()

    def now(self) -> float:
        try:
            return asyncio.get_running_loop().time()
        except RuntimeError:
            return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def __repr__(self) -> str:
        return "LoopClock()"


def _wall_ms() -> int:
    return int(time.time() * 1000)


_dumps = dumps_strict


class Simulator:
    """A fault-injecting Bybit v5 REST server for ccxt's unmodified bybit client.

    ::

        async with Simulator(seed=1) as sim:
            exchange = ccxt.async_support.bybit(sim.ccxt_config())
            try:
                await exchange.fetch_ticker("BTC/USDT")
                sim.inject("http", status=503, probability=0.2)
            finally:
                await exchange.close()

    Keyword arguments are :class:`SimulatorConfig` fields (``seed``, ``port``,
    ``faults``, ``prices``, ...). ``clock`` drives rate-limit windows and fault
    windows (default: the event loop's clock).
    """

    def __init__(
        self,
        config: SimulatorConfig | None = None,
        *,
        clock: Clock | None = None,
        **overrides: Any,
    ) -> None:
        if config is None:
            config = SimulatorConfig(**overrides)
        elif overrides:
            config = SimulatorConfig(**{**config.model_dump(), **overrides})
        self.config = config
        self.seed: int = (
            config.seed if config.seed is not None else random.SystemRandom().randrange(2**32)
        )
        """The seed in use (drawn at random when the config has none): replay with it."""
        self.clock: Clock = clock if clock is not None else _LoopClock()
        self.faults = FaultSet(
            self.clock, random.Random(f"{self.seed}/faults"), on_remove=self._fault_removed
        )
        """The installed faults: ``sim.faults.add("reset=0.1")``, ``sim.faults.clear()``."""
        self.market = MarketModel(
            seed=self.seed,
            prices=config.prices,
            balances=config.balances,
            volatility=config.volatility,
            leverage=config.leverage,
            auto_tick=config.auto_tick,
            wall_ms=_wall_ms,
        )
        """The matching model: prices (``set_price``, ``tick``), balances, orders."""
        self._secrets: dict[str, str] = {config.api_key: config.api_secret}
        self._limiter = RateLimiter(
            self.clock,
            ip_limit=config.ip_limit,
            ip_period=config.ip_period,
            key_default=config.key_limit_default,
            key_limits=config.key_limits,
            enabled=config.rate_limits,
        )
        self._routes: Mapping[str, Route] = ROUTES
        """Path -> route of the dialect served (Bybit v5)."""
        self._counters = Counters()
        self._runner: web.ServerRunner | None = None
        self._site: web.TCPSite | None = None
        self._port: int | None = None
        self._closing = asyncio.Event()
        self._hanging = 0
        self._config_faults_installed = False
        self._binance = BinanceDialect(self) if config.dialect == "binance" else None

    # -- lifecycle ----------------------------------------------------------------

    async def start(self) -> None:
        """Bind ``config.host:config.port`` (port 0: a free one) and start answering.

        The configured ``faults`` are installed by the first start (and by
        :meth:`reset`), not again when a stopped simulator is started again.
        """
        if self._runner is not None:
            raise RuntimeError("simulator already started")
        self._closing = asyncio.Event()
        server = web.Server(self._handle, handler_cancellation=True, access_log=None)
        runner = web.ServerRunner(server, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self.config.host, self.config.port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner, self._site = runner, site
        self._port = site.port
        if not self._config_faults_installed:
            self._install_config_faults()

    async def stop(self) -> None:
        """Stop answering; hanging requests are released (their connections aborted)."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        self._closing.set()
        await runner.cleanup()

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def reset(self, seed: int | None = None) -> None:
        """Back to the initial state: prices, balances, no orders, zero counters.

        Faults are removed and the configured ``faults`` reinstalled. With
        ``seed`` the simulator continues with that seed (an integer in
        0..2**64-1, else :class:`ValueError`).
        """
        if seed is not None:
            if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
                raise ValueError(f"seed must be an integer in 0..{MAX_SEED}, got {seed!r}")
            self.seed = seed
        self.faults.reset()
        self.faults.rng.seed(f"{self.seed}/faults")
        self.market.reset(self.seed)
        self._limiter.reset()
        if self._binance is not None:
            self._binance.reset(self.seed)
        self._counters.reset()
        self._install_config_faults()

    def _install_config_faults(self) -> None:
        # once per start-up or reset: a restart (stop, start) must not stack them again
        self._config_faults_installed = True
        if self.config.faults:
            self.faults.add(self.config.faults)

    def _fault_removed(self, fault_id: int) -> None:
        self._limiter.forget(f"fault#{fault_id}")  # the budget of a rate_limit fault

    # -- addresses ------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._runner is not None

    @property
    def host(self) -> str:
        return self.config.host

    @property
    def port(self) -> int:
        """The bound TCP port (only known once started)."""
        if self._port is None:
            raise RuntimeError("simulator not started: no port yet")
        return self._port

    @property
    def base_url(self) -> str:
        """``http://host:port`` of the running simulator."""
        host = self.config.host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def api_key(self) -> str:
        return self.config.api_key

    @property
    def api_secret(self) -> str:
        """The secret of ``api_key`` (the defaults are public test credentials)."""
        return self.config.api_secret

    def add_api_key(self, api_key: str, api_secret: str) -> None:
        """Accept another API key (same account, its own per-key budgets)."""
        if not api_key or not api_secret:
            raise ValueError("api_key and api_secret must be non-empty")
        self._secrets[api_key] = api_secret

    # -- ccxt -------------------------------------------------------------------------

    @property
    def dialect(self) -> str:
        """The exchange API served: ``"bybit"`` or ``"binance"``."""
        return self.config.dialect

    def ccxt_config(
        self, *, credentials: bool = True, market_types: Iterable[str] = ("spot", "linear")
    ) -> dict[str, Any]:
        """Constructor options that point ``ccxt.async_support.bybit`` at this simulator.

        For a ``dialect="binance"`` simulator: options for
        ``ccxt.async_support.binance`` (spot; ``market_types`` is ignored).

        ``ccxt.async_support.bybit(sim.ccxt_config())`` overrides every bybit
        API URL (``urls['api']``, and ``'test'``/``'demotrading'`` so that
        sandbox or demo mode cannot escape to the real exchange), sets
        ``options['fetchMarkets']['types']`` to the served market types and,
        with ``credentials``, the simulator's API key and secret. Merge your
        own options into the returned dict (it is a fresh copy).
        """
        if self._binance is not None:
            return self._binance.ccxt_config(credentials=credentials)
        urls = dict.fromkeys(CCXT_URL_KEYS, self.base_url)
        config: dict[str, Any] = {
            "urls": {"api": dict(urls), "test": dict(urls), "demotrading": dict(urls)},
            "options": {"fetchMarkets": {"types": list(market_types)}},
        }
        if credentials:
            config["apiKey"] = self.api_key
            config["secret"] = self.api_secret
        return config

    def configure_ccxt(
        self,
        exchange: Any,
        *,
        credentials: bool = True,
        market_types: Iterable[str] = ("spot", "linear"),
    ) -> Any:
        """Point an existing ccxt bybit instance at this simulator; returns it.

        Same settings as :meth:`ccxt_config`. Call it before ``load_markets``.
        """
        if self._binance is not None:
            return self._binance.configure_ccxt(exchange, credentials=credentials)
        config = self.ccxt_config(credentials=credentials, market_types=market_types)
        urls = dict(exchange.urls)
        urls.update(config["urls"])
        exchange.urls = urls
        fetch_markets = exchange.options.get("fetchMarkets")
        merged = dict(fetch_markets) if isinstance(fetch_markets, dict) else {}
        merged.update(config["options"]["fetchMarkets"])
        exchange.options["fetchMarkets"] = merged
        if credentials:
            exchange.apiKey = config["apiKey"]
            exchange.secret = config["secret"]
        return exchange

    # -- faults -------------------------------------------------------------------

    def inject(self, kind: FaultKind | str | Fault, /, **params: Any) -> FaultHandle:
        """Install one fault and return its handle (``handle.remove()`` uninstalls it).

        ``kind`` is a :class:`FaultKind` or its name; ``params`` are
        :class:`Fault` fields, e.g.
        ``sim.inject("http", status=503, probability=0.2, endpoint="/v5/market/*")``
        or ``sim.inject("lost_response", endpoint="/v5/order/create", count=1)``.
        A grammar string (``sim.inject("reset=0.1")``) is accepted too.
        """
        if isinstance(kind, Fault):
            if params:
                raise TypeError("inject(Fault) takes no keyword parameters")
            return self.faults.add(kind)
        if isinstance(kind, str) and "=" in kind:
            if params:
                raise TypeError("inject(spec) takes no keyword parameters")
            return self.faults.add(kind)
        if isinstance(kind, FaultKind):
            kind = kind.value
        elif kind not in [k.value for k in FaultKind]:
            raise FaultSpecError(
                repr(kind),
                "unknown fault kind; allowed kinds: "
                + ", ".join(k.value for k in FaultKind)
                + " (or a grammar string such as 'reset=0.1')",
            )
        fault = Fault.from_dict({"kind": kind, **params})
        return self.faults.add(fault)

    # -- observation -------------------------------------------------------------------

    @property
    def stats(self) -> SimulatorStats:
        """A snapshot of the request counts, violations and fired faults."""
        return self._counters.snapshot(
            self.seed,
            self.faults.fired_by_kind,
            self.market.orders_created,
            self.market.orders_filled,
        )

    @property
    def violations(self) -> tuple[Violation, ...]:
        """The most recent (up to 1000) requests rejected by a budget, oldest first.

        ``stats.violations_total`` and :meth:`violation_count` count them all.
        """
        return tuple(self._counters.violations)

    def request_count(
        self, path: str | None = None, *, api_key: str | None = None, client: str | None = None
    ) -> int:
        """Requests received (control API excluded), optionally for one path and/or client.

        ``api_key`` selects the requests made with that key; ``client`` takes a
        client label (``ip:127.0.0.1`` or ``key:<fingerprint>``).
        """
        if api_key is not None:
            client = key_fingerprint(api_key)
        return self._counters.count(path, client)

    def violation_count(self, path: str | None = None, *, api_key: str | None = None) -> int:
        """Budget violations (all of them), optionally for one path and/or API key."""
        client = key_fingerprint(api_key) if api_key is not None else None
        return self._counters.violation_count(path, client)

    def __repr__(self) -> str:
        where = self.base_url if self._port is not None else "not started"
        if self._binance is not None:
            where += " dialect=binance"
        return (
            f"<Simulator {where} seed={self.seed} running={self.running} "
            f"requests={self._counters.total} violations={self._counters.violations_total} "
            f"faults={len(self.faults)} hanging={self._hanging} "
            f"orders={self.market.orders_created}>"
        )

    # -- request handling ---------------------------------------------------------

    def _maintenance_events(self, now_ms: int) -> list[dict[str, Any]]:
        events = []
        now = self.clock.now()
        for begin, end in self.faults.maintenance_windows():
            begin_ms = now_ms + int((begin - now) * 1000)
            end_ms = "" if end is None else str(now_ms + int((end - now) * 1000))
            events.append(
                {
                    "id": f"sim-maintenance-{begin_ms}",
                    "title": "Simulated system maintenance",
                    "state": "ongoing" if begin <= now else "scheduled",
                    "begin": str(begin_ms),
                    "end": end_ms,
                    "href": "",
                    "serviceTypes": [1, 2, 3, 4, 5],
                    "product": [1, 2, 3, 4],
                    "uidSuffix": [],
                    "maintainType": 1,
                    "env": 1,
                }
            )
        return events

    def _violation(self, path: str, client: str, verdict: Verdict) -> None:
        self._counters.record_violation(
            Violation(time.time(), client, path, verdict.rule, verdict.limit, verdict.period)
        )

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        path = request.path
        if path.startswith(_CONTROL_PREFIX):
            return await handle_control(self, request)
        if self._binance is not None:
            return await self._binance.handle(request)
        route = self._routes.get(path)
        private = route.private if route is not None else False
        ip_client = "ip:" + (request.remote or "unknown")
        key_header = request.headers.get("X-BAPI-API-KEY") if private else None
        key_client = key_fingerprint(key_header) if key_header else None
        client = key_client or ip_client
        self._counters.record(path, client)

        plan = self.faults.plan_before(path, private)
        if plan is not None:
            early = await self._apply_before(request, plan)
            if early is not None:
                return early

        now_ms = _wall_ms()
        if route is None or route.method != request.method:
            message = "request path not found or request method is invalid"
            return self._answer(10017, message, {}, now_ms, status=404)

        fault_rules = self.faults.rate_rules(path, private)
        verdict = self._limiter.check(
            path, ip_client, None, () if private else fault_rules, ip=True
        )
        if verdict is not None and not verdict.allowed:
            self._violation(path, ip_client, verdict)
            return self._limited(verdict, now_ms, by_ip=verdict.rule == "ip")

        if request.method == "POST":
            try:
                raw = (await request.read()).decode("utf-8")
            except UnicodeDecodeError:
                message = "params error: request body is not valid UTF-8"
                return self._answer(10001, message, {}, now_ms)
        else:
            raw = request.rel_url.raw_query_string
        api_key: str | None = None
        if private:
            try:
                api_key = authenticate(request.headers, raw, self._secrets, now_ms)
            except AuthFailure as failure:
                return self._answer(failure.code, failure.message, {}, now_ms)
            verdict = self._limiter.check(path, ip_client, client, fault_rules, ip=False)
            if verdict is not None and not verdict.allowed:
                self._violation(path, client, verdict)
                return self._limited(verdict, now_ms, by_ip=False)
        if verdict is not None and verdict.rule == "ip":
            verdict = None  # Bybit's headers describe API budgets, not the IP one
        try:
            params = self._params(request.method, raw)
            maintenance = self._maintenance_events(now_ms) if path == _STATUS_PATH else []
            ctx = RouteContext(self.market, now_ms, maintenance, api_key)
            result = route.handler(params, ctx)
        except BybitError as error:
            response = self._answer(error.code, error.message, {}, now_ms, verdict=verdict)
            ok = False
        else:
            response = self._answer(0, "OK", result, now_ms, verdict=verdict)
            ok = True

        # lost / late responses only hit answers that booked something (retCode 0)
        after = self.faults.plan_after(path, private, ok=ok)
        if after is not None:
            return await self._apply_after(request, after, response)
        return response

    @staticmethod
    def _params(method: str, raw: str) -> dict[str, Any]:
        if method == "POST":
            if not raw:
                return {}
            try:
                body = loads_strict(raw)  # deep nesting is a ValueError too
            except ValueError:
                raise BybitError(10001, "params error: request body is not valid JSON") from None
            if not isinstance(body, dict):
                raise BybitError(10001, "params error: request body must be a JSON object")
            for name, value in body.items():
                # the endpoints served take scalars only; a list, an object or a
                # number no float can hold (NaN, 1e999999) is a bad parameter
                if isinstance(value, list | dict | NonFinite):
                    raise BybitError(10001, f"params error: {str(name)[:40]} is invalid")
            return body
        return dict(parse_qsl(raw, keep_blank_values=True))

    def _answer(
        self,
        code: int,
        message: str,
        result: Any,
        now_ms: int,
        *,
        status: int = 200,
        verdict: Verdict | None = None,
    ) -> web.Response:
        body = _dumps(
            {"retCode": code, "retMsg": message, "result": result, "retExtInfo": {}, "time": now_ms}
        )
        response = web.Response(text=body, status=status, content_type=_JSON)
        if verdict is not None:
            self._limit_headers(response, verdict, now_ms)
        return response

    @staticmethod
    def _limit_headers(response: web.StreamResponse, verdict: Verdict, now_ms: int) -> None:
        response.headers["X-Bapi-Limit"] = str(verdict.limit)
        response.headers["X-Bapi-Limit-Status"] = str(verdict.remaining)
        response.headers["X-Bapi-Limit-Reset-Timestamp"] = str(
            now_ms + math.ceil(verdict.reset_in * 1000)
        )

    def _limited(self, verdict: Verdict, now_ms: int, *, by_ip: bool) -> web.Response:
        if by_ip:
            response = self._answer(
                10018, "Too many visits. Exceeded the IP Rate Limit.", {}, now_ms, status=429
            )
        else:
            response = self._answer(10006, "Too many visits!", {}, now_ms)
        self._limit_headers(response, verdict, now_ms)
        response.headers["Retry-After"] = str(max(1, math.ceil(verdict.reset_in)))
        return response

    async def _apply_before(
        self, request: web.BaseRequest, plan: Plan
    ) -> web.StreamResponse | None:
        if plan.latency > 0:
            await asyncio.sleep(plan.latency)
        now_ms = _wall_ms()
        if plan.maintenance:
            text = "Bybit is under system maintenance"
            headers = {}
            if plan.maintenance_until is not None:
                remaining = max(0.0, plan.maintenance_until - self.clock.now())
                headers["Retry-After"] = str(max(1, math.ceil(remaining)))
                text += f"; expected to end in {remaining:.0f}s"
            body = (
                "<html><head><title>503 Service Temporarily Unavailable</title></head>"
                f"<body><h1>503 Service Temporarily Unavailable</h1><p>{text}.</p></body></html>"
            )
            return web.Response(status=503, text=body, content_type="text/html", headers=headers)
        response = await transport_fault(self, request, plan, _REASONS)
        if response is not None:
            return response
        if plan.retcode is not None:
            code, message = plan.retcode
            return self._answer(code, message, {}, now_ms)
        return None

    async def _apply_after(
        self, request: web.BaseRequest, plan: Plan, response: web.Response
    ) -> web.StreamResponse:
        if plan.lost:
            return abort(request)
        if plan.late is not None:
            await asyncio.sleep(plan.late)
            return response
        body = response.text or ""
        truncated = web.Response(
            text=body[: max(1, len(body) // 2)], status=response.status, content_type=_JSON
        )
        for name in ("X-Bapi-Limit", "X-Bapi-Limit-Status", "X-Bapi-Limit-Reset-Timestamp"):
            if name in response.headers:
                truncated.headers[name] = response.headers[name]
        return truncated


_REASONS = {
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Temporarily Unavailable",
    504: "Gateway Time-out",
}
