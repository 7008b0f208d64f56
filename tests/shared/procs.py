"""Worker processes for the multi-process tests (asyncio subprocesses, so the
simulator in the test's own loop keeps serving them)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

WORKER = str(Path(__file__).with_name("worker.py"))
SRC = str(Path(__file__).resolve().parents[2] / "src")


STARTED: list[asyncio.subprocess.Process] = []


async def kill_all() -> None:
    """Kill every worker still running (a failed test leaves none behind)."""
    while STARTED:
        proc = STARTED.pop()
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


async def spawn(mode: str, spec: dict[str, Any]) -> asyncio.subprocess.Process:
    env = {**os.environ, "PYTHONPATH": SRC}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        WORKER,
        mode,
        json.dumps(spec),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    STARTED.append(proc)
    return proc


async def read_line(proc: asyncio.subprocess.Process, within: float = 60.0) -> str:
    """The worker's next line (a hung worker fails the test after ``within`` s)."""
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), within)
    if not line:
        assert proc.stderr is not None
        err = (await proc.stderr.read()).decode(errors="replace")
        raise AssertionError(f"worker ended early: {err[-3000:]}")
    return line.decode().strip()
