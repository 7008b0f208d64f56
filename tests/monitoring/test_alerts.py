"""Alerts: Discord and JSON webhooks against a local receiver over real HTTP.

Backoff, spacing, deduplication and Discord pauses run on a FakeClock; only
``send_timeout`` (bounding real I/O) uses the event loop's time.
"""

from __future__ import annotations

import asyncio
import logging
import math

import aiohttp
import pytest
from webhook_receiver import SECRET_PATH, Answer, Receiver

from virtuoso_resilience import (
    ConfigurationError,
    FakeClock,
    HealthCheckConfig,
    HealthService,
    ServiceStatus,
    SimpleHealthCheck,
)
from virtuoso_resilience.monitoring import (
    DISCORD_CONTENT_LIMIT,
    Alert,
    AlertNotifier,
    AlertNotifierConfig,
    AlertSink,
    DiscordWebhookSink,
    JsonWebhookSink,
)

TOKEN = "s3cr3t-T0KEN-do-not-leak"


def alert(root: str | None = "exchange", current: str = "critical") -> Alert:
    return Alert("bot", "healthy", current, root, root, 1.0)


def fast(**settings: object) -> AlertNotifierConfig:
    values: dict[str, object] = {"min_interval": 0.0, "base_delay": 0.5, "max_delay": 10.0}
    values.update(settings)
    return AlertNotifierConfig(**values)  # type: ignore[arg-type]


async def test_one_discord_message_per_health_change(receiver: Receiver) -> None:
    clock = FakeClock()
    service = HealthService(clock=clock)
    sink = DiscordWebhookSink(receiver.url + SECRET_PATH, clock=clock)
    notifier = AlertNotifier([sink], fast(service="market-bot"), clock=clock)
    notifier.attach(service)
    up = {"ok": True}
    service.register_health_check(
        SimpleHealthCheck(
            "exchange", lambda: up["ok"], HealthCheckConfig(critical=True, failure_threshold=1)
        )
    )
    await service.run_checks()  # unknown -> healthy
    up["ok"] = False
    await service.run_checks()  # healthy -> critical (critical check failed)
    up["ok"] = True
    await service.run_checks()  # critical -> healthy
    await asyncio.sleep(0)
    await notifier.drain()
    contents = [post["content"] for post in receiver.posts]
    assert "market-bot" in contents[0]
    assert any("healthy → critical" in c and "root cause: exchange" in c for c in contents)
    assert contents[-1].startswith("✅") and "critical → healthy" in contents[-1]
    assert all(post["allowed_mentions"] == {"parse": []} for post in receiver.posts)
    assert len(contents) == len(set(contents)) == notifier.stats()[0].sent
    await notifier.aclose()
    await service.stop()


async def test_the_same_change_is_sent_once_within_the_dedupe_window(receiver: Receiver) -> None:
    clock = FakeClock()
    notifier = AlertNotifier(
        [DiscordWebhookSink(receiver.url + SECRET_PATH, clock=clock)],
        fast(dedupe_window=60.0),
        clock=clock,
    )
    assert notifier.notify(alert()) == 1
    assert notifier.notify(alert()) == 0  # the same change again: suppressed
    assert notifier.notify(alert(root="cache")) == 1  # a different root cause: sent
    await notifier.drain()
    clock.advance(60.0)
    assert notifier.notify(alert()) == 1
    await notifier.drain()
    assert len(receiver.posts) == 3
    assert notifier.stats()[0].deduplicated == 1
    await notifier.aclose()


async def test_sends_are_spaced_by_min_interval_on_the_clock(receiver: Receiver) -> None:
    clock = FakeClock(autojump=True)
    notifier = AlertNotifier(
        [JsonWebhookSink(receiver.url + "/hook", clock=clock)],
        fast(min_interval=2.0),
        clock=clock,
    )
    for i in range(3):
        notifier.notify(alert(root=f"check{i}"))
    await notifier.drain()
    assert [p["root_cause"] for p in receiver.posts] == ["check0", "check1", "check2"]
    assert clock.now() == pytest.approx(4.0)
    await notifier.aclose()


async def test_discord_429_retry_after_is_honoured(receiver: Receiver) -> None:
    clock = FakeClock(autojump=True)
    receiver.answer(
        Answer(
            429, {"message": "You are being rate limited.", "retry_after": 1.75, "global": False}
        )
    )
    sink = DiscordWebhookSink(receiver.url + SECRET_PATH, clock=clock)
    notifier = AlertNotifier([sink], fast(), clock=clock)
    notifier.notify(alert())
    await notifier.drain()
    assert len(receiver.posts) == 2  # the 429, then the retry
    assert 1.75 in clock.slept
    assert notifier.stats()[0].sent == 1 and sink.rate_limited == 1
    await notifier.aclose()


