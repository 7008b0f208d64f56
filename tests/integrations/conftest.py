"""Fixtures: real memcached and redis-server processes on free ports (never the shared 6379)."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from _integration_servers import ROOT, SEED_VARIABLES, Server, _free_port, _start


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[Server]:
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    port = _free_port()
    yield from _start(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
        ],
        port,
    )


@pytest.fixture
def memcached_server() -> Iterator[Server]:
    binary = shutil.which("memcached") or "/usr/bin/memcached"
    port = _free_port()
    command = [binary, "-l", "127.0.0.1", "-p", str(port), "-U", "0", "-m", "16"]
    if os.geteuid() == 0:
        command += ["-u", "root"]
    yield from _start(command, port)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """This process's environment without the seed's or VIRTUOSO_ variables."""
    for name in list(os.environ):
        if name.startswith("VIRTUOSO_") or name in SEED_VARIABLES:
            monkeypatch.delenv(name)
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    return env


@pytest.fixture
def python() -> str:
    return sys.executable
