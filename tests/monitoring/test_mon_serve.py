"""`virtuoso-resilience serve` with its monitoring API, run as a user runs it."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys

import aiohttp
import pytest

from virtuoso_resilience.cli import build_parser, main

API = "/api/monitoring"


async def test_serve_answers_the_seed_commands_and_stops_cleanly_on_sigterm(
    unused_port: int,
) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "virtuoso_resilience.cli",
        "serve",
        "--monitoring-port",
        str(unused_port),
        "--outage-every",
        "0",
        "--poll-interval",
        "0.1",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={
            **{k: v for k, v in os.environ.items() if k != "VIRTUOSO_MONITORING_TOKEN"},
            "PYTHONDEVMODE": "1",
        },
    )
    assert proc.stdout is not None and proc.stderr is not None
    seen = []
    while True:
        line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
        assert line, "serve exited early"
        seen.append(line)
        if line.startswith("[ready]"):
            break
    banner = next(line for line in seen if line.startswith("[monitoring]"))
    base = re.search(r"http://127\.0\.0\.1:\d+", banner)
    assert base is not None and base.group(0) == f"http://127.0.0.1:{unused_port}"
    url = base.group(0)
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{url}{API}/health") as r:
            assert r.status == 200
            assert (await r.json())["overall_status"] in {"healthy", "unknown", "degraded"}
        async with session.get(f"{url}{API}/circuit-breakers") as r:
            breakers = await r.json()
        assert {b["name"] for b in breakers} == {
            "bybit.ticker.BTC/USDT",
            "bybit.ticker.ETH/USDT",
            "bybit.ticker.SOL/USDT",
        }
        assert all(b["state"] == b["state"].lower() for b in breakers)
        async with session.get(f"{url}{API}/metrics") as r:
            metrics = await r.json()
        assert "connection_pools" in metrics
        assert set(metrics["pipelines"]) == {b["name"] for b in breakers}
        assert "bybit.public" in metrics["rate_limiters"]
        async with session.get(f"{url}{API}/connection-pools") as r:
            assert r.status == 200
        async with session.get(f"{url}{API}/health/detailed") as r:
            assert r.status == 200
        async with session.get(f"{url}/livez") as r:
            assert r.status == 200
        async with session.get(f"{url}/readyz") as r:
            assert r.status == 200
        async with session.post(
            f"{url}{API}/circuit-breakers/bybit.ticker.BTC%2FUSDT", json={"state": "forced_open"}
        ) as r:
            assert r.status == 403  # no VIRTUOSO_MONITORING_TOKEN: writes disabled
    proc.send_signal(signal.SIGTERM)
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    stderr = err.decode()
    assert proc.returncode == 0, stderr
    assert "Unclosed" not in stderr
    assert "Traceback" not in stderr


def test_serve_defaults_to_loopback_8001() -> None:
    args = build_parser().parse_args(["serve"])
    assert (args.monitoring_host, args.monitoring_port, args.no_monitoring) == (
        "127.0.0.1",
        8001,
        False,
    )


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["serve", "--monitoring-port", "70000"], None, "port"),
        (["serve", "--monitoring-host", "bad host"], None, "host"),
        (["serve"], "short", "token"),
    ],
)
def test_serve_refuses_bad_monitoring_options(
    argv: list[str],
    env: str | None,
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if env is not None:
        monkeypatch.setenv("VIRTUOSO_MONITORING_TOKEN", env)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    if env is not None:
        assert repr(env) not in err


def test_serve_reports_a_busy_monitoring_port(capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--monitoring-port", str(port), "--duration", "1"]) == 2
    err = capsys.readouterr().err
    assert f"monitoring API cannot listen on 127.0.0.1:{port}" in err
    assert "Traceback" not in err
