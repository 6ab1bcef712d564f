"""The README's Python examples run as written, and print what their comments say they print."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def _expected(block: str) -> list[str]:
    """The `# …` comment of each top-level print(...) line (up to a double space), unless it is prose
    that says the value varies ("about …", "e.g. …")."""
    out = []
    for line in block.splitlines():
        m = re.match(r"print\(.*\)\s+#\s+(\S.*)$", line)
        if m and not m.group(1).startswith(("about", "e.g.")):
            out.append(m.group(1).split("  ")[0].strip())
    return out


def test_every_python_block_of_the_readme_is_extracted():
    """The extractor finds each ```python fence (none skipped, none empty), so the parametrised test
    below runs every example the README shows — not merely "at least N" of them."""
    fences = README.read_text(encoding="utf-8").count("```python")
    assert fences and len(BLOCKS) == fences
    assert all(block.strip() for block in BLOCKS)


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs_and_prints_what_it_says(index, tmp_path, monkeypatch):
    block = BLOCKS[index]
    if "@given" in block:  # a hypothesis test shown as an example: define it and run it once
        namespace: dict = {}
        exec(compile(block, f"README block {index}", "exec"), namespace)
        for name, fn in namespace.items():
            if name.startswith("test_") and callable(fn):
                fn()
        return
    monkeypatch.chdir(tmp_path)
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        exec(compile(block, f"README block {index}", "exec"), {})
    printed = buf.getvalue().splitlines()
    for want in _expected(block):
        assert any(line.strip().startswith(want) for line in printed), (
            f"README block {index}: expected a line starting {want!r}, got {printed}")
