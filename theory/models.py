"""Autoregressive models: a next-token distribution q(· | u) for *every* prefix u ∈ Σ*.

An :class:`ARModel` is anything with an ``alphabet`` and a ``next_token(prefix)`` method.  Provided:

* :class:`TabularModel` — an explicit table of exact rows (with an optional default row);
* :class:`FunctionModel` — rows computed by a Python function (validated, memoised);
* :class:`PatchedModel` — equal to a base model except on a named set of prefixes, the shape of
  every counterexample in this project;
* :class:`SupportExtension` — the data's own conditionals on S(P), any other model off S(P)
  (Proposition 1's construction).

Every model that enters a verdict path (a loss, a property, a witness) goes through
:func:`validated` first: a :class:`ValidatedModel` memo that fixes the first row read at each prefix
(a model answering differently on a second call cannot show the loss and the property two
functions) and checks each row once (the model's own alphabet in its order, exact entries ≥ 0,
sum exactly 1), keeping an immutable copy.  Which models copy p(· | u) on the whole support — what
closes an infinite-support KL tail at 0 — is decided by :func:`copies_support` from a private
record of the objects this module built, never by ``isinstance``.
"""

from __future__ import annotations

import copyreg
import math
import numbers
import operator
import weakref
from fractions import Fraction
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol, runtime_checkable

from theory.alphabet import EOS, Alphabet
from theory.errors import InvalidDistribution, InvalidModel, UndefinedPrefix
from theory.probability import NextTokenDistribution, RowLike, as_row  # noqa: F401  (re-exported: public names)

if TYPE_CHECKING:
    from theory.data import DataDistribution


@runtime_checkable
class ARModel(Protocol):
    """The protocol every model satisfies: ``next_token(prefix)`` → q(· | prefix) over Σ ∪ {EOS}."""

    @property
    def alphabet(self) -> Alphabet:  # read-only: a plain attribute satisfies it too
        ...

    def next_token(self, prefix: str) -> NextTokenDistribution:
        ...


def sequence_probability(model: ARModel, seq: str) -> Fraction:
    """Q(x) = ∏ₜ q(xₜ | x<ₜ) · q(EOS | x), exactly, from the model's validated rows.

    Raises: InvalidModel / InvalidDistribution (see :func:`validated`), UnknownToken."""
    model = validated(model)
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
        if not isinstance(patches, Mapping):
            raise InvalidDistribution(f"patches {patches!r} of {name!r} are not a mapping {{prefix: row}}")
        rows: dict[str, NextTokenDistribution] = {}
        for u, row in patches.items():
            base.alphabet.check_sequence(u, "patched prefix")
            rows[u] = as_row(base.alphabet, row, u)
        # Read-only, and recorded: copies_support trusts only the patches this constructor saw.
        self.patches: Mapping[str, NextTokenDistribution] = MappingProxyType(rows)
        _record_construction(self, (base, self.patches))

    def __reduce__(self) -> tuple[object, ...]:
        # Copies and pickles of the library class go through the constructor (so they are recorded
        # like the original); a subclass is copied field by field, as before, and stays unrecorded.
        if type(self) is PatchedModel:
            return (PatchedModel, (self.base, dict(self.patches), self.name))
        return (copyreg.__newobj__, (type(self),), {**vars(self), "patches": dict(self.patches)})  # type: ignore[attr-defined]

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
        _record_construction(self, (data,))

    def __reduce__(self) -> tuple[object, ...]:
        # As PatchedModel.__reduce__: only the library class is rebuilt through its constructor.
        if type(self) is SupportExtension:
            return (SupportExtension, (self.data, self.off_support, self.name))
        return (copyreg.__newobj__, (type(self),), dict(vars(self)))  # type: ignore[attr-defined]

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


# ---- structural facts, from construction records only ----------------------------------------------
_CONSTRUCTED: "weakref.WeakKeyDictionary[object, tuple[object, ...]]" = weakref.WeakKeyDictionary()
"""Objects built by this module's own constructors (exact class, no subclass), with the arguments
their structure rests on.  Module-private: a caller cannot add to it except by constructing."""


