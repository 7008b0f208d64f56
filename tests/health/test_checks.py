"""The check types: what a function's return means, pools, breakers, error text."""

from __future__ import annotations

import gc
import json
import logging
import warnings
from dataclasses import dataclass
from typing import Any

import pytest

from virtuoso_resilience.clock import FakeClock
from virtuoso_resilience.errors import ConfigurationError
from virtuoso_resilience.health import (
    CheckResult,
    CircuitBreakerHealthCheck,
    ConnectionPoolHealthCheck,
    HealthCheck,
    HealthCheckConfig,
    InvalidCheckResult,
    ServiceStatus,
    SimpleHealthCheck,
)
from virtuoso_resilience.health._checks import describe_error
from virtuoso_resilience.policies.circuit_breaker import CircuitBreaker, CircuitBreakerConfig

S = ServiceStatus


class Pong:
    """What some client's ping() returns: an arbitrary object."""


@pytest.mark.parametrize(
    ("returned", "status"),
    [
        (True, S.HEALTHY),
        (None, S.HEALTHY),
        (False, S.UNHEALTHY),
        (S.DEGRADED, S.DEGRADED),
        (S.CRITICAL, S.CRITICAL),
    ],
)
async def test_simple_check_interprets_return_values(returned: object, status: S) -> None:
    async def async_func() -> object:
        return returned

    def sync_func() -> object:
        return returned

    for func in (async_func, sync_func):
        result = await SimpleHealthCheck("x", func).check()
        assert result.status is status
    if returned is False:
        assert (await SimpleHealthCheck("x", sync_func).check()).message == "check returned False"


@pytest.mark.parametrize(
    ("returned", "type_name"),
    [
        ("DOWN", "str"),
        ("healthy", "str"),
        (0, "int"),
        (1, "int"),
        (0.0, "float"),
        ({"status": "ok"}, "dict"),
        ([], "list"),
        (b"PONG", "bytes"),
        (Pong(), "Pong"),
    ],
)
async def test_anything_but_a_verdict_is_an_error_naming_the_check(
    returned: object, type_name: str
) -> None:
    async def async_func() -> object:
        return returned

    def sync_func() -> object:
        return returned

    for func in (async_func, sync_func):
        with pytest.raises(InvalidCheckResult) as caught:
            await SimpleHealthCheck("exchange", func).check()
        assert str(caught.value) == (
            f"health check 'exchange' returned {type_name}; "
            "a check must return True, None, False, a ServiceStatus or a CheckResult"
        )
        assert caught.value.check == "exchange"
        assert caught.value.returned is type(returned)
        assert isinstance(caught.value, TypeError)


async def test_a_returned_coroutine_is_an_error_and_is_never_run() -> None:
    ran: list[str] = []

    async def ping() -> bool:
        ran.append("ping")
        return False

    async def forgot_await() -> object:
        return ping()  # the coroutine, not its result

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "coroutine ... was never awaited" would fail
        with pytest.raises(InvalidCheckResult, match=r"returned coroutine .*must await it"):
            await SimpleHealthCheck("exchange", forgot_await).check()
        gc.collect()
    assert ran == []


async def test_an_invalid_result_is_a_failed_run_in_the_service(clock: FakeClock) -> None:
    from virtuoso_resilience.health import HealthService

    service = HealthService(clock=clock)
    service.register_health_check(
        SimpleHealthCheck("exchange", lambda: "DOWN", HealthCheckConfig(failure_threshold=1))
    )
    report = await service.run_check("exchange")
    assert report.status is S.UNHEALTHY
    assert report.result is not None
    assert report.result.message == (
        "InvalidCheckResult: health check 'exchange' returned str; "
        "a check must return True, None, False, a ServiceStatus or a CheckResult"
    )
    assert report.metrics.failure_patterns == {"InvalidCheckResult": 1}


async def test_simple_check_passes_a_check_result_through() -> None:
    detailed = CheckResult(S.DEGRADED, "lagging 3 blocks", {"lag": 3})

    async def func() -> CheckResult:
        return detailed

    assert await SimpleHealthCheck("node", func).check() is detailed


