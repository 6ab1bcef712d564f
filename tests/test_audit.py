"""Bring your own model: the token map, the network adapter, the audit's verdicts and its command line.

The saturated network is the compiled aⁿbⁿ completer (n ≤ 3; KL ≤ 1e-9 by construction and by its own
certificate), the unsaturated one a randomly initialised transformer.  Every verdict path has a broken
input with the verdict it must get beside a control that passes.
"""

from __future__ import annotations

import functools
import json
import math
from fractions import Fraction

import pytest
import torch

from theory.errors import InputTooLong, InvalidModelConfig, UnknownToken
from theory.tokenmap import native_token_map, parse_token_map


@functools.lru_cache(maxsize=None)
def _pair():
    from constructions.export import build_pair, load_case

    case = load_case("anbn", 3)
    return case, build_pair(case)


def _l3():
    from theory.languages import get_language

    return get_language("L3")


def _model(net, tokens=None, context=None, **kw):
    from empirical.adapter import NetworkModel

    return NetworkModel(net, tokens or native_token_map(net.alphabet), context or net.config.max_len, **kw)


def _random_net(alphabet="ab", max_len=8, seed=0):
    from constructions.transformer import DecoderTransformer, TransformerConfig

    return DecoderTransformer(TransformerConfig(alphabet=alphabet, d_model=8, n_heads=2, d_head=4, d_mlp=16, n_layers=1,
                                                max_len=max_len, seed=seed))


def _audit(model, **kw):
    from empirical.audit import audit

    case, _ = _pair()
    return audit(model, case.data, language=_l3(), **kw)


# ---- the token map ---------------------------------------------------------------------------------------
def test_token_map_reads_every_symbol_eos_bos_and_an_optional_pad():
    m = parse_token_map("a=0, b=1, eos=2, bos=3", "ab")
    assert (m.symbols, m.eos, m.bos, m.pad) == ((0, 1), 2, 3, 2)
    assert m.outcome_ids == (0, 1, 2)
    assert parse_token_map(m.text(), "ab") == m
    assert parse_token_map("a=5,b=7,EOS=0,BOS=0,pad=9", "ab").bos == 0  # BOS may share EOS's id (GPT-2)


@pytest.mark.parametrize("text, match", [
    ("a=0,eos=2,bos=3", "misses 'b'"),
    ("a=0,b=1,bos=3", "misses 'eos'"),
    ("a=0,b=0,eos=2,bos=3", "two symbols, 'a' and 'b', to one id 0"),
    ("a=0,b=1,eos=1,bos=3", "symbol 'b' and eos to one id 1"),
    ("a=0,b=1,eos=2,bos=0", "symbol 'a' and bos to one id 0"),
    ("a=0,a=1,b=2,eos=3,bos=4", "gives 'a' twice"),
    ("a=0,b=1,c=2,eos=3,bos=4", "'c', which is neither a symbol"),
    ("a=-1,b=1,eos=2,bos=3", "'-1' of 'a' is not a non-negative integer"),
    ("a=x,b=1,eos=2,bos=3", "'x' of 'a'"),
    ("a0,b=1,eos=2,bos=3", "'a0' is not NAME=ID"),
    ("", "is empty"),
])
def test_a_bad_token_map_is_refused_naming_the_problem(text, match):
    with pytest.raises(UnknownToken, match=match):
        parse_token_map(text, "ab")


# ---- the adapter -----------------------------------------------------------------------------------------
def test_a_vocabulary_that_disagrees_with_the_map_is_refused():
    net = _random_net()
    with pytest.raises(InvalidModelConfig, match="token id 7 of 'eos' is outside the network's 3 outputs"):
        _model(net, parse_token_map("a=0,b=1,eos=7,bos=3,pad=4", "ab"))
    with pytest.raises(InvalidModelConfig, match="token id 9 of 'bos' is outside the network's input vocabulary of 5"):
        _model(net, parse_token_map("a=0,b=1,eos=2,bos=9", "ab"))
    with pytest.raises(InvalidModelConfig, match="context length 9 exceeds the network's 8 positions"):
        _model(net, context=9)
    m = _model(net)
    with pytest.raises(InputTooLong, match="context length is 8"):
        m.next_token("aaaaaaaa")


def test_the_adapter_keeps_its_first_answers_when_the_caller_changes_the_weights():
    net = _random_net()
    m = _model(net)
    before = m.next_token("ab")
    with torch.no_grad():
        for p in net.parameters():
            p.add_(1.0)
    assert m.next_token("ab") == before
    assert _model(net).next_token("ab") != before  # control: a new adapter sees the new weights


