"""Closed forms by sympy, each checked against the exact chain-rule computation of :mod:`theory.losses`.

* aⁿbⁿ (n ≥ 1) under the geometric prior P(n) = (1 − r)·r^(n−1): the entropy H(r) = h(r)/(1 − r)
  per sequence (h the binary entropy in nats) and h(r)/(3 − r) per token (÷ E|x| + 1 = (3 − r)/(1 − r));
  for r = ½ that is 2 ln 2 per sequence and 2/5 bit per token.
* The geometric model family Q_s (aⁿbⁿ with ratio s, deterministic after the first b):
  CE(r, s) = −ln(1 − s) − r/(1 − r)·ln s, minimised at s* = r with CE(r, r) = H(r).
* The padded floor ln N / (T − 1) of the uniform distribution over N sequences padded to T tokens
  (aⁿbⁿ, n ≤ N, and aⁿbⁿcⁿ).

Every closed form is *derived* by sympy summation and then compared with the finite computation
exactly: at rational parameters a closed form is turned into q + Σ c_p ln p (:class:`ExactReal`),
equality with a :class:`LogCombination` is decided by comparing coefficients (1 and the ln p are
linearly independent over ℚ), and an infinite-support bracket [lo, hi] is checked by rigorous
interval arithmetic (:meth:`LogCombination.compare`).  No verdict rests on a float.

sympy is imported inside the functions, so importing this module stays cheap.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence, cast

from theory.alphabet import EOS, Alphabet
from theory.data import FiniteDistribution, anbn_geometric
from theory.errors import NonidError
from theory.exact import LogCombination, LogInterval, decimal_string
from theory.languages import block_words
from theory.models import FunctionModel

if TYPE_CHECKING:
    import sympy


class ClosedFormError(NonidError):
    """A closed form that is not q + Σ c·ln(rational) at the given parameters (floats, π, products of
    logarithms, or free symbols the checker does not substitute), or a checker parameter out of range."""


# ---- symbols and derivations ---------------------------------------------------------------------


@dataclass(frozen=True)
class Symbols:
    """The sympy symbols closed forms are written in: r (data ratio, 0 < r < 1), s (model ratio),
    n (aⁿbⁿ exponent), k (trie layer), D (truncation depth), N (support size), T (padded length)."""

    r: Any
    s: Any
    n: Any
    k: Any
    D: Any
    N: Any
    T: Any


@lru_cache(maxsize=None)
def symbols() -> Symbols:
    """The shared :class:`Symbols` (r, s positive reals; n, k, D, N, T positive integers)."""
    import sympy as sp

    r, s = sp.symbols("r s", positive=True)
    n, k, D, N, T = sp.symbols("n k D N T", integer=True, positive=True)
    return Symbols(r, s, n, k, D, N, T)


def _unit_interval(expr: "sympy.Expr") -> "sympy.Expr":
    """Resolve the convergence Piecewise of a geometric summation under 0 < r, s < 1."""
    import sympy as sp

    S = symbols()
    return sp.refine(expr, sp.Q.lt(S.r, 1) & sp.Q.lt(S.s, 1))


def _same(a: "sympy.Expr", b: "sympy.Expr") -> bool:
    """sympy simplifies a − b to 0 (True means proved equal; False only means 'not shown')."""
    import sympy as sp

    return sp.simplify(a - b) == 0


def _checked(derived: "sympy.Expr", stated: "sympy.Expr", what: str) -> "sympy.Expr":
    """Return the readable ``stated`` form once sympy has shown it equals the ``derived`` one.

    Raises:
        ArithmeticError: the two could not be shown equal (a derivation bug, never silent).
    """
    if not _same(derived, stated):
        raise ArithmeticError(f"{what}: derived {derived} but could not show it equals {stated}")
    return stated


def binary_entropy(x: "sympy.Expr") -> "sympy.Expr":
    """h(x) = −x ln x − (1 − x) ln(1 − x), in nats."""
    import sympy as sp

    return -x * sp.log(x) - (1 - x) * sp.log(1 - x)


def _summation(expr: "sympy.Expr", var: Any, lo: Any, hi: Any) -> "sympy.Expr":
    """Σ_{var=lo}^{hi} expr by sympy, term by term: each additive term is split into a factor free of
    ``var`` and one with it, and only the latter is summed (linearity; sympy's own route through
    telescoping is an order of magnitude slower here).  Convergence is resolved for 0 < r, s < 1."""
    import sympy as sp

    total = sp.Integer(0)
    for term in sp.Add.make_args(sp.expand(expr)):
        const, dep = term.as_independent(var, as_Add=False)
        total += const * _unit_interval(sp.summation(dep, (var, lo, hi)))
    return total


def _geometric_expectation(f: "sympy.Expr") -> "sympy.Expr":
    """E_{n∼r}[f(n)] = Σ_{n≥1} (1 − r) r^(n−1) f(n), summed by sympy and simplified (0 < r < 1)."""
    import sympy as sp

    S = symbols()
    return sp.simplify(_summation((1 - S.r) * S.r ** (S.n - 1) * f, S.n, 1, sp.oo))


@lru_cache(maxsize=None)
def _layer_sums(per_layer: "sympy.Expr") -> tuple["sympy.Expr", "sympy.Expr"]:
    """The chain rule on aⁿbⁿ-geometric: only the prefixes aᵏ (k ≥ 1) branch, at mass r^(k−1), so a
    loss is Σ_k r^(k−1)·c.  Returns (Σ_{k=1}^{D−1}, Σ_{k≥D}): the part theory sums at depth D (its
    prefixes are shorter than D) and the tail it needs certified."""
    import sympy as sp

    S = symbols()
    term = S.r ** (S.k - 1) * per_layer
    part = sp.factor(sp.simplify(_summation(term, S.k, 1, S.D - 1)))
    tail = sp.factor(sp.simplify(_summation(term, S.k, S.D, sp.oo)))
    return part, tail


@lru_cache(maxsize=None)
def anbn_mean_length() -> "sympy.Expr":
    """E|x| = E[2n] = 2/(1 − r) for aⁿbⁿ-geometric, by summation."""
    S = symbols()
    return _checked(_geometric_expectation(2 * S.n), 2 / (1 - S.r), "E|x|")


@lru_cache(maxsize=None)
def anbn_entropy() -> "sympy.Expr":
    """H(r) = −Σ_n P(n) ln P(n) = h(r)/(1 − r) nats per sequence, in the symbol r.

    Derived by summing −ln P(n) = −ln(1 − r) − (n − 1) ln r against P(n); the chain-rule layer sum
    Σ_k r^(k−1) h(r) must agree (both are checked to equal h(r)/(1 − r))."""
    import sympy as sp

    S = symbols()
    stated = binary_entropy(S.r) / (1 - S.r)
    by_sequences = _geometric_expectation(-sp.expand_log(sp.log((1 - S.r) * S.r ** (S.n - 1)), force=True))
    part, tail = _layer_sums(binary_entropy(S.r))
    _checked(part + tail, stated, "chain-rule entropy of aⁿbⁿ")
    return _checked(by_sequences, stated, "entropy of aⁿbⁿ")


@lru_cache(maxsize=None)
def anbn_entropy_per_token() -> "sympy.Expr":
    """H(r)/(E|x| + 1) = h(r)/(3 − r) nats per token (2/5 bit at r = ½)."""
    import sympy as sp

    S = symbols()
    derived = sp.simplify(anbn_entropy() / (anbn_mean_length() + 1))
    return _checked(derived, binary_entropy(S.r) / (3 - S.r), "per-token entropy of aⁿbⁿ")


@lru_cache(maxsize=None)
def anbn_entropy_partial() -> "sympy.Expr":
    """Σ_{k=1}^{D−1} r^(k−1) h(r): the entropy theory sums over support prefixes shorter than D."""
    return _layer_sums(binary_entropy(symbols().r))[0]


@lru_cache(maxsize=None)
def anbn_entropy_tail() -> "sympy.Expr":
    """Σ_{k≥D} r^(k−1) h(r) = r^(D−1) h(r)/(1 − r): the entropy of the prefixes of length ≥ D (D ≥ 1)."""
    return _layer_sums(binary_entropy(symbols().r))[1]


@lru_cache(maxsize=None)
def geometric_cross_entropy() -> "sympy.Expr":
    """CE(r, s) = E_{n∼r}[−ln((1 − s) s^(n−1))] = −ln(1 − s) − r/(1 − r)·ln s (nats per sequence)."""
    import sympy as sp

    S = symbols()
    derived = _geometric_expectation(-sp.expand_log(sp.log((1 - S.s) * S.s ** (S.n - 1)), force=True))
    return _checked(derived, -sp.log(1 - S.s) - S.r / (1 - S.r) * sp.log(S.s), "geometric cross-entropy")


def _bernoulli_ce() -> "sympy.Expr":
    import sympy as sp

    S = symbols()
    return -S.r * sp.log(S.s) - (1 - S.r) * sp.log(1 - S.s)


@lru_cache(maxsize=None)
def geometric_ce_partial() -> "sympy.Expr":
    """Σ_{k=1}^{D−1} r^(k−1)·(−r ln s − (1 − r) ln(1 − s)): the cross-entropy theory sums to depth D."""
    return _layer_sums(_bernoulli_ce())[0]


@lru_cache(maxsize=None)
def geometric_ce_tail() -> "sympy.Expr":
    """r^(D−1)·(−r ln s − (1 − r) ln(1 − s))/(1 − r): the cross-entropy of the prefixes of length ≥ D,
    exactly (the tail bound handed to :func:`theory.losses.cross_entropy`)."""
    return _layer_sums(_bernoulli_ce())[1]


@lru_cache(maxsize=None)
def geometric_kl_tail() -> "sympy.Expr":
    """r^(D−1)·KL(Bern(r) ‖ Bern(s))/(1 − r): the KL of the prefixes of length ≥ D, exactly."""
    import sympy as sp

    S = symbols()
    return sp.factor(sp.simplify(geometric_ce_tail() - _layer_sums(binary_entropy(S.r))[1]))


@dataclass(frozen=True)
class Minimiser:
    """The minimiser of CE(r, ·) over 0 < s < 1, as sympy found it.

    Attributes:
        solutions: the roots of dCE/ds = 0 (``solve``).
        second_derivative: d²CE/ds², simplified.
        convex: sympy's ``ask`` that d²CE/ds² > 0 for all 0 < r, s < 1 (None: it could not tell).
        value_is_entropy: CE(r, r) − H(r) simplifies to 0.
    """

    solutions: tuple[Any, ...]
    second_derivative: Any
    convex: bool | None
    value_is_entropy: bool

    @property
    def unique_at_r(self) -> bool:
        """The only stationary point is s = r."""
        return len(self.solutions) == 1 and _same(self.solutions[0], symbols().r)


@lru_cache(maxsize=None)
def geometric_ce_minimiser(closed_form: "sympy.Expr | None" = None) -> Minimiser:
    """Solve dCE/ds = 0 for ``closed_form`` (default :func:`geometric_cross_entropy`), check convexity
    and the value at the minimiser."""
    import sympy as sp

    S = symbols()
    ce = geometric_cross_entropy() if closed_form is None else closed_form
    sols = tuple(sp.solve(sp.Eq(sp.diff(ce, S.s), 0), S.s))
    d2 = sp.simplify(sp.diff(ce, S.s, 2))
    convex = sp.ask(sp.Q.positive(d2), sp.Q.positive(S.r) & sp.Q.lt(S.r, 1) & sp.Q.positive(S.s) & sp.Q.lt(S.s, 1))
    return Minimiser(sols, d2, convex, _same(ce.subs(S.s, S.r), anbn_entropy()))


@lru_cache(maxsize=None)
def padded_floor() -> "sympy.Expr":
    """ln N / (T − 1): the padded per-token entropy of the uniform distribution over N sequences padded
    to T tokens (T − 1 targets, PAD targets costing nothing).  ln N is summed, not typed in."""
    import sympy as sp

    S = symbols()
    entropy_uniform = sp.simplify(sp.expand_log(sp.summation(-sp.log(1 / S.N) / S.N, (S.n, 1, S.N)), force=True))
    return _checked(entropy_uniform / (S.T - 1), sp.log(S.N) / (S.T - 1), "padded floor")


# ---- the finite objects the closed forms are checked against ------------------------------------


def geometric_model(s: Fraction) -> FunctionModel:
    """Q_s: after SOS emits a; at aᵏ (k ≥ 1) a with probability s, b with 1 − s; then b until #b = #a,
    then EOS.  Off aⁿbⁿ's prefixes it ends the sequence (any choice would do: Lemma A)."""
    s = Fraction(s)
    if not 0 < s < 1:
        raise ClosedFormError(f"model ratio {s} must lie strictly between 0 and 1")

    def row(u: str) -> dict[str, Fraction]:
        k = len(u) - len(u.lstrip("a"))
        rest = u[k:]
        if not u:
            return {"a": Fraction(1)}
        if not rest:
            return {"a": s, "b": 1 - s}
        if rest == "b" * len(rest) and len(rest) < k:
            return {"b": Fraction(1)}
        return {EOS: Fraction(1)}

    return FunctionModel(Alphabet("ab"), row, name=f"anbn-geometric-model(s={s})")


