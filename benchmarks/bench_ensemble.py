"""The batched ensemble against one run at a time: wall time of training the 15 runs of one
architecture (L3, ``--size cpu``: 5 seeds × the regimes ml, adversarial, oracle) with
:func:`empirical.ensemble.train_ensemble` and with :func:`empirical.train.train` one after another, on
the CPU with one and with two torch threads, and how far each member's final parameters are from its
solo run's (:func:`empirical.ensemble.parameter_gap`), beside how far ``train()``'s own runs at one and
at two threads are from each other.

No evaluation and no checkpoints: the training steps alone.  Both sides are timed after a warm-up (the
first vmap imports part of torch, about 2 s once per process).

``python -m benchmarks.bench_ensemble [--write] [--steps 300] [--archs transformer,linear]`` (about
three minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import statistics
import time

from benchmarks.report import machine, write_section
from theory.tables import markdown_table

REGIMES = ("ml", "adversarial", "oracle")


def _runs(arch: str, seeds: int, steps: int) -> list[tuple]:
    from empirical.architectures import build_model
    from empirical.data import Vocab
    from empirical.experiment import RunSpec, plan, preset

    out = []
    for regime in REGIMES:
        for seed in range(seeds):
            data, _prompts, pairs, cfg, positions = plan(RunSpec("L3", arch, regime, seed, "cpu", steps=steps))
            vocab = Vocab(data.language.alphabet)
            out.append((vocab, data.train, pairs, cfg,
                        lambda v=vocab, p=positions, s=seed: build_model(arch, v, p, preset("cpu").model, s)))
    return out


def measure(arch: str, threads: int, seeds: int, steps: int) -> dict:
    """Wall times (s) of both ways and the members' parameter gaps from their solo runs."""
    import torch

    from empirical.ensemble import parameter_gap, train_ensemble
    from empirical.train import train

    torch.set_num_threads(threads)
    runs = _runs(arch, seeds, steps)
    vocab = runs[0][0]

    def ensemble(rs: list[tuple]) -> list:
        models = [r[4]() for r in rs]
        return train_ensemble(models, vocab, [r[1] for r in rs], [r[3] for r in rs],
                              aux_pairs_per_model=[r[2] for r in rs], progress=False)

    warm = _runs(arch, 1, 2)
    ensemble(warm)
    train(warm[0][4](), vocab, warm[0][1], warm[0][3], progress=False)
    start = time.perf_counter()
    solo = [train(r[4](), vocab, r[1], r[3], aux_pairs=r[2], progress=False) for r in runs]
    solo_s = time.perf_counter() - start
    start = time.perf_counter()
    members = ensemble(runs)
    ensemble_s = time.perf_counter() - start
    gaps = [parameter_gap(a.model, b.model) for a, b in zip(solo, members)]
    return {"solo_s": solo_s, "ensemble_s": ensemble_s, "gaps": gaps, "batched": members[0].batched, "n": len(runs),
            "solo": [r.model for r in solo]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help="write the section into BENCHMARKS.md")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--archs", default="transformer,linear", help="comma-separated architectures")
    ap.add_argument("--threads", default="1,2", help="comma-separated torch thread counts")
    args = ap.parse_args(argv)
    from empirical.ensemble import PARAMETER_TOLERANCE, parameter_gap

    rows = []
    thread_counts = [int(t) for t in args.threads.split(",")]
    for arch in args.archs.split(","):
        results = {threads: measure(arch, threads, args.seeds, args.steps) for threads in thread_counts}
        if len(thread_counts) > 1:  # the solo runs' own spread: train() at the first two thread counts
            own = [parameter_gap(a, b) for a, b in zip(results[thread_counts[0]]["solo"], results[thread_counts[1]]["solo"])]
            reference = f"{statistics.median(own):.1e} / {max(own):.1e}"
        else:
            reference = "-"
        for threads, r in results.items():
            within = sum(g <= PARAMETER_TOLERANCE for g in r["gaps"])
            rows.append([arch, str(threads), str(r["n"]), str(args.steps), f"{r['solo_s']:.1f} s", f"{r['ensemble_s']:.1f} s",
                         f"{r['solo_s'] / r['ensemble_s']:.2f}x", "vmap" if r["batched"] else "train() one by one",
                         f"{statistics.median(r['gaps']):.1e} / {max(r['gaps']):.1e}", f"{within}/{r['n']}", reference])
            print("  ".join(rows[-1]), flush=True)
    table = "\n".join(markdown_table(["architecture", "threads", "models", "steps", "one at a time", "ensemble", "speed-up", "path",
                                      "param gap to solo (median / max)", f"members within {PARAMETER_TOLERANCE:g}",
                                      f"train() alone, {'-'.join(map(str, thread_counts[:2]))} threads (median / max)"],
                                     rows))
    body = (f"{table}\n\n{3 * args.seeds} runs of L3 at `--size cpu` ({args.seeds} seeds × ml, adversarial, oracle), "
            "no evaluation or checkpoints; "
            "one measurement each (expect ±20 % between runs on a shared machine).  *param gap*: max |θ_ensemble − θ_solo| "
            "of a member's final parameters, the attention key biases left out (their exact gradient is 0: any two runs "
            "that round differently move them apart).  The last column is the same gap between `train()`'s own runs at "
            "one and at two threads: where the ensemble's gap is large, so is that one — the runs themselves are "
            "chaotic at this horizon, and the ensemble is as close to a solo run as two solo runs are to each other "
            "(the note at `empirical.ensemble.PARAMETER_TOLERANCE`).")
    print(body)
    if args.write:
        write_section("ensemble-speedup", "Batched ensemble: speed-up over one run at a time", body,
                      "benchmarks/bench_ensemble.py")
    else:
        print(f"\n(not written: rerun with --write; machine: {machine()})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
