"""The appendix's content, independent of the output format: statements, tables and records, every
number read from a certificate.

:func:`sections` groups the entries by the statement of ``docs/theory.md`` they certify and
builds, for each group, its tables (:class:`Table`, plain-text cells) and one record per certificate;
:mod:`nonid.appendix.render` writes them as LaTeX and Markdown.  A certificate that is ``falsified`` or
``unknown`` is kept, with its reason, in every table and record it belongs to.
"""

from __future__ import annotations

import fnmatch
import math
import re
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Sequence

from empirical.figures import tex_number
from nonid.appendix.sources import READ_BACK, RERUN, Entry

# (key, heading, statement; inline math between $…$, valid in LaTeX and in GitHub Markdown)
STATEMENTS: tuple[tuple[str, str, str], ...] = (
    ("chain-rule", "The chain rule",
     "For a data distribution $P$ on $\\Sigma^*$ and an autoregressive model $Q$, "
     "$\\mathrm{KL}(P \\| Q) = \\sum_{u \\in S(P)} P(u) \\, \\mathrm{KL}(p(\\cdot|u) \\| q(\\cdot|u))$, "
     "where $S(P)$ is the set of prefixes of positive mass. Test loss is $H(P) + \\mathrm{KL}(P \\| Q)$."),
    ("lemma-a", "Lemma A (support-only dependence)",
     "$\\mathrm{KL}(P \\| Q)$ depends only on the conditionals $q(\\cdot|u)$ with $u \\in S(P)$: two models that agree "
     "on $S(P)$ have identical test loss, whatever they do elsewhere."),
    ("lemma-b", "Lemma B (identification on the support)",
     "$\\mathrm{KL}(P \\| Q) = 0$ if and only if $q(\\cdot|u) = p(\\cdot|u)$ for every $u \\in S(P)$: the conditionals on "
     "the support are identified, none off it."),
    ("lemma-c", "Lemma C (Gibbs)",
     "$\\mathrm{KL}(P \\| Q) \\ge 0$, so $H(P)$ is the minimum test loss."),
    ("coq", "The machine-checked core (Coq)",
     "The chain rule, Lemmas A, B and C and the lower end of the identification bracket "
     "($P(u) \\, \\mathrm{KL}(p(\\cdot|u) \\| q(\\cdot|u)) \\le \\mathrm{KL}(P \\| Q)$, Pinsker's inequality "
     "$\\mathrm{KL} \\ge 2\\,\\mathrm{TV}^2$, the margin lemma, and that $\\mathrm{KL}(P \\| Q) < P(u)\\gamma_u^2/2$ forces "
     "$Q$'s argmax at $u$ to be $P$'s), proved in Coq for every finite alphabet, every horizon $L$ and every data "
     "distribution on the words of length at most $L$ (finite support; countable support is not covered), resting "
     "only on the axioms of Coq's standard real numbers."),
    ("z3", "Lemmas A, B and C by horizon (z3)",
     "For each horizon $L$, Lemmas A, B and C hold for every data distribution and every model on the words over "
     "$\\{a, b\\}$ of length at most $L$; z3 proves the negation unsatisfiable."),
    ("closed-forms", "Closed forms",
     "Closed-form entropies and cross-entropies of the case studies (e.g. $a^n b^n$ under a geometric prior, the "
     "padded floor $\\ln N / (T - 1)$), each compared with the exact finite computation."),
    ("prop-1", "Proposition 1 (zero-shot rule extrapolation is non-identifiable)",
     "For any $P$ supported in a language $L = R_1 \\cap R_2$ and any set $U$ of OOD prompts there are $Q_1, Q_2$ with "
     "$\\mathrm{KL}(P \\| Q_1) = \\mathrm{KL}(P \\| Q_2) = 0$ such that every greedy (and sampled) completion of $Q_1$ on $U$ "
     "satisfies $R_1$ where satisfiable, and none of $Q_2$'s does."),
    ("prop-2", "Proposition 2 (in-context learning is $\\varepsilon$-non-identifiable)",
     "For the GINC-style mixture of HMMs $P$ and every $\\varepsilon > 0$ there is a model $Q$ with "
     "$\\mathrm{KL}(P \\| Q) \\le \\varepsilon$ whose ICL accuracy differs from that of $P$ by at least $1/2$ "
     "(local surgery at the answer positions, or the mixture $Q_\\varepsilon = (1 - \\varepsilon) P + \\varepsilon R$ "
     "with a no-ICL model $R$)."),
    ("prop-3", "Proposition 3 (fine-tunability is not identified by the function)",
     "For a transformer with ReLU MLPs, the maps $(W_Q, W_K) \\to (\\alpha W_Q, W_K / \\alpha)$, "
     "$(W_V, W_O) \\to (\\alpha W_V, W_O / \\alpha)$ and $(W_1, W_2) \\to (\\alpha W_1, W_2 / \\alpha)$ leave the function "
     "unchanged for every $\\alpha > 0$, yet gradient steps from $\\theta$ and from its image end at different functions; "
     "permutations of heads and hidden units are the control and show no gap."),
    ("empirical", "Rule extrapolation in trained models",
     "Real architectures trained on $a^n b^n$ by maximum likelihood, with an adversarial term and with an oracle term "
     "are each saturated (every run's certified gap $\\mathrm{KL}(P \\| Q)$ per token is at most a stated $\\varepsilon$, "
     "over at least three seeds) while their OOD rule-extrapolation accuracy (OOD R1) differs by a stated margin on "
     "every seed."),
    ("counterexample", "Counterexample models",
     "Two real transformers with the same test loss, equal to $H(P)$ within a rigorous bound, and OOD R1 accuracy "
     "1 versus 0: the compiled witness of Proposition 1, checked on every prefix."),
    ("other", "Other certificates", "Certificates not attached to a statement above."),
)

