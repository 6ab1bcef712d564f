"""The abstract-state check: a verdict about a uniform-attention network at *every* prefix up to its
context length T, from a polynomial number of rigorous evaluations.

It reads nothing but the stored weights of a stock :class:`~constructions.transformer.DecoderTransformer`
with ``norm = "none"``, ReLU and one or two layers whose every attention head has constant scores
(zero queries, or zero key weights: checked exactly, tensor entry by entry).  Then, for the real
function of those weights (all arithmetic in :mod:`constructions.balls`, outward-rounded):

1. **Layer 1 is a function of (t, counts, last token).**  Causal softmax over equal scores is exactly
   1/(t + 1), so the attention output at t is O·(V·Σ_{s≤t} h₀(s))/(t + 1) + b, and
   Σ_{s≤t} h₀(s) = E[SOS] + Σ_σ k_σ E[σ] + Σ_{s≤t} P[s] depends on the prefix only through t and the
   counts k.  The check evaluates layer 1 once per reachable (t, k, xₜ): Σ_t (#count vectors) of them.
2. **Layer 2 reads bits.**  The coordinates layer 2's values read (nonzero columns of its W_V) must be,
   at every layer-1 state, within :data:`BIT_TOLERANCE` of 0 or 1 (rigorously).  Then its attention
   input is (β + E)/(t + 1) with β ∈ ℕᴮ the number of positions where each bit was 1 and |E| at most
   the largest sum, along any path into the group, of the bits' distances from 0/1 (rounded up).
3. **Groups.**  Prefixes are grouped by g = (t, k, xₜ, z), z = which bits have ever been 1; the exact
   set of β reachable in each group is computed by dynamic programming over all words (bitsets).
   A group is evaluated at the corners of its β box (the per-bit minimum and maximum).  Within the box
   every layer-2 pre-activation is affine in (β, E); when each MLP unit has one sign at every corner
   (checked rigorously), the logits are affine too and the hull of the corner enclosures contains the
   logits of every prefix of the group.  A group where some unit changes sign is evaluated at each of
   its reachable β instead (up to :data:`POINT_CAP` points).
4. **What follows.**  Every prefix of length ≤ T lies in exactly one group, so the group enclosures are
   enclosures at every prefix.  On P's support they give the TV and KL bounds; off it the *certified*
   greedy token of each group (its lower log-probability bound above every other's upper bound) defines
   a deterministic successor group, and a dynamic program over the groups reached from outside the
   support follows every OOD prompt's greedy completion to its EOS (or to position T).

As an independent cross-check :func:`cross_check` encloses the network directly (the whole forward
pass, :mod:`constructions.enclosure`) on every word up to a length and compares prefix by prefix.
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch

from constructions import balls
from constructions.balls import Ball
from theory.errors import InvalidModelConfig

BIT_TOLERANCE = 1e-9
"""A coordinate layer 2 reads must be within this of 0 or 1 at every layer-1 state (rigorously)."""
POINT_CAP = 200_000
"""At most this many single-β evaluations for groups whose MLP signs are not constant on their box."""


class NotAbstractable(InvalidModelConfig):
    """A network the abstract-state check does not cover (the reason named): then nothing is claimed."""


def why_not_abstractable(net: object) -> str:
    """'' when the structural conditions of the module docstring hold, else the first that fails."""
    from typing import cast

    from constructions.exact_eval import why_not_exact
    from constructions.transformer import DecoderTransformer

    why = why_not_exact(net)  # a stock DecoderTransformer, norm 'none', ReLU: the exact evaluator's class
    if why:
        return why
    model = cast(DecoderTransformer, net)
    cfg = model.config
    if cfg.n_layers not in (1, 2):
        return f"{cfg.n_layers} layers: the check covers one or two"
    sd = model.state_dict()
    for i in range(cfg.n_layers):
        for h in range(cfg.n_heads):
            rows = slice(h * cfg.d_head, (h + 1) * cfg.d_head)
            q_zero = not sd[f"blocks.{i}.attn.q_proj.weight"][rows].any() and not sd[f"blocks.{i}.attn.q_proj.bias"][rows].any()
            k_const = not sd[f"blocks.{i}.attn.k_proj.weight"][rows].any()
            if not (q_zero or k_const):
                return (f"layer {i}, head {h}: neither its queries are identically 0 nor its keys constant, so its "
                        "attention is not exactly uniform")
    for name, p in sd.items():
        if not torch.isfinite(p).all():
            return f"{name} holds a non-finite value"
    return ""


# ---- rigorous helpers --------------------------------------------------------------------------------
def _divide_rows(x: Ball, d: torch.Tensor) -> Ball:
    """x / d row by row, d a column of positive integers (one rounded division each)."""
    m = x.m / d
    return Ball(m, balls._upper(x.r / d + balls.U * m.abs(), 3))


def _linear(x: Ball, weight: torch.Tensor, bias: torch.Tensor | None) -> Ball:
    y = x.matmul_exact(weight.T.contiguous())
    return y.add_exact(bias) if bias is not None else y


def _hull(a: Ball, b: Ball) -> Ball:
    return Ball.from_bounds(torch.minimum(a.lo, b.lo), torch.maximum(a.hi, b.hi))


# ---- the states --------------------------------------------------------------------------------------
def _count_vectors(k: int, total: int) -> list[tuple[int, ...]]:
    if k == 1:
        return [(total,)]
    return [(i, *rest) for i in range(total, -1, -1) for rest in _count_vectors(k - 1, total - i)]


@dataclass
class _Layer1:
    """Every reachable (t, counts, last token) and layer 1's output there."""

    keys: list[tuple[int, tuple[int, ...], int]]
    index: dict[tuple[int, tuple[int, ...], int], int]
    h1: Ball
    bits: np.ndarray  # (states, B) ints 0/1
    bit_coords: list[int]
    bit_error: float
    dist: np.ndarray  # per state: the largest distance of its bits from 0/1 (rigorous upper bound)


