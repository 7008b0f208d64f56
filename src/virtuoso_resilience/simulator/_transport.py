"""Faults below any exchange dialect: hangs, connection resets, HTML error pages.

Both dialects (Bybit in ``_server``, Binance in ``_binance_server``) apply a
plan's transport faults the same way; only their error-page wording differs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Protocol

from aiohttp import web

from ._faults import Plan

__all__ = ["abort", "error_page", "transport_fault"]


class _Hangs(Protocol):
    """What a hanging request needs from the simulator: a count and the close event."""

    _hanging: int
    _closing: asyncio.Event


def abort(request: web.BaseRequest) -> web.Response:
    """Drop the connection (a reset); the response is never sent."""
    transport = request.transport
    if transport is not None:
        transport.abort()
    return web.Response(status=499)


def error_page(status: int, reasons: Mapping[int, str]) -> web.Response:
    """The HTML page a proxy or load balancer answers with (``Retry-After: 1``
    on 429 and 503)."""
    reason = reasons.get(status, "Error")
    headers = {"Retry-After": "1"} if status in (429, 503) else {}
    return web.Response(
        status=status,
        text=f"<html><body><h1>{status} {reason}</h1></body></html>",
        content_type="text/html",
        headers=headers,
    )


async def transport_fault(
    sim: _Hangs, request: web.BaseRequest, plan: Plan, reasons: Mapping[int, str]
) -> web.StreamResponse | None:
    """The response for the plan's hang, reset or HTTP status fault, if any.

    A hang lasts until the simulator closes, then drops the connection.
    """
    if plan.hang:
        sim._hanging += 1
        try:
            await sim._closing.wait()
        finally:
            sim._hanging -= 1
        return abort(request)
    if plan.reset:
        return abort(request)
    if plan.http_status is not None:
        return error_page(plan.http_status, reasons)
    return None
