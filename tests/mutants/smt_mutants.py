"""Mutants of the z3 lemma proofs (theory.smt): false lemmas that differ from the true ones only at the
root, and modular assemblies whose node-lemma instances are wired wrongly.

* ``smt-root-only-lemma-{a,b,c}-{modular,monolithic}`` — the lemma with its statement altered at the
  root only (``variant="root-only"``: Lemma A without the agreement hypothesis at ε, i.e. claiming
  that the cross-entropy does not depend on the root row either; Lemma B with the root's condition
  dropped from the conclusion; Lemma C without the per-node fact KL_ε ≥ 0).  Each is false; both
  encodings must answer ``falsified`` (sat of the negation).  The modular encoding may not trust the
  node lemma at the root, since the root is not an instance of it.
* ``smt-instance-miswired`` — a modular assembly in which node 'a' instantiates the node lemma with
  its second child's mass wired to its sibling 'b' (test hook ``rewire``): the instantiation check
  refuses, ``unknown``.
* ``smt-root-variant-posing-as-instance`` — a root-only false Lemma B whose spec wrongly declares the
  root an instance of the generic node lemma (the hole: trusted, the node lemma would "prove" the
  false claim): the instantiation check catches the root, ``unknown``.

Controls: the true lemma through the same encoding (and the same spec class / no rewiring) →
``verified``.  Horizon 4 (31 nodes): each mutant runs in well under a second.
"""

from __future__ import annotations

from tests.mutants.registry import mutant, verdict

HORIZON = 4
TIMEOUT_MS = 20_000


def _root_only(letter: str, encoding: str, mutate: bool) -> str:
    from theory import smt

    prove = {"a": smt.prove_lemma_a, "b": smt.prove_lemma_b, "c": smt.prove_lemma_c}[letter]
    return verdict(lambda: prove(HORIZON, encoding=encoding, timeout_ms=TIMEOUT_MS,
                                 variant="root-only" if mutate else None))


@mutant("smt-root-only-lemma-a-modular", "smt", "falsified")
def _a_modular(mutate: bool) -> str:
    """Lemma A claiming independence from the root row too (no agreement assumed at ε), modular encoding."""
    return _root_only("a", "modular", mutate)


@mutant("smt-root-only-lemma-a-monolithic", "smt", "falsified")
def _a_monolithic(mutate: bool) -> str:
    """Lemma A claiming independence from the root row too (no agreement assumed at ε), monolithic encoding."""
    return _root_only("a", "monolithic", mutate)


@mutant("smt-root-only-lemma-b-modular", "smt", "falsified")
def _b_modular(mutate: bool) -> str:
    """Lemma B with the root's condition dropped (KL = 0 iff q = p at every support prefix but ε), modular."""
    return _root_only("b", "modular", mutate)


@mutant("smt-root-only-lemma-b-monolithic", "smt", "falsified")
def _b_monolithic(mutate: bool) -> str:
    """Lemma B with the root's condition dropped (KL = 0 iff q = p at every support prefix but ε), monolithic."""
    return _root_only("b", "monolithic", mutate)


@mutant("smt-root-only-lemma-c-modular", "smt", "falsified")
def _c_modular(mutate: bool) -> str:
    """Gibbs' inequality without the per-node fact KL_ε >= 0 at the root only, modular encoding."""
    return _root_only("c", "modular", mutate)


@mutant("smt-root-only-lemma-c-monolithic", "smt", "falsified")
def _c_monolithic(mutate: bool) -> str:
    """Gibbs' inequality without the per-node fact KL_ε >= 0 at the root only, monolithic encoding."""
    return _root_only("c", "monolithic", mutate)


@mutant("smt-instance-miswired", "smt", "unknown")
def _miswired(mutate: bool) -> str:
    """Modular Lemma B whose instance at node 'a' takes its second child's mass from the sibling 'b'
    (P(ab) wired to P(b)): the instantiation check must refuse the node."""
    from theory import smt

    rewire = {1: {"mu1": "m2"}} if mutate else None  # node 1 = 'a', its children 3 = 'aa', 4 = 'ab'; 2 = 'b'
    spec = smt._LemmaB(3)
    return verdict(lambda: smt._prove(spec, "ab", HORIZON, "modular", TIMEOUT_MS, smt.DEFAULT_MAX_VARIABLES,
                                      rewire=rewire))


@mutant("smt-root-variant-posing-as-instance", "smt", "unknown")
def _posing(mutate: bool) -> str:
    """A root-only false Lemma B whose spec declares every node, the root included, an instance of the
    generic node lemma: trusted there, the node lemma would prove the false claim."""
    from theory import smt

    class EveryNodeAnInstance(smt._LemmaB):
        def instance(self, n: object) -> bool:
            return True

    spec = EveryNodeAnInstance(3, variant="root-only" if mutate else None)
    return verdict(lambda: smt._prove(spec, "ab", HORIZON, "modular", TIMEOUT_MS, smt.DEFAULT_MAX_VARIABLES))
