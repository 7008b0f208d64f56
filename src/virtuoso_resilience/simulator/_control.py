"""The control API under ``/__sim__``: faults, stats, reset and market controls over HTTP.

Control requests are never faulted, rate limited or counted in the stats.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ._faults import Fault, FaultSpecError
from ._market import check_price

if TYPE_CHECKING:
    from ._server import Simulator

__all__ = ["handle_control"]


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        text=json.dumps(data, separators=(",", ":")), status=status, content_type="application/json"
    )


def _error(message: str, status: int = 400) -> web.Response:
    return _json({"error": message}, status)


async def _body(request: web.BaseRequest) -> Any:
    try:
        text = (await request.read()).decode("utf-8")
    except UnicodeDecodeError:
        raise FaultSpecError("<body>", "body is not valid UTF-8") from None
    if not text.strip():
        return None
    if request.content_type == "application/json" or text.lstrip()[:1] in "{[":
        try:
            return json.loads(text)
        except ValueError:
            raise FaultSpecError(text[:80], "body is not valid JSON") from None
    return text


def _faults_from(body: Any) -> list[Fault] | str:
    if isinstance(body, str):
        return body
    if isinstance(body, dict) and set(body) == {"spec"} and isinstance(body["spec"], str):
        return str(body["spec"])
    if isinstance(body, dict) and "faults" in body and set(body) == {"faults"}:
        body = body["faults"]
    items = body if isinstance(body, list) else [body]
    faults: list[Fault] = []
    for item in items:
        if not isinstance(item, dict):
            raise FaultSpecError(repr(item)[:80], "each fault must be a JSON object")
        faults.append(Fault.from_dict(item))
    return faults


async def handle_control(sim: Simulator, request: web.BaseRequest) -> web.Response:
    """Serve one ``/__sim__/...`` request."""
    path = request.path.rstrip("/")
    method = request.method
    try:
        if path == "/__sim__/health" and method == "GET":
            return _json({"status": "ok", "seed": sim.seed})
        if path == "/__sim__/stats" and method == "GET":
            return _json(sim.stats.to_dict())
        if path == "/__sim__/faults":
            if method == "GET":
                return _json({"faults": [s.to_dict() for s in sim.faults.status()]})
            if method == "POST":
                body = await _body(request)
                if body is None:
                    return _error("empty body: send a fault spec string or JSON")
                spec = _faults_from(body)
                handle = sim.faults.add(spec)
                return _json(
                    {"ids": list(handle.ids), "faults": [f.describe() for f in handle.faults]},
                    201,
                )
            if method == "DELETE":
                removed = len(sim.faults)
                sim.faults.clear()
                return _json({"removed": removed})
        if path.startswith("/__sim__/faults/") and method == "DELETE":
            raw_id = path.rsplit("/", 1)[1]
            if not raw_id.isdigit():
                return _error(f"fault id must be an integer, got {raw_id!r}")
            if sim.faults.remove(int(raw_id)):
                return _json({"removed": 1})
            return _error(f"no fault with id {raw_id}", 404)
        if path == "/__sim__/reset" and method == "POST":
            body = await _body(request)
            seed = body.get("seed") if isinstance(body, dict) else None
            if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
                return _error(f"seed must be an integer, got {seed!r}")
            sim.reset(seed)
            return _json({"seed": sim.seed})
        if path == "/__sim__/market" and method == "GET":
            return _json(sim.market.snapshot())
        if path == "/__sim__/market/price" and method == "POST":
            body = await _body(request)
            if not isinstance(body, dict):
                return _error('send JSON {"symbol": "BTCUSDT", "price": 70000}')
            symbol, price = body.get("symbol"), body.get("price")
            if not isinstance(symbol, str):
                return _error(f"symbol must be a string such as 'BTCUSDT', got {symbol!r}")
            try:
                # JSON NaN / Infinity parse as floats: rejected here, naming the field
                value = check_price(price, "price")
                sim.market.set_price(symbol, value)
            except ValueError as exc:
                return _error(str(exc))
            except KeyError as exc:
                return _error(str(exc.args[0]), 404)
            return _json(sim.market.snapshot())
        if path == "/__sim__/market/tick" and method == "POST":
            body = await _body(request)
            body = body if isinstance(body, dict) else {}
            steps = body.get("steps", 1)
            symbol = body.get("symbol")
            if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= 100_000:
                return _error("steps must be an integer in 1..100000")
            if symbol is not None and not isinstance(symbol, str):
                return _error(f"symbol must be a string such as 'BTCUSDT', got {symbol!r}")
            try:
                sim.market.tick(symbol, steps)
            except KeyError as exc:
                return _error(str(exc.args[0]), 404)
            return _json(sim.market.snapshot())
    except FaultSpecError as exc:
        return _error(str(exc))
    return _error(f"no control endpoint {method} {request.path}", 404)
