"""Proposition 3 in sympy, on a minimal one-layer transformer: the mathematics behind the
``prop-3-symbolic`` proof check (:mod:`proofs.finetuning` turns the result into a certificate).

For one head, one ReLU unit, width 1, two positions and the logistic loss, each of the qk, vo and mlp
scalings T (parameters multiplied by α or 1/α, α > 0) leaves the output and the loss unchanged,
multiplies each gradient entry by 1/Dᵢ, and one SGD step from θ and from T(θ) changes the output at
first order in η by amounts that differ by a closed form, nonzero for every α ≠ 1 at exact rational
points.  Every identity is decided exactly (:func:`is_zero`); nothing rests on a float.

sympy is imported inside the functions, so importing this module stays cheap.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

# The minimal model's parameters, in a fixed order; the maps' scale factors (D_i) by name.
PARAMS = ("wq", "bq", "wk", "bk", "wv", "bv", "wo", "bo", "w1", "b1", "w2", "b2", "u", "c")
MAPS = {
    "qk": ({"wq": 1, "bq": 1}, {"wk": -1, "bk": -1}),   # (params scaled by alpha, params scaled by 1/alpha)
    "vo": ({"wv": 1, "bv": 1}, {"wo": -1}),
    "mlp": ({"w1": 1, "b1": 1}, {"w2": -1}),
}
# Two rational points (x0, x1 and every parameter) with q = wq*x1 + bq = 0, so both attention scores
# are 0, exp(0) = 1 and every quantity there is an exact rational; both lie in the ReLU's active region.
POINTS = (
    {"x0": 1, "x1": 2, "wq": 1, "bq": -2, "wk": 1, "bk": 0, "wv": 1, "bv": 0, "wo": 1, "bo": 0,
     "w1": 1, "b1": 0, "w2": 1, "b2": 0, "u": 1, "c": 0},
    {"x0": -1, "x1": 1, "wq": 2, "bq": -2, "wk": 3, "bk": 1, "wv": 2, "bv": 1, "wo": -1, "bo": 1,
     "w1": 2, "b1": 1, "w2": 3, "b2": 0, "u": 1, "c": 0},
)


@dataclass(frozen=True)
class ScalingProof:
    """The outcome of :func:`prove_scalings`: whether every identity held, the ones that did not
    (in the order they were checked), and the quantities a certificate reports."""

    ok: bool
    failures: tuple[str, ...]
    quantities: dict[str, Any]


def prove_scalings() -> ScalingProof:
    """The sympy proof.

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
    th = {n: sp.Symbol(n, real=True) for n in PARAMS}
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
        if not is_zero(expr):
            failures.append(what)

    # 1. Positive homogeneity of ReLU, region by region: alpha > 0 keeps the sign of the pre-activation.
    p_pos, p_nonpos = sp.Symbol("p", positive=True), sp.Symbol("p", nonpositive=True)
    homog = ((alpha * p_pos).is_positive, (alpha * p_nonpos).is_nonpositive)
    if homog != (True, True):
        failures.append(f"relu positive homogeneity (sympy gave {homog})")

    # 3 (generic part). An undefined output function f; gradient g = l'(f) * grad f, l' a symbol.
    F, lp = sp.Function("f"), sp.Symbol("lp", real=True)
    args = [th[n] for n in PARAMS]
    partial = {n: sp.Derivative(F(*args), th[n]) for n in PARAMS}

    closed_forms: dict[str, str] = {}
    points: dict[str, list[dict[str, str]]] = {}
    zero_grads: list[str] = []
    for name, (up, down) in MAPS.items():
        D = {n: alpha ** up.get(n, down.get(n, 0)) for n in PARAMS}
        T = {th[n]: D[n] * th[n] for n in PARAMS}
        for active in (True, False):
            region = "active" if active else "inactive"
            f, pre = model(th, active)
            factor = alpha if name == "mlp" else 1
            zero(pre.xreplace(T) - factor * pre, f"{name}/{region}: pre-activation of T(theta) = {factor} * theta's")
            zero(f.xreplace(T) - f, f"{name}/{region}: output f(T theta) = f(theta)")
            loss = sp.log(1 + sp.exp(-f))
            zero(loss.xreplace(T) - loss, f"{name}/{region}: logistic loss L(T theta) = L(theta)")
            df = {n: sp.diff(f, th[n]) for n in PARAMS}
            for n in PARAMS:
                zero(df[n].xreplace(T) - df[n] / D[n], f"{name}/{region}: df/d{n} at T theta = (1/D) df/d{n}")
            if name == "qk" and active:
                zero_grads = [n for n in PARAMS if is_zero(df[n])]
            if not active:
                continue
            # 3. One SGD step from T(theta), mapped back by T^-1, is a step from theta with rates eta/D_i^2 ...
            g = {n: lp * partial[n] for n in PARAMS}
            for n in PARAMS:
                back = (D[n] * th[n] - eta * g[n] / D[n]) / D[n]
                zero(back - (th[n] - eta * g[n] / D[n] ** 2), f"{name}: T^-1(step from T theta), coordinate {n}")
            # ... so the outputs after one step differ at first order in eta by the closed form.
            stepped = (F(*[th[n] - eta * g[n] / D[n] ** 2 for n in PARAMS])
                       - F(*[th[n] - eta * g[n] for n in PARAMS]))
            first_order = sp.diff(stepped, eta).subs(eta, 0).doit()
            closed = lp * (1 - alpha ** -2) * (sum(partial[n] ** 2 for n in up) - alpha ** 2 * sum(partial[n] ** 2 for n in down))
            identities += 1
            if sp.expand(first_order - closed) != 0:
                failures.append(f"{name}: first-order difference after one SGD step != closed form")
            closed_forms[name] = ("eta * l'(f) * (1 - alpha**-2) * (" + " + ".join(f"(df/d{n})**2" for n in up)
                                  + " - alpha**2 * (" + " + ".join(f"(df/d{n})**2" for n in down) + ")) + O(eta**2)")
            points[name] = _nonvanishing(name, up, down, pre, df, th, x0, x1, failures)
    quantities = {"identities": identities, "maps": list(MAPS), "first_order_gap": closed_forms,
                  "nonvanishing_points": points, "identically_zero_gradients": zero_grads, "failures": failures}
    return ScalingProof(ok=not failures, failures=tuple(failures), quantities=quantities)


