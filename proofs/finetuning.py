"""Proposition 3 (fine-tunability is not identified by the function).  For a transformer with
softmax attention and ReLU MLPs, the maps (W_Q, b_Q, W_K, b_K) → (αW_Q, αb_Q, W_K/α, b_K/α),
(W_V, b_V, W_O) → (αW_V, αb_V, W_O/α) and (W₁, b₁, W₂) → (αW₁, αb₁, W₂/α), α > 0, leave the function —
hence every loss on every data set — unchanged, while gradients transform by the inverse scale
(∇L(Dθ) = D⁻¹∇L(θ)), so SGD from θ and from T(θ) reaches different functions; head and hidden-unit
permutations are symmetries too but gradient-equivariant, the control with no gap.  ``prop-3-symbolic``
proves it in sympy on a minimal one-layer model (function and loss identities, the gradient law, and
the exact first-order difference after one SGD step, nonzero for every α ≠ 1); the other checks build
reparametrised twins of a real float64 transformer (:mod:`constructions.finetuning`), check function
equality exhaustively over every prefix up to length 10, and fine-tune both with SGD (certified gap)
and Adam (reported).

torch and sympy are imported inside the checks, so ``nonid prove --list`` stays fast and a machine
without torch reports the numeric checks as ``unknown``.
"""

from __future__ import annotations

import functools
from typing import Callable

from proofs import ProofCheck
from theory.certificate import Certificate, Status, library_versions

CLAIM_SYMBOLIC = (
    "On a one-layer transformer (one head, one ReLU unit, width 1, two positions, logistic loss), each of the "
    "qk, vo and mlp scalings leaves the output and the loss unchanged for every alpha > 0, multiplies each "
    "gradient entry by 1/D_i, and one SGD step from theta and T(theta) changes the output at first order in eta by "
    "amounts differing by eta*l'(f)*(1 - alpha^-2)*(|grad_up f|^2 - alpha^2 |grad_down f|^2), nonzero for every alpha != 1."
)

# The minimal model's parameters, in a fixed order; the maps' scale factors (D_i) by name.
_PARAMS = ("wq", "bq", "wk", "bk", "wv", "bv", "wo", "bo", "w1", "b1", "w2", "b2", "u", "c")
_MAPS = {
    "qk": ({"wq": 1, "bq": 1}, {"wk": -1, "bk": -1}),   # (params scaled by alpha, params scaled by 1/alpha)
    "vo": ({"wv": 1, "bv": 1}, {"wo": -1}),
    "mlp": ({"w1": 1, "b1": 1}, {"w2": -1}),
}
# Two rational points (x0, x1 and every parameter) with q = wq*x1 + bq = 0, so both attention scores
# are 0, exp(0) = 1 and every quantity there is an exact rational; both lie in the ReLU's active region.
_POINTS = (
    {"x0": 1, "x1": 2, "wq": 1, "bq": -2, "wk": 1, "bk": 0, "wv": 1, "bv": 0, "wo": 1, "bo": 0,
     "w1": 1, "b1": 0, "w2": 1, "b2": 0, "u": 1, "c": 0},
    {"x0": -1, "x1": 1, "wq": 2, "bq": -2, "wk": 3, "bk": 1, "wv": 2, "bv": 1, "wo": -1, "bo": 1,
     "w1": 2, "b1": 1, "w2": 3, "b2": 0, "u": 1, "c": 0},
)


