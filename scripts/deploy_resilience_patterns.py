#!/usr/bin/env python3
"""Deploy the resilience layer: the seed's script, the same code as ``virtuoso-resilience deploy``.

./scripts/deploy_resilience_patterns.py --environment dev --dry-run --verbose
./scripts/deploy_resilience_patterns.py --environment prod
"""

from __future__ import annotations

import sys
from pathlib import Path

try:
    from virtuoso_resilience.cli import main
except ImportError:  # run from a source checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
    from virtuoso_resilience.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["deploy", *sys.argv[1:]]))
