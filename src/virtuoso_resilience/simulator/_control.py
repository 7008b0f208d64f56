"""The control API under ``/__sim__``: faults, stats, reset and market controls over HTTP.

Control requests are never faulted, rate limited or counted in the stats.
Every answer is strict JSON (no ``NaN`` / ``Infinity``); a bad request is a
400 ``{"error": ..., "field": ..., "allowed": ...}`` naming what is wrong and
what is allowed. Request bodies are parsed as strict JSON too: ``NaN``,
``Infinity`` and absurdly deep nesting are refused, never half-accepted.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ._config import MAX_SEED
from ._faults import Fault, FaultSpecError
from ._market import MAX_PRICE, MIN_PRICE, check_price

if TYPE_CHECKING:
    from ._server import Simulator

__all__ = ["BadControlRequest", "NonFinite", "dumps_strict", "handle_control", "loads_strict"]

_MAX_ID_DIGITS = 18
_MAX_STEPS = 100_000
_SHOWN = 80


class BadControlRequest(ValueError):
    """A control request was refused: ``field`` (if any) and what is ``allowed``."""

    def __init__(self, message: str, *, field: str | None = None, allowed: str | None = None):
        self.message = message
        self.field = field
        self.allowed = allowed
        super().__init__(message)


class NonFinite:
    """A JSON number that is not a finite float: ``NaN``, ``Infinity``, ``1e999999``.

    :func:`loads_strict` puts one where such a number stood, so that the
    validator of that field refuses it by name (no float ever holds it).
    """

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text if len(text) <= 40 else text[:37] + "..."

    def __repr__(self) -> str:
        return self.text


def _parse_float(text: str) -> float | NonFinite:
    value = float(text)
    return value if math.isfinite(value) else NonFinite(text)


def loads_strict(text: str) -> Any:
    """Parse JSON without letting a non-finite number in.

    ``NaN``, ``Infinity``, ``-Infinity`` and numbers too large for a float
    (``1e999999``, 400 digits with a decimal point) become :class:`NonFinite`
    markers, which every validator refuses naming the field. Raises
    :class:`ValueError` for invalid JSON, nesting too deep to parse and
    integers of more than 4300 digits.
    """
    try:
        return json.loads(text, parse_constant=NonFinite, parse_float=_parse_float)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def dumps_strict(data: Any) -> str:
    """Compact, strict JSON (``allow_nan=False``: a non-finite number is a bug, not output)."""
    return json.dumps(data, separators=(",", ":"), allow_nan=False)


def _shown(text: str) -> str:
    return repr(text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "...")


def _repr(value: object) -> str:
    """``repr(value)`` cut to a readable length; safe for any parsed JSON value."""
    try:
        text = repr(value)
    except (RecursionError, ValueError):  # deep nesting, an int too long to print
        return f"<{type(value).__name__} too large to show>"
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(text=dumps_strict(data), status=status, content_type="application/json")


def _error(
    message: str, status: int = 400, *, field: str | None = None, allowed: str | None = None
) -> web.Response:
    body: dict[str, Any] = {"error": message}
    if field is not None:
        body["field"] = field
    if allowed is not None:
        body["allowed"] = allowed
    return _json(body, status)


async def _body(request: web.BaseRequest) -> Any:
    """The body: ``None`` if empty, parsed JSON if it looks like JSON, else the text."""
    try:
        text = (await request.read()).decode("utf-8")
    except UnicodeDecodeError:
        raise BadControlRequest("body is not valid UTF-8") from None
    if not text.strip():
        return None
    if request.content_type == "application/json" or text.lstrip()[:1] in "{[":
        try:
            return loads_strict(text)
        except ValueError as exc:
            raise BadControlRequest(f"body is not valid JSON ({exc})") from None
    return text


def _object(body: Any, allowed: dict[str, str], example: str) -> dict[str, Any]:
    """``body`` as a JSON object with only ``allowed`` keys (``None``: an empty object)."""
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise BadControlRequest(
            f"body must be empty or a JSON object such as {example}, got "
            + (_shown(body) if isinstance(body, str) else _repr(body)),
            allowed=", ".join(allowed),
        )
    unknown = sorted(k for k in body if k not in allowed)
    if unknown:
        raise BadControlRequest(
            f"unknown field {_shown(unknown[0])}; allowed fields: {', '.join(allowed)}",
            field=unknown[0][:_SHOWN],
            allowed=", ".join(allowed),
        )
    return body


def _faults_from(body: Any) -> list[Fault] | str:
    if isinstance(body, str):
        return body
    if isinstance(body, dict) and set(body) == {"spec"}:
        if not isinstance(body["spec"], str):
            raise BadControlRequest(
                "spec must be a string in the fault grammar",
                field="spec",
                allowed="a string such as 'http=503:0.2,latency=50ms'",
            )
        return str(body["spec"])
    if isinstance(body, dict) and "faults" in body and set(body) == {"faults"}:
        body = body["faults"]
    items = body if isinstance(body, list) else [body]
    faults: list[Fault] = []
    for item in items:
        if not isinstance(item, dict):
            raise FaultSpecError(_repr(item), "each fault must be a JSON object")
        faults.append(Fault.from_dict(item))
    return faults


_RESET_FIELDS = {"seed": f"an integer in 0..{MAX_SEED} (or null: keep the seed)"}
_PRICE_FIELDS = {
    "symbol": "a string such as 'BTCUSDT'",
    "price": f"a finite number in {MIN_PRICE:g}..{MAX_PRICE:g}",
}
_TICK_FIELDS = {
    "steps": f"an integer in 1..{_MAX_STEPS}",
    "symbol": "a string such as 'BTCUSDT' (or null: every symbol)",
}


def _integer(value: Any, name: str, low: int, high: int, allowed: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BadControlRequest(
            f"{name} must be {allowed}, got {_repr(value)}", field=name, allowed=allowed
        )
    return value


def _symbol(value: Any, name: str, allowed: str) -> str:
    if not isinstance(value, str):
        raise BadControlRequest(
            f"{name} must be {allowed}, got {_repr(value)}", field=name, allowed=allowed
        )
    return value


async def handle_control(sim: Simulator, request: web.BaseRequest) -> web.Response:
    """Serve one ``/__sim__/...`` request."""
    try:
        return await _dispatch(sim, request)
    except BadControlRequest as exc:
        return _error(exc.message, field=exc.field, allowed=exc.allowed)
    except FaultSpecError as exc:
        return _error(str(exc), field=exc.field)
    except RecursionError:
        return _error("body nested too deeply")


async def _dispatch(sim: Simulator, request: web.BaseRequest) -> web.Response:
    path = request.path.rstrip("/")
    method = request.method
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
        # ASCII digits only: str.isdigit() also accepts '²' and '①', which int() refuses
        if not (raw_id.isascii() and raw_id.isdigit() and len(raw_id) <= _MAX_ID_DIGITS):
            return _error(
                f"fault id must be an integer, got {_shown(raw_id)}",
                field="id",
                allowed=f"a fault id: ASCII digits, at most {_MAX_ID_DIGITS} of them",
            )
        if sim.faults.remove(int(raw_id)):
            return _json({"removed": 1})
        return _error(f"no fault with id {raw_id}", 404, field="id")
    if path == "/__sim__/reset" and method == "POST":
        body = _object(await _body(request), _RESET_FIELDS, '{"seed": 7}')
        seed = body.get("seed")
        if seed is not None:
            seed = _integer(seed, "seed", 0, MAX_SEED, _RESET_FIELDS["seed"])
        sim.reset(seed)
        return _json({"seed": sim.seed})
    if path == "/__sim__/market" and method == "GET":
        return _json(sim.market.snapshot())
    if path == "/__sim__/market/price" and method == "POST":
        body = await _body(request)
        if body is None:
            body = "<empty>"
        body = _object(body, _PRICE_FIELDS, '{"symbol": "BTCUSDT", "price": 70000}')
        symbol = _symbol(body.get("symbol"), "symbol", _PRICE_FIELDS["symbol"])
        try:
            value = check_price(body.get("price"), "price")
        except ValueError as exc:
            raise BadControlRequest(
                str(exc), field="price", allowed=_PRICE_FIELDS["price"]
            ) from None
        try:
            sim.market.set_price(symbol, value)
        except KeyError as exc:
            return _error(str(exc.args[0]), 404, field="symbol")
        return _json(sim.market.snapshot())
    if path == "/__sim__/market/tick" and method == "POST":
        body = _object(await _body(request), _TICK_FIELDS, '{"steps": 10, "symbol": "ETHUSDT"}')
        steps = _integer(body.get("steps", 1), "steps", 1, _MAX_STEPS, _TICK_FIELDS["steps"])
        tick_symbol: str | None = None
        if body.get("symbol") is not None:
            tick_symbol = _symbol(body["symbol"], "symbol", _TICK_FIELDS["symbol"])
        try:
            sim.market.tick(tick_symbol, steps)
        except KeyError as exc:
            return _error(str(exc.args[0]), 404, field="symbol")
        return _json(sim.market.snapshot())
    return _error(f"no control endpoint {method} {_shown(request.path)}", 404)