def test_renormalised_rows_are_the_networks_float_softmax_batched_or_alone():
    """Float rows may differ in the last bits between batch layouts (no verdict reads them); within one
    adapter the first answer stays."""
    net = _random_net()
    m = _model(net)
    m.prefetch(["aab", "ab", "b"])
    alone = _model(net)
    with torch.no_grad():
        for u in ("", "a", "aa", "aab", "ab", "b"):
            lp = net.double().next_token_log_probs([u])[0].exp().tolist()
            for model in (m, alone):
                row = [float(p) for p in model.next_token(u).probs]
                assert max(abs(x - y) for x, y in zip(row, lp)) < 1e-12
            assert m.next_token(u) is m.next_token(u)


def test_the_adapter_is_an_ar_model_the_rule_case_accepts():
    from theory.models import validated

    case, pair = _pair()
    m = _model(pair.q1)
    other = case.with_models(completer=m)
    assert validated(other.completer).next_token("aab") == m.next_token("aab")


# ---- the saturation verdict -------------------------------------------------------------------------------
def test_a_saturated_network_is_verified_with_the_gap_in_three_units():
    _, pair = _pair()
    res = _audit(_model(pair.q1))
    assert res.rigorous and res.status.value == "verified", res.reason
    g = res.gap
    assert 0 <= g.kl_lo <= g.kl_hi <= 1e-8
    lo_t, hi_t = g.per_token()
    assert hi_t >= g.kl_hi / g.per_token_divisor and lo_t <= g.kl_lo / g.per_token_divisor
    assert res.leaked == (0.0, 0.0)  # a DecoderTransformer has no output besides Σ ∪ {EOS}
    assert set(res.metrics) == {"paper", "published"}


def test_an_unsaturated_network_is_falsified_and_a_straddling_eps_is_unknown():
    res = _audit(_model(_random_net()))
    assert res.status.value == "falsified"
    lo, hi = res.gap.per_token()
    mid = (lo + hi) / 2
    straddle = _audit(_model(_random_net()), epsilon=mid)
    assert straddle.status.value == "unknown" and "straddles" in straddle.reason


def test_a_float_evaluation_never_verifies():
    _, pair = _pair()
    net = pair.q1.double()
    res = _audit(_model(lambda ids: net(ids), native_token_map("ab"), net.config.max_len))
    assert not res.rigorous and res.status.value == "unknown" and "float evaluation" in res.reason
    assert res.gap.kl_hi < 1e-6  # it is measured all the same


def test_a_network_that_depends_on_the_batch_layout_is_not_read_as_rigorous():
    from constructions.transformer import DecoderTransformer

    class Layout(DecoderTransformer):  # right on a batch of one, off in a larger batch
        def forward(self, tokens):
            z = super().forward(tokens)
            return z if tokens.shape[0] == 1 else z + 5.0 * (tokens[..., None] == 0)

    _, pair = _pair()
    clever = Layout(pair.q1.config)
    clever.load_state_dict(pair.q1.state_dict())
    res = _audit(_model(clever))
    assert not res.rigorous and res.status.value == "unknown"
    assert "overrides" in res.evaluation


def test_mass_on_ids_outside_the_alphabet_counts_against_the_network():
    """An ``abc`` network read as an ``ab`` model: what it puts on ``c`` leaks, and the gap uses the full softmax."""
    from empirical.adapter import NetworkModel

    net = _random_net("abc", max_len=8)
    tokens = parse_token_map("a=0,b=1,eos=3,bos=4,pad=5", "ab")
    m = NetworkModel(net, tokens, 8)
    res = _audit(m)
    with torch.no_grad():
        z = net.double()(net.encode(["aab"]))[0, 3].softmax(-1)
    assert res.leaked[1] >= float(z[2]) > 0.01  # the largest leak bounds this prefix's
    # the renormalised model's gap (the float rows read exactly) is below the full-softmax gap
    from theory.losses import kl_divergence

    case, _ = _pair()
    _lo, renorm_hi = kl_divergence(case.data, m).interval(60)
    leak_cost = -math.log(1 - float(z[2]))  # at least what the prefix aab alone adds, weighted by P(aab) = 1/3
    assert float(renorm_hi) + leak_cost / 3 < res.gap.kl_lo


def test_the_context_check_lists_completions_the_context_cuts():
    _, pair = _pair()
    res = _audit(_model(pair.q1, context=10))
    assert res.context_stops  # the paper's prompts have 8 symbols: a completion of more than one does not fit in 10
    run = next(r for r in res.completions if r.stop == "context")
    assert len(run.prompt) + len(run.text) + 1 >= res.context