def _symbolic_proof() -> tuple[bool, list[str], dict]:
    """The sympy proof.  Returns (every identity holds, failures, quantities).

    1. ReLU is positively homogeneous (sign of αp = sign of p for α > 0), so T(θ) lies in θ's ReLU
       region (its pre-activation is 1 or α times θ's); each region is then a smooth expression.
    2. Per map and region: f(T θ) ≡ f(θ) for the output margin f, and the logistic loss
       log(1 + e^{−f}) likewise; every partial ∂f/∂θᵢ at T θ ≡ (1/Dᵢ) ∂f/∂θᵢ.  By the chain rule
       ∇L = ℓ'(f)∇f, so every loss ℓ of the output obeys the same law ∇L(Tθ) = D⁻¹∇L(θ).
    3. Hence (generic algebra, any f obeying the law): T⁻¹(Tθ − η∇L(Tθ)) = θ − ηD⁻²∇L(θ), and
       d/dη [f(θ − ηD⁻²g) − f(θ − ηg)] at η = 0 equals ℓ'(f)(1 − α⁻²)(Σ_up (∂ᵢf)² − α² Σ_down (∂ᵢf)²),
       checked with an undefined function f so that it holds for every model.
    4. For the one-layer model, at exact rational points, that coefficient is nonzero for every α ≠ 1
       (ℓ'(f) = −1/(1 + e^f) never vanishes for the logistic loss).
    """
    import sympy as sp

    x0, x1 = sp.symbols("x0 x1", real=True)
    th = {n: sp.Symbol(n, real=True) for n in _PARAMS}
    alpha = sp.Symbol("alpha", positive=True)
    eta = sp.Symbol("eta", positive=True)

    def model(p: dict, active: bool) -> tuple[sp.Expr, sp.Expr]:
        """The output margin f (logit of the target minus the other's) and the ReLU's pre-activation."""
        q = p["wq"] * x1 + p["bq"]
        keys = [p["wk"] * x + p["bk"] for x in (x0, x1)]
        vals = [p["wv"] * x + p["bv"] for x in (x0, x1)]
        e = [sp.exp(q * k) for k in keys]  # d_head = 1: no 1/sqrt(d) factor
        h = x1 + p["wo"] * (e[0] * vals[0] + e[1] * vals[1]) / (e[0] + e[1]) + p["bo"]
        pre = p["w1"] * h + p["b1"]
        z = h + p["w2"] * (pre if active else 0) + p["b2"]
        return p["u"] * z + p["c"], pre

    failures: list[str] = []
    identities = 0

    def zero(expr: sp.Expr, what: str) -> None:
        nonlocal identities
        identities += 1
        if not _is_zero(expr):
            failures.append(what)

    # 1. Positive homogeneity of ReLU, region by region: alpha > 0 keeps the sign of the pre-activation.
    p_pos, p_nonpos = sp.Symbol("p", positive=True), sp.Symbol("p", nonpositive=True)
    homog = ((alpha * p_pos).is_positive, (alpha * p_nonpos).is_nonpositive)
    if homog != (True, True):
        failures.append(f"relu positive homogeneity (sympy gave {homog})")

    # 3 (generic part). An undefined output function f; gradient g = l'(f) * grad f, l' a symbol.
    F, lp = sp.Function("f"), sp.Symbol("lp", real=True)
    args = [th[n] for n in _PARAMS]
    partial = {n: sp.Derivative(F(*args), th[n]) for n in _PARAMS}

    closed_forms, points, zero_grads = {}, {}, []
    for name, (up, down) in _MAPS.items():
        D = {n: alpha ** up.get(n, down.get(n, 0)) for n in _PARAMS}
        T = {th[n]: D[n] * th[n] for n in _PARAMS}
        for active in (True, False):
            region = "active" if active else "inactive"
            f, pre = model(th, active)
            factor = alpha if name == "mlp" else 1
            zero(pre.xreplace(T) - factor * pre, f"{name}/{region}: pre-activation of T(theta) = {factor} * theta's")
            zero(f.xreplace(T) - f, f"{name}/{region}: output f(T theta) = f(theta)")
            loss = sp.log(1 + sp.exp(-f))
            zero(loss.xreplace(T) - loss, f"{name}/{region}: logistic loss L(T theta) = L(theta)")
            df = {n: sp.diff(f, th[n]) for n in _PARAMS}
            for n in _PARAMS:
                zero(df[n].xreplace(T) - df[n] / D[n], f"{name}/{region}: df/d{n} at T theta = (1/D) df/d{n}")
            if name == "qk" and active:
                zero_grads = [n for n in _PARAMS if _is_zero(df[n])]
            if not active:
                continue
            # 3. One SGD step from T(theta), mapped back by T^-1, is a step from theta with rates eta/D_i^2 ...
            g = {n: lp * partial[n] for n in _PARAMS}
            for n in _PARAMS:
                back = (D[n] * th[n] - eta * g[n] / D[n]) / D[n]
                zero(back - (th[n] - eta * g[n] / D[n] ** 2), f"{name}: T^-1(step from T theta), coordinate {n}")
            # ... so the outputs after one step differ at first order in eta by the closed form.
            stepped = (F(*[th[n] - eta * g[n] / D[n] ** 2 for n in _PARAMS])
                       - F(*[th[n] - eta * g[n] for n in _PARAMS]))
            first_order = sp.diff(stepped, eta).subs(eta, 0).doit()
            closed = lp * (1 - alpha ** -2) * (sum(partial[n] ** 2 for n in up) - alpha ** 2 * sum(partial[n] ** 2 for n in down))
            identities += 1
            if sp.expand(first_order - closed) != 0:
                failures.append(f"{name}: first-order difference after one SGD step != closed form")
            closed_forms[name] = ("eta * l'(f) * (1 - alpha**-2) * (" + " + ".join(f"(df/d{n})**2" for n in up)
                                  + " - alpha**2 * (" + " + ".join(f"(df/d{n})**2" for n in down) + ")) + O(eta**2)")
            # 4. Nonvanishing: with A = sum_up (df/di)^2, B = sum_down (df/di)^2 at a point, the coefficient
            # is 0 iff A = alpha^2 B: for every alpha if A = B = 0, never if only B = 0, else at
            # alpha^2 = A/B.  The points must leave no alpha^2 != 1 where it vanishes at all of them.
            vals = []
            for pt in _POINTS:
                subs = {th[k]: sp.Integer(val) for k, val in pt.items() if k in th}
                subs.update({x0: sp.Integer(pt["x0"]), x1: sp.Integer(pt["x1"])})
                pre_at = pre.xreplace(subs)
                A = sum(df[n] ** 2 for n in up).xreplace(subs)
                B = sum(df[n] ** 2 for n in down).xreplace(subs)
                if not (pre_at.is_Rational and pre_at > 0 and A.is_Rational and B.is_Rational):
                    failures.append(f"{name}: point {pt} is not an exact active-region point (pre {pre_at}, A {A}, B {B})")
                vals.append((A, B))
            bad: set | None = None  # alpha^2 values where the coefficient vanishes at every point so far (None: all)
            for A, B in vals:
                here = None if A == 0 and B == 0 else (set() if B == 0 else {A / B})
                bad = here if bad is None else (bad if here is None else bad & here)
            if bad is None or bad - {1}:
                failures.append(f"{name}: at the points' (A, B) = {vals} the first-order gap vanishes for alpha^2 in {bad}")
            points[name] = [{"A": str(A), "B": str(B)} for A, B in vals]
    quantities = {"identities": identities, "maps": list(_MAPS), "first_order_gap": closed_forms,
                  "nonvanishing_points": points, "identically_zero_gradients": zero_grads, "failures": failures}
    return not failures, failures, quantities


