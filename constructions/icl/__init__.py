"""Proposition 2 (docs/theory.md §4): in-context learning is ε-non-identifiable, on an exact GINC-style
mixture of HMMs.

Pipeline (one module per stage)::

    config.GINCConfig ──► hmm.build_ginc ──► prompts.sample_prompts ──► evaluate (P, R on prompts)
         (named knobs)     (exact mixture)     (ICL format, labels)       (certified float forward)
                                                                      ──► surgery (M(A) exact)
                                                                      ──► witness (certificates)

* :mod:`~constructions.icl.forward` — the forward algorithm: batched float64 with a rigorous error
  bound, exact Fractions, brute force.
* :mod:`~constructions.icl.models` — P, R, the surgery Q and the mixture Q as exact AR models.
* :mod:`~constructions.icl.bounds` — the sympy proof of both KL bounds.
* the appendix curves are drawn by `benchmarks/icl_figures.py` (matplotlib stays out of `constructions`).
"""

from constructions.icl.bounds import SymbolicFact, prove_kl_bounds
from constructions.icl.config import XIE_EXAMPLE_LENGTHS, XIE_MAX_EXAMPLES, GINCConfig
from constructions.icl.evaluate import Masses, bayes_masses, bayes_masses_nested, example_masses, no_icl_masses_nested
from constructions.icl.forward import (
    FloatBoundViolated,
    ForwardTables,
    Scaled,
    brute_force_prefix_probability,
    exact_forward,
    exact_next_token_masses,
    exact_prefix_probability,
    relative_error_bound,
)
from constructions.icl.hmm import MixtureHMM, build_ginc, check_stochastic
from constructions.icl.models import (
    BayesPredictor,
    MixtureModel,
    NoICLModel,
    SurgeryModel,
    check_mixture_weight,
    check_surgery_weight,
    token_alphabet,
)
from constructions.icl.prompts import (
    ICLPromptSet,
    NestedPrompts,
    certified_argmax,
    check_prompt_shape,
    exact_label,
    icl_examples,
    max_examples,
    prompt_length,
    sample_prompts,
)
from constructions.icl.surgery import BoundaryRates, boundary_rates, format_mass, surgery_mass, surgery_mass_bound
from constructions.icl.witness import (
    CP_METHOD,
    Accuracy,
    ICLEvaluation,
    IIDPrompts,
    clopper_pearson,
    clopper_pearson_lower,
    clopper_pearson_upper,
    epsilon_grid,
    evaluate_icl,
    mixture_certificate,
    population_gap,
    sample_prompts_iid,
    smallest_surgery_n,
    surgery_certificate,
    surgery_kl_bound,
)

__all__ = [
    "SymbolicFact", "prove_kl_bounds", "XIE_EXAMPLE_LENGTHS", "XIE_MAX_EXAMPLES", "GINCConfig", "Masses",
    "bayes_masses", "bayes_masses_nested", "example_masses", "no_icl_masses_nested", "FloatBoundViolated",
    "ForwardTables", "Scaled", "brute_force_prefix_probability", "exact_forward", "exact_next_token_masses",
    "exact_prefix_probability", "relative_error_bound", "MixtureHMM", "build_ginc", "check_stochastic",
    "BayesPredictor", "MixtureModel", "NoICLModel", "SurgeryModel", "check_mixture_weight", "check_surgery_weight",
    "token_alphabet", "NestedPrompts", "ICLPromptSet", "certified_argmax", "check_prompt_shape", "exact_label",
    "icl_examples", "max_examples", "prompt_length", "sample_prompts", "BoundaryRates", "boundary_rates",
    "format_mass", "surgery_mass", "surgery_mass_bound", "Accuracy", "ICLEvaluation", "epsilon_grid", "evaluate_icl",
    "mixture_certificate", "smallest_surgery_n", "surgery_certificate", "surgery_kl_bound", "CP_METHOD", "IIDPrompts",
    "clopper_pearson", "clopper_pearson_lower", "clopper_pearson_upper", "population_gap", "sample_prompts_iid",
]