def test_a_context_shorter_than_the_longest_support_word_is_refused():
    _, pair = _pair()
    with pytest.raises(InvalidModelConfig, match="context length 6 is shorter than the longest support word"):
        _audit(_model(pair.q1, context=6))


def test_certified_greedy_matches_the_construction_on_the_prompts_that_fit():
    from theory.properties import greedy_completion

    case, pair = _pair()
    m = _model(pair.q1)
    res = _audit(m)
    fit = [r for r in res.completions if r.stop != "context"]
    assert fit and all(r.certified for r in fit)
    for r in fit[:20]:
        want = greedy_completion(case.completer, r.prompt, res.context - len(r.prompt))
        assert r.text == want.text[:len(r.text)]


def test_the_sampled_probability_is_unknown_when_its_budget_runs_out():
    _, pair = _pair()
    small = _audit(_model(pair.q1), sampled=True, node_budget=1)
    assert all(s["status"] == "unknown" and "budget" in s["reason"] for s in small.sampled.values())
    lo, hi = small.sampled["paper"]["ood_r1_sampled"]
    assert 0 <= lo <= hi <= 1
    short = _audit(_model(pair.q1, context=10), sampled=True)  # completions longer than 1 token do not fit: open mass
    assert all(s["status"] == "unknown" for s in short.sampled.values())
    lo2, hi2 = short.sampled["paper"]["ood_r1_sampled"]
    assert 0 <= lo2 <= hi2 <= 1


def test_the_certificate_says_what_was_checked():
    from empirical.audit import audit_certificate
    from theory.certificate import Certificate

    _, pair = _pair()
    res = _audit(_model(pair.q1))
    cert = audit_certificate(res)
    back = Certificate.from_dict(json.loads(cert.to_json()))
    assert back.status.value == "verified"
    q = back.quantities
    assert q["rigorous"] is True and q["token_map"] == "a=0,b=1,eos=2,bos=3,pad=4"
    assert set(q) >= {"gap_nats_per_sequence", "gap_nats_per_token", "gap_nats_per_padded_token", "leaked_mass_max",
                      "completions", "context_stops", "rule_metrics"}
    lo, hi = (Fraction(x) for x in q["gap_nats_per_token"])
    assert lo <= Fraction(res.gap.per_token()[0]) and hi >= Fraction(res.gap.per_token()[1])  # rounded outward
    floated = audit_certificate(_audit(_model(lambda ids: pair.q1.double()(ids), native_token_map("ab"), 8)))
    assert floated.status.value == "unknown" and "not the network's real function" in floated.assumptions[0]


def test_a_bad_epsilon_is_refused():
    _, pair = _pair()
    for eps in (0, -1e-3, math.inf, math.nan):
        with pytest.raises(InvalidModelConfig, match="epsilon"):
            _audit(_model(pair.q1), epsilon=eps)


# ---- the command line ---------------------------------------------------------------------------------------
def _cli(argv, capsys):
    from nonid.cli import main

    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_the_command_audits_a_nonid_file_and_writes_the_certificate(tmp_path, capsys):
    _, pair = _pair()
    f = tmp_path / "q1.safetensors"
    pair.q1.save(f)
    cert = tmp_path / "audit.json"
    code, out, err = _cli(["audit", str(f), "--language", "L3", "--n-max", "3", "--json", "--certificate", str(cert)], capsys)
    assert code == 0, err
    doc = json.loads(out)
    assert doc["status"] == "verified" and json.loads(cert.read_text())["status"] == "verified"
    assert "verdict: saturated at eps = 0.001 nats/token: verified" in err
    code, _out, err = _cli(["audit", str(f), "--language", "L3", "--n-max", "3", "--certificate", str(cert)], capsys)
    assert code == 2 and "exists" in err


