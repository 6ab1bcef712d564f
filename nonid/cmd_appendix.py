"""``nonid appendix --out DIR``: the paper appendix — every certificate, table and figure as LaTeX,
Markdown and images — from certificates only.

    nonid appendix --out DIR [--force] [--only NAME ...] [--experiment RUNS | --experiment-steps N]
                   [--z3-horizons 2,4,6,8,10] [--alphas 0.25,0.5,1,2,4] [--no-models] [--compile]
    nonid appendix --out DIR --from FILE_OR_DIR      (rebuild from saved certificates)

Prints one line per certificate as it is made (as ``nonid prove`` does), then the files written and
how ``appendix.tex`` was checked.  Exit 0 when every certificate is verified, 1 when any is falsified
or unknown (the appendix is written either way and shows them as such), 2 for bad input: an output
folder that is not an earlier appendix or holds files it did not write (refused even with ``--force``), an
earlier appendix without ``--force``,
saved certificates of an incompatible format or too large, an unknown check, an unreadable
experiment folder.

``--from`` reads certificates back and re-checks what is cheap to re-run (every ``nonid prove`` check,
the z3 horizon series, the fine-tuning alpha series; :mod:`nonid.appendix.readback`), comparing each
saved certificate with its re-run exactly (timings aside).  A disagreement is printed (one line naming
the check and the first differing field), the re-run goes into the appendix, and the exit status is 1.
What cannot be re-run here (the trained experiment, the model pair) is marked "read back, not
re-checked" in every output, and the exit status is 1 unless every certificate was re-checked.
"""

from __future__ import annotations

import argparse
import time

from proofs.cli import format_header
from theory.certificate import status_counts
from theory.errors import NonidError


class AppendixOptionError(NonidError):
    """A malformed appendix option."""


