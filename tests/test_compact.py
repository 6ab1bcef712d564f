"""The compact compiler (constructions.compile.compact) and the every-prefix check
(constructions.compile.abstract, constructions.compact_pair)."""

from __future__ import annotations

import itertools
import warnings

import pytest
import torch

from constructions.compact_pair import COUNT_RULES, every_prefix_certificate
from constructions.compile.abstract import abstract_evaluate
from constructions.compile.compact import CompactConfig, compile_compact, parameters_for
from constructions.enclosure import enclose
from constructions.rule_extrapolation import build_case
from theory.errors import InvalidModelConfig
from theory.languages import get_language

warnings.filterwarnings("ignore", category=UserWarning)


@pytest.fixture(scope="module")
def l3():
    return build_case("L3", n_max=4)


@pytest.fixture(scope="module")
def pair(l3):
    cfg = CompactConfig(context=16)  # every paper prompt (length 8) can finish: "bbbbbbbb" needs 8 more
    return compile_compact(l3.data, "completer", cfg)[0], compile_compact(l3.data, "violator", cfg)[0]


def test_count_rule_is_the_languages_r1():
    lang = get_language("L3")
    _name, r1 = COUNT_RULES["L3"]
    for n in range(13):
        for w in itertools.product("ab", repeat=n):
            u = "".join(w)
            assert r1((u.count("a"), u.count("b"))) == lang.r1.accepts(u), u


def test_networks_are_the_constructions_at_every_word(l3, pair):
    """Float forward, every word of length <= 10: the greedy token is the case's completer / violator token."""
    for net, model in zip(pair, (l3.completer, l3.violator)):
        for n in range(11):
            words = ["".join(w) for w in itertools.product("ab", repeat=n)]
            with torch.no_grad():
                z = net(net.encode(words, length=n + 1))[:, -1]
            for u, row in zip(words, torch.softmax(z, -1)):
                want = model.next_token(u).probs
                assert max(abs(float(p) - float(q)) for p, q in zip(want, row)) < 1e-12, u


def test_parameter_count_and_size_do_not_grow_with_n():
    small = compile_compact(build_case("L3", n_max=4).data, "violator", CompactConfig(context=256))[0]
    big = compile_compact(build_case("L3", n_max=128).data, "violator", CompactConfig(context=256))[0]
    n = sum(p.numel() for p in small.parameters())
    assert n == sum(p.numel() for p in big.parameters()) == parameters_for(256) < 100_000


def test_every_prefix_certificate_verifies_and_covers_every_word(l3, pair):
    cert = every_prefix_certificate(l3, *pair, tolerance=1e-9, cross_length=12)
    assert cert.status.value == "verified", cert.reason
    q1, q2 = cert.quantities["q1"], cert.quantities["q2"]
    assert q1["cross_check"]["prefixes"] == 2 ** 13 - 1 and q1["cross_check"]["all_overlap"]
    assert q1["ood_outcomes"]["violates"] == 0 and q2["ood_outcomes"]["satisfies"] == 0
    assert q1["paper_prompts"] == {"satisfies": 251} and q2["paper_prompts"] == {"violates": 251}


def test_group_bounds_contain_the_direct_enclosure_at_every_prefix(pair):
    """Differential: the abstract bounds of each prefix's group overlap a direct rigorous forward pass."""
    for net in pair:
        ev = abstract_evaluate(net)
        words = ["".join(w) for w in itertools.product("ab", repeat=12)]
        prefixes = sorted({w[:t] for w in words for t in range(13)}, key=len)
        enc = enclose(net, words, prefixes)
        for u in prefixes:
            i = ev.index[ev.group_of(u)]
            lo, hi = enc.row(u)
            assert (ev.lp_lo[i] <= hi).all() and (lo <= ev.lp_hi[i]).all(), u


def test_infinite_support_anbn():
    case = build_case("anbn")
    cfg = CompactConfig(context=24)
    q1, q2 = (compile_compact(case.data, r, cfg)[0] for r in ("completer", "violator"))
    cert = every_prefix_certificate(case, q1, q2, tolerance=1e-9, cross_length=8)
    assert cert.status.value == "verified", cert.reason
    assert cert.quantities["q1"]["support_mass_beyond_context"] == "1/4096"  # P(n > 12) = 2^-12


@pytest.mark.parametrize("kw, match", [
    ({"context": 7}, "shorter than the longest support word"),
    ({"zero_logit": 1.0}, "zero_logit"),
    ({"margin": 0.0}, "margin"),
    ({"context": 10 ** 6}, "context"),
])
def test_bad_knobs_are_refused(l3, kw, match):
    with pytest.raises(InvalidModelConfig, match=match):
        compile_compact(l3.data, "completer", CompactConfig(**kw))


def test_other_languages_are_refused():
    with pytest.raises(InvalidModelConfig, match="not a\\^n b\\^n|over 'ab'"):
        compile_compact(build_case("L5", n_max=2).data, "completer", CompactConfig(context=12))


def test_cli_refusals(tmp_path, capsys):
    from nonid.cli import main

    for argv, needle in ((["counterexample", "L5", "--method", "compact"], "no compact construction"),
                         (["counterexample", "L3", "--method", "compact", "--context", "100"], "--context 100"),
                         (["counterexample", "anbn", "--method", "compact", "--margin", "1e9"], "--margin"),
                         (["counterexample", "anbn", "--context", "64"], "--context applies")):
        assert main([*argv, "--out", str(tmp_path / "x")]) == 2
        err = capsys.readouterr().err
        assert needle in err and "Traceback" not in err
        assert not (tmp_path / "x").exists()


def test_cli_builds_and_rechecks(tmp_path, capsys):
    from nonid.cli import main

    out = tmp_path / "pair"
    assert main(["counterexample", "anbn", "--method", "compact", "--n-max", "3", "--context", "16", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "estimate: 2 models x" in text and "every prefix <= 16 (Q2)" in text and text.strip().endswith("verified")
    assert main(["check", str(out)]) == 0
    assert "verified" in capsys.readouterr().out


def test_outside_the_class_nothing_is_claimed(l3, pair):
    """LayerNorm, three layers or a non-uniform head: refused with the reason, status unknown."""
    from constructions.compile.abstract import why_not_abstractable
    from constructions.transformer import DecoderTransformer, TransformerConfig

    for cfg, needle in ((TransformerConfig(norm="pre"), "norm"), (TransformerConfig(norm="none", n_layers=3), "3 layers"),
                        (TransformerConfig(norm="none"), "not exactly uniform")):
        assert needle in why_not_abstractable(DecoderTransformer(cfg))
    cert = every_prefix_certificate(l3, DecoderTransformer(TransformerConfig(norm="pre", max_len=17)), pair[1],
                                    tolerance=1e-9, cross_length=4)
    assert cert.status.value == "unknown" and "does not cover" in cert.reason


def test_support_words_longer_than_the_context_leave_the_loss_undecided():
    """Networks built for n <= 4 (T = 8) checked against data up to n = 5: the last prefixes do not fit."""
    small = build_case("L3", n_max=4)
    cfg = CompactConfig(context=8)
    q1, q2 = (compile_compact(small.data, r, cfg)[0] for r in ("completer", "violator"))
    cert = every_prefix_certificate(build_case("L3", n_max=5), q1, q2, tolerance=1e-9, cross_length=4)
    assert cert.status.value != "verified"
    assert "longer than the context" in cert.reason or "exceeds tolerance" in cert.reason
