"""The fine-tuning task: pretraining and fine-tuning words and the OOD horizon (:class:`FineTuningTask`),
and the standard one, aⁿbⁿ → aⁿbⁿaⁿ (:func:`anbn_to_anbnan`)."""

from __future__ import annotations

from dataclasses import dataclass

from theory.languages import block_words


def anbn_words(n_max: int) -> tuple[str, ...]:
    """aⁿbⁿ for n = 1..n_max."""
    return block_words("ab", n_max)


def anbnan_words(n_max: int) -> tuple[str, ...]:
    """aⁿbⁿaⁿ for n = 1..n_max."""
    return block_words("aba", n_max)


@dataclass(frozen=True)
class FineTuningTask:
    """Fine-tuning data (uniform over ``words``) and where to look for OOD behaviour.

    Attributes:
        name: for reports.
        pretrain: the words the starting model was trained on (uniform), or empty.
        words: the fine-tuning words.
        ood_length: OOD prefixes are the words over Σ of length ≤ ood_length that are not prefixes of
            any fine-tuning word (P(u) = 0).
    """

    name: str
    pretrain: tuple[str, ...]
    words: tuple[str, ...]
    ood_length: int

    def support_prefixes(self) -> frozenset[str]:
        return frozenset(w[:i] for w in self.words for i in range(len(w) + 1))


def anbn_to_anbnan(n_max: int = 3, ood_length: int = 10) -> FineTuningTask:
    """Pretrain on aⁿbⁿ (n ≤ n_max + 1), fine-tune on aⁿbⁿaⁿ (n ≤ n_max)."""
    return FineTuningTask(f"a^n b^n (n<={n_max + 1}) -> a^n b^n a^n (n<={n_max})", anbn_words(n_max + 1),
                          anbnan_words(n_max), ood_length)