async def test_discord_429_falls_back_to_headers_when_the_body_is_not_json(
    receiver: Receiver,
) -> None:
    clock = FakeClock(autojump=True)
    receiver.answer(
        Answer(429, b"<html>slow down</html>", {"Retry-After": "3"}),
        Answer(429, b"\xff\xfe not utf-8", {"X-RateLimit-Reset-After": "0.5"}),
    )
    notifier = AlertNotifier(
        [DiscordWebhookSink(receiver.url + SECRET_PATH, clock=clock)], fast(), clock=clock
    )
    notifier.notify(alert())
    await notifier.drain()
    assert len(receiver.posts) == 3
    assert 3.0 in clock.slept and 0.5 in clock.slept
    await notifier.aclose()


@pytest.mark.parametrize(
    "retry_after",
    [
        b'{"retry_after": NaN}',
        b'{"retry_after": Infinity}',
        b'{"retry_after": -5}',
        b'{"retry_after": "abc"}',
        b'{"retry_after": true}',
        b'{"retry_after": "\xc2\xb2"}',
        b'{"retry_after": [1]}',
        b"[" * 5000,
    ],
)
async def test_hostile_retry_after_falls_back_to_backoff(
    receiver: Receiver, retry_after: bytes
) -> None:
    clock = FakeClock(autojump=True)
    receiver.answer(Answer(429, retry_after))
    notifier = AlertNotifier(
        [DiscordWebhookSink(receiver.url + SECRET_PATH, clock=clock)],
        fast(base_delay=0.5, max_delay=10.0),
        clock=clock,
    )
    notifier.notify(alert())
    await notifier.drain()
    assert len(receiver.posts) == 2
    assert notifier.stats()[0].sent == 1
    backoff = [s for s in clock.slept if s > 0]
    assert all(math.isfinite(s) and 0 <= s <= 0.5 for s in backoff)
    await notifier.aclose()


async def test_huge_retry_after_gives_up_and_caps_the_pause(receiver: Receiver) -> None:
    clock = FakeClock(autojump=True)
    receiver.answer(Answer(429, {"retry_after": 1e300}))
    sink = DiscordWebhookSink(receiver.url + SECRET_PATH, clock=clock, max_pause=30.0)
    notifier = AlertNotifier([sink], fast(max_delay=10.0), clock=clock)
    notifier.notify(alert())
    await notifier.drain()
    assert len(receiver.posts) == 1  # longer than max_delay: not retried
    assert notifier.stats()[0].failed == 1
    assert "paused=30.000s" in repr(sink)
    notifier.notify(alert(root="later"))
    await notifier.drain()
    assert 30.0 in clock.slept  # the next send waited the capped pause
    assert notifier.stats()[0].sent == 1
    await notifier.aclose()


