"""The whole ``nonid prove`` on this machine: wall time of a fresh process (start-up and imports
included) over a few repeats with the default workers (one per usable CPU, at most 4), once with
``--jobs 1`` (every check in one process), and each check's own time from ``--json --timings``.
Target: under 30 s on 2 cores.

    python -m benchmarks.bench_prove [--repeats 3] [--write]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

from benchmarks.report import ROOT, machine, write_section
from theory.certificate import status_counts
from theory.tables import markdown_table


def run_once(*extra: str) -> tuple[float, list[dict]]:
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "nonid", "prove", "--json", "--timings", *extra], cwd=ROOT,
                         capture_output=True, text=True)
    wall = time.perf_counter() - t
    if out.returncode not in (0, 1):
        raise SystemExit(f"nonid prove failed ({out.returncode}): {out.stderr.strip()}")
    return wall, json.loads(out.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--write", action="store_true", help="write the section into BENCHMARKS.md")
    args = ap.parse_args()
    from proofs.cli import default_jobs

    runs = [run_once() for _ in range(args.repeats)]
    walls = [w for w, _ in runs]
    alone, _ = run_once("--jobs", "1")
    per_check: dict[str, list[float]] = {}
    statuses: dict[str, str] = {}
    for _w, certs in runs:
        for c in certs:
            per_check.setdefault(c["check"], []).append(c.get("elapsed_s", 0.0))
            statuses[c["check"]] = c["status"]
    counts = status_counts(statuses.values())
    lines = [f"`nonid prove`: {len(statuses)} checks ({counts['verified']} verified, {counts['falsified']} falsified, "
             f"{counts['unknown']} unknown); wall time of a fresh process, median of {args.repeats}: "
             f"**{statistics.median(walls):.1f} s** with {default_jobs()} worker processes, the default (min {min(walls):.1f}, "
             f"max {max(walls):.1f}; target under 30 s); {alone:.1f} s with `--jobs 1` (every check in one process).", ""]
    lines += markdown_table(["check", "status", "median s"],
                            [[name, statuses[name], f"{statistics.median(ts):.2f}"] for name, ts in per_check.items()], "--r")
    groups: dict[str, float] = {}
    for name, ts in per_check.items():
        key = name.split("-h")[0] if name.startswith("z3-lemma") else "-".join(name.split("-")[:2])
        groups[key] = groups.get(key, 0.0) + statistics.median(ts)
    lines += ["", "By group: " + ", ".join(f"{k} {v:.1f} s" for k, v in groups.items()) + "."]
    body = "\n".join(lines)
    print(body)
    print(f"\n{machine()}")
    if args.write:
        write_section("prove", "The whole `nonid prove`", body, "python -m benchmarks.bench_prove --write")


if __name__ == "__main__":
    main()
