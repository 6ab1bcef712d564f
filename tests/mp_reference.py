"""A slow, independent reference: a DecoderTransformer's real function evaluated in mpmath at 120
significant digits (numpy object arrays of mpf), for containment tests of the rigorous evaluator."""

from __future__ import annotations

import mpmath
import numpy as np


def _arr(t) -> np.ndarray:
    a = t.detach().to("cpu").double().numpy()
    out = np.empty(a.shape, dtype=object)
    for idx in np.ndindex(a.shape):
        out[idx] = mpmath.mpf(float(a[idx]))
    return out


def _layer_norm(x, g, b, eps):
    d = x.shape[-1]
    out = np.empty_like(x)
    for idx in np.ndindex(x.shape[:-1]):
        row = x[idx]
        mu = sum(row) / d
        var = sum((v - mu) ** 2 for v in row) / d
        inv = 1 / mpmath.sqrt(var + mpmath.mpf(eps))
        out[idx] = np.array([(v - mu) * inv * gg + bb for v, gg, bb in zip(row, g, b)], dtype=object)
    return out


def _act(name, x):
    f = {"relu": lambda v: v if v > 0 else mpmath.mpf(0),
         "gelu": lambda v: v * (1 + mpmath.erf(v / mpmath.sqrt(2))) / 2,
         "tanh": mpmath.tanh}[name]
    return np.vectorize(f, otypes=[object])(x)


def reference_log_probs(net, word: str) -> list[list]:
    """log q(· | word[:t]) for t = 0..len(word), as mpf, from the exact real function of the weights."""
    with mpmath.workdps(120):
        cfg = net.config
        W = {k: _arr(v) for k, v in net.state_dict().items()}
        ids = net.encode([word])[0].tolist()
        T = len(ids)
        x = np.array([W["token_embedding.weight"][i] + W["position_embedding.weight"][p] for p, i in enumerate(ids)], dtype=object)

        def lin(h, n):
            return h.dot(W[n + ".weight"].T) + W[n + ".bias"]

        def attn(h, n):
            H, dh = cfg.n_heads, cfg.d_head
            q, k, v = lin(h, n + ".q_proj"), lin(h, n + ".k_proj"), lin(h, n + ".v_proj")
            out = np.empty((T, H * dh), dtype=object)
            for hh in range(H):
                sl = slice(hh * dh, (hh + 1) * dh)
                for i in range(T):
                    s = [q[i, sl].dot(k[j, sl]) / mpmath.sqrt(dh) for j in range(i + 1)]
                    mx = max(s)
                    e = [mpmath.exp(v_ - mx) for v_ in s]
                    z = sum(e)
                    out[i, sl] = sum(((e[j] / z) * v[j, sl] for j in range(i + 1)), np.zeros(dh, dtype=object) + mpmath.mpf(0))
            return lin(out, n + ".o_proj")

        for b in range(cfg.n_layers):
            p = f"blocks.{b}"
            ln = lambda h, n: _layer_norm(h, W[n + ".weight"], W[n + ".bias"], cfg.layer_norm_eps)
            if cfg.norm == "post":
                x = ln(x + attn(x, p + ".attn"), p + ".ln_attn")
                x = ln(x + lin(_act(cfg.activation, lin(x, p + ".mlp.fc_in")), p + ".mlp.fc_out"), p + ".ln_mlp")
            else:
                a = ln(x, p + ".ln_attn") if cfg.norm == "pre" else x
                x = x + attn(a, p + ".attn")
                a = ln(x, p + ".ln_mlp") if cfg.norm == "pre" else x
                x = x + lin(_act(cfg.activation, lin(a, p + ".mlp.fc_in")), p + ".mlp.fc_out")
        if cfg.norm == "pre":
            x = _layer_norm(x, W["ln_final.weight"], W["ln_final.bias"], cfg.layer_norm_eps)
        z = lin(x, "unembed")
        out = []
        for t in range(len(word) + 1):
            row = z[t]
            m = max(row)
            lse = m + mpmath.log(sum(mpmath.exp(v - m) for v in row))
            out.append([v - lse for v in row])
        return out
