"""The session handed to ccxt: the pool's session, seeing every answer.

ccxt calls ``session.get(url, ...)`` / ``post`` / ... as ``async with``.
Each call goes to the shared pool session unchanged; when the answer's
headers arrive, its status and headers are recorded for the adapter call in
progress (a context variable, so concurrent calls never see each other's
answers, unlike ``exchange.last_response_headers``) and the account limiter
learns from them.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

import aiohttp

from ._limits import AccountLimiter, current_call

__all__ = ["ObservingSession"]


class _Request:
    __slots__ = ("_inner", "_owner", "_response")

    def __init__(self, owner: ObservingSession, inner: Any) -> None:
        self._owner = owner
        self._inner = inner
        self._response: aiohttp.ClientResponse | None = None

    async def __aenter__(self) -> aiohttp.ClientResponse:
        response: aiohttp.ClientResponse = await self._inner.__aenter__()
        self._response = response
        self._owner._observe(response)
        return response

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._inner.__aexit__(exc_type, exc, tb)


class ObservingSession:
    """Forwards to ``session``; records answers for the limiter and classifier."""

    __slots__ = ("_limiter", "_session")

    def __init__(self, session: aiohttp.ClientSession, limiter: AccountLimiter) -> None:
        self._session = session
        self._limiter = limiter

    def _observe(self, response: aiohttp.ClientResponse) -> None:
        state = current_call.get()
        headers = response.headers
        path = response.url.path
        if state is not None:
            state.path = path
            state.status = response.status
            state.headers = headers
            state.requests += 1
        self._limiter.observe(state, path, response.status, headers)

    def get(self, url: Any, **kwargs: Any) -> _Request:
        return _Request(self, self._session.get(url, **kwargs))

    def post(self, url: Any, **kwargs: Any) -> _Request:
        return _Request(self, self._session.post(url, **kwargs))

    def put(self, url: Any, **kwargs: Any) -> _Request:
        return _Request(self, self._session.put(url, **kwargs))

    def delete(self, url: Any, **kwargs: Any) -> _Request:
        return _Request(self, self._session.delete(url, **kwargs))

    def patch(self, url: Any, **kwargs: Any) -> _Request:
        return _Request(self, self._session.patch(url, **kwargs))

    def head(self, url: Any, **kwargs: Any) -> _Request:
        return _Request(self, self._session.head(url, **kwargs))

    def options(self, url: Any, **kwargs: Any) -> _Request:
        return _Request(self, self._session.options(url, **kwargs))

    @property
    def closed(self) -> bool:
        return self._session.closed

    async def close(self) -> None:
        """The pool owns the session: ccxt's ``close()`` must not close it."""

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)

    def __repr__(self) -> str:
        return f"<ObservingSession of {self._session!r}>"
