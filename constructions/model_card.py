'''The model card (README.md) of a counterexample directory, with a loader that needs only torch,
safetensors and json.  The tests execute :data:`LOADER` exactly as the card prints it.'''

from __future__ import annotations

import json
from typing import Any

from theory.certificate import Certificate

LOADER = r'''
import json, math
import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file


def load(path):
    """(config dict, state dict) of one model file."""
    with safe_open(path, framework="pt") as f:
        config = json.loads(f.metadata()["config"])
    return config, load_file(path)


def logits(config, W, words):
    """Logits of shape (len(words), T, |alphabet| + 1); position t scores the token after word[:t]
    (the last column is EOS).  Words are strings over config["alphabet"]."""
    syms, H, dh = config["alphabet"], config["n_heads"], config["d_head"]
    sos, pad = len(syms) + 1, len(syms) + 2
    T = 1 + max(len(w) for w in words)
    ids = torch.full((len(words), T), pad)
    ids[:, 0] = sos
    for i, w in enumerate(words):
        for j, ch in enumerate(w):
            ids[i, j + 1] = syms.index(ch)
    act = {"relu": F.relu, "gelu": F.gelu, "tanh": torch.tanh}[config["activation"]]
    lin = lambda h, n: h @ W[n + ".weight"].T + W[n + ".bias"]
    ln = lambda h, n: F.layer_norm(h, h.shape[-1:], W[n + ".weight"], W[n + ".bias"], config["layer_norm_eps"])
    causal = torch.ones(T, T, dtype=torch.bool).tril()

    def attn(h, p):
        B = h.shape[0]
        q, k, v = (lin(h, f"{p}.attn.{c}_proj").view(B, T, H, dh).transpose(1, 2) for c in "qkv")
        s = (q @ k.transpose(-2, -1)) / math.sqrt(dh)
        o = (s.masked_fill(~causal, float("-inf")).softmax(-1) @ v).transpose(1, 2).reshape(B, T, H * dh)
        return lin(o, f"{p}.attn.o_proj")

    mlp = lambda h, p: lin(act(lin(h, f"{p}.mlp.fc_in")), f"{p}.mlp.fc_out")
    x = W["token_embedding.weight"][ids] + W["position_embedding.weight"][:T]
    for layer in range(config["n_layers"]):
        p = f"blocks.{layer}"
        if config["norm"] == "post":
            x = ln(x + attn(x, p), p + ".ln_attn")
            x = ln(x + mlp(x, p), p + ".ln_mlp")
        elif config["norm"] == "pre":
            x = x + attn(ln(x, p + ".ln_attn"), p)
            x = x + mlp(ln(x, p + ".ln_mlp"), p)
        else:
            x = x + attn(x, p)
            x = x + mlp(x, p)
    if config["norm"] == "pre":
        x = ln(x, "ln_final")
    return lin(x, "unembed")
'''.strip("\n")


def _fmt(q: Any) -> str:
    if isinstance(q, dict) and "approx" in q:
        return f"{q['approx']:.3f}"
    return str(q)


def model_card(config: dict[str, Any], cert: Certificate) -> str:
    """The README.md text for a directory with ``config`` (config.json's content) and ``cert``."""
    from constructions.check import evaluation_words

    q = cert.quantities
    t1 = config["models"]["q1"]["transformer"]
    syms = t1["alphabet"]
    rows = "\n".join(
        f"| `{m['file']}` | {m['role']} | {_fmt(q.get(k, {}).get('ood_r1'))} | {q.get(k, {}).get('kl_upper')} | "
        f"{q.get(k, {}).get('max_tv_upper')} |"
        for k, m in config["models"].items())
    return f"""# Counterexample pair: {config['case']} ({config['method']})

Two causal transformers with the same test loss on the data ({q.get('data', '')}) — each equal to the data
entropy H(P) up to the rigorous KL bound below — and opposite behaviour on {q.get('ood_prompts')} OOD prompts
(greedy rule-extrapolation accuracy: the share of completions satisfying the surviving rule R1).

Status of the included certificate: **{cert.status.value}** (method `{cert.method}`: every one of
{config['prefixes']:,} prefixes enclosed rigorously for the real function of the stored weights; the {config['method']}
method's bounds: max TV ≤ {config['tolerance_tv']:g} at every prefix, KL(P ‖ model) ≤ {config.get('kl_bound', '?')} nats).

| file | model | OOD R1 accuracy | KL(P ‖ model) ≤ | max TV vs construction ≤ |
|---|---|---|---|---|
{rows}

H(P) = {q.get('entropy_nats', {}).get('exact', '?')} nats per sequence.

## Re-verify

    nonid check <this directory>

checks every file's SHA-256 against `certificate.json` (that detects accidents, not forgery: anyone can
recompute a hash), that `config.json` agrees with the weights and states its method's own bounds, and re-runs
the exhaustive check {evaluation_words(q.get('q1', {}))}. The re-check, not the stored verdict, is what counts.

## Vocabulary and conventions

* Input ids: `{', '.join(f'{i}={s}' for i, s in enumerate(config['vocabulary']['inputs']))}`.
* A word w over `{syms}` is fed as `[<sos>, w1, ..., wn]` (pad on the right with `<pad>`; attention is causal).
* Output position t is the next-token distribution after w[:t] over `{', '.join(config['vocabulary']['outputs'])}`
  (softmax of the logits; EOS last).
* Architecture: decoder-only, learned token + absolute position embeddings, {t1['n_layers']} block(s) of
  multi-head causal softmax attention (biases on Q, K, V, O; scores / sqrt(d_head)) and an MLP
  `fc_out(act(fc_in(h)))`, LayerNorm placement `{t1['norm']}`, untied unembedding. Weights are float
  tensors in `{t1['dtype']}`; the config is in each file's safetensors metadata (`config`) and in `config.json`.

## Load in plain PyTorch (torch, safetensors and json only)

```python
{LOADER}


config, W = load("q1.safetensors")
probs = logits(config, W, {[syms, syms[::-1]]!r}).softmax(-1)  # (words, positions, outputs)
```

## How the weights were made

Method `{config['method']}` with knobs `{json.dumps(config['knobs'], sort_keys=True)}`. The compiled networks (`compile`) are an analytic
lookup: layer 1 builds a one-hot of (position, token), layer 2 averages it with exactly uniform attention and
one ReLU unit per prefix of the checked set fires on that prefix alone and writes its log-probabilities
(zeros floored at -zero_logit). Off the checked set the compiled networks output the uniform row; only the
checked set is promised. Distilled networks (`distill`) are ordinary small transformers trained to the
constructions. Either way the verdict comes from the exhaustive check, not from the construction.
"""
