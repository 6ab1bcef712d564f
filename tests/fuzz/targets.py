"""The registry of fuzz targets: one per public entry point.

A :class:`Target` is a name, a hypothesis strategy of malformed (and sometimes valid) inputs, and a
``run`` function that feeds one input to the entry point and asserts the contract:

* a Python constructor either succeeds or raises a :class:`~theory.errors.NonidError` whose message is
  one non-empty line (:func:`typed`); any other exception — TypeError, KeyError, OverflowError, json or
  torch errors … — propagates and is a crash;
* the command line (``nonid.cli.main(argv)`` in-process, and a few real ``python -m nonid`` processes)
  either accepts the input or exits with status 2 and exactly one ``nonid: …`` line on stderr, no
  traceback, and nothing left on disk (:func:`cli`).

Every example is cheap: the expensive step of each command (running a proof check, building a
network pair, training, the final exhaustive re-check of ``nonid check`` on the CLI) is replaced by
:class:`ReachedWork` — an input that gets that far has passed every validation, which is all a fuzz
target asks.

:func:`run_all` runs every target with fixed hypothesis settings and reports the number of examples
run and the crashes, for ``benchmarks/``.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from theory.errors import NonidError

REPO = Path(__file__).resolve().parents[2]


# ---- the contract ------------------------------------------------------------------------------------
class ReachedWork(Exception):
    """Raised in place of a command's expensive step: the input passed every check before it."""


def _check_message(err: NonidError) -> None:
    msg = str(err)
    assert msg.strip(), f"{type(err).__name__} with an empty message"
    assert "\n" not in msg.strip(), f"{type(err).__name__} message is not one line: {msg!r}"


def typed(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)``, or None when it raised a NonidError with a one-line message.  Any
    other exception propagates: that is the crash the fuzzer looks for."""
    try:
        return fn(*args, **kwargs)
    except NonidError as e:
        _check_message(e)
        return None


def _listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@contextlib.contextmanager
def _no_heavy_work():
    """Replace each command's expensive step by :class:`ReachedWork` (restored afterwards)."""
    import constructions.export as export
    import empirical.experiment as experiment
    import proofs
    import proofs.cli as prove_cli

    def stop(*_a: Any, **_k: Any) -> None:
        raise ReachedWork

    # prove_cli._certificates is where `nonid prove` starts its checks, in this process or in spawned workers
    # (which a patch of proofs.run alone would not reach: they import the real one)
    saved = [(proofs, "run", proofs.run), (prove_cli, "_certificates", prove_cli._certificates),
             (export, "build_pair", export.build_pair),
             (export, "check_pair", export.check_pair), (experiment, "check_memory", experiment.check_memory),
             (experiment, "run_one", experiment.run_one)]
    try:
        for mod, name, _ in saved:
            setattr(mod, name, stop)
        yield
    finally:
        for mod, name, fn in saved:
            setattr(mod, name, fn)


def cli(argv: list[str], root: Path) -> tuple[int | None, str, str]:
    """Run ``nonid.cli.main(argv)`` in-process with cwd = ``root`` and captured output; assert the
    command-line contract.  Returns (status, stdout, stderr); status None means ReachedWork."""
    from nonid.cli import main

    before = _listing(root)
    out, err = io.StringIO(), io.StringIO()
    cwd = os.getcwd()
    os.chdir(root)
    try:
        with _no_heavy_work(), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                rc: int | None = main(argv)
            except ReachedWork:
                rc = None
            except SystemExit as e:  # argparse's --help
                rc = e.code if isinstance(e.code, int) else 2
    finally:
        os.chdir(cwd)
    o, e = out.getvalue(), err.getvalue()
    assert "Traceback" not in e and "Traceback" not in o, f"traceback for {argv!r}:\n{e}"
    if rc is None:
        return rc, o, e
    assert rc in (0, 1, 2), f"exit status {rc!r} for {argv!r}"
    if rc == 2:
        lines = e.splitlines()
        assert len(lines) == 1 and lines[0].startswith("nonid: ") and len(lines[0]) > len("nonid: "), \
            f"exit 2 for {argv!r} without exactly one 'nonid: ' line on stderr: {e!r}"
        assert _listing(root) == before, f"{argv!r} failed but left files behind: {sorted(set(_listing(root)) - set(before))}"
    return rc, o, e


# ---- generic strategies --------------------------------------------------------------------------------
HASHABLE_JUNK = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=10**300, max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True), st.fractions(), st.decimals(allow_nan=False, allow_infinity=True),
    st.just(Decimal("NaN")), st.complex_numbers(), st.text(max_size=6), st.binary(max_size=6),
    st.tuples(st.integers(), st.text(max_size=2)),
)  # (no signalling NaN: it cannot be hashed, so it cannot be a key)
JUNK = st.one_of(HASHABLE_JUNK, st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
                 st.just(object()))
NON_INT_JUNK = st.one_of(
    st.none(), st.booleans(), st.floats(allow_nan=True, allow_infinity=True), st.fractions(),
    st.decimals(allow_nan=True, allow_infinity=True), st.complex_numbers(), st.text(max_size=6), st.binary(max_size=4),
    st.lists(st.integers(), max_size=3), st.just(object()),
)


