"""``virtuoso-resilience deploy`` and the seed's script, run as subprocesses."""

from __future__ import annotations

import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from _integration_servers import ROOT, Server

SCRIPT = ROOT / "scripts" / "deploy_resilience_patterns.py"
KEY, SECRET = "bybit-key-DO-NOT-LEAK-42", "bybit-secret-DO-NOT-LEAK-43"
WEBHOOK_TOKEN = "webhook-token-DO-NOT-LEAK-44"


def _run(
    python: str, args: list[str], env: dict[str, str], *, script: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run deploy; the monitoring API on a free port (never 8001: others may use it)."""
    if "--api-port" not in args:
        args = [*args, "--api-port", str(_closed_port())]
    command = (
        [python, str(SCRIPT), *args] if script else [python, "-m", "virtuoso_resilience.cli", *args]
    )
    return subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=90, check=False, cwd=ROOT
    )


@pytest.fixture
def webhook_listener() -> Iterator[int]:
    """A TCP listener standing in for the webhook host (the probe only connects)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        yield int(s.getsockname()[1])


@pytest.fixture
def caches_env(
    clean_env: dict[str, str], redis_server: Server, memcached_server: Server, webhook_listener: int
) -> dict[str, str]:
    return clean_env | {
        "REDIS_HOST": redis_server.host,
        "REDIS_PORT": str(redis_server.port),
        "MEMCACHED_HOST": memcached_server.host,
        "MEMCACHED_PORT": str(memcached_server.port),
        "DISCORD_WEBHOOK_URL": f"http://127.0.0.1:{webhook_listener}/api/webhooks/1/{WEBHOOK_TOKEN}",
    }


def _lines_after(output: str, marker: str) -> list[str]:
    lines = output.splitlines()
    index = next(i for i, line in enumerate(lines) if marker in line)
    return lines[index + 1 :]


def test_green_dev_deploy_through_the_seed_script(python: str, caches_env: dict[str, str]) -> None:
    result = _run(
        python, ["--environment", "dev", "--verbose", "--run-for", "0"], caches_env, script=True
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "alerts: verified" in out and "attached to the health service" in out
    for step in (
        "monitoring API",
        "configuration",
        "connection pools",
        "circuit breakers",
        "caches",
        "exchange",
        "health checks",
    ):
        assert f"{step}: verified" in out
    assert "memcached connected (aiomcache" in out and "; redis connected (redis" in out
    assert "overall healthy" in out
    assert "deployment complete (8 steps verified; healthy)" in out
    assert "webhook: 127.0.0.1" in out
    assert out.rstrip().endswith("stopped")
    assert WEBHOOK_TOKEN not in out + result.stderr


def test_cli_and_script_are_the_same_command(python: str, caches_env: dict[str, str]) -> None:
    port = str(_closed_port())
    via_cli = _run(
        python, ["deploy", "--environment", "dev", "--dry-run", "--api-port", port], caches_env
    )
    via_script = _run(
        python, ["--environment", "dev", "--dry-run", "--api-port", port], caches_env, script=True
    )
    assert via_cli.returncode == via_script.returncode == 0
    assert via_cli.stdout.splitlines()[-8:] == via_script.stdout.splitlines()[-8:]


def test_failing_step_rolls_back_completed_steps_in_reverse(
    python: str, caches_env: dict[str, str]
) -> None:
    env = caches_env
    result = _run(
        python,
        [
            "deploy",
            "--environment",
            "dev",
            "--run-for",
            "0",
            "--exchange-faults",
            "http@/v5/market/tickers=503",
        ],
        env,
    )
    out = result.stdout
    assert result.returncode == 1, out + result.stderr
    assert "step 'exchange' failed to verify: ExchangeNotAvailable" in out
    assert "health checks: verified" not in out
    rolled = [line for line in _lines_after(out, "failed to verify") if "rolled back: " in line]
    assert [line.split("rolled back: ")[1] for line in rolled] == [
        "exchange",
        "caches",
        "configuration",
    ]
    assert "deploy failed at step 'exchange'; completed steps rolled back" in out


def test_dry_run_checks_everything_and_changes_nothing(
    python: str, caches_env: dict[str, str], redis_server: Server
) -> None:
    result = _run(python, ["deploy", "--environment", "dev", "--dry-run", "--verbose"], caches_env)
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "(dry run: nothing will be changed)" in out
    for name in (
        "python",
        "package ccxt",
        "package pydantic-settings",
        "memcached",
        "redis",
        "webhook",
    ):
        assert f"] {name}: " in out
    assert "[1/8] configuration" in out and "[8/8] monitoring API" in out
    assert "verified" not in out and "deployment complete" not in out
    assert "simulator listening" not in out and "last=" not in out
    assert "dry run complete: no blocking problem found" in out
    assert "default_failure_threshold = 8  (preset)" in out  # --verbose: the dev preset
    # Nothing written to the cache servers.
    with socket.create_connection((redis_server.host, redis_server.port), timeout=5) as conn:
        conn.sendall(b"DBSIZE\r\n")
        assert conn.recv(64) == b":0\r\n"


def test_prod_requires_the_bybit_keys(python: str, caches_env: dict[str, str]) -> None:
    result = _run(
        python, ["deploy", "--environment", "prod", "--dry-run", "--timeout", "0.5"], caches_env
    )
    out = result.stdout
    assert result.returncode == 1, out + result.stderr
    assert "variable BYBIT_API_KEY: missing: the prod environment requires it" in out
    assert "variable BYBIT_API_SECRET: missing: the prod environment requires it" in out
    assert (
        "deploy failed: prerequisites not met: variable BYBIT_API_KEY, variable BYBIT_API_SECRET"
        in out
    )


def test_dev_does_not_require_the_bybit_keys(python: str, caches_env: dict[str, str]) -> None:
    result = _run(python, ["deploy", "--environment", "dev", "--dry-run"], caches_env)
    assert result.returncode == 0
    assert "BYBIT_API_KEY" not in result.stdout


def test_no_secret_in_any_output(python: str, caches_env: dict[str, str]) -> None:
    env = caches_env | {"BYBIT_API_KEY": KEY, "BYBIT_API_SECRET": SECRET}
    result = _run(
        python,
        ["deploy", "--environment", "prod", "--dry-run", "--verbose", "--timeout", "0.5"],
        env,
    )
    text = result.stdout + result.stderr
    assert "variable BYBIT_API_KEY: set (value hidden)" in text
    assert "bybit_api_key = **********" in text
    for secret in (KEY, SECRET, WEBHOOK_TOKEN):
        assert secret not in text


def test_unreachable_caches_are_degraded_in_dev_and_fatal_in_prod(
    python: str, clean_env: dict[str, str]
) -> None:
    closed = {
        "REDIS_PORT": str(_closed_port()),
        "MEMCACHED_PORT": str(_closed_port()),
    }
    dev = _run(python, ["deploy", "--environment", "dev", "--run-for", "0"], clean_env | closed)
    assert dev.returncode == 0, dev.stdout + dev.stderr
    assert "[WARN] memcached" in dev.stdout and "[WARN] redis" in dev.stdout
    assert "degraded: memcached (in-memory fallback), redis (in-memory fallback)" in dev.stdout
    prod_env = clean_env | closed | {"BYBIT_API_KEY": KEY, "BYBIT_API_SECRET": SECRET}
    prod = _run(
        python, ["deploy", "--environment", "prod", "--dry-run", "--timeout", "0.5"], prod_env
    )
    assert prod.returncode == 1
    assert "[FAIL] memcached" in prod.stdout and "[FAIL] redis" in prod.stdout


def test_invalid_configuration_is_one_message(
    python: str, clean_env: dict[str, str], tmp_path: Path
) -> None:
    config = tmp_path / "resilience.toml"
    config.write_text("default_max_retries = -1\n", encoding="utf-8")
    env = clean_env | {"VIRTUOSO_DEFAULT_FAILURE_THRESHOLD": "nan", "REDIS_PORT": "²"}
    result = _run(python, ["deploy", "--environment", "dev", "--config", str(config)], env)
    assert result.returncode == 2
    assert "3 invalid configuration values" in result.stderr
    for text in (
        "VIRTUOSO_DEFAULT_FAILURE_THRESHOLD",
        "REDIS_PORT",
        "default_max_retries from the file",
    ):
        assert text in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--timeout", "nan"], "--timeout must be > 0"),
        (["--timeout", "-1"], "--timeout must be > 0"),
        (["--run-for", "inf"], "--run-for must be >= 0"),
        (["--exchange-faults", "http=503", "--environment", "prod"], "--exchange-faults is for"),
    ],
)
def test_bad_flags(python: str, clean_env: dict[str, str], args: list[str], message: str) -> None:
    full = (
        ["deploy", "--environment", "dev", *args]
        if "--environment" not in args
        else ["deploy", *args]
    )
    result = _run(python, full, clean_env)
    assert result.returncode == 2
    assert message in result.stderr


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_running_deployment_stops_cleanly_on_a_signal(
    python: str, caches_env: dict[str, str], sig: signal.Signals
) -> None:
    process = subprocess.Popen(
        [
            python,
            "-m",
            "virtuoso_resilience.cli",
            "deploy",
            "--environment",
            "dev",
            "--api-port",
            str(_closed_port()),
        ],
        env=caches_env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        seen = []
        for line in process.stdout:
            seen.append(line)
            if "running; press Ctrl-C to stop" in line:
                break
        assert any("deployment complete" in line for line in seen), "".join(seen)
        process.send_signal(sig)
        rest, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, rest + err
    assert rest.rstrip().endswith("stopped")
    assert "Unclosed" not in err and "Traceback" not in err


def test_a_busy_monitoring_port_is_a_prerequisite_failure(
    python: str, caches_env: dict[str, str]
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        result = _run(
            python, ["deploy", "--environment", "dev", "--api-port", str(port)], caches_env
        )
    assert result.returncode == 1
    assert f"[FAIL] monitoring API port: 127.0.0.1:{port} not free" in result.stdout
    assert "prerequisites not met: monitoring API port" in result.stdout
    assert "[1/8]" not in result.stdout  # nothing started


def test_the_monitoring_api_answers_while_deployed(python: str, caches_env: dict[str, str]) -> None:
    env = {k: v for k, v in caches_env.items() if k != "DISCORD_WEBHOOK_URL"}
    result = _run(python, ["deploy", "--environment", "dev", "--run-for", "0", "--verbose"], env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "alerts: off (DISCORD_WEBHOOK_URL not set)" in result.stdout
    assert "GET /livez 200, GET /api/monitoring/health 200" in result.stdout
    assert "monitoring API: http://127.0.0.1:" in result.stdout
