"""constructions.tl_export: a compiled aⁿbⁿ pair (and small random LayerNorm-free / pre-LN networks) through
TransformerLens 4 and back — weights bitwise equal, TL's float64 forward inside the rigorous enclosure —
and the mutants each check must catch, each with a control that passes.

Skipped (with the reason) where TransformerLens is not installed; the refusals that need no TL run always.
"""

from __future__ import annotations

import functools
import json
import math
import os
from pathlib import Path

import pytest
import torch

from constructions.tl_export import (
    CONFIG_FILE,
    HASHED_FILES,
    MANIFEST_FILE,
    README_FILE,
    TL_FILES,
    WEIGHTS_FILE,
    export_problem,
    tl_config_dict,
)
from constructions.transformer import DecoderTransformer, TransformerConfig
from theory.errors import InvalidArtifact, InvalidModelConfig
from theory.fileio import file_sha256, write_atomic


def _tl():
    return pytest.importorskip("transformer_lens", reason="TransformerLens is not installed: pip install -e '.[tl]'")


@functools.lru_cache(maxsize=None)
def _compiled():
    """(maximal words of the case's prefix set, compiled Q1, compiled Q2) for aⁿbⁿ, n ≤ 3."""
    from constructions.compile import compile_model
    from constructions.export import case_prefixes, load_case
    from constructions.tl_export import maximal_words

    case = load_case("anbn", 3)
    ps = case_prefixes(case)
    words = maximal_words(ps.prefixes)
    assert words == [u for u in ps.prefixes if not any(v != u and v.startswith(u) for v in ps.prefixes)]
    return words, compile_model(case.completer, ps)[0], compile_model(case.violator, ps)[0]


def _random(norm: str = "none", activation: str = "relu", seed: int = 3) -> DecoderTransformer:
    """Two heads of width 3 on d_model 5 (n_heads·d_head ≠ d_model), every bias non-zero, b_U clearly so."""
    net = DecoderTransformer(TransformerConfig(alphabet="ab", d_model=5, n_heads=2, d_head=3, d_mlp=7, n_layers=2,
                                               max_len=8, norm=norm, activation=activation, seed=seed))
    with torch.no_grad():
        net.unembed.bias.copy_(torch.tensor([0.5, -0.3, 0.2], dtype=torch.float64))
    return net


def _export(net, tmp_path: Path, name: str = "tl") -> Path:
    from constructions.tl_export import export_tl

    export_tl(net, tmp_path / name)
    return tmp_path / name


def _rehash(d: Path) -> None:
    """A forger's re-signing: nonid.json's hashes recomputed after an edit."""
    m = json.loads((d / MANIFEST_FILE).read_text())
    m["files_sha256"] = {n: file_sha256(d / n) for n in HASHED_FILES}
    write_atomic(d / MANIFEST_FILE, json.dumps(m, indent=2, sort_keys=True) + "\n")


def _edit_weights(d: Path, edit) -> None:
    from safetensors.torch import load_file, save_file

    state = load_file(str(d / WEIGHTS_FILE))
    edit(state)
    save_file(state, str(d / WEIGHTS_FILE), metadata={"format": "nonid-transformerlens-1"})


def _swap_heads(t: torch.Tensor, d_head: int, dim: int = 0) -> torch.Tensor:
    idx = torch.cat([torch.arange(d_head, 2 * d_head), torch.arange(d_head)])
    return t.index_select(dim, idx).contiguous()


# ---- no TransformerLens needed -------------------------------------------------------------------------------
@pytest.mark.parametrize("field, value, named", [("norm", "post", "norm 'post'"), ("activation", "tanh", "activation 'tanh'"),
                                                 ("dtype", "float32", "dtype 'float32'")])