def mostly(valid: st.SearchStrategy, junk: st.SearchStrategy = JUNK) -> st.SearchStrategy:
    """``valid`` three times in four, ``junk`` otherwise (``st.one_of`` would flatten ``junk``'s many
    branches and draw it far more often)."""
    return st.integers(0, 3).flatmap(lambda i: junk if i == 0 else valid)


def small(lo: int, hi: int) -> st.SearchStrategy:
    """A size: an int in [lo, hi] (lo may be invalid), or anything that is not an int.  Never a huge
    int — sizes allocate."""
    return st.one_of(st.integers(lo, hi), NON_INT_JUNK)


PROB_TEXT = st.sampled_from(["1/2", "1/3", "2/3", "0", "1", "-1/2", "3/2", "1/0", "0.5", "1e400", "nan", "x", "", " 1/4 "])
PROB = st.one_of(st.fractions(min_value=0, max_value=1), st.integers(-2, 2), PROB_TEXT, JUNK)
JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=6)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=6,
)
ALPHABETS = ("ab", "abc", "a", "()[]", "xyz0")


@st.composite
def rows(draw, alphabet: str) -> Any:
    """A next-token row: a valid one (normalised exact weights), a mapping with junk, or junk."""
    outcomes = [*alphabet, "<eos>"]
    kind = draw(st.integers(0, 2))
    if kind == 0:
        ws = draw(st.lists(st.integers(0, 4), min_size=len(outcomes), max_size=len(outcomes)))
        total = sum(ws)
        return {t: Fraction(w, total) for t, w in zip(outcomes, ws) if w} if total else {"<eos>": 1}
    if kind == 1:
        keys = st.one_of(st.sampled_from(outcomes), st.text(max_size=3), HASHABLE_JUNK)
        return draw(st.dictionaries(keys, PROB, max_size=4))
    return draw(JUNK)


# ---- the targets ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    name: str
    strategy: st.SearchStrategy
    run: Callable[[Any], None]
    doc: str = ""


def _alphabet(x: Any) -> None:
    from theory.alphabet import Alphabet

    a = typed(Alphabet, x)
    if a is not None:
        assert len(a.outcomes) == len(a) + 1
        typed(a.check_sequence, str(a)[::-1] + "?")


def _next_token(x: tuple[str, Any, Any, Any]) -> None:
    from theory.alphabet import Alphabet
    from theory.probability import NextTokenDistribution

    ab, probs, where, token = x
    d = typed(NextTokenDistribution, Alphabet(ab), probs, where=where)
    if d is not None:
        assert sum(d.probs) == 1
        d.argmax(), d.support(), repr(d)
        typed(d.prob, token)
        typed(d.mix, d, token)


@st.composite
def _finite_inputs(draw) -> tuple:
    ab = draw(st.sampled_from(ALPHABETS))
    keys = st.one_of(st.text(alphabet=ab, max_size=4), st.text(max_size=3), HASHABLE_JUNK)
    table = draw(st.one_of(st.dictionaries(keys, PROB, max_size=5),
                           st.dictionaries(st.text(alphabet=ab, max_size=4), st.integers(0, 3), min_size=1, max_size=4),
                           JUNK))
    return ab, draw(st.sampled_from(["table", "weights"])), table, draw(st.text(max_size=4))


def _finite(x: tuple) -> None:
    from theory.alphabet import Alphabet
    from theory.data import FiniteDistribution

    ab, how, table, probe = x
    build = FiniteDistribution if how == "table" else FiniteDistribution.from_weights
    P = typed(build, Alphabet(ab), table)
    if P is not None:
        assert sum(p for _x, p in P.sequences()) == 1
        P.mean_length(), P.conditional(""), P.integer_trie()
        typed(P.prefix_mass, probe)
        typed(P.conditional, probe)


@st.composite
def _model_inputs(draw) -> tuple:
    ab = draw(st.sampled_from(ALPHABETS))
    prefixes = st.one_of(st.text(alphabet=ab, max_size=3), st.text(max_size=3), HASHABLE_JUNK)
    table = draw(st.one_of(st.dictionaries(prefixes, rows(ab), max_size=3), JUNK))
    default = draw(st.one_of(st.none(), rows(ab)))
    patches = draw(st.one_of(st.dictionaries(prefixes, rows(ab), max_size=3), JUNK))
    return ab, table, default, patches, draw(st.one_of(st.text(alphabet=ab, max_size=4), st.text(max_size=3)))


def _models(x: tuple) -> None:
    from theory.alphabet import Alphabet
    from theory.models import PatchedModel, TabularModel, uniform_model

    ab, table, default, patches, probe = x
    m = typed(TabularModel, Alphabet(ab), table, default)
    if m is not None:
        typed(m.next_token, probe)
    base = m if m is not None else uniform_model(Alphabet(ab))
    p = typed(PatchedModel, base, patches)
    if p is not None:
        typed(p.next_token, probe)


