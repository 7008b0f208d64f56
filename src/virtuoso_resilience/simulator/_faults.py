"""The fault model: what can go wrong, where, how often and when.

A :class:`Fault` is an immutable description ("HTTP 503 on 20 % of order
creations for the next 30 s"). :class:`FaultSet` holds the active faults of a
simulator and decides, request by request and with the simulator's own seeded
random generator, which of them fire. :func:`parse_faults` turns the compact
grammar used by the CLI and the control API into faults; it is documented in
``docs/simulator.md``.
"""

from __future__ import annotations

import enum
import fnmatch
import itertools
import math
import random
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Annotated, Any, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from .._model import MAX_SECONDS, PositiveSeconds, Ratio, RuleError, Seconds
from ..clock import Clock
from ..errors import ResilienceError

__all__ = [
    "Fault",
    "FaultHandle",
    "FaultKind",
    "FaultSet",
    "FaultSpecError",
    "FaultStatus",
    "parse_faults",
]


class FaultSpecError(ResilienceError, ValueError):
    """A fault specification was rejected; the message names the bad token."""

    def __init__(self, token: str, problem: str, *, field: str | None = None) -> None:
        self.token = token
        self.problem = problem
        self.field = field
        """The first field of a fault object that was refused, when known."""
        shown = token if len(token) <= 200 else token[:197] + "..."
        super().__init__(f"bad fault {shown!r}: {problem}")


class FaultKind(enum.Enum):
    """What a fault does to a matching request."""

    LATENCY = "latency"
    """Delay the request before it is handled."""
    HTTP = "http"
    """Answer an HTTP error status (500, 502, 503, 504, 429, ...) without handling."""
    MAINTENANCE = "maintenance"
    """Answer like Bybit during system maintenance (HTTP 503, status page 'ongoing')."""
    RATE_LIMIT = "rate_limit"
    """Impose a request budget (``limit`` per ``period`` seconds) per API key or IP."""
    RETCODE = "retcode"
    """Answer HTTP 200 with a Bybit error ``retCode`` (10016 'System error' by default)."""
    RESET = "reset"
    """Abort the TCP connection before the request is handled."""
    HANG = "hang"
    """Never answer; the connection stays open until the client gives up."""
    MALFORMED = "malformed"
    """Handle the request, then send a truncated (invalid) JSON body."""
    LOST_RESPONSE = "lost_response"
    """Handle the request (an order *is booked*), then abort the connection."""
    LATE_RESPONSE = "late_response"
    """Handle the request (an order *is booked*), then answer after ``delay`` seconds."""


# Kinds whose grammar value is a probability.
_PROBABILITY_KINDS = {
    "error_rate": FaultKind.HTTP,
    "system_error": FaultKind.RETCODE,
    "reset": FaultKind.RESET,
    "hang": FaultKind.HANG,
    "malformed": FaultKind.MALFORMED,
    "lost_response": FaultKind.LOST_RESPONSE,
}
ALLOWED_KEYS = (
    "error_rate",
    "hang",
    "http",
    "late_response",
    "latency",
    "lost_response",
    "maintenance",
    "malformed",
    "rate_limit",
    "reset",
    "retcode",
    "system_error",
)
_SYSTEM_ERROR_MESSAGE = "System error. Please try again later."
MAX_COUNT = 1_000_000_000
"""The largest ``count`` and rate ``limit`` a fault accepts."""
MAX_RETCODE = 2**31 - 1
"""Bybit retCodes are 32-bit integers; a fault's ``retcode`` stays within +-this."""
MAX_FAULTS = 10_000
"""The most faults a simulator holds at once (each request consults all of them)."""
MAX_TEXT = 1000
"""The longest ``endpoint`` or ``message`` a fault accepts (characters)."""
_MAX_SHOWN = 120


def _positive_zero(value: float) -> float:
    return value + 0.0  # -0.0 becomes 0.0: a duration or a probability has no sign


_NoSign = AfterValidator(_positive_zero)
_Duration = Annotated[Seconds, _NoSign]
_Positive = Annotated[PositiveSeconds, _NoSign]
_Probability = Annotated[Ratio, _NoSign]
_Times = Annotated[int, Field(ge=1, le=MAX_COUNT)]
_Limit = Annotated[int, Field(ge=0, le=MAX_COUNT)]
_Status = Annotated[int, Field(ge=400, le=599)]
_Retcode = Annotated[int, Field(ge=-MAX_RETCODE, le=MAX_RETCODE)]
_Text = Annotated[str, Field(max_length=MAX_TEXT)]