def uniform_anbn(N: int) -> FiniteDistribution:
    """Uniform over aⁿbⁿ, n = 1..N (the companion paper's L3 data for N = 128)."""
    return FiniteDistribution.uniform(Alphabet("ab"), block_words("ab", N), name=f"anbn-{N}")


def uniform_anbncn(N: int) -> FiniteDistribution:
    """Uniform over aⁿbⁿcⁿ, n = 1..N (the companion paper's L5 data for N = 85)."""
    return FiniteDistribution.uniform(Alphabet("abc"), block_words("abc", N),
                                      name=f"anbncn-{N}")


# ---- exact values of closed forms ----------------------------------------------------------------


@dataclass(frozen=True)
class ExactReal:
    """q + Σ c_p ln p exactly: a closed form evaluated at rational parameters."""

    rational: Fraction
    logs: LogCombination

    def sign_against(self, value: LogCombination) -> int | None:
        """Sign of (value − self), decided rigorously; None when not separated."""
        return (value - self.logs).compare(self.rational)

    def equals(self, value: LogCombination) -> bool:
        """Exact equality (1 and the ln p are linearly independent over ℚ)."""
        return not value.infinite and self.rational == 0 and self.logs == value

    def __str__(self) -> str:
        if self.rational == 0:
            return str(self.logs)
        return f"{self.rational}" + ("" if self.logs.is_zero else f" + ({self.logs})")

    def to_json(self) -> dict[str, object]:
        lo, hi = self.logs.interval(80)
        lo, hi = lo + self.rational, hi + self.rational
        return {"exact": str(self), "approx": float((lo + hi) / 2),
                "interval": [decimal_string(lo, "down"), decimal_string(hi, "up")]}