STATUS_WORD = {"verified": "verified", "falsified": "FALSIFIED", "unknown": "UNKNOWN"}


def group_of(check: str) -> str:
    """The statement key a check certifies."""
    rules = (("chain-rule", "chain-rule"), ("lemma-a", "lemma-a"), ("z3-lemma-a-*", "lemma-a"), ("lemma-b", "lemma-b"),
             ("z3-lemma-b-*", "lemma-b"), ("lemma-c", "lemma-c"), ("z3-lemma-c-*", "lemma-c"), ("z3-node-gibbs", "lemma-c"),
             ("z3-lemmas-by-horizon", "z3"), ("coq-core", "coq"), ("closed-form-*", "closed-forms"), ("z3-synthesis-*", "prop-1"),
             ("prop-1-*", "prop-1"), ("prop-2-*", "prop-2"), ("prop-3-*", "prop-3"), ("finetuning-*", "prop-3"),
             ("experiment-*", "empirical"), ("compiled-*", "counterexample"), ("counterexample-*", "counterexample"))
    for pat, key in rules:
        if fnmatch.fnmatchcase(check, pat):
            return key
    return "other"


# ---- formatting of certificate values (plain text; the renderers escape) ------------------------------
def fmt(v: Any, digits: int = 3, bound: str | None = None) -> str:
    """One quantity as short text: exact rationals as decimals, intervals as [lo, hi] (rounded outward),
    nested data as a count.  ``bound="up"`` for an upper bound and ``"down"`` for a lower bound: the
    number is rounded that way, so the printed bound still bounds (otherwise a value rounds to nearest)."""
    if v is None:
        return "n/a"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}" if abs(v) >= 10_000 else str(v)
    if isinstance(v, float):
        return f"{v:.{digits}g}" if bound is None or not math.isfinite(v) else _directed(Fraction(v), bound, digits)
    if isinstance(v, str):
        return _short_number(v, digits, bound)
    if isinstance(v, dict):
        if "exact" in v:
            ex = str(v["exact"])
            if re.fullmatch(r"-?\d+", ex):
                return fmt(int(ex))
            if "interval" in v and isinstance(v["interval"], list) and len(v["interval"]) == 2:
                lo_s, hi_s = (str(x) for x in v["interval"])
                if bound is not None:
                    return _short_number(hi_s if bound == "up" else lo_s, digits, bound)
                lo, hi = _short_number(lo_s, digits, "down"), _short_number(hi_s, digits, "up")
                return lo if lo == hi else f"[{lo}, {hi}]"
            if bound is not None and re.fullmatch(r"-?\d+/\d+", ex):
                return _directed(Fraction(ex), bound, digits)
            if isinstance(v.get("approx"), (int, float)):
                return fmt(float(v["approx"]), digits, bound)
            return ex
        if "lower" in v and "upper" in v:
            lo, hi = (fmt(v[k], digits, d) if isinstance(v[k], (dict, list, float, int)) else _short_number(str(v[k]), digits, d)
                      for k, d in (("lower", "down"), ("upper", "up")))
            return lo if lo == hi else f"[{lo}, {hi}]"
        return f"({len(v)} entries)"
    if isinstance(v, list):
        if len(v) <= 4 and all(isinstance(x, (int, float, str)) and not isinstance(x, bool) for x in v):
            return "[" + ", ".join(fmt(x, digits) for x in v) + "]"
        return f"({len(v)} items)"
    return str(v)