def test_no_exact_tl_form_is_refused_naming_it(field, value, named):
    cfg = TransformerConfig(**{"alphabet": "ab", "d_model": 5, "n_heads": 2, "d_head": 3, "d_mlp": 7, "n_layers": 1,
                               "max_len": 6, field: value})
    assert named in export_problem(cfg)
    with pytest.raises(InvalidModelConfig, match=named):
        tl_config_dict(cfg)


def test_the_tl_config_states_nonids_architecture():
    cfg = TransformerConfig(alphabet="abc", d_model=5, n_heads=2, d_head=3, d_mlp=7, n_layers=2, max_len=6, norm="none")
    tl = tl_config_dict(cfg)
    assert (tl["d_vocab"], tl["d_vocab_out"], tl["n_ctx"]) == (6, 4, 6)  # Σ + EOS, SOS, PAD in; Σ + EOS out
    assert tl["normalization_type"] is None and tl["act_fn"] == "relu" and tl["attn_scale"] == -1.0
    assert tl["n_heads"] * tl["d_head"] != tl["d_model"]
    assert export_problem(cfg) == ""


def test_a_network_whose_function_is_not_nonids_architecture_is_refused(tmp_path):
    from constructions.tl_export import export_tl

    class Doubled(DecoderTransformer):
        def forward(self, tokens):
            return 2 * super().forward(tokens)

    with pytest.raises(InvalidModelConfig, match="overrides the DecoderTransformer's forward"):
        export_tl(Doubled(TransformerConfig(alphabet="ab", d_model=4, n_heads=1, d_head=4, d_mlp=4, n_layers=1,
                                            max_len=4, norm="none")), tmp_path / "tl")
    with pytest.raises(InvalidModelConfig, match="got Linear"):
        export_tl(torch.nn.Linear(2, 2), tmp_path / "tl")  # type: ignore[arg-type]
    assert not list(tmp_path.iterdir())


def test_default_words_cover_every_prefix_up_to_the_budget():
    from constructions.tl_export import default_words

    cfg = TransformerConfig(alphabet="abc", d_model=4, n_heads=1, d_head=4, d_mlp=4, n_layers=1, max_len=40, norm="none")
    assert len(default_words(cfg, budget=30)) == 27 and {len(w) for w in default_words(cfg, budget=30)} == {3}
    short = TransformerConfig(alphabet="ab", d_model=4, n_heads=1, d_head=4, d_mlp=4, n_layers=1, max_len=3, norm="none")
    assert default_words(short) == ["aa", "ab", "ba", "bb"]  # capped by max_len − 1


# ---- through TransformerLens ----------------------------------------------------------------------------------
@pytest.mark.parametrize("key", [1, 2])
def test_compiled_anbn_pair_round_trips_bitwise_and_inside_the_enclosure(tmp_path, key):
    """Each of the compiled pair at every prefix of the set `nonid counterexample anbn` checks (n ≤ 3)."""
    _tl()
    from constructions.tl_export import verify_tl

    words, *nets = _compiled()
    net = nets[key - 1]
    r = verify_tl(_export(net, tmp_path), net, words=words)
    assert r["status"] == "verified", r["reason"]
    assert r["weights_bitwise_equal_file"] and r["weights_bitwise_equal_expected"]
    assert r["prefixes"] == 1141 and r["inside_enclosure"] == r["logits"] == 3 * r["prefixes"]
    assert r["max_abs_diff"] <= 2 * r["max_radius"] and r["transformer_lens"].startswith("4.")


def test_export_writes_the_hashed_files_and_a_readme_recipe_that_loads(tmp_path):
    _tl()
    from constructions.tl_export import export_tl, load_tl

    net = _random()
    hashes = export_tl(net, tmp_path / "tl")
    d = tmp_path / "tl"
    assert sorted(hashes) == sorted(TL_FILES) == sorted(p.name for p in d.iterdir())
    assert all(file_sha256(d / n) == h for n, h in hashes.items())
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary sibling left
    readme = (d / README_FILE).read_text()
    code = readme.split("```python\n")[1].split("```")[0]
    assert len(code.strip().splitlines()) == 3
    cwd = os.getcwd()
    try:  # the recipe, run as a user would, in the folder
        os.chdir(d)
        scope: dict = {}
        exec(code, scope)
    finally:
        os.chdir(cwd)
    tokens = net.encode(["abba", "b"])
    with torch.no_grad():
        assert torch.equal(scope["model"](tokens), load_tl(d)(tokens))
        assert torch.allclose(scope["model"](tokens), net(tokens), rtol=0, atol=1e-12)