_ALLOWED: Mapping[str, str] = {
    "kind": "a FaultKind; allowed kinds: " + ", ".join(k.value for k in FaultKind),
    "endpoint": (
        "a string: a path starting with '/', a glob such as '/v5/market/*', 'public' or "
        "'private' "
        f"(at most {MAX_TEXT} characters; null: every endpoint)"
    ),
    "probability": "a number in 0..1",
    "count": f"an integer in 1..{MAX_COUNT} (null: no limit)",
    "start": f"a finite number of seconds in 0..{MAX_SECONDS:.0f}",
    "duration": f"a finite number of seconds > 0 and <= {MAX_SECONDS:.0f} (null: until removed)",
    "latency": f"a finite number of seconds in 0..{MAX_SECONDS:.0f}",
    "latency_max": f"a finite number of seconds in 0..{MAX_SECONDS:.0f} (or null)",
    "latency_stddev": f"a finite number of seconds in 0..{MAX_SECONDS:.0f} (or null)",
    "status": "an integer HTTP status in 400..599",
    "retcode": f"a non-zero integer Bybit retCode in -{MAX_RETCODE}..{MAX_RETCODE}",
    "message": f"a string of at most {MAX_TEXT} characters (or null)",
    "limit": f"an integer in 1..{MAX_COUNT} (requests per period)",
    "period": f"a finite number of seconds > 0 and <= {MAX_SECONDS:.0f}",
    "delay": f"a finite number of seconds in 0..{MAX_SECONDS:.0f} (> 0 for late_response)",
}


def _shown(value: object) -> str:
    """``repr(value)``, cut to a readable length (a hostile value may be a megabyte)."""
    try:
        text = repr(value)
    except (RecursionError, ValueError):  # deeply nested, or an int too long to print
        return f"<{type(value).__name__} too large to show>"
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."


def _spec_error(token: str, error: ValidationError) -> FaultSpecError:
    """The :class:`FaultSpecError` for a rejected fault: every bad field, what is allowed."""
    problems: list[str] = []
    seen: set[str] = set()
    first: str | None = None
    for item in error.errors(include_url=False):
        cause = (item.get("ctx") or {}).get("error")
        loc = item.get("loc", ())
        name = str(loc[0]) if loc else ""
        if isinstance(cause, RuleError):
            problem = str(cause)
        elif item.get("type") == "extra_forbidden":
            problem = f"unknown field {name!r}; allowed fields: {', '.join(Fault.model_fields)}"
        elif item.get("type") == "value_error":
            problem = str(item.get("msg", "invalid")).removeprefix("Value error, ")
        else:
            allowed = _ALLOWED.get(name, str(item.get("msg", "invalid")))
            problem = f"{name} must be {allowed}, got {_shown(item.get('input'))}"
        if name in seen and not isinstance(cause, RuleError):
            continue
        seen.add(name)
        problems.append(problem)
        if first is None:
            first = ", ".join(cause.fields) if isinstance(cause, RuleError) else name or None
    return FaultSpecError(token, "; ".join(problems) or "invalid fault", field=first)


