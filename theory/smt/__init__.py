"""The z3 back-end: Lemmas A, B, C of docs/theory.md §2 proved over the finite-horizon model space, the
per-node Gibbs lemma, and synthesis of rule-(non)extrapolating models with exact rational rows.

**Model space at horizon L.**  Every prefix u with |u| ≤ L gets a next-token row over Σ ∪ {EOS} as
z3 Reals (non-negative, summing to one; EOS forced at |u| = L, so sequences have length ≤ L): for
{a, b} and L = 12 that is 3·(2¹³ − 1) = 24,573 variables per model (:func:`model_space_size`).  A
data distribution at horizon L is free too: end masses P({u}) ≥ 0, prefix masses P(u) by the flow
equations P(u) = P({u}) + Σ_a P(ua), P(ε) = 1.

**Encodings** (``encoding=``):

* ``"monolithic"`` — one query: every node's facts plus the negated claim; z3 does all the case
  analysis (is P(u) > 0 or not?) itself.  It does not scale: the per-node case splits are found one
  conflict at a time, each undoing the search so far (measured times: see BENCHMARKS.md, "z3 Lemmas
  A/B/C by horizon").  For small horizons and cross-checking.
* ``"modular"`` (default) — a node lemma per node shape (internal, leaf), each a small z3 query that
  contains all the case analysis, then one *assembly* query over the whole horizon-L space in which
  every node u carries the node lemma's instance ``F_u ∧ I_children → I_u``.  ``F_u`` names the
  node's facts (asserted: ``F_u`` and ``F_u → facts_u``) and ``I_u`` the node invariant (asserted:
  ``I_u ↔ invariant_u``, e.g. "P(u) ≥ 0 and G₁(u) = G₂(u)"); the instantiation check below makes
  each such implication the node lemma renamed to u.  z3 then refutes the negated claim
  (about the root's invariant terms) by propagation — the case analysis lives in the node lemmas, z3
  checks that their instances fit together over all 2^(L+1) − 1 nodes.  The verdict is ``verified``
  only if every query is ``unsat``.

The modular proof is sound only because each node-lemma instance is checked to *be* the node lemma at
that node (:mod:`theory.smt.instantiation`); the false ``variant="root-only"`` statements, which must
come back ``falsified``, are described in :mod:`theory.smt.encodings`.

Every query's text is SMT-LIB 2 generated here and parsed by z3 (fast); z3 is imported lazily, never
by ``import theory``.  Each result is a frozen :class:`SMTResult` listing the axiom instances the
query assumes — a certificate must copy them as assumptions.

Layout (a module imports only modules listed before it; this package re-exports their public names):

* :mod:`~theory.smt.query` — :class:`SMTResult`, budgets, SMT-LIB text, one z3 call;
* :mod:`~theory.smt.space` — the horizon-L model space: the trie of prefixes, row and flow facts;
* :mod:`~theory.smt.encodings` — Lemmas A, B, C as node-local specifications (and their false variants);
* :mod:`~theory.smt.instantiation` — the node lemmas and the instantiation check;
* :mod:`~theory.smt.lemmas` — the provers: monolithic query or modular assembly, :func:`prove_lemmas`;
* :mod:`~theory.smt.gibbs` — the per-node Gibbs lemma;
* :mod:`~theory.smt.synthesis` — synthesis of (non)extrapolating models and their exact re-check.
"""

# The public API (__all__) and, each imported "as" itself, the private names that tests/test_smt.py and
# tests/mutants/smt_mutants.py reach for (the lemma specifications, the trie, the prover, the node lemmas and
# the instantiation check).  _prove looks _instance_error up here at call time, so a test that replaces
# theory.smt._instance_error replaces the check.
from theory.languages import RuleLike  # a rule: a theory.languages automaton or a callable word -> bool
from theory.smt.encodings import _LemmaA as _LemmaA
from theory.smt.encodings import _LemmaB as _LemmaB
from theory.smt.encodings import _LemmaC as _LemmaC
from theory.smt.gibbs import prove_node_gibbs
from theory.smt.instantiation import _instance_error as _instance_error
from theory.smt.instantiation import _node_lemma as _node_lemma
from theory.smt.instantiation import _renaming as _renaming
from theory.smt.lemmas import _prove as _prove
from theory.smt.lemmas import prove_lemma_a, prove_lemma_b, prove_lemma_c, prove_lemmas
from theory.smt.query import DEFAULT_MAX_VARIABLES, DEFAULT_TIMEOUT_MS, MAX_COUNTERMODEL_ENTRIES, SMTResult, z3_version
from theory.smt.space import _Node as _Node
from theory.smt.space import _Tree as _Tree
from theory.smt.space import model_space_size
from theory.smt.synthesis import Recheck, SynthesisResult, recheck_synthesis, synthesize_extrapolator

__all__ = [
    "SMTResult", "SynthesisResult", "Recheck", "model_space_size", "prove_lemma_a", "prove_lemma_b",
    "prove_lemma_c", "prove_lemmas", "prove_node_gibbs", "synthesize_extrapolator", "recheck_synthesis", "z3_version",
    "DEFAULT_TIMEOUT_MS", "DEFAULT_MAX_VARIABLES", "MAX_COUNTERMODEL_ENTRIES", "RuleLike",
]
