"""The exhaustive checker: it verifies a faithful compiled pair, and it can fail — a weight perturbed on
one support prefix's lookup unit, a network of the other construction — naming the prefix."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from constructions.check import TorchARModel, check_model, check_pair, evaluate, scientific
from constructions.compile import compile_model, prefix_set
from constructions.enclosure import enclose, kl_bounds
from constructions.export import case_prefixes, load_case
from constructions.transformer import DecoderTransformer, TransformerConfig
from theory.certificate import Status
from theory.errors import InvalidModelConfig
from theory.losses import entropy


@pytest.fixture(scope="module")
def compiled():
    case = load_case("anbn", 5)
    ps = case_prefixes(case)
    q1, _ = compile_model(case.completer, ps)
    q2, _ = compile_model(case.violator, ps)
    return case, ps, q1, q2


def test_the_compiled_pair_is_verified_with_the_papers_251_ood_prompts(compiled):
    case, ps, q1, q2 = compiled
    cert = check_pair(case, q1, q2, ps)
    assert cert.status is Status.VERIFIED and cert.method == "exhaustive", cert.reason
    q = cert.quantities
    assert q["ood_prompts"] == 251
    assert q["q1"]["ood_r1"]["exact"] == "1" and q["q2"]["ood_r1"]["exact"] == "0"
    assert float(q["q1"]["max_tv_upper"]) < 1e-11 and q["q1"]["prefixes_checked"] == len(ps)
    assert float(q["q1"]["kl_upper"]) < 1e-10 and q["q1"]["tolerance_tv"] == 1e-9 and q["q1"]["kl_bound"] == 1e-9


def test_a_weight_perturbed_on_one_support_prefixs_path_is_falsified_and_named(compiled):
    case, ps, q1, q2 = compiled
    bad = q1.clone()
    target = "aaab"
    k = ps.prefixes.index(target)
    logit_rows = slice(bad.config.d_model - bad.config.n_outputs, bad.config.d_model)
    with torch.no_grad():
        bad.blocks[1].mlp.fc_out.weight[logit_rows, k] += torch.tensor([45.0, 0.0, 0.0], dtype=torch.float64)
    mc = check_model(bad, case.completer, ps, data=case.data)
    assert not mc.within_tolerance and mc.worst_prefix == target and mc.worst_support_prefix == target
    assert mc.kl_lo > 0  # the loss sees it: a rigorous positive lower bound
    cert = check_pair(case, bad, q2, ps)
    assert cert.status is Status.FALSIFIED and repr(target) in cert.reason


def test_a_network_of_the_other_construction_is_falsified(compiled):
    case, ps, q1, q2 = compiled
    cert = check_pair(case, q2, q1, ps)
    assert cert.status is Status.FALSIFIED
    assert "Q1: max TV" in cert.reason and "is not certainly the construction's" in cert.reason


def test_a_pair_with_no_gap_is_falsified(compiled):
    case, ps, q1, _ = compiled
    same = replace(case, violator=case.completer)
    cert = check_pair(same, q1, q1, ps)
    assert cert.status is Status.FALSIFIED and "no gap" in cert.reason


def test_evaluate_reads_every_prefix_as_a_single_forward_pass_would():
    net = DecoderTransformer(TransformerConfig(alphabet="ab", d_model=8, n_heads=2, d_head=4, d_mlp=8, max_len=8))
    ps = prefix_set(load_case("anbn", 2).completer, horizon=5)
    z = evaluate(net, ps, batch_elements=64)  # tiny batches: the layout must not depend on them
    with torch.no_grad():
        ref = net(net.encode(list(ps.prefixes)))
    idx = torch.tensor([len(u) for u in ps.prefixes])
    np.testing.assert_allclose(z, ref[torch.arange(len(ps)), idx].numpy(), rtol=0, atol=1e-12)


def test_the_enclosed_kl_brackets_the_float_value_for_a_network_far_from_the_data():
    case = load_case("anbn", 3)
    ps = case_prefixes(case)
    net = DecoderTransformer(TransformerConfig(alphabet="ab", d_model=8, n_heads=2, d_head=4, d_mlp=8, max_len=ps.max_length + 1))
    z = evaluate(net, ps)
    lo, hi = kl_bounds(case.data, enclose(net, ps.maximal, ps.prefixes))
    lq = z - np.log(np.exp(z).sum(1, keepdims=True))
    pos = {u: i for i, u in enumerate(ps.prefixes)}
    ce = -sum(float(m) * lq[pos[u], a] for u, _mass, ms in case.data.support_nodes() for a, m in enumerate(ms) if m)
    kl = ce - float(entropy(case.data))
    assert float(lo) <= kl + 1e-9 and kl - 1e-9 <= float(hi) and float(hi - lo) < 1e-6 and kl > 0.1


def test_the_adapter_is_an_exact_armodel_with_the_networks_argmax():
    net = DecoderTransformer(TransformerConfig(alphabet="ab", d_model=8, n_heads=2, d_head=4, d_mlp=8, max_len=8))
    m = TorchARModel(net)
    for u in ("", "ab", "bba"):
        row = m.next_token(u)
        assert sum(row.probs) == 1
        assert row.argmax()[0] == m.alphabet.outcomes[int(net.next_token_log_probs([u])[0].argmax())]


def test_scientific_rounds_outward():
    from fractions import Fraction

    assert scientific(Fraction(1, 3), "up") == "3.34e-01" and scientific(Fraction(1, 3), "down") == "3.33e-01"
    assert scientific(Fraction(0), "up") == "0" and scientific(Fraction(9999, 1000), "up") == "1.00e+01"


@pytest.mark.parametrize("tol", [-0.1, 2, "0.1", True])
def test_bad_tolerance_is_refused(compiled, tol):
    case, ps, q1, _ = compiled
    with pytest.raises(InvalidModelConfig, match="tolerance"):
        check_model(q1, case.completer, ps, tolerance=tol)


# ---- the distiller, judged by the same checker -----------------------------------------------------
TINY = dict(d_model=16, n_heads=2, d_head=8, d_mlp=32, lr=1e-2, check_every=10, device="cpu")


def test_a_distilled_network_reaches_the_target_and_the_checker_agrees():
    from constructions.distill import DistillConfig, distill

    case = load_case("anbn", 2)
    ps = prefix_set(case.completer, data=case.data)
    res = distill(case.completer, ps, DistillConfig(max_steps=2000, **TINY), progress=False)
    assert res.converged and res.max_tv <= 0.01
    mc = check_model(res.net, case.completer, ps, data=case.data, tolerance=0.01)
    assert mc.within_tolerance and mc.kl_hi is not None


def test_the_step_cap_is_not_convergence_and_a_run_resumes_from_its_checkpoint(tmp_path):
    from constructions.distill import DistillConfig, distill

    case = load_case("anbn", 2)
    ps = prefix_set(case.completer, data=case.data)
    ck = tmp_path / "run.pt"
    first = distill(case.completer, ps, DistillConfig(max_steps=3, **{**TINY, "check_every": 1}), checkpoint=ck, progress=False)
    assert not first.converged and first.steps == 3 and ck.exists()
    again = distill(case.completer, ps, DistillConfig(max_steps=5, **{**TINY, "check_every": 1}), checkpoint=ck, progress=False)
    assert again.steps == 5  # continued from step 3, not restarted
    with pytest.raises(InvalidModelConfig, match="another distillation run"):
        distill(case.completer, ps, DistillConfig(max_steps=5, seed=1, **TINY), checkpoint=ck, progress=False)


@pytest.mark.parametrize("knobs, fragment", [({"device": "tpu"}, "device 'tpu'"), ({"target_tv": 0}, "target_tv = 0"),
                                             ({"max_steps": 0}, "max_steps = 0")])
def test_bad_distill_knobs_are_refused(knobs, fragment):
    from constructions.distill import DistillConfig

    with pytest.raises(InvalidModelConfig, match=fragment):
        DistillConfig(**knobs)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_cuda_without_a_gpu_is_a_typed_error():
    from constructions.distill import resolve_device

    with pytest.raises(InvalidModelConfig, match="no CUDA device"):
        resolve_device("cuda")
    assert resolve_device("auto").type == "cpu"


def test_the_proof_check_compiled_anbn_is_verified():
    from proofs.compiled import CHECKS

    check, compact = CHECKS
    assert check.name == "compiled-anbn" and compact.name == "compact-anbn"
    cert = check.run()
    assert cert.verified and cert.check == "compiled-anbn" and cert.method == "exhaustive", cert.reason
