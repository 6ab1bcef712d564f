"""`theory`: exact objects of docs/theory.md — alphabets, AR models, data distributions, the prefix trie,
chain-rule losses, languages and prompt sets, witnesses and certificates.  Importing it is cheap: sympy, mpmath, networkx and z3
are imported only by the functions that use them."""

from theory.alphabet import EOS, SOS, Alphabet
from theory.certificate import Certificate, Status
from theory.data import ConditionalDistribution, DataDistribution, FiniteDistribution, anbn_geometric
from theory.errors import (
    BudgetExceeded,
    EmptySupport,
    InapplicableOption,
    InputTooLong,
    InvalidAlphabet,
    InvalidBudget,
    InvalidDistribution,
    InvalidHMM,
    InvalidLanguage,
    InvalidModel,
    InvalidModelConfig,
    InvalidPrompt,
    InvalidProperty,
    InvalidReparametrisation,
    InvalidSolverOption,
    InvalidTrainingOption,
    InvalidWitness,
    NonidError,
    NotPositivelyHomogeneous,
    OffSupport,
    OutsideDomain,
    UndefinedPrefix,
    UnknownCheck,
    UnknownToken,
)
from theory.exact import DEFAULT_EXACT_BUDGET, ExactBudget, FractionInterval, LogCombination, LogInterval
from theory.languages import LANGUAGES, Language, get_language
from theory.losses import (
    cross_entropy,
    entropy,
    kl_by_enumeration,
    kl_contributions,
    kl_divergence,
    padded_per_token,
    per_token,
)
from theory.models import (
    ARModel,
    FunctionModel,
    PatchedModel,
    SupportExtension,
    TabularModel,
    ValidatedModel,
    copies_support,
    sequence_probability,
    validated,
)
from theory.probability import NextTokenDistribution
from theory.prompts import PromptSet, paper_prompts, split_prompts
from theory.trie import prefix_trie
from theory.witness import Witness, check_witness

__all__ = [
    "EOS", "SOS", "Alphabet", "Certificate", "Status", "ConditionalDistribution", "DataDistribution",
    "FiniteDistribution", "anbn_geometric", "EmptySupport", "InvalidAlphabet", "InvalidDistribution",
    "InvalidLanguage", "InvalidPrompt", "NonidError", "OffSupport", "UndefinedPrefix", "UnknownToken",
    "InputTooLong", "InvalidBudget", "InvalidModelConfig", "InvalidReparametrisation", "NotPositivelyHomogeneous",
    "UnknownCheck", "LANGUAGES", "Language", "get_language", "PromptSet", "paper_prompts", "split_prompts",
    "FractionInterval", "LogCombination", "LogInterval", "cross_entropy", "entropy", "kl_by_enumeration",
    "kl_contributions", "kl_divergence", "padded_per_token", "per_token", "ARModel", "FunctionModel",
    "PatchedModel", "SupportExtension", "TabularModel", "sequence_probability", "NextTokenDistribution",
    "prefix_trie", "Witness", "check_witness",
    "BudgetExceeded", "InvalidModel", "InvalidProperty", "InvalidSolverOption", "DEFAULT_EXACT_BUDGET", "ExactBudget", "ValidatedModel",
    "InapplicableOption", "InvalidHMM", "InvalidTrainingOption", "InvalidWitness", "OutsideDomain",
    "copies_support", "validated",
]