def _layer1(net: Any, sd: dict[str, torch.Tensor], T: int) -> _Layer1:
    cfg = net.config
    k = len(cfg.alphabet)
    keys: list[tuple[int, tuple[int, ...], int]] = [(0, (0,) * k, cfg.sos_id)]
    for t in range(1, T + 1):
        for c in _count_vectors(k, t):
            for x in range(k):
                if c[x]:
                    keys.append((t, c, x))
    index = {key: i for i, key in enumerate(keys)}
    tt = torch.tensor([key[0] for key in keys], dtype=torch.long)
    counts = torch.tensor([key[1] for key in keys], dtype=torch.float64)
    tok = torch.tensor([key[2] for key in keys], dtype=torch.long)
    E, P = sd["token_embedding.weight"], sd["position_embedding.weight"]  # float64 already
    # Σ_{s ≤ t} P[s] as balls, accumulated in order
    cum_m = torch.empty(T + 1, cfg.d_model, dtype=torch.float64)
    cum_r = torch.empty_like(cum_m)
    acc = Ball.exact(P[0])
    cum_m[0], cum_r[0] = acc.m, acc.r
    for t in range(1, T + 1):
        acc = acc.add_exact(P[t])
        cum_m[t], cum_r[t] = acc.m, acc.r
    h0 = Ball.exact(E[tok]).add_exact(P[tt])
    s0 = Ball.exact(counts).matmul_exact(E[:k]).add_exact(E[cfg.sos_id])
    s0 = s0 + Ball(cum_m[tt], cum_r[tt])
    _pre, h1 = _block(sd, 0, h0, _linear(s0, sd["blocks.0.attn.v_proj.weight"], None), (tt + 1).to(torch.float64)[:, None])
    bit_coords: list[int] = []
    bits = np.zeros((len(keys), 0), dtype=np.int64)
    err = 0.0
    dist_max = np.zeros(len(keys))
    if cfg.n_layers == 2:
        wv = sd["blocks.1.attn.v_proj.weight"]
        bit_coords = [int(j) for j in torch.nonzero(wv.abs().sum(0)).flatten()]
        if bit_coords:
            lo, hi = h1.lo[:, bit_coords], h1.hi[:, bit_coords]
            b = torch.round(h1.m[:, bit_coords])
            dist = torch.maximum(balls._up(hi - b), balls._up(b - lo))
            ok = ((b == 0) | (b == 1)) & (dist <= BIT_TOLERANCE)
            if not bool(ok.all()):
                i, j = (int(v) for v in torch.nonzero(~ok)[0])
                t, c, x = keys[i]
                raise NotAbstractable(
                    f"coordinate {bit_coords[j]} read by layer 2 is not a 0/1 bit at position {t}, counts {c}, token "
                    f"{x}: it lies in [{float(lo[i, j]):.6g}, {float(hi[i, j]):.6g}]; layer 2's input is then not a "
                    "function of counts of bits, and the check claims nothing")
            bits = b.to(torch.int64).numpy()
            err = float(dist.max())
            dist_max = dist.max(-1).values.numpy()
    return _Layer1(keys, index, h1, bits, bit_coords, err, dist_max)