async def test_rate_limit_headers_pause_the_next_send(receiver: Receiver) -> None:
    clock = FakeClock(autojump=True)
    receiver.answer(
        Answer(204, None, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset-After": "2.5"})
    )
    notifier = AlertNotifier(
        [DiscordWebhookSink(receiver.url + SECRET_PATH, clock=clock)], fast(), clock=clock
    )
    notifier.notify(alert(root="a"))
    notifier.notify(alert(root="b"))
    await notifier.drain()
    assert len(receiver.posts) == 2
    assert 2.5 in clock.slept
    await notifier.aclose()


async def test_500s_are_retried_with_backoff_then_given_up(receiver: Receiver) -> None:
    clock = FakeClock(autojump=True)
    receiver.answer(Answer(500), Answer(503))
    notifier = AlertNotifier(
        [JsonWebhookSink(receiver.url + "/hook", clock=clock)],
        fast(max_attempts=3),
        clock=clock,
    )
    notifier.notify(alert(root="first"))
    await notifier.drain()
    assert len(receiver.posts) == 3 and notifier.stats()[0].sent == 1
    receiver.answer(Answer(500), Answer(500), Answer(500))
    notifier.notify(alert(root="second"))
    await notifier.drain()
    assert len(receiver.posts) == 6
    assert notifier.stats()[0].failed == 1
    await notifier.aclose()


async def test_a_client_error_is_not_retried(receiver: Receiver) -> None:
    clock = FakeClock(autojump=True)
    receiver.answer(Answer(404, {"message": "Unknown Webhook", "code": 10015}))
    notifier = AlertNotifier(
        [DiscordWebhookSink(receiver.url + SECRET_PATH, clock=clock)], fast(), clock=clock
    )
    notifier.notify(alert())
    await notifier.drain()
    assert len(receiver.posts) == 1 and notifier.stats()[0].failed == 1
    await notifier.aclose()


async def test_a_receiver_that_hangs_is_cut_off_and_retried(receiver: Receiver) -> None:
    clock = FakeClock(autojump=True)
    receiver.answer(Answer(hang=True), Answer(hang=True))
    notifier = AlertNotifier(
        [DiscordWebhookSink(receiver.url + SECRET_PATH, clock=clock, timeout=30.0)],
        fast(max_attempts=2, send_timeout=0.2),
        clock=clock,
    )
    notifier.notify(alert())
    await notifier.drain()
    assert len(receiver.posts) == 2
    assert notifier.stats()[0].failed == 1
    await notifier.aclose()


async def test_one_megabyte_root_cause_is_cut_to_discords_limit(receiver: Receiver) -> None:
    clock = FakeClock(autojump=True)
    huge = "x" * 1_000_000
    notifier = AlertNotifier(
        [
            DiscordWebhookSink(receiver.url + SECRET_PATH, clock=clock),
            JsonWebhookSink(receiver.url + "/hook", clock=clock),
        ],
        fast(),
        clock=clock,
    )
    notifier.notify(Alert("bot", "healthy", "critical", huge, huge, 0.0))
    await notifier.drain()
    discord, generic = sorted(receiver.posts, key=lambda p: "content" not in p)
    assert len(discord["content"]) == DISCORD_CONTENT_LIMIT
    assert discord["content"].endswith("…")
    assert len(generic["root_cause"]) == 2000 and len(generic["summary"]) == 2000
    await notifier.aclose()


async def test_the_queue_is_bounded_and_notify_never_blocks(receiver: Receiver) -> None:
    clock = FakeClock(autojump=True)
    receiver.answer(Answer(hang=True))
    notifier = AlertNotifier(
        [JsonWebhookSink(receiver.url + "/hook", clock=clock)],
        fast(max_pending=10, max_attempts=1, send_timeout=0.2),
        clock=clock,
    )
    for i in range(1000):
        notifier.notify(alert(root=f"c{i}"))
    stats = notifier.stats()[0]
    assert stats.pending == 10 and stats.dropped == 990
    await notifier.drain()
    stats = notifier.stats()[0]
    assert stats.failed == 1 and stats.sent == 9 and stats.pending == 0
    assert receiver.posts[-1]["root_cause"] == "c999"
    await notifier.aclose()


class Exploding:
    name = "exploding"

    def __init__(self) -> None:
        self.calls = 0

    async def send(self, alert: Alert) -> None:
        self.calls += 1
        raise RuntimeError("boom")

    async def aclose(self) -> None:
        raise OSError("close failed")


async def test_a_failing_sink_never_affects_health_or_other_sinks(receiver: Receiver) -> None:
    clock = FakeClock(autojump=True)
    service = HealthService(clock=clock)
    bad = Exploding()
    assert isinstance(bad, AlertSink)
    notifier = AlertNotifier(
        [bad, JsonWebhookSink(receiver.url + "/hook", clock=clock)], fast(), clock=clock
    )
    notifier.attach(service)
    service.register_health_check(SimpleHealthCheck("db", lambda: False))
    report = await service.run_checks()
    assert report.checks["db"].status is ServiceStatus.DEGRADED
    await asyncio.sleep(0)
    await notifier.drain()
    assert bad.calls >= 1
    assert receiver.posts and {s.name: s.failed for s in notifier.stats()}["exploding"] >= 1
    await notifier.aclose()  # the sink's close error is logged, not raised
    await service.stop()


async def test_the_webhook_url_never_appears(
    receiver: Receiver, caplog: pytest.LogCaptureFixture, unused_port: int
) -> None:
    clock = FakeClock(autojump=True)
    receiver.answer(Answer(500), Answer(429, {"retry_after": 0.1}), Answer(400))
    sink = DiscordWebhookSink(receiver.url + SECRET_PATH, clock=clock)
    dead = DiscordWebhookSink(f"http://127.0.0.1:{unused_port}{SECRET_PATH}", clock=clock)
    notifier = AlertNotifier([sink, dead], fast(max_attempts=2), clock=clock)
    errors: list[str] = []
    with caplog.at_level(logging.DEBUG):
        notifier.notify(alert())
        notifier.notify(alert(root="other"))
        await notifier.drain()
        for target in (sink, dead):
            receiver.answer(Answer(500))
            try:
                await target.send(alert())
            except (aiohttp.ClientError, TimeoutError) as exc:
                errors += [str(exc), repr(exc), str(getattr(exc, "request_info", ""))]
        for bad in ("ftp://x", "not a url", 42):
            try:
                DiscordWebhookSink(bad)  # type: ignore[arg-type]
            except ConfigurationError as exc:
                errors.append(str(exc))
        try:
            DiscordWebhookSink("ftp://discord.com" + SECRET_PATH)
        except ConfigurationError as exc:
            errors.append(str(exc))
    shown = "\n".join(
        [caplog.text, repr(sink), repr(dead), repr(notifier), str(notifier.snapshot()), *errors]
    )
    assert len(errors) >= 6
    assert TOKEN not in shown and "webhooks" not in shown
    assert "127.0.0.1" in repr(sink)
    await notifier.aclose()


async def test_json_sink_sends_the_alert_and_hides_its_headers(receiver: Receiver) -> None:
    clock = FakeClock(autojump=True)
    sink = JsonWebhookSink(
        receiver.url + "/hook", headers={"Authorization": "Bearer hunter2"}, clock=clock
    )
    notifier = AlertNotifier([sink], fast(), clock=clock)
    notifier.notify(alert())
    await notifier.drain()
    post = receiver.posts[0]
    assert post["previous"] == "healthy" and post["current"] == "critical"
    assert post["summary"] == "bot health: healthy → critical (root cause: exchange)"
    assert receiver.headers[0]["Authorization"] == "Bearer hunter2"
    assert "hunter2" not in repr(sink) + repr(notifier) + str(notifier.snapshot())
    with pytest.raises(ConfigurationError, match="headers"):
        JsonWebhookSink(receiver.url, headers={"X": "a\nb"})
    await notifier.aclose()


async def test_from_env() -> None:
    assert DiscordWebhookSink.from_env({}) is None
    assert DiscordWebhookSink.from_env({"DISCORD_WEBHOOK_URL": "  "}) is None
    sink = DiscordWebhookSink.from_env({"DISCORD_WEBHOOK_URL": "https://discord.com" + SECRET_PATH})
    assert sink is not None and sink.origin == "https://discord.com"
    notifier = AlertNotifier([DiscordWebhookSink.from_env({}), sink])
    assert [s.name for s in notifier.stats()] == ["discord"]
    with pytest.raises(TypeError, match="AlertSink"):
        AlertNotifier([object()])  # type: ignore[list-item]
    await notifier.aclose()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("timeout", math.nan),
        ("timeout", True),
        ("timeout", -1.0),
        ("max_pause", math.inf),
        ("max_pause", 0.0),
        ("name", ""),
    ],
)
async def test_sink_settings_are_checked(field: str, value: object) -> None:
    with pytest.raises(ConfigurationError, match=field):
        DiscordWebhookSink("https://discord.com" + SECRET_PATH, **{field: value})  # type: ignore[arg-type]


