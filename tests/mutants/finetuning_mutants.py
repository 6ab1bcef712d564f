"""Mutants of the Proposition 3 lasting-effect, power-of-two and orthogonal-control checks (issue 18).

Each broken input runs through the same checker as its control.  The standard setup's checks are
cached per process (:func:`_standard_twin`, :func:`_orthogonal`): the pretrained θ and SGD from θ are
computed once (:func:`constructions.finetuning.theta_run`), so the catalogue stays fast."""

from __future__ import annotations

import functools
from dataclasses import replace

from tests.mutants.registry import constructed, mutant, verdict


@functools.lru_cache(maxsize=None)
def _standard_twin() -> str:
    """The control of the lasting-effect mutants: the real qk scaling on the standard setup."""
    from constructions import finetuning as ft
    from proofs.finetuning import standard_maps

    setup = ft.Proposition3Setup()
    model = ft.pretrained_model(setup)
    return verdict(lambda: ft.certify_twin("mutant", standard_maps(model)["qk"], model, setup))


@functools.lru_cache(maxsize=None)
def _orthogonal() -> str:
    """The control of the orthogonal-control mutants: the Hadamard basis change."""
    from constructions import finetuning as ft

    return verdict(lambda: ft.certify_orthogonal_control("mutant"))


@mutant("finetuning-key-factor-blind-at-two", "finetuning", "falsified")
def finetuning_key_factor_blind(mutate: bool) -> str:
    """A query/key scaling with key factor 2/alpha^2 instead of 1/alpha: right at alpha = 2 (2/4 = 1/2), wrong
    at alpha = 3 (2/9, scores times 2/3).  The mutant is the alpha = 3 case (enclosures certify another
    function); the control is alpha = 2, accepted by the enclosures and, all factors powers of two, with
    bitwise identical float passes."""
    from constructions.finetuning import certify_map_identity, key_factor_blind_qk_scaling
    from tests.mutants.torch_mutants import FT_LENGTH, _ft_model

    m = _ft_model()
    pmap = key_factor_blind_qk_scaling(m, 1, 0, 3.0 if mutate else 2.0)
    return verdict(lambda: certify_map_identity("mutant", pmap, m, FT_LENGTH))


@mutant("finetuning-lasting-same-function", "finetuning", "falsified")
def finetuning_lasting_same_function(mutate: bool) -> str:
    """The permutation control run through the scaling path (marked not gradient-equivariant): its twins
    converge to the same function, so no OOD prefix reaches TV >= Delta, and the enclosures of every prefix
    certify it: falsified (a converged pair that agrees off the data shows no lasting effect).  Control:
    the qk scaling."""
    if not mutate:
        return _standard_twin()
    from constructions import finetuning as ft
    from proofs.finetuning import standard_maps

    setup = ft.Proposition3Setup()
    model = ft.pretrained_model(setup)
    perm = replace(standard_maps(model)["permutation"], gradient_equivariant=False)
    return verdict(lambda: ft.certify_twin("mutant", perm, model, setup))


@mutant("finetuning-lasting-not-converged", "finetuning", "unknown")
def finetuning_lasting_not_converged(mutate: bool) -> str:
    """A step cap of 5 SGD steps: the loss is nowhere near its floor, so the lasting effect is unknown (not
    converged, with the reason), never verified from a transient gap.  Control: the standard cap."""
    if not mutate:
        return _standard_twin()
    from constructions import finetuning as ft
    from proofs.finetuning import standard_maps

    setup = replace(ft.Proposition3Setup(), max_steps=5)
    model = ft.pretrained_model(setup)
    return verdict(lambda: ft.certify_twin("mutant", standard_maps(model)["qk"], model, setup))


@mutant("finetuning-orthogonal-coordinatewise", "finetuning", "falsified")
def finetuning_orthogonal_coordinatewise(mutate: bool) -> str:
    """The orthogonal control with a signed permutation for U: orthogonal, but coordinatewise, so Adam is
    equivariant too and shows no gap (every prefix's TV certified below the margin): the pipeline does not
    separate the optimisers.  Control: the dense Hadamard U."""
    if not mutate:
        return _orthogonal()
    from constructions import finetuning as ft

    d = ft.Proposition3Setup().orthogonal_config.d_model
    signed = tuple(tuple((-1.0 if i % 3 == 0 else 1.0) if j == (i * 5 + 3) % d else 0.0 for j in range(d)) for i in range(d))
    return verdict(lambda: ft.certify_orthogonal_control("mutant", matrix=signed))


@mutant("finetuning-orthogonal-not-orthogonal", "finetuning", "refused:InvalidReparametrisation")
def finetuning_orthogonal_not_orthogonal(mutate: bool) -> str:
    """A 'rotation' by 2U (not orthogonal: the reads would need U^-T, not U^T): refused when the map is built.
    Control: U."""
    if not mutate:
        return _orthogonal()
    from constructions import finetuning as ft

    u = ft.hadamard(ft.Proposition3Setup().orthogonal_config.d_model)
    return verdict(lambda: ft.certify_orthogonal_control("mutant", matrix=tuple(tuple(2 * x for x in row) for row in u)))


@mutant("finetuning-orthogonal-with-layernorm", "finetuning", "refused:InvalidReparametrisation")
def finetuning_orthogonal_with_layernorm(mutate: bool) -> str:
    """The residual rotation asked of a pre-LN model: LayerNorm's centring and gain act coordinatewise, so
    the rotation is no symmetry there; refused.  Control: the LayerNorm-free model."""
    if not mutate:
        return _orthogonal()
    from constructions import finetuning as ft

    setup = ft.Proposition3Setup()
    setup = replace(setup, orthogonal_config=replace(setup.orthogonal_config, norm="pre"))
    return verdict(lambda: ft.certify_orthogonal_control("mutant", setup))


@mutant("finetuning-setup-zero-delta", "finetuning", "refused:InvalidTrainingOption")
def finetuning_setup_zero_delta(mutate: bool) -> str:
    """A lasting-effect tolerance delta = 0 (no loss is within 0 of its floor): refused when the setup is
    built, before any training.  Control: the default delta."""
    from constructions import finetuning as ft

    return constructed(lambda: ft.Proposition3Setup(delta=0.0) if mutate else ft.Proposition3Setup())
