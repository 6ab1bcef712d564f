"""The empirical side (issue 7): training, exact resume, metric code against the theory layer, the
positional encoding and its published defect, the causal linear mask, the saturation gap, bad input."""

from __future__ import annotations

import csv
import json
import math
import random
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from empirical.architectures import ModelSize, build_model, check_fits
from empirical.data import Vocab, language_data, oracle_completion, regime_pairs, violating_completion
from empirical.errors import ConfigTooLarge, CorruptCheckpoint, InvalidExperimentConfig, UnknownArchitecture, UnknownRegime
from empirical.experiment import aggregate, run_grid, summary_line
from empirical.linear import LinearModel
from empirical.metrics import TrainedNetworkModel, greedy_completions, measure_losses, rule_metrics_batched, score_completions
from empirical.rows import RunRow
from empirical.saturation import saturation_gap
from empirical.train import CHECKPOINT_NAME, TrainConfig, load_checkpoint, progress_line, train
from empirical.transformer import position_sensitivity
from nonid.cli import main
from theory.alphabet import EOS
from theory.languages import get_language
from theory.losses import entropy
from theory.models import FunctionModel
from theory.probability import NextTokenDistribution
from theory.prompts import paper_prompts, split_prompts
from theory.properties import Completion, greedy_completion, rule_metrics


@pytest.fixture(autouse=True)
def _one_thread():
    """These models are tiny: one torch thread is faster and does not fight the other test worker."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


TINY = ModelSize(d_model=8, n_heads=2, d_head=4, d_mlp=16, n_layers=1, lstm_embed=8, lstm_hidden=16, linear_embed=8)
L3 = get_language("L3")
VOCAB = Vocab(L3.alphabet)


_CFG = TrainConfig(steps=10, batch_size=4, aux_batch_size=4, eval_every=4, checkpoint_every=3, seed=3)


def _tiny_run(tmp: Path, arch: str, regime: str, *, stop_after=None, resume=False):
    data = language_data("L3", n_max=4)
    pairs = regime_pairs(L3, regime, paper_prompts(L3).ood_prompts[:20])
    model = build_model(arch, VOCAB, 16, TINY, seed=3)
    cfg = _CFG

    def evaluate(m):
        return {"val_loss": measure_losses(m, data).per_sequence}

    return train(model, VOCAB, data.train, cfg, aux_pairs=pairs, evaluate=evaluate, run_dir=tmp,
                 fingerprint={"arch": arch, "regime": regime}, resume=resume, stop_after=stop_after, progress=False)


@pytest.mark.parametrize("arch, regime", [("transformer", "ml"), ("lstm", "oracle")])
def test_interrupted_run_resumes_to_the_same_final_state(tmp_path, arch, regime):
    whole = _tiny_run(tmp_path / "whole", arch, regime)
    killed = _tiny_run(tmp_path / "killed", arch, regime, stop_after=7)  # dies after step 7; last checkpoint: step 6
    assert not killed.finished and killed.step == 7
    saved = load_checkpoint(tmp_path / "killed" / CHECKPOINT_NAME, {"arch": arch, "regime": regime, "train": _CFG.to_dict()})
    assert saved["step"] == 6
    resumed = _tiny_run(tmp_path / "killed", arch, regime, resume=True)
    assert resumed.finished and resumed.step == 10
    a, b = whole.model.state_dict(), resumed.model.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k  # bitwise
    assert whole.history == resumed.history and whole.best_step == resumed.best_step
    # and the training really moved the weights
    fresh = build_model(arch, VOCAB, 16, TINY, seed=3).state_dict()
    assert any(not torch.equal(fresh[k], a[k]) for k in a)


def test_corrupted_checkpoint_is_refused_and_left_alone(tmp_path):
    _tiny_run(tmp_path, "lstm", "ml", stop_after=4)
    ckpt = tmp_path / CHECKPOINT_NAME
    data = bytearray(ckpt.read_bytes())
    data[len(data) // 2: len(data) // 2 + 64] = b"\x00" * 64
    ckpt.write_bytes(bytes(data))
    before = ckpt.read_bytes()
    with pytest.raises(CorruptCheckpoint, match="checkpoint.pt: damaged, SHA-256"):
        _tiny_run(tmp_path, "lstm", "ml", resume=True)
    assert ckpt.read_bytes() == before
    ckpt.write_bytes(b"not a checkpoint")
    with pytest.raises(CorruptCheckpoint, match="cannot be read"):
        _tiny_run(tmp_path, "lstm", "ml", resume=True)


def test_checkpoint_of_another_run_is_refused(tmp_path):
    _tiny_run(tmp_path, "lstm", "ml", stop_after=4)
    with pytest.raises(CorruptCheckpoint, match="another run"):
        _tiny_run(tmp_path, "lstm", "oracle", resume=True)


# ---- metrics against the theory layer --------------------------------------------------------------
def _scripted_model(lang, script: dict[str, tuple[str, bool]]) -> FunctionModel:
    """Greedy on prompt u emits script[u]'s text, then EOS if finished, else 'a'/'(' forever."""
    first = lang.alphabet.symbols[0]

    def row(prefix: str):
        for u, (z, fin) in script.items():
            if prefix.startswith(u) and (z.startswith(prefix[len(u):]) or not fin):
                done = prefix[len(u):]
                if len(done) < len(z) and z.startswith(done):
                    return NextTokenDistribution.point(lang.alphabet, z[len(done)])
                return NextTokenDistribution.point(lang.alphabet, EOS if fin else first)
        return NextTokenDistribution.point(lang.alphabet, EOS)

    return FunctionModel(lang.alphabet, row)


@pytest.mark.parametrize("name", ["L3", "L4", "L5"])
def test_scoring_agrees_with_theory_rule_metrics(name):
    lang = get_language(name)
    ps = paper_prompts(lang)
    rng = random.Random(name)
    script = {}
    for u in ps.prompts:
        z = "".join(rng.choice(lang.alphabet.symbols) for _ in range(rng.randint(0, 4)))
        if rng.random() < 0.4 and name != "L4":
            z = oracle_completion(lang, u) if lang.r1.name.startswith("#") and rng.random() < 0.5 else z
        script[u] = (z, rng.random() < 0.85)
    budget = max(len(z) for z, _f in script.values()) + 1
    exact = rule_metrics(_scripted_model(lang, script), lang, ps, budget)
    comps = {u: Completion(z, fin, False) for u, (z, fin) in script.items()}
    assert score_completions(lang, ps, comps) == exact
    assert exact.ood_r1 not in (0, 1) and exact.ood_finished < exact.n_ood  # the test can tell a wrong scorer


@pytest.mark.parametrize("arch", ["transformer", "lstm", "linear", "ssm"])
def test_batched_greedy_agrees_with_theory_greedy(arch):
    model = build_model(arch, VOCAB, 24, TINY, seed=5)
    train(model, VOCAB, language_data("L3", n_max=4).train, TrainConfig(steps=40, batch_size=4, seed=5), progress=False)
    model = model.double().eval()
    prompts = list(paper_prompts(L3).prompts[::16])
    batched = greedy_completions(model, VOCAB, prompts, 10)
    exact = TrainedNetworkModel(model, VOCAB)
    for u, c in zip(prompts, batched):
        ref = greedy_completion(exact, u, 10)
        assert (c.text, c.finished) == (ref.text, ref.finished), u
    assert any(c.finished for c in batched)  # a trained model ends some completions: the comparison has teeth


def test_batched_rule_metrics_equal_theory_rule_metrics_on_a_trained_model():
    data = language_data("L3", n_max=4)
    model = build_model("lstm", VOCAB, 16, TINY, seed=1)
    train(model, VOCAB, data.train, TrainConfig(steps=60, batch_size=4, seed=1), progress=False)
    model = model.double().eval()
    full = paper_prompts(L3)
    ps = split_prompts(L3, full.id_prompts + full.ood_prompts[::5])
    assert rule_metrics_batched(model, VOCAB, ps, 12) == rule_metrics(TrainedNetworkModel(model, VOCAB), L3, ps, 12)


# ---- architectures ---------------------------------------------------------------------------------
def test_positional_encoding_depends_on_position_and_the_published_defect_is_caught():
    tokens = VOCAB.encode(["aabab", "abbba", "babaa"])
    learned = build_model("transformer", VOCAB, 8, TINY, seed=0).double()
    blind = build_model("transformer-nopos", VOCAB, 8, TINY, seed=0).double()
    assert position_sensitivity(learned, tokens) > 1e-3
    assert position_sensitivity(blind, tokens) < 1e-12  # the published code's position-blind Transformer
    # the defect stays after training: the position embedding is frozen at zero
    assert not blind.position_embedding.weight.requires_grad and not blind.position_embedding.weight.any()


@pytest.mark.parametrize("arch", ["linear", "ssm", "lstm", "transformer", "transformer-nopos"])
def test_every_architecture_is_causal(arch):
    model = build_model(arch, VOCAB, 12, TINY, seed=0).double()
    x = VOCAB.encode(["abbabaab"])
    base = model(x)
    for j in range(1, x.shape[1]):
        y = x.clone()
        y[0, j] = VOCAB.pad if x[0, j] != VOCAB.pad else 0
        assert torch.equal(model(y)[0, :j], base[0, :j]), j  # changing a later token never moves earlier outputs


def test_linear_model_mask_is_causal():
    model = LinearModel(VOCAB.n_inputs, VOCAB.n_outputs, d_embed=8, max_positions=12, seed=0).double()
    x = VOCAB.encode(["abbabaab"])
    base = model(x)
    for j in range(1, x.shape[1]):
        y = x.clone()
        y[0, j] = VOCAB.pad if x[0, j] != VOCAB.pad else 0
        out = model(y)
        assert torch.equal(out[0, :j], base[0, :j]), j  # no earlier output moves
        assert not torch.equal(out[0, j], base[0, j])  # and the changed position does see its token
    model(x).sum().backward()
    assert not model.mix.grad.triu(1).any()  # entries above the diagonal never learn


# ---- the saturation gap ----------------------------------------------------------------------------
class _Constant(torch.nn.Module):
    def __init__(self, logits):
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor(logits, dtype=torch.float64))

    def forward(self, tokens):
        return self.w.expand(tokens.shape[0], tokens.shape[1], -1)


