"""Proposition 3 benchmarks: the fine-tuning gap between reparametrised twins as a function of α, for
SGD and Adam, and the time of the whole `prop-3-*` check on the CPU.

Each family (qk, vo, mlp) applies the same α to every head / MLP layer of the standard setup's
pretrained 2-layer transformer (:class:`constructions.finetuning.Proposition3Setup`); θ and T_α(θ) are
fine-tuned on aⁿbⁿaⁿ with the setup's SGD and Adam runs; the gap is |L(θ_k) − L(θ'_k)| (nats per
sequence) and the mean total variation over OOD prefixes.  The permutation control is the reference
line.  α = 1 is the identity map: its gap is exactly 0 (not drawn on the log axis); α = 1 ± δ for small
δ shows how the gap vanishes as the map approaches the identity.  A caption saying what the figure
shows (every panel, line and symbol) is printed, and written into BENCHMARKS.md, with it.

The figure goes to ``--out``: by default ``out/benchmarks/`` (git-ignored); with ``--write``, by default
the tracked ``benchmarks/out/finetuning_gap.png`` and ``.pdf``, and the section of BENCHMARKS.md is
rewritten too.  Without ``--write`` no tracked file changes.

    python -m benchmarks.bench_finetuning [--out DIR] [--repeats 3] [--times-only] [--write]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
from pathlib import Path

from benchmarks.report import ROOT, SCRATCH, TRACKED_OUT, output_folder, write_section
from empirical.figures import save_figure, tex_number
from theory.tables import markdown_table

ALPHAS = (0.125, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 4.0, 8.0)
DELTAS = (1e-4, 1e-3, 1e-2, 1e-1)  # near the identity: alpha = 1 + delta and 1 - delta
FAMILIES = ("qk", "vo", "mlp")
FAMILY_LABELS = {"qk": "$(W_Q, W_K)$ scaling", "vo": "$(W_V, W_O)$ scaling", "mlp": "$(W_1, W_2)$ scaling"}
FLOOR = 1e-17  # gaps below this (0 included) are drawn at it, so that the log axis shows them

CAPTION = (
    "`finetuning_gap.png` (and `.pdf`): the pretrained 2-layer transformer θ and its rescaled twin θ′ = T_α(θ) "
    "compute the same function; both are fine-tuned from aⁿbⁿ to aⁿbⁿaⁿ for k steps (left column SGD, middle "
    "column Adam, k in the panel titles), giving θ_k and θ′_k. **Top row:** the loss gap |L(θ_k) − L(θ′_k)|, L the "
    "fine-tuning loss in nats per sequence; **bottom row:** the mean total variation between the two fine-tuned "
    "models' next-token distributions over the OOD prefixes. One colour per family, the same α on every head or "
    "MLP layer: qk (W_Q, W_K) → (α W_Q, W_K / α) (blue circles), vo (W_V, W_O) → (α W_V, W_O / α) (orange squares), "
    "mlp (W_1, W_2) → (α W_1, W_2 / α) (green triangles); × marks a diverged run. α = 1 is the identity (gap "
    "exactly 0, not drawn). The dashed grey line is the permutation control (heads and hidden units permuted: "
    "the same function and the same training, so only float noise). **Right column:** near the identity, "
    "α = 1 ± δ against δ = |α − 1|: solid α = 1 + δ and dotted α = 1 − δ for SGD (filled markers), faint hollow "
    "markers for Adam; the grey dashed (SGD) and dash-dotted (Adam) lines are the controls, the grey dotted line a "
    "slope-1 guide (∝ δ). Values below 10⁻¹⁷ (a gap of exactly 0) are drawn at 10⁻¹⁷.")
"""What :func:`figure` shows, every symbol defined (Markdown, for BENCHMARKS.md)."""


def family_map(model, family: str, alpha: float):
    from constructions import finetuning as ft

    cfg = model.config
    if family == "mlp":
        maps = [ft.mlp_scaling(model, layer, alpha) for layer in range(cfg.n_layers)]
    else:
        make = ft.qk_scaling if family == "qk" else ft.vo_scaling
        maps = [make(model, layer, head, alpha) for layer in range(cfg.n_layers) for head in range(cfg.n_heads)]
    return ft.compose(*maps, name=f"{family}-scaling, alpha {alpha:g} everywhere")


def gap_table() -> dict:
    """{(family, optimizer, alpha): TrajectoryGap} plus the control under key ("control", optimizer, None)."""
    from constructions import finetuning as ft
    from proofs.finetuning import standard_maps

    setup = ft.Proposition3Setup()
    model = ft.pretrained_model(setup)
    runs = {"sgd": (setup.sgd_lr, setup.sgd_steps), "adam": (setup.adam_lr, setup.adam_steps)}
    out = {}
    with ft.torch_threads(1):
        for opt, (lr, steps) in runs.items():
            for family in FAMILIES:
                near = [1 + sign * d for d in DELTAS for sign in (1, -1)]
                for a in ALPHAS + tuple(near):
                    out[(family, opt, a)] = ft.fine_tuning_gap(family_map(model, family, a), model, setup.task, opt, lr, steps)
            out[("control", opt, None)] = ft.fine_tuning_gap(standard_maps(model)["permutation"], model, setup.task,
                                                             opt, lr, steps)
    return {"setup": setup, "gaps": out}


def _fmt(x: float) -> str:
    if not math.isfinite(x):
        return "diverged"
    return "0" if x == 0 else f"{x:.3g}"


def markdown_gaps(res: dict) -> str:
    setup, gaps = res["setup"], res["gaps"]
    parts = []
    for opt, lr, steps in (("sgd", setup.sgd_lr, setup.sgd_steps), ("adam", setup.adam_lr, setup.adam_steps)):
        name = "SGD" if opt == "sgd" else "Adam"
        head = ["α", *(cell for f in FAMILIES for cell in (f"{f} loss gap", f"{f} OOD TV"))]
        caption = (f"**{name}** (lr {lr:g}, {steps} full-batch steps; loss gap in nats per sequence, OOD TV = mean "
                   f"total variation over {gaps[('qk', opt, 1.0)].n_ood_prefixes} OOD prefixes of length ≤ "
                   f"{setup.task.ood_length})\n")
        rows = []
        for a in ALPHAS:
            cells = [f"{a:g}"]
            for f in FAMILIES:
                g = gaps[(f, opt, a)]
                cells += [_fmt(g.loss_gap), _fmt(g.ood_tv_mean)]
            rows.append(cells)
        c = gaps[("control", opt, None)]
        rows.append(["permutation control", _fmt(c.loss_gap), _fmt(c.ood_tv_mean), "—", "—", "—", "—"])
        parts.append("\n".join([caption, *markdown_table(head, rows)]))
    caption = ("**Near the identity** (loss gap; α = 1 ± δ; the gap vanishes as δ → 0, roughly linearly for small δ, and "
               "stays far above the control's float noise)\n")
    head = ["δ", *(cell for f in FAMILIES for cell in (f"{f} SGD α=1+δ", f"{f} SGD α=1−δ", f"{f} Adam α=1+δ"))]
    rows = []
    for d in DELTAS:
        cells = [f"{d:g}"]
        for f in FAMILIES:
            cells += [_fmt(gaps[(f, "sgd", 1 + d)].loss_gap), _fmt(gaps[(f, "sgd", 1 - d)].loss_gap),
                      _fmt(gaps[(f, "adam", 1 + d)].loss_gap)]
        rows.append(cells)
    parts.append("\n".join([caption, *markdown_table(head, rows)]))
    return "\n\n".join(parts)


def figure(res: dict, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    gaps = res["gaps"]
    fig, axes = plt.subplots(2, 3, figsize=(12.5, 6.6), constrained_layout=True)
    styles = {"qk": ("C0", "o"), "vo": ("C1", "s"), "mlp": ("C2", "^")}
    quantities = (("loss_gap", r"$|L(\theta_k) - L(\theta'_k)|$ (nats / sequence)"), ("ood_tv_mean", "mean OOD total variation"))
    for col, opt in enumerate(("sgd", "adam")):
        for row, (attr, label) in enumerate(quantities):
            ax = axes[row, col]
            for f in FAMILIES:
                xs = [a for a in ALPHAS if a != 1.0 and math.isfinite(getattr(gaps[(f, opt, a)], attr))]
                ys = [max(getattr(gaps[(f, opt, a)], attr), FLOOR) for a in xs]
                colour, marker = styles[f]
                ax.plot(xs, ys, marker=marker, color=colour, label=FAMILY_LABELS[f])
                bad = [a for a in ALPHAS if not math.isfinite(getattr(gaps[(f, opt, a)], attr))]
                if bad:
                    ax.plot(bad, [1.0] * len(bad), "x", color=colour, markersize=9)
            ctrl = max(getattr(gaps[("control", opt, None)], attr), FLOOR)
            ax.axhline(ctrl, color="0.4", ls="--", lw=1, label="permutation control")
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_ylim(FLOOR / 3, 10)
            ax.grid(True, which="major", alpha=0.3)
            if row == 0:
                ax.set_title(f"{'SGD' if opt == 'sgd' else 'Adam'}, $k = {gaps[('qk', opt, 1.0)].steps}$ steps: "
                             r"gap against $\alpha$")
            else:
                ax.set_xlabel(r"$\alpha$ (the same on every head / MLP layer)")
            if col == 0:
                ax.set_ylabel(label)
        # near the identity: gap vs delta = |alpha - 1|, both sides
        for row, (attr, label) in enumerate(quantities):
            ax = axes[row, 2]
            for f in FAMILIES:
                colour, marker = styles[f]
                for sign, ls in ((1, "-"), (-1, ":")):
                    ys = [max(getattr(gaps[(f, opt, 1 + sign * d)], attr), FLOOR) for d in DELTAS]
                    ax.plot(DELTAS, ys, ls=ls, marker=marker, color=colour, alpha=1.0 if opt == "sgd" else 0.45,
                            markerfacecolor=colour if opt == "sgd" else "none")
    from matplotlib.lines import Line2D

    axes[0, 2].set_title(r"near the identity: $\alpha = 1 \pm \delta$")
    for row in (0, 1):
        a = axes[row, 2]
        a.plot(DELTAS, [1e-3 * d for d in DELTAS], color="0.5", lw=1, ls=(0, (1, 2)))  # slope-1 guide, below the data
        a.text(DELTAS[-1], 1e-3 * DELTAS[-1] * 0.05, r"slope 1 ($\propto \delta$)", color="0.4", fontsize=7, ha="right",
               va="top")
        a.set_xscale("log")
        a.set_yscale("log")
        a.set_ylim(FLOOR / 3, 10)
        a.grid(True, which="major", alpha=0.3)
        for opt, ls in (("sgd", "--"), ("adam", "-.")):
            a.axhline(max(getattr(gaps[("control", opt, None)], quantities[row][0]), FLOOR), color="0.4", ls=ls, lw=1)
    axes[1, 2].set_xlabel(r"$\delta = |\alpha - 1|$")
    axes[0, 2].legend(handles=[
        Line2D([], [], color="0.2", marker="o", ls="-", label=r"SGD, $\alpha = 1 + \delta$"),
        Line2D([], [], color="0.2", marker="o", ls=":", label=r"SGD, $\alpha = 1 - \delta$"),
        Line2D([], [], color="0.2", marker="o", ls="-", alpha=0.45, markerfacecolor="none", label=r"Adam, $\alpha = 1 \pm \delta$"),
        Line2D([], [], color="0.4", ls="--", lw=1, label="permutation control, SGD"),
        Line2D([], [], color="0.4", ls="-.", lw=1, label="permutation control, Adam"),
    ], fontsize=7, loc="lower left", bbox_to_anchor=(0.0, 0.24))
    axes[0, 0].legend(fontsize=8, loc="center right")
    fig.suptitle(r"Fine-tuning gap between function-identical twins $\theta$ and $\theta' = T_\alpha(\theta)$, fine-tuned "
                 r"from $a^n b^n$ to $a^n b^n a^n$ ($\alpha = 1$: gap exactly 0, not drawn; $\times$: diverged; values below "
                 f"${tex_number(FLOOR)}$ drawn at it)", fontsize=10)
    return save_figure(fig, out / "finetuning_gap", ("png", "pdf"), dpi=150)


_TIMER = """
import json, sys, time
t0 = time.perf_counter()
import proofs.finetuning as pf
from proofs import run
t_import = time.perf_counter() - t0
times = {}
for c in pf.CHECKS:
    cert = run(c)
    times[c.name] = [cert.elapsed_s, cert.status.value]
