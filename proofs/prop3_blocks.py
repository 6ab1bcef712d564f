"""Proposition 3, every block: each map of :func:`proofs.finetuning.standard_maps` — qk, vo and
ReLU-MLP scalings with per-head and per-layer alphas, head and hidden-unit permutations — read step by
step from its real :class:`~constructions.finetuning.maps.ParameterMap` and proved, in sympy with
matrix symbols of symbolic sizes, to leave every block's output unchanged; for any width, head count
and depth and every LayerNorm placement by the stated lifting and induction
(:mod:`theory.symbolic_blocks`).

torch (to build the real maps) and sympy are imported inside the check, so ``nonid prove --list``
stays fast and a machine without torch reports the check as ``unknown``.
"""

from __future__ import annotations

from typing import Any, Mapping

from proofs import ProofCheck
from theory.certificate import Certificate, Status, library_versions

CHECK = "prop-3-blocks"
TITLE = "Prop. 3: each map preserves every block (any width, heads, depth, LN)"
STANDARD = ("proofs.finetuning.standard_maps on the standard Proposition 3 configuration (qk and vo scalings with "
            "per-head alphas, ReLU-MLP scalings with per-layer alphas, the same three with power-of-two alphas, head "
            "and hidden-unit permutations)")
CLAIM_TEMPLATE = (
    "For each map of {maps}, "
    "read step by step from its ParameterMap with every factor as a power of a positive symbol: in every block it "
    "touches, the attention scores, each head's output A(XW_V + 1b_V)W_O for any attention matrix A, the sum over "
    "heads plus b_O, and the ReLU MLP's output are the same matrix expressions as before, for symbolic sizes "
    "(n positions, d_model, d_head, d_mlp) and every value of the symbols; hence, by the elementwise lifting of "
    "max(0, alpha z) = alpha max(0, z) and induction over layers, the logits are unchanged for every width, head "
    "count, depth and LayerNorm placement (pre, post, none)."
)
CLAIM = CLAIM_TEMPLATE.format(maps=STANDARD)
ASSUMPTIONS = (
    "decided by sympy: each score, head-output, head-sum and MLP identity (expanded to a zero matrix expression, "
    "matrix symbols of symbolic sizes, factors as positive symbols); the scalar lemma max(0, alpha z) = "
    "alpha max(0, z) for alpha > 0 (cases z > 0 and z <= 0); the composed logits of the n_layers-deep network, "
    "with uninterpreted functions for embedding, LayerNorms, blocks and unembedding, for pre-, post- and no LN",
    "read, not proved: each float factor is read as a^p (p in +-1, +-2) of an earlier factor a when within 2 ulp "
    "of it (exact rationals), else as a new positive symbol; the proof is about that reading of the map",
    "argued: ReLU acts elementwise, so the scalar lemma gives ReLU(cZ) = c ReLU(Z) for a matrix Z and c > 0; "
    "a head's or unit class's coordinates reordered by a permutation reorder a finite sum; a head or layer the "
    "map does not touch keeps identical parameters",
    "argued: the identities hold for a free input X, so for X = LN(x) (pre-LN) and X = x (post-LN, none); the "
    "softmax, the causal mask and the 1/sqrt(d_head) scale act on identical scores; the maps touch no "
    "LayerNorm, embedding, unembedding, output bias or residual connection (checked from the steps), so by "
    "induction over layers every residual stream and the logits are the same function of the tokens",
    "a falsified verdict means an identity's residual did not reduce to zero and does not vanish at the map's "
    "own factors: a non-zero multiple of a product of independent matrix symbols, non-zero for generic "
    "parameters; for GELU or tanh, sigma(cz) - c sigma(z) has an exactly non-zero derivative at z = 0",
)


def standard_block_maps() -> dict:
    """The maps of :func:`proofs.finetuning.standard_maps`, built for the standard Proposition 3
    configuration.  The maps depend only on the configuration (shapes), not on θ, so an untrained model
    of that configuration stands in for the pretrained one (saving its 150 Adam steps)."""
    from constructions import finetuning as ft
    from constructions.transformer import DecoderTransformer
    from proofs.finetuning import standard_maps

    return standard_maps(DecoderTransformer(ft.Proposition3Setup().config))


def check_blocks(maps: Mapping[str, Any] | None = None, activation: str = "relu") -> Certificate:
    """The ``prop-3-blocks`` certificate for ``maps`` (default: :func:`standard_block_maps`).

    Raises:
        InvalidReparametrisation, InvalidModelConfig: as :func:`theory.symbolic_blocks.prove_blocks`.
    """
    claim = CLAIM if maps is None else CLAIM_TEMPLATE.format(maps=f"the given maps {sorted(map(str, maps))}")
    claim = claim.replace("the ReLU MLP's", "the MLP's") if activation != "relu" else claim
    if maps is None:
        try:
            import torch  # noqa: F401
        except ImportError:
            return Certificate(check=CHECK, claim=CLAIM, status=Status.UNKNOWN, method="symbolic",
                               detail="torch not installed",
                               reason="torch is not installed; building the real parameter maps needs it")
        maps = standard_block_maps()
    from theory.symbolic_blocks import prove_blocks

    proof = prove_blocks(maps, activation=activation)
    status = Status(proof.status)
    problems = proof.failures or proof.outside
    detail = (f"{len(proof.identities)} identities over {len(maps)} maps, symbolic sizes; "
              f"LN pre/post/none; {activation}")
    return Certificate(
        check=CHECK, claim=claim, status=status, method="symbolic", detail=detail,
        reason="; ".join(problems[:3]) + (f" (+{len(problems) - 3} more)" if len(problems) > 3 else ""),
        quantities=proof.quantities, assumptions=ASSUMPTIONS, versions=library_versions("sympy", "torch"),
    )


CHECKS: list[ProofCheck] = [ProofCheck(CHECK, TITLE, check_blocks)]