def _numbers(text: str, kind: type, what: str) -> tuple:
    if text.strip() in ("", "none"):
        return ()
    try:
        return tuple(kind(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise AppendixOptionError(f"{what} {text!r} is not a comma-separated list of numbers") from None


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("appendix", help="write the paper appendix (LaTeX, Markdown, figures, certificates.json)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (written atomically)")
    p.add_argument("--force", action="store_true",
                   help="replace DIR when it is an earlier appendix (its manifest.json) exactly as it was written; a "
                        "folder holding anything else is refused even with --force")
    p.add_argument("--from", dest="from_path", metavar="FILE", default=None,
                   help="build from saved certificates (an appendix's certificates.json or folder, or `nonid prove --json` "
                        "output): proof checks and the z3/alpha series are re-run and must agree exactly (else reported, "
                        "exit 1); the rest is marked 'read back, not re-checked' everywhere and makes the exit status 1")
    p.add_argument("--only", action="append", default=[], metavar="NAME",
                   help="proof checks to include (as `nonid prove --only`; repeatable; default all)")
    p.add_argument("--experiment", metavar="RUNS", default=None,
                   help="take the empirical runs from an earlier `nonid experiment rule-extrapolation --out RUNS`")
    p.add_argument("--experiment-steps", type=int, default=None, metavar="N",
                   help="otherwise train L3 x lstm x (ml, adversarial, oracle), 1 seed, N steps on the CPU "
                        "(default 1500, about 15 s; 0 leaves the experiment out)")
    p.add_argument("--experiment-arch", default="lstm", help="architecture of those runs (default lstm)")
    p.add_argument("--z3-horizons", default="2,4,6,8,10", metavar="L,...",
                   help="horizons of the z3-time-vs-horizon series (default 2,4,6,8,10; 'none' leaves it out)")
    p.add_argument("--alphas", default="0.25,0.5,1,2,4", metavar="A,...",
                   help="alphas of the fine-tuning gap series (default 0.25,0.5,1,2,4; 'none' leaves it out)")
    p.add_argument("--no-models", action="store_true", help="do not build and write the compiled counterexample pair")
    p.add_argument("--compile", action="store_true", help="also compile appendix.tex with pdflatex (when installed)")
    p.add_argument("--quiet", action="store_true", help="no per-certificate lines")
    return p


# Measured on the project's 2-core machine (BENCHMARKS.md, the appendix and prove sections; `nonid prove`
# runs its 37 checks in about 30 s): seconds of an average proof check, of one lemma's z3 proof at horizon 10 (fourfold per two horizons either way),
# of one fine-tuning twin, and of building and checking the model pair.  The estimate is "about".
_CHECK_S, _HORIZON_S, _ALPHA_S, _MODELS_S = 0.8, 0.8, 0.25, 3.0
_COQ_S = 15.0


def _estimate(args: argparse.Namespace, horizons: tuple, alphas: tuple, steps: int) -> str:
    """The one line printed before the work: what will be computed and a rough time on 2 cores."""
    import proofs
    from empirical.names import estimate_seconds

    selected = proofs.select(proofs.discover(), args.only)
    checks = len(selected)
    # coq-core compiles the Coq development from source (bench_coq: about 15 s on 2 cores), not a typical check
    coq = _COQ_S if any(c.name == "coq-core" for c in selected) else 0.0
    z3 = sum(_HORIZON_S * 4 ** ((h - 10) / 2) for h in horizons)
    from nonid.appendix.sources import EXPERIMENT_SEEDS, experiment_jobs

    runs = 0 if args.experiment or steps == 0 else 3 * EXPERIMENT_SEEDS
    train = estimate_seconds([args.experiment_arch], ["ml", "adversarial", "oracle"], EXPERIMENT_SEEDS, steps, "cpu",
                             jobs=experiment_jobs(steps)) if runs else 0.0
    total = checks * _CHECK_S + coq + 3 * z3 + len(alphas) * 3 * _ALPHA_S + (train or 0.0) + (0 if args.no_models else _MODELS_S)
    def many(n: int, word: str) -> str:
        return f"{n} {word}" + ("" if n == 1 else "s")

    parts = [many(checks, "proof check"), f"z3 series at {many(len(horizons), 'horizon')}" if horizons else "",
             f"fine-tuning series of {many(len(alphas), 'alpha')}" if alphas else "",
             f"experiment {runs} runs x {steps:,} steps" if runs else "", "" if args.no_models else "the model pair"]
    return f"estimate: {', '.join(p for p in parts if p)}; about {total:.0f} s on 2 cores"


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from nonid.appendix import Options, check_output_dir, compile_appendix, write_appendix
    from nonid.appendix.sources import NAME_WIDTH, READ_BACK, RERUN
    from nonid.appendix.texcheck import check_latex, latex_engine

    check_output_dir(args.out, args.force)
    if args.from_path and (args.only or args.experiment or args.experiment_steps is not None):
        raise AppendixOptionError("--from builds from saved certificates; it takes no --only, --experiment or --experiment-steps")
    if args.experiment and args.experiment_steps is not None:
        raise AppendixOptionError("--experiment takes the runs from a folder and --experiment-steps trains new ones: give one")
    steps = 1500 if args.experiment_steps is None else args.experiment_steps
    if steps < 0:
        raise AppendixOptionError(f"--experiment-steps {steps} must be 0 or more")
    if args.experiment_arch != "lstm":
        if args.experiment or args.from_path or steps == 0:
            raise AppendixOptionError("--experiment-arch applies only when the appendix trains its own runs "
                                      "(not with --experiment, --from or --experiment-steps 0)")
        from empirical.names import check_architecture

        check_architecture(args.experiment_arch)
    horizons = _numbers(args.z3_horizons, int, "--z3-horizons")
    if any(h < 1 or h > 14 for h in horizons):
        raise AppendixOptionError(f"--z3-horizons {args.z3_horizons!r}: each horizon must be in 1..14")
    alphas = _numbers(args.alphas, float, "--alphas")
    if any(not a > 0 for a in alphas):
        raise AppendixOptionError(f"--alphas {args.alphas!r}: each alpha must be positive")
    if args.only:
        import proofs

        proofs.select(proofs.discover(), args.only)  # an unknown name is refused before any work
    if args.experiment:
        from empirical.certificate import load_rows

        load_rows(args.experiment)  # an unreadable experiment folder too (bounded reads: cheap)
    options = Options(only=tuple(args.only), horizons=horizons, alphas=alphas, experiment_dir=args.experiment,
                      experiment_steps=steps, experiment_arch=args.experiment_arch, models=not args.no_models)
    if not args.from_path:
        print(_estimate(args, horizons, alphas, steps), flush=True)
    start = time.perf_counter()
    echo = (lambda _m: None) if args.quiet else (lambda m: print(m, flush=True))
    if not args.quiet:
        print(format_header(NAME_WIDTH, "certificate", "provenance" if args.from_path else "detail"), flush=True)
    entries, figures = write_appendix(args.out, options=options, from_path=args.from_path, force=args.force, echo=echo)
    out = Path(args.out)
    counts = status_counts(entries)
    unchecked = [e.check for e in entries if e.provenance == READ_BACK]
    disagreed = [e for e in entries if e.provenance == RERUN]
    for e in disagreed:  # one line each, whatever --quiet says: they are why the exit status is 1
        print(f"{e.check}: {e.note}")
    problems = check_latex((out / "appendix.tex").read_text())
    if problems:  # a bug of the writer: say so loudly, the files stay for inspection
        print(f"appendix.tex: the LaTeX check found {len(problems)} problems, first: {problems[0]}")
        return 1
    how = "checked by the LaTeX-aware parser (nonid.appendix.texcheck): balanced, known commands"
    if args.compile:
        if latex_engine() is None:
            how += "; --compile: no pdflatex installed"
        else:
            ok, log = compile_appendix(out)  # leaves DIR/appendix.pdf, listed in the manifest
            if not ok:
                print(f"appendix.tex: pdflatex failed:\n{log}")
                return 1
            how = "compiled with pdflatex (two-column article, booktabs, graphicx) and checked by the parser"
    names = ["appendix.tex", "appendix.md", "certificates.json", "timings.json", "manifest.json"]
    if (out / "appendix.pdf").is_file():
        names.insert(1, "appendix.pdf")
    names += [f"figures/{f.name}.{{pdf,png}}" for f in figures]
    if (out / "counterexample-anbn").is_dir():
        names.append("counterexample-anbn/")
    print(f"wrote {out}/: {', '.join(names)}")
    print(f"appendix.tex: {how}")
    readback = ""
    if args.from_path:
        readback = f"; {len(entries) - len(unchecked) - len(disagreed)} re-checked"
        if disagreed:
            readback += f", {len(disagreed)} disagreed with their re-run (shown re-run)"
        if unchecked:
            readback += f", {len(unchecked)} {READ_BACK} ({', '.join(unchecked)})"
    print(f"{len(entries)} certificates: {counts['verified']} verified, {counts['falsified']} falsified, "
          f"{counts['unknown']} unknown{readback}  ({time.perf_counter() - start:.1f}s)")
    return 0 if counts["verified"] == len(entries) and not unchecked and not disagreed else 1