class Fault(BaseModel):
    """One fault: its kind, where it applies, how often and for how long.

    An immutable, validated value: every number is finite and bounded (the
    shared annotated types of the configuration models); a bad value raises
    :class:`FaultSpecError` naming the field, the value and what is allowed.

    Common fields:

    - ``endpoint``: ``None`` (every endpoint), an exact path such as
      ``"/v5/order/create"``, a glob such as ``"/v5/market/*"``, or one of the
      groups ``"public"`` / ``"private"``.
    - ``probability``: chance (0..1) that a matching request is hit.
    - ``count``: fire at most this many times, then the fault is spent
      (``None``: no limit). Not allowed for ``RATE_LIMIT`` and ``MAINTENANCE``,
      which last for a time window instead.
    - ``start`` / ``duration``: the fault is active from ``start`` seconds
      after it was added, for ``duration`` seconds (``None``: until removed).

    Kind-specific fields: ``latency`` (seconds; with ``latency_max`` a uniform
    range, with ``latency_stddev`` a normal distribution), ``status`` (HTTP
    status for ``HTTP``), ``retcode`` / ``message`` (for ``RETCODE``),
    ``limit`` / ``period`` (for ``RATE_LIMIT``, requests per seconds),
    ``delay`` (seconds, for ``LATE_RESPONSE``). Durations are at most
    :data:`~virtuoso_resilience._model.MAX_SECONDS` (1e9 s).
    """

    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")

    kind: FaultKind
    endpoint: _Text | None = None
    probability: _Probability = 1.0
    count: _Times | None = None
    start: _Duration = 0.0
    duration: _Positive | None = None
    latency: _Duration = 0.0
    latency_max: _Duration | None = None
    latency_stddev: _Duration | None = None
    status: _Status = 500
    retcode: _Retcode = 10016
    message: _Text | None = None
    limit: _Limit = 0
    period: _Positive = 1.0
    delay: _Duration = 0.0

    def __init__(self, kind: FaultKind, **data: Any) -> None:
        try:
            super().__init__(kind=kind, **data)
        except ValidationError as exc:
            name = kind.value if isinstance(kind, FaultKind) else _shown(kind)
            args = ", ".join(f"{k}={_shown(v)}" for k, v in data.items())
            raise _spec_error(f"{name}({args})", exc) from None

    @field_validator("endpoint")
    @classmethod
    def _check_endpoint(cls, value: str | None) -> str | None:
        if value is not None and not (value in ("public", "private") or value.startswith("/")):
            raise ValueError(f"endpoint must be {_ALLOWED['endpoint']}, got {_shown(value)}")
        return value

    @model_validator(mode="after")
    def _check_kind_rules(self) -> Self:
        kind = self.kind
        if self.count is not None and kind in (FaultKind.RATE_LIMIT, FaultKind.MAINTENANCE):
            raise RuleError(
                {"kind": kind.value, "count": self.count},
                f"{kind.value} takes a time window (start/duration; '~30s' in the "
                "grammar), not a count",
            )
        if self.latency_max is not None and self.latency_max < self.latency:
            raise RuleError(
                {"latency": self.latency, "latency_max": self.latency_max},
                f"latency_max must be >= latency, got {self.latency_max!r} < {self.latency!r}",
            )
        if kind is FaultKind.RETCODE and self.retcode == 0:
            raise RuleError(
                {"retcode": self.retcode}, "retcode must be a non-zero Bybit error code"
            )
        if kind is FaultKind.RATE_LIMIT and self.limit < 1:
            raise RuleError(
                {"limit": self.limit}, "rate_limit needs limit >= 1 and period > 0 (e.g. 10/s)"
            )
        if kind is FaultKind.LATE_RESPONSE and self.delay <= 0:
            raise RuleError({"delay": self.delay}, "late_response delay must be > 0 (e.g. 30s)")
        return self

    # -- grammar round trip -------------------------------------------------

    def describe(self) -> str:
        """This fault in the grammar of :func:`parse_faults`."""
        kind = self.kind
        scope = f"@{self.endpoint}" if self.endpoint else ""
        prob = _fmt_num(self.probability)
        if kind is FaultKind.LATENCY:
            if self.latency_max is not None:
                value = f"{_fmt_dur(self.latency)}..{_fmt_dur(self.latency_max)}"
            elif self.latency_stddev is not None:
                value = f"{_fmt_dur(self.latency)}+-{_fmt_dur(self.latency_stddev)}"
            else:
                value = _fmt_dur(self.latency)
            key, value = "latency", value + ("" if self.probability == 1 else f":{prob}")
        elif kind is FaultKind.HTTP:
            key = "http"
            value = str(self.status) + ("" if self.probability == 1 else f":{prob}")
        elif kind is FaultKind.RETCODE:
            key = "retcode"
            value = str(self.retcode) + ("" if self.probability == 1 else f":{prob}")
        elif kind is FaultKind.MAINTENANCE:
            key, value = "maintenance", "on"
        elif kind is FaultKind.RATE_LIMIT:
            key, value = "rate_limit", f"{self.limit}/{_fmt_dur(self.period)}"
        elif kind is FaultKind.LATE_RESPONSE:
            key = "late_response"
            value = _fmt_dur(self.delay) + ("" if self.probability == 1 else f":{prob}")
        else:
            key, value = kind.value, prob
        quals = ""
        if self.count is not None:
            quals += f"#{self.count}"
        if self.duration is not None or self.start:
            end = "" if self.duration is None else _fmt_dur(self.start + self.duration)
            quals += f"~{_fmt_dur(self.start)}..{end}" if self.start else f"~{end}"
        return f"{key}{scope}={value}{quals}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping (only the fields that differ from the defaults)."""
        out: dict[str, Any] = {"kind": self.kind.value}
        for name, info in type(self).model_fields.items():
            if name == "kind":
                continue
            value = getattr(self, name)
            if value != info.default:
                out[name] = value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Fault:
        """Build a fault from a mapping such as the control API's JSON.

        ``null`` values mean the field's default. Numbers must be JSON numbers
        (not strings or booleans), finite and in range.
        """
        token = _shown(dict(data))
        allowed = tuple(cls.model_fields)
        unknown = sorted(str(k) for k in data if k not in allowed)
        if unknown:
            shown = [u if len(u) <= 40 else u[:37] + "..." for u in unknown[:10]]
            raise FaultSpecError(
                token,
                f"unknown field(s) {shown}; allowed fields: {', '.join(allowed)}",
                field=unknown[0][:40],
            )
        kind_value = data.get("kind")
        try:
            kind = FaultKind(kind_value)
        except (ValueError, TypeError):
            raise FaultSpecError(
                token,
                f"kind {_shown(kind_value)} is unknown; allowed kinds: "
                + ", ".join(k.value for k in FaultKind),
                field="kind",
            ) from None
        kwargs = {k: v for k, v in data.items() if k != "kind" and v is not None}
        try:
            return cls(kind, **kwargs)
        except FaultSpecError as exc:
            raise FaultSpecError(token, exc.problem, field=exc.field) from None

    def matches(self, path: str, private: bool) -> bool:
        """Whether this fault applies to a request for ``path``."""
        endpoint = self.endpoint
        if endpoint is None:
            return True
        if endpoint == "private":
            return private
        if endpoint == "public":
            return not private
        if "*" in endpoint or "?" in endpoint or "[" in endpoint:
            return fnmatch.fnmatchcase(path, endpoint)
        return path == endpoint

    def sample_latency(self, rng: random.Random) -> float:
        """Draw one latency (seconds) from this fault's distribution."""
        if self.latency_max is not None:
            return rng.uniform(self.latency, self.latency_max)
        if self.latency_stddev is not None:
            return min(MAX_SECONDS, max(0.0, rng.gauss(self.latency, self.latency_stddev)))
        return self.latency


