"""The analytic compiler: compiled transformers reproduce the construction on every prefix of the set
(up to the stated logit floor), output the uniform row off it, and refuse bad knobs."""

import math
import random
from fractions import Fraction

import numpy as np
import pytest
import torch

from constructions.check import evaluate
from constructions.compile import CompileConfig, PrefixSet, compile_model, compiled_config, prefix_set
from theory.alphabet import Alphabet
from theory.data import FiniteDistribution
from theory.errors import InvalidBudget, InvalidDistribution, InvalidModelConfig
from theory.models import FunctionModel, SupportExtension, TabularModel

AB = Alphabet("ab")


def anbn_pair(n_max: int = 6):
    """A stand-in Proposition 1 pair over finite aⁿbⁿ: completer and violator off the support."""
    data = FiniteDistribution.uniform(AB, ["a" * n + "b" * n for n in range(1, n_max + 1)])

    def completer(u: str):
        d = u.count("a") - u.count("b")
        return {"<eos>": 1} if d == 0 else {"b": 1} if d > 0 else {"a": 1}

    def violator(u: str):
        return {"a": 1} if u.count("a") == u.count("b") else {"<eos>": 1}

    return data, SupportExtension(data, FunctionModel(AB, completer)), SupportExtension(data, FunctionModel(AB, violator))


def tv_rows(net, model, prefixes):
    z = evaluate(net, prefixes)
    q = np.exp(z - z.max(1, keepdims=True))
    q /= q.sum(1, keepdims=True)
    p = np.array([[float(x) for x in model.next_token(u).probs] for u in prefixes.prefixes])
    return 0.5 * np.abs(p - q).sum(1)


def test_prefix_set_is_prefix_closed_with_maximal_words():
    ps = PrefixSet.closure("ab", ["ab", "abb", "ba"])
    assert ps.prefixes == ("", "a", "b", "ab", "ba", "abb")
    assert set(ps.maximal) == {"abb", "ba"}
    assert "ab" in ps and "bb" not in ps and ps.max_length == 3


def test_compiled_anbn_reproduces_both_constructions_on_support_and_prompt_paths():
    data, q1, q2 = anbn_pair(6)
    prompts = list(AB.words(5))
    ps = prefix_set(q1, data=data, prompts=prompts, max_new_tokens=12, follow=[q2])
    assert all(u in ps for u in data.support_prefixes())
    for model in (q1, q2):
        net, report = compile_model(model, ps)
        assert net.config.dtype == "float64" and net.config.norm == "none" and net.config.activation == "relu"
        assert report.parameters == sum(p.numel() for p in net.parameters())
        tv = tv_rows(net, model, ps)
        # every row here has a zero, so the floor bound applies: TV = m e^-Λ / (1 + m e^-Λ) plus float rounding
        assert tv.max() <= report.floor_tv_bound + 1e-14
        assert report.floor_tv_bound == pytest.approx(math.exp(-40), rel=1)


def test_random_rational_rows_with_and_without_zeros_are_reproduced_on_all_words_up_to_a_horizon():
    ab = Alphabet("abc")
    rng = random.Random(3)
    table = {}
    for u in ab.words_up_to(4):
        w = [rng.choice([0, 0, 1, 2, 7]) for _ in range(4)]
        w[rng.randrange(4)] += 1
        table[u] = {t: Fraction(x, sum(w)) for t, x in zip(ab.outcomes, w)}
    model = TabularModel(ab, table)
    ps = prefix_set(model, horizon=4)
    assert len(ps) == sum(3 ** k for k in range(5))
    net, report = compile_model(model, ps, CompileConfig(zero_logit=30.0, margin=0.5))
    tv = tv_rows(net, model, ps)
    assert tv.max() <= report.floor_tv_bound + 1e-13
    exact_rows = [i for i, u in enumerate(ps.prefixes) if all(model.next_token(u).probs)]
    assert exact_rows and tv[exact_rows].max() < 1e-13  # no zeros: reproduced up to float64 rounding


def test_the_floor_is_what_the_report_says():
    data, q1, _ = anbn_pair(3)
    ps = prefix_set(q1, data=data)
    net, report = compile_model(q1, ps, CompileConfig(zero_logit=5.0))
    tv = tv_rows(net, q1, ps)
    e = 2 * math.exp(-5.0)  # rows a^k b^j (j < k) are point masses: two zero tokens
    assert report.floor_tv_bound == pytest.approx(e / (1 + e))
    assert tv.max() == pytest.approx(report.floor_tv_bound, rel=1e-9)


def test_off_the_set_the_compiled_network_is_uniform():
    data, q1, _ = anbn_pair(3)
    ps = prefix_set(q1, data=data)
    net, _ = compile_model(q1, ps)
    lp = net.next_token_log_probs(["ba", "bbb", "abab"])
    assert torch.allclose(lp, torch.full_like(lp, -math.log(3)), atol=1e-12)


def test_sizes_follow_the_documented_formula():
    ps = PrefixSet.closure("ab", ["aabb", "ba"])
    cfg = compiled_config("ab", ps)
    assert cfg.max_len == 5 and cfg.d_head == 8 and cfg.n_layers == 2 and cfg.n_heads == 1
    assert cfg.d_model == 5 + 5 + 8 + 3 and cfg.d_mlp == max(len(ps), 8)


@pytest.mark.parametrize("knobs, fragment", [
    ({"zero_logit": 0.5}, "zero_logit = 0.5"), ({"zero_logit": float("nan")}, "zero_logit = nan"),
    ({"zero_logit": 800}, "zero_logit = 800"), ({"margin": 0}, "margin = 0"), ({"margin": "1"}, "margin = '1'"),
    ({"margin": True}, "margin = True"),
])
def test_bad_knobs_are_refused_by_name(knobs, fragment):
    with pytest.raises(InvalidModelConfig, match=fragment.replace("(", r"\(")):
        CompileConfig(**knobs)


def test_bad_inputs_are_typed_errors():
    data, q1, _ = anbn_pair(2)
    with pytest.raises(InvalidBudget):
        prefix_set(q1, horizon=-1)
    from theory.data import anbn_geometric

    with pytest.raises(InvalidDistribution):
        prefix_set(q1, data=anbn_geometric())
    with pytest.raises(InvalidModelConfig):
        compile_model(q1, PrefixSet.closure("abc", ["a"]))
    with pytest.raises(InvalidModelConfig, match="expected a CompileConfig"):
        compile_model(q1, prefix_set(q1, data=data), config={"zero_logit": 3})
