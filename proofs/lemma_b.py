"""Lemma B (identification on the support).  KL(P ‖ Q) = 0 iff q(· | u) = p(· | u) for every
u ∈ S(P).  Checked on every instance in both directions: the model that copies p on S(P) (and is
arbitrary elsewhere) has KL exactly 0; and for *each* support prefix u, changing that one row to any
other row makes KL certified > 0 (rigorous interval sign)."""

from __future__ import annotations

import random

from proofs import ProofCheck
from proofs.instances import lemma_instances
from theory.certificate import Certificate, Status, library_versions
from theory.instances import random_row
from theory.losses import kl_divergence
from theory.models import PatchedModel, SupportExtension

CLAIM = ("Instance check of Lemma B: on each of the {n} instances of proofs.instances, the copy of p on the support has "
         "KL(P || Q) = 0 exactly, and changing its row at any one support prefix (every one, once) makes KL > 0.  The "
         "z3 checks state it for every model at fixed horizons; the proof for every alphabet, horizon and finite "
         "support is coq-core's (Coq theorem lemma_B_seq).")


def check() -> Certificate:
    rng = random.Random(11)
    failures, undecided, perturbed = [], [], 0
    instances = lemma_instances()
    for inst in instances:
        copy = SupportExtension(inst.data, inst.model, name=f"{inst.name}-copy")
        if not kl_divergence(inst.data, copy).is_zero:
            failures.append(f"{inst.name}: copy of p has KL != 0")
        for u in inst.data.support_prefixes():
            p = inst.data.conditional(u)
            row = random_row(rng, inst.data.alphabet, positive=False)
            while row == p:
                row = random_row(rng, inst.data.alphabet, positive=False)
            perturbed += 1
            sign = kl_divergence(inst.data, PatchedModel(copy, {u: row})).sign()
            if sign is None:
                undecided.append(f"{inst.name}@{u!r}")
            elif sign <= 0:
                failures.append(f"{inst.name}: changing q(.|{u!r}) left KL = 0")
    status = Status.FALSIFIED if failures else Status.UNKNOWN if undecided else Status.VERIFIED
    return Certificate(
        check="lemma-b", claim=CLAIM.format(n=len(instances)), status=status, method="exact",
        detail=f"{len(instances)} instances, {perturbed} support rows perturbed",
        reason="; ".join(failures) or (f"sign undecided at {undecided}" if undecided else ""),
        quantities={"instances": [i.name for i in instances], "support_rows_perturbed": perturbed},
        versions=library_versions("mpmath"),
    )


CHECKS = [ProofCheck("lemma-b", "Lemma B (identification on the support), on 7 instances", check)]
