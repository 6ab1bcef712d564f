"""The linter runs with the tests: ruff's pyflakes rules (unused or undefined names, …) and import order
over every source folder, and mypy over the packages, both configured in pyproject.toml, so a new unused
import or type error fails `make test`."""

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


def test_mypy_finds_nothing():
    # configured in pyproject.toml ([tool.mypy]: files, per-module ignores); the cache sits in
    # .mypy_cache (git-ignored), so a rerun takes about a second and a fresh run about 25 s
    out = subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", str(ROOT / ".mypy_cache")], cwd=ROOT,
                         capture_output=True, text=True)
    assert "No module named mypy" not in out.stderr, "mypy is part of the test extra: pip install -e '.[test]'"
    assert out.returncode == 0, out.stdout + out.stderr