async def test_simple_check_awaits_what_a_sync_function_returns() -> None:
    async def ping() -> bool:
        return False

    check = SimpleHealthCheck("x", lambda: ping())
    assert (await check.check()).status is S.UNHEALTHY


def test_simple_check_validates_its_arguments() -> None:
    with pytest.raises(TypeError, match="callable"):
        SimpleHealthCheck("x", "not callable")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="name"):
        SimpleHealthCheck("", lambda: True)


def test_default_config_and_repr() -> None:
    check = SimpleHealthCheck("exchange", lambda: True)
    assert check.config.name == "exchange"
    assert check.config.interval == 60.0
    check.config.interval = 30.0
    assert repr(check) == ("<SimpleHealthCheck 'exchange' interval=30s timeout=10s critical=False>")
    config = HealthCheckConfig(name="exchange_health", depends_on=("cache",))
    assert "depends_on=['cache']" in repr(SimpleHealthCheck("exchange", lambda: True, config))


def test_health_check_is_abstract() -> None:
    with pytest.raises(TypeError):
        HealthCheck("x")  # type: ignore[abstract]


@dataclass(frozen=True)
class FakePoolHealth:
    status: str
    utilisation: float
    waiting: int
    error_rate: float
    reason: str


class FakePool:
    def __init__(self, name: str, health: FakePoolHealth, *, is_async: bool = False) -> None:
        self.name = name
        self._health = health
        self.is_async = is_async

    def health(self) -> Any:
        if self.is_async:

            async def later() -> FakePoolHealth:
                return self._health

            return later()
        return self._health


@pytest.mark.parametrize("is_async", [False, True])
@pytest.mark.parametrize(
    ("pool_status", "status"),
    [
        ("healthy", S.HEALTHY),
        ("degraded", S.DEGRADED),
        ("unhealthy", S.UNHEALTHY),
        ("exploded", S.UNKNOWN),
    ],
)
async def test_pool_check_maps_the_pool_verdict(
    pool_status: str, status: S, is_async: bool
) -> None:
    health = FakePoolHealth(pool_status, 0.85, 4, 0.25, "utilisation 0.85 >= 0.8")
    check = ConnectionPoolHealthCheck(FakePool("exchange_api", health, is_async=is_async))
    assert check.name == "pool.exchange_api"
    result = await check.check()
    assert result.status is status
    assert "utilisation 0.85 >= 0.8" in result.message
    assert result.details == {
        "pool": "exchange_api",
        "utilisation": 0.85,
        "waiting": 4,
        "error_rate": 0.25,
    }


def test_pool_and_breaker_check_names() -> None:
    pool = FakePool("p", FakePoolHealth("healthy", 0, 0, 0, ""))
    assert ConnectionPoolHealthCheck(pool, HealthCheckConfig(name="api_pool")).name == "api_pool"
    assert ConnectionPoolHealthCheck(pool, name="explicit").name == "explicit"
    breaker = CircuitBreaker("bybit", CircuitBreakerConfig())
    assert CircuitBreakerHealthCheck(breaker).name == "circuit_breaker.bybit"
    assert CircuitBreakerHealthCheck(breaker, HealthCheckConfig(name="cb")).name == "cb"


async def test_breaker_check_follows_a_real_breaker(clock: FakeClock) -> None:
    breaker = CircuitBreaker(
        "exchange_api", CircuitBreakerConfig(failure_threshold=2, timeout=60.0), clock=clock
    )
    warn = CircuitBreakerHealthCheck(breaker)
    strict = CircuitBreakerHealthCheck(breaker, fail_when_open=True, name="strict")

    result = await warn.check()
    assert result.status is S.HEALTHY
    assert result.details["state"] == "closed"
    assert result.details["name"] == "exchange_api"

    async def boom() -> None:
        raise ConnectionError("reset")

    for _ in range(2):
        with pytest.raises(ConnectionError):
            await breaker.call_async(boom)
    result = await warn.check()
    assert result.status is S.DEGRADED  # an open breaker is a warning...
    assert result.message == "circuit breaker is open"
    assert result.details["state"] == "open"
    assert (await strict.check()).status is S.UNHEALTHY  # ...unless told to fail