def exact_value(expr: "sympy.Expr") -> ExactReal:
    """The exact value of a parameter-free sympy expression that is q + Σ c·ln(a) with rational q, c, a.

    Raises:
        ClosedFormError: free symbols remain, a float appears, or a term is not a rational multiple
            of the logarithm of a positive rational (π, √2, ln 2 · ln 3, …).
    """
    import sympy as sp

    expr = sp.sympify(expr)
    if expr.free_symbols:
        raise ClosedFormError(f"closed form {expr} still has free symbols {sorted(map(str, expr.free_symbols))}")
    rational, logs = Fraction(0), LogCombination.zero()
    for term in sp.Add.make_args(sp.expand(expr)):
        coeff, rest = term.as_coeff_Mul()
        if not coeff.is_Rational:
            raise ClosedFormError(f"term {term} of {expr} has an inexact coefficient {coeff}")
        q = Fraction(int(coeff.p), int(coeff.q))
        if rest == 1:
            rational += q
        elif isinstance(rest, sp.log) and rest.args[0].is_Rational and rest.args[0] > 0:
            a = rest.args[0]
            logs = logs + LogCombination.log(Fraction(int(a.p), int(a.q))) * q
        else:
            raise ClosedFormError(f"term {term} of {expr} is not a rational multiple of ln(rational)")
    return ExactReal(rational, logs)


