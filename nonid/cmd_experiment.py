"""``nonid experiment rule-extrapolation``: train real architectures on the papers' languages, compare
with the published numbers, and certify each run's saturation gap.

    nonid experiment rule-extrapolation --language L3 --arch transformer,lstm \\
        --regime ml,adversarial,oracle --seeds 5 --device auto --out DIR [--steps N] [--resume] [--size paper]

Prints one line per finished run (test loss, certified gap over the exact floor, ID R1, OOD R1, OOD R2
of the completion, best-validation step, wall time), then the Markdown comparison table and the
regime comparison; progress goes to stderr.  Writes ``DIR/results.csv`` (one line per run, both
aggregations), ``DIR/report.md`` and ``DIR/ood_r1_vs_gap.png``; each run's folder holds its
checkpoint and ``result.json``.  Other options: ``--arch`` also takes ``transformer-nopos`` (the
published position-blind Transformer), ``linear``, ``ssm``; ``--regime-lengths`` the OOD prompt
lengths of the regime term; ``--aggregation``; ``--jobs`` / ``--threads`` for the CPU.

Exit 0 when every run finished; 2 for bad input — unknown language, architecture, regime, size or
device, a configuration whose memory estimate exceeds the device (refused before training), a
damaged or foreign checkpoint on ``--resume`` (left untouched) — with one line on stderr.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("experiment", help="train real models and compare with the published experiments")
    p.add_argument("name", choices=["rule-extrapolation"], help="the experiment")
    p.add_argument("--language", default="L3", help="comma-separated languages, L1..L6 (default L3)")
    p.add_argument("--arch", default="transformer,lstm",
                   help="comma-separated architectures: transformer, transformer-nopos (the published "
                        "position-blind one), lstm, linear, ssm (a small Mamba-style model) (default transformer,lstm)")
    p.add_argument("--regime", default=None,
                   help="comma-separated regimes: ml, adversarial, oracle (default: all three for L3/L5, ml otherwise)")
    p.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 per (language, arch, regime) (default 3)")
    p.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda (default auto)")
    p.add_argument("--size", default="cpu", help="cpu (default: minutes on 2 cores) or paper (the papers' sizes, for a GPU)")
    p.add_argument("--steps", type=int, default=None, help="training steps per run (default: the size's)")
    p.add_argument("--regime-lengths", default=None, metavar="N,M",
                   help="lengths of the OOD prompts the adversarial/oracle term trains on (default: the evaluation "
                        "prompts' length, 8 for L3 — so the evaluated prompts are trained on; e.g. 6,7 holds them out)")
    p.add_argument("--aggregation", default="best-validation", choices=["best-validation", "max-over-checkpoints"],
                   help="which aggregation the report's table uses (both are in the CSV)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--resume", action="store_true", help="continue interrupted runs from their checkpoints")
    p.add_argument("--jobs", type=int, default=1, help="runs trained at once in separate processes (CPU; default 1)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per run on the CPU (default 1: the models are tiny)")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    return p


def run(args: argparse.Namespace) -> int:
    from empirical.errors import InvalidExperimentConfig
    from empirical.experiment import resolve_device, run_grid
    from empirical.report import figure, markdown, write_csv
    from theory.fileio import output_dir_problem, write_atomic
    from theory.languages import get_language

    languages = [get_language(x).name for x in _csv(args.language)]
    archs = _csv(args.arch)
    if not languages or not archs:
        raise InvalidExperimentConfig("give at least one --language and one --arch")
    if args.regime is None:
        regimes = ["ml", "adversarial", "oracle"] if all(x in ("L3", "L5") for x in languages) else ["ml"]
    else:
        regimes = _csv(args.regime)
    if args.threads < 1:
        raise InvalidExperimentConfig(f"--threads {args.threads} must be at least 1")
    if args.seeds < 1:
        raise InvalidExperimentConfig(f"--seeds {args.seeds} must be at least 1")
    try:
        lengths = [int(x) for x in _csv(args.regime_lengths)] if args.regime_lengths else None
    except ValueError:
        raise InvalidExperimentConfig(f"--regime-lengths {args.regime_lengths!r} is not a comma-separated list of integers") from None
    from empirical.architectures import check_architecture
    from empirical.data import check_regime

    for arch in archs:  # refuse bad names before printing or creating anything
        check_architecture(arch)
    for lang in languages:
        for regime in regimes:
            check_regime(get_language(lang), regime)
    device = resolve_device(args.device)
    out = Path(args.out)
    problem = output_dir_problem(args.out, replace=False)
    if problem:
        raise InvalidExperimentConfig(f"--out {args.out!r} {problem}")
    n = len(languages) * len(archs) * len(regimes) * args.seeds
    print(f"rule-extrapolation: {n} runs ({', '.join(languages)} × {', '.join(archs)} × {', '.join(regimes)} × "
          f"{args.seeds} seeds), size {args.size}, device {device}", flush=True)
    start = time.perf_counter()
    rows = run_grid(languages, archs, regimes, list(range(args.seeds)), out, device, size=args.size, steps=args.steps,
                    resume=args.resume, progress=not args.quiet, echo=lambda s: print(s, flush=True),
                    threads=args.threads, jobs=args.jobs, aux_lengths=lengths)
    write_csv(rows, out / "results.csv")
    md = markdown(rows, args.aggregation)
    write_atomic(out / "report.md", "# Rule extrapolation: our runs against the published numbers\n\n" + md)
    drew = figure(rows, out / "ood_r1_vs_gap.png", args.aggregation)
    print()
    print(md)
    files = [out / "results.csv", out / "report.md"] + ([out / "ood_r1_vs_gap.png"] if drew else [])
    print(f"wrote {' '.join(str(f) for f in files)}  ({time.perf_counter() - start:.1f}s)")
    if not drew:
        print("no figure: no run has a finite certified gap", file=sys.stderr)
    return 0
