"""Typed errors.  Each names the offending value; all derive from :class:`NonidError` (a ValueError)."""

from __future__ import annotations

from typing import Callable


class NonidError(ValueError):
    """Base class of every error `nonid` raises on bad input."""


class InvalidAlphabet(NonidError):
    """An alphabet with repeated, reserved or non-single-character symbols."""


class UnknownToken(NonidError):
    """A token (or a sequence containing one) that is not in the alphabet."""


class InvalidDistribution(NonidError):
    """Probabilities that are negative, NaN, inexact, or do not sum to one."""


class EmptySupport(InvalidDistribution):
    """A data distribution with no sequence of positive probability."""


class OffSupport(NonidError):
    """A data conditional asked for at a prefix u with P(u) = 0, where it is undefined."""


class UndefinedPrefix(NonidError):
    """A tabular model asked for a prefix it has no row for (and no default)."""


class InvalidLanguage(NonidError):
    """A language or rule that is unknown, malformed, or empty."""


class InvalidPrompt(NonidError):
    """A prompt that is malformed or in the wrong class (e.g. an ID prompt passed as OOD)."""


class UnknownCheck(NonidError):
    """A proof-check name that matches nothing in the registry."""


class InvalidBudget(NonidError):
    """A token or node budget that is negative, not an int, or otherwise unusable."""


class InvalidModelConfig(NonidError):
    """A transformer configuration with a bad size, name or type (e.g. ``n_heads = 0``, ``norm = 'mid'``)."""


class InputTooLong(NonidError):
    """A sequence longer than a model's positional range (``max_len`` positions, SOS included)."""


class InvalidReparametrisation(NonidError):
    """A parameter map that is not well defined on the model it is given: a scale α that is not a
    finite positive number, a layer or head index out of range, something that is not a permutation,
    or a model whose shapes differ from the ones the map was built for."""


class NotPositivelyHomogeneous(InvalidReparametrisation):
    """An MLP rescaling asked of a model whose activation σ does not satisfy σ(αz) = ασ(z) for α > 0
    (only ReLU does among the activations offered), so the rescaled model would be a different function."""


class InvalidArtifact(NonidError):
    """A saved counterexample directory that cannot be trusted: a file missing, truncated, or whose
    SHA-256 differs from the certificate's, or a config that disagrees with the weights."""


class InvalidCertificate(NonidError):
    """A certificate (or its JSON) that is malformed: not JSON, another format version, a missing
    field, or a field of the wrong type or value (an unknown status or method, a non-verified
    certificate without a reason)."""


class InvalidModel(NonidError):
    """An object passed where an AR model is expected that is not one: no ``alphabet`` of type
    :class:`~theory.alphabet.Alphabet`, no callable ``next_token``, or an alphabet that changed after
    the model's rows were first read.  (A bad *row* is an :class:`InvalidDistribution`.)"""


class InvalidProperty(NonidError):
    """A property φ that returned something other than an exact number or a rational bracket: NaN,
    None, a float, a bool, a string, an interval with non-rational endpoints."""


class BudgetExceeded(NonidError):
    """Exact arithmetic that would exceed its work budget (:class:`~theory.exact.ExactBudget`): an
    integer too long to factorise, a composite cofactor beyond the factoriser's bound, too many large
    cofactors or too many distinct log terms.  Certificate paths answer ``unknown`` instead."""


class InvalidSolverOption(NonidError):
    """An option of an SMT lemma query (a hypothesis, a scope, a variant) that is not one of its values."""


class InvalidWitness(NonidError):
    """A witness record with a bad field: a name that is not a string, ε < 0, δ ≤ 0, an ε or δ that is
    not a finite exact number, or ``kl_tail_bounds`` that are not a pair of LogCombination or None."""


class OutsideDomain(NonidError):
    """An exact or rigorous arithmetic operation asked outside its domain: ln of a non-positive or
    non-finite number, ∞ − ∞, a −∞ or +∞ with no finite representation, an interval with lo > hi or a
    non-finite endpoint, a non-positive scale where a positive rational is needed."""


class InvalidHMM(NonidError):
    """A GINC configuration or explicit mixture-of-HMMs parameters that are malformed: a size or count
    out of range, an emission table of the wrong shape or with the delimiter in the wrong place, no concepts."""


class InapplicableOption(NonidError):
    """A case option (``n_max``, ``max_length``, ``ratio``, ``depth``) given to a rule-extrapolation case
    it does not apply to."""


class InvalidTrainingOption(NonidError):
    """A fine-tuning option out of its range: an unknown optimizer, a step count that is not an int ≥ 0,
    a learning rate that is not a finite number > 0."""


class InvalidConvention(NonidError):
    """An unknown convention name (:mod:`theory.conventions`: ``paper`` or ``published``)."""


class Interrupted(KeyboardInterrupt):
    """An interrupt that says how to pick the work up again (``"rerun with --resume: nonid …"``); the
    command line prints it after ``interrupted``.  Still a :class:`KeyboardInterrupt`: never a verdict."""


def one_line(error: BaseException) -> str:
    """The error's message on one line: a newline or other control character inside a value (a path,
    a name) is escaped, so a command line's refusal is always exactly one line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(error))


def exit_status(prog: str, call: Callable[[], int]) -> int:
    """Run a command-line body and turn what it raises into the project's exit statuses: a typed
    refusal is one line ``prog: …`` on stderr and 2, an interrupt ``prog: interrupted`` and 130 (never
    a verdict), a closed pipe 0."""
    import sys

    from theory.processes import interrupt_pending, remembered_sigint

    try:
        with remembered_sigint():
            status = call()
            if interrupt_pending():  # an interrupt Python swallowed (inside a finalizer): still an interrupt
                raise KeyboardInterrupt
        return status
    except NonidError as e:
        print(f"{prog}: " + one_line(e), file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        hint = str(e) if isinstance(e, Interrupted) else ""
        print(f"{prog}: interrupted" + (f"; {hint}" if hint else ""), file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