def _short_number(s: str, digits: int, bound: str | None = None) -> str:
    try:
        x = float(s)
    except ValueError:
        return s
    if re.fullmatch(r"-?\d+", s.strip()):
        return s.strip()
    if bound is not None and math.isfinite(x):
        return _directed(Fraction(s.strip()), bound, digits)
    return f"{x:.{digits}g}"


def _directed(x: Fraction, bound: str, digits: int) -> str:
    """``x`` to ``digits`` significant digits rounded up (``bound="up"``) or down (``"down"``)."""
    from theory.exact import scientific

    if x < 0:
        return "-" + scientific(-x, "down" if bound == "up" else "up", digits)
    return scientific(x, bound, digits)


def _q(entry: Entry, *path: str) -> Any:
    v: Any = entry.certificate.quantities
    for p in path:
        if not isinstance(v, dict) or p not in v:
            return None
        v = v[p]
    return v


def provenance_mark(entry: Entry) -> str:
    """``" (read back, not re-checked)"`` for a certificate this run only read from a file, ``" (re-run;
    the saved one disagreed)"`` for one whose saved form differed from its re-run, else ``""``."""
    if entry.provenance == READ_BACK:
        return f" ({READ_BACK})"
    if entry.provenance == RERUN:
        return " (re-run; the saved one disagreed)"
    return ""


def status_cell(entry: Entry) -> str:
    """The verdict word of a table cell, with the provenance mark of :func:`provenance_mark`."""
    return STATUS_WORD[entry.certificate.status.value] + provenance_mark(entry)


def key_numbers(entry: Entry, limit: int = 12) -> list[tuple[str, str]]:
    """The certificate's top-level scalar quantities (nested tables are in the tables and in certificates.json)."""
    out = []
    for k, v in sorted(entry.certificate.quantities.items()):
        if isinstance(v, dict) and not ({"exact"} <= set(v) or {"lower", "upper"} <= set(v)):
            continue
        if isinstance(v, list) and not (len(v) <= 4 and all(isinstance(x, (int, float, str)) for x in v)):
            continue
        if isinstance(v, str) and len(v) > 60:
            continue
        out.append((k, fmt(v)))
    return out[:limit]


def horizon(entry: Entry) -> str:
    """What bounds the check's search space, in words ('' if nothing)."""
    q = entry.certificate.quantities
    parts = []
    if isinstance(q.get("horizon"), int):
        parts.append(f"horizon L = {q['horizon']}")
    if isinstance(q.get("horizons"), list):
        parts.append("horizons L = " + ", ".join(str(h) for h in q["horizons"]))
    if isinstance(q.get("prefix_length"), int):
        parts.append(f"every prefix of length <= {q['prefix_length']}")
    if isinstance(q.get("depth"), int):
        parts.append(f"support summed to depth {q['depth']}")
    if isinstance(q.get("max_new_tokens"), int):
        parts.append(f"completions of at most {q['max_new_tokens']} tokens")
    if isinstance(q.get("q1"), dict) and isinstance(q["q1"].get("prefixes_checked"), int):
        parts.append(f"{q['q1']['prefixes_checked']:,} prefixes checked")
    if isinstance(q.get("n"), int) and isinstance(q.get("k"), int):
        parts.append(f"n = {q['n']} examples of length k = {q['k']}")
    return "; ".join(parts)


