"""``nonid icl``: certify Proposition 2 (in-context learning is ε-non-identifiable) on an instance of
your choosing, with Δ fixed before ε.

    nonid icl [--instance learning|ginc] [--k K] [--n 0,1,2,3] [--epsilon E] [--delta D] [--delta-icl D]
              [--lambda L] [--eta ETA] [--rho RHO] [--vocab-size V] [--prompts N] [--confidence C] [--seed S] [--json]

* ``learning`` (default) — the designed instance ``nonid prove`` certifies (2 entities × 3 properties,
  vocabulary 5, two concepts), with your ``--eta``/``--rho``: every prompt with n ≤ 4 examples is
  enumerated with its exact probability, and the checks are the ICL effect of P itself, the local
  surgery, the mixture with THEORY's literal no-ICL R, and the two every-ε constructions (k = 2 only;
  other k make them ``unknown`` with the reason).
* ``ginc`` — Xie et al.'s GINC sizes (10 × 10 states, vocabulary ``--vocab-size``, 5 + 5 concepts) with
  ``--prompts`` prompts drawn i.i.d. per n: the surgery and the mixture on the drawn prompts, with
  Clopper–Pearson population intervals at ``--confidence`` beside them (named as such in the output).

Prints the certificates as ``nonid prove`` does (or one JSON list with ``--json``).  Exit 0 when every
certificate is verified, 1 otherwise, 2 for bad input (one line on stderr, decided before any numerical
library is imported): k < 2, an n < 0 or a list without n = 0, ε outside (0, 1), Δ outside (0, 1],
λ outside (½, 1), η = 0 (zero transitions: prompts off the support) or outside (0, 1), a vocabulary with
no label besides the delimiter, or an option that does not apply to the chosen instance.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable

from theory.errors import InapplicableOption, InvalidDistribution, InvalidHMM, InvalidPrompt, InvalidWitness

MAX_ENUMERATED_N = 4
"""The largest n the ``learning`` instance enumerates (8·8ⁿ prompts: 32,768 at n = 4)."""
INSTANCES = ("learning", "ginc")
SECONDS_PER_PROMPT_TOKEN = 4e-6
"""The GINC path's cost per prompt token (prompts × largest n × (k + 1)), rounded up from benchmarks/bench_cli.py's
timing of `nonid icl --instance ginc` on 2 CPU cores; only for the estimate printed first."""
DEFAULT_K = {"learning": 2, "ginc": 10}
DEFAULT_N = {"learning": "0,1,2,3", "ginc": "0,1,2,4,8,16,32,64"}


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser("icl", help="certify Proposition 2 (ICL is epsilon-non-identifiable) on a chosen instance")
    p.add_argument("--instance", default="learning", choices=INSTANCES,
                   help="learning (the designed instance, exact over every prompt; default) or ginc (GINC sizes, "
                        "sampled prompts)")
    p.add_argument("--k", type=str, default=None, help="example length (default 2 for learning, 10 for ginc)")
    p.add_argument("--n", default=None, metavar="N,M,...",
                   help="example counts, must include 0 (default 0,1,2,3 for learning; 0,1,2,4,8,16,32,64 for ginc)")
    p.add_argument("--epsilon", default="1/1000000", help="the KL budget epsilon in (0, 1) (default 1/1000000)")
    p.add_argument("--delta", default="3/10", help="the accuracy gap Delta in (0, 1], fixed before epsilon (default 3/10)")
    p.add_argument("--delta-icl", default=None, help="P's own ICL effect required of the instance (learning; default 3/10)")
    p.add_argument("--lambda", dest="lam", default="3/5", help="the surgery weight in (1/2, 1) (default 3/5)")
    p.add_argument("--eta", default=None,
                   help="the uniform weight mixed into every transition, in (0, 1) (default: the instance's own)")
    p.add_argument("--rho", default=None, help="learning: the concepts' switch rate (default: the instance's own)")
    p.add_argument("--vocab-size", type=str, default=None, help="ginc: vocabulary size (default 50)")
    p.add_argument("--prompts", type=str, default=None, help="ginc: prompts drawn per n (default 200)")
    p.add_argument("--confidence", default=None, help="ginc: confidence of the population intervals (default 99/100)")
    p.add_argument("--seed", type=str, default=None, help="ginc: the seed of the instance and the prompts (default 0)")
    p.add_argument("--json", action="store_true", help="print the certificates as one JSON list on stdout")
    return p


def _fraction(text: str, flag: str, error: type) -> Fraction:
    try:
        value = Fraction(str(text).strip())
    except (ValueError, ZeroDivisionError):
        raise error(f"{flag} = {text!r} is not a number (write e.g. 0.3 or 3/10)") from None
    return value


def _int(text: str, flag: str, minimum: int, error: type) -> int:
    try:
        value = int(str(text).strip())
    except ValueError:
        raise error(f"{flag} = {text!r} is not an integer") from None
    if value < minimum:
        raise error(f"{flag} = {value} must be >= {minimum}")
    return value


def _open_unit(text: str, flag: str, error: type, *, lo: Fraction = Fraction(0), hi_closed: bool = False) -> Fraction:
    v = _fraction(text, flag, error)
    if not (v > lo and (v <= 1 if hi_closed else v < 1)):
        raise error(f"{flag} = {text} must lie in ({lo}, 1{']' if hi_closed else ')'}")
    return v


@dataclass(frozen=True)
class Options:
    """The validated options of one ``nonid icl`` run (``eta``/``rho`` None: the instance's own)."""

    instance: str
    k: int
    ns: tuple[int, ...]
    epsilon: Fraction
    delta: Fraction
    delta_icl: Fraction
    lam: Fraction
    eta: Fraction | None = None
    rho: Fraction | None = None
    vocab_size: int = 50
    prompts: int = 200
    confidence: Fraction = Fraction(99, 100)
    seed: int = 0


def validate(args: argparse.Namespace) -> Options:
    """Every option, checked before numpy, sympy or mpmath are imported; the typed error names the value."""
    inst = args.instance
    for flag, value in (("--rho", args.rho), ("--delta-icl", args.delta_icl)):
        if value is not None and inst != "learning":
            raise InapplicableOption(f"{flag} applies to --instance learning only")
    for flag, value in (("--vocab-size", args.vocab_size), ("--prompts", args.prompts),
                        ("--confidence", args.confidence), ("--seed", args.seed)):
        if value is not None and inst != "ginc":
            raise InapplicableOption(f"{flag} applies to --instance ginc only (the learning instance is enumerated "
                                     "exactly, with a fixed vocabulary)")
    k = _int(args.k, "--k", 2, InvalidPrompt) if args.k is not None else DEFAULT_K[inst]
    texts = [t.strip() for t in (args.n or DEFAULT_N[inst]).split(",") if t.strip()]
    if not texts:
        raise InvalidPrompt(f"--n = {args.n!r} lists no example count")
    ns = sorted({_int(t, "--n", 0, InvalidPrompt) for t in texts})
    if ns[0] != 0:
        raise InvalidPrompt(f"--n = {args.n} must include 0 (the ICL effect is measured against n = 0)")
    if inst == "learning" and ns[-1] > MAX_ENUMERATED_N:
        raise InvalidPrompt(f"--n = {ns[-1]}: the learning instance enumerates every prompt up to n = "
                            f"{MAX_ENUMERATED_N}; for more examples use --instance ginc (sampled prompts)")
    eta = rho = None
    if args.eta is not None:
        eta = _fraction(args.eta, "--eta", InvalidHMM)
        if eta == 0:
            raise InvalidHMM("--eta = 0 gives zero transitions (ICL prompts with P(u) = 0, off the support, where "
                             "Proposition 1's epsilon = 0 argument applies); Proposition 2 needs eta > 0")
        if not 0 < eta < 1:
            raise InvalidHMM(f"--eta = {args.eta} must lie in (0, 1)")
    if args.rho is not None:
        rho = _open_unit(args.rho, "--rho", InvalidHMM)
    common = dict(instance=inst, k=k, ns=tuple(ns), eta=eta, rho=rho,
                  epsilon=_open_unit(args.epsilon, "--epsilon", InvalidDistribution),
                  delta=_open_unit(args.delta, "--delta", InvalidWitness, hi_closed=True),
                  delta_icl=_open_unit(args.delta_icl or "3/10", "--delta-icl", InvalidWitness, hi_closed=True),
                  lam=_open_unit(args.lam, "--lambda", InvalidDistribution, lo=Fraction(1, 2)))
    if inst != "ginc":
        return Options(**common)
    vocab = _int(args.vocab_size, "--vocab-size", 1, InvalidHMM) if args.vocab_size is not None else 50
    if vocab < 2:
        raise InvalidHMM(f"--vocab-size = {vocab} leaves no label besides the delimiter (the label set is empty)")
    if vocab < 3:
        raise InvalidHMM(f"--vocab-size = {vocab} leaves one label: the surgery needs a wrong label to answer with")
    return Options(**common, vocab_size=vocab,
                   prompts=_int(args.prompts, "--prompts", 1, InvalidPrompt) if args.prompts is not None else 200,
                   confidence=(_open_unit(args.confidence, "--confidence", InvalidDistribution)
                               if args.confidence is not None else Fraction(99, 100)),
                   seed=_int(args.seed, "--seed", 0, InvalidHMM) if args.seed is not None else 0)


def _timed(make: list[Callable[[], object]]) -> tuple:
    """(certificate, seconds) for each certificate ``make`` builds in turn (a generator of thunks)."""
    import time

    out = []
    for thunk in make:
        t0 = time.perf_counter()
        cert = thunk()
        out.append((cert, time.perf_counter() - t0))
    return tuple(out)


def _learning(o: Options) -> list[Callable[[], object]]:
    from constructions.icl.certify import (
        evaluate_instance,
        icl_effect_certificate,
        mixture_population_certificate,
        surgery_population_certificate,
    )
    from constructions.icl.instance import DEFAULT_ETA, DEFAULT_RHO, learning_instance
    from constructions.icl.universal import mixture_every_epsilon_certificate, surgery_every_epsilon_certificate

    knobs = {key: v for key, v in (("eta", o.eta), ("rho", o.rho)) if v is not None}
    hmm = learning_instance(rho=knobs.get("rho", DEFAULT_RHO), eta=knobs.get("eta", DEFAULT_ETA))
    name = "learning_instance(" + ", ".join(f"{key}={v}" for key, v in knobs.items()) + ")"
    k, eps, d, d_icl, lam = o.k, o.epsilon, o.delta, o.delta_icl, o.lam
    rep = evaluate_instance(hmm, k, o.ns, (eps,), name=name)  # every prompt enumerated once, for the three below
    return [lambda: icl_effect_certificate(rep, d_icl),
            lambda: surgery_population_certificate(rep, lam, eps, d, d_icl),
            lambda: surgery_every_epsilon_certificate(hmm, k, lam, d, name=name),
            lambda: mixture_population_certificate(rep, eps, d, d_icl),
            lambda: mixture_every_epsilon_certificate(hmm, k, d, name=name)]


def _ginc(o: Options) -> list[Callable[[], object]]:
    from constructions.icl import GINCConfig, build_ginc, evaluate_icl, mixture_certificate, surgery_certificate
    from constructions.icl.witness import sample_prompts_iid

    changes: dict[str, object] = {"vocab_size": o.vocab_size, **({"eta": o.eta} if o.eta is not None else {})}
    hmm = build_ginc(GINCConfig.xie(seed=o.seed, **changes))
    prompts = sample_prompts_iid(hmm, hmm.pretrain_concepts, o.ns, o.k, o.prompts, seed=o.seed)
    ev = evaluate_icl(hmm, prompts)
    return [lambda: surgery_certificate(ev, o.lam, o.epsilon, o.delta, confidence=o.confidence),
            lambda: mixture_certificate(ev, o.epsilon, o.delta, confidence=o.confidence)]


def run(args: argparse.Namespace) -> int:
    o = validate(args)
    if o.instance == "ginc":
        tokens = o.prompts * max(o.ns) * (o.k + 1)
        print(f"nonid icl: GINC sizes, {o.prompts:,} prompts (n up to {max(o.ns)}, k = {o.k}): about "
              f"{max(1, round(tokens * SECONDS_PER_PROMPT_TOKEN))} s on 2 CPU cores", file=sys.stderr)
    rows = _timed(_learning(o) if o.instance == "learning" else _ginc(o))
    certs = [c for c, _ in rows]
    if args.json:
        import json

        print(json.dumps([c.to_dict(False) for c in certs], sort_keys=True, indent=2, ensure_ascii=False))
    else:
        from proofs.cli import format_reason, format_row

        width = max(len(c.check) for c in certs)
        for c, seconds in rows:
            print(format_row(c.check, c, width, seconds=seconds))
            if not c.verified:
                print(format_reason(c.reason, width))
    return 0 if all(c.verified for c in certs) else 1