def _record_construction(model: object, parts: tuple[object, ...]) -> None:
    # Only the exact library classes are recorded: a subclass may override next_token, so having
    # run our __init__ proves nothing about what it returns.
    if type(model) in (PatchedModel, SupportExtension):
        _CONSTRUCTED[model] = parts


def _intact(model: object, cls: type, current: tuple[object, ...]) -> bool:
    """``model`` is of exactly ``cls``, was built by its constructor, still has the parts recorded
    then (compared by identity), and carries no instance-level ``next_token`` override."""
    if type(model) is not cls:
        return False
    recorded = _CONSTRUCTED.get(model)
    if recorded is None or len(recorded) != len(current):
        return False
    return all(a is b for a, b in zip(recorded, current)) and "next_token" not in vars(model)


def copies_support(model: ARModel, data: "DataDistribution") -> bool:
    """True when ``model`` is known *by its construction* to return p(· | u) at every u ∈ S(P): a
    :class:`SupportExtension` of this very ``data``, possibly wrapped in :class:`PatchedModel` s whose
    patched prefixes all have P(u) = 0, and possibly in a :class:`ValidatedModel` memo.  This is what
    lets an infinite-support KL tail be closed at 0.

    The evidence is a private record of the objects this module's constructors built (exact class,
    parts unchanged since): a subclass, an object whose ``data``/``base``/``patches`` were swapped
    after construction, or one with ``next_token`` replaced on the instance gives False, as does
    any other model or a patch on a support prefix, however deep."""
    while True:
        if type(model) is ValidatedModel:  # its memo holds only rows the wrapped model gave
            model = model.model  # type: ignore[assignment]  # any object the wrapper was built on
        elif type(model) is PatchedModel:
            if not _intact(model, PatchedModel, (model.base, model.patches)):
                return False
            if any(data.prefix_mass(u) > 0 for u in model.patches):
                return False
            model = model.base
        else:
            break
    return type(model) is SupportExtension and _intact(model, SupportExtension, (model.data,)) and model.data is data


# ---- the validating memo -------------------------------------------------------------------------
_Rows = dict[str, tuple[Fraction, ...]]
_Checked = dict[int, tuple[Fraction, ...]]
_MEMOS: dict[int, tuple["weakref.ref[object]", Alphabet, _Rows, _Checked]] = {}
"""id(model) → (weak reference, declared alphabet, {prefix: validated row}, {id(t): t for row tuples t
already validated}): one memo per model object for as long as it lives, so every wrapper of it — a
witness's, a loss's, a property's — sees the same rows.  Keyed by identity (a model's own
``__eq__``/``__hash__`` are not trusted)."""


def _memo_for(model: object, alphabet: Alphabet) -> tuple[_Rows, _Checked]:
    key = id(model)
    entry = _MEMOS.get(key)
    if entry is not None and entry[0]() is model:
        if entry[1] != alphabet:
            raise InvalidModel(f"model {_name(model)} now declares alphabet {str(alphabet)!r}, but its rows were "
                               f"first read over {str(entry[1])!r}")
        return entry[2], entry[3]
    rows: _Rows = {}
    checked: _Checked = {}
    try:
        ref = weakref.ref(model, lambda r, k=key:  # type: ignore[misc]  # default-argument lambda
                           _MEMOS.pop(k, None) if _MEMOS.get(k, (None,))[0] is r else None)
    except TypeError:  # not weak-referenceable (__slots__ without __weakref__): a memo per wrapper
        return rows, checked
    _MEMOS[key] = (ref, alphabet, rows, checked)
    return rows, checked


_ONLY_FRACTION = {Fraction}
# Fraction's slots, read from C; the public properties are the fallback on another implementation.
_NUMERATOR = operator.attrgetter("_numerator" if hasattr(Fraction(1), "_numerator") else "numerator")
_DENOMINATOR = operator.attrgetter("_denominator" if hasattr(Fraction(1), "_denominator") else "denominator")


def _name(model: object) -> str:
    name = getattr(model, "name", None)
    return repr(name) if isinstance(name, str) else type(model).__name__


