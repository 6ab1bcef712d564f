"""Benchmark of the exact evaluator (:mod:`constructions.exact_eval`) on the default compiled aⁿbⁿ pair
(n ≤ 16, the ``compiled-anbn`` proof check's): the exact rational pass over every prefix of the set
against the float64 pass (:func:`constructions.check.evaluate`) and the rigorous float enclosure
(:func:`constructions.enclosure.enclose`), the mpmath log-softmax bounds on top, and the whole exact
certificate (:func:`proofs.compiled.certify_compiled`, with its enclosure cross-check and design check).

``python -m benchmarks.bench_exact`` prints a Markdown table; ``--write`` also writes the section of
BENCHMARKS.md.
"""

from __future__ import annotations

import argparse

import torch

from benchmarks.report import best_time
from theory.tables import markdown_table


def bench(n_max: int, repeat: int) -> list[str]:
    from constructions.check import check_model_exact, evaluate
    from constructions.compile import compile_model
    from constructions.enclosure import enclose
    from constructions.exact_eval import exact_evaluate
    from constructions.export import case_prefixes, load_case
    from proofs.compiled import certify_compiled

    case = load_case("anbn", n_max)
    ps = case_prefixes(case)
    nets = [compile_model(case.completer, ps)[0], compile_model(case.violator, ps)[0]]
    for u in ps.prefixes:  # the constructions' exact rows are memoised: not the evaluators' cost
        case.completer.next_token(u)
        case.violator.next_token(u)
    rows = []
    for label, net in zip(("Q1 completer", "Q2 violator"), nets):
        tf = best_time(lambda: evaluate(net, ps), repeat)
        te = best_time(lambda: exact_evaluate(net, ps.prefixes), repeat)
        tb = best_time(lambda: enclose(net, ps.maximal, ps.prefixes), repeat)
        ev = exact_evaluate(net, ps.prefixes)
        model = case.completer if label.startswith("Q1") else case.violator
        tc = best_time(lambda: check_model_exact(net, model, ps, data=case.data, evaluation=ev), repeat)
        rows.append([label, f"{len(ps):,}", f"{sum(p.numel() for p in net.parameters()):,}", f"{tf:.3f}", f"{te:.3f}",
                     f"{te / tf:.1f}x", f"{tb:.3f}", f"{tc:.3f}"])
    lines = markdown_table(["network (aⁿbⁿ n ≤ %d, compiled)" % n_max, "prefixes", "parameters", "float pass (s)",
                            "exact pass (s)", "exact / float", "float enclosure (s)",
                            "exact bounds: TV, KL, |Δlog p| (s)"], rows)
    tw = best_time(lambda: certify_compiled(case, ps, *nets), repeat)
    return lines + ["", f"Whole exact certificate of the pair (both exact passes, bounds, both enclosures as the "
                        f"cross-check, the design check, certified greedy on 251 OOD prompts): {tw:.2f} s."]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--write", action="store_true", help="write the section of BENCHMARKS.md")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--n-max", type=int, default=16, help="aⁿbⁿ with n ≤ this (default 16, the proof check's)")
    ap.add_argument("--repeat", type=int, default=3, help="best of this many runs (default 3)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    body = "\n".join([f"### Exact evaluation of the compiled pair ({args.threads} thread(s), CPU, best of {args.repeat})",
                      ""] + bench(args.n_max, args.repeat))
    from benchmarks.report import publish

    return publish(body, args.write, "exact", "Exact evaluator", "python -m benchmarks.bench_exact")


if __name__ == "__main__":
    raise SystemExit(main())
