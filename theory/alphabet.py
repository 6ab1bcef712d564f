"""Alphabets Σ with the reserved markers EOS (predicted, ends a sequence) and SOS (input only).

A token is one character; a sequence is a ``str`` over the alphabet.  The token-id layout of every
network (symbols, then EOS, SOS, PAD) is defined once, on :class:`Alphabet` (``eos_id`` …).  That keeps prefixes readable
(``"aab"``) and makes the prefix trie cheap.  EOS and SOS are multi-character strings, so they can
never collide with a symbol.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product
from typing import Iterator

from theory.errors import InvalidAlphabet, UnknownToken

EOS = "<eos>"
SOS = "<sos>"


@dataclass(frozen=True)
class Alphabet:
    """A finite, ordered alphabet Σ.  ``Alphabet("ab")`` has symbols ``('a', 'b')``.

    The order matters: it is the order of rows in tables, of tie-breaks in greedy decoding, and of
    enumeration.  EOS comes after every symbol in :attr:`outcomes`.

    Raises:
        InvalidAlphabet: empty, repeated symbols, a symbol that is not one character, or whitespace.
    """

    symbols: tuple[str, ...]

    def __init__(self, symbols: str | tuple[str, ...] | list[str]) -> None:
        if not isinstance(symbols, (str, tuple, list)):
            raise InvalidAlphabet(f"alphabet {symbols!r} is not a string, tuple or list of symbols")
        syms = tuple(symbols)
        if not syms:
            raise InvalidAlphabet("alphabet is empty")
        for s in syms:
            if not isinstance(s, str) or len(s) != 1:
                raise InvalidAlphabet(f"alphabet symbol {s!r} is not a single character")
            if s.isspace():
                raise InvalidAlphabet(f"alphabet symbol {s!r} is whitespace")
        seen: set[str] = set()
        for s in syms:
            if s in seen:
                raise InvalidAlphabet(f"alphabet symbol {s!r} is repeated in {''.join(syms)!r}")
            seen.add(s)
        object.__setattr__(self, "symbols", syms)

    @property
    def outcomes(self) -> tuple[str, ...]:
        """Σ ∪ {EOS}: the values a next-token distribution ranges over, EOS last."""
        return self.symbols + (EOS,)

    # -- the one token-id layout ------------------------------------------------------------------
    # Every network of the project (constructions.transformer.TransformerConfig, empirical.data.Vocab)
    # reads its ids from here: symbols 0 … k−1 in alphabet order, then EOS (k), SOS (k+1), PAD (k+2).
    # Outputs are the first k + 1 ids, i.e. :attr:`outcomes` in order; SOS and PAD are input only.
    @property
    def eos_id(self) -> int:
        """The id of EOS: ``len(self)`` (after every symbol, as in :attr:`outcomes`)."""
        return len(self.symbols)

    @property
    def sos_id(self) -> int:
        """The id of SOS (input only): ``len(self) + 1``."""
        return len(self.symbols) + 1

    @property
    def pad_id(self) -> int:
        """The id of PAD (input only): ``len(self) + 2``."""
        return len(self.symbols) + 2

    @property
    def n_input_ids(self) -> int:
        """Input vocabulary size: the symbols, EOS, SOS and PAD (``len(self) + 3``)."""
        return len(self.symbols) + 3

    @property
    def n_output_ids(self) -> int:
        """Output vocabulary size: the symbols and EOS (``len(self) + 1``), in :attr:`outcomes` order."""
        return len(self.symbols) + 1

    def token_ids(self, word: str) -> list[int]:
        """The ids of ``word``'s symbols (symbol i of the alphabet has id i).

        Raises:
            UnknownToken: ``word`` has a token outside the alphabet (named with its position).
        """
        index = {s: i for i, s in enumerate(self.symbols)}
        try:
            return [index[c] for c in word]
        except (KeyError, TypeError):
            self.check_sequence(word, "word")  # raises, naming the bad token
            raise

    def __len__(self) -> int:
        return len(self.symbols)

    def __iter__(self) -> Iterator[str]:
        return iter(self.symbols)

    def __contains__(self, token: object) -> bool:
        return token in self.symbols

    def __str__(self) -> str:
        return "".join(self.symbols)

    def check_sequence(self, seq: str, what: str = "sequence") -> str:
        """Return ``seq`` unchanged if every token is in Σ.

        Raises:
            UnknownToken: naming the first bad token and its position.
        """
        if not isinstance(seq, str):
            raise UnknownToken(f"{what} {seq!r} is not a string of tokens")
        for i, t in enumerate(seq):
            if t not in self.symbols:
                raise UnknownToken(
                    f"{what} {seq!r} has token {t!r} at position {i}, not in alphabet {str(self)!r}"
                )
        return seq

    def check_outcome(self, token: str) -> str:
        """Return ``token`` if it is in Σ ∪ {EOS}; raise :class:`UnknownToken` otherwise."""
        if token != EOS and token not in self.symbols:
            raise UnknownToken(f"token {token!r} is not in alphabet {str(self)!r} or EOS")
        return token

    def words(self, length: int) -> Iterator[str]:
        """All |Σ|^length words of exactly ``length`` tokens, in lexicographic (alphabet) order."""
        for w in product(self.symbols, repeat=length):
            yield "".join(w)

    def words_up_to(self, max_length: int) -> Iterator[str]:
        """All words of length 0..max_length, shortest first."""
        for n in range(max_length + 1):
            yield from self.words(n)