def test_saturation_gap_of_a_uniform_model_is_the_closed_form():
    P = language_data("L3", n_max=6).distribution
    gap = saturation_gap(_Constant([0.0, 0.0, 0.0]), P)
    exact = (float(P.mean_length()) + 1) * math.log(3) - math.log(6)
    assert gap.kl_lo - 1e-12 <= exact <= gap.kl_hi + 1e-12 and gap.kl_hi - gap.kl_lo < 1e-12
    assert math.isinf(saturation_gap(_Constant([0.0, -1e4, 0.0]), P).kl_hi)  # q(b) underflows to 0


def test_saturation_gap_matches_the_float_test_loss_of_a_trained_model():
    data = language_data("L3", n_max=5)
    model = build_model("transformer", VOCAB, 14, TINY, seed=2)
    train(model, VOCAB, data.train, TrainConfig(steps=80, batch_size=5, seed=2), progress=False)
    gap = saturation_gap(model, data.distribution)
    loss = measure_losses(model.double(), data).per_sequence
    h = float(entropy(data.distribution))
    assert gap.kl_lo - 1e-9 <= loss - h <= gap.kl_hi + 1e-9
    assert 0 < gap.kl_lo <= gap.kl_hi < 5


def test_aggregations_differ_as_documented():
    hist = [{"step": 0, "val_loss": 9, "test_loss_padded": 9, "test_loss_token": 9, "id_r1": 0, "id_r2": 0, "ood_r1": 0, "ood_r2c": 0},
            {"step": 5, "val_loss": 2, "test_loss_padded": 2, "test_loss_token": 2, "id_r1": 1, "id_r2": 1, "ood_r1": 0.2, "ood_r2c": 1},
            {"step": 9, "val_loss": 3, "test_loss_padded": 3, "test_loss_token": 3, "id_r1": 1, "id_r2": 1, "ood_r1": 0.7, "ood_r2c": 1}]
    assert aggregate(hist, "best-validation")["ood_r1"] == 0.2
    assert aggregate(hist, "max-over-checkpoints")["ood_r1"] == 0.7