def _entry(value: object, token: str, prefix: str, who: str) -> Fraction:
    """One row entry as a plain, normalised Fraction ≥ 0; floats, bools, NaN and junk refused."""
    if isinstance(value, numbers.Rational) and not isinstance(value, bool):
        try:  # rebuilt, so an unnormalised Fraction (negative or zero denominator) is seen for what it is
            p = Fraction(int(value.numerator), int(value.denominator))
        except ZeroDivisionError:
            raise InvalidDistribution(f"model {who} at prefix {prefix!r}: q({token!r}) = {value!r} "
                                      "has denominator 0") from None
    else:
        raise InvalidDistribution(f"model {who} at prefix {prefix!r}: q({token!r}) = {value!r} is "
                                  f"{type(value).__name__}, not an exact rational")
    if p < 0:
        raise InvalidDistribution(f"model {who} at prefix {prefix!r}: q({token!r}) = {p} is negative")
    return p


def validate_row(alphabet: Alphabet, row: object, prefix: str, who: str = "model") -> tuple[Fraction, ...]:
    """The probabilities of ``row`` as q(· | prefix) of a model over ``alphabet``, as a fresh tuple of
    plain Fractions (so later changes to ``row`` cannot reach it).

    Raises:
        InvalidDistribution: ``row`` is not a NextTokenDistribution, is over another alphabet or the
        same symbols in another order, has the wrong length, an entry that is not an exact rational
        or is negative, or entries that do not sum to exactly 1 — naming the prefix and the value.
    """
    if not isinstance(row, NextTokenDistribution):
        raise InvalidDistribution(f"model {who} at prefix {prefix!r} returned {type(row).__name__} "
                                  f"{_short(row)}, not a NextTokenDistribution")
    ra = row.alphabet
    if type(ra) is not Alphabet or ra.symbols != alphabet.symbols:
        shown = str(ra) if type(ra) is Alphabet else repr(ra)
        raise InvalidDistribution(f"model {who} at prefix {prefix!r} returned a row over alphabet {shown!r}, "
                                  f"but declares {str(alphabet)!r} (same symbols in the same order required)")
    probs = row.probs
    outcomes = alphabet.outcomes
    if not isinstance(probs, (tuple, list)) or len(probs) != len(outcomes):
        raise InvalidDistribution(f"model {who} at prefix {prefix!r} returned probabilities {_short(probs)}, "
                                  f"not {len(outcomes)} values for {outcomes}")
    out = tuple(_entry(v, t, prefix, who) for v, t in zip(probs, outcomes))
    total = sum(out)
    if total != 1:
        raise InvalidDistribution(f"model {who} at prefix {prefix!r}: probabilities sum to {total}, not 1")
    return out