def solver(entry: Entry) -> str:
    c = entry.certificate
    v = c.versions
    if c.method == "smt":
        return f"z3 {c.quantities.get('z3_version') or v.get('z3-solver', '?')}"
    if c.method == "symbolic":
        return f"sympy {v.get('sympy', '?')}"
    if c.method == "exhaustive":
        return f"torch {v.get('torch', '?')}, float64, every prefix"
    if c.method == "bound":
        return "rigorous interval bounds (mpmath / exact rationals)" + (f", torch {v['torch']}" if "torch" in v else "")
    return "exact rational arithmetic (fractions)"


def versions(entry: Entry) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(entry.certificate.versions.items()))


# ---- tables ---------------------------------------------------------------------------------------------
def _plain(v: Any) -> str:
    """Certificate text inside a caption: never a math delimiter."""
    return str(v).replace("$", "")


@dataclass(frozen=True)
class Table:
    """A table of plain-text cells and a caption of text with inline math between ``$…$``.  ``align``: one
    of l, r, c per column; ``wide``: spans both columns."""

    label: str
    caption: str
    header: tuple[str, ...]
    align: str
    rows: tuple[tuple[str, ...], ...]
    wide: bool = False


def summary_table(entries: Sequence[Entry]) -> Table:
    rows = tuple((e.check, status_cell(e), e.certificate.method, e.certificate.detail, e.certificate.sha256()[:12])
                 for e in entries)
    return Table("tab:nonid-summary", "Every certificate: verdict, method, the numbers behind it, and the first hex "
                 "digits of its SHA-256 (full hashes in certificates.json).",
                 ("certificate", "status", "method", "detail", "SHA-256"), "lllll", rows, wide=True)


def z3_table(entries: Sequence[Entry]) -> Table | None:
    seen: dict[tuple[str, int], tuple[str, ...]] = {}
    for e in entries:
        if e.check == "z3-lemmas-by-horizon":
            for r in _q(e, "rows") or []:
                seen[(r["lemma"], r["horizon"])] = (r["lemma"], str(r["horizon"]), fmt(r["model_variables"]),
                                                    fmt(r["variables"]), fmt(r["assertions"]),
                                                    STATUS_WORD.get(r["status"], r["status"]), e.check)
        elif re.fullmatch(r"z3-lemma-[abc]-h\d+", e.check):
            q = e.certificate.quantities
            lemma = e.check.split("-")[2].upper()
            if isinstance(q.get("horizon"), int):
                seen.setdefault((lemma, q["horizon"]), (lemma, str(q["horizon"]), fmt(q.get("model_variables")),
                                                        fmt(q.get("variables")), fmt(q.get("assertions")), status_cell(e), e.check))
    if not seen:
        return None
    rows = tuple(seen[k] for k in sorted(seen))
    return Table("tab:nonid-z3", "z3 proofs of Lemmas A, B and C by horizon $L$ (modular encoding): row variables per "
                 "model, variables and assertions in all, verdict.",
                 ("lemma", "L", "vars/model", "vars", "assertions", "status", "certificate"), "lrrrrll", rows)


def coq_table(entries: Sequence[Entry]) -> Table | None:
    """The machine-checked theorems of coq-core: name, module, the axioms Coq's kernel reports."""
    for e in entries:
        if e.check == "coq-core" and isinstance(_q(e, "theorems"), dict):
            theorems, standard = _q(e, "theorems"), set(_q(e, "standard_axioms") or ())
            rows = tuple((name, str(t.get("module", "")),
                          "standard reals only" if set(t.get("axioms", ())) <= standard else ", ".join(t.get("axioms", ())),
                          status_cell(e)) for name, t in theorems.items())
            return Table("tab:nonid-coq", f"Theorems checked by Coq {_plain(fmt(_q(e, 'coq_version')))}'s kernel, compiled "
                         "from source by coq-core, with the axioms each rests on (those of Coq's standard real numbers: "
                         "ClassicalDedekindReals.sig_not_dec and sig_forall_dec, functional extensionality, "
                         "excluded middle). Statements: README.md, \"The machine-checked core\".",
                         ("theorem", "module", "axioms", "status"), "llll", rows)
    return None


