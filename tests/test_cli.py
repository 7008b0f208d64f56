"""The `virtuoso-resilience` command, run as a user runs it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from virtuoso_resilience.cli import main


def run_cli(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "virtuoso_resilience.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_serve_trips_and_recovers_against_the_simulator() -> None:
    # A short real run: a 3 s outage of the ticker endpoint at t=6 s; the
    # breakers trip, wait their 3 s recovery timeout and close again well
    # before the next outage at t=12 s.
    done = run_cli(
        "serve",
        "--duration",
        "13",
        "--summary-interval",
        "1",
        "--poll-interval",
        "0.05",
        "--outage-every",
        "6",
        "--outage-length",
        "3",
        "--monitoring-port",
        "0",  # a free port: parallel test runs must not fight over 8001
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "Bybit simulator at http://127.0.0.1:" in out
    assert "[ready]" in out
    assert "[chaos] /v5/market/tickers answers HTTP 503" in out
    assert "closed -> open (4 consecutive failures" in out
    assert "half_open -> closed (trial calls succeeded)" in out
    assert "[summary]" in out
    assert "sim_violations=0" in out  # our rate limiter kept inside Bybit's budget


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["serve", "--poll-interval", "0"], "--poll-interval must be > 0 seconds, got 0.0"),
        (["serve", "--duration", "-1"], "--duration must be > 0 seconds, got -1.0"),
        (["serve", "--outage-every", "-2"], "--outage-every must be >= 0 (0: none) seconds"),
    ],
)
def test_serve_rejects_bad_options(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(args) == 2
    assert message in capsys.readouterr().err


def test_help_lists_both_commands() -> None:
    done = run_cli("--help")
    assert done.returncode == 0
    assert "serve" in done.stdout
    assert "simulate" in done.stdout