# -- grammar ------------------------------------------------------------------

_ITEM = re.compile(
    r"^(?P<key>[A-Za-z_]+)(?:@(?P<scope>[^=]+))?=(?P<value>[^#~]*)(?P<quals>(?:[#~][^#~]*)*)$"
)
# ASCII digits only: str.isdigit() and \d also accept '²', '①' or '٣'
_DURATION = re.compile(r"(?P<num>[0-9]+(?:\.[0-9]+)?|\.[0-9]+)(?P<unit>ms|s|m|min|h)", re.ASCII)
_NUMBER = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?", re.ASCII)
_INTEGER = re.compile(r"-?[0-9]+", re.ASCII)
_MAX_INT_DIGITS = 18
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}
_GRAMMAR_HELP = (
    "items are key[@endpoint]=value[#count][~window] separated by commas; allowed keys: "
    + ", ".join(ALLOWED_KEYS)
)


def parse_duration(text: str, token: str) -> float:
    """Parse ``200ms``, ``1.5s``, ``2m``/``2min``, ``1h`` into seconds (ASCII digits only).

    The result may be ``inf`` for an absurdly long number; :class:`Fault` refuses it.
    """
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise FaultSpecError(
            token,
            f"{_shown(text)} is not a duration; use a number (ASCII digits) with ms, s, m or h "
            "(e.g. 200ms, 30s)",
        )
    return float(match["num"]) * _UNITS[match["unit"]]


def _parse_int(text: str, token: str, problem: str) -> int:
    """An integer of ASCII digits (at most 18 of them), else ``FaultSpecError(problem)``."""
    text = text.strip()
    if _INTEGER.fullmatch(text) is None:
        raise FaultSpecError(token, f"{problem}, got {_shown(text)}")
    if len(text.lstrip("-")) > _MAX_INT_DIGITS:
        raise FaultSpecError(token, f"{problem}; {_shown(text)} is far too large")
    return int(text)


def _parse_probability(text: str, token: str) -> tuple[float, int | None]:
    text = text.strip()
    if text == "always":
        return 1.0, None
    if text.startswith("next:"):
        n = _parse_int(text[5:], token, "'next:N' needs an integer N >= 1")
        if n < 1:
            raise FaultSpecError(token, f"'next:N' needs an integer N >= 1, got {text!r}")
        return 1.0, n
    number = text[:-1] if text.endswith("%") else text
    if _NUMBER.fullmatch(number) is None:
        raise FaultSpecError(
            token,
            f"{_shown(text)} is not a probability; use 0..1 (e.g. 0.05), a percentage (5%), "
            "'always' or 'next:N'",
        )
    value = float(number) / 100.0 if text.endswith("%") else float(number)
    if not 0.0 <= value <= 1.0:
        raise FaultSpecError(
            token, f"probability must be in 0..1 (or 0%..100%), got {_shown(text)}"
        )
    return value, None