@pytest.mark.parametrize("extra, match", [
    (["--tokens", "a=0,eos=2,bos=3"], "misses 'b'"),
    (["--tokens", "a=0,b=0,eos=2,bos=3"], "to one id 0"),
    (["--tokens", "a=0,b=1,eos=9,bos=3,pad=4"], "token id 9 of 'eos' is outside"),
    (["--tokens", "a=0,b=1,eos=9,bos=3"], "token id 9 of 'pad' is outside"),
    (["--context", "5"], "context length 5 is shorter than the longest support word"),
    (["--max-length", "5"], "--max-length applies to L1, L2, L4, L6"),
    (["--node-budget", "5"], "--node-budget applies with --sampled only"),
    (["--epsilon", "0"], "--epsilon"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, extra, match):
    _, pair = _pair()
    f = tmp_path / "q1.safetensors"
    pair.q1.save(f)
    code, out, err = _cli(["audit", str(f), "--language", "L3", "--n-max", "3", *extra], capsys)
    assert code == 2 and match in err and err.count("\n") == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["q1.safetensors"]


def test_a_folder_that_is_not_a_model_is_refused(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code, _out, err = _cli(["audit", str(tmp_path / "empty"), "--language", "L3"], capsys)
    assert code == 2 and "not a model folder" in err
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "config.json").write_text('{"hello": 1}')
    code, _out, err = _cli(["audit", str(tmp_path / "cfg"), "--language", "L3"], capsys)
    assert code == 2 and "names no model_type" in err
    (tmp_path / "pair").mkdir()
    (tmp_path / "pair" / "config.json").write_text('{"format": "nonid-counterexample-3"}')
    code, _out, err = _cli(["audit", str(tmp_path / "pair"), "--language", "L3"], capsys)
    assert code == 2 and "counterexample folder" in err
    (tmp_path / "junk.bin").write_bytes(b"\x00\x01junk")
    code, _out, err = _cli(["audit", str(tmp_path / "junk.bin"), "--language", "L3"], capsys)
    assert code == 2 and "neither a nonid transformer" in err


def test_a_factory_and_its_weights(tmp_path, capsys, monkeypatch):
    _, pair = _pair()
    (tmp_path / "mynets.py").write_text(
        "from constructions.transformer import DecoderTransformer, TransformerConfig\n"
        f"def build():\n    return DecoderTransformer(TransformerConfig(**{pair.q1.config.to_dict()!r}))\n")
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in pair.q1.state_dict().items()}, str(tmp_path / "w.safetensors"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    code, out, err = _cli(["audit", "w.safetensors", "--factory", "mynets:build", "--language", "L3", "--n-max", "3",
                           "--tokens", "a=0,b=1,eos=2,bos=3,pad=4"], capsys)
    assert code == 0, err
    assert "verdict: saturated at eps = 0.001 nats/token: verified" in out
    code, _out, err = _cli(["audit", "w.safetensors", "--factory", "mynets:nothing", "--language", "L3", "--n-max", "3",
                            "--tokens", "a=0,b=1,eos=2,bos=3"], capsys)
    assert code == 2 and "no function 'nothing'" in err
    (tmp_path / "broken.py").write_text("def build():\n    raise RuntimeError('no GPU here')\n")
    code, _out, err = _cli(["audit", "w.safetensors", "--factory", "broken:build", "--language", "L3", "--n-max", "3",
                            "--tokens", "a=0,b=1,eos=2,bos=3"], capsys)
    assert code == 2 and "broken:build() raised RuntimeError: no GPU here" in err and err.count("\n") == 1


def test_your_own_data_distribution_from_a_file(tmp_path, capsys):
    _, pair = _pair()
    f = tmp_path / "q1.safetensors"
    pair.q1.save(f)
    good = tmp_path / "p.json"
    good.write_text('{"ab": "1/3", "aabb": "1/3", "aaabbb": "1/3"}')
    code, out, err = _cli(["audit", str(f), "--language", "L3", "--data", str(good)], capsys)
    assert code == 0 and "data: p.json; " in out, err  # the compiled completer's own P (uniform, n <= 3)
    for text, match in (('{"ab": "1/2", "aabb": 0.5}', "is a float"), ('{"ab": "1/2", "abc": "1/2"}', "not in alphabet"),
                        ('{"ab": "1/2"}', "sums to 1/2"), ("[1, 2]", "not a non-empty JSON object")):
        bad = tmp_path / "bad.json"
        bad.write_text(text)
        code, _out, err = _cli(["audit", str(f), "--language", "L3", "--data", str(bad)], capsys)
        assert code == 2 and match in err and err.startswith("nonid: --data"), err


def test_a_token_map_built_by_hand_is_checked_too():
    from theory.alphabet import Alphabet
    from theory.tokenmap import TokenMap

    ab = Alphabet("ab")
    assert TokenMap(ab, (0, 1), 2, 3, 2).outcome_ids == (0, 1, 2)  # the control
    for args, match in ((("ab", (0, 1), 2, 3, 2), "must be an Alphabet"), ((ab, [0, 1], 2, 3, 2), "must be a tuple"),
                        ((ab, (0,), 2, 3, 2), "1 symbol ids for the 2"), ((ab, (0, True), 2, 3, 2), "True must be an int"),
                        ((ab, (0, 1), 2, 2, -1), "'pad' = -1")):
        with pytest.raises(UnknownToken, match=match):
            TokenMap(*args)
