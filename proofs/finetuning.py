"""Proposition 3 (fine-tunability is not identified by the function).  For a transformer with
softmax attention and ReLU MLPs, the maps (W_Q, b_Q, W_K, b_K) → (αW_Q, αb_Q, W_K/α, b_K/α),
(W_V, b_V, W_O) → (αW_V, αb_V, W_O/α) and (W₁, b₁, W₂) → (αW₁, αb₁, W₂/α), α > 0, leave the function —
hence every loss on every data set — unchanged, while gradients transform by the inverse scale
(∇L(Dθ) = D⁻¹∇L(θ)), so SGD from θ and from T(θ) reaches different functions; head and hidden-unit
permutations are symmetries too but gradient-equivariant, the control with no gap.  ``prop-3-symbolic``
proves it in sympy on a minimal one-layer model (:mod:`theory.symbolic_finetuning`: function and loss identities, the gradient law, and
the exact first-order difference after one SGD step, nonzero for every α ≠ 1); the other checks build
reparametrised twins of a real float64 transformer (:mod:`constructions.finetuning`), check function
equality exhaustively over every prefix the model accepts (rigorous enclosures), check that at
power-of-two α's the float passes are bitwise identical, and fine-tune both with SGD until the loss is
within δ of its floor (the lasting effect: a certified OOD total variation ≥ Δ); the short-run
(transient) gaps of SGD and Adam are reported.  ``prop-3-orthogonal-control`` separates an optimiser
equivariant to a symmetry (SGD, under an orthogonal residual change of basis) from one that is not (Adam).
The function identity of each map for every width and depth is ``prop-3-blocks`` (:mod:`proofs.prop3_blocks`).

torch and sympy are imported inside the checks, so ``nonid prove --list`` stays fast and a machine
without torch reports the numeric checks as ``unknown``.
"""

from __future__ import annotations

from typing import Callable

from proofs import ProofCheck
from theory.certificate import Certificate, Status, library_versions
from theory.symbolic_finetuning import prove_scalings

CLAIM_SYMBOLIC = (
    "On a one-layer transformer (one head, one ReLU unit, width 1, two positions, logistic loss), each of the "
    "qk, vo and mlp scalings leaves the output and the loss unchanged for every alpha > 0, multiplies each "
    "gradient entry by 1/D_i, and one SGD step from theta and T(theta) changes the output at first order in eta by "
    "amounts differing by eta*l'(f)*(1 - alpha^-2)*(|grad_up f|^2 - alpha^2 |grad_down f|^2), nonzero for every alpha != 1."
)


def check_symbolic() -> Certificate:
    proof = prove_scalings()
    ok, failures, quantities = proof.ok, proof.failures, proof.quantities
    return Certificate(
        check="prop-3-symbolic", claim=CLAIM_SYMBOLIC, status=Status.VERIFIED if ok else Status.FALSIFIED,
        method="symbolic",
        detail=f"{quantities['identities']} identities; 1st-order SGD gap != 0 for alpha != 1",
        reason="; ".join(failures[:3]) if failures else "",
        quantities=quantities,
        assumptions=("exact symbolic algebra (sympy): exp/log atoms are matched by their canonical arguments, then a "
                     "polynomial identity is decided",
                     "loss gradients follow from the output's by the chain rule dL/dtheta_i = l'(f) df/dtheta_i, so the "
                     "gradient law is checked on df and holds for every differentiable loss of the output",
                     "the ReLU is treated region by region; T(theta) lies in the same region as theta (checked)",
                     "the one-layer model has no LayerNorm: LN acts on the residual stream, outside every map; the "
                     "exhaustive checks cover LN on the real transformer"),
        versions=library_versions("sympy"),
    )


# ----------------------------------------------------------------------------------------------
# Exhaustive checks on the real transformer
# ----------------------------------------------------------------------------------------------

# One alpha per head (layer, head) and per MLP layer: distinct, not powers of two (so that the scaling
# really rounds), and mild enough that plain SGD at the setup's rate stays stable from both twins.
QK_ALPHAS = {(0, 0): 2.5, (0, 1): 0.4, (1, 0): 3.0, (1, 1): 1 / 3}
VO_ALPHAS = {(0, 0): 2.5, (0, 1): 0.4, (1, 0): 3.0, (1, 1): 1 / 3}
MLP_ALPHAS = {0: 3.0, 1: 0.4}
# The same families at powers of two: every scaled weight exact, the float pass of T(theta) bitwise theta's.
QK_ALPHAS_POW2 = {(0, 0): 2.0, (0, 1): 0.5, (1, 0): 4.0, (1, 1): 0.25}
VO_ALPHAS_POW2 = QK_ALPHAS_POW2
MLP_ALPHAS_POW2 = {0: 2.0, 1: 0.5}


