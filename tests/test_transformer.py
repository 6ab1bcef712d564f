"""The project's decoder transformer: config validation, determinism, causality, a working positional
encoding, the loss, bad input, and safetensors files that plain PyTorch can load."""

import json
from dataclasses import FrozenInstanceError, replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from constructions.transformer import ACTIVATIONS, NORMS, DecoderTransformer, TransformerConfig
from theory.alphabet import EOS, Alphabet
from theory.errors import InputTooLong, InvalidAlphabet, InvalidModelConfig, NonidError, UnknownToken

SMALL = TransformerConfig(alphabet="ab", d_model=8, n_heads=2, d_head=4, d_mlp=8, n_layers=2, max_len=8)


def test_config_is_frozen_hashable_and_round_trips():
    assert hash(SMALL) == hash(replace(SMALL))
    with pytest.raises(FrozenInstanceError):
        SMALL.d_model = 4  # type: ignore[misc]
    assert TransformerConfig.from_dict(SMALL.to_dict()) == SMALL
    assert TransformerConfig(alphabet=Alphabet("xyz")).alphabet == "xyz"
    with pytest.raises(InvalidModelConfig, match="unknown transformer config fields"):
        TransformerConfig.from_dict({**SMALL.to_dict(), "width": 3})


@pytest.mark.parametrize("field, value, fragment", [
    ("d_model", 0, "d_model = 0"), ("n_heads", -1, "n_heads = -1"), ("d_head", 2.5, "d_head = 2.5"),
    ("d_mlp", True, "d_mlp = True"), ("max_len", 1, "max_len = 1"), ("norm", "mid", "norm = 'mid'"),
    ("activation", "swish", "activation = 'swish'"), ("dtype", "float16", "dtype = 'float16'"),
    ("seed", -1, "seed = -1"), ("layer_norm_eps", 0, "layer_norm_eps = 0"),
])
def test_bad_configs_name_the_value(field, value, fragment):
    with pytest.raises(InvalidModelConfig, match=fragment.replace("(", r"\(")):
        replace(SMALL, **{field: value})


@pytest.mark.parametrize("alphabet", ["", "aa", "a b"])
def test_bad_alphabets(alphabet):
    with pytest.raises(InvalidAlphabet):
        replace(SMALL, alphabet=alphabet)


def test_not_a_config():
    with pytest.raises(InvalidModelConfig, match="TransformerConfig"):
        DecoderTransformer({"alphabet": "ab"})  # type: ignore[arg-type]


def test_vocabulary_layout():
    assert (SMALL.eos_id, SMALL.sos_id, SMALL.pad_id, SMALL.n_inputs, SMALL.n_outputs) == (2, 3, 4, 5, 3)
    m = DecoderTransformer(SMALL)
    assert m.alphabet.outcomes == ("a", "b", EOS)
    assert m.encode(["ab", ""]).tolist() == [[3, 0, 1], [3, 4, 4]]


def test_initialisation_is_deterministic_and_dtype_independent():
    a, b = DecoderTransformer(SMALL), DecoderTransformer(SMALL)
    c = DecoderTransformer(replace(SMALL, seed=1))
    f32 = DecoderTransformer(replace(SMALL, dtype="float32"))
    for (name, p), q, r, s in zip(a.state_dict().items(), b.state_dict().values(), c.state_dict().values(),
                                  f32.state_dict().values()):
        assert torch.equal(p, q), name
        assert s.dtype == torch.float32 and p.dtype == torch.float64
        assert torch.equal(s, p.float()), name
    assert any(not torch.equal(p, r) for p, r in zip(a.state_dict().values(), c.state_dict().values()))
    # nothing starts at a special value: every bias is nonzero
    assert all(p.abs().min() > 0 for n, p in a.named_parameters() if n.endswith("bias"))


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_log_probs_are_normalised(norm, activation):
    m = DecoderTransformer(replace(SMALL, norm=norm, activation=activation))
    lp = m.log_probs(m.encode(["abba", "b", ""]))
    assert lp.shape == (3, 5, 3)
    assert torch.allclose(lp.logsumexp(-1), torch.zeros(3, 5, dtype=torch.float64), atol=1e-12)


