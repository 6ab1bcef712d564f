from fractions import Fraction

import networkx as nx
from hypothesis import given

from theory import anbn_geometric, prefix_trie
from theory.strategies import data_distributions


@given(data_distributions(alphabet="abc", max_len=4))
def test_trie_is_a_tree_of_support_prefixes_with_consistent_masses(P):
    g = prefix_trie(P)
    assert nx.is_arborescence(g)
    assert set(g.nodes) == set(P.support_prefixes())
    for u, attrs in g.nodes(data=True):
        children = sum(g.nodes[v]["mass"] for v in g.successors(u))
        assert attrs["mass"] == children + attrs["end"] == P.prefix_mass(u)
        assert sum(g.edges[u, v]["prob"] for v in g.successors(u)) + attrs["end"] / attrs["mass"] == 1


def test_infinite_support_trie_to_depth():
    g = prefix_trie(anbn_geometric(Fraction(1, 2)), max_depth=6)
    assert g.nodes["aaa"]["mass"] == Fraction(1, 4)
    assert g.edges["aa", "aab"]["prob"] == Fraction(1, 2)
    assert max(len(u) for u in g.nodes) == 5