def _at(expr: "sympy.Expr", allowed: Iterable[Any], values: Mapping[Any, Fraction | int]) -> ExactReal:
    import sympy as sp

    expr = sp.sympify(expr)
    extra = expr.free_symbols - set(allowed)
    if extra:
        raise ClosedFormError(f"closed form {expr} has symbols {sorted(map(str, extra))} outside "
                              f"{sorted(map(str, allowed))}")
    subs = {sym: sp.Rational(Fraction(v).numerator, Fraction(v).denominator) for sym, v in values.items()}
    return exact_value(expr.subs(subs))


def _log_bound(expr: "sympy.Expr", allowed: Iterable[Any], values: Mapping[Any, Fraction | int]) -> LogCombination:
    """A tail bound as the LogCombination theory.losses accepts (raises ClosedFormError if it has a
    rational part)."""
    v = _at(expr, allowed, values)
    if v.rational != 0:
        raise ClosedFormError(f"tail bound {expr} at {values} has a rational part {v.rational}")
    return v.logs


# ---- check records -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CaseResult:
    """One comparison of a closed form with a finite computation.

    ``relation`` is "equal" / "differs" (exact) or "lo ≤ closed ≤ hi" style for a bracket, "outside"
    when the closed form leaves it, "undecided" when the intervals could not separate; ``ok`` is
    True / False / None accordingly."""

    quantity: str
    params: Mapping[str, str]
    closed: ExactReal
    finite: LogCombination | LogInterval
    relation: str
    ok: bool | None

    def to_json(self) -> dict[str, object]:
        return {"quantity": self.quantity, "params": dict(self.params), "closed": self.closed.to_json(),
                "finite": self.finite.to_json(), "relation": self.relation, "ok": self.ok}


