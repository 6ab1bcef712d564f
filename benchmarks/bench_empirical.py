"""Rule-extrapolation experiments at the CPU default: aⁿbⁿ (n ≤ 16), Transformer and LSTM,
maximum-likelihood / adversarial / oracle training, a few seeds.  Prints the wall time of every run
(regime × seed) and the results table against the published numbers; ``--write`` puts both into
BENCHMARKS.md and copies the CSV and the figure to benchmarks/out/.

    python -m benchmarks.bench_empirical [--seeds 3] [--steps N] [--device auto] [--size cpu] [--out DIR] [--write]
        [--regime-lengths N,M] [--train-on-evaluated-prompts] [--epsilon EPS] [--delta D]

The adversarial and oracle terms train on OOD prompts held out from the evaluated ones (9, 10 for L3)
unless ``--train-on-evaluated-prompts``; the report ends with the experiment certificate at ε and Δ.

The published budget is 50,000 epochs per run (arXiv 2409.13728); the CPU default trains 1,500 steps
of 32 words.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.report import ROOT, write_section
from empirical.certificate import regime_protocol
from empirical.experiment import preset, resolve_device, run_grid
from empirical.protocol import DEFAULT_DELTA, DEFAULT_EPSILON, check_delta, check_epsilon, check_seeds
from empirical.report import figure, markdown, write_csv

ARCHS = ("transformer", "lstm")
REGIMES = ("ml", "adversarial", "oracle")


def timing_table(rows: list[dict]) -> str:
    """Wall time (s) per run: one line per (arch, regime), one column per seed, plus the mean."""
    seeds = sorted({r["seed"] for r in rows})
    head = "| arch | regime | " + " | ".join(f"seed {s}" for s in seeds) + " | mean |"
    lines = [head, "|" + "---|" * (len(seeds) + 3)]
    for arch in dict.fromkeys(r["arch"] for r in rows):
        for regime in dict.fromkeys(r["regime"] for r in rows):
            rs = {r["seed"]: r["wall_s"] for r in rows if r["arch"] == arch and r["regime"] == regime}
            if rs:
                lines.append(f"| {arch} | {regime} | " + " | ".join(f"{rs.get(s, float('nan')):.1f}" for s in seeds)
                             + f" | {statistics.fmean(rs.values()):.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=None, help="steps per run (default: the size's)")
    ap.add_argument("--size", default="cpu")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--arch", default=",".join(ARCHS))
    ap.add_argument("--jobs", type=int, default=1, help="runs at once (CPU processes); 1 gives per-run times free of contention")
    ap.add_argument("--regime-lengths", default=None,
                    help="OOD prompt lengths of the regime term (default: 9,10, held out from the evaluated length-8 prompts)")
    ap.add_argument("--train-on-evaluated-prompts", action="store_true",
                    help="train the regime term on the evaluated OOD prompts (length 8) instead of held-out ones")
    ap.add_argument("--epsilon", type=float, default=DEFAULT_EPSILON, help="certificate: gap bound, nats per token")
    ap.add_argument("--delta", type=float, default=DEFAULT_DELTA, help="certificate: OOD R1 margin")
    ap.add_argument("--out", default=None, help="run folder (default: a temporary folder)")
    ap.add_argument("--write", action="store_true", help="refresh the tracked results: the section of BENCHMARKS.md, and the CSV and the figure in benchmarks/out/")
    args = ap.parse_args(argv)
    check_seeds(args.seeds, "--seeds")
    check_epsilon(args.epsilon, "--epsilon")
    check_delta(args.delta, "--delta")
    device = resolve_device(args.device)
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="bench_empirical_"))
    archs = [a for a in args.arch.split(",") if a]
    start = time.perf_counter()
    rows = run_grid(["L3"], archs, REGIMES, list(range(args.seeds)), out, device, size=args.size, steps=args.steps,
                    progress=False, echo=lambda s: print(s, file=sys.stderr, flush=True), jobs=args.jobs,
                    aux_lengths=[int(x) for x in args.regime_lengths.split(",")] if args.regime_lengths else None,
                    train_on_evaluated_prompts=args.train_on_evaluated_prompts)
    total = time.perf_counter() - start
    write_csv(rows, out / "results.csv")
    drew = figure(rows, out / "ood_r1_vs_gap.png")
    p = preset(args.size)
    steps = args.steps or p.train.steps
    card = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU (1 torch thread per run, {args.jobs} run(s) at once)"
    body = "\n".join([
        f"L3 (aⁿbⁿ, n = 1..{p.n_max['L3']}), size `{args.size}`, {steps} steps × batch {p.train.batch_size} per run "
        f"(published budget: 50,000 epochs per run), device: {card}; total {total:.0f} s for {len(rows)} runs; "
        f"regime term trained on {regime_protocol(rows)['text']}.",
        "", "Wall time per run (s), training + evaluations + certified gap:", "", timing_table(rows), "",
        markdown(rows, "best-validation", epsilon=args.epsilon, delta=args.delta)])
    print(body)
    print(f"\nfiles: {out / 'results.csv'}" + (f" {out / 'ood_r1_vs_gap.png'}" if drew else ""))
    if args.write:
        dest = ROOT / "benchmarks" / "out"
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy(out / "results.csv", dest / f"empirical_{args.size}_{device.type}.csv")
        if drew:
            shutil.copy(out / "ood_r1_vs_gap.png", dest / f"empirical_{args.size}_{device.type}.png")
        write_section(f"empirical-{args.size}-{device.type}", f"Rule-extrapolation experiments ({args.size} size, {device.type})",
                      body, "python -m benchmarks.bench_empirical" + (f" --size {args.size}" if args.size != "cpu" else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
