"""Token maps: which id a network gives each symbol, EOS, BOS and PAD (torch-free; the command line
reads one before anything heavy is imported).

A word ``x`` is fed to a network as ``[BOS, x₁ … xₙ, PAD …]`` (:meth:`TokenMap.encode`); its outputs at
the ids of Σ ∪ {EOS} (:attr:`TokenMap.outcome_ids`) are the model's next-token scores.  BOS is only
ever fed and EOS only ever predicted, so the two may share an id (GPT-2's ``<|endoftext|>``); PAD
only fills a batch after a word (causal attention never lets it reach the word) and defaults to the
EOS id.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

from theory.alphabet import Alphabet
from theory.errors import InputTooLong, UnknownToken
from theory.validation import check_int

if TYPE_CHECKING:
    import torch

SPECIAL = ("eos", "bos", "pad")
"""Token-map names besides the symbols."""


@dataclass(frozen=True)
class TokenMap:
    """The ids a network gives the alphabet's symbols (in the alphabet's order), EOS, BOS and PAD.

    Distinct symbols have distinct ids, and no symbol shares an id with EOS or BOS.  EOS and BOS may
    share one (GPT-2's ``<|endoftext|>`` is both): BOS is only ever fed, EOS only ever predicted.

    Raises:
        UnknownToken: an id that is not a non-negative int, two symbols on one id, a symbol on the EOS
            or BOS id.
    """

    alphabet: Alphabet
    symbols: tuple[int, ...]
    eos: int
    bos: int
    pad: int

    def __post_init__(self) -> None:
        ab = self.alphabet
        if not isinstance(ab, Alphabet):
            raise UnknownToken(f"token map alphabet must be an Alphabet, got {type(ab).__name__}")
        if not isinstance(self.symbols, tuple):
            raise UnknownToken(f"token map symbol ids must be a tuple, got {type(self.symbols).__name__}")
        if len(self.symbols) != len(ab):
            raise UnknownToken(f"token map gives {len(self.symbols)} symbol ids for the {len(ab)} symbols of {str(ab)!r}")
        names = [*ab.symbols, "eos", "bos", "pad"]
        for name, v in zip(names, (*self.symbols, self.eos, self.bos, self.pad)):
            check_int(v, f"token id of {name!r} =", minimum=0, maximum=2**31 - 1, error=UnknownToken)
        seen: dict[int, str] = {}
        for name, v in zip(ab.symbols, self.symbols):
            if v in seen:
                raise UnknownToken(f"token map sends two symbols, {seen[v]!r} and {name!r}, to one id {v}")
            seen[v] = name
        for special in ("eos", "bos"):
            v = getattr(self, special)
            if v in seen:
                raise UnknownToken(f"token map sends symbol {seen[v]!r} and {special} to one id {v}")

    @property
    def outcome_ids(self) -> tuple[int, ...]:
        """The output ids of Σ ∪ {EOS}, in the order of :attr:`Alphabet.outcomes` (symbols, then EOS)."""
        return (*self.symbols, self.eos)

    def text(self) -> str:
        """``a=0,b=1,eos=2,bos=3,pad=2``: what :func:`parse_token_map` reads."""
        parts = [f"{s}={i}" for s, i in zip(self.alphabet.symbols, self.symbols)]
        return ",".join(parts + [f"eos={self.eos}", f"bos={self.bos}", f"pad={self.pad}"])

    def encode(self, words: Sequence[str], length: int | None = None) -> torch.Tensor:
        """``[BOS, ids of x…, PAD…]`` per word, shape (len(words), T) with T = ``length`` or 1 + the
        longest word.  Raises UnknownToken for a symbol outside the alphabet."""
        import torch

        if isinstance(words, str):
            raise UnknownToken(f"encode expects a sequence of words, got the single string {words!r}")
        index = dict(zip(self.alphabet.symbols, self.symbols))
        t = length if length is not None else 1 + max((len(w) for w in words), default=0)
        out = torch.full((len(words), t), self.pad, dtype=torch.long)
        out[:, 0] = self.bos
        for row, w in enumerate(words):
            self.alphabet.check_sequence(w, "word")
            if len(w) + 1 > t:
                raise InputTooLong(f"word of {len(w)} symbols does not fit in {t} positions")
            if w:
                out[row, 1:len(w) + 1] = torch.tensor([index[c] for c in w], dtype=torch.long)
        return out


_ENTRY = re.compile(r"^\s*([^=\s]+)\s*=\s*(\S+)\s*$")


def parse_token_map(text: str, alphabet: Alphabet | str) -> TokenMap:
    """Read ``a=0,b=1,eos=2,bos=3[,pad=4]`` (every symbol of ``alphabet``, ``eos`` and ``bos`` once;
    ``pad`` optional, default the EOS id).

    Raises:
        UnknownToken: a malformed entry, a name that is neither a symbol nor eos/bos/pad, a name given
            twice, a symbol or eos/bos missing, an id that is not a non-negative integer, two symbols on
            one id (each named).
    """
    ab = Alphabet(alphabet) if isinstance(alphabet, str) else alphabet
    if not isinstance(text, str) or not text.strip():
        raise UnknownToken(f"token map {text!r} is empty; write it as {example_map(ab)}")
    ids: dict[str, int] = {}
    for part in text.split(","):
        m = _ENTRY.match(part)
        if not m:
            raise UnknownToken(f"token map entry {part.strip()!r} is not NAME=ID (write it as {example_map(ab)})")
        name, raw = m.group(1), m.group(2)
        key = name.lower() if name.lower() in SPECIAL else name
        if key not in ab.symbols and key not in SPECIAL:
            raise UnknownToken(f"token map names {name!r}, which is neither a symbol of {str(ab)!r} nor eos/bos/pad")
        if key in ids:
            raise UnknownToken(f"token map gives {name!r} twice")
        if not re.fullmatch(r"[0-9]+", raw):
            raise UnknownToken(f"token map id {raw!r} of {name!r} is not a non-negative integer")
        ids[key] = int(raw)
    missing = [s for s in (*ab.symbols, "eos", "bos") if s not in ids]
    if missing:
        raise UnknownToken(f"token map misses {', '.join(map(repr, missing))} (write it as {example_map(ab)})")
    return TokenMap(ab, tuple(ids[s] for s in ab.symbols), ids["eos"], ids["bos"], ids.get("pad", ids["eos"]))


def example_map(ab: Alphabet) -> str:
    n = len(ab)
    return ",".join([f"{s}={i}" for i, s in enumerate(ab.symbols)] + [f"eos={n}", f"bos={n + 1}"])


def native_token_map(alphabet: Alphabet | str) -> TokenMap:
    """nonid's own layout (:class:`theory.alphabet.Alphabet`): symbols 0…k−1, EOS k, SOS k+1, PAD k+2."""
    ab = Alphabet(alphabet) if isinstance(alphabet, str) else alphabet
    return TokenMap(ab, tuple(range(len(ab))), ab.eos_id, ab.sos_id, ab.pad_id)


def token_map_from_tokenizer(tokenizer: Any, alphabet: Alphabet | str) -> TokenMap:
    """The token map a Hugging Face tokenizer implies: each symbol's id (the symbol must be one token of
    the vocabulary, not the unknown token), ``eos_token_id``, ``bos_token_id`` (else the EOS id) and
    ``pad_token_id`` (else the EOS id).

    Raises:
        UnknownToken: a symbol the tokenizer does not have as a token, no EOS token.
    """
    ab = Alphabet(alphabet) if isinstance(alphabet, str) else alphabet
    vocab = tokenizer.get_vocab()
    ids = []
    for s in ab.symbols:
        if s not in vocab:
            raise UnknownToken(f"the tokenizer has no token {s!r} (symbol of {str(ab)!r}); pass the ids with --tokens")
        ids.append(int(vocab[s]))
    eos = tokenizer.eos_token_id
    if eos is None:
        raise UnknownToken("the tokenizer names no EOS token; pass the ids with --tokens (e.g. " + example_map(ab) + ")")
    bos = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else eos
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    return TokenMap(ab, tuple(ids), int(eos), int(bos), int(pad))