@dataclass(frozen=True)
class SymbolicFact:
    """A statement sympy decided: ``holds`` True (shown), False (refuted), None (could not show);
    ``expression`` the sympy expression that was checked, when the statement names one (the
    project's one record of a sympy derivation step: closed forms here, Proposition 2's KL bounds in
    :mod:`constructions.icl.bounds`)."""

    statement: str
    holds: bool | None
    expression: str = ""

    @property
    def proved(self) -> bool:
        """Whether sympy showed the statement (``holds is True``; undecided counts as not proved)."""
        return self.holds is True

    def to_json(self) -> dict[str, object]:
        """``statement`` and ``holds``, and ``expression`` when there is one."""
        out: dict[str, object] = {"statement": self.statement, "holds": self.holds}
        if self.expression:
            out["expression"] = self.expression
        return out


@dataclass(frozen=True)
class ClosedFormCheck:
    """A closed form, the symbolic facts about it and its comparisons with exact computations."""

    name: str
    formula: str
    closed_form: str
    cases: tuple[CaseResult, ...]
    facts: tuple[SymbolicFact, ...] = field(default=())

    @property
    def ok(self) -> bool | None:
        """False if any case or fact fails, None if any is undecided, else True."""
        verdicts = [c.ok for c in self.cases] + [f.holds for f in self.facts]
        if any(v is False for v in verdicts):
            return False
        return None if any(v is None for v in verdicts) else True

    def reason(self) -> str:
        """Which cases or facts failed or stayed undecided ('' when all hold)."""
        bad = [f"{c.quantity} at {dict(c.params)}: {c.relation}" for c in self.cases if c.ok is not True]
        bad += [f"{f.statement}: {'refuted' if f.holds is False else 'not shown'}" for f in self.facts if f.holds is not True]
        return "; ".join(bad)


def _exact_case(quantity: str, params: Mapping[str, object], closed: ExactReal, value: LogCombination) -> CaseResult:
    eq = closed.equals(value)
    return CaseResult(quantity, {k: str(v) for k, v in params.items()}, closed, value, "equal" if eq else "differs", eq)


def _bracket_case(quantity: str, params: Mapping[str, object], closed: ExactReal, value: LogInterval) -> CaseResult:
    lo, hi = closed.sign_against(value.lo), closed.sign_against(value.hi)
    if lo == 1 or hi == -1:
        relation, ok = "outside", False
    elif lo is None or hi is None:
        relation, ok = "undecided", None
    else:
        relation, ok = f"lo {'=' if lo == 0 else '<'} closed {'=' if hi == 0 else '<'} hi", True
    return CaseResult(quantity, {k: str(v) for k, v in params.items()}, closed, value, relation, ok)


def _sstr(expr: "sympy.Expr") -> str:
    import sympy as sp

    return sp.sstr(expr)


# ---- checkers ------------------------------------------------------------------------------------


def _check_depths(depths: Sequence[int]) -> None:
    """Raises ClosedFormError for a depth below 1 (the layer sums start at the prefix a)."""
    bad = [d for d in depths if int(d) != d or d < 1]
    if bad or not depths:
        raise ClosedFormError(f"truncation depths must be integers >= 1, got {list(depths)}")


DEFAULT_RATIOS: tuple[Fraction, ...] = (Fraction(1, 2), Fraction(1, 3), Fraction(2, 3), Fraction(1, 5))
DEFAULT_DEPTHS: tuple[int, ...] = (1, 4, 16)