@pytest.mark.parametrize("norm, activation", [("none", "relu"), ("none", "gelu"), ("pre", "relu")])
def test_random_networks_round_trip(tmp_path, norm, activation):
    _tl()
    from constructions.tl_export import verify_tl

    net = _random(norm, activation)
    r = verify_tl(_export(net, tmp_path), net)
    assert r["status"] == "verified", r["reason"]
    assert r["prefixes"] == 2 ** 8 - 1 and r["within_tolerance"] == r["logits"]


def test_a_foreign_or_earlier_folder_is_not_overwritten(tmp_path):
    _tl()
    from constructions.tl_export import export_tl

    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(InvalidArtifact, match="not an earlier output"):
        export_tl(_random(), tmp_path / "mine", overwrite=True)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"
    d = _export(_random(), tmp_path)
    with pytest.raises(InvalidArtifact, match="--force"):
        export_tl(_random(seed=4), d)
    export_tl(_random(seed=4), d, overwrite=True)


# ---- mutants, each with its control ---------------------------------------------------------------------------
def _verdict(fn) -> str:
    try:
        return fn()["status"]
    except (InvalidArtifact, InvalidModelConfig) as e:
        return f"refused:{type(e).__name__}"


def _bump(state):
    state["blocks.1.mlp.out.weight"][0, 0] += 2.0 ** -20


@pytest.mark.parametrize("mutate", [False, True])
def test_mutant_weight_edited_after_export_stale_hash_is_refused(tmp_path, mutate):
    _tl()
    from constructions.tl_export import verify_tl

    net = _random()
    d = _export(net, tmp_path)
    if mutate:
        _edit_weights(d, _bump)
    assert _verdict(lambda: verify_tl(d, net)) == ("refused:InvalidArtifact" if mutate else "verified")


@pytest.mark.parametrize("mutate", [False, True])
def test_mutant_weight_edited_and_rehashed_is_falsified_against_the_expected_network(tmp_path, mutate):
    _tl()
    from constructions.tl_export import verify_tl

    net = _random()
    d = _export(net, tmp_path)
    if mutate:
        _edit_weights(d, _bump)
    _rehash(d)  # control: re-signed but unedited
    r = verify_tl(d, net)
    assert r["status"] == ("falsified" if mutate else "verified")
    if mutate:
        assert "blocks.1.mlp.fc_out.weight" in r["reason"] and r["weights_bitwise_equal_file"]
        # without the expected network the stored (edited) weights are what is certified: consistent, so verified
        assert verify_tl(d)["status"] == "verified"


@pytest.mark.parametrize("mutate", [False, True])
def test_mutant_permuted_head_in_the_folder_is_falsified(tmp_path, mutate):
    """Heads 0 and 1 swapped in W_Q, b_Q only (W_K, W_V, W_O untouched): another function."""
    _tl()
    from constructions.tl_export import verify_tl

    net = _random()
    d = _export(net, tmp_path)

    def permute(state):
        for p in ("weight", "bias"):
            state[f"blocks.0.attn.q.{p}"] = _swap_heads(state[f"blocks.0.attn.q.{p}"], 3)

    if mutate:
        _edit_weights(d, permute)
    _rehash(d)
    r = verify_tl(d, net)
    assert r["status"] == ("falsified" if mutate else "verified")
    if mutate:
        assert "blocks.0.attn.q_proj" in r["reason"]


