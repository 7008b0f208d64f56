"""The ``simulate`` subcommand: argument parsing, fault grammar errors, serving, signals."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys

import aiohttp
import pytest

from virtuoso_resilience.simulator import (
    DEFAULT_API_KEY,
    DEFAULT_API_SECRET,
    Simulator,
    cli,
    key_fingerprint,
)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="virtuoso-resilience")
    subparsers = root.add_subparsers(dest="command", required=True)
    cli.add_parser(subparsers)
    return root


def test_simulate_arguments_and_defaults() -> None:
    args = parser().parse_args(
        ["simulate", "--port", "8090", "--faults", "latency=200ms,error_rate=0.1,rate_limit=10/s"]
    )
    assert args.handler is cli.run
    assert (args.host, args.port, args.seed) == ("127.0.0.1", 8090, None)
    assert args.faults == "latency=200ms,error_rate=0.1,rate_limit=10/s"
    assert (args.api_key, args.api_secret) == (DEFAULT_API_KEY, DEFAULT_API_SECRET)
    assert not args.no_rate_limits
    defaults = parser().parse_args(["simulate"])
    assert (defaults.port, defaults.faults) == (8090, "")


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--faults", "latency=200ms,eror_rate=0.1"], "bad fault 'eror_rate=0.1': unknown key"),
        (["--faults", "rate_limit=ten/s"], "rate_limit=ten/s"),
        (["--port", "99999"], "0..65535"),
        (["--seed", "x"], "--seed"),
    ],
)
def test_bad_arguments_exit_2_with_a_clear_message(
    argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        parser().parse_args(["simulate", *argv])
    assert caught.value.code == 2
    assert needle in capsys.readouterr().err


async def test_serve_runs_until_stopped(capsys: pytest.CaptureFixture[str]) -> None:
    args = parser().parse_args(
        ["simulate", "--port", "0", "--seed", "5", "--faults", "http@/v5/order/*=503"]
    )
    stop, ready = asyncio.Event(), asyncio.Event()
    seen: list[Simulator] = []

    def started(simulator: Simulator) -> None:
        seen.append(simulator)
        ready.set()

    task = asyncio.create_task(cli.serve(args, stop=stop, started=started))
    await asyncio.wait_for(ready.wait(), timeout=10)
    sim = seen[0]
    async with (
        aiohttp.ClientSession() as http,
        http.get(sim.base_url + "/__sim__/faults") as response,
    ):
        body = await response.json()
    assert [f["spec"] for f in body["faults"]] == ["http@/v5/order/*=503"]
    assert sim.seed == 5
    stop.set()
    assert await task == 0
    out = capsys.readouterr().out
    assert sim.base_url in out and "seed 5" in out and "simulator stopped" in out
    assert f"public test pair {DEFAULT_API_KEY} / {DEFAULT_API_SECRET}" in out


async def test_serve_never_prints_custom_credentials(capsys: pytest.CaptureFixture[str]) -> None:
    args = parser().parse_args(
        ["simulate", "--port", "0", "--api-key", "real-looking-key", "--api-secret", "hush"]
    )
    stop = asyncio.Event()
    stop.set()
    assert await cli.serve(args, stop=stop) == 0
    out = capsys.readouterr().out
    assert "real-looking-key" not in out and "hush" not in out
    assert key_fingerprint("real-looking-key") in out


async def test_serve_rejects_invalid_configuration(capsys: pytest.CaptureFixture[str]) -> None:
    args = parser().parse_args(["simulate", "--port", "0", "--api-key", ""])
    assert await cli.serve(args, stop=asyncio.Event()) == 2
    assert "api_key" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_process_stops_cleanly_on_sigterm() -> None:
    port = _free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "virtuoso_resilience.simulator.cli",
        "--port",
        str(port),
        "--seed",
        "3",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), timeout=30)
        assert f"http://127.0.0.1:{port}" in line.decode()
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{port}/v5/market/time") as response,
        ):
            assert (await response.json())["retCode"] == 0
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), timeout=30) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
