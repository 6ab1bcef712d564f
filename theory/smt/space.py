"""The finite-horizon model space (described in :mod:`theory.smt`): the complete trie of prefixes |u| ≤ L
(:class:`_Tree`), a node as the encodings see it (:class:`_Node`), the row and flow facts every lemma
asserts at a node, and :func:`model_space_size`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from theory.alphabet import Alphabet
from theory.smt.query import _check_int, _sum


def _alphabet(alphabet: str | Alphabet) -> Alphabet:
    return alphabet if isinstance(alphabet, Alphabet) else Alphabet(alphabet)


def model_space_size(alphabet: str | Alphabet, horizon: int) -> int:
    """(|Σ| + 1) · #{u : |u| ≤ L}: one model's row variables at horizon L (24,573 for {a, b}, L = 12).

    Raises:
        InvalidBudget: horizon not an int ≥ 1.
    """
    _check_int(horizon, "horizon", 1)
    return (len(_alphabet(alphabet)) + 1) * _Tree(_alphabet(alphabet), horizon).size


# ---- the complete trie of prefixes |u| ≤ L, in level order ---------------------------------------
class _Tree:
    """Node i's children are k·i + 1 + a; nodes ≥ ``first_leaf`` have |u| = L."""

    def __init__(self, alphabet: Alphabet, horizon: int) -> None:
        self.symbols = tuple(alphabet.symbols)
        self.k, self.horizon = len(alphabet), horizon
        self.K = self.k + 1
        self.size = sum(self.k**d for d in range(horizon + 1))
        self.first_leaf = self.size - self.k**horizon

    def children(self, i: int) -> list[int]:
        return [] if i >= self.first_leaf else [self.k * i + 1 + a for a in range(self.k)]

    def prefix(self, i: int) -> str:
        """Node i's prefix u as a word ("ε" for the root), for messages."""
        out = []
        while i > 0:
            out.append(self.symbols[(i - 1) % self.k])
            i = (i - 1) // self.k
        return "".join(reversed(out)) or "ε"


@dataclass(frozen=True)
class _Node:
    """A node as the encodings see it: a label (names its variables), its children's labels, leaf?,
    root? (the generic node of a node lemma is never the root)."""

    label: str
    children: tuple[str, ...]
    leaf: bool
    root: bool = False


def _row_facts(row: Sequence[str], leaf: bool) -> list[str]:
    """A valid next-token row; at a leaf (|u| = L) every symbol gets 0, so EOS gets 1."""
    facts = [f"(= {_sum(row)} 1)"]
    facts += [f"(= {v} 0)" if leaf and o < len(row) - 1 else f"(>= {v} 0)" for o, v in enumerate(row)]
    return facts


def _flow_facts(n: _Node) -> list[str]:
    """P(u) = P({u}) + Σ_a P(ua) and P({u}) ≥ 0."""
    return [f"(= m{n.label} {_sum([f'e{n.label}'] + [f'm{c}' for c in n.children])})", f"(>= e{n.label} 0)"]