LANG_NAMES = st.sampled_from(["L1", "L2", "L3", "L4", "L5", "L6", "l3", "anbn", "ANBN", "aNbN", "L7", "", " L1"])


def _language(x: tuple) -> None:
    from theory.languages import get_language

    name, word = x
    lang = typed(get_language, name)
    if lang is not None:
        typed(lang.is_id, word)
        typed(lang.contains, word)
        typed(lang.r1.completable, word)


@st.composite
def _prompt_inputs(draw) -> tuple:
    how = draw(st.sampled_from(["PromptSet", "split_prompts", "paper_prompts"]))
    lang = draw(mostly(LANG_NAMES))
    words = mostly(st.lists(st.text(alphabet="abc()[]", max_size=6), max_size=4),
                   st.one_of(st.text(max_size=4), st.lists(HASHABLE_JUNK, max_size=3), JUNK))
    opts = {k: draw(v) for k, v in (("seed", mostly(st.integers())), ("n", mostly(st.integers(1, 40), small(-2, 70))),
                                    ("exhaustive", st.booleans()), ("w_kind", mostly(st.sampled_from(["prefix", "dyck2"]))))
            if draw(st.integers(0, 2)) == 0}
    return how, lang, draw(words), draw(words), opts


def _prompts(x: tuple) -> None:
    from theory.prompts import PromptSet, paper_prompts, split_prompts

    how, lang, a, b, opts = x
    if how == "PromptSet":
        typed(PromptSet, lang, a, b)
    elif how == "split_prompts":
        ps = typed(split_prompts, lang, a)
        if ps is not None:
            assert len(ps) == len(list(a))
    else:
        typed(paper_prompts, lang, **opts)


def _witness(x: tuple) -> None:
    from theory.alphabet import Alphabet
    from theory.data import FiniteDistribution
    from theory.models import uniform_model
    from theory.witness import Witness, check_witness

    name, eps, delta, depth = x
    ab = Alphabet("ab")
    P = FiniteDistribution(ab, {"ab": Fraction(1, 2), "b": Fraction(1, 2)})
    q = uniform_model(ab)
    w = typed(Witness, name, "a claim", P, q, q, lambda _m: Fraction(0), "phi", epsilon=eps, delta=delta, depth=depth)
    if w is not None:
        cert = check_witness(w)
        assert cert.status.value in ("verified", "falsified", "unknown")


def _valid_certificate_dict() -> dict:
    from theory.certificate import Certificate

    return Certificate(check="lemma-a", claim="KL sees the support only", status="falsified", method="exact",
                       detail="7 instances", reason="a reason", quantities={"kl": Fraction(1, 3), "n": 7},
                       assumptions=("exact",), versions={"python": "3"}, elapsed_s=1.5, timings={"t": 0.5}).to_dict(True)


@st.composite
def _json_edits(draw, base: Any) -> Any:
    """``base`` with a few random edits: a key deleted, a value replaced by random JSON, a key added."""
    obj = json.loads(json.dumps(base))
    for _ in range(draw(st.integers(1, 3))):
        node, path = obj, []
        while isinstance(node, (dict, list)) and node and draw(st.booleans()):
            key = draw(st.sampled_from(sorted(node) if isinstance(node, dict) else list(range(len(node)))))
            path.append((node, key))
            node = node[key]
        if not path:
            if isinstance(obj, dict):
                obj[draw(st.text(max_size=6))] = draw(JSON)
            continue
        parent, key = path[-1]
        op = draw(st.sampled_from(["delete", "replace", "replace"]))
        if op == "delete" and isinstance(parent, dict):
            del parent[key]
        else:
            parent[key] = draw(JSON)
    return obj


@st.composite
def _certificate_inputs(draw) -> tuple:
    base = _valid_certificate_dict()
    kind = draw(st.sampled_from(["text", "json", "edited", "edited", "valid"]))
    if kind == "text":
        return "from_json", draw(st.one_of(st.text(max_size=30), st.sampled_from(["", "{", "[]", "null", "1", '"x"', "NaN", "{}"])))
    if kind == "json":
        return "from_dict", draw(JSON)
    if kind == "valid":
        return "from_json", json.dumps(base)
    return draw(st.sampled_from(["from_json", "from_dict"])), draw(_json_edits(base))


def _certificate(x: tuple) -> None:
    from theory.certificate import Certificate

    how, value = x
    if how == "from_json" and not isinstance(value, str):
        value = json.dumps(value)
    cert = typed(getattr(Certificate, how), value)
    if cert is not None:
        again = Certificate.from_json(cert.to_json())
        assert again == cert, "a certificate does not survive its own JSON round trip"
        cert.sha256()


def _certificate_fields(x: dict) -> None:
    from theory.certificate import Certificate

    fields = {"check": "c", "claim": "a claim", "status": "verified", "method": "exact", **x}
    c = typed(Certificate, **fields)
    if c is not None:
        c.to_json()


