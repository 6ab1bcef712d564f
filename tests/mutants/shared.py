"""Fixtures and verdict helpers shared by more than one catalogue module (a catalogue module never
imports another one).

* the exact witness over the instance of :func:`tests.oracles.ab_aab` (P uniform on {ab, aab}; Q₁ and
  Q₂ copy p(·|u) on the support and differ only at ``b``: φ(Q) = q(a | b) is 1 vs 0) — :func:`copy`,
  :func:`q_at_b`, :func:`witness`, :func:`check` — and the cached rule-extrapolation cases
  (:func:`rule_case`);
* the torch fixtures, each built once per process: the compiled aⁿbⁿ pair for n ≤ :data:`N_MAX`
  (:func:`compiled_anbn`), the exported n ≤ 3 pair (:func:`anbn_pair`) and fresh counterexample
  folders of it (:func:`written`), a forger's re-signing (:func:`rehash`), the library's verdict on a
  folder (:func:`fresh`) and the command line's (:func:`cli_verdict`).

A mutant never changes a cached object: it clones or copies what it breaks.
"""

from __future__ import annotations

import contextlib
import functools
import io
import tempfile
from pathlib import Path

from tests.mutants.registry import ACCEPTED, verdict
from tests.oracles import (
    A,
    ab_aab,
    rehash,  # noqa: F401  (re-exported for the mutant modules)
)
from theory import EOS, FiniteDistribution, PatchedModel, SupportExtension, Witness, check_witness
from theory.models import uniform_model

N_MAX = 4
"""aⁿbⁿ with n ≤ 4 for the compiled pair: ≈1,100 prefixes, both networks compiled in a tenth of a second."""


# ---- the exact witness -----------------------------------------------------------------------------------
def copy(P: FiniteDistribution | None = None, patches=None, name: str = "copy") -> PatchedModel:
    """A model equal to p(·|u) on S(P), uniform elsewhere, with ``patches`` on top."""
    P = P or ab_aab()
    return PatchedModel(SupportExtension(P, uniform_model(A)), patches or {}, name=name)


def q_at_b(q) -> object:
    """The property φ(Q) = q(a | b)."""
    return q.next_token("b").prob("a")


def witness(q1=None, q2=None, *, P=None, epsilon=0, delta=1, depth=None, tails=(None, None)) -> Witness:
    """The witness "q(a | b) is not identified by the loss" over P (default :func:`ab_aab`)."""
    P = P or ab_aab()
    return Witness(
        name="mutant", claim="q(a | b) is not identified by the loss", data=P,
        q1=q1 or copy(P, {"b": {"a": 1}}, "Q1"), q2=q2 or copy(P, {"b": {EOS: 1}}, "Q2"),
        prop=q_at_b, property_name="q(a | b)", epsilon=epsilon, delta=delta, depth=depth, kl_tail_bounds=tails)


def check(w: Witness) -> str:
    """The verdict of :func:`theory.check_witness` on ``w``."""
    return verdict(lambda: check_witness(w))


@functools.lru_cache(maxsize=None)
def rule_case(name: str):
    """The rule-extrapolation case ``name`` (aⁿbⁿ summed to depth 8, the others with n_max = 6)."""
    from constructions.rule_extrapolation import build_case

    return build_case(name, depth=8) if name == "anbn" else build_case(name, n_max=6)


# ---- torch fixtures ----------------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def compiled_anbn():
    """(case, prefix set, compiled completer Q1, compiled violator Q2) for aⁿbⁿ, n ≤ N_MAX."""
    from constructions.compile import compile_model
    from constructions.export import case_prefixes, load_case

    case = load_case("anbn", N_MAX)
    ps = case_prefixes(case)
    return case, ps, compile_model(case.completer, ps)[0], compile_model(case.violator, ps)[0]


@functools.lru_cache(maxsize=None)
def anbn_pair():
    """The exported network pair of aⁿbⁿ, n ≤ 3 (what ``nonid counterexample`` builds)."""
    from constructions.export import build_pair, load_case

    return build_pair(load_case("anbn", 3))


@contextlib.contextmanager
def written(pair=None):
    """A fresh counterexample directory of ``pair`` (default the cached :func:`anbn_pair`), deleted afterwards."""
    from constructions.export import write_directory

    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / "cx"
        write_directory(pair or anbn_pair(), d, n_max=3)
        yield d




def fresh(d: Path):
    """The library verdict on a directory: the fresh certificate (files refused by a typed error)."""
    from constructions.export import verify_directory

    return verify_directory(d)[1]


def cli_verdict(argv: list[str]) -> str:
    """The command line's verdict: ``verified`` for exit 0, else ``exit N`` (output swallowed)."""
    from nonid.cli import main

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        v = verdict(lambda: main(argv))
    return ACCEPTED if v == "exit 0" else v
