"""z3 proofs of Lemmas A, B, C over {a, b} at horizons 6, 10, 12, 14: variables, assertions, seconds,
peak memory.  Each run is a fresh interpreter, so the peak resident set (``ru_maxrss``, z3's C++ heap
included — tracemalloc cannot see it) belongs to that run alone.  Prints a Markdown table.

    python -m benchmarks.bench_smt [--horizons 6 10 12 14] [--monolithic]

``--monolithic`` adds the single-query encoding at small horizons (with a 20 s timeout each), to show
why the modular one is the default.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from benchmarks.report import ROOT, machine, write_section
from theory.tables import markdown_table

CHILD = """
import json, resource, sys, time
t = time.perf_counter()
from theory import smt
lemma, horizon, encoding, timeout = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
r = getattr(smt, "prove_lemma_" + lemma)(horizon, encoding=encoding, timeout_ms=timeout)
print(json.dumps({"status": r.status.value, "variables": r.variables, "model_variables": r.model_variables,
                  "assertions": r.assertions, "z3_s": r.solver_seconds, "wall_s": time.perf_counter() - t,
                  "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "version": r.z3_version,
                  "reason": r.reason}))
"""


def run_one(lemma: str, horizon: int, encoding: str = "modular", timeout_ms: int = 120_000) -> dict:
    """One proof in a fresh interpreter; returns its JSON record."""
    out = subprocess.run([sys.executable, "-c", CHILD, lemma, str(horizon), encoding, str(timeout_ms)],
                         cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


PARALLEL = """
import json, sys, time
t = time.perf_counter()
from theory import smt
r = smt.prove_lemmas(int(sys.argv[1]), jobs=int(sys.argv[2]))
print(json.dumps({"wall_s": time.perf_counter() - t, "status": sorted({v.status.value for v in r.values()})}))
"""


def run_parallel(horizon: int, jobs: int) -> dict:
    """A + B + C at one horizon via smt.prove_lemmas in a fresh interpreter (start-up included)."""
    out = subprocess.run([sys.executable, "-c", PARALLEL, str(horizon), str(jobs)], cwd=ROOT,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def table(rows: list[tuple[str, int, str, dict]]) -> str:
    cells = []
    for lemma, L, enc, r in rows:
        status = r["status"] if r["status"] == "verified" else f"{r['status']} ({r['reason'][:40]})"
        cells.append([lemma.upper(), f"{L}", enc, f"{r['model_variables']:,}", f"{r['variables']:,}", f"{r['assertions']:,}",
                      f"{status}", f"{r['z3_s']:.2f}", f"{r['wall_s']:.2f}", f"{r['rss_mib']:.0f} MiB"])
    return "\n".join(markdown_table(["lemma", "horizon", "encoding", "vars / model", "vars in all", "assertions", "status", "z3 s",
                                      "wall s", "peak RSS"], cells, "-r-rrr-rrr"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--horizons", type=int, nargs="+", default=[6, 10, 12, 14])
    ap.add_argument("--monolithic", action="store_true", help="also time the single-query encoding at horizons 4-6")
    ap.add_argument("--write", action="store_true", help="write the section into BENCHMARKS.md")
    args = ap.parse_args()
    rows = [(lemma, L, "modular", run_one(lemma, L)) for L in args.horizons for lemma in "abc"]
    if args.monolithic:
        rows += [(lemma, L, "monolithic", run_one(lemma, L, "monolithic", 20_000)) for L in (4, 5, 6) for lemma in "abc"]
    version = rows[0][3]["version"]
    h12 = [r for _l, L, enc, r in rows if L == 12 and enc == "modular"]
    lines = [table(rows), "",
             f"z3 {version}.  'z3 s' is parsing + solving (all queries of a proof: two node lemmas and the "
             "assembly); 'wall s' adds Python start-up, import and SMT-LIB generation; peak RSS is the whole process."]
    if len(h12) == 3:
        wall, z3s = sum(r["wall_s"] for r in h12), sum(r["z3_s"] for r in h12)
        lines.append(f"Lemmas A + B + C at horizon 12: {wall:.2f} s wall, {z3s:.2f} s in z3 "
                     f"(target: under 3 s together — {'met' if wall < 3 else 'NOT met'} one after another).")
        par = [run_parallel(12, jobs) for jobs in (1, 2)]
        lines.append(f"The same three through `smt.prove_lemmas(12, jobs=…)` in one fresh process: {par[0]['wall_s']:.2f} s "
                     f"with 1 job, {par[1]['wall_s']:.2f} s with 2 processes ({'/'.join(par[1]['status'])}; target "
                     f"{'met' if par[1]['wall_s'] < 3 else 'NOT met'}).")
    body = "\n".join(lines)
    print(body)
    print(f"\n{machine()}")
    if args.write:
        write_section("smt", "z3 Lemmas A/B/C by horizon", body, "python -m benchmarks.bench_smt --write")


if __name__ == "__main__":
    main()