@st.composite
def _case_inputs(draw) -> tuple:
    from constructions.rule_extrapolation import CASES

    name = draw(mostly(st.sampled_from([*CASES, "ANBN", "l3", "L7", "", "anbn "])))
    applies = {"anbn": ("ratio", "depth"), "L3": ("n_max",), "L5": ("n_max",)}.get(name if isinstance(name, str) else "", ("max_length",)) + ("seed", "max_new_tokens")
    opts = {}
    for key, strat in (("n_max", small(-2, 12)), ("max_length", small(-2, 6)), ("depth", small(-2, 50)),
                       ("ratio", st.one_of(st.fractions(), PROB_TEXT, JUNK)), ("seed", mostly(st.integers())),
                       ("max_new_tokens", small(-2, 40))):
        if draw(st.integers(0, 2 if key in applies else 12)) == 0:
            opts[key] = draw(strat)
    return name, opts


def _case(x: tuple) -> None:
    from constructions.rule_extrapolation import build_case

    name, opts = x
    case = typed(build_case, name, **opts)
    if case is not None:
        assert case.prompts.ood_prompts


GINC_FIELDS = {"n_entities": 1, "n_properties": 2, "vocab_size": 2, "n_pretrain_concepts": 1, "n_heldout_concepts": 0,
               "transition_temp": None, "n_permutations": 1, "entity_stickiness": None, "eta": None, "delimiter": 0,
               "doc_length": 2, "seed": 0, "weight_bits": 2}


@st.composite
def _ginc_inputs(draw) -> tuple:
    kw = {}
    for name, lo in GINC_FIELDS.items():
        if draw(st.integers(0, 2)) == 0:
            kw[name] = draw(st.one_of(JUNK, PROB, st.integers(-1, 60)) if lo is None else st.one_of(st.integers(lo - 2, lo + 60), JUNK))
    return draw(st.sampled_from(["init", "tiny", "small"])), kw


def _ginc(x: tuple) -> None:
    from constructions.icl.config import GINCConfig

    how, kw = x
    fn = {"init": GINCConfig, "tiny": GINCConfig.tiny, "small": GINCConfig.small}[how]
    cfg = typed(fn, **kw)
    if cfg is not None:
        assert cfg.n_hidden >= 2


def _stochastic(x: tuple) -> None:
    from constructions.icl.hmm import check_stochastic

    matrix, size = x
    typed(check_stochastic, matrix, "T", size)


TRANSFORMER_FIELDS = ("alphabet", "d_model", "n_heads", "d_head", "d_mlp", "n_layers", "max_len", "norm", "activation",
                      "dtype", "seed", "layer_norm_eps")


@st.composite
def _transformer_inputs(draw) -> tuple:
    choices = {"alphabet": st.sampled_from(ALPHABETS + ("", "aa", "a b")), "norm": st.sampled_from(["pre", "post", "none", "mid"]),
               "activation": st.sampled_from(["relu", "gelu", "tanh", "sigmoid"]), "dtype": st.sampled_from(["float32", "float64", "int8"]),
               "seed": st.integers(-2, 2**64), "layer_norm_eps": st.floats(-1, 2)}
    kw = {}
    for name in TRANSFORMER_FIELDS:
        if draw(st.integers(0, 2)) == 0:
            kw[name] = draw(st.one_of(choices.get(name, st.integers(-1, 6)), JUNK))
    how = draw(st.sampled_from(["init", "from_dict", "from_dict_json"]))
    if how == "from_dict_json":
        kw = draw(st.one_of(st.dictionaries(st.sampled_from(TRANSFORMER_FIELDS + ("width",)), JSON, max_size=4), st.just(kw)))
        kw = json.loads(json.dumps(kw, default=repr))
    return how, kw, draw(st.lists(st.text(alphabet="abc", max_size=5), max_size=3))


def _transformer(x: tuple) -> None:
    from constructions.transformer import DecoderTransformer, TransformerConfig

    how, kw, words = x
    cfg = typed(TransformerConfig, **kw) if how == "init" else typed(TransformerConfig.from_dict, kw)
    if cfg is not None and cfg.d_model * max(cfg.d_mlp, cfg.n_heads * cfg.d_head) * cfg.n_layers <= 4096 and cfg.max_len <= 64:
        net = DecoderTransformer(cfg)
        tokens = typed(net.encode, words)
        if tokens is not None:
            assert net(tokens).shape[-1] == cfg.n_outputs


def _knob_configs(x: tuple) -> None:
    from constructions.compile import CompileConfig
    from constructions.distill import DistillConfig

    how, kw = x
    typed(CompileConfig if how == "compile" else DistillConfig, **kw)


@st.composite
def _knob_inputs(draw) -> tuple:
    how = draw(st.sampled_from(["compile", "distill"]))
    names = ("zero_logit", "margin") if how == "compile" else (
        "d_model", "n_heads", "d_head", "d_mlp", "n_layers", "lr", "target_tv", "max_steps", "check_every",
        "checkpoint_every", "seed", "device")
    values = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-2, 10**6), JUNK,
                       st.sampled_from(["auto", "cpu", "cuda", "tpu"]))
    return how, draw(st.dictionaries(st.sampled_from(names), values, max_size=3))


