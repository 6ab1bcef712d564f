"""Autoregressive models: a next-token distribution q(· | u) for *every* prefix u ∈ Σ*.

An :class:`ARModel` is anything with an ``alphabet`` and a ``next_token(prefix)`` method.  Provided:

* :class:`TabularModel` — an explicit table of exact rows (with an optional default row);
* :class:`FunctionModel` — rows computed by a Python function (validated, memoised);
* :class:`PatchedModel` — equal to a base model except on a named set of prefixes, the shape of
  every counterexample in this project;
* :class:`SupportExtension` — the data's own conditionals on S(P), any other model off S(P)
  (Proposition 1's construction).
"""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING, Callable, Mapping, Protocol, runtime_checkable

from theory.alphabet import EOS, Alphabet
from theory.errors import InvalidDistribution, UndefinedPrefix
from theory.probability import NextTokenDistribution

if TYPE_CHECKING:
    from theory.data import DataDistribution

RowLike = NextTokenDistribution | Mapping[str, object]


@runtime_checkable
class ARModel(Protocol):
    """The protocol every model satisfies: ``next_token(prefix)`` → q(· | prefix) over Σ ∪ {EOS}."""

    alphabet: Alphabet

    def next_token(self, prefix: str) -> NextTokenDistribution:
        ...


def as_row(alphabet: Alphabet, row: RowLike, prefix: str) -> NextTokenDistribution:
    """Validate ``row`` as q(· | prefix); a mapping is converted, a distribution checked for its alphabet."""
    if isinstance(row, NextTokenDistribution):
        if row.alphabet != alphabet:
            raise InvalidDistribution(
                f"row at prefix {prefix!r} is over alphabet {str(row.alphabet)!r}, expected {str(alphabet)!r}"
            )
        return row
    if isinstance(row, Mapping):
        return NextTokenDistribution(alphabet, row, where=prefix)
    raise InvalidDistribution(f"row at prefix {prefix!r} is {type(row).__name__}, not a distribution")


def sequence_probability(model: ARModel, seq: str) -> Fraction:
    """Q(x) = ∏ₜ q(xₜ | x<ₜ) · q(EOS | x), exactly."""
    model.alphabet.check_sequence(seq)
    p = Fraction(1)
    for t in range(len(seq)):
        p *= model.next_token(seq[:t]).prob(seq[t])
        if p == 0:
            return p
    return p * model.next_token(seq).prob(EOS)


class TabularModel:
    """A model given by a table ``{prefix: row}`` of exact rows.

    Prefixes not in the table get ``default`` (a row, or a model to delegate to); with no default,
    asking for one raises :class:`UndefinedPrefix`.
    """

    def __init__(
        self,
        alphabet: Alphabet,
        table: Mapping[str, RowLike],
        default: RowLike | ARModel | None = None,
        name: str = "tabular",
    ) -> None:
        self.alphabet = alphabet
        self.name = name
        self.table: dict[str, NextTokenDistribution] = {}
        if not isinstance(table, Mapping):
            raise InvalidDistribution(f"model table {table!r} of {name!r} is not a mapping {{prefix: row}}")
        for u, row in table.items():
            alphabet.check_sequence(u, "prefix")
            self.table[u] = as_row(alphabet, row, u)
        if default is None or isinstance(default, ARModel):
            self._default_model = default
            self._default_row = None
        else:
            self._default_model = None
            self._default_row = as_row(alphabet, default, "<default row>")

    def next_token(self, prefix: str) -> NextTokenDistribution:
        row = self.table.get(prefix)
        if row is not None:
            return row
        self.alphabet.check_sequence(prefix, "prefix")
        if self._default_row is not None:
            return self._default_row
        if self._default_model is not None:
            return self._default_model.next_token(prefix)
        raise UndefinedPrefix(f"model {self.name!r} has no row for prefix {prefix!r} and no default")

    def __repr__(self) -> str:
        return f"TabularModel({self.name!r}, {len(self.table)} rows)"


class FunctionModel:
    """A model whose row at u is ``fn(u)`` (a mapping or a distribution), validated and memoised.

    ``fn`` must be a pure function of the prefix: the memo assumes it.
    """

    def __init__(self, alphabet: Alphabet, fn: Callable[[str], RowLike], name: str = "function") -> None:
        self.alphabet = alphabet
        self.fn = fn
        self.name = name
        self._memo: dict[str, NextTokenDistribution] = {}

    def next_token(self, prefix: str) -> NextTokenDistribution:
        row = self._memo.get(prefix)
        if row is None:
            self.alphabet.check_sequence(prefix, "prefix")
            row = as_row(self.alphabet, self.fn(prefix), prefix)
            self._memo[prefix] = row
        return row

    def __repr__(self) -> str:
        return f"FunctionModel({self.name!r})"