def check_anbn_entropy(closed_form: "sympy.Expr | None" = None, per_token_form: "sympy.Expr | None" = None,
                       ratios: Sequence[Fraction] = DEFAULT_RATIOS,
                       depths: Sequence[int] = DEFAULT_DEPTHS) -> ClosedFormCheck:
    """Check H(r) (default :func:`anbn_entropy`) and its per-token form against
    ``theory.losses.entropy(anbn_geometric(r), depth=D)``: the certified bracket [lo, hi] must contain
    the closed form (rigorously); lo must equal the symbolic partial sum and hi − lo (the distribution's
    own certified tail) the symbolic tail, exactly.

    Raises:
        ClosedFormError: a closed form in other symbols than r, or not a combination of logarithms;
            a depth below 1.
    """
    import sympy as sp

    from theory.losses import entropy, per_token

    S = symbols()
    H = anbn_entropy() if closed_form is None else sp.sympify(closed_form)
    Ht = anbn_entropy_per_token() if per_token_form is None else sp.sympify(per_token_form)
    partial, tail = anbn_entropy_partial(), anbn_entropy_tail()
    _check_depths(depths)
    cases: list[CaseResult] = []
    for r in map(Fraction, ratios):
        P = anbn_geometric(r)
        for D in depths:
            params = {"r": r, "depth": D}
            value = entropy(P, depth=D)
            assert isinstance(value, LogInterval)
            cases.append(_bracket_case("entropy per sequence", params, _at(H, [S.r], {S.r: r}), value))
            # per_token maps a LogInterval to a LogInterval (its return type is the LossValue union)
            cases.append(_bracket_case("entropy per token", params, _at(Ht, [S.r], {S.r: r}), cast(LogInterval, per_token(value, P))))
            cases.append(_exact_case("truncated entropy = symbolic partial sum", params,
                                     _at(partial, [S.r, S.D], {S.r: r, S.D: D}), value.lo))
            cases.append(_exact_case("certified entropy tail = symbolic tail", params,
                                     _at(tail, [S.r, S.D], {S.r: r, S.D: D}), value.hi - value.lo))
    half = sp.simplify(Ht.subs(S.r, sp.Rational(1, 2)) / sp.log(2))
    facts = (
        SymbolicFact("closed form = -sum_n P(n) ln P(n) (sympy summation, simplified)", _same(H, anbn_entropy()) or None),
        SymbolicFact("per-token form = closed form / (E|x| + 1), E|x| = 2/(1 - r)",
                     _same(Ht, H / (anbn_mean_length() + 1)) or None),
        SymbolicFact(f"per-token entropy at r = 1/2 is 2/5 bit (sympy: {half} bit)", half == sp.Rational(2, 5)),
    )
    return ClosedFormCheck("anbn-entropy", "H(r) = h(r)/(1 - r) nats per sequence, h(r)/(3 - r) per token; "
                           "h(r) = -r ln r - (1 - r) ln(1 - r)", _sstr(H), tuple(cases), facts)


DEFAULT_MODEL_RATIOS: tuple[Fraction, ...] = (Fraction(1, 2), Fraction(1, 3), Fraction(3, 4), Fraction(1, 10))
DEFAULT_CE_RATIOS: tuple[Fraction, ...] = (Fraction(1, 2), Fraction(1, 3), Fraction(3, 4))
DEFAULT_CE_DEPTHS: tuple[int, ...] = (2, 16)