_NETS: dict = {}


def _net(cfg: Any) -> Any:
    from constructions.transformer import DecoderTransformer

    if cfg not in _NETS:
        _NETS[cfg] = DecoderTransformer(cfg)
    return _NETS[cfg]


@st.composite
def _finetuning_inputs(draw) -> tuple:
    fn = draw(st.sampled_from(["qk_scaling", "vo_scaling", "mlp_scaling", "head_permutation", "hidden_unit_permutation",
                               "wrong_inverse_qk_scaling", "compose"]))
    index = st.one_of(st.integers(-2, 4), JUNK)
    alpha = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.fractions(), st.integers(-2, 10**400), JUNK)
    order = st.one_of(st.permutations(range(draw(st.integers(1, 8)))), st.lists(st.integers(-1, 8), max_size=8),
                      st.lists(HASHABLE_JUNK, max_size=4), JUNK)
    return fn, draw(st.integers(0, 3)), draw(st.integers(0, 3)), draw(index), draw(index), draw(alpha), draw(order)


def _finetuning(x: tuple) -> None:
    import constructions.finetuning as ft
    from constructions.transformer import TransformerConfig

    configs = [TransformerConfig("ab", 4, 2, 2, 4, 1, 8), TransformerConfig("ab", 4, 2, 2, 4, 2, 8, activation="gelu"),
               TransformerConfig("abc", 4, 3, 2, 8, 1, 8), TransformerConfig("ab", 4, 1, 4, 2, 1, 8, norm="post")]
    fn, i, j, layer, head, alpha, order = x
    cfg, other = configs[i], configs[j]
    if fn in ("qk_scaling", "vo_scaling", "wrong_inverse_qk_scaling"):
        pmap = typed(getattr(ft, fn), cfg, layer, head, alpha)
    elif fn == "mlp_scaling":
        pmap = typed(ft.mlp_scaling, cfg, layer, alpha)
    elif fn in ("head_permutation", "hidden_unit_permutation"):
        pmap = typed(getattr(ft, fn), cfg, layer, order)
    else:
        a = typed(ft.head_permutation, cfg, 0, list(range(cfg.n_heads)))
        b = typed(ft.hidden_unit_permutation, other, 0, list(range(other.d_mlp)))
        pmap = typed(ft.compose, *[m for m in (a, b) if m is not None])
    if pmap is not None:
        typed(pmap.apply, _net(other))
        typed(pmap.inverse().apply, _net(cfg))


# ---- counterexample directories ------------------------------------------------------------------------
_BUILT: list[Path] = []
FILES = ("certificate.json", "config.json", "README.md", "q1.safetensors", "q2.safetensors")


def built_directory() -> Path:
    """A real counterexample directory (anbn, n ≤ 2), built once per process."""
    if not _BUILT:
        from nonid.cli import main

        root = Path(tempfile.mkdtemp(prefix="nonid-fuzz-"))
        atexit.register(shutil.rmtree, root, True)
        with contextlib.redirect_stdout(io.StringIO()):
            assert main(["counterexample", "anbn", "--n-max", "2", "--out", str(root / "cx")]) == 0
        _BUILT.append(root / "cx")
    return _BUILT[0]


CORRUPTIONS = st.lists(st.one_of(
    st.tuples(st.just("delete"), st.sampled_from(FILES)),
    st.tuples(st.just("bytes"), st.sampled_from(FILES), st.binary(max_size=64)),
    st.tuples(st.just("truncate"), st.sampled_from(FILES), st.integers(0, 200)),
    st.tuples(st.just("flip"), st.sampled_from(FILES), st.integers(0, 10**6), st.integers(1, 255)),
    st.tuples(st.just("edit"), st.sampled_from(["certificate.json", "config.json"]), st.integers(0, 2**32)),
    st.tuples(st.just("dir"), st.sampled_from(FILES)),
    st.tuples(st.just("rehash")),
), min_size=1, max_size=4)


def _edit_json(value: Any, rng: random.Random) -> Any:
    """One random edit somewhere in a JSON tree: delete a key, or replace a value by junk."""
    junk = [None, True, -1, 0, 10**30, 1.5, float("nan"), "", "x", "anbn", [], {}, [1, 2], {"a": 1}, "L7", "1e999"]
    node, parent, key = value, None, None
    while isinstance(node, (dict, list)) and node and (parent is None or rng.random() < 0.7):
        k = rng.choice(sorted(node) if isinstance(node, dict) else range(len(node)))
        parent, key, node = node, k, node[k]
    if parent is None:
        return rng.choice(junk)
    if isinstance(parent, dict) and rng.random() < 0.3:
        del parent[key]
    else:
        parent[key] = rng.choice(junk)
    return value