def prop1_table(entries: Sequence[Entry]) -> Table | None:
    rows = []
    for e in entries:
        if not e.check.startswith("prop-1-"):
            continue
        q = e.certificate.quantities
        rows.append((e.check, fmt(q.get("data")), fmt(q.get("kl_q1")), fmt(q.get("kl_q2")),
                     f"{fmt(q.get('ood_r1_q1'))} / {fmt(q.get('ood_r1_q2'))}",
                     f"{fmt(q.get('sampled_r1_q1'))} / {fmt(q.get('sampled_r1_q2'))}", fmt(q.get("ood_prompts")), status_cell(e)))
    if not rows:
        return None
    return Table("tab:nonid-prop1", "Proposition 1: the $R_1$-completer $Q_1$ and the $R_1$-violator $Q_2$ per language. "
                 "$\\mathrm{KL}(P \\| Q_i)$ in nats per sequence (exact); OOD R1 (the fraction of OOD prompts completed to a "
                 "word satisfying $R_1$) greedy and sampled (exact probability).",
                 ("certificate", "data", "$\\mathrm{KL}(P \\| Q_1)$", "$\\mathrm{KL}(P \\| Q_2)$", "OOD $R_1$ greedy $Q_1$/$Q_2$",
                  "sampled $Q_1$/$Q_2$", "OOD prompts",
                  "status"), "llllllrl", tuple(rows), wide=True)


def prop2_tables(entries: Sequence[Entry]) -> list[Table]:
    out = []
    summary = []
    for e in entries:
        if e.check in ("prop-2-icl-surgery", "prop-2-icl-mixture"):
            q = e.certificate.quantities
            acc_q = q.get("acc_Q")
            per_n = q.get("per_n") if isinstance(q.get("per_n"), dict) else {}
            at = per_n.get(str(q.get("n")), {}) if per_n else {}
            summary.append((e.check, fmt(q.get("epsilon")), fmt(q.get("n")), fmt(q.get("kl_upper_bound"), bound="up"),
                            fmt(q.get("acc_P", at.get("acc_P"))), fmt(acc_q if acc_q is not None else at.get("acc_Q")),
                            status_cell(e)))
    if summary:
        out.append(Table("tab:nonid-prop2", "Proposition 2: the smallest number of examples $n$ at which the ICL accuracy "
                         "gap is certified, the certified bound on $\\mathrm{KL}(P \\| Q)$, and the accuracies of $P$ and $Q$ there.",
                         ("certificate", "$\\varepsilon$", "$n$", "$\\mathrm{KL}(P \\| Q) \\le$", "acc $P$", "acc $Q$", "status"), "lrrrrrl",
                         tuple(summary)))
    for e in entries:
        if e.check == "prop-2-icl-mixture" and isinstance(_q(e, "per_n"), dict):
            per_n = _q(e, "per_n")
            rows = tuple((n, fmt(per_n[n].get("acc_P")), fmt(per_n[n].get("acc_Q")), fmt(per_n[n].get("acc_R")),
                          fmt(per_n[n].get("gap_lower"), bound="down"),
                          fmt(per_n[n].get("min_w_lower", per_n[n].get("median_w_lower")), bound="down"))
                         for n in sorted(per_n, key=int))
            out.append(Table("tab:nonid-icl", f"ICL accuracy against the number of examples $n$: $P$, the mixture "
                             f"$Q_\\varepsilon = (1 - \\varepsilon) P + \\varepsilon R$ ($\\varepsilon = "
                             f"{_plain(tex_number(_q(e, 'epsilon', 'exact') or '?'))}$) and the no-ICL model $R$; certified lower "
                             "bound on the gap; a lower bound on the posterior weight $w(u)$ of $R$ (the least over the prompts where the "
                             "certificate records it, else the median). From prop-2-icl-mixture.",
                             ("$n$", "acc $P$", "acc $Q_\\varepsilon$", "acc $R$", "gap $\\ge$", "$w \\ge$"), "rrrrrr", rows))
    return out