def _block(sd: dict[str, torch.Tensor], i: int, x: Ball, vsum: Ball, positions: torch.Tensor) -> tuple[Ball, Ball]:
    """Block ``i`` (norm-free) at rows whose uniform attention sums V-applied values to ``vsum``, averaged
    over ``positions``: (the MLP's pre-activations, the block's output)."""
    p = f"blocks.{i}"
    attn = _divide_rows(vsum, positions).add_exact(sd[f"{p}.attn.v_proj.bias"])
    x = x + _linear(attn, sd[f"{p}.attn.o_proj.weight"], sd[f"{p}.attn.o_proj.bias"])
    pre = _linear(x, sd[f"{p}.mlp.fc_in.weight"], sd[f"{p}.mlp.fc_in.bias"])
    return pre, x + _linear(balls.relu(pre), sd[f"{p}.mlp.fc_out.weight"], sd[f"{p}.mlp.fc_out.bias"])


# ---- the check ---------------------------------------------------------------------------------------
Group = tuple[int, tuple[int, ...], int, tuple[int, ...]]


@dataclass
class AbstractEvaluation:
    """Rigorous log-probability bounds of one network for every group of prefixes up to T.

    Attributes:
        context: T.
        groups: the group keys (t, counts, last token id, z).
        lp_lo, lp_hi: (groups, |Σ| + 1) bounds of log q(a | u) for every prefix u of the group.
        layer1_states: reachable (t, counts, last token) evaluated.
        corner_evaluations / point_evaluations: layer-2 evaluations at box corners / single β.
        bits: coordinates layer 2 reads (as bits), and the largest distance of a bit from 0/1.
        seconds: wall time.
    """

    context: int
    alphabet: str
    groups: list[Group]
    index: dict[Group, int]
    lp_lo: np.ndarray
    lp_hi: np.ndarray
    layer1: _Layer1 = field(repr=False)
    corner_evaluations: int = 0
    point_evaluations: int = 0
    seconds: float = 0.0

    @property
    def bit_coords(self) -> list[int]:
        return self.layer1.bit_coords

    def bits_at(self, t: int, counts: tuple[int, ...], token: int) -> tuple[int, ...]:
        i = self.layer1.index[(t, counts, token)]
        return tuple(int(b) for b in self.layer1.bits[i])

    def successor(self, g: Group, y: int) -> Group:
        t, c, _x, z = g
        c2 = tuple(v + (1 if i == y else 0) for i, v in enumerate(c))
        b = self.bits_at(t + 1, c2, y)
        return (t + 1, c2, y, tuple(zi | bi for zi, bi in zip(z, b)))

    def group_of(self, prefix: str) -> Group:
        """The group of ``prefix`` (a word over the alphabet, |prefix| ≤ T)."""
        k = len(self.alphabet)
        ids = {s: i for i, s in enumerate(self.alphabet)}
        sos = self.layer1.keys[0][2]
        g: Group = (0, (0,) * k, sos, self.bits_at(0, (0,) * k, sos))
        for ch in prefix:
            g = self.successor(g, ids[ch])
        return g

    def certified_argmax(self, i: int) -> int | None:
        lo, hi = self.lp_lo[i], self.lp_hi[i]
        kk = int(np.argmax(lo))
        others = np.delete(hi, kk)
        return kk if lo[kk] > others.max() else None


