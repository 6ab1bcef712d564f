"""The companion paper's architecture table, reproduced on the CPU at CPU size: all six languages × the five
architectures, ``ml`` training, 3 seeds, the published code's reading (``--convention published``), beside the
published per-grammar OOD R1 table (``empirical/reference/rule_extrapolation_published.csv``).

It runs one command — ``nonid experiment rule-extrapolation --language all --arch all --regime ml --seeds 3
--convention published --jobs 2 --out DIR`` (resumable: rerun it and finished runs are kept, an interrupted
one continues from its checkpoint) — then reads the runs back and writes, per (language, architecture):
our OOD R1 in the published aggregation and denominator (max over checkpoints, finished completions only)
and in ours (best-validation, all prompts), the published mean ± std over its runs, whether ours lies within
the published spread, and, where it does not, what differs between the two setups for that cell; per run the
certified saturation gap; and the wall times.

    python -m benchmarks.bench_architectures [--out DIR] [--seeds 3] [--steps N] [--languages all] [--archs all]
        [--jobs 2] [--report-only] [--write]

Without ``--write`` the runs go to ``out/benchmarks/architectures`` (git-ignored) and nothing tracked changes;
with it the section ``architecture-table`` of BENCHMARKS.md and ``benchmarks/out/architecture_table.csv``
are rewritten.  About 25 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.report import ROOT, SCRATCH, TRACKED_OUT, output_folder, write_section
from theory.fileio import write_atomic
from theory.tables import markdown_table

ARCH_FACTS = {
    "transformer": "published: d_model 10, 5 heads, FF 1024, 7 layers, and its positional encoding added along the batch "
                   "axis (no position signal: compare transformer-nopos); ours: d_model 16, 2 heads, 2 layers, learned positions",
    "transformer-nopos": "the published position defect reproduced; published d_model 10, 5 heads, FF 1024, 7 layers, "
                         "ours d_model 16, 2 heads, 2 layers",
    "lstm": "published: 5 layers, hidden 64, embedding 10 (16 in the text), dropout 0.4; ours: 1 layer, hidden 64, "
            "embedding 16, no dropout",
    "linear": "published: its mask lets a position see later tokens (not a causal model); ours is causal",
    "ssm": "published: Mamba, 10 layers, d_model 32; ours: a 2-layer selective SSM, d_model 16, without Mamba's "
           "short convolution",
}
DATA_FACTS = ("published words up to length 256 (aⁿbⁿ n ≤ 128, aⁿbⁿcⁿ n ≤ 85), ours up to 12 (L6: 10; aⁿbⁿ n ≤ 16, "
              "aⁿbⁿcⁿ n ≤ 8)")
STEP_FACTS = "published 5,000-50,000 epochs with early stopping, ours {steps:,} steps of 32 words"
MODEL_NAMES = {"transformer": "transformer", "transformer-nopos": "transformer", "lstm": "lstm", "linear": "linear",
               "ssm": "mamba"}


def command(out: Path, args: argparse.Namespace) -> list[str]:
    argv = [sys.executable, "-m", "nonid", "experiment", "rule-extrapolation", "--language", args.languages,
            "--arch", args.archs, "--regime", "ml", "--seeds", str(args.seeds), "--convention", "published",
            "--jobs", str(args.jobs), "--out", str(out), "--quiet"]
    if args.steps is not None:
        argv += ["--steps", str(args.steps)]
    if (out / "experiment.json").is_file():
        argv.append("--resume")
    return argv


def _ms(values: list[float]) -> str:
    if not values:
        return "–"
    s = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.3f} ± {s:.3f}"


def explain(language: str, arch: str, ours: list[float], pub: tuple[float | None, float | None] | None,
            steps: int = 1500) -> tuple[str, str]:
    """(within/differs, why): ours (finished-only, max over checkpoints) against the published mean ± std.
    Ours is within the published spread when its mean is within one published std of the published mean
    (within 0.005 when that std is 0)."""
    if pub is None or pub[0] is None:
        return "not published", "the companion paper has no such cell"
    if not ours:
        return "n/a", "no OOD completion of ours finished"
    mean, std = statistics.fmean(ours), pub[1] or 0.0
    diff = mean - pub[0]
    if abs(diff) <= max(std, 0.005):
        return "within", ""
    why = [ARCH_FACTS[arch], DATA_FACTS, STEP_FACTS.format(steps=steps)]
    if language == "L2":
        why.append("the published L2 prompts are drawn from 7 + 6 words; ours are our own seeded draws from the same pools")
    return f"differs by {diff:+.3f} (published std {std:.3f})", "; ".join(why)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=None, help="run folder (default out/benchmarks/architectures; resumed when it exists)")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=None, help="training steps per run (default: the cpu preset's 1,500)")
    ap.add_argument("--languages", default="all")
    ap.add_argument("--archs", default="all")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--report-only", action="store_true",
                    help="do not run: rebuild the tables from the finished runs in the folder (the recorded wall time is kept)")
    ap.add_argument("--write", action="store_true", help="rewrite the BENCHMARKS.md section and the tracked CSV")
    args = ap.parse_args(argv)
    out = Path(args.out) if args.out else SCRATCH / "architectures"
    if args.out:
        output_folder(args.out, args.write)  # refuses a tracked folder without --write
    out.parent.mkdir(parents=True, exist_ok=True)
    argv_run = command(out, args)
    print("$ " + " ".join(["nonid", *argv_run[3:]]), flush=True)
    ledger = out.parent / f"{out.name}.wall.json"  # beside the run folder, which holds only the command's files
    earlier = json.loads(ledger.read_text())["wall_s"] if ledger.is_file() and "--resume" in argv_run else 0.0
    if args.report_only:
        if not ledger.is_file():
            print(f"bench_architectures: --report-only: no recorded run in {out}", file=sys.stderr)
            return 2
        wall = json.loads(ledger.read_text())["wall_s"]
    else:
        start = time.perf_counter()
        proc = subprocess.run(argv_run, cwd=ROOT)
        wall = earlier + time.perf_counter() - start
        write_atomic(ledger, json.dumps({"wall_s": wall}) + "\n")
        if proc.returncode:
            print(f"bench_architectures: the experiment exited {proc.returncode}", file=sys.stderr)
            return proc.returncode

    from empirical.certificate import load_rows
    from empirical.reference_data import published

    rows = load_rows(out)
    cells, data_rows = [], []
    langs = list(dict.fromkeys(r.language for r in rows))
    archs = list(dict.fromkeys(r.arch for r in rows))
    for lang in langs:
        for arch in archs:
            rs = [r for r in rows if r.language == lang and r.arch == arch]
            if not rs:
                continue
            ours_pub = [v for r in rs if (v := r.metric("ood_r1", "max-over-checkpoints", "finished-only")) is not None]
            ours_all = [v for r in rs if (v := r.metric("ood_r1", "best-validation")) is not None]
            pubs = published(lang, MODEL_NAMES[arch], "ml")
            companion = next((p for p in pubs if p.aggregation == "max-over-checkpoints"), None)
            pv = None if companion is None else companion.values["ood_r1"]
            verdict, why = explain(lang, arch, ours_pub, pv, rs[0].steps_done)
            gaps = [r.gap for r in rs if r.gap is not None]
            if gaps and all(g.gap_rigorous for g in gaps) and all(math.isfinite(g.gap_token_hi) for g in gaps):
                from fractions import Fraction

                from theory.exact import scientific

                gap = f"≤ {scientific(Fraction(max(g.gap_token_hi for g in gaps)), 'up')} (certified)"
            elif gaps:
                gap = f"≈ {max(g.gap_token_hi for g in gaps):.2e} (measured)"
            else:
                gap = "n/a"
            pub_text = "–" if pv is None or pv[0] is None else f"{pv[0]:.3f} ± {pv[1] or 0:.3f} ({companion.runs})"
            cells.append([lang, arch, len(rs), _ms(ours_pub), _ms(ours_all), pub_text, verdict, gap, why])
            data_rows.append({"language": lang, "arch": arch, "runs": len(rs),
                              "ood_r1_finished_max_mean": statistics.fmean(ours_pub) if ours_pub else "",
                              "ood_r1_best_all_mean": statistics.fmean(ours_all) if ours_all else "",
                              "published_mean": "" if pv is None or pv[0] is None else pv[0],
                              "published_std": "" if pv is None or pv[1] is None else pv[1],
                              "published_runs": "" if companion is None else companion.runs,
                              "verdict": verdict, "gap_token_max": gap, "why": why})
    times = []
    for arch in archs:
        per = [[r.wall_s for r in rows if r.language == lang and r.arch == arch] for lang in langs]
        times.append([arch, *(f"{statistics.fmean(w):.1f}" if w else "–" for w in per)])
    within = {arch: sum(c[6] == "within" for c in cells if c[1] == arch) for arch in archs}
    compared = {arch: sum(c[6] not in ("not published", "n/a") for c in cells if c[1] == arch) for arch in archs}
    shown = [a for a in argv_run[3:] if a != "--resume"]
    shown = [str(Path(a).relative_to(ROOT)) if a == str(out) and out.resolve().is_relative_to(ROOT) else a for a in shown]
    body = "\n".join([
        f"`{' '.join(['nonid', *shown])}` — {len(rows)} runs, published reading, {args.jobs} jobs: "
        f"**{wall / 60:.1f} min** wall in total, the report included (over every session of a resumed run); "
        f"the runs' own wall times add up to {sum(r.wall_s for r in rows) / 60:.1f} min.",
        "",
        "Within the published spread, per architecture: " + ", ".join(
            f"{arch} {within[arch]} of {compared[arch]}" for arch in archs) + "."
        + (f"  The published Transformer's cells are matched by `transformer-nopos`, its position-blind defect reproduced, "
           f"in {within['transformer-nopos']} of {compared['transformer-nopos']} languages, and by a Transformer with "
           f"learned positions in {within['transformer']} of {compared['transformer']}: the defect, not the architecture, "
           "is the better account of those published numbers (at these sizes)."
           if within.get("transformer-nopos", 0) > within.get("transformer", 0) else ""),
        "",
        "OOD R1 per (language, architecture): ours in the published aggregation and denominator (max over "
        "checkpoints, finished completions only) and in ours (best-validation, all prompts; mean ± sample std over "
        "seeds), the published mean ± std (runs), and whether ours is within one published std of the published "
        "mean (0.005 when that std is 0).  Gap: the greatest per-run saturation gap over the seeds, nats per token "
        "(certified upper bound, rounded up; \"measured\" marks a float measurement).  Where a cell differs, the last column lists "
        "what differs between the two setups for it — candidate causes, not a measured attribution.", "",
        *markdown_table(["language", "arch", "runs", "OOD R1 (max, finished only)", "OOD R1 (best-validation, all prompts)",
                         "published OOD R1", "vs published", "gap (nats/token)", "what differs"], cells),
        "", "Mean wall time per run (s, over the seeds; training, evaluations and the gap):", "",
        *markdown_table(["arch", *langs], times)])
    print(body)
    if args.write:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(data_rows[0]) if data_rows else ["language"], lineterminator="\n")
        w.writeheader()
        w.writerows(data_rows)
        TRACKED_OUT.mkdir(parents=True, exist_ok=True)
        write_atomic(TRACKED_OUT / "architecture_table.csv", buf.getvalue())
        write_section("architecture-table", "The architecture table on the CPU (published reading)", body,
                      "benchmarks/bench_architectures.py")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