class FakeState:
    def __init__(self, value: str) -> None:
        self.value = value


class FakeBreaker:
    def __init__(self, state: str) -> None:
        self.name = "fake"
        self.state = FakeState(state)

    def snapshot(self) -> dict[str, Any]:
        return {"state": self.state.value, "trips": 1}


@pytest.mark.parametrize(
    ("state", "default", "failing"),
    [
        ("closed", S.HEALTHY, S.HEALTHY),
        ("disabled", S.HEALTHY, S.HEALTHY),
        ("half_open", S.DEGRADED, S.DEGRADED),
        ("open", S.DEGRADED, S.UNHEALTHY),
        ("forced_open", S.DEGRADED, S.UNHEALTHY),
        ("melted", S.UNKNOWN, S.UNKNOWN),
    ],
)
async def test_breaker_state_mapping(state: str, default: S, failing: S) -> None:
    breaker = FakeBreaker(state)
    assert (await CircuitBreakerHealthCheck(breaker).check()).status is default
    result = await CircuitBreakerHealthCheck(breaker, fail_when_open=True).check()
    assert result.status is failing
    assert result.details == {"state": state, "trips": 1}


def test_describe_error_masks_secrets_and_truncates() -> None:
    exc = ConnectionError(
        "GET https://api.bybit.com/v5/order?apiKey=ABCDEF123&signature=deadbeef&symbol=BTCUSDT "
        'failed {"secret": "s3cr3t", "token":"t0k"} Authorization: Bearer eyJhbGciOi'
    )
    text = describe_error(exc)
    assert text.startswith("ConnectionError: GET https://api.bybit.com failed {")
    for secret in ("ABCDEF123", "deadbeef", "s3cr3t", "t0k", "eyJhbGciOi"):
        assert secret not in text
    long = describe_error(ValueError("x" * 1000))
    assert len(long) <= len("ValueError: ") + 200
    assert long.endswith("...")
    assert describe_error(TimeoutError()) == "TimeoutError"


async def test_pool_check_with_a_real_pool(clock: FakeClock) -> None:
    from virtuoso_resilience.pools import ConnectionPool

    pool = ConnectionPool("exchange_api", clock=clock)
    check = ConnectionPoolHealthCheck(pool)
    assert check.name == "pool.exchange_api"
    result = await check.check()
    assert result.status is S.HEALTHY
    assert result.details["pool"] == "exchange_api"
    assert result.details["utilisation"] == 0.0
    await pool.close()
    closed = await check.check()
    assert closed.status is S.UNHEALTHY
    assert closed.message == "pool is closed"


@pytest.mark.parametrize(
    ("message", "shown"),
    [
        (
            "404, message='Not Found', "
            "url='https://discord.com/api/webhooks/1234567890/SECRET-TOKEN-abcdef'",
            "404, message='Not Found', url='https://discord.com'",
        ),
        (
            "Cannot reach https://hooks.slack.com/services/T000/B000/XXXXSECRET now",
            "Cannot reach https://hooks.slack.com now",
        ),
        ("redis://:hunter2@127.0.0.1:6379/0 is down", "redis://127.0.0.1:6379 is down"),
        ("URL('wss://user:pw@[::1]:8443/ws?listenKey=abc#x')", "URL('wss://[::1]:8443')"),
        ("Cannot connect to host api.bybit.com:443", "Cannot connect to host api.bybit.com:443"),
    ],
)
def test_describe_error_reduces_urls_to_scheme_and_host(message: str, shown: str) -> None:
    assert describe_error(RuntimeError(message)) == f"RuntimeError: {shown}"