def prop3_tables(entries: Sequence[Entry]) -> list[Table]:
    out, rows = [], []
    for e in entries:
        if re.fullmatch(r"prop-3-.*-(scaling|control)", e.check):
            q = e.certificate.quantities
            sgd, adam, lasting = q.get("sgd") or {}, q.get("adam") or {}, q.get("lasting") or {}
            steps = lasting.get("steps")
            if lasting:  # a scaling: the lasting effect at convergence is the claim
                tv, tv_where = fmt(lasting.get("tv_lower"), bound="down"), "SGD to the floor"
            elif "tv_lower" in adam:  # the orthogonal control: Adam's certified gap, SGD none
                tv, tv_where = fmt(adam.get("tv_lower"), bound="down"), "Adam (SGD: none)"
            else:  # the permutation control: no gap under either optimiser
                tv, tv_where = "none", "SGD, Adam"
            rows.append((e.check, fmt(q.get("max_abs_dlogprob_upper"), bound="up"), fmt(q.get("prefixes")),
                         "/".join(str(s) for s in steps) if steps else "n/a", tv, tv_where,
                         fmt(sgd.get("loss_gap")), status_cell(e)))
    if rows:
        out.append(Table("tab:nonid-prop3", "Proposition 3: twins $\\theta$, $T(\\theta)$. An upper bound of max $|\\Delta \\log q|$ over every prefix "
                         "the model accepts (rigorous enclosures of both real functions); for a scaling, the SGD steps from $\\theta$ and "
                         "$T(\\theta)$ until the fine-tuning loss is within $\\delta$ of its floor and a rigorous lower bound of the total "
                         "variation the two converged models still differ by off the fine-tuning data (the lasting effect, the claim); for the "
                         "controls, the gap each optimiser shows; then the transient SGD loss gap after 20 steps (nats per sequence; "
                         "reported, not the claim).",
                         ("certificate", "max |dlogp| <=", "prefixes", "SGD steps", "TV >=", "gap under", "transient SGD gap", "status"),
                         "lrrrrlrl", tuple(rows)))
    for e in entries:
        if e.check == "finetuning-gap-vs-alpha":
            pts = _q(e, "points") or []
            fams = _q(e, "families") or []
            alphas = _q(e, "alphas") or []
            by = {(p["family"], p["alpha"]): p for p in pts}
            rows2 = tuple((fmt(a),) + tuple(c for f in fams for c in (fmt(by.get((f, a), {}).get("loss_gap")),
                                                                        fmt(by.get((f, a), {}).get("ood_tv_mean"))))
                          for a in alphas)
            header = ("alpha",) + tuple(c for f in fams for c in (f"{f} loss gap", f"{f} OOD TV"))
            out.append(Table("tab:nonid-alpha", f"Fine-tuning gap against $\\alpha$ (the same $\\alpha$ on every head or MLP layer; "
                             f"{_plain(fmt(_q(e, 'steps')))} SGD steps, lr {_plain(fmt(_q(e, 'lr')))}); status "
                             f"{_plain(status_cell(e))}. "
                             "From finetuning-gap-vs-alpha.", header, "r" * len(header), rows2))
    return out