def corrupt(d: Path, ops: list[tuple]) -> None:
    """Apply the corruption ``ops`` to directory ``d`` (a copy of :func:`built_directory`)."""
    import hashlib

    for op, *args in ops:
        path = d / args[0] if args else None
        if op == "delete" and path.is_file():
            path.unlink()
        elif op == "bytes" and path.is_file():
            path.write_bytes(args[1])
        elif op == "truncate" and path.is_file():
            path.write_bytes(path.read_bytes()[:args[1]])
        elif op == "flip" and path.is_file():
            data = bytearray(path.read_bytes())
            if data:
                data[args[1] % len(data)] ^= args[2]
                path.write_bytes(bytes(data))
        elif op == "edit" and path.is_file():
            try:
                value = json.loads(path.read_text())
            except ValueError:
                continue
            path.write_text(json.dumps(_edit_json(value, random.Random(args[1]))))
        elif op == "dir" and path.is_file():
            path.unlink()
            path.mkdir()
        elif op == "rehash":  # re-sign every file, as a forger would
            cert_path = d / "certificate.json"
            try:
                cert = json.loads(cert_path.read_text())
                files = cert["quantities"]["files_sha256"]
                for name in list(files):
                    if (d / name).is_file():
                        files[name] = hashlib.sha256((d / name).read_bytes()).hexdigest()
            except (ValueError, KeyError, TypeError, OSError):
                continue
            cert_path.write_text(json.dumps(cert))


def _export(ops: list[tuple]) -> None:
    from constructions.export import verify_directory

    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / "cx"
        shutil.copytree(built_directory(), d)
        corrupt(d, ops)
        res = typed(verify_directory, d)
        if res is not None:
            stored, fresh = res
            assert fresh.status.value in ("verified", "falsified", "unknown")


# ---- the command line ------------------------------------------------------------------------------------
ODD_TEXT = st.one_of(st.text(max_size=8), st.sampled_from(["", "-", "--", "-1", "0", "nan", "inf", "1e999", "a\nb", "*", "[", "é"]))


@st.composite
def _prove_argv(draw) -> list[str]:
    argv = ["prove"]
    for _ in range(draw(st.integers(0, 4))):
        flag = draw(st.sampled_from(["--list", "--json", "--timings", "--only", "--only", "--bogus", "-x"]))
        argv.append(flag)
        if flag == "--only":
            argv.append(draw(st.one_of(ODD_TEXT, st.sampled_from(["lemma", "lemma-*", "z3-*-h6", "prop-?-*", "[!a]*", "nothing-*", "LEMMA-A"]))))
    if "--list" not in argv and draw(st.booleans()):
        argv.append("--list")
    return argv


def _cli_prove(argv: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cli(argv, Path(tmp))


@st.composite
def _counterexample_argv(draw) -> tuple:
    from constructions.rule_extrapolation import CASES

    argv = ["counterexample", draw(st.one_of(st.sampled_from([*CASES, "ANBN", "L7", "anbn-x"]), ODD_TEXT))]
    out = draw(st.sampled_from(["fresh", "file", "nonempty", "empty-dir", "under-file", "unwritable", "empty", "none", "text", "long"]))
    opts = {"--method": st.one_of(st.sampled_from(["compile", "distill"]), ODD_TEXT),
            "--device": st.one_of(st.sampled_from(["auto", "cpu", "cuda"]), ODD_TEXT),
            "--n-max": st.one_of(st.integers(-3, 6).map(str), ODD_TEXT),
            "--zero-logit": st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr), ODD_TEXT),
            "--margin": st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr), ODD_TEXT),
            "--max-steps": st.one_of(st.integers(-3, 10).map(str), ODD_TEXT),
            "--checkpoint-dir": st.sampled_from(["ckpt", "file", "under-file"])}
    for flag, strat in opts.items():
        if draw(st.integers(0, 3)) == 0:
            argv += [flag, draw(strat)]
    if draw(st.integers(0, 4)) == 0:
        argv.append("--force")
    return argv, out, draw(ODD_TEXT)


def _cli_counterexample(x: tuple) -> None:
    argv, out, text = x
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "file").write_text("not a directory\n")
        (root / "nonempty").mkdir()
        (root / "nonempty" / "keep").write_text("x")
        (root / "empty-dir").mkdir()
        paths = {"fresh": str(root / "new" / "out"), "file": str(root / "file"), "nonempty": str(root / "nonempty"),
                 "empty-dir": str(root / "empty-dir"), "under-file": str(root / "file" / "sub"),
                 "unwritable": "/proc/nonid-fuzz/out", "empty": "", "long": "./" + "x" * 300, "text": "./" + text}  # text stays under root
        argv = [paths.get(a, a) if argv[i - 1] == "--checkpoint-dir" else a for i, a in enumerate(argv)]
        if out != "none":
            argv += ["--out", paths[out]]
        rc, _o, _e = cli(argv, root)
        if rc is None:  # reached the build: the output directory must have been checked as usable
            assert out not in ("file", "under-file", "unwritable", "empty", "nonempty", "long"), \
                f"{argv!r}: an unusable --out was accepted and would fail only after the build"


@st.composite
def _check_argv(draw) -> tuple:
    kind = draw(st.sampled_from(["missing", "file", "empty-dir", "corrupt", "corrupt", "corrupt", "text", "none"]))
    return kind, draw(CORRUPTIONS), draw(ODD_TEXT), draw(st.booleans())