def test_regime_targets():
    assert oracle_completion(L3, "bbba") == "aa" and L3.r1.accepts("bbba" + "aa")
    assert violating_completion(L3, "abab") == "a" and not L3.r1.accepts("abab" + "a")
    for u in paper_prompts(L3).ood_prompts:
        assert L3.r1.accepts(u + oracle_completion(L3, u)) and not L3.r1.accepts(u + violating_completion(L3, u))


# ---- bad input -------------------------------------------------------------------------------------
def _cli(capsys, *args):
    code = main(["experiment", "rule-extrapolation", *args])
    return code, capsys.readouterr()


@pytest.mark.parametrize("args, fragment", [
    (["--language", "L9"], "unknown language 'L9'"),
    (["--arch", "gru"], "unknown architecture 'gru'"),
    (["--language", "L1", "--regime", "oracle"], "equal counts"),
    (["--regime", "ml", "--device", "tpu"], "device 'tpu'"),
    (["--size", "huge"], "--size 'huge' is not one of 'cpu', 'paper'"),
])
def test_bad_input_is_one_line_exit_2(tmp_path, capsys, args, fragment):
    code, out = _cli(capsys, "--out", str(tmp_path / "o"), "--seeds", "1", *args)
    assert code == 2
    assert fragment in out.err and out.err.count("\n") == 1 and "Traceback" not in out.err
    assert not (tmp_path / "o").exists()  # refused before anything was written


def test_config_that_cannot_fit_is_refused_before_training(tmp_path):
    with pytest.raises(ConfigTooLarge, match=r"needs ≈ .* GiB.*refused before training"):
        run_grid(["L3"], ["transformer"], ["ml"], [0], tmp_path / "o", torch.device("cpu"), size="paper",
                 memory_budget=64 * 2**20, progress=False, echo=None)
    assert not (tmp_path / "o").exists()
    with pytest.raises(ConfigTooLarge):
        check_fits("transformer", VOCAB, 258, TINY, 10**7, 258, torch.device("cpu"))


def test_unknown_names_are_typed_errors():
    with pytest.raises(UnknownArchitecture):
        build_model("mamba2", VOCAB, 8, TINY, 0)
    with pytest.raises(UnknownRegime):
        regime_pairs(L3, "rlhf", ())


def test_cli_tiny_run_and_corrupt_resume(tmp_path, capsys):
    out = tmp_path / "o"
    code, res = _cli(capsys, "--arch", "linear", "--regime", "ml,oracle", "--seeds", "1", "--steps", "20",
                     "--device", "cpu", "--out", str(out), "--quiet")
    assert code == 0, res.err
    assert "L3-linear-oracle-s0" in res.out and "| L3 | linear | ml | 1 |" in res.out
    assert (out / "results.csv").read_text().count("\n") == 3 and (out / "report.md").exists()
    assert (out / "results.csv").read_text().splitlines()[0] == ",".join(RunRow.CSV_COLUMNS)
    assert "| test loss (nats/padded token) |" in res.out and "L3-linear-ml-s0              test loss (nats/padded token) " in res.out
    assert (out / "ood_r1_vs_gap.png").stat().st_size > 1000
    ckpt = out / "L3-linear-ml-s0" / CHECKPOINT_NAME
    ckpt.write_bytes(b"garbage")
    code, res = _cli(capsys, "--arch", "linear", "--regime", "ml", "--seeds", "1", "--steps", "20", "--device", "cpu",
                     "--out", str(out), "--quiet", "--resume")
    assert code == 2 and "cannot be read" in res.err and res.err.count("\n") == 1
    assert ckpt.read_bytes() == b"garbage"


def test_parallel_jobs_give_the_same_rows(tmp_path):
    kw = dict(steps=10, progress=False, echo=None)
    one = run_grid(["L3"], ["linear"], ["ml", "oracle"], [0], tmp_path / "a", torch.device("cpu"), jobs=1, **kw)
    two = run_grid(["L3"], ["linear"], ["ml", "oracle"], [0], tmp_path / "b", torch.device("cpu"), jobs=2, **kw)
    strip = lambda r: replace(r, wall_s=0.0)  # noqa: E731
    assert [strip(r) for r in one] == [strip(r) for r in two] and all(isinstance(r, RunRow) for r in one)


_GAP = {"gap_lo": 13.5, "gap_hi": 13.6, "gap_padded_lo": 0.41, "gap_padded_hi": 0.42, "gap_token_lo": 0.75,
        "gap_token_hi": 0.76, "floor_padded": 0.084, "floor_token": 0.154, "entropy": 2.77, "gap_prefixes": 153,
        "gap_method": "rigorous", "gap_rigorous": True}
_BASE = {"name": "L3-lstm-oracle-s0", "finished": True, "language": "L3", "arch": "lstm", "regime": "oracle",
         "seed": 0, "size": "cpu", "steps": None, "aux_lengths": [6, 7], "steps_done": 20, "wall_s": 0.1,
         "best_step": 20, "params": 1287, "test_exact": True, "data": "L3", "step": 20, "test_loss_padded": 0.49,
         "test_loss_token": 0.9, "id_r1": 0.0, "id_r2": 0.2, "ood_r1": None, "ood_r2c": 1.0,
         "min_test_loss_padded": 0.49, "min_test_loss_token": 0.9, "max_id_r1": 0.0, "max_id_r2": 0.2,
         "max_ood_r1": None, "max_ood_r2c": 1.0, "regime_prompts": "held-out", "regime_prompt_count": 184,
         "regime_prompt_lengths": [6, 7], "convention": "paper", "prompts": "L3 prompts", "id_finished": 1.0,
         "ood_finished": 0.5, "id_r1_finished": 0.0, "id_r2_finished": 0.2, "ood_r1_finished": None,
         "ood_r2c_finished": 1.0, "max_id_r1_finished": 0.0, "max_id_r2_finished": 0.2, "max_ood_r1_finished": None,
         "max_ood_r2c_finished": 1.0}
