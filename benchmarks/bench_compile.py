"""Benchmarks of the compiler, the exhaustive checker and the distiller.

* compile time and parameter count against the horizon (all binary words up to L) and against n_max of aⁿbⁿ
  (support prefixes + the paper's 256 prompts and both greedy paths);
* exhaustive-check throughput on all 8,191 binary words of length ≤ 12 (8,190 non-empty prefixes plus the
  empty one): the bare batched forward pass and the whole check (rows of the construction, TV, |Δ log p|),
  for an ordinary small transformer and for the compiled network;
* distillation time to max TV ≤ 0.01 on the aⁿbⁿ (n ≤ 16) prefix set, on the CPU (``--skip-distill`` skips it).

``python -m benchmarks.bench_compile`` prints a Markdown table; ``--write`` also writes the section of
BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import time
from fractions import Fraction

import torch

from benchmarks.report import best_time
from constructions.check import check_model, evaluate
from constructions.compile import compile_model, prefix_set
from constructions.export import case_prefixes, load_case
from constructions.transformer import DecoderTransformer, TransformerConfig
from theory.alphabet import Alphabet
from theory.models import FunctionModel
from theory.tables import markdown_table


def _binary_model() -> FunctionModel:
    """A construction over {a, b} whose exact rows vary with the word (no zeros, so no logit floor)."""
    ab = Alphabet("ab")

    def row(u: str) -> dict[str, Fraction]:
        k = 1 + (len(u) * 3 + u.count("a")) % 7
        return {"a": Fraction(k, 10), "b": Fraction(9 - k, 10), "<eos>": Fraction(1, 10)}

    return FunctionModel(ab, row, name="binary-test-rows")


def bench_compile_horizon(horizons: list[int]) -> list[str]:
    model = _binary_model()
    rows = []
    for L in horizons:
        ps = prefix_set(model, horizon=L)
        t = best_time(lambda: compile_model(model, ps), 1)
        net, rep = compile_model(model, ps)
        rows.append([f"binary words, L = {L}", f"{len(ps):,}", net.config.d_model, f"{net.config.d_mlp:,}",
                     f"{rep.parameters:,}", f"{t:.2f}"])
    return markdown_table(["set", "prefixes", "d_model", "d_mlp", "parameters", "compile (s)"], rows)


def bench_compile_anbn(ns: list[int]) -> list[str]:
    lines = []
    for n in ns:
        case = load_case("anbn", n)
        t0 = time.perf_counter()
        ps = case_prefixes(case)
        t_set = time.perf_counter() - t0
        t0 = time.perf_counter()
        net, rep = compile_model(case.completer, ps)
        t = time.perf_counter() - t0
        lines.append(f"| aⁿbⁿ n ≤ {n} + 256 prompts | {len(ps):,} | {net.config.d_model} | {net.config.d_mlp:,} | "
                     f"{rep.parameters:,} | {t:.2f} (+ {t_set:.2f} prefix set) |")
    return lines


def bench_check_throughput(threads: int) -> list[str]:
    torch.set_num_threads(threads)
    model = _binary_model()
    ps = prefix_set(model, horizon=12)
    for u in ps.prefixes:  # warm the construction's memo: its exact rows are not the checker's cost
        model.next_token(u)
    rows = []
    nets = []
    for d_model, heads, d_mlp, dtype in ((16, 2, 64, "float32"), (64, 4, 256, "float32"), (64, 4, 256, "float64")):
        cfg = TransformerConfig(alphabet="ab", d_model=d_model, n_heads=heads, d_head=d_model // heads, d_mlp=d_mlp,
                                n_layers=2, max_len=13, dtype=dtype)
        nets.append((f"ordinary, d_model {d_model}, d_mlp {d_mlp}, 2 layers, {dtype}", DecoderTransformer(cfg)))
    nets.append(("compiled for L = 12 (float64)", compile_model(model, ps)[0]))
    for label, net in nets:
        tf = best_time(lambda: evaluate(net, ps))
        tc = best_time(lambda: check_model(net, model, ps, tolerance=1.0))
        n_params = sum(p.numel() for p in net.parameters())
        rows.append([label, f"{n_params:,}", f"{tf:.3f}", f"{tc:.3f}", f"{len(ps) / tc:,.0f}"])
    return markdown_table(["network", "parameters", "forward over 4,096 maximal words (s)", "whole check (s)",
                           "prefixes / s (whole check)"], rows)


def bench_distill(n_max: int, threads: int) -> list[str]:
    from constructions.distill import DistillConfig, distill

    torch.set_num_threads(threads)
    case = load_case("anbn", n_max)
    ps = case_prefixes(case)
    rows = []
    for key, model in (("Q1 completer", case.completer), ("Q2 violator", case.violator)):
        res = distill(model, ps, DistillConfig(device="cpu"), progress=False)
        rows.append([f"{key} (aⁿbⁿ n ≤ {n_max}, default student d_model 64, 2 layers)", f"{len(ps):,}", res.steps,
                     f"{res.max_tv:.4f}{'' if res.converged else ' (cap)'}", f"{res.seconds:.1f}", res.device])
    return markdown_table(["model", "prefixes", "steps", "max TV", "seconds", "device"], rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--write", action="store_true", help="write the section of BENCHMARKS.md")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (default 1: on a small shared machine more threads were slower)")
    ap.add_argument("--skip-distill", action="store_true", help="leave out the distillation timing")
    ap.add_argument("--anbn", type=int, nargs="*", default=[8, 16, 32, 64])
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    parts = ["### Compile time and size", ""]
    parts += bench_compile_horizon([4, 6, 8, 10, 12]) + bench_compile_anbn(args.anbn)
    parts += ["", f"### Exhaustive check, all binary words of length ≤ 12 ({args.threads} threads, CPU)", ""]
    parts += bench_check_throughput(args.threads)
    if not args.skip_distill:
        parts += ["", "### Distillation to max TV ≤ 0.01 (CPU)", ""] + bench_distill(16, args.threads)
    body = "\n".join(parts)
    from benchmarks.report import publish

    return publish(body, args.write, "compile", "Compiler, exhaustive checker, distiller", "python -m benchmarks.bench_compile")


if __name__ == "__main__":
    raise SystemExit(main())