def abstract_evaluate(net: Any, *, context: int | None = None, point_cap: int = POINT_CAP) -> AbstractEvaluation:
    """Rigorous bounds of ``net``'s log-probabilities at every prefix of length ≤ T (module docstring).

    Raises:
        NotAbstractable: a network outside the covered class, a layer-2 input that is not a bit, or
            more single-β evaluations than ``point_cap``.
    """
    why = why_not_abstractable(net)
    if why:
        raise NotAbstractable(f"the abstract-state check does not cover this network: {why}")
    t0 = time.perf_counter()
    cfg = net.config
    T = cfg.max_len - 1 if context is None else context
    if not 0 <= T <= cfg.max_len - 1:
        raise NotAbstractable(f"context {T} is beyond the network's {cfg.max_len - 1}")
    sd = {n: p.detach().to("cpu", torch.float64) for n, p in net.state_dict().items()}
    l1 = _layer1(net, sd, T)
    B = len(l1.bit_coords)
    W = T + 2  # stride of the flattened β index (every β_j ≤ T + 1)
    sos = cfg.sos_id
    k = len(cfg.alphabet)

    def flat(b: Sequence[int]) -> int:
        return sum(int(v) * W ** j for j, v in enumerate(b))

    # dynamic programming over all words: group → bitset of reachable flattened β
    b0 = tuple(int(v) for v in l1.bits[0])
    # and, per group, the largest accumulated distance of the bits from 0/1 along any path (rounded up)
    g0 = (0, (0,) * k, sos, b0)
    frontier: dict[Group, int] = {g0: 1 << flat(b0)}
    groups: dict[Group, int] = dict(frontier)
    errors: dict[Group, float] = {g0: float(l1.dist[0])}
    for t in range(T):
        nxt: dict[Group, int] = {}
        for g, reach in frontier.items():
            _tt, c, _x, z = g
            for y in range(k):
                c2 = tuple(v + (1 if i == y else 0) for i, v in enumerate(c))
                row = l1.index[(t + 1, c2, y)]
                b = tuple(int(v) for v in l1.bits[row]) if B else ()
                key = (t + 1, c2, y, tuple(zi | bi for zi, bi in zip(z, b)))
                nxt[key] = nxt.get(key, 0) | (reach << flat(b))
                if B:
                    e = math.nextafter(errors[g] + float(l1.dist[row]), math.inf)
                    if e > errors.get(key, -1.0):
                        errors[key] = e
        groups.update(nxt)
        frontier = nxt
    keys = list(groups)
    state_rows = torch.tensor([l1.index[(g[0], g[1], g[2])] for g in keys], dtype=torch.long)
    n_out = cfg.n_outputs
    if cfg.n_layers == 1 or B == 0:
        h = l1.h1[state_rows]
        if cfg.n_layers == 2:  # layer 2 reads nothing: its values are the bias alone
            zero = Ball.exact(torch.zeros(len(keys), cfg.n_heads * cfg.d_head, dtype=torch.float64))
            pos = torch.tensor([g[0] + 1 for g in keys], dtype=torch.float64)[:, None]
            _pre, h = _block(sd, 1, h, zero, pos)
        logits = _linear(h, sd["unembed.weight"], sd["unembed.bias"])
        lo, hi = _log_softmax(logits)
        corner_n, point_n = len(keys), 0
    else:
        corners: list[list[tuple[int, ...]]] = []
        for g in keys:
            corners.append(_corners(groups[g], B, W))
        rows, betas, owner = [], [], []
        for gi, cs in enumerate(corners):
            for bvec in cs:
                rows.append(int(state_rows[gi]))
                betas.append(bvec)
                owner.append(gi)
        errs = [errors[keys[o]] for o in owner]
        z_lo, z_hi, const = _evaluate2(sd, l1, rows, betas, [keys[o][0] for o in owner], owner, len(keys), n_out, errs)
        corner_n = len(rows)
        # groups whose signs change: every reachable β separately
        bad = [gi for gi in range(len(keys)) if not const[gi]]
        point_n = 0
        if bad:
            rows, betas, owner = [], [], []
            for gi in bad:
                for bvec in _points(groups[keys[gi]], B, W):
                    rows.append(int(state_rows[gi]))
                    betas.append(bvec)
                    owner.append(gi)
                if len(rows) > point_cap:
                    t, c, x, zz = keys[gi]
                    raise NotAbstractable(f"more than {point_cap} single-β evaluations needed (group t={t}, counts {c}, "
                                          f"flags {zz} has MLP units that change sign on its box)")
            p_lo, p_hi, _ = _evaluate2(sd, l1, rows, betas, [keys[o][0] for o in owner], owner, len(keys), n_out,
                                       [errors[keys[o]] for o in owner], points=True)
            for gi in bad:
                z_lo[gi], z_hi[gi] = p_lo[gi], p_hi[gi]
            point_n = len(rows)
        lo, hi = _log_softmax(Ball.from_bounds(z_lo, z_hi))
    return AbstractEvaluation(T, cfg.alphabet, keys, {g: i for i, g in enumerate(keys)}, lo.numpy(), hi.numpy(), l1,
                              corner_n, point_n, time.perf_counter() - t0)