_NO_GAP = {"gap_lo": None, "gap_hi": None, "gap_note": "support too large to enumerate"}


def test_run_row_round_trips_and_refuses_bad_keys():
    base, gap = _BASE, _GAP
    for row in ({**base, **gap}, {**base, **_NO_GAP}):
        rec = RunRow.from_dict(row)
        assert rec.to_dict() == row and list(rec.to_dict()) == list(row) and rec.aux_lengths == (6, 7)
        assert list(row) == [c for c in RunRow.columns() if c in row]  # columns() is the producer's order
        assert all(rec[k] == v for k, v in row.items())  # a stored column by name
    assert RunRow.from_dict({**base, **gap}).gap.gap_prefixes == 153
    for bad, fragment in (({**base}, "missing gap_lo"), ({**base, **gap, "extra": 1}, "unknown extra"),
                          ({**base, **gap, "seed": "0"}, "seed = '0' is not int"),
                          ({**base, **gap, "finished": False}, "finished must be true"), ([], "must be an object")):
        with pytest.raises(InvalidExperimentConfig, match=fragment):
            RunRow.from_dict(bad)


def test_a_row_written_before_the_conventions_reads_as_the_paper_reading():
    from empirical.rows import CONVENTION_COLUMNS

    legacy = {k: v for k, v in {**_BASE, **_GAP}.items() if k not in CONVENTION_COLUMNS}
    rec = RunRow.from_dict(legacy)
    assert rec.convention == "paper" and rec.ood_r2c_finished is None and rec.metric("ood_r2c", "best-validation") == 1.0
    assert rec.metric("ood_r2c", "best-validation", "finished-only") is None
    with pytest.raises(InvalidExperimentConfig, match="convention = 'code'"):
        RunRow.from_dict({**_BASE, **_GAP, "convention": "code"})
    with pytest.raises(KeyError):
        rec.metric("ood_r1", "best-validation", "some")


def test_summary_line_names_units_and_keeps_brackets_for_certified_gaps():
    rec = RunRow.from_dict({**_BASE, **_GAP})
    assert summary_line(rec) == ("L3-lstm-oracle-s0            test loss (nats/padded token) 0.49000  gap [4.099999e-01, "
                                 "4.200000e-01] over floor 0.08400 (≤ 7.600001e-01 nats/token)  ID R1 0.000  OOD R1   -    "
                                 "OOD R2c 1.000  step 20  0.1s")
    measured = summary_line(RunRow.from_dict({**_BASE, **_GAP, "gap_rigorous": False}))
    assert "gap ≈ 4.200000e-01 (float, not certified) over floor" in measured and "[" not in measured
    assert "gap n/a (support too large to enumerate)" in summary_line(RunRow.from_dict({**_BASE, **_NO_GAP}))


# ---- the consumers: columns from RunRow, records only, units named ---------------------------------
_LEGACY_CSV_HEADER = ("name,language,arch,regime,seed,size,steps_done,wall_s,params,best_step,test_loss_padded,test_loss_token,"
                      "id_r1,id_r2,ood_r1,ood_r2c,min_test_loss_padded,min_test_loss_token,max_id_r1,max_id_r2,max_ood_r1,"
                      "max_ood_r2c,entropy,floor_padded,floor_token,gap_lo,gap_hi,gap_padded_lo,gap_padded_hi,gap_token_lo,"
                      "gap_token_hi,gap_prefixes,test_exact,gap_note,data,gap_method")
_PROTOCOL_COLUMNS = ",regime_prompts,regime_prompt_count"  # appended (issue 18): which prompts the regime term trained on
_CONVENTION_COLUMNS = (",convention,id_finished,ood_finished,id_r1_finished,id_r2_finished,ood_r1_finished,ood_r2c_finished,"
                       "max_id_r1_finished,max_id_r2_finished,max_ood_r1_finished,max_ood_r2c_finished,prompts")  # issue 20


def _seeds(regime: str, *gaps: tuple[float, float], rigorous: bool = True, ood: float | None = None,
           arch: str = "lstm", **extra) -> list[RunRow]:
    """One row per seed of L3 ``arch`` ``regime``, the padded gap of seed i in gaps[i] (and the per-token gap
    the same bounds × 33/18, as for L3 with n ≤ 16), OOD R1 ``ood`` (a float, or one per seed)."""
    oods = ood if isinstance(ood, (list, tuple)) else [ood] * len(gaps)
    proto = {"regime_prompts": None, "regime_prompt_count": None, "regime_prompt_lengths": None} if regime == "ml" else {}
    return [RunRow.from_dict({**_BASE, **_GAP, **proto, "name": f"L3-{arch}-{regime}-s{i}", "arch": arch, "regime": regime,
                              "seed": i, "gap_padded_lo": lo, "gap_padded_hi": hi, "gap_token_lo": lo * 33 / 18,
                              "gap_token_hi": hi * 33 / 18, "gap_rigorous": rigorous, "ood_r1": o, "max_ood_r1": o, **extra})
            for i, ((lo, hi), o) in enumerate(zip(gaps, oods))]


def test_csv_columns_are_the_run_rows_and_unstored_ones_are_empty(tmp_path):
    from empirical.report import write_csv

    assert set(RunRow.CSV_COLUMNS) <= set(RunRow.columns()) and len(set(RunRow.CSV_COLUMNS)) == len(RunRow.CSV_COLUMNS)
    assert ",".join(RunRow.CSV_COLUMNS) == _LEGACY_CSV_HEADER + _PROTOCOL_COLUMNS + _CONVENTION_COLUMNS  # none moved
    rows = [RunRow.from_dict({**_BASE, **_GAP}), RunRow.from_dict({**_BASE, **_NO_GAP, "name": "L3-lstm-oracle-s1", "seed": 1})]
    write_csv(rows, tmp_path / "results.csv")
    text = (tmp_path / "results.csv").read_text()
    assert text.splitlines()[0] == ",".join(RunRow.CSV_COLUMNS)
    read = list(csv.DictReader(text.splitlines()))
    assert [list(r) for r in read] == [list(RunRow.CSV_COLUMNS)] * 2
    assert read[0]["gap_padded_hi"] == "0.42" and read[0]["gap_note"] == "" and read[0]["ood_r1"] == ""
    assert read[1]["gap_padded_hi"] == "" and read[1]["gap_note"] == "support too large to enumerate"


