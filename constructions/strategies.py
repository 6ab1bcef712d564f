"""Public hypothesis strategies for the objects above ``theory``: GINC-style HMM mixtures and small
seeded transformers.  They complement :mod:`theory.strategies` (exact data, models, languages) and
are importable from anyone's test suite::

    from hypothesis import given
    from constructions.strategies import hmm_mixtures, transformers

    @given(transformers(alphabet="ab"))
    def test_rows_are_distributions(net): ...

Both draw a handful of small integers (sizes, a seed), so a failing example shrinks to the smallest
configuration and seed 0 and is rebuilt deterministically from them.
"""

from __future__ import annotations

from fractions import Fraction

from hypothesis import strategies as st

__all__ = ["ginc_configs", "hmm_mixtures", "transformer_configs", "transformers"]


@st.composite
def ginc_configs(draw, max_vocab: int = 4, max_doc: int = 6, positive: bool = True):
    """Tiny :class:`~constructions.icl.GINCConfig` s: 1-2 entities, 2-3 properties, a vocabulary of
    3..max_vocab tokens, documents of 4..max_doc tokens.  ``positive`` keeps η > 0 (every transition
    strictly positive, as Proposition 2 needs); ``positive=False`` also draws η = 0."""
    from constructions.icl import GINCConfig

    etas = [Fraction(1, 100), Fraction(1, 3)] + ([] if positive else [Fraction(0)])
    return GINCConfig.tiny(
        seed=draw(st.integers(0, 10_000)), n_entities=draw(st.integers(1, 2)), n_properties=draw(st.integers(2, 3)),
        vocab_size=draw(st.integers(3, max(3, max_vocab))), n_pretrain_concepts=draw(st.integers(1, 2)),
        n_heldout_concepts=1, doc_length=draw(st.integers(4, max(4, max_doc))),
        weight_bits=draw(st.sampled_from([3, 10])), eta=draw(st.sampled_from(etas)),
        entity_stickiness=draw(st.sampled_from([Fraction(9, 10), Fraction(1, 2)])))


def hmm_mixtures(max_vocab: int = 4, max_doc: int = 6, positive: bool = True) -> st.SearchStrategy:
    """Exact mixtures of HMMs (:class:`~constructions.icl.MixtureHMM`) built from :func:`ginc_configs`."""
    from constructions.icl import build_ginc

    return ginc_configs(max_vocab, max_doc, positive).map(build_ginc)


@st.composite
def transformer_configs(draw, alphabet: str = "ab", max_layers: int = 2, max_len: int = 8, dtype: str = "float64"):
    """Small :class:`~constructions.transformer.TransformerConfig` s over ``alphabet``: 1..max_layers
    layers, 1-2 heads of width 2-4, d_model 4-16, any norm placement and activation, a drawn seed."""
    from constructions.transformer import ACTIVATIONS, NORMS, TransformerConfig

    return TransformerConfig(
        alphabet=alphabet, d_model=draw(st.sampled_from([4, 8, 16])), n_heads=draw(st.integers(1, 2)),
        d_head=draw(st.sampled_from([2, 4])), d_mlp=draw(st.sampled_from([4, 8, 16])),
        n_layers=draw(st.integers(1, max_layers)), max_len=max_len, norm=draw(st.sampled_from(NORMS)),
        activation=draw(st.sampled_from(ACTIVATIONS)), dtype=dtype, seed=draw(st.integers(0, 2**16)))


def transformers(alphabet: str = "ab", max_layers: int = 2, max_len: int = 8, dtype: str = "float64") -> st.SearchStrategy:
    """Seeded :class:`~constructions.transformer.DecoderTransformer` s from :func:`transformer_configs`
    (deterministic: the same config gives the same weights), in eval mode."""
    from constructions.transformer import DecoderTransformer

    return transformer_configs(alphabet, max_layers, max_len, dtype).map(lambda cfg: DecoderTransformer(cfg).eval())