print(json.dumps({"import": t_import, "checks": times, "total": time.perf_counter() - t0}))
"""


def time_checks(repeats: int) -> list[dict]:
    """Run every prop-3 check in ``repeats`` fresh interpreters (cold caches, torch imported inside)."""
    out = []
    for _ in range(repeats):
        res = subprocess.run([sys.executable, "-c", _TIMER], cwd=ROOT, capture_output=True, text=True, check=True)
        out.append(json.loads(res.stdout.strip().splitlines()[-1]))
    return out


EXCLUDED = ("prop-3-symbolic", "prop-3-blocks")
"""Not in the issue-18 time target of the numeric prop-3 checks (symbolic: sympy; blocks: another module)."""


def time_cli(repeats: int) -> list[dict]:
    """``nonid prove --only 'prop-3-*' --json --timings`` in ``repeats`` fresh processes: the wall time of the
    whole command and each certificate's elapsed seconds and status."""
    import time

    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        res = subprocess.run([sys.executable, "-m", "nonid", "prove", "--only", "prop-3-*", "--json", "--timings"], cwd=ROOT,
                             capture_output=True, text=True)
        wall = time.perf_counter() - t0
        certs = json.loads(res.stdout)
        out.append({"wall": wall, "rc": res.returncode,
                    "checks": {c["check"]: [c.get("elapsed_s", math.nan), c["status"]] for c in certs}})
    return out


