"""Manual breaker control and the event log, attacked as a hostile client would."""

from __future__ import annotations

import json
from typing import Any

import pytest
from mon_helpers import API, AUTH, TOKEN, Api, Start

from virtuoso_resilience import CircuitState, FakeClock, ResilienceRegistry
from virtuoso_resilience.errors import ConfigurationError
from virtuoso_resilience.monitoring import MonitoringSettings

URL = f"{API}/circuit-breakers"


async def test_without_a_token_writes_are_403_saying_how_to_enable_them(
    start: Start, registry: ResilienceRegistry
) -> None:
    registry.circuit_breaker("exchange_api")
    api = await start()
    status, _, body = await api.post(f"{URL}/exchange_api", json={"state": "forced_open"})
    assert status == 403
    assert "VIRTUOSO_MONITORING_TOKEN" in body["message"]
    assert "Authorization: Bearer" in body["message"]
    assert registry.circuit_breaker("exchange_api").state is CircuitState.CLOSED


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Bearer wrong-token-wrong-token",
        f"Basic {TOKEN}",
        f"Bearer {TOKEN}x",
        f"Bearer {TOKEN[:-1]}",
        "Bearer ",
        "Bearer \u00e9\u00e9\u00e9",
    ],
)
async def test_a_wrong_token_is_401_and_changes_nothing(
    api: Api, registry: ResilienceRegistry, header: str | None
) -> None:
    registry.circuit_breaker("exchange_api")
    headers = {"Authorization": header} if header is not None else {}
    status, got, body = await api.post(
        f"{URL}/exchange_api", json={"state": "forced_open"}, headers=headers
    )
    assert status == 401
    assert got["WWW-Authenticate"].startswith("Bearer")
    assert TOKEN not in json.dumps(body)
    assert registry.circuit_breaker("exchange_api").state is CircuitState.CLOSED


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ("forced_open", CircuitState.FORCED_OPEN),
        ("disabled", CircuitState.DISABLED),
        ("closed", CircuitState.CLOSED),
    ],
)
async def test_set_state_by_hand(
    api: Api, registry: ResilienceRegistry, state: str, expected: CircuitState
) -> None:
    cb = registry.circuit_breaker("bybit.ticker.BTC/USDT")
    if expected is CircuitState.CLOSED:
        cb.force_open()
    status, _, body = await api.post(
        f"{URL}/bybit.ticker.BTC%2FUSDT", json={"state": state}, headers=AUTH
    )
    assert status == 200
    assert cb.state is expected
    assert body["state"] == state
    # The change is visible at once, not after the cache's TTL.
    _, _, listing = await api.get(URL)
    assert listing[0]["state"] == state


async def test_event_log_records_api_and_breaker_changes(
    api: Api, registry: ResilienceRegistry, clock: FakeClock
) -> None:
    cb = registry.circuit_breaker("exchange_api", failure_threshold=1, timeout=10.0)
    await api.post(f"{URL}/exchange_api", json={"state": "forced_open"}, headers=AUTH)
    await api.post(f"{URL}/exchange_api", json={"state": "closed"}, headers=AUTH)

    async def fail() -> None:
        raise ConnectionResetError("peer reset")

    with pytest.raises(ConnectionResetError):
        await cb.call_async(fail)
    status, _, body = await api.get(f"{URL}/events")
    assert status == 200
    events = body["events"]
    assert [(e["previous"], e["current"], e["source"]) for e in events] == [
        ("closed", "forced_open", "api"),
        ("forced_open", "closed", "api"),
        ("closed", "open", "breaker"),
    ]
    assert [e["id"] for e in events] == [1, 2, 3]
    assert body["total"] == 3
    assert events[2]["at"] == clock.now()
    assert events[2]["time"].endswith("Z")


async def test_breakers_registered_later_are_followed(
    api: Api, registry: ResilienceRegistry
) -> None:
    await api.get(f"{URL}/events")  # the API is already running and has synced
    late = registry.circuit_breaker("late_api")
    await api.get(f"{URL}/events")  # any request notices the new breaker
    late.force_open()
    _, _, body = await api.get(f"{URL}/events")
    assert [(e["name"], e["current"]) for e in body["events"]] == [("late_api", "forced_open")]
    assert body["watched"] == 1


