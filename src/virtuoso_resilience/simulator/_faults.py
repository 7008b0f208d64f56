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
from dataclasses import dataclass, field, fields
from typing import Any

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

    def __init__(self, token: str, problem: str) -> None:
        self.token = token
        self.problem = problem
        super().__init__(f"bad fault {token!r}: {problem}")


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
_FLOAT_FIELDS = frozenset(
    {
        "probability",
        "start",
        "duration",
        "latency",
        "latency_max",
        "latency_stddev",
        "period",
        "delay",
    }
)
_INT_FIELDS = frozenset({"count", "status", "retcode", "limit"})


@dataclass(frozen=True, slots=True)
class Fault:
    """One fault: its kind, where it applies, how often and for how long.

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
    ``delay`` (seconds, for ``LATE_RESPONSE``).
    """

    kind: FaultKind
    endpoint: str | None = None
    probability: float = 1.0
    count: int | None = None
    start: float = 0.0
    duration: float | None = None
    latency: float = 0.0
    latency_max: float | None = None
    latency_stddev: float | None = None
    status: int = 500
    retcode: int = 10016
    message: str | None = None
    limit: int = 0
    period: float = 1.0
    delay: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.kind, FaultKind):
            raise FaultSpecError(repr(self.kind), "kind must be a FaultKind")
        token = self.describe()
        if not 0.0 <= self.probability <= 1.0:
            raise FaultSpecError(token, f"probability must be in 0..1, got {self.probability!r}")
        if self.count is not None and self.count < 1:
            raise FaultSpecError(token, f"count must be >= 1, got {self.count!r}")
        if self.count is not None and self.kind in (FaultKind.RATE_LIMIT, FaultKind.MAINTENANCE):
            raise FaultSpecError(
                token,
                f"{self.kind.value} takes a time window (start/duration; '~30s' in the "
                "grammar), not a count",
            )
        if self.start < 0 or (self.duration is not None and self.duration <= 0):
            raise FaultSpecError(token, "time window must have start >= 0 and duration > 0")
        if self.endpoint is not None and not (
            self.endpoint in ("public", "private") or self.endpoint.startswith("/")
        ):
            raise FaultSpecError(
                token, "endpoint must be a path starting with '/', a glob, 'public' or 'private'"
            )
        kind = self.kind
        if kind is FaultKind.LATENCY:
            if self.latency < 0 or (
                self.latency_max is not None and self.latency_max < self.latency
            ):
                raise FaultSpecError(token, "latency must be >= 0 (and max >= min)")
            if self.latency_stddev is not None and self.latency_stddev < 0:
                raise FaultSpecError(token, "latency stddev must be >= 0")
        elif kind is FaultKind.HTTP and not 400 <= self.status <= 599:
            raise FaultSpecError(token, f"HTTP status must be in 400..599, got {self.status!r}")
        elif kind is FaultKind.RETCODE and self.retcode == 0:
            raise FaultSpecError(token, "retcode must be a non-zero Bybit error code")
        elif kind is FaultKind.RATE_LIMIT and (self.limit < 1 or self.period <= 0):
            raise FaultSpecError(token, "rate_limit needs limit >= 1 and period > 0 (e.g. 10/s)")
        elif kind is FaultKind.LATE_RESPONSE and self.delay <= 0:
            raise FaultSpecError(token, "late_response delay must be > 0 (e.g. 30s)")

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
        for f in fields(self):
            if f.name == "kind":
                continue
            value = getattr(self, f.name)
            if value != f.default:
                out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Fault:
        """Build a fault from a mapping such as the control API's JSON."""
        token = repr(dict(data))
        allowed = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise FaultSpecError(
                token, f"unknown field(s) {unknown}; allowed fields: {', '.join(sorted(allowed))}"
            )
        kind_value = data.get("kind")
        try:
            kind = FaultKind(kind_value)
        except ValueError:
            raise FaultSpecError(
                token,
                f"kind {kind_value!r} is unknown; allowed kinds: "
                + ", ".join(k.value for k in FaultKind),
            ) from None
        kwargs: dict[str, Any] = {}
        for name, value in data.items():
            if name == "kind" or value is None:
                continue
            if name in _FLOAT_FIELDS:
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise FaultSpecError(token, f"{name} must be a number, got {value!r}")
                value = float(value)
            elif name in _INT_FIELDS:
                if isinstance(value, bool) or not isinstance(value, int):
                    raise FaultSpecError(token, f"{name} must be an integer, got {value!r}")
            elif not isinstance(value, str):
                raise FaultSpecError(token, f"{name} must be a string, got {value!r}")
            kwargs[name] = value
        return cls(kind=kind, **kwargs)

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
            return max(0.0, rng.gauss(self.latency, self.latency_stddev))
        return self.latency