def test_certificate_runs_carry_the_run_rows_certificate_columns():
    from empirical.certificate import experiment_certificate

    rows = _seeds("ml", (1e-3, 1e-3)) + _seeds("adversarial", (1e-3, 1e-3)) + _seeds("oracle", (1e-3, 1e-3))
    runs = experiment_certificate(rows).quantities["runs"]
    assert [r["regime"] for r in runs] == ["ml", "adversarial", "oracle"]
    assert set(RunRow.CERTIFICATE_COLUMNS) <= set(RunRow.columns())
    for run in runs:  # a row with a gap stores every certificate column but gap_note
        assert set(run) == (set(RunRow.CERTIFICATE_COLUMNS) - {"gap_note"}) | {"gap_certified", "gap_within_epsilon"}
        assert run["gap_certified"] and run["gap_within_epsilon"]


def test_consumers_take_records_not_dicts(tmp_path):
    from empirical.certificate import experiment_certificate
    from empirical.report import markdown, write_csv

    row = {**_BASE, **_GAP}
    for consume in (lambda rows: write_csv(rows, tmp_path / "r.csv"), markdown, experiment_certificate):
        with pytest.raises(TypeError, match="not dict .*RunRow.from_dict"):
            consume([row])
    assert not (tmp_path / "r.csv").exists()


@pytest.mark.parametrize("edit, fragment", [
    (lambda r: {**r, "seed": "0"}, "result.json: seed = '0' is not int"),
    (lambda r: {k: v for k, v in r.items() if k != "best_step"}, "result.json: not a finished run row (missing best_step)"),
    (lambda r: {**r, "gap_padded_hi": None}, "result.json: gap_padded_hi = None is not float"),
    (lambda r: {**r, "loss": 1.0}, "result.json: not a finished run row (unknown loss)"),
    (lambda r: {k: v for k, v in r.items() if k != "regime_prompt_count"}, "(missing regime_prompt_count)"),
    (lambda r: {**r, "regime_prompts": "both"}, "result.json: regime_prompts = 'both' is not one of 'held-out', 'evaluated'"),
])
def test_a_malformed_row_read_back_from_a_run_folder_is_refused(tmp_path, edit, fragment):
    from empirical.certificate import load_rows

    run = tmp_path / "L3-lstm-oracle-s0"
    run.mkdir()
    (run / "result.json").write_text(json.dumps({"row": {**_BASE, **_GAP}, "history": []}))
    assert load_rows(tmp_path) == [RunRow.from_dict({**_BASE, **_GAP})]  # the boundary: stored rows become records
    (run / "result.json").write_text(json.dumps({"row": edit({**_BASE, **_GAP}), "history": []}))
    with pytest.raises(InvalidExperimentConfig) as err:
        load_rows(tmp_path)
    assert type(err.value) is InvalidExperimentConfig and fragment in str(err.value)


def test_report_names_the_unit_of_every_loss_and_keeps_brackets_for_certified_intervals():
    from empirical.report import markdown

    rows = (_seeds("ml", (1e-3, 2e-3), (3e-3, 4e-3)) + _seeds("adversarial", (5e-3, 6e-3))
            + _seeds("oracle", (1e-2, 1e-2), rigorous=False))
    md = markdown(rows)
    lines = md.splitlines()
    header = next(line for line in lines if line.startswith("| language |")).split(" | ")
    losses = [h for h in header if "loss" in h or h.startswith(("floor", "gap"))]
    assert losses == ["test loss (nats/padded token)", "floor (nats/padded token)", "gap (nats/padded token)",
                      "gap (nats/token)", "published test loss (nats/padded token)"]
    caption = lines[1]
    assert "nats/padded token" in caption and "mean ± sample std over seeds" in caption
    assert "[lo, hi] is a certified interval" in caption and "(a–b over n seeds) the spread over seeds" in caption
    cells = {r.split(" | ")[2]: r.split(" | ")[6] for r in lines if r.startswith("| L3 |")}
    # certified mean, then the spread; printed bounds round outward (the float 6e-3 is a little above
    # 6/1000, so its upper bound prints as 6.01e-03)
    assert cells == {"ml": "[2.00e-03, 3.01e-03] (1.00e-03–4.01e-03 over 2 seeds)",
                     "adversarial": "[5.00e-03, 6.01e-03]",  # one seed: its certified interval
                     "oracle": "≈ 1.00e-02"}  # a float measurement is never written as an interval
    bullet = next(line for line in lines if line.startswith("- **L3 lstm**"))
    assert "mean test loss (nats/padded token, floor included: reported, not compared) ml 0.49000" in bullet
    assert "gap (float, not certified; nats/token) ml ≈ 7.33e-03 / adversarial ≈ 1.10e-02 / oracle ≈ 1.83e-02" in bullet
    assert "gap spread n/a (a gap is not certified)" in bullet and "%" not in bullet  # no spread of total losses


def test_progress_line_is_in_one_unit(tmp_path, capsys):
    """Every loss on the progress line is in nats per token; an evaluation without a per-token test loss
    shows its per-sequence val loss, labelled so."""
    assert progress_line("run", 5, 10, 0.0213, None, {"step": 5, "val_loss": 3.41}, 1.25) == \
        "  [run] step 5/10  train 0.0213 nats/token  val 3.4100 nats/seq  (1.2s)"
    assert progress_line("run", 10, 10, 0.5, 0.25, {"val_loss": 3.0, "test_loss_padded": 0.085, "test_loss_token": 0.15},
                         2.0) == "  [run] step 10/10  train 0.5000 nats/token  regime 0.2500 nats/token  test 0.1500 nats/token  (2.0s)"
    data = language_data("L3", n_max=4)
    model = build_model("lstm", VOCAB, 16, TINY, seed=3)
    pairs = regime_pairs(L3, "oracle", paper_prompts(L3).ood_prompts[:20])
    train(model, VOCAB, data.train, _CFG, aux_pairs=pairs, label="tiny",
          evaluate=lambda m: {"val_loss": measure_losses(m, data).per_sequence, "test_loss_token": measure_losses(m, data).per_token})
    last = [line for line in capsys.readouterr().err.splitlines() if "[tiny]" in line][-1]
    assert last.startswith("  [tiny] step 10/10  train ") and " nats/token  regime " in last
    assert " nats/token  test " in last and last.endswith("s)") and "nats/seq" not in last and "padded" not in last