def _split_param(value: str) -> tuple[str, str | None]:
    """Split ``value[:prob]`` at the first colon (``prob`` may be ``next:N``)."""
    if ":" in value:
        param, prob = value.split(":", 1)
        return param.strip(), prob
    return value, None


def _parse_item(token: str) -> Fault:
    match = _ITEM.match(token)
    if match is None:
        raise FaultSpecError(token, "expected key[@endpoint]=value; " + _GRAMMAR_HELP)
    key = match["key"].lower()
    scope = match["scope"]
    value = match["value"].strip()
    if key not in ALLOWED_KEYS:
        raise FaultSpecError(
            token, f"unknown key {_shown(key)}; allowed keys: {', '.join(ALLOWED_KEYS)}"
        )
    if not value:
        raise FaultSpecError(token, f"{key} needs a value")
    if scope is not None:
        scope = scope.strip()
        if not (scope in ("public", "private") or scope.startswith("/")):
            raise FaultSpecError(
                token,
                "endpoint after '@' must start with '/' (e.g. @/v5/order/create), "
                "be a glob (@/v5/market/*) or 'public'/'private'",
            )
    kw: dict[str, Any] = {"endpoint": scope}
    count: int | None = None

    if key in _PROBABILITY_KINDS:
        kind = _PROBABILITY_KINDS[key]
        kw["probability"], count = _parse_probability(value, token)
        if key == "error_rate":
            kw["status"] = 500
        elif key == "system_error":
            kw["retcode"] = 10016
    elif key == "latency":
        kind = FaultKind.LATENCY
        param, prob = _split_param(value)
        if ".." in param:
            low, high = param.split("..", 1)
            kw["latency"] = parse_duration(low, token)
            kw["latency_max"] = parse_duration(high, token)
        elif "+-" in param:
            mean, std = param.split("+-", 1)
            kw["latency"] = parse_duration(mean, token)
            kw["latency_stddev"] = parse_duration(std, token)
        else:
            kw["latency"] = parse_duration(param, token)
        if prob is not None:
            kw["probability"], count = _parse_probability(prob, token)
    elif key in ("http", "retcode"):
        kind = FaultKind.HTTP if key == "http" else FaultKind.RETCODE
        param, prob = _split_param(value)
        example = "http=503 or http=503:0.2" if key == "http" else "retcode=10016:0.1"
        code = _parse_int(param, token, f"{key} needs an integer code (e.g. {example})")
        kw["status" if key == "http" else "retcode"] = code
        if prob is not None:
            kw["probability"], count = _parse_probability(prob, token)
    elif key == "late_response":
        kind = FaultKind.LATE_RESPONSE
        param, prob = _split_param(value)
        kw["delay"] = parse_duration(param, token)
        if prob is not None:
            kw["probability"], count = _parse_probability(prob, token)
    elif key == "maintenance":
        kind = FaultKind.MAINTENANCE
        if value not in ("on", "always"):
            kw["duration"] = parse_duration(value, token)
    else:  # rate_limit
        kind = FaultKind.RATE_LIMIT
        if "/" not in value:
            raise FaultSpecError(token, "rate_limit needs N/period (e.g. 10/s, 600/5s, 100/min)")
        n, per = value.split("/", 1)
        kw["limit"] = _parse_int(n, token, "rate_limit count must be an integer (e.g. 10/s)")
        per = per.strip()
        kw["period"] = _UNITS[per] if per in ("s", "m", "min", "h") else parse_duration(per, token)

    for qual in re.findall(r"[#~][^#~]*", match["quals"]):
        body = qual[1:].strip()
        if qual[0] == "#":
            problem = "'#N' (fire at most N times) needs one integer N >= 1"
            if count is not None:
                raise FaultSpecError(token, problem)
            count = _parse_int(body, token, problem)
            if count < 1:
                raise FaultSpecError(token, f"{problem}, got {body!r}")
        else:
            if "duration" in kw or kw.get("start"):
                raise FaultSpecError(token, "only one time window '~' is allowed")
            if ".." in body:
                first, last = body.split("..", 1)
                start = parse_duration(first, token)
                if last.strip():
                    end = parse_duration(last, token)
                    if not end > start:
                        raise FaultSpecError(token, "window '~A..B' needs B > A")
                    kw["duration"] = end - start
                kw["start"] = start
            else:
                kw["duration"] = parse_duration(body, token)
    if count is not None:
        kw["count"] = count  # Fault rejects a count on rate_limit / maintenance
    try:
        return Fault(kind, **kw)
    except FaultSpecError as exc:
        raise FaultSpecError(token, exc.problem, field=exc.field) from None