def test_attention_is_causal():
    m = DecoderTransformer(SMALL)
    base = m(m.encode(["abab"]))
    for j in range(1, 5):
        tok = m.encode(["abab"])
        tok[0, j] = 1 - tok[0, j] if j else tok[0, j]
        out = m(tok)
        assert torch.equal(out[0, :j], base[0, :j]), f"position < {j} saw a later token"
        assert not torch.equal(out[0, j:], base[0, j:])


def test_positional_encoding_carries_position():
    # On a constant input a position-blind causal transformer gives the same output everywhere
    # (attention over identical tokens averages identical values); ours must not.
    m = DecoderTransformer(SMALL)
    out = m(m.encode(["aaaaaaa"]))[0, 1:]
    for i in range(out.shape[0]):
        for j in range(i):
            assert (out[i] - out[j]).abs().max() > 1e-6, (i, j)


def test_sequence_nll_is_the_chain_rule_sum_and_ignores_padding():
    m = DecoderTransformer(SMALL)
    words = ["abba", "", "b"]
    nll = m.sequence_nll(words)
    for w, v in zip(words, nll.detach()):
        lp = m.next_token_log_probs([w[:t] for t in range(len(w) + 1)]).detach()
        ids = [m.alphabet.outcomes.index(c) for c in w] + [SMALL.eos_id]
        manual = -sum(float(lp[t, i]) for t, i in enumerate(ids))
        assert abs(float(v) - manual) < 1e-12
        assert abs(m.sequence_nll([w])[0].item() - float(v)) < 1e-12  # alone = padded in a batch
    nll.sum().backward()
    assert all(p.grad is not None for p in m.parameters())


def test_next_token_log_probs_match_the_full_pass():
    m = DecoderTransformer(SMALL)
    full = m.log_probs(m.encode(["abb"]))[0]
    assert torch.allclose(m.next_token_log_probs(["", "a", "ab", "abb"]), full, atol=1e-14)


@pytest.mark.parametrize("words, error, fragment", [
    (["abc"], UnknownToken, "'c' at position 2"),
    (["a" * 8], InputTooLong, "max_len = 8"),
    ("ab", UnknownToken, "single string"),
])
def test_bad_encode_input(words, error, fragment):
    m = DecoderTransformer(SMALL)
    with pytest.raises(error, match=fragment):
        m.encode(words)
    assert issubclass(error, NonidError)


def test_bad_forward_input():
    m = DecoderTransformer(SMALL)
    with pytest.raises(UnknownToken, match="token id 5"):
        m(torch.tensor([[3, 5]]))
    with pytest.raises(UnknownToken, match="token id -1"):
        m(torch.tensor([[3, -1]]))
    with pytest.raises(InputTooLong, match="9 positions"):
        m(torch.full((1, 9), 3))
    with pytest.raises(UnknownToken, match="shape"):
        m(torch.tensor([3, 0]))


def test_save_load_round_trip_and_plain_torch(tmp_path: Path):
    m = DecoderTransformer(replace(SMALL, norm="post", seed=3))
    path = tmp_path / "model.safetensors"
    m.save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]  # no temporary file left
    back = DecoderTransformer.load(path)
    assert back.config == m.config
    tok = m.encode(["abab", "b"])
    assert torch.equal(back(tok), m(tok))
    # Plain PyTorch: the tensors are the state_dict, the config is JSON metadata.
    state = load_file(str(path))
    assert set(state) == set(m.state_dict())
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        cfg = TransformerConfig(**json.loads(f.metadata()["config"]))
    plain = DecoderTransformer(cfg)
    plain.load_state_dict(state)
    assert torch.equal(plain(tok), m(tok))


def test_load_refuses_a_foreign_file(tmp_path: Path):
    path = tmp_path / "other.safetensors"
    save_file({"x": torch.zeros(2)}, str(path))
    with pytest.raises(InvalidModelConfig, match="not a nonid transformer"):
        DecoderTransformer.load(path)


def test_clone_is_independent():
    m = DecoderTransformer(SMALL)
    c = m.clone()
    with torch.no_grad():
        c.unembed.bias.add_(1.0)
    assert not torch.equal(c.unembed.bias, m.unembed.bias)