class PatchedModel:
    """``base`` everywhere except on ``patches``' prefixes, where the given rows apply."""

    def __init__(self, base: ARModel, patches: Mapping[str, RowLike], name: str = "patched") -> None:
        self.alphabet = base.alphabet
        self.base = base
        self.name = name
        self.patches: dict[str, NextTokenDistribution] = {}
        if not isinstance(patches, Mapping):
            raise InvalidDistribution(f"patches {patches!r} of {name!r} are not a mapping {{prefix: row}}")
        for u, row in patches.items():
            base.alphabet.check_sequence(u, "patched prefix")
            self.patches[u] = as_row(base.alphabet, row, u)

    @property
    def patched_prefixes(self) -> frozenset[str]:
        """The prefixes on which this model may differ from its base."""
        return frozenset(self.patches)

    def next_token(self, prefix: str) -> NextTokenDistribution:
        row = self.patches.get(prefix)
        return row if row is not None else self.base.next_token(prefix)

    def __repr__(self) -> str:
        return f"PatchedModel({self.name!r}, {len(self.patches)} patched prefixes of {self.base!r})"


class SupportExtension:
    """q(· | u) = p(· | u) for u ∈ S(P) and ``off_support.next_token(u)`` elsewhere.

    Every such model has KL(P ‖ Q) = 0 (Lemma B); what it does off the support is free.
    """

    def __init__(self, data: "DataDistribution", off_support: ARModel, name: str = "support-extension") -> None:
        if off_support.alphabet != data.alphabet:
            raise InvalidDistribution(
                f"off-support model is over {str(off_support.alphabet)!r}, data over {str(data.alphabet)!r}"
            )
        self.alphabet = data.alphabet
        self.data = data
        self.off_support = off_support
        self.name = name

    def next_token(self, prefix: str) -> NextTokenDistribution:
        if self.data.prefix_mass(prefix) > 0:
            return self.data.conditional(prefix)
        return self.off_support.next_token(prefix)

    def __repr__(self) -> str:
        return f"SupportExtension({self.name!r})"


class SequenceMixture:
    """Q_ε(x) = (1 − ε) P(x) + ε R(x) on whole sequences, as an AR model:
    q(t | u) = ((1 − ε) P(ut) + ε R(ut)) / ((1 − ε) P(u) + ε R(u)), with P(ut) the prefix mass of ut
    (of u itself as a whole sequence for t = EOS) and R(·) the prefix probabilities of ``other``.
    Where P(u) = 0 and R(u) > 0 this is exactly r(· | u): the mixture behaves like R off the support,
    while KL(P ‖ Q_ε) ≤ −ln(1 − ε) for every R (the mixing-in lemma of Proposition 2).

    Raises:
        InvalidDistribution: ε not an exact number in (0, 1), or ``other`` over another alphabet.
        UndefinedPrefix (from :meth:`next_token`): a prefix with Q_ε(u) = 0.
    """

    def __init__(self, data: "DataDistribution", other: ARModel, epsilon: object, name: str = "mixture") -> None:
        from theory.probability import as_probability

        eps = as_probability(epsilon, "mixture weight epsilon")
        if not 0 < eps < 1:
            raise InvalidDistribution(f"mixture weight epsilon {eps} must lie strictly between 0 and 1")
        if other.alphabet != data.alphabet:
            raise InvalidDistribution(f"mixed-in model is over {str(other.alphabet)!r}, data over {str(data.alphabet)!r}")
        self.alphabet, self.data, self.other, self.epsilon, self.name = data.alphabet, data, other, eps, name
        self._prefix: dict[str, Fraction] = {"": Fraction(1)}

    def other_prefix_probability(self, u: str) -> Fraction:
        """R(u): the probability that ``other`` generates a word starting with u."""
        if u not in self._prefix:
            self._prefix[u] = self.other_prefix_probability(u[:-1]) * self.other.next_token(u[:-1]).prob(u[-1])
        return self._prefix[u]

    def next_token(self, prefix: str) -> NextTokenDistribution:
        self.alphabet.check_sequence(prefix, "prefix")
        e, P, r_u = self.epsilon, self.data, self.other_prefix_probability(prefix)
        mass = (1 - e) * P.prefix_mass(prefix) + e * r_u
        if mass == 0:
            raise UndefinedPrefix(f"mixture {self.name!r} gives prefix {prefix!r} probability 0")
        r_row = self.other.next_token(prefix)
        row = {EOS: ((1 - e) * P.probability(prefix) + e * r_u * r_row.prob(EOS)) / mass}
        for a in self.alphabet.symbols:
            row[a] = ((1 - e) * P.prefix_mass(prefix + a) + e * r_u * r_row.prob(a)) / mass
        return NextTokenDistribution(self.alphabet, row, where=f"mixture at {prefix!r}")

    def __repr__(self) -> str:
        return f"SequenceMixture({self.name!r}, epsilon={self.epsilon})"


def copies_support(model: ARModel, data: "DataDistribution") -> bool:
    """True when ``model`` is known *by its structure* to return p(· | u) at every u ∈ S(P): a
    :class:`SupportExtension` of this very ``data``, possibly wrapped in :class:`PatchedModel` s whose
    patched prefixes all have P(u) = 0.  This is what lets an infinite-support KL tail be closed at 0;
    any other model (or a patch on a support prefix, however deep) gives False."""
    while isinstance(model, PatchedModel):
        if any(data.prefix_mass(u) > 0 for u in model.patches):
            return False
        model = model.base
    return isinstance(model, SupportExtension) and model.data is data


def uniform_model(alphabet: Alphabet) -> FunctionModel:
    """q(· | u) uniform over Σ ∪ {EOS} at every prefix."""
    row = NextTokenDistribution.uniform(alphabet)
    return FunctionModel(alphabet, lambda _u: row, name="uniform")