def parse_faults(spec: str) -> list[Fault]:
    """Parse a fault specification such as ``"latency=200ms,error_rate=0.1,rate_limit=10/s"``.

    Raises :class:`FaultSpecError` (a :class:`ValueError`) naming the first bad
    token and the allowed keys and forms. An empty string gives no faults.
    """
    tokens = [token for token in (raw.strip() for raw in spec.split(",")) if token]
    if len(tokens) > MAX_FAULTS:
        raise FaultSpecError(f"<{len(tokens)} items>", f"a spec holds at most {MAX_FAULTS} faults")
    return [_parse_item(token) for token in tokens]


def _fmt_num(value: float) -> str:
    """``value`` in plain decimal notation (no exponent), exactly as parsed back."""
    text = repr(float(value))
    if "e" in text or "E" in text:
        text = format(Decimal(text), "f")
    return text[:-2] if text.endswith(".0") else text


def _fmt_dur(seconds: float) -> str:
    if 0 < seconds < 1:
        millis = _fmt_num(seconds * 1000)
        if float(millis) * 0.001 == seconds:
            return f"{millis}ms"
    return f"{_fmt_num(seconds)}s"


# -- active faults --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FaultStatus:
    """A snapshot of one active fault."""

    id: int
    fault: Fault
    fired: int
    remaining: int | None
    active: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "spec": self.fault.describe(),
            "fault": self.fault.to_dict(),
            "fired": self.fired,
            "remaining": self.remaining,
            "active": self.active,
        }


@dataclass(slots=True, eq=False)
class _Entry:
    id: int
    fault: Fault
    added_at: float
    remaining: int | None
    fired: int = 0
    begin: float = field(init=False)
    """Clock time the window opens."""
    end: float = field(init=False)
    """Clock time the window closes (``inf``: never)."""

    def __post_init__(self) -> None:
        fault = self.fault
        self.begin = self.added_at + fault.start
        self.end = math.inf if fault.duration is None else self.begin + fault.duration

    def over(self, now: float) -> bool:
        """Whether this fault can never fire again (spent, or its window has ended)."""
        return self.remaining == 0 or now >= self.end

    def live(self, now: float) -> bool:
        return self.remaining != 0 and self.begin <= now < self.end


@dataclass(slots=True)
class Plan:
    """What the faults decided for one request (filled in two phases)."""

    latency: float = 0.0
    maintenance_until: float | None = None
    maintenance: bool = False
    hang: bool = False
    reset: bool = False
    http_status: int | None = None
    retcode: tuple[int, str] | None = None
    lost: bool = False
    late: float | None = None
    malformed: bool = False
    fired: list[FaultKind] = field(default_factory=list)


_PRE_ORDER = (
    FaultKind.MAINTENANCE,
    FaultKind.HANG,
    FaultKind.RESET,
    FaultKind.HTTP,
    FaultKind.RETCODE,
)
_POST_ORDER = (FaultKind.LOST_RESPONSE, FaultKind.LATE_RESPONSE, FaultKind.MALFORMED)
_POST_ORDER_REJECTED = (FaultKind.MALFORMED,)
"""Post-handling faults that apply to a rejected request (retCode != 0): nothing was booked."""


class FaultHandle:
    """The faults added by one :meth:`FaultSet.add` call; remove them with :meth:`remove`.

    Also a context manager: the faults are removed when the block exits.
    """

    __slots__ = ("_entries", "_owner")

    def __init__(self, owner: FaultSet, entries: list[_Entry]) -> None:
        self._owner = owner
        self._entries = tuple(entries)

    @property
    def ids(self) -> tuple[int, ...]:
        return tuple(e.id for e in self._entries)

    @property
    def faults(self) -> tuple[Fault, ...]:
        return tuple(e.fault for e in self._entries)

    @property
    def fired(self) -> int:
        """How many requests these faults hit so far."""
        return sum(e.fired for e in self._entries)

    @property
    def active(self) -> bool:
        """Whether any of these faults is still installed and not spent or expired."""
        now = self._owner.clock.now()
        return any(self._owner.contains(e) and e.live(now) for e in self._entries)

    def remove(self) -> None:
        """Uninstall these faults (idempotent)."""
        for entry in self._entries:
            self._owner.discard(entry.id)

    def __enter__(self) -> FaultHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()

    def __repr__(self) -> str:
        specs = ",".join(e.fault.describe() for e in self._entries)
        return (
            f"<FaultHandle ids={list(self.ids)} {specs!r} fired={self.fired} active={self.active}>"
        )


