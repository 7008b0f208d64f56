"""The Binance section of docs/simulator.md stays true: its paths are served, its example runs."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any

import ccxt.async_support as ccxt
import pytest

from virtuoso_resilience.simulator import Simulator
from virtuoso_resilience.simulator._binance_routes import BINANCE_ROUTES

DOC = Path(__file__).resolve().parents[2] / "docs" / "simulator.md"


def _section(title: str) -> str:
    text = DOC.read_text(encoding="utf-8")
    start = text.index(title)
    end = text.find("\n## ", start + len(title))
    return text[start : end if end != -1 else None]


BINANCE = _section("## Binance dialect")


def test_the_endpoint_table_lists_exactly_the_served_routes() -> None:
    table = BINANCE[BINANCE.index("### Endpoints served") : BINANCE.index("### Orders and")]
    documented = set(re.findall(r"`(GET|POST|DELETE) (/[A-Za-z0-9/]+)`", table))
    assert documented == set(BINANCE_ROUTES)


async def test_the_python_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    block = re.search(r"```python\n(.*?)```", BINANCE, re.S)
    assert block is not None
    source = "async def _example():\n" + textwrap.indent(block.group(1), "    ")
    namespace: dict[str, Any] = {"ccxt": ccxt, "Simulator": Simulator, "print": print}
    exec(compile(source, str(DOC), "exec"), namespace)  # our own documentation
    await namespace["_example"]()
    assert capsys.readouterr().out.strip().isdigit()  # the used weight


def test_the_cli_flag_is_documented() -> None:
    assert "virtuoso-resilience simulate --dialect binance" in BINANCE
