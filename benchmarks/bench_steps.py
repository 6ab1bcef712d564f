"""The rates behind ``nonid experiment``'s time estimate: seconds per training step of each
architecture at ``--size cpu`` (L3, regime ml, one torch thread) and a run's fixed cost, from two runs
of 250 and 750 steps each (the difference over 500 steps is the rate; the rest is the fixed cost).
:data:`empirical.names.CPU_SECONDS_PER_STEP` and ``RUN_OVERHEAD_S`` hold rounded values of these.

``python -m benchmarks.bench_steps [--write]`` (about two minutes on 2 cores).
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
    print(body)
    if args.write:
        write_section("experiment-rates", "Experiment time estimate: rates", body, "benchmarks/bench_steps.py")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
