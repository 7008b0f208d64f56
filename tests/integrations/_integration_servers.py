"""Helpers: real memcached and redis-server processes on free ports (never the shared 6379)."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SEED_VARIABLES = (
    "BYBIT_API_KEY",
    "BYBIT_API_SECRET",
    "MEMCACHED_HOST",
    "MEMCACHED_PORT",
    "REDIS_HOST",
    "REDIS_PORT",
    "DISCORD_WEBHOOK_URL",
)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server on port {port} exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)  # waiting for a child process to listen, not a timed assertion
    raise RuntimeError(f"nothing listens on port {port}")


@dataclass(frozen=True, slots=True)
class Server:
    host: str
    port: int
    process: subprocess.Popen[bytes]


def _start(command: list[str], port: int) -> Iterator[Server]:
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_listening(port, process)
        yield Server("127.0.0.1", port, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
