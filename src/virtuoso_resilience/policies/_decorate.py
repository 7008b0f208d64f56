"""The one decorator wrapper every policy uses for ``@policy``."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

__all__ = ["decorate"]

P = ParamSpec("P")
T = TypeVar("T")


def decorate(
    fn: Callable[P, Awaitable[T]],
    call: Callable[..., Awaitable[T]],
    *,
    attribute: str,
    owner: object,
    label: str,
) -> Callable[P, Coroutine[Any, Any, T]]:
    """Wrap the ``async def`` ``fn`` so each call runs as ``await call(fn, ...)``.

    The wrapper keeps ``fn``'s name and docstring and exposes ``owner`` as
    ``wrapper.<attribute>`` (``fetch.circuit_breaker``, ``fetch.retry_policy``).
    ``label`` names the policy in the error raised for a non-async function.
    """
    if not inspect.iscoroutinefunction(fn):
        raise TypeError(
            f"{label} can only decorate an async def (a coroutine function); got {fn!r}"
        )

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        return await call(fn, *args, **kwargs)

    setattr(wrapper, attribute, owner)
    return wrapper
