"""docs/simulator.md stays true to the code: every documented fault example parses."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from virtuoso_resilience.simulator import parse_faults
from virtuoso_resilience.simulator._faults import ALLOWED_KEYS

DOC = Path(__file__).resolve().parents[2] / "docs" / "simulator.md"


def _section(title: str) -> str:
    text = DOC.read_text(encoding="utf-8")
    start = text.index(title)
    end = text.find("\n#", start + len(title))
    return text[start : end if end != -1 else None]


_KEYS = "|".join(ALLOWED_KEYS)
_EXAMPLES = sorted(
    set(re.findall(rf"`((?:{_KEYS})(?:@[^=`\s]+)?=[^`\s]+)`", _section("### Fault grammar")))
)


def test_the_grammar_section_has_examples() -> None:
    assert len(_EXAMPLES) >= 15
    assert "http=503:next:2" in _EXAMPLES and "late_response=30s:next:1" in _EXAMPLES


@pytest.mark.parametrize("spec", _EXAMPLES)
def test_every_documented_grammar_example_parses(spec: str) -> None:
    faults = parse_faults(spec)
    assert len(faults) == 1
    assert parse_faults(faults[0].describe()) == faults


def test_fault_table_tells_latency_beyond_recv_window_is_invalid_nonce() -> None:
    """The behaviour is tested in test_sim_faults_ccxt; the table must say it."""
    table = _section("### What each fault does")
    row = next(line for line in table.splitlines() if line.startswith("| `latency` |"))
    assert "recvWindow" in row and "10002" in row and "InvalidNonce" in row
