"""Webhook alert sinks: Discord (``DISCORD_WEBHOOK_URL``) and generic JSON.

The webhook URL is a secret (a Discord webhook's path *is* its token): it is
kept in a private attribute and never appears in a ``repr``, a log line, an
exception or a snapshot; they show ``scheme://host`` at most. Failures are
raised as :class:`aiohttp.ClientResponseError` whose request info carries
that reduced URL only, with a ``Retry-After`` header the classifier reads,
so :class:`AlertNotifier` retries 5xx and waits out 429s.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from typing import Any, Final

import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from .._model import MAX_SECONDS
from ..clock import MONOTONIC, Clock
from ..errors import ConfigurationError, FieldError
from ._alerts import Alert

__all__ = [
    "DISCORD_CONTENT_LIMIT",
    "DISCORD_WEBHOOK_ENV",
    "DiscordWebhookSink",
    "JsonWebhookSink",
]

DISCORD_WEBHOOK_ENV: Final = "DISCORD_WEBHOOK_URL"
DISCORD_CONTENT_LIMIT: Final = 2000
"""Discord's limit on a message's ``content`` (characters)."""

_MAX_BODY: Final = 64 * 1024  # bytes of an error body we read at most
_MAX_FIELD: Final = 2000  # characters of a text field in the JSON sink


def _seconds(value: object) -> float | None:
    """A finite, non-negative number of seconds (numbers or numeric strings), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text or not all(c in "0123456789.eE+-" for c in text):
            return None  # "²", "①", "٣": float() would take some of these
        try:
            value = float(text)
        except ValueError:
            return None
    if not isinstance(value, int | float):
        return None
    seconds = float(value)
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _checked_url(url: object, owner: str) -> URL:
    if not isinstance(url, str | URL):
        raise ConfigurationError(
            [FieldError(owner, "url", type(url).__name__, "must be an http(s) URL string")]
        )
    try:
        parsed = URL(str(url))
    except (ValueError, TypeError):
        parsed = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        # Never echo the value: it is the secret.
        raise ConfigurationError(
            [FieldError(owner, "url", "<hidden>", "must be an absolute http:// or https:// URL")]
        )
    return parsed


