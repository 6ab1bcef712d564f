"""Mutants (issue 18): the per-block symbolic proof (``prop-3-blocks``) fed a broken parameter map.

Each control is the real constructor's map from :mod:`constructions.finetuning.maps`; each mutant
changes one factor of it, so the proof — which reads its factors from the map's steps — must name the
identity that no longer reduces to zero.  Maps are built for the standard Proposition 3 configuration
(cheap: no model, no training).
"""

from __future__ import annotations

from dataclasses import replace

from tests.mutants.registry import mutant, verdict

ALPHA = 2.5


def _config():
    from constructions import finetuning as ft

    return ft.Proposition3Setup().config


def _prove(pmap) -> str:
    from proofs.prop3_blocks import check_blocks

    return verdict(lambda: check_blocks({"map": pmap}))


def _with_factor(pmap, pick, factor):
    """``pmap`` with the factor of every step ``pick(step)`` selects replaced by ``factor``."""
    steps = tuple(replace(s, factor=factor) if pick(s) else s for s in pmap.steps)
    return replace(pmap, steps=steps, name=f"broken {pmap.name}")


@mutant("blocks-wrong-inverse-qk", "finetuning", "falsified")
def blocks_wrong_inverse_qk(mutate: bool) -> str:
    """maps.wrong_inverse_qk_scaling: W_Q, b_Q scaled by alpha but W_K, b_K by 1/alpha^2 instead of 1/alpha:
    the score identity keeps a factor 1/alpha."""
    from constructions import finetuning as ft

    make = ft.wrong_inverse_qk_scaling if mutate else ft.qk_scaling
    return _prove(make(_config(), 1, 0, ALPHA))


@mutant("blocks-one-sided-mlp", "finetuning", "falsified")
def blocks_one_sided_mlp(mutate: bool) -> str:
    """An MLP scaling with W_1 and b_1 multiplied by alpha but W_2 left as it is: the MLP output keeps a
    factor alpha."""
    from constructions import finetuning as ft

    good = ft.mlp_scaling(_config(), 0, ALPHA)
    bad = replace(good, steps=tuple(s for s in good.steps if "fc_out" not in s.parameter), name="one-sided mlp")
    return _prove(bad if mutate else good)


@mutant("blocks-vo-uninverted-output", "finetuning", "falsified")
def blocks_vo_uninverted_output(mutate: bool) -> str:
    """A vo scaling whose W_O columns are multiplied by alpha instead of 1/alpha: the head output keeps a
    factor alpha^2."""
    from constructions import finetuning as ft

    good = ft.vo_scaling(_config(), 0, 1, ALPHA)
    bad = _with_factor(good, lambda s: "o_proj" in s.parameter, ALPHA)
    return _prove(bad if mutate else good)


@mutant("blocks-mlp-bias-unscaled", "finetuning", "falsified")
def blocks_mlp_bias_unscaled(mutate: bool) -> str:
    """An MLP scaling that forgets b_1 (W_1 by alpha, W_2 by 1/alpha, b_1 unchanged): the pre-activation is
    no longer a multiple of the old one, so the ReLU kink moves."""
    from constructions import finetuning as ft

    good = ft.mlp_scaling(_config(), 1, ALPHA)
    bad = replace(good, steps=tuple(s for s in good.steps if "fc_in.bias" not in s.parameter), name="mlp without b1")
    return _prove(bad if mutate else good)
