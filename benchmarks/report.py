"""Write a benchmark's Markdown section into BENCHMARKS.md (between markers, atomically), with the
machine and date named; and where benchmarks put their files.

A benchmark rewrites tracked files — its section of BENCHMARKS.md, its figures and data in
:data:`TRACKED_OUT` — only when run with ``--write``; otherwise its files go to :data:`SCRATCH`
(under the git-ignored ``out/``) or a temporary folder, so that a plain run leaves the checkout clean."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import re
import time
from pathlib import Path
from typing import Callable

from theory.fileio import write_atomic

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS_MD = ROOT / "BENCHMARKS.md"
TRACKED_OUT = ROOT / "benchmarks" / "out"
"""The tracked figures and data that BENCHMARKS.md links to: written only with ``--write``."""
SCRATCH = ROOT / "out" / "benchmarks"
"""Where a benchmark run without ``--write`` puts its files (``/out/`` is git-ignored)."""


def output_folder(out: str | os.PathLike[str] | None, write: bool) -> Path:
    """Where a benchmark writes its files: ``out`` if given, else :data:`TRACKED_OUT` with ``write`` and
    :data:`SCRATCH` without.  An ``out`` inside :data:`TRACKED_OUT` without ``write`` is refused (one line,
    exit 2): only ``--write`` rewrites tracked files."""
    if out is None:
        return TRACKED_OUT if write else SCRATCH
    target = Path(out).resolve()
    if not write and (target == TRACKED_OUT or TRACKED_OUT in target.parents):
        import sys

        print(f"benchmarks: --out {out} is inside the tracked {TRACKED_OUT.relative_to(ROOT)}/, which only --write "
              "rewrites: add --write, or choose another folder", file=sys.stderr)
        raise SystemExit(2)
    return Path(out)


HEADER = "# Benchmarks\n\nEach section is written by the script it names; rerun the script to refresh it.\n"


def machine() -> str:
    """One line naming the machine: CPU model, cores, memory, Python."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
        mem = f", {kb / 2**20:.0f} GiB RAM"
    except (OSError, AttributeError):
        pass
    return f"{cpu}, {os.cpu_count()} cores{mem}, Python {platform.python_version()}, {platform.system()}"


def write_section(key: str, title: str, body: str, script: str) -> None:
    """Replace (or append) the section ``key`` of BENCHMARKS.md."""
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    block = (f"<!-- bench:{key} -->\n## {title}\n\n`{script}` — {stamp} — {machine()}\n\n{body.rstrip()}\n"
             f"<!-- /bench:{key} -->\n")
    text = BENCHMARKS_MD.read_text() if BENCHMARKS_MD.exists() else HEADER
    pattern = re.compile(rf"<!-- bench:{re.escape(key)} -->.*?<!-- /bench:{re.escape(key)} -->\n", re.S)
    text = pattern.sub(lambda _m: block, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + block
    write_atomic(BENCHMARKS_MD, text)


def publish(body: str, write: bool, key: str, title: str, script: str) -> int:
    """Print a benchmark's body and, with ``--write``, replace its section of BENCHMARKS.md; returns the
    exit status (0) for ``raise SystemExit(main())``."""
    print(body)
    if write:
        write_section(key, title, body, script)
    return 0


def best_time(fn: Callable[[], object], repeat: int = 3) -> float:
    """The least wall time of ``repeat`` calls of ``fn`` (seconds)."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best