def _log_softmax(z: Ball) -> tuple[torch.Tensor, torch.Tensor]:
    from constructions.enclosure import log_softmax_bounds

    return log_softmax_bounds(z)


def _corners(reach: int, B: int, W: int) -> list[tuple[int, ...]]:
    if B == 1:
        lo = (reach & -reach).bit_length() - 1
        hi = reach.bit_length() - 1
        return [(lo,)] if lo == hi else [(lo,), (hi,)]
    pts = _points(reach, B, W)
    los = [min(p[j] for p in pts) for j in range(B)]
    his = [max(p[j] for p in pts) for j in range(B)]
    return sorted(set(itertools.product(*[(a,) if a == b else (a, b) for a, b in zip(los, his)])))


def _points(reach: int, B: int, W: int) -> list[tuple[int, ...]]:
    out = []
    while reach:
        low = reach & -reach
        i = low.bit_length() - 1
        out.append(tuple((i // W ** j) % W for j in range(B)))
        reach ^= low
    return out


def _evaluate2(sd, l1: _Layer1, rows: list[int], betas: list[tuple[int, ...]], ts: list[int], owner: list[int],
               n_groups: int, n_out: int, errs: list[float], points: bool = False) -> tuple[torch.Tensor, torch.Tensor, list[bool]]:
    """Layer 2 and the unembedding at (layer-1 row, β) pairs; per group the hull of its rows' logit
    bounds and whether every MLP unit kept one sign over them."""
    r = torch.tensor(rows, dtype=torch.long)
    t = torch.tensor(ts, dtype=torch.float64)[:, None]
    beta = torch.tensor(betas, dtype=torch.float64)
    # |E| ≤ the largest sum of the bits' distances from 0/1 along a path into the group (per bit)
    err = torch.tensor(errs, dtype=torch.float64)[:, None].expand_as(beta)
    wv = sd["blocks.1.attn.v_proj.weight"][:, l1.bit_coords]
    vsum = Ball(beta, err.contiguous()).matmul_exact(wv.T.contiguous())
    pre, x = _block(sd, 1, l1.h1[r], vsum, t + 1.0)
    z = _linear(x, sd["unembed.weight"], sd["unembed.bias"])
    own = torch.tensor(owner, dtype=torch.long)
    z_lo = torch.full((n_groups, n_out), math.inf, dtype=torch.float64)
    z_hi = torch.full((n_groups, n_out), -math.inf, dtype=torch.float64)
    at = own[:, None].expand_as(z.lo)
    z_lo.scatter_reduce_(0, at, z.lo, "amin")
    z_hi.scatter_reduce_(0, at, z.hi, "amax")
    const = [True] * n_groups
    if not points:
        units = pre.shape[-1]
        on = (pre.lo >= 0).to(torch.int64)
        off = (pre.hi <= 0).to(torch.int64)
        n_rows = torch.zeros(n_groups, dtype=torch.int64).index_add_(0, own, torch.ones_like(own))
        all_on = torch.zeros(n_groups, units, dtype=torch.int64).index_add_(0, own, on) == n_rows[:, None]
        all_off = torch.zeros(n_groups, units, dtype=torch.int64).index_add_(0, own, off) == n_rows[:, None]
        single = n_rows == 1
        ok = single | (all_on | all_off).all(-1)
        const = ok.tolist()
    return z_lo, z_hi, const
