"""The shape of the codebase: lines of source, the largest modules, and the test suite's
wall time, for the working tree and for an earlier revision (``--base REV``, read with ``git show``,
nothing checked out).

``python -m benchmarks.bench_codebase --base 7e03796 [--suite] [--write]``; ``--suite`` also times
``pytest -n 2 -q`` on the working tree (minutes).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from benchmarks.report import ROOT
from theory.tables import markdown_table

SOURCE = ("theory", "constructions", "empirical", "nonid", "proofs")


def _files(rev: str | None) -> dict[str, int]:
    """{path: lines} of the source folders' Python files at ``rev`` (None: the working tree)."""
    if rev is None:
        out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", *SOURCE], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout.split()
        return {p: (ROOT / p).read_text(encoding="utf-8").count("\n") for p in out if p.endswith(".py") and (ROOT / p).exists()}
    out = subprocess.run(["git", "ls-tree", "-r", "--name-only", rev, *SOURCE], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout.split()
    return {p: subprocess.run(["git", "show", f"{rev}:{p}"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.count("\n")
            for p in out if p.endswith(".py")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", default=None, help="the earlier revision to compare with")
    ap.add_argument("--suite", action="store_true", help="also time the test suite (pytest -n 2)")
    ap.add_argument("--write", action="store_true", help="write the section into BENCHMARKS.md")
    args = ap.parse_args(argv)
    rows = []
    for label, rev in ((f"`{args.base}`", args.base), ("working tree", None)):
        if label.startswith("`") and rev is None:
            continue
        files = _files(rev)
        top = sorted(files.items(), key=lambda kv: -kv[1])[:3]
        rows.append([label, len(files), f"{sum(files.values()):,}", ", ".join(f"`{p}` {n}" for p, n in top)])
    body = "\n".join(markdown_table(["revision", "Python files (source folders)", "lines", "largest modules (lines)"], rows))
    if args.suite:
        t0 = time.perf_counter()
        r = subprocess.run([sys.executable, "-m", "pytest", "-n", "2", "-q"], cwd=ROOT, capture_output=True, text=True)
        last = (r.stdout.strip().splitlines() or ["?"])[-1]
        body += f"\n\nTest suite (`pytest -n 2 -q`, working tree): {time.perf_counter() - t0:.0f} s — {last}"
    print(body)
    if args.write:
        from benchmarks.report import write_section

        write_section("codebase", "Codebase shape", body, "python -m benchmarks.bench_codebase")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
