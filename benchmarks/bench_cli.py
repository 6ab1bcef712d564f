"""How fast the command line refuses bad input: the wall time from start to the one-line refusal,
for a typo or a bad option of each command, in the working tree and (``--base REV``) in an earlier
revision checked out into a temporary worktree.

``python -m benchmarks.bench_cli [--base REV] [--repeat 3] [--write]``; without ``--write`` it prints
the table and changes no file.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.report import ROOT, write_section
from theory.tables import markdown_table

CASES: tuple[tuple[str, list[str]], ...] = (
    ("misspelt command", ["prve"]),
    ("prove: misspelt check", ["prove", "--only", "lema-a"]),
    ("prove: --timings without --json", ["prove", "--timings"]),
    ("counterexample: misspelt case", ["counterexample", "anbm", "--out", "{tmp}/cx"]),
    ("counterexample: --n-max 0", ["counterexample", "anbn", "--out", "{tmp}/cx", "--n-max", "0"]),
    ("counterexample: --max-steps with compile", ["counterexample", "anbn", "--out", "{tmp}/cx", "--max-steps", "9"]),
    ("check: a file", ["check", "{tmp}/file.txt"]),
    ("experiment: misspelt architecture", ["experiment", "rule-extrapolation", "--arch", "lstn", "--out", "{tmp}/e"]),
    ("experiment: --size gpu", ["experiment", "rule-extrapolation", "--size", "gpu", "--out", "{tmp}/e"]),
    ("appendix: missing --experiment folder", ["appendix", "--out", "{tmp}/a", "--experiment", "{tmp}/missing"]),
    ("appendix: misspelt --experiment-arch", ["appendix", "--out", "{tmp}/a", "--experiment-arch", "lstn"]),
    ("icl: --eta 0 (zero transitions)", ["icl", "--eta", "0"]),
    ("icl: --epsilon 1", ["icl", "--epsilon", "1"]),
    ("icl: --vocab-size 1 (no label)", ["icl", "--instance", "ginc", "--vocab-size", "1"]),
)
RUNS: tuple[tuple[str, list[str]], ...] = (
    ("`nonid icl` (the learning instance, exact)", ["icl"]),
    ("`nonid icl --instance ginc --prompts 2000` (GINC sizes, sampled)", ["icl", "--instance", "ginc", "--prompts", "2000"]),
)
"""Whole runs timed beside the refusals (the second gives the per-token rate of nonid.cmd_icl's estimate)."""
LIMIT_S = 120.0  # a refusal that takes longer than this is recorded as "> 120 s" (it ran the work first)


def _time(root: Path, argv: list[str], repeat: int) -> tuple[float, int, str]:
    """(median seconds, exit status, first stderr line) of ``python -m nonid ARGV`` run in ``root``."""
    times, rc, line = [], 0, ""
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            Path(tmp, "file.txt").write_text("not a folder\n")
            args = [a.format(tmp=tmp) for a in argv]
            start = time.perf_counter()
            try:
                r = subprocess.run([sys.executable, "-m", "nonid", *args], cwd=root, capture_output=True, text=True,
                                   timeout=LIMIT_S)
            except subprocess.TimeoutExpired:
                return float("inf"), -1, "(still running)"
            times.append(time.perf_counter() - start)
            rc, line = r.returncode, (r.stderr.strip().splitlines() or [""])[0]
    return statistics.median(times), rc, line


def _cell(seconds: float, rc: int) -> str:
    if seconds == float("inf"):
        return f"> {LIMIT_S:.0f} s"
    return f"{seconds:.2f} s" + ("" if rc == 2 else f" (exit {rc})")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", default=None, help="an earlier revision to compare with (checked out into a temporary worktree)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per case; the median is shown (default 3)")
    ap.add_argument("--write", action="store_true", help="write the section into BENCHMARKS.md")
    args = ap.parse_args(argv)
    roots: list[tuple[str, Path]] = []
    work = None
    if args.base:
        work = Path(tempfile.mkdtemp(prefix="nonid-base-"))
        subprocess.run(["git", "worktree", "add", "--detach", str(work / "tree"), args.base], cwd=ROOT, check=True,
                       capture_output=True)
        roots.append((f"`{args.base}`", work / "tree"))
    roots.append(("working tree", ROOT))
    try:
        rows = []
        for label, argv_ in CASES:
            cells = [label]
            results = [_time(root, argv_, args.repeat) for _name, root in roots]
            missing = f"invalid choice: '{argv_[0]}'"
            for seconds, rc, line in results:
                # a command an earlier revision did not have (the working tree has it) is not a "before" time
                absent = missing in line and missing not in results[-1][2]
                cells.append("(no such command)" if absent else _cell(seconds, rc))
            rows.append(cells)
            print("  ".join(cells), flush=True)
    finally:
        if work is not None:
            subprocess.run(["git", "worktree", "remove", "--force", str(work / "tree")], cwd=ROOT, capture_output=True)
    table = "\n".join(markdown_table(["bad input", *(name for name, _ in roots)], rows))
    runs = []
    for label, argv_ in RUNS:
        seconds, rc, _line = _time(ROOT, argv_, 1)
        runs.append([label, f"{seconds:.2f} s (exit {rc})"])
        print("  ".join(runs[-1]), flush=True)
    tokens = 2000 * 64 * 11
    body = (f"Median of {args.repeat} runs of `python -m nonid …` from start to the one-line "
            "refusal (exit 2 unless noted): the interpreter's start and the project's imports included.\n\n" + table
            + "\n\nWhole runs (one each, working tree; exit 0 or 1 is the verdict):\n\n"
            + "\n".join(markdown_table(["command", "seconds"], runs))
            + f"\n\nThe GINC run holds {tokens:,} prompt tokens (2,000 prompts × n = 64 × (k + 1) = 11); "
            "`nonid icl` estimates its time at 4e-6 s per prompt token, rounded up from this run.")
    print(body)
    if args.write:
        write_section("cli-refusals", "Time to refuse bad input", body, "benchmarks/bench_cli.py")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