async def test_notifier_config_rule() -> None:
    with pytest.raises(ConfigurationError, match="base_delay"):
        AlertNotifierConfig(base_delay=20.0, max_delay=10.0)


async def test_notify_after_close_is_ignored(receiver: Receiver) -> None:
    notifier = AlertNotifier([JsonWebhookSink(receiver.url + "/hook")], fast())
    await notifier.aclose()
    assert notifier.notify(alert()) == 0
    assert receiver.posts == []


async def test_notify_refuses_what_is_not_an_alert() -> None:
    notifier = AlertNotifier([])
    with pytest.raises(TypeError, match="Alert"):
        notifier.notify({"current": "critical"})  # type: ignore[arg-type]


class Stubborn:
    """A sink whose send ignores cancellation until released."""

    name = "stubborn"

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.started = 0

    async def send(self, alert: Alert) -> None:
        self.started += 1
        while not self.release.is_set():
            try:
                await self.release.wait()
            except asyncio.CancelledError:
                continue  # ignores cancellation

    async def aclose(self) -> None:
        self.release.set()


async def test_a_sink_that_ignores_cancellation_is_left_behind() -> None:
    clock = FakeClock(autojump=True)
    sink = Stubborn()
    notifier = AlertNotifier([sink], fast(max_attempts=2, send_timeout=0.05), clock=clock)
    notifier.notify(alert())
    await notifier.drain()  # returns although both attempts are still stuck
    assert sink.started == 2
    assert notifier.stats()[0].failed == 1
    await notifier.aclose()  # releases the stuck sends
    for _ in range(5):
        await asyncio.sleep(0)