def _cli_check(x: tuple) -> None:
    kind, ops, text, as_json = x
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "file").write_text("{}")
        (root / "empty-dir").mkdir()
        if kind == "corrupt":
            shutil.copytree(built_directory(), root / "cx")
            corrupt(root / "cx", ops)
        target = {"missing": str(root / "missing"), "file": str(root / "file"), "empty-dir": str(root / "empty-dir"),
                  "corrupt": str(root / "cx"), "text": text}.get(kind)
        argv = ["check"] + ([] if target is None else [target]) + (["--json"] if as_json else [])
        cli(argv, root)


@st.composite
def _experiment_argv(draw) -> list[str]:
    argv = ["experiment", draw(st.one_of(st.just("rule-extrapolation"), ODD_TEXT))]
    opts = {"--language": st.one_of(st.sampled_from(["L1", "L3", "L3,L5", "L7", ",", "l2 , L4"]), ODD_TEXT),
            "--arch": st.one_of(st.sampled_from(["transformer", "lstm,linear", "ssm", "rnn", "transformer-nopos"]), ODD_TEXT),
            "--regime": st.one_of(st.sampled_from(["ml", "adversarial", "oracle", "ml,oracle", "bogus"]), ODD_TEXT),
            "--seeds": st.one_of(st.integers(-3, 3).map(str), ODD_TEXT),
            "--steps": st.one_of(st.integers(-3, 3).map(str), ODD_TEXT),
            "--jobs": st.one_of(st.integers(-3, 3).map(str), ODD_TEXT),
            "--threads": st.one_of(st.integers(-3, 3).map(str), ODD_TEXT),
            "--size": st.one_of(st.sampled_from(["cpu", "paper", "huge"]), ODD_TEXT),
            "--device": st.one_of(st.sampled_from(["auto", "cpu", "cuda", "cuda:7", "tpu"]), ODD_TEXT),
            "--regime-lengths": st.one_of(st.sampled_from(["6,7", "0", "-1", "17", "a,b", "8"]), ODD_TEXT),
            "--aggregation": st.one_of(st.sampled_from(["best-validation", "max-over-checkpoints"]), ODD_TEXT)}
    for flag, strat in opts.items():
        if draw(st.integers(0, 3)) == 0:
            argv += [flag, draw(strat)]
    if draw(st.integers(0, 5)) > 0:
        argv += ["--out", draw(st.sampled_from(["out", "file", "file/sub", "x" * 300]))]
    if draw(st.integers(0, 4)) == 0:
        argv.append(draw(st.sampled_from(["--resume", "--quiet", "--bogus"])))
    return argv


def _cli_experiment(argv: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "file").write_text("x")
        cli(argv, root)


WORDS = st.one_of(st.sampled_from(["prove", "check", "counterexample", "experiment", "--version", "-h", "--help", "--list",
                                   "--only", "--out", "--json", "--force", "--n-max", "-1", "nan", "anbn", "L3", "."]), ODD_TEXT)