def machine() -> str:
    """Where and when the times were taken."""
    import datetime
    import os
    import platform

    return (f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; {platform.machine()} "
            f"{platform.processor() or platform.platform()}, {os.cpu_count()} logical CPUs; Python {platform.python_version()}")


def markdown_cli(runs: list[dict]) -> str:
    names = list(runs[0]["checks"])
    med = statistics.median
    rows = []
    for n in names:
        ts = [r["checks"][n][0] for r in runs]
        status = ",".join(sorted({r["checks"][n][1] for r in runs}))
        rows.append([f"`{n}`" + (" (excluded from the target)" if n in EXCLUDED else ""), status, f"{med(ts):.2f}",
                     f"{min(ts):.2f}"])
    own = [sum(t for n, (t, _) in r["checks"].items() if n not in EXCLUDED) for r in runs]
    rows.append(["**sum of the prop-3 checks without symbolic and blocks**", "—", f"**{med(own):.2f}**", f"{min(own):.2f}"])
    walls = [r["wall"] for r in runs]
    rows.append(["**`nonid prove --only 'prop-3-*' --json --timings`, wall, fresh process**", "—", f"**{med(walls):.2f}**",
                 f"{min(walls):.2f}"])
    return ("\n".join(markdown_table(["check", "status", "median s", "min s"], rows))
            + f"\n\n{len(runs)} fresh processes; target: the checks without symbolic and blocks under ~12 s on 2 CPU "
              f"cores. Measured {machine()}; the machine is shared, so times are noisy.")