def _origin(url: URL) -> str:
    port = "" if url.is_default_port() else f":{url.port}"
    return f"{url.scheme}://{url.host}{port}"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class _WebhookSink:
    """POSTs JSON to a URL; shared by the Discord and the generic sink."""

    def __init__(
        self,
        url: str | URL,
        *,
        name: str,
        timeout: float = 10.0,
        clock: Clock = MONOTONIC,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        owner = type(self).__name__
        self._url = _checked_url(url, owner)
        if not isinstance(name, str) or not name:
            raise ConfigurationError(
                [FieldError(owner, "name", name, "must be a non-empty string")]
            )
        if isinstance(timeout, bool) or not isinstance(timeout, int | float):
            raise ConfigurationError(
                [FieldError(owner, "timeout", timeout, "must be a number > 0")]
            )
        if not (math.isfinite(timeout) and timeout > 0):
            raise ConfigurationError(
                [FieldError(owner, "timeout", timeout, "must be > 0 and finite")]
            )
        self.name = name
        self.timeout = float(timeout)
        self._clock = clock
        self._session = session
        self._own_session = session is None
        self._paused_until = float("-inf")
        self.sent = 0
        self.failures = 0
        self.rate_limited = 0

    @property
    def origin(self) -> str:
        """``scheme://host[:port]`` of the webhook (the only part ever shown)."""
        return _origin(self._url)

    def _request_info(self) -> aiohttp.RequestInfo:
        shown = URL(self.origin)
        return aiohttp.RequestInfo(shown, "POST", CIMultiDictProxy(CIMultiDict()), shown)

    def _error(
        self, status: int, reason: str, retry_after: float | None
    ) -> aiohttp.ClientResponseError:
        headers: CIMultiDict[str] = CIMultiDict()
        if retry_after is not None:
            # Plain decimal seconds, the form the classifier reads (never
            # "1e+300"); a longer wait than any config allows is MAX_SECONDS.
            headers["Retry-After"] = f"{min(retry_after, MAX_SECONDS):.3f}"
        return aiohttp.ClientResponseError(
            self._request_info(),
            (),
            status=status,
            message=_clip(reason, 100),
            headers=CIMultiDictProxy(headers),
        )

    def _payload(self, alert: Alert) -> dict[str, Any]:
        raise NotImplementedError

    def _headers(self) -> dict[str, str]:
        return {"Content-Type": "application/json"}

    async def send(self, alert: Alert) -> None:
        """POST the alert; raise ``ClientResponseError`` on a non-2xx answer."""
        wait = self._paused_until - self._clock.now()
        if wait > 0:
            await self._clock.sleep(wait)
        if self._session is None:
            self._session = aiohttp.ClientSession()
        body = json.dumps(self._payload(alert), ensure_ascii=False, allow_nan=False)
        try:
            async with self._session.post(
                self._url,
                data=body.encode("utf-8"),
                headers=self._headers(),
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                allow_redirects=False,
            ) as response:
                status = response.status
                headers = response.headers
                raw = await response.content.read(_MAX_BODY) if status >= 300 else b""
        except aiohttp.ClientResponseError as exc:  # a malformed answer: hide the URL
            self.failures += 1
            raise self._error(exc.status or 502, "malformed response", None) from None
        except TimeoutError:
            self.failures += 1
            raise TimeoutError(f"no answer from {self.origin} within {self.timeout:g}s") from None
        except aiohttp.ClientError as exc:
            self.failures += 1
            # aiohttp's messages may name the URL: a connection error without them.
            raise aiohttp.ClientConnectionError(
                f"{type(exc).__name__} talking to {self.origin}"
            ) from None
        self._after(status, headers)
        if 200 <= status < 300:
            self.sent += 1
            return
        self.failures += 1
        retry_after = self._retry_after(status, headers, raw)
        if status == 429:
            self.rate_limited += 1
        raise self._error(status, f"HTTP {status} from {self.origin}", retry_after)

    def _after(self, status: int, headers: Mapping[str, str]) -> None:
        """Read rate-limit headers of any answer (the generic sink: none)."""

    def _retry_after(self, status: int, headers: Mapping[str, str], body: bytes) -> float | None:
        if status != 429 and status < 500:
            return None
        return _seconds(headers.get("Retry-After"))

    def _pause(self, seconds: float | None, cap: float = 3600.0) -> None:
        if seconds is not None:
            until = self._clock.now() + min(seconds, cap)
            self._paused_until = max(self._paused_until, until)

    async def aclose(self) -> None:
        """Close the HTTP session this sink made (a session passed in is left open)."""
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    def __repr__(self) -> str:
        paused = self._paused_until - self._clock.now()
        return (
            f"<{type(self).__name__} {self.name!r} url={self.origin}/<hidden> sent={self.sent} "
            f"failures={self.failures} rate_limited={self.rate_limited}"
            f"{f' paused={paused:.3f}s' if paused > 0 else ''}>"
        )


class JsonWebhookSink(_WebhookSink):
    """POSTs each alert as JSON (:meth:`Alert.as_dict`) to any webhook URL.

    ``headers`` are sent with every request (``Authorization`` ...); their
    values are secrets too and never shown. Text fields are cut to 2,000
    characters. A 429 or 5xx with ``Retry-After`` is retried after that wait.
    """

    def __init__(
        self,
        url: str | URL,
        *,
        name: str = "webhook",
        headers: Mapping[str, str] | None = None,
        timeout: float = 10.0,
        clock: Clock = MONOTONIC,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        super().__init__(url, name=name, timeout=timeout, clock=clock, session=session)
        extra = dict(headers or {})
        for key, value in extra.items():
            if not isinstance(key, str) or not isinstance(value, str) or "\n" in key + value:
                raise ConfigurationError(
                    [
                        FieldError(
                            "JsonWebhookSink", "headers", "<hidden>", "must map str to one-line str"
                        )
                    ]
                )
        self._extra_headers = extra

    def _headers(self) -> dict[str, str]:
        return {**self._extra_headers, "Content-Type": "application/json"}

    def _payload(self, alert: Alert) -> dict[str, Any]:
        return {
            key: _clip(value, _MAX_FIELD) if isinstance(value, str) else value
            for key, value in alert.as_dict().items()
        }


class DiscordWebhookSink(_WebhookSink):
    """Posts one Discord message per alert to a webhook (``DISCORD_WEBHOOK_URL``).

    The message names the service, the old → new status and the root cause;
    it is cut to Discord's 2,000-character ``content`` limit and mentions
    are disabled (a check name cannot ping ``@everyone``).

    Discord's rate limits are honoured: a 429's JSON ``retry_after``
    (seconds; else the ``Retry-After`` header, else
    ``X-RateLimit-Reset-After``) becomes the ``Retry-After`` the retry policy
    waits, and every later send waits that long too; an answer with
    ``X-RateLimit-Remaining: 0`` pauses sends for ``X-RateLimit-Reset-After``
    seconds. Values that are not finite non-negative numbers are ignored
    (the retry then backs off); pauses are capped at ``max_pause`` seconds.
    """

    def __init__(
        self,
        url: str | URL,
        *,
        name: str = "discord",
        username: str | None = None,
        timeout: float = 10.0,
        max_pause: float = 300.0,
        clock: Clock = MONOTONIC,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        super().__init__(url, name=name, timeout=timeout, clock=clock, session=session)
        pause = _seconds(max_pause)
        if pause is None or pause == 0:
            raise ConfigurationError(
                [FieldError("DiscordWebhookSink", "max_pause", max_pause, "must be > 0 and finite")]
            )
        self.max_pause = pause
        self.username = None if username is None else _clip(str(username), 80)

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, **options: Any
    ) -> DiscordWebhookSink | None:
        """A sink for ``$DISCORD_WEBHOOK_URL``, or None when it is unset or empty."""
        env = os.environ if environ is None else environ
        url = env.get(DISCORD_WEBHOOK_ENV, "").strip()
        return cls(url, **options) if url else None

    def _payload(self, alert: Alert) -> dict[str, Any]:
        icon = "✅" if alert.recovered else "⚠️"
        lines = [f"{icon} **{alert.service}** health: {alert.previous} → {alert.current}"]
        if alert.root_cause:
            lines.append(f"root cause: {alert.root_cause}")
        if alert.check and alert.check != alert.root_cause:
            lines.append(f"changed by: {alert.check}")
        payload: dict[str, Any] = {
            "content": _clip("\n".join(lines), DISCORD_CONTENT_LIMIT),
            "allowed_mentions": {"parse": []},
        }
        if self.username:
            payload["username"] = self.username
        return payload

    def _after(self, status: int, headers: Mapping[str, str]) -> None:
        if headers.get("X-RateLimit-Remaining", "").strip() == "0":
            self._pause(_seconds(headers.get("X-RateLimit-Reset-After")), self.max_pause)

    def _retry_after(self, status: int, headers: Mapping[str, str], body: bytes) -> float | None:
        if status != 429:
            return super()._retry_after(status, headers, body)
        seconds: float | None = None
        try:
            data = json.loads(body.decode("utf-8")) if body else None
        except (UnicodeDecodeError, ValueError, RecursionError):
            data = None  # an HTML page from a proxy: fall back to the headers
        if isinstance(data, dict):
            seconds = _seconds(data.get("retry_after"))
        if seconds is None:
            seconds = _seconds(headers.get("Retry-After"))
        if seconds is None:
            seconds = _seconds(headers.get("X-RateLimit-Reset-After"))
        self._pause(seconds, self.max_pause)
        return seconds