def _cli_any(argv: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cli(argv, Path(tmp))


SUBPROCESS_CASES = (
    (b"counterexample", b"\xff\xfe", b"--out", b"OUT"),  # argv that is not UTF-8
    (b"check", b"MISSING"),
    (b"prove", b"--only", b"no-such-check-*"),
    (b"experiment", b"rule-extrapolation", b"--seeds", b"0", b"--out", b"OUT"),
    (b"counterexample", b"anbn", b"--n-max", b"-4", b"--out", b"OUT"),
    (b"prove", b"--bogus"),
)


def _cli_subprocess(argv: tuple[bytes, ...]) -> None:
    """A real ``python -m nonid``: exit 2, one ``nonid:`` line on stderr, no traceback."""
    with tempfile.TemporaryDirectory() as tmp:
        args = [a.replace(b"OUT", os.fsencode(tmp) + b"/out").replace(b"MISSING", os.fsencode(tmp) + b"/missing") for a in argv]
        env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        proc = subprocess.run([sys.executable, "-m", "nonid", *args], capture_output=True, cwd=tmp, env=env, timeout=120)
        err = proc.stderr.decode("utf-8", "replace")
        lines = err.splitlines()
        assert proc.returncode == 2 and "Traceback" not in err, f"{argv!r}: exit {proc.returncode}, stderr {err!r}"
        assert len(lines) == 1 and lines[0].startswith("nonid: "), f"{argv!r}: stderr {err!r}"
        assert os.listdir(tmp) == [], f"{argv!r} left {os.listdir(tmp)}"


TARGETS: tuple[Target, ...] = (
    Target("alphabet", st.one_of(st.text(max_size=6), st.lists(st.one_of(st.text(max_size=2), HASHABLE_JUNK), max_size=5),
                                 st.tuples(st.text(max_size=2), st.text(max_size=2)), JUNK), _alphabet, "Alphabet(symbols)"),
    Target("next-token-distribution",
           st.sampled_from(ALPHABETS).flatmap(lambda ab: st.tuples(st.just(ab), st.one_of(rows(ab), JUNK),
                                                                    st.one_of(st.none(), st.text(max_size=3)), JUNK)),
           _next_token, "NextTokenDistribution(alphabet, probs); prob, mix"),
    Target("finite-distribution", _finite_inputs(), _finite, "FiniteDistribution(table) and .from_weights"),
    Target("tabular-patched-model", _model_inputs(), _models, "TabularModel, PatchedModel, next_token"),
    Target("get-language", st.tuples(mostly(LANG_NAMES), st.one_of(st.text(alphabet="abc()[]", max_size=8), st.text(max_size=4))),
           _language, "get_language; is_id, contains, r1.completable"),
    Target("prompt-sets", _prompt_inputs(), _prompts, "PromptSet, split_prompts, paper_prompts"),
    Target("witness", st.tuples(mostly(st.text(max_size=4)), mostly(st.one_of(st.fractions(min_value=0), st.fractions(), PROB_TEXT)),
                                mostly(st.one_of(st.fractions(min_value=0), st.fractions(), PROB_TEXT)),
                                mostly(st.one_of(st.none(), st.integers(0, 5)), small(-2, -1))),
           _witness, "Witness(epsilon, delta, depth) and check_witness"),
    Target("certificate-json", _certificate_inputs(), _certificate, "Certificate.from_json / from_dict"),
    Target("certificate-fields", st.dictionaries(st.sampled_from(["check", "claim", "status", "method", "detail", "reason",
                                                                   "quantities", "assumptions", "versions", "elapsed_s", "timings"]),
                                                 st.one_of(JSON, JUNK), max_size=4), _certificate_fields, "Certificate(...)"),
    Target("rule-extrapolation-case", _case_inputs(), _case, "constructions.rule_extrapolation.build_case"),
    Target("ginc-config", _ginc_inputs(), _ginc, "GINCConfig, .tiny, .small"),
    Target("icl-check-stochastic", st.tuples(st.one_of(st.lists(st.lists(PROB, max_size=3), max_size=3), JUNK),
                                             st.one_of(st.none(), small(-1, 4))), _stochastic, "constructions.icl.check_stochastic"),
    Target("transformer-config", _transformer_inputs(), _transformer, "TransformerConfig, .from_dict, DecoderTransformer.encode"),
    Target("compile-distill-config", _knob_inputs(), _knob_configs, "CompileConfig, DistillConfig"),
    Target("finetuning-maps", _finetuning_inputs(), _finetuning, "qk/vo/mlp scaling, permutations, compose, apply"),
    Target("export-verify-directory", CORRUPTIONS, _export, "constructions.export.verify_directory on corrupted copies"),
    Target("cli-prove", _prove_argv(), _cli_prove, "nonid prove (--only globs, --list; checks not run)"),
    Target("cli-counterexample", _counterexample_argv(), _cli_counterexample, "nonid counterexample (build not run)"),
    Target("cli-check", _check_argv(), _cli_check, "nonid check on missing, file and corrupted directories"),
    Target("cli-experiment", _experiment_argv(), _cli_experiment, "nonid experiment (training not run)"),
    Target("cli-any", st.lists(WORDS, max_size=5), _cli_any, "random argv"),
    Target("cli-subprocess", st.sampled_from(SUBPROCESS_CASES), _cli_subprocess, "python -m nonid, real processes"),
)


# ---- running ---------------------------------------------------------------------------------------------
def hypothesis_test(target: Target, config: settings, counter: list[int] | None = None) -> Callable[[], None]:
    """The hypothesis test of ``target`` under ``config``; each call of the body adds one to ``counter[0]``."""

    def body(example: Any) -> None:
        if counter is not None:
            counter[0] += 1
        target.run(example)

    body.__name__ = f"fuzz_{target.name.replace('-', '_')}"
    return config(given(target.strategy)(body))


def run_all(max_examples: int) -> list[dict]:
    """Run every target with ``max_examples`` derandomised examples; per target {"target", "examples"
    (calls of the test body, shrinking included), "crashes" (0, or 1 when the target failed), "seconds"},
    plus "error" (the first line) when it failed."""
    config = settings(max_examples=max_examples, database=None, deadline=None, derandomize=True,
                      suppress_health_check=list(HealthCheck), print_blob=False)
    built_directory()
    results = []
    for target in TARGETS:
        counter = [0]
        start = time.perf_counter()
        row: dict[str, Any] = {"target": target.name}
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # hypothesis reports a falsifying example on stdout
                hypothesis_test(target, config, counter)()
            row["crashes"] = 0
        except Exception as e:  # noqa: BLE001 - reported
            row["crashes"] = 1
            row["error"] = f"{type(e).__name__}: {e}".splitlines()[0]
        row["examples"] = counter[0]
        row["seconds"] = round(time.perf_counter() - start, 3)
        results.append(row)
    return results


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 60
    total = 0.0
    for r in run_all(n):
        total += r["seconds"]
        print(f"{r['target']:<26} {r['examples']:>5} examples  {r['crashes']} crashes  {r['seconds']:6.2f}s  {r.get('error', '')}")
    print(f"total {total:.1f}s")