@pytest.mark.parametrize("mutate", [False, True])
def test_mutant_tl_forward_with_heads_permuted_is_falsified_by_the_cross_check(tmp_path, monkeypatch, mutate):
    """TL computing the heads in another order than nonid's layout (weights intact): only step 3 can see it."""
    _tl()
    import constructions.tl_export as tle

    net = _random()
    d = _export(net, tmp_path)
    real = tle.load_tl

    def load(folder):
        model = real(folder)
        model.add_hook("blocks.1.attn.hook_pattern", lambda p, hook: p.flip(1) if mutate else p)
        return model

    monkeypatch.setattr(tle, "load_tl", load)
    r = tle.verify_tl(d)  # no expected network: the weights are the folder's, and they are consistent
    assert r["weights_bitwise_equal_file"]
    assert r["status"] == ("falsified" if mutate else "verified"), r["reason"]
    if mutate:
        assert "leave the enclosure" in r["reason"] and r["within_tolerance"] < r["logits"]


@pytest.mark.parametrize("mutate", [False, True])
def test_mutant_dropped_bias_in_the_folder_is_refused(tmp_path, mutate):
    _tl()
    from constructions.tl_export import verify_tl

    net = _random()
    d = _export(net, tmp_path)
    if mutate:
        _edit_weights(d, lambda state: state.pop("blocks.0.attn.v.bias"))
    _rehash(d)
    with pytest.raises(InvalidArtifact, match="blocks.0.attn.v.bias|v._original_component.bias") if mutate else _nothing():
        assert verify_tl(d, net)["status"] == "verified"


@pytest.mark.parametrize("mutate", [False, True])
def test_mutant_tl_forward_dropping_the_unembedding_bias_is_falsified(tmp_path, monkeypatch, mutate):
    """A TransformerLens whose head ignored the b_U buffer (the native head has no bias parameter)."""
    _tl()
    import constructions.tl_export as tle

    net = _random()
    d = _export(net, tmp_path)
    real = tle.load_tl

    def load(folder):
        model = real(folder)
        b_u = model.unembed.b_U.detach().clone()
        model.add_hook("unembed.hook_out", lambda z, hook: z - b_u if mutate else z)
        return model

    monkeypatch.setattr(tle, "load_tl", load)
    assert tle.verify_tl(d, net)["status"] == ("falsified" if mutate else "verified")


@pytest.mark.parametrize("mutate", [False, True])
def test_mutant_edited_tl_config_is_refused(tmp_path, mutate):
    """act_fn relu → gelu, re-signed: the weights are intact but TL would compute another function."""
    _tl()
    from constructions.tl_export import verify_tl

    net = _random()
    d = _export(net, tmp_path)
    cfg = json.loads((d / CONFIG_FILE).read_text())
    if mutate:
        cfg["act_fn"] = "gelu"
    write_atomic(d / CONFIG_FILE, json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    _rehash(d)
    assert _verdict(lambda: verify_tl(d, net)) == ("refused:InvalidArtifact" if mutate else "verified")


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.mark.parametrize("mutate", [False, True])
def test_mutant_tl_forward_returning_nan_is_falsified_with_finite_numbers(tmp_path, monkeypatch, mutate):
    """A NaN logit fails the tolerance (NaN compares false) and leaves the result JSON-able (no inf/NaN)."""
    _tl()
    import constructions.tl_export as tle

    net = _random()
    d = _export(net, tmp_path)
    real = tle.load_tl

    def load(folder):
        model = real(folder)
        model.add_hook("unembed.hook_out", lambda z, hook: z.index_fill(-1, torch.tensor([0]), math.nan) if mutate else z)
        return model

    monkeypatch.setattr(tle, "load_tl", load)
    r = tle.verify_tl(d, net)
    assert r["status"] == ("falsified" if mutate else "verified")
    json.dumps(r, allow_nan=False)
    if mutate:
        assert r["worst_ratio"] is None and r["max_abs_diff"] is None and "not finite" in r["reason"]
