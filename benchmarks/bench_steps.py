"""The rates behind the commands' time estimates.

* ``nonid experiment``: seconds per training step of each architecture at ``--size cpu`` (L3, regime
  ml, one torch thread) and a run's fixed cost, from two runs of 250 and 750 steps each (the difference
  over 500 steps is the rate; the rest is the fixed cost).  :data:`empirical.names.CPU_SECONDS_PER_STEP`
  and ``RUN_OVERHEAD_S`` hold rounded values of these.
* ``nonid counterexample``: the wall time of a whole compiled run (build, compile, check on rigorous
  enclosures, write) in fresh processes for three cases of growing size, against prefixes x parameters;
  :data:`constructions.export.COMPILE_SECONDS_PER_PREFIX_PARAMETER` holds a rounded fit.

``python -m benchmarks.bench_steps [--write]`` (about three minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from benchmarks.report import write_section
from theory.tables import markdown_table


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help="write the section into BENCHMARKS.md")
    args = ap.parse_args(argv)
    import torch

    from empirical.experiment import RunSpec, run_one
    from empirical.names import ARCHITECTURES, CPU_SECONDS_PER_STEP, RUN_OVERHEAD_S

    torch.set_num_threads(1)
    rows = []
    for arch in ARCHITECTURES:
        wall = {}
        for steps in (250, 750):
            with tempfile.TemporaryDirectory() as d:
                start = time.perf_counter()
                run_one(RunSpec("L3", arch, "ml", 0, "cpu", steps, None), Path(d), torch.device("cpu"), progress=False)
                wall[steps] = time.perf_counter() - start
        rate = (wall[750] - wall[250]) / 500
        rows.append([arch, f"{wall[250]:.1f} s", f"{wall[750]:.1f} s", f"{1000 * rate:.1f} ms", f"{wall[250] - 250 * rate:.1f} s",
                     f"{1000 * CPU_SECONDS_PER_STEP[arch]:.1f} ms"])
        print("  ".join(rows[-1]), flush=True)
    body = ("\n".join(markdown_table(["architecture", "250 steps", "750 steps", "per step", "fixed cost", "used by the estimate"],
                                     rows))
            + f"\n\nThe estimate also adds {RUN_OVERHEAD_S} s per run and ×1.3 per step for the adversarial and oracle "
              "regimes (their extra batch).  Single measurements: expect ±30 % between runs.")
    body += "\n\n" + _counterexample_rates()
    print(body)
    if args.write:
        write_section("experiment-rates", "Time estimates: the measured rates", body, "benchmarks/bench_steps.py")
    return 0


def _counterexample_rates() -> str:
    """Wall time of ``nonid counterexample CASE`` in fresh processes against the parameters built."""
    import subprocess
    import sys

    from benchmarks.report import ROOT
    from constructions.export import COMPILE_SECONDS_PER_PREFIX_PARAMETER, COMPILE_START_S, case_prefixes, estimate_pair, load_case

    rows = []
    for case in ("anbn", "L4", "L6"):
        est = estimate_pair(load_case(case), case_prefixes(load_case(case)))
        with tempfile.TemporaryDirectory() as d:
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "nonid", "counterexample", case, "--out", f"{d}/pair"], cwd=ROOT,
                           check=True, capture_output=True)
            wall = time.perf_counter() - start
        per = wall / (2 * est.parameters * est.prefixes)
        rows.append([case, f"{est.parameters:,}", f"{est.prefixes:,}", f"{wall:.1f} s", f"{est.seconds:.0f} s",
                     f"{per * 1e9:.2f} ns"])
        print("  ".join(rows[-1]), flush=True)
    table = "\n".join(markdown_table(["case", "parameters per model", "prefixes", "measured wall (fresh process)",
                                      "estimate", "wall / (2 x prefixes x parameters)"], rows))
    return (f"### `nonid counterexample` (fresh processes)\n\n{table}\n\nThe estimate (printed once the imports are "
            f"done) is {COMPILE_START_S:g} s + 2 x prefixes x parameters x {COMPILE_SECONDS_PER_PREFIX_PARAMETER:g} s; "
            "the measured wall also holds the interpreter's start (about 3 s).")


if __name__ == "__main__":
    raise SystemExit(main())