def test_the_light_name_lists_match_the_presets_and_architectures():
    """empirical.names (importable without torch, for refusing options early) and the modules that
    build on it name the same sizes, step counts and architectures."""
    from empirical.architectures import SIZES
    from empirical.experiment import PRESETS
    from empirical.names import ARCHITECTURES, CPU_SECONDS_PER_STEP, DEFAULT_STEPS, SIZE_NAMES, estimate_seconds

    assert tuple(PRESETS) == SIZE_NAMES and set(SIZES) == set(SIZE_NAMES)
    assert {k: p.train.steps for k, p in PRESETS.items()} == DEFAULT_STEPS
    assert set(CPU_SECONDS_PER_STEP) == set(ARCHITECTURES)
    one = estimate_seconds(["lstm"], ["ml"], 1, None, "cpu")
    assert one is not None and estimate_seconds(["lstm"], ["ml", "oracle"], 2, None, "cpu") > 2 * one
    assert estimate_seconds(["lstm"], ["ml"], 1, None, "paper") is None


# ---- saturation certified, not implied (issue 18) ---------------------------------------------------
def _grid(gaps: dict[str, float], *, seeds: int = 3, ood: dict[str, object] | None = None, width: float = 1e-9,
          **extra) -> list[RunRow]:
    """L3 lstm rows of the three regimes, ``seeds`` seeds each, per-token gap ``gaps[regime]`` (a certified
    interval of ``width``), OOD R1 0.3 / 0.0 / 1.0 unless ``ood`` says otherwise."""
    ood = {"ml": 0.3, "adversarial": 0.0, "oracle": 1.0, **(ood or {})}
    scale = 18 / 33  # _seeds takes padded gaps
    return [r for g in ("ml", "adversarial", "oracle")
            for r in _seeds(g, *[(gaps[g] * scale, (gaps[g] + width) * scale)] * seeds, ood=ood[g], **extra)]


def test_saturation_is_certified_per_run_at_epsilon_with_three_seeds():
    from empirical.certificate import experiment_certificate

    good = _grid({"ml": 1e-3, "adversarial": 2e-3, "oracle": 1e-3})
    c = experiment_certificate(good, epsilon=5e-3, delta=0.5)
    assert c.verified, c.reason
    assert "eps = 0.005 nats per token" in c.claim and "Delta = 0.5" in c.claim and "at least 3 seeds" in c.claim
    assert "the 251 OOD prompts of length 8" in c.claim and "held out from the evaluated prompt set" in c.claim
    comp = c.quantities["comparisons"][0]
    assert comp["seeds"] == {"ml": 3, "adversarial": 3, "oracle": 3} and comp["gaps_within_epsilon"]
    assert comp["ood_r1_separation"] == {"value": 1.0, "above": "oracle", "below": "adversarial"}
    sp = comp["gap_spread"]  # of the gaps, not of the total losses: the adversarial gap is 2x the others
    assert 1.99 < sp["ratio_hi"] < 2.01 and 1e-3 <= sp["difference_hi"] < 1.01e-3
    assert "max/min <= 2.01x" in c.detail and "loss spread" not in c.detail
    assert "OOD R1 [0.30, 0.30] / [0.00, 0.00] / [1.00, 1.00]" in c.detail
    # the same gaps at an eps between them: the adversarial runs are certainly not saturated at eps
    c = experiment_certificate(good, epsilon=1.5e-3)
    assert c.status.value == "falsified"
    assert ("certified gap above eps = 0.0015 nats/token (not saturated at eps) in 3 of 9 runs: "
            "L3-lstm-adversarial-s0 >= 2.00e-03, L3-lstm-adversarial-s1") in c.reason
    # an interval that straddles eps cannot decide: unknown
    c = experiment_certificate(_grid({"ml": 1e-3, "adversarial": 1.4e-3, "oracle": 1e-3}, width=2e-4), epsilon=1.5e-3)
    assert c.status.value == "unknown" and "straddles eps = 0.0015" in c.reason
    # fewer than 3 seeds: not verified, whatever the numbers
    c = experiment_certificate(_grid({"ml": 1e-3, "adversarial": 2e-3, "oracle": 1e-3}, seeds=2), epsilon=5e-3)
    assert c.status.value == "unknown" and "2 seeds (ml)" in c.reason and "needs >= 3 seeds per regime" in c.reason
    assert experiment_certificate(_grid({"ml": 1e-3, "adversarial": 1e-3, "oracle": 1e-3}, seeds=1)).status.value == "unknown"
    # a float-measured gap certifies nothing
    c = experiment_certificate(_grid({"ml": 1e-3, "adversarial": 1e-3, "oracle": 1e-3}, rigorous=False))
    assert c.status.value == "unknown" and "float measurement, not certified" in c.reason


def test_ood_r1_must_differ_on_every_seed_not_on_average():
    from empirical.certificate import experiment_certificate

    gaps = {"ml": 1e-3, "adversarial": 1e-3, "oracle": 1e-3}
    # means 0.3 / 0.2 / 0.8 differ by 0.6, but one oracle seed (0.3) sits inside the others' range
    mixed = _grid(gaps, ood={"ml": [0.3, 0.3, 0.3], "adversarial": [0.0, 0.3, 0.3], "oracle": [1.0, 1.0, 0.4]})
    c = experiment_certificate(mixed, delta=0.5)
    assert c.status.value == "falsified" and "OOD R1 separation 0.100 (oracle least minus ml greatest over seeds) < Delta = 0.5" in c.reason
    assert c.quantities["comparisons"][0]["ood_r1_interval"]["oracle"] == [0.4, 1.0]
    assert experiment_certificate(mixed, delta=0.1).verified


