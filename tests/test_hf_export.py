"""Hugging Face export (constructions.hf_export): round trips through transformers for the three norms,
the tokenizer, the bias fold and the closed SOS/PAD rows, and the `nonid export` / `nonid check` paths."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("transformers")

import torch  # noqa: E402

from constructions.hf_export import CLOSED_LOGIT, export_problem, layout, load_hf, to_hf, tokenizer_encoder  # noqa: E402
from constructions.transformer import DecoderTransformer, TransformerConfig  # noqa: E402
from theory.errors import InvalidArtifact, InvalidModelConfig  # noqa: E402

WORDS = ["", "a", "ab", "aabb", "ba", "bbba"]


def _round_trip(net: DecoderTransformer, folder: Path, **kw) -> tuple[torch.Tensor, torch.Tensor, object]:
    """(nonid's log-probs, the library's full-softmax log-probs, layout) on WORDS after export + reload."""
    ex = to_hf(net, folder, **kw)
    model, tok = load_hf(folder)
    ids = tokenizer_encoder(tok, net.config.pad_id)(WORDS)
    assert torch.equal(ids, net.encode(WORDS))  # the tokenizer encodes exactly as nonid does
    with torch.no_grad():
        ours = net.to(torch.float64)(net.encode(WORDS)).log_softmax(-1)
        theirs = model(input_ids=ids).logits.log_softmax(-1)
    return ours, theirs, ex.layout


@pytest.mark.parametrize("norm, arch, variant", [("pre", "gpt2", "gpt2-pre-ln"), ("post", "opt", "opt-post-ln"),
                                                 ("none", "gpt2", "gpt2-mean-zero")])
def test_export_and_reload_computes_the_networks_function(tmp_path, norm, arch, variant):
    net = DecoderTransformer(TransformerConfig(norm=norm, activation="gelu" if norm == "none" else "relu", seed=3))
    ours, theirs, lay = _round_trip(net, tmp_path / "m")
    assert (lay.arch, lay.variant) == (arch, variant)
    n = net.config.n_outputs
    assert float((theirs[..., :n] - ours).abs().max()) < 1e-12
    assert float(theirs[..., n:].max()) < CLOSED_LOGIT + 50  # SOS and PAD carry no mass to speak of
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    assert cfg["tie_word_embeddings"] is False and cfg["vocab_size"] == net.config.n_inputs


def test_the_compiled_pair_round_trips_exactly_enough(tmp_path):
    from constructions.compile import compile_model
    from constructions.export import case_prefixes, load_case

    case = load_case("anbn", 3)
    net = compile_model(case.completer, case_prefixes(case))[0]
    ours, theirs, lay = _round_trip(net, tmp_path / "q1")
    assert lay.variant == "gpt2-mean-zero" and lay.n_embd == 128 and lay.q_scale == 2.0
    assert float((theirs[..., :3] - ours).abs().max()) < 1e-12


def test_forgetting_the_bias_fold_or_opening_the_closed_rows_changes_the_function(tmp_path):
    net = DecoderTransformer(TransformerConfig(norm="pre", seed=1))
    ours, unfolded, _ = _round_trip(net, tmp_path / "a", fold_bias=False)
    assert float((unfolded[..., :3] - ours).abs().max()) > 1e-3
    _, leaky, _ = _round_trip(net, tmp_path / "b", closed_logit=0.0)
    assert float(leaky[..., 3:].exp().sum(-1).min()) > 1e-3


def test_tokenizer_adds_sos_only_and_round_trips(tmp_path):
    net = DecoderTransformer(TransformerConfig(alphabet="abc", norm="pre"))
    to_hf(net, tmp_path / "m")
    from transformers import AutoTokenizer, GenerationConfig

    tok = AutoTokenizer.from_pretrained(tmp_path / "m")
    sos, eos, pad = net.config.sos_id, net.config.eos_id, net.config.pad_id
    assert tok("aabc")["input_ids"] == [sos, 0, 0, 1, 2]
    assert tok("aabc", add_special_tokens=False)["input_ids"] == [0, 0, 1, 2]
    assert (tok.bos_token_id, tok.eos_token_id, tok.pad_token_id) == (sos, eos, pad)
    assert tok.decode([0, 1, 2, eos], skip_special_tokens=True) == "abc"
    assert tok(["a", "abc"], padding=True)["input_ids"][0] == [sos, 0, pad, pad]
    gen = GenerationConfig.from_pretrained(tmp_path / "m")
    assert (gen.bos_token_id, gen.eos_token_id, gen.pad_token_id, gen.max_length) == (sos, eos, pad, net.config.max_len)


def test_shapes_the_library_cannot_hold_are_refused_before_writing(tmp_path):
    wide = TransformerConfig(norm="pre", d_model=16, n_heads=2, d_head=16)
    assert "wider" in export_problem(wide)
    assert "multiple" in export_problem(TransformerConfig(norm="pre", d_model=15, n_heads=2, d_head=4))
    assert "epsilon" in export_problem(TransformerConfig(norm="post", layer_norm_eps=1e-6))
    assert layout(TransformerConfig(norm="pre", d_model=16, n_heads=2, d_head=2)).q_scale == 2.0  # padded heads
    with pytest.raises(InvalidModelConfig, match="wider"):
        to_hf(DecoderTransformer(wide), tmp_path / "m")
    assert not (tmp_path / "m").exists()
    (tmp_path / "x").mkdir()
    with pytest.raises(InvalidArtifact, match="already exists"):
        to_hf(DecoderTransformer(TransformerConfig()), tmp_path / "x")


# ---- the command line ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pair_folder(tmp_path_factory):
    """A compiled aⁿbⁿ (n ≤ 3) pair folder without an export."""
    from constructions.export import build_pair, load_case, write_directory

    d = tmp_path_factory.mktemp("pair") / "cx"
    write_directory(build_pair(load_case("anbn", 3)), d, n_max=3)
    return d


def _nonid(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nonid", *argv], capture_output=True, text=True, timeout=300)


def test_nonid_export_then_check_reverify_the_hf_folders(pair_folder, tmp_path, capsys):
    d = tmp_path / "cx"
    shutil.copytree(pair_folder, d)
    from nonid.cli import main

    assert main(["export", str(d), "--to", "hf"]) == 0
    assert sorted(p.name for p in (d / "hf").iterdir()) == ["certificate.json", "q1", "q2"]
    cert = json.loads((d / "certificate.json").read_text())
    assert cert["quantities"]["exports"]["hf"]["status"] == "verified"
    hf = json.loads((d / "hf" / "certificate.json").read_text())
    assert hf["status"] == "verified" and len(hf["quantities"]["files_sha256"]) == 10
    assert hf["quantities"]["layouts"]["q1"]["variant"] == "gpt2-mean-zero"
    assert hf["quantities"]["cross_check"]["q1"]["float64_values_outside_enclosure"] == 0
    capsys.readouterr()
    assert main(["check", str(d)]) == 0
    assert "hf export re-loaded with its library and re-checked: verified" in capsys.readouterr().out
    assert main(["export", str(d), "--to", "hf"]) == 2
    assert "already has a hf export (replace it with --force)" in capsys.readouterr().err


@pytest.mark.parametrize("argv, fragment", [
    (["export", "{d}", "--to", "hff"], "did you mean 'hf'"),
    (["export", "{d}/q1.safetensors", "--to", "hf"], "is a file"),
    (["export", "{d}/missing", "--to", "hf"], "no such directory"),
    (["counterexample", "anbn", "--n-max", "2", "--out", "{d}/new", "--export", "hf5"], "--export"),
])
def test_bad_export_input_is_one_line_exit_2_and_writes_nothing(pair_folder, argv, fragment):
    before = sorted(str(p) for p in pair_folder.rglob("*"))
    out = _nonid(*[a.format(d=pair_folder) for a in argv])
    assert out.returncode == 2 and fragment in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert sorted(str(p) for p in pair_folder.rglob("*")) == before


def test_an_unrecorded_hf_folder_is_refused_by_check(pair_folder, tmp_path):
    d = tmp_path / "cx"
    shutil.copytree(pair_folder, d)
    (d / "hf").mkdir()
    from constructions.export import read_pair

    with pytest.raises(InvalidArtifact, match="does not record"):
        read_pair(d)


def test_to_tl_writes_rechecks_and_check_reverifies_it(tmp_path, capsys):
    pytest.importorskip("transformer_lens", reason="TransformerLens is not installed: pip install -e '.[tl]'")
    from constructions.export import build_pair, load_case, write_directory
    from nonid.cli import main

    d = tmp_path / "cx"
    write_directory(build_pair(load_case("anbn", 3)), d, n_max=3)
    assert main(["export", str(d), "--to", "tl"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("export tl verified:") and "bitwise equal" in out
    cert = json.loads((d / "tl" / "certificate.json").read_text())
    assert cert["status"] == "verified" and len(cert["quantities"]["files_sha256"]) == 8
    assert main(["check", str(d)]) == 0
    assert "tl export re-loaded with its library and re-checked: verified" in capsys.readouterr().out
    assert main(["export", str(d), "--to", "tl"]) == 2  # already there, no --force
    assert "already has a tl export" in capsys.readouterr().err
    # mutant: a TransformerLens weight edited after export (hash no longer matches): check refuses; control above
    w = d / "tl" / "q1" / "model.safetensors"
    raw = bytearray(w.read_bytes())
    raw[-9] ^= 0x01
    w.write_bytes(bytes(raw))
    assert main(["check", str(d)]) == 2
    assert "SHA-256" in capsys.readouterr().err
    shutil.rmtree(d)


def test_to_tl_is_refused_naming_the_extra_when_transformer_lens_is_absent(monkeypatch, pair_folder, capsys):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "transformer_lens" else real(name, *a))
    from nonid.cli import main

    assert main(["export", str(pair_folder), "--to", "tl"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("nonid: --to tl") and "pip install -e '.[tl]'" in err and len(err.splitlines()) == 1
    assert not (pair_folder / "tl").exists()


def test_missing_transformers_is_a_typed_refusal_naming_the_extra(monkeypatch, pair_folder, capsys):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "transformers" else real(name, *a))
    from constructions.artifact_files import export_unavailable
    from nonid.cli import main

    assert "pip install -e '.[hf]'" in export_unavailable("hf")
    assert main(["export", str(pair_folder), "--to", "hf"]) == 2
    assert "pip install -e '.[hf]'" in capsys.readouterr().err
    assert not (pair_folder / "hf").exists()


def test_a_float32_pre_ln_network_exports_in_float32_and_loads_in_float64(tmp_path):
    net = DecoderTransformer(TransformerConfig(norm="pre", dtype="float32", seed=5))
    ex = to_hf(net, tmp_path / "m")
    from safetensors import safe_open

    with safe_open(str(tmp_path / "m" / "model.safetensors"), framework="pt") as f:
        assert f.get_tensor("lm_head.weight").dtype == torch.float32
    model, tok = load_hf(ex.folder)
    ids = tokenizer_encoder(tok, net.config.pad_id)(WORDS)
    with torch.no_grad():
        ours = net.to(torch.float64)(ids).log_softmax(-1)
        theirs = model(input_ids=ids).logits.log_softmax(-1)
    assert float((theirs[..., :3] - ours).abs().max()) < 1e-4  # the fold and closed rows rounded to float32