def _nonvanishing(name: str, up: dict, down: dict, pre: Any, df: dict, th: dict, x0: Any, x1: Any,
                  failures: list[str]) -> list[dict[str, str]]:
    """Step 4 for one map.  With A = Σ_up (∂ᵢf)², B = Σ_down (∂ᵢf)² at a point, the first-order
    coefficient is 0 iff A = α²B: for every α if A = B = 0, never if only B = 0, else at α² = A/B.
    The points must leave no α² ≠ 1 where it vanishes at all of them.  Appends to ``failures``;
    returns each point's (A, B) as strings."""
    import sympy as sp

    vals = []
    for pt in POINTS:
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
    return [{"A": str(A), "B": str(B)} for A, B in vals]


def is_zero(expr: Any) -> bool:
    """Decide expr ≡ 0 exactly: replace each exp(a) and log(a) — innermost first — by one atom per
    function and argument in canonical rational form (``cancel``: so exp(αq·k/α) and exp(q·k) become
    the same atom), put everything over one denominator, and test the numerator for the zero
    polynomial in the symbols and atoms.
    Sound, never numerical: equal atoms have syntactically equal canonical arguments, and a zero
    polynomial is zero whatever values the atoms take.  (It may fail to see a zero that needs an
    identity between atoms, such as exp(a)·exp(−a) = 1; the callers avoid needing one.)"""
    import sympy as sp

    atoms: dict = {}

    def atom(e: Any) -> Any:
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
def _canonical(arg: Any) -> Any:
    """``cancel(arg)``: the canonical p/q form (expanded, coprime, normalised); cached, because the same
    few arguments recur in every partial derivative."""
    import sympy as sp

    return sp.cancel(arg)