def markdown_times(runs: list[dict]) -> str:
    names = list(runs[0]["checks"])
    med = lambda xs: statistics.median(xs)  # noqa: E731
    rows = [["import `proofs.finetuning` (no torch yet)", "—", f"{med([r['import'] for r in runs]):.2f}",
             f"{min(r['import'] for r in runs):.2f}"]]
    for n in names:
        ts = [r["checks"][n][0] for r in runs]
        status = ",".join(sorted({r["checks"][n][1] for r in runs}))
        rows.append([f"`{n}`", status, f"{med(ts):.2f}", f"{min(ts):.2f}"])
    tot = [r["total"] for r in runs]
    rows.append(["**all prop-3 checks, fresh process** (torch import and pretraining in the first numeric check)", "—",
                 f"**{med(tot):.2f}**", f"{min(tot):.2f}"])
    return ("\n".join(markdown_table(["check", "status", "median s", "min s"], rows))
            + f"\n\n{len(runs)} fresh interpreters (prop-3-symbolic included; prop-3-blocks is not in this module). "
              f"Measured {machine()}; shared machine, noisy.")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=None,
                    help=f"folder for the figure, PNG + PDF (default: {SCRATCH.relative_to(ROOT)}/, git-ignored; with --write: "
                         f"{TRACKED_OUT.relative_to(ROOT)}/, tracked)")
    ap.add_argument("--repeats", type=int, default=3, help="fresh interpreters timing the whole check")
    ap.add_argument("--times-only", action="store_true", help="only the check times (no gap table, no figure)")
    ap.add_argument("--write", action="store_true",
                    help=f"refresh the tracked results: the section of BENCHMARKS.md and the figure in {TRACKED_OUT.relative_to(ROOT)}/")
    args = ap.parse_args()
    out = output_folder(args.out, args.write)
    times = ("\n\n### Time of the whole check\n\n" + markdown_times(time_checks(args.repeats))
             + "\n\n### Time of `nonid prove --only 'prop-3-*'`\n\n" + markdown_cli(time_cli(args.repeats)) + "\n")
    if args.times_only:
        if args.write:
            raise SystemExit("--write needs the full run (no --times-only)")
        print(times.lstrip())
        return
    res = gap_table()
    paths = figure(res, out)
    body = ("### Fine-tuning gap vs α\n\n" + markdown_gaps(res) + "\n\nFigure: "
            + ", ".join(f"`{p.relative_to(ROOT) if p.is_relative_to(ROOT) else p}`" for p in paths)
            + "\n\n" + CAPTION + times)
    print(body)
    if args.write:
        write_section("finetuning", "Proposition 3: fine-tuning gap vs α, check time", body,
                      "python -m benchmarks.bench_finetuning --write")


if __name__ == "__main__":
    main()