def _short(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


class ValidatedModel:
    """A validating memo around a model (build it with :func:`validated`).

    ``next_token(u)`` asks the wrapped model once per prefix, validates the row
    (:func:`validate_row`) and from then on answers an immutable copy of it: a fresh
    :class:`NextTokenDistribution` each call, so nothing a caller does to one row reaches another.
    The memo is shared by every wrapper of the same model object.  Other attributes (``name``,
    ``state_key``, …) are read from the wrapped model.
    """

    __slots__ = ("_model", "_alphabet", "_symbols", "_memo", "_checked", "_who")
    # for the type checker only (set through object.__setattr__; other names go to __getattr__)
    _model: Any
    _alphabet: Alphabet
    _symbols: frozenset[str]
    _memo: _Rows
    _checked: _Checked
    _who: str

    def __init__(self, model: object, alphabet: Alphabet, memo: tuple[_Rows, _Checked]) -> None:
        object.__setattr__(self, "_model", model)
        object.__setattr__(self, "_alphabet", alphabet)
        object.__setattr__(self, "_symbols", frozenset(alphabet.symbols))
        object.__setattr__(self, "_memo", memo[0])
        object.__setattr__(self, "_checked", memo[1])
        object.__setattr__(self, "_who", _name(model))

    @property
    def model(self) -> object:
        """The wrapped model."""
        return self._model

    @property
    def alphabet(self) -> Alphabet:
        """The alphabet the model declared when first wrapped."""
        return self._alphabet

    def next_token(self, prefix: str) -> NextTokenDistribution:
        """q(· | prefix): the first row the model gave there, validated, as a fresh object.

        Raises:
            UnknownToken: a prefix token outside Σ.  InvalidDistribution: an invalid row.
        """
        return NextTokenDistribution._trusted(self._alphabet, self.probs(prefix))

    def probs(self, prefix: str) -> tuple[Fraction, ...]:
        """The validated row at ``prefix`` as an immutable tuple of Fractions in outcome order (what
        :meth:`next_token` wraps; the losses read it directly).  Raises: as :meth:`next_token`."""
        probs = self._memo.get(prefix) if type(prefix) is str else None
        if probs is None:
            if type(prefix) is not str or not self._symbols.issuperset(prefix):
                self._alphabet.check_sequence(prefix, "prefix")  # raises, naming the bad token
            prefix = str(prefix)  # a str subclass could hash or compare unlike the prefix it spells
            probs = self._validate(self._model.next_token(prefix), prefix)
            probs = self._memo.setdefault(prefix, probs)  # a re-entrant read may have got there first
        return probs

    def _validate(self, row: object, prefix: str) -> tuple[Fraction, ...]:
        # Fast path for the common row (a genuine NextTokenDistribution holding a tuple of plain
        # Fractions), all in C-level map/sum; anything else, and any failure, goes to validate_row,
        # which accepts other exact rationals and raises the precise error.  Rows handed out at many
        # prefixes (a policy's row per automaton state) are checked once: a tuple of Fractions cannot
        # change, and ``_checked`` keeps it alive so its id is not reused.
        if type(row) is NextTokenDistribution:
            probs, ra = row.probs, row.alphabet
            same = ra is self._alphabet or (type(ra) is Alphabet and ra.symbols == self._alphabet.symbols)
            if type(probs) is tuple and same:
                if self._checked.get(id(probs)) is probs:
                    return probs
                if len(probs) == len(self._alphabet.symbols) + 1 and set(map(type, probs)) == _ONLY_FRACTION:
                    nums, dens = list(map(_NUMERATOR, probs)), list(map(_DENOMINATOR, probs))
                    common = math.lcm(*dens)  # Σ n_i/d_i = 1 over the common denominator, in integers
                    # min(dens) > 0: an unnormalised Fraction(1, -2) would otherwise pass as +1/2.
                    if min(nums) >= 0 and min(dens) > 0 and \
                            sum(map(operator.mul, nums, map(common.__floordiv__, dens))) == common:
                        self._checked[id(probs)] = probs
                        return probs
        return validate_row(self._alphabet, row, prefix, self._who)

    def __getattr__(self, name: str) -> object:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._model, name)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"a ValidatedModel is read-only (tried to set {name!r})")

    def __repr__(self) -> str:
        return f"validated({self._model!r})"


def validated(model: object) -> ValidatedModel:
    """``model`` wrapped in its validating memo; a :class:`ValidatedModel` is returned as is.

    Cheap: one identity lookup when the model was wrapped before, and each row is checked only on
    its first read.

    Raises:
        InvalidModel: no ``alphabet`` of type Alphabet, no callable ``next_token``, or an alphabet
        other than the one the model declared when its rows were first read.
    """
    if type(model) is ValidatedModel:
        return model
    alphabet = getattr(model, "alphabet", None)
    if type(alphabet) is not Alphabet:
        raise InvalidModel(f"{_short(model)} is not an AR model: its alphabet {_short(alphabet)} is not an Alphabet")
    if not callable(getattr(model, "next_token", None)):
        raise InvalidModel(f"{_short(model)} is not an AR model: it has no next_token(prefix) method")
    return ValidatedModel(model, alphabet, _memo_for(model, alphabet))


def uniform_model(alphabet: Alphabet) -> FunctionModel:
    """q(· | u) uniform over Σ ∪ {EOS} at every prefix."""
    row = NextTokenDistribution.uniform(alphabet)
    return FunctionModel(alphabet, lambda _u: row, name="uniform")
