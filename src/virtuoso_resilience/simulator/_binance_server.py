"""The simulator's Binance spot dialect: request handling, weights, faults, ccxt settings.

A :class:`~._server.Simulator` built with ``dialect="binance"`` hands every
non-control request to :class:`BinanceDialect`. The shared parts are the
simulator's: the fault engine, the matching model, the request and violation
counters, the credentials and the clock. The order of checks is Binance's:
faults first, then the IP ban and request weight, authentication, fault
budgets, the order-count limit, then the business logic.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from aiohttp import web

from ._auth import key_fingerprint
from ._binance_auth import authenticate
from ._binance_errors import BinanceError, message_for
from ._binance_limits import BinanceLimiter, Rejection, interval_label, request_weight
from ._binance_orders import BinanceBook
from ._binance_routes import BINANCE_ROUTES, BinanceContext
from ._faults import Plan
from ._ratelimit import Violation
from ._transport import abort, transport_fault

if TYPE_CHECKING:
    from ._server import Simulator

__all__ = ["BINANCE_URL_KEYS", "BinanceDialect"]

BINANCE_URL_KEYS: dict[str, str] = {
    "public": "/api/v3",
    "private": "/api/v3",
    "v1": "/api/v1",
    "sapi": "/sapi/v1",
    "sapiV2": "/sapi/v2",
    "sapiV3": "/sapi/v3",
    "sapiV4": "/sapi/v4",
    "fapiPublic": "/fapi/v1",
    "fapiPublicV2": "/fapi/v2",
    "fapiPublicV3": "/fapi/v3",
    "fapiPrivate": "/fapi/v1",
    "fapiPrivateV2": "/fapi/v2",
    "fapiPrivateV3": "/fapi/v3",
    "fapiData": "/futures/data",
    "dapiPublic": "/dapi/v1",
    "dapiPrivate": "/dapi/v1",
    "dapiPrivateV2": "/dapi/v2",
    "dapiData": "/futures/data",
    "eapiPublic": "/eapi/v1",
    "eapiPrivate": "/eapi/v1",
    "papi": "/papi/v1",
    "papiV2": "/papi/v2",
}
"""ccxt binance's ``urls['api']`` keys and their path prefixes. All of them point at the
simulator, so that no call escapes to the real exchange; only spot (``/api/v3``) and a few
``/sapi/v1`` paths are served, the others answer 404."""
STATUS_PATH = "/sapi/v1/system/status"
ORDER_PATH = "/api/v3/order"
_SIGNED_PATHS = frozenset(path for (_, path), route in BINANCE_ROUTES.items() if route.signed)
_JSON = "application/json"
_MAINTENANCE = {"code": 1, "msg": "System is under maintenance."}
_REASONS = {
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Time-out",
}


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), allow_nan=False)


def _wall_ms() -> int:
    return int(time.time() * 1000)


def _parse(query: str, body: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for raw in (query, body):
        if not raw:
            continue
        for name, value in parse_qsl(raw, keep_blank_values=True, errors="strict"):
            if name in params:
                raise BinanceError(-1101, "Duplicate values for a parameter detected.")
            params[name] = value
    return params


class BinanceDialect:
    """Answers Binance spot REST v3 requests for one simulator."""

    __slots__ = ("book", "limiter", "sim", "weight_header")

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        config = sim.config
        self.book = BinanceBook(sim.market, sim.seed)
        """Binance order ids and client order ids over ``sim.market``."""
        self.limiter = BinanceLimiter(sim.clock, config.binance, enabled=config.rate_limits)
        """Request weight per IP, order counts, IP bans."""
        self.weight_header = "X-MBX-USED-WEIGHT-" + interval_label(config.binance.weight_period)

    def reset(self, seed: int) -> None:
        self.book.reset(seed)
        self.limiter.reset()

    # -- ccxt -----------------------------------------------------------------------

    def ccxt_config(self, *, credentials: bool = True) -> dict[str, Any]:
        """Constructor options that point ``ccxt.async_support.binance`` at the simulator."""
        base = self.sim.base_url
        urls = {key: base + prefix for key, prefix in BINANCE_URL_KEYS.items()}
        config: dict[str, Any] = {
            "urls": {"api": dict(urls), "test": dict(urls), "demo": dict(urls)},
            "options": {
                "defaultType": "spot",
                "fetchMarkets": {"types": ["spot"]},
                # served, but each costs a request per load_markets
                "fetchCurrencies": False,
                "fetchMargins": False,
                "fetchOpenOrders": {"warnWithoutSymbol": False},
                "adjustForTimeDifference": False,
            },
        }
        if credentials:
            config["apiKey"] = self.sim.api_key
            config["secret"] = self.sim.api_secret
        return config

    def configure_ccxt(self, exchange: Any, *, credentials: bool = True) -> Any:
        """Point an existing ccxt binance client at the simulator (before ``load_markets``).

        Every entry of its ``urls['api']`` / ``['test']`` / ``['demo']``, even one this
        module does not know, is rewritten to the simulator with the same path.
        """
        config = self.ccxt_config(credentials=credentials)
        base = self.sim.base_url
        urls = dict(exchange.urls)
        for key, value in config["urls"].items():
            current = urls.get(key)
            merged = dict(current) if isinstance(current, dict) else {}
            for name, url in merged.items():
                if isinstance(url, str):
                    merged[name] = base + urlsplit(url).path
            merged.update(value)
            urls[key] = merged
        exchange.urls = urls
        for key, value in config["options"].items():
            current = exchange.options.get(key)
            if isinstance(value, dict) and isinstance(current, dict):
                exchange.options[key] = {**current, **value}
            else:
                exchange.options[key] = value
        if credentials:
            exchange.apiKey = config["apiKey"]
            exchange.secret = config["secret"]
        return exchange

    # -- answers ------------------------------------------------------------------------

    def _json(
        self, data: Any, ip_client: str, status: int = 200, headers: Iterable[tuple[str, str]] = ()
    ) -> web.Response:
        response = web.Response(text=_dumps(data), status=status, content_type=_JSON)
        response.headers[self.weight_header] = str(self.limiter.used_weight(ip_client))
        for name, value in headers:
            response.headers[name] = value
        return response

    def _error(self, error: BinanceError, ip_client: str) -> web.Response:
        return self._json({"code": error.code, "msg": error.message}, ip_client, error.status)

    def _reject(self, rejection: Rejection, client: str, ip_client: str, path: str) -> web.Response:
        self.sim._counters.record_violation(
            Violation(time.time(), client, path, rejection.rule, rejection.limit, rejection.period)
        )
        return self._json(
            {"code": rejection.code, "msg": rejection.message},
            ip_client,
            rejection.status,
            [("Retry-After", str(rejection.retry_after))],
        )

    # -- request handling -------------------------------------------------------------

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        sim = self.sim
        path = request.path
        method = request.method
        route = BINANCE_ROUTES.get((method, path))
        signed = path in _SIGNED_PATHS
        ip_client = "ip:" + (request.remote or "unknown")
        key_header = request.headers.get("X-MBX-APIKEY") if signed else None
        key_client = key_fingerprint(key_header) if key_header else None
        client = key_client or ip_client
        sim._counters.record(path, client)

        plan = sim.faults.plan_before(path, signed)
        if plan is not None:
            early = await self._before(request, plan, path, ip_client)
            if early is not None:
                return early

        now_ms = _wall_ms()
        query = request.rel_url.raw_query_string
        body = ""
        parse_error: BinanceError | None = None
        try:
            body = (await request.read()).decode("utf-8")
        except UnicodeDecodeError:
            parse_error = BinanceError(-1100, "Illegal characters found in a parameter.")
        except web.HTTPException:  # body over aiohttp's client_max_size
            parse_error = BinanceError(-1101, "Too many parameters sent for this endpoint.")
        params: dict[str, str] = {}
        if parse_error is None:
            try:
                params = _parse(query, body)
            except UnicodeDecodeError:
                parse_error = BinanceError(-1100, "Illegal characters found in a parameter.")
            except BinanceError as error:
                parse_error = error

        rejection = self.limiter.charge(ip_client, request_weight(method, path, params))
        if rejection is not None:
            return self._reject(rejection, ip_client, ip_client, path)
        if route is None:
            return web.Response(
                status=404,
                text="<html><body><h1>404 Not Found</h1></body></html>",
                content_type="text/html",
                headers={self.weight_header: str(self.limiter.used_weight(ip_client))},
            )

        extra_headers: list[tuple[str, str]] = []
        try:
            if parse_error is not None:
                raise parse_error
            if route.signed:
                api_key = authenticate(request.headers, query, body, params, sim._secrets, now_ms)
                client = key_fingerprint(api_key)
            fault_rules = sim.faults.rate_rules(path, signed)
            if fault_rules:
                verdict = sim._limiter.check(path, client, None, fault_rules, ip=False)
                if verdict is not None and not verdict.allowed:
                    budget = Rejection(
                        429,
                        -1003,
                        f"Too many requests; current limit is {verdict.limit} requests per "
                        f"{verdict.period:g} SECOND.",
                        max(1, math.ceil(verdict.reset_in)),
                        verdict.rule,
                        verdict.limit,
                        verdict.period,
                    )
                    return self._reject(budget, client, ip_client, path)
            unknown = [name for name in params if name not in route.params]
            if unknown:
                raise BinanceError(
                    -1104,
                    f"Not all sent parameters were read; read '{len(params) - len(unknown)}' "
                    f"parameter(s) but was sent '{len(params)}'.",
                )
            if method == "POST" and path == ORDER_PATH:
                limited = self.limiter.order()
                if limited is not None:
                    return self._reject(limited, client, ip_client, path)
                count_10s, count_1d = self.limiter.order_counts()
                extra_headers = [
                    ("X-MBX-ORDER-COUNT-10S", str(count_10s)),
                    ("X-MBX-ORDER-COUNT-1D", str(count_1d)),
                ]
            self.book.sync()
            ctx = BinanceContext(
                sim.market,
                self.book,
                now_ms,
                path == STATUS_PATH and self._maintenance_now(),
                sim.config.binance,
            )
            result = route.handler(params, ctx)
        except BinanceError as error:
            response = self._json(
                {"code": error.code, "msg": error.message}, ip_client, error.status, extra_headers
            )
            ok = False
        else:
            response = self._json(result, ip_client, 200, extra_headers)
            ok = True

        after = sim.faults.plan_after(path, signed, ok=ok)
        if after is not None:
            return await self._after(request, after, response)
        return response

    def _maintenance_now(self) -> bool:
        now = self.sim.clock.now()
        return any(begin <= now for begin, _ in self.sim.faults.maintenance_windows())

    async def _before(
        self, request: web.BaseRequest, plan: Plan, path: str, ip_client: str
    ) -> web.StreamResponse | None:
        sim = self.sim
        if plan.latency > 0:
            await asyncio.sleep(plan.latency)
        if plan.maintenance:
            if path == STATUS_PATH:
                return None  # the status endpoint reports the maintenance instead
            headers = []
            if plan.maintenance_until is not None:
                remaining = max(0.0, plan.maintenance_until - sim.clock.now())
                headers.append(("Retry-After", str(max(1, math.ceil(remaining)))))
            return self._json(_MAINTENANCE, ip_client, 503, headers)
        response = await transport_fault(sim, request, plan, _REASONS)
        if response is not None:
            return response
        if plan.retcode is not None:
            code, given = plan.retcode
            code, message, status = message_for(code)
            if not given.startswith("simulated error ") and plan.retcode[0] == code:
                message = given  # a custom message of the fault
            headers = [("Retry-After", "1")] if status == 429 else []
            return self._json({"code": code, "msg": message}, ip_client, status, headers)
        return None

    async def _after(
        self, request: web.BaseRequest, plan: Plan, response: web.Response
    ) -> web.StreamResponse:
        if plan.lost:
            return abort(request)
        if plan.late is not None:
            await asyncio.sleep(plan.late)
            return response
        text = response.text or ""
        truncated = web.Response(
            text=text[: max(1, len(text) // 2)], status=response.status, content_type=_JSON
        )
        for name, value in response.headers.items():
            if name.upper().startswith("X-MBX-") or name == "Retry-After":
                truncated.headers[name] = value
        return truncated

    def __repr__(self) -> str:
        return f"<BinanceDialect {self.book!r} {self.limiter!r}>"
