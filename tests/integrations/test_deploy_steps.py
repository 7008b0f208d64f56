"""Deployment's rollback rules, in process (real registry, real probes)."""

from __future__ import annotations

import io
import socket

import pytest

from virtuoso_resilience import load_settings
from virtuoso_resilience._deploy import Deployment, DeployOptions, Step


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Scripted(Deployment):
    """The real configuration step, then scripted ones."""

    def __init__(self, extra: list[Step], out: io.StringIO) -> None:
        settings = load_settings(
            preset="development", redis_port=_closed_port(), memcached_port=_closed_port()
        )
        super().__init__(DeployOptions(api_port=_closed_port(), run_for=0.0), settings, out)
        self.extra = extra

    def steps(self) -> list[Step]:
        return [*super().steps()[:1], *self.extra]


async def _nothing() -> None:
    return None


async def _ok() -> str:
    return "fine"


async def test_a_failing_rollback_does_not_stop_the_others() -> None:
    stopped: list[str] = []

    async def stop_a() -> None:
        stopped.append("a")

    async def stop_b() -> None:
        raise OSError("cannot stop b")

    async def start_c() -> None:
        raise RuntimeError("c will not start " + "x" * 1_000_000)

    async def stop_c() -> None:
        stopped.append("c")

    out = io.StringIO()
    deployment = _Scripted(
        [
            Step("a", "step a", _nothing, _ok, stop_a),
            Step("b", "step b", _nothing, _ok, stop_b),
            Step("c", "step c", start_c, _ok, stop_c),
        ],
        out,
    )
    assert await deployment.run() == 1
    text = out.getvalue()
    assert "step 'c' failed to start: RuntimeError: c will not start" in text
    assert len(text) < 20_000  # a 1 MB error message is cut
    assert "rollback of b failed: OSError: cannot stop b" in text
    assert stopped == ["c", "a"]  # the half-started step too, then in reverse
    assert "rolled back: configuration" in text
    assert deployment.registry is None


async def test_a_verification_that_raises_base_exception_still_rolls_back() -> None:
    class Stop(BaseException):
        pass

    async def verify() -> str:
        raise Stop

    stopped: list[str] = []

    async def stop() -> None:
        stopped.append("a")

    out = io.StringIO()
    deployment = _Scripted([Step("a", "step a", _nothing, verify, stop)], out)
    with pytest.raises(Stop):
        await deployment.run()
    assert stopped == ["a"]
    assert "deploy interrupted; rolling back the completed steps" in out.getvalue()
    assert deployment.registry is None
