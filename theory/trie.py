"""The prefix trie of S(P) as a ``networkx`` tree, for inspection, drawing and graph algorithms.

The losses do not walk this graph (they use the integer trie of :mod:`theory.data`, which is faster);
it is the public, inspectable view of the same object."""

from __future__ import annotations

from typing import TYPE_CHECKING

from theory.alphabet import EOS
from theory.data import DataDistribution

if TYPE_CHECKING:
    import networkx as nx


def prefix_trie(P: DataDistribution, max_depth: int | None = None) -> "nx.DiGraph":
    """A directed tree rooted at ``""`` with one node per support prefix u (|u| < max_depth for an
    infinite support, where max_depth is then required).

    Node attributes: ``mass`` = P(u), ``end`` = P({u}) (mass that stops at u, i.e. P(u)·p(EOS|u)),
    ``depth`` = |u|.  Edge u → ua has ``token`` = a and ``prob`` = p(a | u).  Exact Fractions.
    """
    import networkx as nx

    g = nx.DiGraph(name=f"prefix trie of {P.name}")
    symbols = P.alphabet.symbols
    for u, mass, masses in P.support_nodes(max_depth):
        g.add_node(u, mass=mass, end=masses[-1], depth=len(u))
        if u:
            parent = u[:-1]
            g.add_edge(parent, u, token=u[-1], prob=mass / g.nodes[parent]["mass"])
    g.graph["eos"] = EOS
    g.graph["alphabet"] = "".join(symbols)
    return g
