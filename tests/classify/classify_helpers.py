"""Shared helpers of the classifier tests."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from virtuoso_resilience.classify import OutcomeKind

K = OutcomeKind
T, RL, MT, AMB, PM, BZ, REJ = (
    K.TRANSIENT,
    K.RATE_LIMITED,
    K.MAINTENANCE,
    K.AMBIGUOUS,
    K.PERMANENT,
    K.BUSINESS,
    K.REJECTED,
)


def walk(base: type[BaseException], module_prefix: str) -> list[type[BaseException]]:
    """``base`` and every subclass defined in modules starting with ``module_prefix``."""
    seen: list[type[BaseException]] = []
    stack = [base]
    while stack:
        cls = stack.pop()
        if cls in seen or not cls.__module__.startswith(module_prefix):
            continue
        seen.append(cls)
        stack.extend(cls.__subclasses__())
    return seen


def response_error(
    status: int, headers: dict[str, str] | None = None, cls: type[Any] = aiohttp.ClientResponseError
) -> aiohttp.ClientResponseError:
    info = aiohttp.RequestInfo(
        URL("http://127.0.0.1/x"),
        "POST",
        CIMultiDictProxy(CIMultiDict()),
        URL("http://127.0.0.1/x"),
    )
    proxy = None if headers is None else CIMultiDictProxy(CIMultiDict(headers))
    error: aiohttp.ClientResponseError = cls(info, (), status=status, message="m", headers=proxy)
    return error


def connection_key() -> Any:
    return aiohttp.client_reqrep.ConnectionKey("127.0.0.1", 1, False, True, None, None, None, None)


def raised(error: Exception, cause: BaseException) -> Exception:
    """``error`` as ``raise error from cause`` leaves it."""
    with pytest.raises(type(error)) as info:
        raise error from cause
    return info.value