def empirical_table(entries: Sequence[Entry]) -> Table | None:
    for e in entries:
        if e.check.startswith("experiment-"):
            groups = _q(e, "groups") or []
            rows = []
            for g in groups:
                pub = g.get("published") or {}

                def ms(v: Any) -> str:
                    if not v:
                        return "n/a"
                    return f"{v[0]:.3f}" + (f" +- {v[1]:.3f}" if len(v) > 1 and v[1] not in (None, 0, 0.0) else "")

                lossv = g.get("test_loss_padded")
                rows.append((g["language"], g["arch"], g["regime"], str(g["runs"]),
                             f"{lossv[0]:.4f}" if lossv else "n/a", fmt(g.get("floor_padded"), 4), fmt(g.get("gap_padded_max"), bound="up"),
                             ms(g.get("id_r1")), ms(g.get("ood_r1")), ms(pub.get("test_loss")), ms(pub.get("id_r1")),
                             ms(pub.get("ood_r1")),
                             f"{pub['source']}, {pub['runs']} runs, {pub['aggregation']}" if pub else "not published"))
            agg = _q(e, "aggregation") or "best-validation"
            return Table("tab:nonid-empirical",
                         f"Rule extrapolation, our runs ({_plain(agg)}) beside the published numbers. Losses in nats per padded token "
                         "(sequences padded to length $T$, all $T-1$ targets counted); floor $H(P)/(T-1)$ exact; gap = largest "
                         "certified upper bound on $\\mathrm{KL}(P \\| Q)/(T-1)$. "
                         f"Status of the claim: {_plain(status_cell(e))}. From {_plain(e.check)}.",
                         ("language", "arch", "regime", "runs", "test loss", "floor", "gap <=", "ID R1", "OOD R1",
                          "published loss", "published ID R1", "published OOD R1", "published source"),
                         "lllrrrrrrrrrl", tuple(rows), wide=True)
    return None


def counterexample_table(entries: Sequence[Entry]) -> Table | None:
    rows = []
    for e in entries:
        if group_of(e.check) != "counterexample":
            continue
        q = e.certificate.quantities
        q1, q2 = q.get("q1") or {}, q.get("q2") or {}
        rows.append((e.check, fmt(q.get("data")), fmt(q1.get("prefixes_checked")),
                     f"{fmt(q1.get('max_tv_upper'), bound='up')} / {fmt(q2.get('max_tv_upper'), bound='up')}",
                     f"{fmt(q1.get('kl_upper'), bound='up')} / {fmt(q2.get('kl_upper'), bound='up')}",
                     f"{fmt(q1.get('ood_r1'))} / {fmt(q2.get('ood_r1'))}", status_cell(e)))
    if not rows:
        return None
    return Table("tab:nonid-models", "Counterexample transformer pairs, checked on the real function of their weights "
                 "(in exact arithmetic for compiled pairs, on rigorous enclosures otherwise): prefixes checked, upper bounds on the max total variation to the construction "
                 "and on $\\mathrm{KL}(P \\| Q)$ (nats per sequence), greedy OOD R1, for $Q_1$ / $Q_2$.",
                 ("certificate", "data", "prefixes", "max TV <= Q1/Q2", "KL <= Q1/Q2", "OOD R1 Q1/Q2", "status"),
                 "llrllll", tuple(rows), wide=True)


@dataclass
class Section:
    key: str
    heading: str
    statement: str
    entries: list[Entry] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)  # figure names (nonid.appendix.figures)


FIGURE_SECTION = {"z3-time-vs-horizon": "z3", "icl-accuracy-vs-n": "prop-2", "finetuning-gap-vs-alpha": "prop-3",
                  "ood-r1-vs-gap": "empirical"}


def sections(entries: Sequence[Entry], figures: Sequence[str] = ()) -> list[Section]:
    """The non-empty sections, in docs/theory.md order, each with its entries, tables and figure names."""
    out = {key: Section(key, heading, statement) for key, heading, statement in STATEMENTS}
    for e in entries:
        out[group_of(e.check)].entries.append(e)
    z3 = z3_table(entries)
    if z3:
        out["z3"].tables.append(z3)
    for key, tables in (("coq", [coq_table(entries)]), ("prop-1", [prop1_table(entries)]), ("prop-2", prop2_tables(entries)),
                        ("prop-3", prop3_tables(entries)), ("empirical", [empirical_table(entries)]),
                        ("counterexample", [counterexample_table(entries)])):
        out[key].tables.extend(t for t in tables if t is not None)
    for name in figures:
        out[FIGURE_SECTION[name]].figures.append(name)
    return [s for s in out.values() if s.entries or s.tables or s.figures]
