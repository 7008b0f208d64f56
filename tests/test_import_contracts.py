"""The import-linter contracts in pyproject.toml hold, and they bite.

Each case copies the package and the contracts into a temporary directory,
adds one import that breaks the architecture, and runs ``lint-imports`` on
the copy: it must fail naming the broken contract. The unmodified copy passes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _copy(tmp_path: Path) -> Path:
    shutil.copytree(
        ROOT / "src" / "virtuoso_resilience",
        tmp_path / "src" / "virtuoso_resilience",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def _lint(project: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(project / "src")}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo", str(project / "pyproject.toml")],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _add_import(project: Path, module: str, line: str) -> None:
    path = project / "src" / "virtuoso_resilience" / module
    text = path.read_text()
    # After the module docstring and ``from __future__``: a plain top-level import.
    marker = "from __future__ import annotations\n"
    assert marker in text, module
    path.write_text(text.replace(marker, marker + line + "\n", 1))


def test_the_package_keeps_every_contract(tmp_path: Path) -> None:
    result = _lint(_copy(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        # A component importing the registry (the old get_* helpers did).
        ("pools/_pool.py", "from ..registry import default_registry", "Layers"),
        ("health/_service.py", "from .. import registry", "Layers"),
        # The core importing a component.
        ("policies/retry.py", "from ..pools import PoolConfig", "Layers"),
        ("config.py", "from . import health", "Layers"),
        # Components are independent of each other.
        ("health/_checks.py", "from ..pools import ConnectionPool", "Layers"),
        # An adapter importing an entry point.
        ("simulator/_server.py", "from .. import cli", "Layers"),
        # A cycle inside one package (_manager -> _pool -> _trace -> _manager).
        ("pools/_trace.py", "from . import _manager", "No import cycle"),
        # Another package's private module.
        ("registry.py", "from .pools._trace import judge_health", "private modules"),
    ],
)
def test_a_forbidden_import_breaks_a_contract(
    tmp_path: Path, module: str, line: str, contract: str
) -> None:
    project = _copy(tmp_path)
    _add_import(project, module, line)
    result = _lint(project)
    assert result.returncode == 1, result.stdout + result.stderr
    broken = [ln for ln in result.stdout.splitlines() if " BROKEN" in ln]
    assert any(contract in ln for ln in broken), result.stdout
