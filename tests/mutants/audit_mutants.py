"""The audit side of the mutation catalogue (:mod:`empirical.audit`): networks a careless caller or a
clever network would hand ``nonid audit``, each beside the saturated control it breaks.  Every name
starts with ``audit-`` (``pytest tests/mutants -k audit``).

The control is the compiled aⁿbⁿ completer (n ≤ 3) of :mod:`tests.mutants.shared`, audited on its own
data at ε = 1e-3 nats per token: ``verified``.  Each mutant changes one thing and must get the verdict
registered with it.
"""

from __future__ import annotations

from tests.mutants.registry import mutant, verdict
from tests.mutants.shared import anbn_pair

EPSILON = 1e-3


def _audit(network, *, tokens: str = "a=0,b=1,eos=2,bos=3,pad=4", epsilon: float = EPSILON):
    from constructions.export import load_case
    from empirical.adapter import NetworkModel
    from empirical.audit import audit, audit_certificate
    from theory.languages import get_language
    from theory.tokenmap import parse_token_map

    case = load_case("anbn", 3)

    def run():
        model = NetworkModel(network, parse_token_map(tokens, "ab"), 17)
        return audit_certificate(audit(model, case.data, language=get_language("L3"), epsilon=epsilon))

    return verdict(run)


@mutant("audit-float-callable", "audit", "unknown")
def _float_callable(mutate: bool) -> str:
    """The saturated network behind a plain Python callable: one float evaluation, never verified."""
    net = anbn_pair().q1
    return _audit((lambda ids: net(ids)) if mutate else net)


@mutant("audit-batch-layout-network", "audit", "unknown")
def _layout(mutate: bool) -> str:
    """A subclass that is right on a batch of one and shifts a logit in larger batches: not a network
    the evaluator encloses, so float intervals and unknown (the exhaustive check in one batch layout
    proves nothing about another)."""
    from constructions.transformer import DecoderTransformer

    net = anbn_pair().q1

    class Layout(DecoderTransformer):
        def forward(self, tokens):
            z = super().forward(tokens)
            return z if tokens.shape[0] == 1 else z + 5.0 * (tokens[..., None] == 0)

    clever = Layout(net.config)
    clever.load_state_dict(net.state_dict())
    return _audit(clever if mutate else net)


@mutant("audit-unembedding-bias-shifted", "audit", "falsified")
def _shifted(mutate: bool) -> str:
    """The unembedding bias of b raised by 0.5: a small change of the weights, a certified gap above eps."""
    import torch

    net = anbn_pair().q1.clone()
    if mutate:
        with torch.no_grad():
            net.unembed.bias[1] += 0.5
    return _audit(net)


@mutant("audit-mass-on-an-unmapped-id", "audit", "falsified")
def _leak(mutate: bool) -> str:
    """The saturated network read through a token map whose EOS is an output the data never uses and
    the network gives mass elsewhere: mass off Σ ∪ {EOS} counts against the full softmax (here: EOS
    mapped to the b output, so the real EOS mass leaks)."""
    if not mutate:
        return _audit(anbn_pair().q1)
    from constructions.transformer import DecoderTransformer, TransformerConfig

    cfg = anbn_pair().q1.config
    wide = DecoderTransformer(TransformerConfig(**{**cfg.to_dict(), "alphabet": "abc"}))
    import torch

    with torch.no_grad():  # copy every weight; the new output row 'c' (id 2) gets the EOS row, EOS (id 3) a copy too
        src = anbn_pair().q1.state_dict()
        state = wide.state_dict()
        for k, v in src.items():
            if k == "token_embedding.weight":
                state[k][[0, 1, 3, 4, 5]] = v  # a, b, EOS, SOS, PAD of "abc" take the rows of a, b, EOS, SOS, PAD
            elif k.startswith("unembed."):
                state[k][[0, 1, 2]] = v  # a, b, c ← a, b, EOS of the pair
                state[k][3] = v[2]  # EOS of "abc" as likely as c: half the end-of-word mass leaks onto c
            else:
                state[k].copy_(v)
        wide.load_state_dict(state)
    return _audit(wide, tokens="a=0,b=1,eos=3,bos=4,pad=5")


@mutant("audit-token-map-two-symbols-one-id", "audit", "refused:UnknownToken")
def _two_on_one(mutate: bool) -> str:
    """A token map that sends a and b to one id is refused, never audited."""
    return _audit(anbn_pair().q1, tokens="a=0,b=0,eos=2,bos=3" if mutate else "a=0,b=1,eos=2,bos=3,pad=4")