async def test_a_replaced_breaker_is_followed_and_the_old_one_dropped(
    api: Api, registry: ResilienceRegistry
) -> None:
    old = registry.circuit_breaker("exchange_api")
    await api.get(f"{URL}/events")
    registry.remove_circuit_breaker("exchange_api")
    new = registry.circuit_breaker("exchange_api")
    state = api.server.state
    state.events.watch(registry.components("circuit_breakers"))  # what the watcher does
    old.force_open()
    new.disable()
    _, _, body = await api.get(f"{URL}/events")
    assert [e["current"] for e in body["events"]] == ["disabled"]


async def test_event_log_is_bounded(start: Start, registry: ResilienceRegistry) -> None:
    cb = registry.circuit_breaker("exchange_api")
    api = await start(event_log_size=3)
    for _ in range(5):
        cb.force_open()
        cb.reset()
    _, _, body = await api.get(f"{URL}/events")
    assert [e["id"] for e in body["events"]] == [8, 9, 10]
    assert (body["size"], body["total"]) == (3, 10)


async def test_event_log_filters(api: Api, registry: ResilienceRegistry) -> None:
    a = registry.circuit_breaker("a")
    b = registry.circuit_breaker("b")
    await api.get(f"{URL}/events")
    for cb in (a, b, a, b):
        cb.force_open() if cb.state is CircuitState.CLOSED else cb.reset()
    _, _, body = await api.get(f"{URL}/events", params={"name": "a"})
    assert [e["id"] for e in body["events"]] == [1, 3]
    _, _, body = await api.get(f"{URL}/events", params={"after": "2"})
    assert [e["id"] for e in body["events"]] == [3, 4]
    _, _, body = await api.get(f"{URL}/events", params={"limit": "1"})
    assert [e["id"] for e in body["events"]] == [4]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("limit", "0"),
        ("limit", "-1"),
        ("limit", "abc"),
        ("limit", "²"),
        ("limit", "٣"),
        ("limit", "1e3"),
        ("limit", "999999999999"),
        ("after", "NaN"),
        ("after", "-0"),
        ("name", "x" * 201),
    ],
)
async def test_bad_query_parameters_are_400_naming_the_field(
    api: Api, field: str, value: str
) -> None:
    status, _, body = await api.get(f"{URL}/events", params={field: value})
    assert status == 400
    assert body["field"] == field


async def test_unknown_breaker_is_404(api: Api, registry: ResilienceRegistry) -> None:
    registry.circuit_breaker("exchange_api")
    for name in ("nope", "..%2F..%2Fetc%2Fpasswd", "%00", "exchange_api%2F..", "x" * 5000):
        status, _, body = await api.get(f"{URL}/{name}")
        assert status == 404, name
        assert body["error"] == "not_found"
        assert len(body["message"]) < 300
        status, _, body = await api.post(f"{URL}/{name}", json={"state": "closed"}, headers=AUTH)
        assert status == 404


def _post(api: Api, data: bytes, content_type: str = "application/json") -> Any:
    return api.post(
        f"{URL}/exchange_api", data=data, headers={**AUTH, "Content-Type": content_type}
    )


