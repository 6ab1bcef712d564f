"""The linter runs with the tests: ruff's pyflakes rules (unused or undefined names, …) and import order
over every source folder, configured in pyproject.toml, so a new unused import fails `make test`."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = ["theory", "constructions", "empirical", "nonid", "proofs", "benchmarks", "tests"]


def test_ruff_finds_nothing():
    out = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", *FOLDERS], cwd=ROOT,
                         capture_output=True, text=True)
    assert "No module named ruff" not in out.stderr, "ruff is part of the test extra: pip install -e '.[test]'"
    assert out.returncode == 0, out.stdout + out.stderr