class FaultSet:
    """The faults installed in a simulator (``sim.faults``).

    Faults are decided in insertion order with the simulator's seeded fault
    random generator, so a seed reproduces the same outcomes for the same
    sequence of requests.

    A fault that can never fire again -- its ``count`` is used up or its time
    window has ended -- is uninstalled automatically the next time the set is
    consulted (a request, :meth:`add`, :meth:`status`, ``len()``). Handles keep
    their ``fired`` count (``active`` is then ``False``), and the per-kind
    totals in :attr:`fired_by_kind` are kept.

    ``on_remove`` is called with the id of every fault uninstalled, whatever
    the reason (the simulator drops the budget of a ``rate_limit`` fault).
    """

    __slots__ = ("_entries", "_fired_by_kind", "_ids", "_on_remove", "clock", "rng")

    def __init__(
        self,
        clock: Clock,
        rng: random.Random,
        *,
        on_remove: Callable[[int], None] | None = None,
    ) -> None:
        self.clock = clock
        self.rng = rng
        self._entries: dict[int, _Entry] = {}
        self._ids = itertools.count(1)
        self._fired_by_kind: dict[FaultKind, int] = {}
        self._on_remove = on_remove

    # -- management ---------------------------------------------------------

    def add(self, *specs: str | Fault | Iterable[Fault]) -> FaultHandle:
        """Install faults given as grammar strings, :class:`Fault` objects or lists of them.

        Returns a :class:`FaultHandle` that removes exactly these faults.
        """
        faults: list[Fault] = []
        for spec in specs:
            if isinstance(spec, str):
                faults.extend(parse_faults(spec))
            elif isinstance(spec, Fault):
                faults.append(spec)
            else:
                for item in spec:
                    if not isinstance(item, Fault):
                        raise TypeError(f"expected Fault, got {type(item).__name__}")
                    faults.append(item)
        now = self.clock.now()
        self._prune(now)
        if len(self._entries) + len(faults) > MAX_FAULTS:
            raise FaultSpecError(
                f"<{len(faults)} faults>",
                f"at most {MAX_FAULTS} faults can be installed at once "
                f"({len(self._entries)} are); remove some first",
            )
        entries = [_Entry(next(self._ids), f, now, f.count) for f in faults]
        for entry in entries:
            self._entries[entry.id] = entry
        return FaultHandle(self, entries)

    def remove(self, target: FaultHandle | int) -> bool:
        """Remove a handle's faults or one fault by id; ``True`` if anything was removed."""
        if isinstance(target, FaultHandle):
            present = any(i in self._entries for i in target.ids)
            target.remove()
            return present
        return self.discard(target)

    def discard(self, fault_id: int) -> bool:
        """Remove one fault by id; ``True`` if it was installed."""
        if self._entries.pop(fault_id, None) is None:
            return False
        if self._on_remove is not None:
            self._on_remove(fault_id)
        return True

    def contains(self, entry: _Entry) -> bool:
        return self._entries.get(entry.id) is entry

    def clear(self) -> None:
        """Remove every fault (counters of fired faults are kept)."""
        for fault_id in list(self._entries):
            self.discard(fault_id)

    def reset(self) -> None:
        """Remove every fault and zero the fired counters."""
        self.clear()
        self._fired_by_kind.clear()

    def status(self) -> tuple[FaultStatus, ...]:
        """Snapshots of the installed faults, in insertion order."""
        now = self.clock.now()
        self._prune(now)
        return tuple(
            FaultStatus(e.id, e.fault, e.fired, e.remaining, e.live(now))
            for e in self._entries.values()
        )

    @property
    def fired_by_kind(self) -> dict[str, int]:
        """How many times faults of each kind fired (kept when faults are removed)."""
        return {k.value: n for k, n in self._fired_by_kind.items()}

    def __len__(self) -> int:
        self._prune(self.clock.now())
        return len(self._entries)

    def __iter__(self) -> Iterator[Fault]:
        self._prune(self.clock.now())
        return iter([e.fault for e in self._entries.values()])

    def __bool__(self) -> bool:
        return True

    def __repr__(self) -> str:
        self._prune(self.clock.now())
        specs = ",".join(e.fault.describe() for e in self._entries.values())
        fired = sum(self._fired_by_kind.values())
        return f"<FaultSet {len(self._entries)} faults {specs!r} fired={fired}>"

    # -- decisions ------------------------------------------------------------

    def _prune(self, now: float) -> None:
        """Uninstall the faults that can never fire again."""
        dead = [e.id for e in self._entries.values() if e.over(now)]
        for fault_id in dead:
            self.discard(fault_id)

    def _fire(self, entry: _Entry) -> bool:
        fault = entry.fault
        if fault.probability < 1.0 and self.rng.random() >= fault.probability:
            return False
        entry.fired += 1
        self._fired_by_kind[fault.kind] = self._fired_by_kind.get(fault.kind, 0) + 1
        if entry.remaining is not None:
            entry.remaining -= 1
            if entry.remaining == 0:
                self.discard(entry.id)  # spent
        return True

    def _matching(self, path: str, private: bool, now: float) -> list[_Entry]:
        """The live faults that apply to ``path``; finished ones met on the way are pruned."""
        matching: list[_Entry] = []
        dead: list[int] | None = None
        for entry in self._entries.values():
            if entry.remaining == 0 or now >= entry.end:
                if dead is None:
                    dead = []
                dead.append(entry.id)
            elif now >= entry.begin and entry.fault.matches(path, private):
                matching.append(entry)
        if dead is not None:
            for fault_id in dead:
                self.discard(fault_id)
        return matching

    def plan_before(self, path: str, private: bool) -> Plan | None:
        """Decide the faults that act before a request is handled (``None``: none)."""
        if not self._entries:
            return None
        now = self.clock.now()
        entries = self._matching(path, private, now)
        if not entries:
            return None
        plan = Plan()
        for entry in entries:
            if entry.fault.kind is FaultKind.LATENCY and self._fire(entry):
                plan.latency += entry.fault.sample_latency(self.rng)
                plan.fired.append(FaultKind.LATENCY)
        for kind in _PRE_ORDER:
            for entry in entries:
                if entry.fault.kind is not kind:
                    continue
                if kind is FaultKind.MAINTENANCE and path == "/v5/system/status":
                    continue
                if not self._fire(entry):
                    continue
                fault = entry.fault
                plan.fired.append(kind)
                if kind is FaultKind.MAINTENANCE:
                    plan.maintenance = True
                    if fault.duration is not None:
                        plan.maintenance_until = entry.end
                elif kind is FaultKind.HANG:
                    plan.hang = True
                elif kind is FaultKind.RESET:
                    plan.reset = True
                elif kind is FaultKind.HTTP:
                    plan.http_status = fault.status
                else:
                    plan.retcode = (fault.retcode, fault.message or _retcode_message(fault.retcode))
                return plan
        return plan if plan.fired else None

    def plan_after(self, path: str, private: bool, *, ok: bool = True) -> Plan | None:
        """Decide the faults that act on the response of a handled request.

        ``ok=False`` (the exchange rejected the request: retCode != 0) leaves
        ``lost_response`` and ``late_response`` faults alone -- nothing was
        booked, so they are neither applied nor used up; ``malformed`` still applies.
        """
        if not self._entries:
            return None
        entries = self._matching(path, private, self.clock.now())
        if not entries:
            return None
        for kind in _POST_ORDER if ok else _POST_ORDER_REJECTED:
            for entry in entries:
                if entry.fault.kind is kind and self._fire(entry):
                    plan = Plan(fired=[kind])
                    if kind is FaultKind.LOST_RESPONSE:
                        plan.lost = True
                    elif kind is FaultKind.LATE_RESPONSE:
                        plan.late = entry.fault.delay
                    else:
                        plan.malformed = True
                    return plan
        return None

    def rate_rules(self, path: str, private: bool) -> list[tuple[str, int, float]]:
        """Budgets imposed by ``RATE_LIMIT`` faults on ``path``: (rule name, limit, period)."""
        if not self._entries:
            return []
        return [
            (f"fault#{e.id}", e.fault.limit, e.fault.period)
            for e in self._matching(path, private, self.clock.now())
            if e.fault.kind is FaultKind.RATE_LIMIT
        ]

    def maintenance_windows(self) -> list[tuple[float, float | None]]:
        """(begin, end) clock times of installed maintenance faults not yet over or spent."""
        self._prune(self.clock.now())
        return [
            (entry.begin, None if entry.fault.duration is None else entry.end)
            for entry in self._entries.values()
            if entry.fault.kind is FaultKind.MAINTENANCE
        ]


def _retcode_message(code: int) -> str:
    return {
        10016: _SYSTEM_ERROR_MESSAGE,
        10006: "Too many visits!",
        10002: "invalid request, please check your server timestamp or recv_window param",
        10003: "API key is invalid.",
        10004: "Error sign, please check your signature generation algorithm.",
        10001: "params error",
    }.get(code, f"simulated error {code}")
