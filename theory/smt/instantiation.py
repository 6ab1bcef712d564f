"""The node lemmas of the modular encoding and the instantiation check (:func:`_node_lemma`,
:func:`_renaming`, :func:`_instance_error`).

**The instantiation check** (modular encoding).  The implication ``F_u ∧ I_children → I_u`` is
trusted, so it must *be* the node lemma at u.  After the node lemmas and before the assembly is
solved, every node u whose statement is the generic one (:meth:`_Spec.instance`) is checked in
Python: the renaming σ_u (each constant of the generic node "u" and of its children "u0", "u1", …
↦ the same constant, by position, of u and of u's children in the trie) applied token by token to
the exact SMT-LIB text the node lemma's query proved must give, string for string and in order, the
facts the assembly asserts at u (its prefix mass, end mass, its children's masses, its rows, …),
the invariants ``I_c`` of u's children (as many as the node lemma has) and u's invariant ``I_u``.
Why this is sound: the node lemma is unsat for *every* value of its constants and every
interpretation of the uninterpreted functions, so its σ_u-instance is a valid formula whatever σ_u
is; the check makes its premises exactly ``facts_u`` (which ``F_u`` implies) and its hypotheses and
conclusion exactly the formulas ``I_c``, ``I_u`` are defined equal to, so ``F_u ∧ I_children → I_u``
follows from that valid formula and the assembly's own definitions.  The assembly is then the
monolithic query plus consequences of it: unsat of one is unsat of the other, and a sat assembly is
a countermodel of the global negated claim (``falsified`` never rests on a node lemma alone).  Cheap:
one ``str.format_map`` per fact per node, no extra z3 query.  A node that fails the check (a
mismatched variable, a wrong mass relation, a missing child) gives ``unknown`` with a reason naming
the node and its prefix, and no assembly is solved.  A node whose statement is *not* the generic one
(a variant at the root), and every node of a shape whose node lemma z3 did not prove, gets no
instance: its facts are asserted directly and z3 does its case analysis in the assembly — so a
false claim that differs from the lemma only at the root comes back ``falsified`` from the modular
encoding too.  ``SMTResult.instances``/``direct`` and the certificate's last assumption say which."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from theory.errors import InvalidSolverOption
from theory.smt.encodings import _result, _Spec
from theory.smt.query import SMTResult, _Query, _solve
from theory.smt.space import _Node

_TOKEN = re.compile(r"[^\s()]+")
_SEP = "\x00"


@dataclass(frozen=True)
class _NodeLemma:
    """A node lemma for one shape ("internal" or "leaf"): z3's verdict (``result``) on
    ``premises ∧ hypotheses → conclusion`` for the generic node "u" with children "u0", "u1", …
    (``labels``), and the exact formulas of that query as ``str.format`` templates whose fields are the
    generic constants (``{mu}``, ``{xu_0}``, ``{mu0}``, …): the instance at a node is the template
    filled with that node's constants.  ``generic`` lists those constants label by label (the keys of
    every renaming); ``whole`` is every template joined by NUL, for a one-call comparison."""

    shape: str
    result: SMTResult
    labels: tuple[str, ...]
    generic: tuple[str, ...]
    premises: tuple[str, ...]
    hypotheses: tuple[str, ...]
    conclusion: str
    whole: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "whole", _SEP.join(self.premises + self.hypotheses + (self.conclusion,)))


def _constants(spec: _Spec, label: str) -> list[str]:
    """The constants a node contributes to a query, in a fixed order (reals, then bools)."""
    return spec.reals(label) + spec.bools(label)


def _template(formula: str, names: frozenset[str]) -> str:
    """``formula`` with every token that is one of ``names`` turned into the field ``{token}``."""
    escaped = formula.replace("{", "{{").replace("}", "}}")
    return _TOKEN.sub(lambda m: "{" + m.group(0) + "}" if m.group(0) in names else m.group(0), escaped)


def _node_lemma(spec: _Spec, k: int, leaf: bool, timeout_ms: int) -> _NodeLemma:
    """F_u ∧ I_children → I_u for a generic non-root node ("u", children "u0"…), proved as unsat of
    its negation; returns the verdict with the query's formulas as instantiation templates.

    Raises:
        InvalidSolverOption: the spec names two generic constants alike or a constant that is not an
            identifier (the renaming would be ill-defined).
    """
    n = _Node("u", () if leaf else tuple(f"u{a}" for a in range(k)), leaf)
    labels = (n.label,) + n.children
    names = [c for lab in labels for c in _constants(spec, lab)]
    if len(set(names)) != len(names) or not all(c.isidentifier() for c in names):
        raise InvalidSolverOption(f"{spec.name}: the generic node's constants are not distinct identifiers: {names}")
    premises, hypotheses = spec.facts(n), [spec.invariant(c) for c in n.children]
    conclusion = spec.invariant(n.label)
    q = _Query(spec.functions)
    q.declare([r for lab in labels for r in spec.reals(lab)], [b for lab in labels for b in spec.bools(lab)])
    q.add(*premises)
    q.add(*hypotheses)
    q.add(f"(not {conclusion})")
    out = _solve(q, timeout_ms)
    shape = "leaf" if leaf else "internal"
    sub = _result(spec, None, "node", q, out, 0)
    res = SMTResult(**{**sub.__dict__, "lemma": f"{spec.name}-node-{shape}", "assumptions": ()})
    nameset = frozenset(names)
    return _NodeLemma(shape, res, labels, tuple(names), tuple(_template(f, nameset) for f in premises),
                      tuple(_template(f, nameset) for f in hypotheses), _template(conclusion, nameset))


def _renaming(spec: _Spec, lemma: _NodeLemma, n: _Node, constants: Mapping[str, Sequence[str]] | None = None) -> dict[str, str]:
    """σ_n: each constant of the generic node and of its children ↦ the same constant of n and of
    n's children (by position), as the trie gives them (``constants``: label → the spec's constants
    for that label, a cache)."""
    actual = [c for lab in (n.label,) + n.children
              for c in (constants[lab] if constants is not None else _constants(spec, lab))]
    return dict(zip(lemma.generic, actual))


def _instance_error(lemma: _NodeLemma, sigma: Mapping[str, str], facts: Sequence[str], hypotheses: Sequence[str],
                    conclusion: str) -> str:
    """"" when the node lemma under ``sigma`` is, string for string, ``facts`` ∧ ``hypotheses`` →
    ``conclusion`` (what the assembly asserts at the node: its facts, its children's invariants, its
    own invariant); otherwise what differs first."""
    if len(hypotheses) != len(lemma.hypotheses):
        return (f"it has {len(hypotheses)} children, the {lemma.shape} node lemma {len(lemma.hypotheses)}")
    if len(facts) == len(lemma.premises):
        # fast path: one substitution of the joined templates.  Equal joined strings mean equal items
        # when the assembly's side has exactly one NUL per seam (then no renamed constant brought one)
        expected = _SEP.join([*facts, *hypotheses, conclusion])
        try:
            if lemma.whole.format_map(sigma) == expected and expected.count(_SEP) == len(facts) + len(hypotheses):
                return ""
        except KeyError:
            pass  # reported below
    try:
        premises = [t.format_map(sigma) for t in lemma.premises]
        hyps = [t.format_map(sigma) for t in lemma.hypotheses]
        concl = lemma.conclusion.format_map(sigma)
    except KeyError as e:
        return f"the node lemma's constant {e.args[0]} has no counterpart at the node"
    if len(premises) != len(facts):
        return f"the node lemma has {len(premises)} premises, the assembly asserts {len(facts)} facts at the node"
    for j, (p, f) in enumerate(zip(premises, facts)):
        if p != f:
            return f"premise {j} instantiates to {p} but the assembly asserts {f} there"
    for j, (h, f) in enumerate(zip(hyps, hypotheses)):
        if h != f:
            return f"hypothesis I_child{j} instantiates to {h} but child {j}'s invariant is {f}"
    if concl != conclusion:
        return f"the conclusion instantiates to {concl} but the node's invariant is {conclusion}"
    return ""


def _modular_assumption(lemmas: Mapping[str, _NodeLemma], counts: Mapping[str, int], direct: Sequence[str],
                        unproved: Sequence[str]) -> str:
    """The certificate's statement of what the modular proof checked."""
    total = sum(counts.values())
    text = (f"modular proof: node lemmas {lemmas['internal'].result.lemma} and {lemmas['leaf'].result.lemma}, each an "
            f"unsat z3 query over a generic node u (F_u & I_children & not I_u); the premises of the node lemma were "
            f"checked at each of the {total:,} nodes used as its instance ({counts['internal']:,} internal, "
            f"{counts['leaf']:,} leaves), in Python, string for string: the node lemma's query text with each generic "
            f"constant renamed to the node's (prefix mass, end mass, children's masses, rows, ...) is exactly the facts "
            f"the assembly asserts at that node, its children's invariants I_c and its invariant I_u; the assembly query "
            f"uses F_u & I_children => I_u at exactly those nodes")
    if direct:
        shown = ", ".join(direct[:8]) + (f", ... ({len(direct):,} in all)" if len(direct) > 8 else "")
        text += f"; asserted directly with no node-lemma instance (z3 does their case analysis in the assembly): {shown}"
    if unproved:
        text += f"; not used because z3 did not prove them: {', '.join(unproved)}"
    return text
