"""Soundness: the mutation catalogue's kill rate and the fuzzing of the entry points.

Runs every mutant of tests/mutants (its control must be accepted, the mutant rejected with the
verdict it must get) and every fuzz target of tests/fuzz with ``--examples`` derandomised examples
each, and reports mutants tried / killed / survived / misjudged, the kill rate, fuzz examples run
and crashes.  Exit status 1 if any mutant is not killed or any fuzz target crashed.

    python -m benchmarks.bench_soundness [--examples 200] [--write]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter

from benchmarks.report import machine, write_section
from theory.tables import markdown_table


def mutants() -> tuple[list[list[str]], dict[str, int], int]:
    from tests.mutants.registry import load_all, run_mutant

    rows, by_target, bad = [], Counter(), 0
    for name, m in sorted(load_all().items(), key=lambda kv: (kv[1].target, kv[0])):
        out = run_mutant(m)
        verdict = "killed" if out.killed else ("SURVIVED" if out.survived else "misjudged")
        bad += not out.killed
        by_target[m.target] += 1
        rows.append([f"{name}", f"{m.target}", f"{m.expected}", f"{out.observed}", verdict, f"{out.seconds:.2f}"])
        print(f"{name:<44} {verdict:<9} {out.observed}", flush=True)
    return rows, dict(by_target), bad


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--examples", type=int, default=200, help="hypothesis examples per fuzz target")
    ap.add_argument("--write", action="store_true", help="write the section into BENCHMARKS.md")
    args = ap.parse_args()

    t0 = time.perf_counter()
    rows, by_target, not_killed = mutants()
    t_mut = time.perf_counter() - t0
    tried = len(rows)

    from tests.fuzz.targets import run_all

    t0 = time.perf_counter()
    fuzz = run_all(args.examples)
    t_fuzz = time.perf_counter() - t0
    examples = sum(r["examples"] for r in fuzz)
    crashes = sum(r["crashes"] for r in fuzz)
    for r in fuzz:
        print(f"fuzz {r['target']:<30} {r['examples']:>6} examples {r['crashes']} crashes {r.get('error', '')}", flush=True)

    lines = [
        f"**Mutation catalogue**: {tried} mutants tried, {tried - not_killed} killed, "
        f"{not_killed} not killed — kill rate **{(tried - not_killed) / tried:.0%}** ({t_mut:.1f} s; each mutant's "
        "unmutated control was accepted). By target: " + ", ".join(f"{k} {v}" for k, v in sorted(by_target.items())) + ".",
        "",
        f"**Fuzzing**: {len(fuzz)} entry points, {examples:,} generated inputs ({args.examples} derandomised examples "
        f"a target, shrinking included), **{crashes} crashes** ({t_fuzz:.1f} s). A crash is any exception other "
        "than a typed `NonidError` with a one-line message, or, at the command line, anything but exit status 2 "
        "with one `nonid: …` line on stderr.",
        "",
        *markdown_table(["mutant", "target", "must get", "got", "verdict", "s"], rows, "-----r"),
        "",
        *markdown_table(["fuzz target", "examples", "crashes", "s"],
                        [[f"{r['target']}", f"{r['examples']}", f"{r['crashes']}", f"{r['seconds']:.1f}"] for r in fuzz], "-rrr"),
    ]
    body = "\n".join(lines)
    print(f"\n{lines[0]}\n{lines[2]}\n{machine()}")
    if args.write:
        write_section("soundness", "Soundness: mutation kill rate and fuzzing", body,
                      f"python -m benchmarks.bench_soundness --examples {args.examples} --write")
    return 1 if not_killed or crashes else 0


if __name__ == "__main__":
    sys.exit(main())
