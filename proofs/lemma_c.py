"""Lemma C (Gibbs).  KL(P ‖ Q) ≥ 0, so the entropy H(P) is the minimum test loss.  Checked on every
instance against twenty random models each (some with zero probabilities, where KL may be +∞): the
sign of the exact KL is decided by rigorous interval arithmetic and must never be negative; the
cross-entropy is never below H(P); and each support node's own KL(p(·|u) ‖ q(·|u)) is ≥ 0."""

from __future__ import annotations

import random

from proofs import ProofCheck
from proofs.instances import lemma_instances
from theory.certificate import Certificate, Status, library_versions
from theory.instances import random_model
from theory.losses import chain_rule_sums, kl_contributions

CLAIM = ("Instance check of Lemma C (Gibbs): on each of the {n} instances of proofs.instances, for {m} random models "
         "each, KL(P || Q) >= 0, the cross-entropy is >= H(P), and every node's KL term is >= 0, exactly.  The statement "
         "for every model, per node, is the z3 node-Gibbs check's (for its stated outcome counts); the proof for every "
         "alphabet, horizon and finite support is coq-core's (Coq theorems gibbs and lemma_C_seq).")
MODELS_PER_INSTANCE = 20


def check() -> Certificate:
    rng = random.Random(13)
    failures, undecided, pairs, nodes = [], [], 0, 0
    instances = lemma_instances()
    for inst in instances:
        alphabet = inst.data.alphabet
        for k in range(MODELS_PER_INSTANCE):
            Q = random_model(rng, alphabet, inst.depth, positive=bool(k % 2))
            pairs += 1
            sums = chain_rule_sums(inst.data, Q)
            if sums.kl.infinite:
                continue
            s = sums.kl.sign()
            if s is None:
                undecided.append(inst.name)
            elif s < 0 or sums.cross_entropy.compare(sums.entropy) == -1:
                failures.append(f"{inst.name} model {k}")
            for u, v in kl_contributions(inst.data, Q).items():
                nodes += 1
                if v.sign() == -1:
                    failures.append(f"{inst.name} model {k} node {u!r}")
    status = Status.FALSIFIED if failures else Status.UNKNOWN if undecided else Status.VERIFIED
    return Certificate(
        check="lemma-c", claim=CLAIM.format(n=len(instances), m=MODELS_PER_INSTANCE), status=status, method="exact",
        detail=f"{len(instances)} instances, {pairs} models, {nodes} node KLs",
        reason=f"negative KL at {failures}" if failures else (f"sign undecided on {undecided}" if undecided else ""),
        quantities={"instances": [i.name for i in instances], "models": pairs, "node_kls": nodes},
        versions=library_versions("mpmath"),
    )


CHECKS = [ProofCheck("lemma-c", "Lemma C (Gibbs: KL >= 0), on 7 instances", check)]