@pytest.mark.parametrize(
    ("data", "field", "words"),
    [
        (b"", "body", "not valid JSON"),
        (b"{", "body", "not valid JSON"),
        (b"\xff\xfe{}", "body", "UTF-8"),
        (b'{"state": NaN}', "body", "NaN"),
        (b'{"state": Infinity}', "body", "Infinity"),
        (b"[" * 5000 + b"]" * 5000, "body", "nested too deeply"),
        (b'["closed"]', "body", "JSON object"),
        (b'"closed"', "body", "JSON object"),
        (b"null", "body", "JSON object"),
        (b"{}", "state", "required"),
        (b'{"state": "open"}', "state", "closed, disabled, forced_open"),
        (b'{"state": "CLOSED"}', "state", "must be one of"),
        (b'{"state": true}', "state", "a JSON bool"),
        (b'{"state": 1}', "state", "a JSON int"),
        (b'{"state": {"$ne": 1}}', "state", "a JSON dict"),
        (b'{"state": "closed", "reason": "x"}', "reason", "unknown field"),
        ('{"state": "cl\u00f6sed"}'.encode(), "state", "must be one of"),
        (b'{"state": "' + b"x" * 10_000 + b'"}', "state", "must be one of"),
    ],
)
async def test_bad_bodies_are_400_naming_the_field(
    api: Api, registry: ResilienceRegistry, data: bytes, field: str, words: str
) -> None:
    registry.circuit_breaker("exchange_api")
    status, _, body = await _post(api, data)
    assert status == 400, body
    assert body["field"] == field
    assert words in body["message"]
    assert len(json.dumps(body)) < 500
    assert registry.circuit_breaker("exchange_api").state is CircuitState.CLOSED


async def test_a_huge_body_is_413(api: Api, registry: ResilienceRegistry) -> None:
    registry.circuit_breaker("exchange_api")
    status, _, body = await _post(api, b'{"state": "' + b"x" * 1_000_000 + b'"}')
    assert status == 413
    assert body["error"] == "payload_too_large"


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
async def test_a_wrong_content_type_is_415(
    api: Api, registry: ResilienceRegistry, content_type: str
) -> None:
    registry.circuit_breaker("exchange_api")
    status, _, body = await _post(api, b'{"state": "closed"}', content_type)
    assert status == 415
    assert body["field"] == "Content-Type"


async def test_no_response_holds_the_token(api: Api, registry: ResilienceRegistry) -> None:
    registry.circuit_breaker("exchange_api")
    paths = ["/livez", "/readyz", f"{API}/health", f"{API}/health/detailed", URL, f"{API}/metrics"]
    paths += [f"{API}/openapi.json", f"{URL}/events", f"{URL}/exchange_api"]
    for path in paths:
        _, headers, body = await api.get(path, headers=AUTH)
        assert TOKEN not in json.dumps(body), path
        assert TOKEN not in str(dict(headers)), path
    assert TOKEN not in repr(api.server)
    assert TOKEN not in repr(api.server.settings)


def test_a_weak_token_is_refused_without_echoing_it() -> None:
    for token in ("short", "has spaces in the middle of it", "ünïcödé-token-0123456789"):
        with pytest.raises(ConfigurationError) as caught:
            MonitoringSettings(token=token)  # type: ignore[arg-type]
        assert token not in str(caught.value)
        assert "token" in str(caught.value)


async def test_random_bodies_never_break_the_endpoint(
    api: Api, registry: ResilienceRegistry
) -> None:
    import random

    registry.circuit_breaker("exchange_api")
    rng = random.Random(20261201)
    pieces = [b"{", b"}", b"[", b"]", b'"state"', b":", b",", b'"closed"', b"\\u0000", b"\xff"]
    for _ in range(150):
        if rng.random() < 0.5:
            data = bytes(rng.randrange(256) for _ in range(rng.randrange(64)))
        else:
            data = b"".join(rng.choice(pieces) for _ in range(rng.randrange(12)))
        status, _, body = await _post(api, data)
        assert status in (200, 400), (data, status, body)
        assert isinstance(body, dict)


async def test_the_watcher_follows_new_breakers_without_any_request(
    start: Start, registry: ResilienceRegistry, clock: FakeClock
) -> None:
    from mon_helpers import settle

    api = await start(watch_interval=0.25)
    late = registry.circuit_breaker("late_api")
    await settle()
    assert api.server.state.events.watched == ()  # not yet: no request, no tick
    clock.advance(0.25)
    await settle()
    assert api.server.state.events.watched == ("late_api",)
    late.force_open()
    assert [e.current for e in api.server.state.events.events()] == ["forced_open"]