@pytest.mark.parametrize("kw, fragment", [
    ({"epsilon": 0}, "epsilon = 0 must be a finite number > 0"), ({"epsilon": -1e-3}, "epsilon = -0.001 must be"),
    ({"epsilon": math.nan}, "epsilon = nan must be"), ({"epsilon": math.inf}, "epsilon = inf must be"),
    ({"delta": 0.0}, "delta = 0.0 must be a finite number in (0, 1]"), ({"delta": math.nan}, "delta = nan must be"),
    ({"delta": -math.inf}, "delta = -inf must be"), ({"delta": 1.5}, "delta = 1.5 must be"),
])
def test_bad_epsilon_or_delta_is_a_typed_error_naming_the_value(kw, fragment):
    from empirical.certificate import experiment_certificate

    with pytest.raises(InvalidExperimentConfig) as err:
        experiment_certificate(_grid({"ml": 1e-3, "adversarial": 1e-3, "oracle": 1e-3}), **kw)
    assert fragment in str(err.value)


@pytest.mark.parametrize("args, fragment", [
    (["--epsilon", "0"], "--epsilon 0.0 must be a finite number > 0"), (["--epsilon", "nan"], "--epsilon nan must be"),
    (["--epsilon", "inf"], "--epsilon inf must be"), (["--epsilon", "-1"], "--epsilon -1.0 must be"),
    (["--delta", "0"], "--delta 0.0 must be a finite number in (0, 1]"), (["--delta", "inf"], "--delta inf must be"),
    (["--delta", "nan"], "--delta nan must be"), (["--seeds", "0"], "--seeds 0 must be"), (["--seeds", "-2"], "--seeds -2 must be"),
    (["--regime-lengths", "8"], "no held-out regime prompt: every OOD word of length 8 is an evaluated prompt of L3"),
    (["--regime", "ml", "--train-on-evaluated-prompts"], "--train-on-evaluated-prompts applies to the adversarial and oracle"),
])
def test_bad_saturation_options_exit_2_before_training(tmp_path, capsys, args, fragment):
    code, out = _cli(capsys, "--out", str(tmp_path / "o"), *args)
    assert code == 2, out.err
    assert fragment in out.err and out.err.count("\n") == 1 and "Traceback" not in out.err
    assert not (tmp_path / "o").exists()