def check_geometric_ce(closed_form: "sympy.Expr | None" = None,
                       data_ratios: Sequence[Fraction] = DEFAULT_CE_RATIOS,
                       model_ratios: Sequence[Fraction] = DEFAULT_MODEL_RATIOS,
                       depths: Sequence[int] = DEFAULT_CE_DEPTHS) -> ClosedFormCheck:
    """Check CE(r, s) (default :func:`geometric_cross_entropy`) against
    ``theory.losses.cross_entropy(anbn_geometric(r), geometric_model(s), depth=D, tail_bound=…)`` with
    the symbolic tail :func:`geometric_ce_tail`; also KL = CE − H against ``kl_divergence`` and the
    minimiser s* = r (solve, second derivative, CE(r, r) = H).

    Raises:
        ClosedFormError: a closed form in other symbols than r, s, or not a combination of logarithms;
            a depth below 1.
    """
    import sympy as sp

    from theory.losses import cross_entropy, kl_divergence

    S = symbols()
    CE = geometric_cross_entropy() if closed_form is None else sp.sympify(closed_form)
    KL = CE - anbn_entropy()
    part, tail, kl_tail = geometric_ce_partial(), geometric_ce_tail(), geometric_kl_tail()
    _check_depths(depths)
    cases: list[CaseResult] = []
    for r in map(Fraction, data_ratios):
        P = anbn_geometric(r)
        for s in map(Fraction, model_ratios):
            Q = geometric_model(s)
            for D in depths:
                params = {"r": r, "s": s, "depth": D}
                at: dict[Any, Fraction | int] = {S.r: r, S.s: s, S.D: D}
                ce = cross_entropy(P, Q, depth=D, tail_bound=_log_bound(tail, [S.r, S.s, S.D], at))
                kl = kl_divergence(P, Q, depth=D, tail_bound=_log_bound(kl_tail, [S.r, S.s, S.D], at))
                assert isinstance(ce, LogInterval) and isinstance(kl, LogInterval)
                cases.append(_bracket_case("cross-entropy", params, _at(CE, [S.r, S.s], at), ce))
                cases.append(_exact_case("truncated cross-entropy = symbolic partial sum", params,
                                         _at(part, [S.r, S.s, S.D], at), ce.lo))
                cases.append(_bracket_case("KL = CE - H", params, _at(KL, [S.r, S.s], at), kl))
    m = geometric_ce_minimiser(CE)
    facts = (
        SymbolicFact("closed form = E_n[-ln((1 - s) s^(n-1))] (sympy summation, simplified)",
                     _same(CE, geometric_cross_entropy()) or None),
        SymbolicFact("closed form = symbolic partial sum to depth D + tail beyond D", _same(CE, part + tail) or None),
        SymbolicFact(f"dCE/ds = 0 has the single solution s = r (sympy solve: {list(map(str, m.solutions))})",
                     m.unique_at_r),
        SymbolicFact(f"d2CE/ds2 = {m.second_derivative} > 0 for 0 < r, s < 1", m.convex),
        SymbolicFact("CE(r, r) = H(r)", m.value_is_entropy or None),
    )
    return ClosedFormCheck("geometric-ce", "CE(r, s) = -ln(1 - s) - r/(1 - r) ln s; argmin_s CE = r; CE(r, r) = H(r)",
                           _sstr(CE), tuple(cases), facts)


DEFAULT_PADDED_CASES: tuple[tuple[str, int, int], ...] = (
    ("anbn", 128, 258), ("anbn", 128, 300), ("anbn", 64, 130), ("anbn", 10, 22), ("anbn", 2, 6),
    ("anbncn", 85, 257), ("anbncn", 85, 258), ("anbncn", 10, 32),
)

_LANGUAGES = {"anbn": uniform_anbn, "anbncn": uniform_anbncn}


def check_padded_floor(closed_form: "sympy.Expr | None" = None,
                       cases: Sequence[tuple[str, int, int]] = DEFAULT_PADDED_CASES) -> ClosedFormCheck:
    """Check ln N / (T − 1) (default :func:`padded_floor`) for equality with
    ``padded_per_token(entropy(P), P, T)``, P uniform over ``language`` ("anbn" or "anbncn") with
    n = 1..N — exact LogCombination equality.

    Raises:
        ClosedFormError: an unknown language, or a closed form in other symbols than N, T.
    """
    import sympy as sp

    from theory.losses import entropy, padded_per_token

    S = symbols()
    F = padded_floor() if closed_form is None else sp.sympify(closed_form)
    out: list[CaseResult] = []
    for language, N, T in cases:
        if language not in _LANGUAGES:
            raise ClosedFormError(f"unknown language {language!r} (known: {sorted(_LANGUAGES)})")
        P = _LANGUAGES[language](N)
        value = padded_per_token(entropy(P), P, T)
        assert isinstance(value, LogCombination)
        out.append(_exact_case(f"padded per-token entropy ({language})", {"N": N, "T": T},
                               _at(F, [S.N, S.T], {S.N: N, S.T: T}), value))
    facts = (SymbolicFact("closed form = (-sum_{n<=N} (1/N) ln(1/N)) / (T - 1)", _same(F, padded_floor()) or None),)
    return ClosedFormCheck("padded-floor", "floor = ln N / (T - 1) nats per padded token", _sstr(F), tuple(out), facts)