async def test_secret_urls_never_reach_health_output(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    from virtuoso_resilience.health import HealthService

    async def ping_webhook() -> bool:
        raise ConnectionError(
            "POST https://discord.com/api/webhooks/1234567890/SECRET-TOKEN-abcdef failed"
        )

    service = HealthService(clock=clock)
    service.register_health_check(
        SimpleHealthCheck("alerts", ping_webhook, HealthCheckConfig(failure_threshold=1))
    )
    with caplog.at_level(logging.DEBUG, logger="virtuoso_resilience.health"):
        report = await service.run_check("alerts")
    assert report.result is not None
    assert report.result.message == "ConnectionError: POST https://discord.com failed"
    outputs = json.dumps([service.snapshot(), service.to_health_json()]) + caplog.text
    assert "discord.com" in outputs
    assert "SECRET" not in outputs
    assert "1234567890" not in outputs


# A megabyte of text built to make a backtracking scrubber quadratic: under the
# old patterns "a." * 40_000 alone blocked the event loop for about 27 s.
ADVERSARIAL = {
    "schemes": "http://" * 150_000,
    "letters": "a" * 10**6,
    "dotted": "a." * 500_000,
    "dashed": "a-a+" * 250_000,
    "userinfo": "http://" + "@" * 10**6,
    "keys": "token: " * 150_000,
    "bearer": "Bearer " * 150_000,
    "quotes": "'" * 10**6,
    "spaces": " " * 10**6 + "finally the text",
}


@pytest.mark.parametrize("name", sorted(ADVERSARIAL))
def test_describe_error_on_a_megabyte_of_adversarial_text(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from virtuoso_resilience.health import _checks

    seen: list[int] = []
    scrub = _checks._scrub

    def recording_scrub(text: str) -> str:
        seen.append(len(text))
        return scrub(text)

    monkeypatch.setattr(_checks, "_scrub", recording_scrub)
    text = describe_error(RuntimeError(ADVERSARIAL[name]))
    assert text.startswith("RuntimeError")
    assert len(text) <= len("RuntimeError: ") + 200
    # The work is bounded: the scrubber only ever sees the cut prefix.
    assert seen and max(seen) <= _checks._SCRUB_WINDOW
    if name == "spaces":
        assert text == "RuntimeError: finally the text"
    elif name == "letters":
        assert text == "RuntimeError: " + "a" * 197 + "..."
    elif name == "schemes":
        assert text == "RuntimeError: http://http:..."  # host "http:", the rest is path
    else:
        assert text.endswith("...")


def test_describe_error_masks_a_secret_at_the_start_of_a_huge_message() -> None:
    body = '{"retCode":10001,"retMsg":"' + "x" * 10**6 + '"}'
    exc = ConnectionError(
        "POST https://user:hunter2@api.bybit.com/v5/order/create?apiKey=ABCDEF&sign=0123 " + body
    )
    text = describe_error(exc)
    assert text.startswith("ConnectionError: POST https://api.bybit.com {")
    assert text.endswith("...")
    for secret in ("hunter2", "ABCDEF", "0123", "user"):
        assert secret not in text


@pytest.mark.parametrize("offset", range(-12, 4))
def test_a_url_cut_at_the_window_edge_never_shows_its_user_info(offset: int) -> None:
    from virtuoso_resilience.health._checks import _SCRUB_WINDOW

    # Text that masking shrinks, so that what sits at the window's edge is shown,
    # then a URL whose password straddles the edge.
    filler = "https://h/" + "p" * (_SCRUB_WINDOW - 40) + " "
    url = "redis://:hunter2secret@cache.internal:6379/0 is down"
    pad = "q" * max(0, _SCRUB_WINDOW - len(filler) - 12 + offset)
    text = describe_error(RuntimeError(filler + pad + " " + url + " " + "z" * 5000))
    assert "hunter" not in text
    assert "secret" not in text
    assert ":hu" not in text


def test_describe_error_of_a_base_exception_and_a_broken_str() -> None:
    class Broken(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no text")

    assert describe_error(GeneratorExit()) == "GeneratorExit"
    assert describe_error(KeyboardInterrupt("stop")) == "KeyboardInterrupt: stop"
    assert describe_error(Broken()) == "Broken"