def test_bad_epsilon_is_refused_before_torch_is_imported(tmp_path):
    import subprocess
    import sys

    code = ("import sys; from nonid.cli import main; rc = main(['experiment', 'rule-extrapolation', '--epsilon', 'nan', "
            f"'--out', {str(tmp_path / 'o')!r}]); assert 'torch' not in sys.modules, 'torch imported'; sys.exit(rc)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stderr.strip() == "nonid: --epsilon nan must be a finite number > 0", r.stderr


@pytest.mark.parametrize("name", ["L3", "L5"])
def test_held_out_regime_prompts_are_a_disjoint_split_of_the_evaluated_ones(name):
    from empirical.experiment import RunSpec, plan
    from empirical.protocol import regime_prompts

    lang = get_language(name)
    evaluated = set(paper_prompts(lang).prompts)
    for regime in ("adversarial", "oracle"):
        _data, prompts, pairs, _cfg, _positions = plan(RunSpec(name, "lstm", regime, 0))
        trained = {u for u, _z in pairs}
        assert trained and not trained & evaluated  # no training prompt is an evaluated prompt
        assert set(prompts.prompts) == evaluated  # and the evaluated set is the paper's, whole
        assert all(not lang.is_id(u) for u in trained)
        _d, _p, on_eval, _c, _n = plan(RunSpec(name, "lstm", regime, 0, train_on_evaluated_prompts=True))
        assert {u for u, _z in on_eval} == set(paper_prompts(lang).ood_prompts)  # the switch: the evaluated OOD prompts
    held = regime_prompts(lang)
    assert held.protocol == "held-out" and held.overlap == 0 and held.lengths == ((9, 10) if name == "L3" else (6, 7))
    on = regime_prompts(lang, train_on_evaluated_prompts=True)
    assert on.protocol == "evaluated" and on.overlap == len(paper_prompts(lang).ood_prompts)
    # what a row records is what the prompts are: lengths that hold the evaluated ones out are held-out
    assert regime_prompts(lang, held.lengths, train_on_evaluated_prompts=True).protocol == "held-out"
    with pytest.raises(InvalidExperimentConfig, match="no held-out regime prompt"):
        regime_prompts(lang, (len(paper_prompts(lang).prompts[0]),))


def test_a_row_of_an_earlier_nonid_gets_the_protocol_its_code_trained_on():
    """Rows written before the protocol columns: the regime term then trained on every OOD word of
    aux_lengths, default the evaluation length (8 for L3), evaluated prompts included."""
    old = {k: v for k, v in {**_BASE, **_GAP}.items() if not k.startswith("regime_prompt")}
    assert RunRow.from_dict({**old, "aux_lengths": None}).regime_prompts == "evaluated"
    r = RunRow.from_dict({**old, "aux_lengths": None})
    assert (r.regime_prompt_count, r.regime_prompt_lengths) == (251, (8,))
    r = RunRow.from_dict({**old, "aux_lengths": [6, 7]})  # lengths that held the evaluated prompts out
    assert (r.regime_prompts, r.regime_prompt_count, r.regime_prompt_lengths) == ("held-out", 184, (6, 7))
    r = RunRow.from_dict({**old, "regime": "ml", "aux_lengths": None})
    assert (r.regime_prompts, r.regime_prompt_count, r.regime_prompt_lengths) == (None, None, None)


def test_rows_and_report_say_which_prompts_the_regime_terms_trained_on(tmp_path):
    from empirical.certificate import experiment_certificate
    from empirical.report import markdown

    kw = dict(steps=3, progress=False, echo=None)
    held = run_grid(["L3"], ["linear"], ["ml", "oracle"], [0], tmp_path / "h", torch.device("cpu"), **kw)
    on = run_grid(["L3"], ["linear"], ["oracle"], [0], tmp_path / "e", torch.device("cpu"), train_on_evaluated_prompts=True, **kw)
    assert [(r.regime, r.regime_prompts, r.regime_prompt_count, r.regime_prompt_lengths) for r in held + on] == [
        ("ml", None, None, None), ("oracle", "held-out", 1525, (9, 10)), ("oracle", "evaluated", 251, (8,))]
    assert RunRow.from_dict(json.loads((tmp_path / "e" / "L3-linear-oracle-s0" / "result.json").read_text())["row"]) == on[0]
    rows = _grid({"ml": 1e-3, "adversarial": 1e-3, "oracle": 1e-3}, regime_prompts="evaluated", regime_prompt_count=251,
                 regime_prompt_lengths=[8])
    c = experiment_certificate(rows)
    assert c.verified and "that include the evaluated prompts (--train-on-evaluated-prompts)" in c.claim
    assert c.quantities["regime_prompts"]["protocol"] == "evaluated"
    md = markdown(rows)
    assert "regime terms trained on OOD prompts of length 8 (251 prompts) that include the evaluated prompts" in md
    assert "**Certificate `experiment-rule-extrapolation`: verified**" in md


def test_regime_comparison_reports_the_spread_of_gaps_not_of_losses():
    from empirical.report import regime_comparison

    (bullet,) = regime_comparison(_grid({"ml": 1e-3, "adversarial": 2.1e-3, "oracle": 1e-3}))
    assert "(3 seeds per regime)" in bullet
    # bounds rounded outward (the rows' gaps are 1e-3 and 2.1e-3 up to float rounding, each a 1e-9 wide interval)
    assert "certified gap (nats/token) ml [1.00e-03, 1.01e-03] / adversarial [2.09e-03, 2.11e-03]" in bullet
    assert "gap spread ≤ 1.11e-03 nats/token (max − min), max/min ≤ 2.11×" in bullet
    assert "OOD R1 (least–greatest over seeds) ml 0.300 / adversarial 0.000 / oracle 1.000" in bullet
    assert "within 10 %" not in bullet and "spread 0.0 %" not in bullet


def test_cli_train_on_evaluated_prompts_is_reported_and_the_certificate_printed(tmp_path, capsys):
    out = tmp_path / "o"
    code, res = _cli(capsys, "--arch", "linear", "--regime", "oracle", "--seeds", "1", "--steps", "2", "--device", "cpu",
                     "--train-on-evaluated-prompts", "--epsilon", "100", "--out", str(out), "--quiet")
    assert code == 0, res.err  # the runs finished; the verdict is printed, not the exit status
    row = next(csv.DictReader((out / "results.csv").read_text().splitlines()))
    assert (row["regime_prompts"], row["regime_prompt_count"]) == ("evaluated", "251")
    assert "OOD prompts of length 8 (251 prompts) that include the evaluated prompts" in (out / "report.md").read_text()
    last = [line for line in res.out.splitlines() if line.startswith(("certificate ", "reason: "))]
    assert last[0].startswith("certificate experiment-rule-extrapolation: unknown (eps = 100 nats/token, Delta = 0.5)")
    assert last[1].startswith("reason: ") and "no (language, architecture) was trained in all three regimes" in last[1]


# ---- the architecture table (benchmarks/bench_architectures.py) ------------------------------------
def test_architecture_table_compares_with_the_published_spread():
    from benchmarks.bench_architectures import explain

    assert explain("L3", "lstm", [0.40, 0.30], (0.376, 0.209)) == ("within", "")
    verdict, why = explain("L3", "transformer", [0.10], (0.657, 0.162), steps=700)
    assert verdict == "differs by -0.557 (published std 0.162)" and "positional encoding" in why and "700 steps" in why
    assert explain("L2", "linear", [0.0], (0.534, 0.058))[1].count("drawn from 7 + 6 words") == 1
    assert explain("L1", "ssm", [0.5], None)[0] == "not published"
    assert explain("L1", "ssm", [], (0.6, 0.1))[0] == "n/a"
    assert explain("L3", "linear", [0.275], (0.275, 0.0))[0] == "within"


def test_architecture_table_runs_one_command_and_reads_it_back(tmp_path, capsys):
    from benchmarks.bench_architectures import main

    out = tmp_path / "arch"
    assert main(["--out", str(out), "--seeds", "1", "--steps", "3", "--languages", "L3", "--archs", "linear"]) == 0
    text = capsys.readouterr().out
    assert "--convention published" in text and "| L3 | linear | 1 |" in text and "0.275 ± 0.000 (12)" in text
    assert (out / "experiment.json").is_file() and (out / "L3-linear-ml-s0-published" / "result.json").is_file()
    assert main(["--out", str(out), "--seeds", "1", "--steps", "3", "--languages", "L3", "--archs", "linear"]) == 0
    assert "--resume" in capsys.readouterr().out  # a second run continues the first


def test_the_grid_as_ensembles_gives_the_rows_of_runs_alone(tmp_path):
    """``run_grid(ensemble=True)``: the transformer runs of a cell train as one batched ensemble, the LSTM's one
    after another; every row matches the run trained alone (to the ensemble's stated tolerance; the LSTM
    exactly), and the rows come back in grid order."""
    from empirical.ensemble import VAL_LOSS_TOLERANCE

    kw = dict(steps=12, progress=False, echo=None)
    grid = (["L3"], ["transformer", "lstm"], ["ml", "oracle"], [0])
    together = run_grid(*grid, tmp_path / "a", torch.device("cpu"), ensemble=True, **kw)
    alone = run_grid(*grid, tmp_path / "b", torch.device("cpu"), **kw)
    assert [r.name for r in together] == [r.name for r in alone]
    for x, y in zip(together, alone):
        assert abs(x.test_loss_padded - y.test_loss_padded) <= VAL_LOSS_TOLERANCE, x.name
        assert x.ood_r1 == y.ood_r1 and x.gap is not None and y.gap is not None
        if x.arch == "lstm":
            assert x.gap == y.gap
    resumed = run_grid(*grid, tmp_path / "a", torch.device("cpu"), ensemble=True, resume=True, **kw)
    assert [replace(r, wall_s=0.0) for r in resumed] == [replace(r, wall_s=0.0) for r in together]
