"""The GINC-style mixture of HMMs as exact objects (docs/theory.md §4, Proposition 2).

Hidden state h = (entity e, property v), numbered h = e·V + v.  Emissions are deterministic through
a fixed table ``emission[e][v]``; property 0 emits the delimiter and no other property does.  The
transition factorises: K_c[(e, v), (e', v')] = E[e, e'] · T_c[v, v'] with a shared, sticky entity
matrix E and one property matrix T_c per concept c.  Documents start from the uniform distribution
over hidden states and last ``doc_length`` tokens; the pretraining distribution P mixes the first
``n_pretrain`` concepts with a uniform prior; the remaining concepts are held out.

GINC's draw (Xie et al. 2021), made exact: each concept's property matrix is a softmax(·/temperature)
mixture of random permutation matrices whose weights are rounded to dyadic rationals; the entity
matrix is stickiness · I + (1 − stickiness) · (a permutation mixture); η of the uniform matrix is
mixed into both, so every transition is strictly positive when η > 0.  Every probability is a
:class:`~fractions.Fraction`; the float64 arrays used by :mod:`constructions.icl.forward` are their
round-to-nearest images (relative error ≤ 2⁻⁵³ each, which the forward error bound counts).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from functools import cached_property
from typing import Sequence

import numpy as np

from constructions.icl.config import GINCConfig
from theory.errors import InvalidDistribution, InvalidHMM, UnknownToken
from theory.probability import as_probability
from theory.validation import check_int

Matrix = tuple[tuple[Fraction, ...], ...]


def check_stochastic(matrix: Sequence[Sequence[object]], name: str, size: int | None = None) -> Matrix:
    """``matrix`` as an exact square row-stochastic matrix of Fractions.

    Raises:
        InvalidDistribution: not square (or not ``size`` × ``size``), an entry that is a float, negative,
            above one or not a number, or a row that does not sum to exactly 1 (naming matrix, row, sum).
    """
    if size is not None:
        check_int(size, f"{name}: matrix size", minimum=1, error=InvalidDistribution)
    try:
        rows = [list(r) for r in matrix]
    except TypeError:
        raise InvalidDistribution(f"{name} = {matrix!r} is not a matrix (a sequence of rows)") from None
    n = len(rows)
    if n == 0 or (size is not None and n != size) or any(len(r) != n for r in rows):
        shape = f"{n} x {sorted({len(r) for r in rows})}"
        raise InvalidDistribution(f"{name} must be a square {size or n} x {size or n} matrix, got {shape}")
    out = []
    for i, r in enumerate(rows):
        exact = tuple(as_probability(x, f"{name}[{i}][{j}]") for j, x in enumerate(r))
        total = sum(exact)
        if total != 1:
            raise InvalidDistribution(f"{name} is not row-stochastic: row {i} sums to {total}, not 1")
        out.append(exact)
    return tuple(out)


@dataclass(frozen=True, eq=False)
class MixtureHMM:
    """A mixture of HMMs over hidden states (entity, property) with deterministic emissions.

    Build with :func:`build_ginc` (from a :class:`GINCConfig`) or :meth:`from_matrices` (explicit,
    validated).  ``concepts[:n_pretrain]`` form the pretraining mixture P (uniform prior); the others
    are held out.  Start distribution: uniform over all hidden states.
    """

    n_entities: int
    n_properties: int
    vocab_size: int
    delimiter: int
    doc_length: int
    emission: tuple[tuple[int, ...], ...]
    entity_transition: Matrix
    concepts: tuple[Matrix, ...]
    n_pretrain: int
    config: GINCConfig | None = field(default=None, compare=False)

    # ---- construction ---------------------------------------------------------------------------
    @classmethod
    def from_matrices(cls, emission: Sequence[Sequence[int]], entity_transition: Sequence[Sequence[object]],
                      concepts: Sequence[Sequence[Sequence[object]]], *, n_pretrain: int | None = None,
                      vocab_size: int, delimiter: int = 0, doc_length: int,
                      config: GINCConfig | None = None) -> "MixtureHMM":
        """Validate explicit parameters.

        Raises:
            UnknownToken: the delimiter or an emitted token outside range(vocab_size).
            InvalidDistribution: a non-stochastic matrix (named, with the bad row and its sum).
            InvalidHMM: a malformed emission table (property 0 must emit the delimiter, others must not),
                no concepts, a bad vocab_size, n_pretrain or doc_length.
        """
        check_int(vocab_size, "vocab_size =", minimum=2, error=InvalidHMM)
        check_int(delimiter, "delimiter token", minimum=0, maximum=vocab_size - 1, error=UnknownToken,
                  note="a token of the vocabulary")
        check_int(doc_length, "doc_length =", minimum=2, error=InvalidHMM)
        table = tuple(tuple(row) for row in emission)
        n_e = len(table)
        n_v = len(table[0]) if table else 0
        if n_e < 1 or n_v < 2 or any(len(r) != n_v for r in table):
            raise InvalidHMM(f"emission table must be n_entities x n_properties with n_properties >= 2, got {n_e} rows")
        for e, row in enumerate(table):
            for v, tok in enumerate(row):
                check_int(tok, f"emission[{e}][{v}] =", minimum=0, maximum=vocab_size - 1, error=UnknownToken,
                          integral=True, note="a token of the vocabulary")
                if (v == 0) != (tok == delimiter):
                    what = "must emit" if v == 0 else "must not emit"
                    raise InvalidHMM(f"emission[{e}][{v}] = {tok}: property {v} {what} the delimiter {delimiter}")
        table = tuple(tuple(int(t) for t in row) for row in table)
        ent = check_stochastic(entity_transition, "entity transition matrix", n_e)
        if not concepts:
            raise InvalidHMM("a mixture of HMMs needs at least one concept")
        mats = tuple(check_stochastic(T, f"property transition matrix of concept {c}", n_v) for c, T in enumerate(concepts))
        n_pre = len(mats) if n_pretrain is None else n_pretrain
        check_int(n_pre, "n_pretrain =", minimum=1, maximum=len(mats), error=InvalidHMM, note="a count of the concepts")
        return cls(n_e, n_v, vocab_size, delimiter, doc_length, table, ent, mats, n_pre, config)

    # ---- sizes and exact views -----------------------------------------------------------------------
    @property
    def n_hidden(self) -> int:
        return self.n_entities * self.n_properties

    @property
    def n_concepts(self) -> int:
        return len(self.concepts)

    @property
    def pretrain_concepts(self) -> tuple[int, ...]:
        return tuple(range(self.n_pretrain))

    @property
    def heldout_concepts(self) -> tuple[int, ...]:
        return tuple(range(self.n_pretrain, self.n_concepts))

    def hidden(self, e: int, v: int) -> int:
        return e * self.n_properties + v

    def transition(self, c: int, h: int, h2: int) -> Fraction:
        """K_c[h, h'] = E[e, e'] · T_c[v, v'], exactly."""
        V = self.n_properties
        return self.entity_transition[h // V][h2 // V] * self.concepts[c][h % V][h2 % V]

    @cached_property
    def emit(self) -> np.ndarray:
        """Token of each hidden state, shape (H,)."""
        return np.array([self.emission[h // self.n_properties][h % self.n_properties] for h in range(self.n_hidden)],
                        dtype=np.int64)

    @cached_property
    def states_of(self) -> tuple[tuple[int, ...], ...]:
        """For each token, the hidden states emitting it (sorted)."""
        out: list[list[int]] = [[] for _ in range(self.vocab_size)]
        for h, tok in enumerate(self.emit.tolist()):
            out[tok].append(h)
        return tuple(tuple(s) for s in out)

    @property
    def width(self) -> int:
        """W: the most hidden states any one token has (the block width of the float forward)."""
        return max(1, max(len(s) for s in self.states_of))

    @cached_property
    def strictly_positive(self) -> bool:
        """Every transition of every concept is > 0 (then no ICL prompt has P(u) = 0, and the float
        forward cannot underflow: see :mod:`constructions.icl.forward`)."""
        return all(x > 0 for row in self.entity_transition for x in row) and all(
            x > 0 for T in self.concepts for row in T for x in row)

    # ---- float images -------------------------------------------------------------------------------
    @cached_property
    def kernels(self) -> np.ndarray:
        """float64 K_c for every concept, shape (C, H, H): fl(fl(E)·fl(T_c)) entrywise (≤ 3 roundings)."""
        E = np.array([[float(x) for x in r] for r in self.entity_transition])
        out = np.empty((self.n_concepts, self.n_hidden, self.n_hidden))
        for c, T in enumerate(self.concepts):
            Tf = np.array([[float(x) for x in r] for r in T])
            out[c] = np.kron(E, Tf)
        return out

    @cached_property
    def min_positive_kernel(self) -> float:
        k = self.kernels
        return float(k[k > 0].min())

    def describe(self) -> dict[str, object]:
        """The parameters, for certificates (sizes and the named knobs of the config)."""
        d: dict[str, object] = {
            "n_entities": self.n_entities, "n_properties": self.n_properties, "vocab_size": self.vocab_size,
            "delimiter": self.delimiter, "doc_length": self.doc_length, "n_pretrain_concepts": self.n_pretrain,
            "n_heldout_concepts": self.n_concepts - self.n_pretrain,
            "strictly_positive_transitions": self.strictly_positive,
        }
        if self.config is not None:
            c = self.config
            d.update({"transition_temp": c.transition_temp, "entity_stickiness": c.entity_stickiness, "eta": c.eta,
                      "n_permutations": c.permutations, "seed": c.seed, "weight_bits": c.weight_bits})
        return d

    def __repr__(self) -> str:
        return (f"MixtureHMM({self.n_entities}x{self.n_properties} states, vocab {self.vocab_size}, "
                f"{self.n_pretrain}+{self.n_concepts - self.n_pretrain} concepts, T={self.doc_length})")


# ---- GINC's draw --------------------------------------------------------------------------------------
def _dyadic_weights(x: np.ndarray, bits: int) -> list[Fraction]:
    """softmax weights rounded to multiples of 2^−bits summing to exactly 1 (largest remainder)."""
    total = 1 << bits
    scaled = x * total
    base = np.floor(scaled).astype(np.int64)
    rest = int(total - base.sum())
    order = np.argsort(-(scaled - base), kind="stable")
    for i in order[:rest]:
        base[i] += 1
    return [Fraction(int(b), total) for b in base]


def _softmax(x: np.ndarray, temp: float) -> np.ndarray:
    z = x / temp
    z = z - z.max()
    w = np.exp(z)
    return w / w.sum()


def _permutation_mixture(rng: np.random.Generator, size: int, n_perm: int, temp: float, bits: int) -> list[list[Fraction]]:
    """Σ_j w_j Perm_j with w = softmax((U − ½)/temp) rounded to dyadics (GINC's generate_transmat_block)."""
    weights = _dyadic_weights(_softmax(rng.random(n_perm) - 0.5, temp), bits)
    mat = [[Fraction(0)] * size for _ in range(size)]
    for w in weights:
        perm = rng.permutation(size)
        for i in range(size):
            mat[i][int(perm[i])] += w
    return mat


def _mix_uniform(mat: list[list[Fraction]], eta: Fraction) -> list[list[Fraction]]:
    n = len(mat)
    return [[(1 - eta) * x + eta / n for x in row] for row in mat]


def build_ginc(config: GINCConfig) -> MixtureHMM:
    """The GINC-style mixture of HMMs for ``config``, deterministic from ``config.seed``.

    Draw order (``numpy.random.default_rng(seed)``): the emission table (non-delimiter properties emit
    uniform random non-delimiter tokens, with collisions, as in GINC's memory matrix); the entity jump
    mixture (n_entities permutations); then each concept's property mixture (pretraining concepts
    first, then held-out ones).
    """
    rng = np.random.default_rng(config.seed)
    E, V = config.n_entities, config.n_properties
    others = np.array([t for t in range(config.vocab_size) if t != config.delimiter])
    draws = rng.integers(0, len(others), size=(E, V - 1))
    emission = [[config.delimiter] + [int(others[i]) for i in draws[e]] for e in range(E)]
    jumps = _mix_uniform(_permutation_mixture(rng, E, E, config.transition_temp, config.weight_bits), config.eta)
    s = config.entity_stickiness
    entity = [[s * (i == j) + (1 - s) * jumps[i][j] for j in range(E)] for i in range(E)]
    concepts = [
        _mix_uniform(_permutation_mixture(rng, V, config.permutations, config.transition_temp, config.weight_bits), config.eta)
        for _ in range(config.n_concepts)
    ]
    return MixtureHMM.from_matrices(emission, entity, concepts, n_pretrain=config.n_pretrain_concepts,
                                    vocab_size=config.vocab_size, delimiter=config.delimiter,
                                    doc_length=config.doc_length, config=config)
