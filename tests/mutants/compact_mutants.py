"""The compact compiler's side of the mutation catalogue (:mod:`constructions.compile.compact`, checked
by :mod:`constructions.compact_pair`): broken compact networks, each beside the correct pair.  Every
name starts with ``compact-``.

The control is the compact aⁿbⁿ pair for L3 at n ≤ 16 with context T = 34 (so that a^17 b^17, the
shortest OOD prompt the flag BIG decides, fits): its every-prefix certificate is ``verified``.
"""

from __future__ import annotations

from functools import lru_cache

from tests.mutants.registry import mutant, verdict

N, T = 16, 34


@lru_cache(maxsize=None)
def _case():
    from constructions.rule_extrapolation import build_case

    return build_case("L3", n_max=N)


def _net(role: str, **kw):
    from constructions.compile.compact import CompactConfig, compile_compact

    return compile_compact(_case().data, role, CompactConfig(context=T), **kw)[0]


def _every(q1, q2) -> str:
    from constructions.compact_pair import every_prefix_certificate

    return verdict(lambda: every_prefix_certificate(_case(), q1, q2, tolerance=1e-9, cross_length=10))


@mutant("compact-margin-too-small-for-T", "compact", "unknown")
def _margin(mutate: bool) -> str:
    """Steps scaled for T = 20 in a network run up to T = 34: beyond length 20 a count difference of 1
    no longer saturates its step, so BAD is not a 0/1 bit and the abstract-state check refuses."""
    return _every(_net("completer"), _net("violator", _design_context=20 if mutate else None))


@mutant("compact-forgotten-flag", "compact", "falsified")
def _flag(mutate: bool) -> str:
    """A violator without the flag 'an a after a b': it takes aba for a support prefix (counts 2, 1) and
    completes it to abab, which satisfies R1."""
    return _every(_net("completer"), _net("violator", _omit=("bad",) if mutate else ()))


@mutant("compact-violator-wrong-beyond-paper-prompts", "compact", "falsified")
def _big(mutate: bool) -> str:
    """A violator without BIG (kₐ > N): right on every paper prompt (length 8 < N) — the pair check on the
    paper's prompts verifies it — but a^17 b^17 looks like a support word to it and gets EOS, R1 holds."""
    return _every(_net("completer"), _net("violator", _omit=("big",) if mutate else ()))


@mutant("compact-unembedding-bias-shifted", "compact", "falsified")
def _bias(mutate: bool) -> str:
    """The completer's b logit raised by 3 everywhere: P(b | a^t) moves far beyond the tolerance."""
    import torch

    q1 = _net("completer")
    if mutate:
        with torch.no_grad():
            q1.unembed.bias[1] += 3.0
    return _every(q1, _net("violator"))


@mutant("compact-attention-not-uniform", "compact", "unknown")
def _attention(mutate: bool) -> str:
    """A query and a key weight set in layer 1: the head is no longer exactly uniform, the abstraction does
    not apply, and nothing is claimed."""
    import torch

    q1 = _net("completer")
    if mutate:
        with torch.no_grad():
            q1.blocks[0].attn.q_proj.weight[0, 0] = 1e-3
            q1.blocks[0].attn.k_proj.weight[0, 1] = 1e-3
    return _every(q1, _net("violator"))


@mutant("compact-layout-dependent-subclass", "compact", "unknown")
def _layout(mutate: bool) -> str:
    """A subclass whose forward shifts a logit in batches of more than one: not the stock network whose
    function the check encloses, so it is refused rather than checked in one layout."""
    from constructions.transformer import DecoderTransformer

    q1 = _net("completer")
    if mutate:
        class Layout(DecoderTransformer):
            def forward(self, tokens):
                z = super().forward(tokens)
                return z if tokens.shape[0] == 1 else z + 5.0 * (tokens[..., None] == 0)

        clever = Layout(q1.config)
        clever.load_state_dict(q1.state_dict())
        q1 = clever
    return _every(q1, _net("violator"))