# -- grammar ------------------------------------------------------------------

_ITEM = re.compile(
    r"^(?P<key>[A-Za-z_]+)(?:@(?P<scope>[^=]+))?=(?P<value>[^#~]*)(?P<quals>(?:[#~][^#~]*)*)$"
)
_DURATION = re.compile(r"^(?P<num>\d+(?:\.\d+)?|\.\d+)(?P<unit>ms|s|m|min|h)$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}
_GRAMMAR_HELP = (
    "items are key[@endpoint]=value[#count][~window] separated by commas; allowed keys: "
    + ", ".join(ALLOWED_KEYS)
)


def parse_duration(text: str, token: str) -> float:
    """Parse ``200ms``, ``1.5s``, ``2m``/``2min``, ``1h`` into seconds."""
    match = _DURATION.match(text.strip())
    if match is None:
        raise FaultSpecError(
            token, f"{text!r} is not a duration; use a number with ms, s, m or h (e.g. 200ms, 30s)"
        )
    return float(match["num"]) * _UNITS[match["unit"]]


def _parse_probability(text: str, token: str) -> tuple[float, int | None]:
    text = text.strip()
    if text == "always":
        return 1.0, None
    if text.startswith("next:"):
        n = text[5:]
        if not n.isdigit() or int(n) < 1:
            raise FaultSpecError(token, f"'next:N' needs an integer N >= 1, got {text!r}")
        return 1.0, int(n)
    try:
        value = float(text[:-1]) / 100.0 if text.endswith("%") else float(text)
    except ValueError:
        raise FaultSpecError(
            token,
            f"{text!r} is not a probability; use 0..1 (e.g. 0.05), a percentage (5%), "
            "'always' or 'next:N'",
        ) from None
    if not 0.0 <= value <= 1.0 or math.isnan(value):
        raise FaultSpecError(token, f"probability must be in 0..1 (or 0%..100%), got {text!r}")
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
        raise FaultSpecError(token, f"unknown key {key!r}; allowed keys: {', '.join(ALLOWED_KEYS)}")
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
        if not param.strip().lstrip("-").isdigit():
            example = "http=503 or http=503:0.2" if key == "http" else "retcode=10016:0.1"
            raise FaultSpecError(token, f"{key} needs an integer code (e.g. {example})")
        kw["status" if key == "http" else "retcode"] = int(param)
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
        if not n.strip().isdigit():
            raise FaultSpecError(token, f"rate_limit count must be an integer, got {n!r}")
        kw["limit"] = int(n)
        per = per.strip()
        kw["period"] = _UNITS[per] if per in ("s", "m", "min", "h") else parse_duration(per, token)

    for qual in re.findall(r"[#~][^#~]*", match["quals"]):
        body = qual[1:].strip()
        if qual[0] == "#":
            if count is not None or not body.isdigit() or int(body) < 1:
                raise FaultSpecError(token, "'#N' (fire at most N times) needs one integer N >= 1")
            count = int(body)
        else:
            if "duration" in kw or kw.get("start"):
                raise FaultSpecError(token, "only one time window '~' is allowed")
            if ".." in body:
                first, last = body.split("..", 1)
                start = parse_duration(first, token)
                if last.strip():
                    end = parse_duration(last, token)
                    if end <= start:
                        raise FaultSpecError(token, "window '~A..B' needs B > A")
                    kw["duration"] = end - start
                kw["start"] = start
            else:
                kw["duration"] = parse_duration(body, token)
    if count is not None:
        kw["count"] = count  # Fault rejects a count on rate_limit / maintenance
    try:
        return Fault(kind=kind, **kw)
    except FaultSpecError as exc:
        raise FaultSpecError(token, exc.problem) from None


def parse_faults(spec: str) -> list[Fault]:
    """Parse a fault specification such as ``"latency=200ms,error_rate=0.1,rate_limit=10/s"``.

    Raises :class:`FaultSpecError` (a :class:`ValueError`) naming the first bad
    token and the allowed keys and forms. An empty string gives no faults.
    """
    faults: list[Fault] = []
    for raw in spec.split(","):
        token = raw.strip()
        if not token:
            continue
        faults.append(_parse_item(token))
    return faults


def _fmt_num(value: float) -> str:
    return f"{value:g}"


def _fmt_dur(seconds: float) -> str:
    if seconds and seconds < 1:
        return f"{seconds * 1000:g}ms"
    return f"{seconds:g}s"


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