def _is_zero(expr) -> bool:
    """Decide expr ≡ 0 exactly: replace each exp(a) and log(a) — innermost first — by one atom per
    function and argument in canonical rational form (``cancel``: so exp(αq·k/α) and exp(q·k) become
    the same atom), put everything over one denominator, and test the numerator for the zero
    polynomial in the symbols and atoms.
    Sound, never numerical: equal atoms have syntactically equal canonical arguments, and a zero
    polynomial is zero whatever values the atoms take.  (It may fail to see a zero that needs an
    identity between atoms, such as exp(a)·exp(−a) = 1; the callers avoid needing one.)"""
    import sympy as sp

    atoms: dict = {}

    def atom(e):
        return atoms.setdefault((e.func, _canonical(e.args[0])), sp.Dummy("A"))

    e = expr.replace(lambda x: isinstance(x, (sp.exp, sp.log)), atom)
    if e == 0:
        return True
    num, _ = sp.fraction(sp.together(e))
    num = sp.expand(num)
    if num == 0:
        return True
    gens = sorted(num.free_symbols, key=str)
    return bool(gens) and sp.Poly(num, *gens).is_zero


@functools.lru_cache(maxsize=4096)
def _canonical(arg):
    """``cancel(arg)``: the canonical p/q form (expanded, coprime, normalised); cached, because the same
    few arguments recur in every partial derivative."""
    import sympy as sp

    return sp.cancel(arg)


def check_symbolic() -> Certificate:
    ok, failures, quantities = _symbolic_proof()
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
        return ft.certify_twin(check, standard_maps(model)[key], model, setup)

    run.__name__ = f"check_{key}"
    return run


check_qk = _numeric("prop-3-qk-scaling", "qk", "query/key scaling twins")
check_vo = _numeric("prop-3-vo-scaling", "vo", "value/output scaling twins")
check_mlp = _numeric("prop-3-mlp-scaling", "mlp", "ReLU-MLP scaling twins")
check_permutation_control = _numeric("prop-3-permutation-control", "permutation", "permutation control")

CHECKS = [
    ProofCheck("prop-3-symbolic", "Prop. 3: symbolic proof on a one-layer model", check_symbolic),
    ProofCheck("prop-3-qk-scaling", "Prop. 3: query/key-scaled twins", check_qk),
    ProofCheck("prop-3-vo-scaling", "Prop. 3: value/output-scaled twins", check_vo),
    ProofCheck("prop-3-mlp-scaling", "Prop. 3: ReLU-MLP-scaled twins", check_mlp),
    ProofCheck("prop-3-permutation-control", "Prop. 3: permutation control (no gap)", check_permutation_control),
]