def standard_maps(model) -> dict:
    """The maps the checks certify on ``model`` (a 2-layer, 2-head transformer)."""
    import torch

    from constructions import finetuning as ft

    d_mlp = model.config.d_mlp
    shuffle = torch.randperm(d_mlp, generator=torch.Generator().manual_seed(1)).tolist()
    return {
        "qk": ft.compose(*(ft.qk_scaling(model, l, h, a) for (l, h), a in QK_ALPHAS.items()), name="qk-scaling, per-head alphas"),
        "vo": ft.compose(*(ft.vo_scaling(model, l, h, a) for (l, h), a in VO_ALPHAS.items()), name="vo-scaling, per-head alphas"),
        "mlp": ft.compose(*(ft.mlp_scaling(model, l, a) for l, a in MLP_ALPHAS.items()), name="mlp-scaling, per-layer alphas"),
        "qk-pow2": ft.compose(*(ft.qk_scaling(model, l, h, a) for (l, h), a in QK_ALPHAS_POW2.items()),
                              name="qk-scaling, per-head alphas 2, 1/2, 4, 1/4"),
        "vo-pow2": ft.compose(*(ft.vo_scaling(model, l, h, a) for (l, h), a in VO_ALPHAS_POW2.items()),
                              name="vo-scaling, per-head alphas 2, 1/2, 4, 1/4"),
        "mlp-pow2": ft.compose(*(ft.mlp_scaling(model, l, a) for l, a in MLP_ALPHAS_POW2.items()),
                               name="mlp-scaling, per-layer alphas 2, 1/2"),
        "permutation": ft.compose(
            ft.head_permutation(model, 0, [1, 0]), ft.head_permutation(model, 1, [1, 0]),
            ft.hidden_unit_permutation(model, 0, shuffle), ft.hidden_unit_permutation(model, 1, list(reversed(range(d_mlp)))),
            name="head and hidden-unit permutations"),
    }


def _numeric(check: str, key: str, title: str) -> Callable[[], Certificate]:
    def run() -> Certificate:
        try:
            import torch  # noqa: F401
        except ImportError:
            return Certificate(check=check, claim=title, status=Status.UNKNOWN, method="exhaustive",
                               detail="torch not installed", reason="torch is not installed; this check needs it")
        from constructions import finetuning as ft

        setup = ft.Proposition3Setup()
        model = ft.pretrained_model(setup)
        maps = standard_maps(model)
        return ft.certify_twin(check, maps[key], model, setup, exact_map=maps.get(f"{key}-pow2"))

    run.__name__ = f"check_{key}"
    return run


check_qk = _numeric("prop-3-qk-scaling", "qk", "query/key scaling twins")
check_vo = _numeric("prop-3-vo-scaling", "vo", "value/output scaling twins")
check_mlp = _numeric("prop-3-mlp-scaling", "mlp", "ReLU-MLP scaling twins")
check_permutation_control = _numeric("prop-3-permutation-control", "permutation", "permutation control")


def check_orthogonal_control() -> Certificate:
    check = "prop-3-orthogonal-control"
    try:
        import torch  # noqa: F401
    except ImportError:
        return Certificate(check=check, claim="orthogonal control", status=Status.UNKNOWN, method="exhaustive",
                           detail="torch not installed", reason="torch is not installed; this check needs it")
    from constructions import finetuning as ft

    return ft.certify_orthogonal_control(check, ft.Proposition3Setup())

CHECKS = [
    ProofCheck("prop-3-symbolic", "Prop. 3: symbolic proof on a one-layer model", check_symbolic),
    ProofCheck("prop-3-qk-scaling", "Prop. 3: query/key-scaled twins", check_qk),
    ProofCheck("prop-3-vo-scaling", "Prop. 3: value/output-scaled twins", check_vo),
    ProofCheck("prop-3-mlp-scaling", "Prop. 3: ReLU-MLP-scaled twins", check_mlp),
    ProofCheck("prop-3-permutation-control", "Prop. 3: permutation control (no gap)", check_permutation_control),
    ProofCheck("prop-3-orthogonal-control", "Prop. 3: orthogonal control (SGD no gap, Adam gap)", check_orthogonal_control),
]
