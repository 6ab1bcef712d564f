"""Foundation benchmarks: exact KL over a binary prefix trie of depth 16 (131,071 nodes)
by the chain rule vs naive per-sequence enumeration; import time of `theory`; optionally the whole
test suite.

    python -m benchmarks.bench_core [--suite] [--write]
"""

from __future__ import annotations

import argparse
import itertools
import random
import statistics
import subprocess
import sys
import time
from fractions import Fraction

from benchmarks.report import ROOT, write_section
from theory.tables import markdown_table


def binary_trie_instance(depth: int = 16):
    """P over every word of length ≤ depth over {a, b}: each length equally likely, uniform within
    a length (so every one of the 2^(depth+1) − 1 prefixes is a support prefix); Q a random exact
    tabular model with a row at every prefix."""
    from theory.alphabet import Alphabet
    from theory.data import FiniteDistribution
    from theory.instances import random_row
    from theory.models import TabularModel

    ab = Alphabet("ab")
    table = {}
    for n in range(depth + 1):
        p = Fraction(1, (depth + 1) * 2**n)
        for w in itertools.product("ab", repeat=n):
            table["".join(w)] = p
    P = FiniteDistribution(ab, table, name=f"binary-depth-{depth}")
    rng = random.Random(0)
    rows = [random_row(rng, ab) for _ in range(64)]
    Q = TabularModel(ab, {u: rows[rng.randrange(64)] for u in P.support_prefixes()}, name="random-64-rows")
    return P, Q


def bench_kl(depth: int = 16, repeats: int = 3) -> dict[str, float]:
    from theory.losses import kl_by_enumeration, kl_divergence

    t = time.perf_counter()
    P, Q = binary_trie_instance(depth)
    build = time.perf_counter() - t
    chain = []
    for _ in range(repeats):
        t = time.perf_counter()
        k = kl_divergence(P, Q)
        chain.append(time.perf_counter() - t)
    t = time.perf_counter()
    k2 = kl_by_enumeration(P, Q)
    naive = time.perf_counter() - t
    assert k == k2, "chain rule and enumeration disagree"
    nodes = sum(1 for _ in P.support_prefixes())
    return {"nodes": nodes, "build_s": build, "chain_s": min(chain), "naive_s": naive, "kl": float(k)}


def bench_import(repeats: int = 7) -> float:
    code = "import time; t = time.perf_counter(); import theory; print(time.perf_counter() - t)"
    times = [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout)
             for _ in range(repeats)]
    return statistics.median(times)


def bench_suite() -> float:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-n", "2"], cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--suite", action="store_true", help="also time the whole test suite (pytest -n 2)")
    ap.add_argument("--write", action="store_true", help="write the section into BENCHMARKS.md")
    args = ap.parse_args()
    kl = bench_kl()
    imp = bench_import()
    rows = [
        [f"exact KL, chain rule, binary trie depth 16 ({kl['nodes']:,} support prefixes, Fractions)", f"{kl['chain_s']:.2f} s (best of 3)",
         "< 2 s"],
        ["same KL by naive per-sequence enumeration", f"{kl['naive_s']:.2f} s", "—"],
        ["ratio naive / chain rule", f"{kl['naive_s'] / kl['chain_s']:.1f}x", "—"],
        ["building that FiniteDistribution (131,071 sequences)", f"{kl['build_s']:.2f} s", "—"],
        ["`import theory` (median of 7 fresh interpreters)", f"{imp * 1000:.0f} ms", "< 500 ms"],
    ]
    if args.suite:
        rows.append(["whole test suite, `pytest -n 2`", f"{bench_suite():.0f} s", "< 300 s"])
    body = ("\n".join(markdown_table(["what", "measured", "target"], rows))
            + "\n\nBoth KL computations return the same exact value (checked in the script).\n")
    print(body)
    if args.write:
        if not args.suite:
            body += "\nThe test suite's time is in the section \"Codebase shape\" (`bench_codebase --suite`).\n"
        write_section("core", "Foundation: exact KL, import time" + (", test suite" if args.suite else ""), body,
                      "python -m benchmarks.bench_core " + ("--suite " if args.suite else "") + "--write")


if __name__ == "__main__":
    main()
