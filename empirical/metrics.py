"""Metrics of trained networks: test loss in both conventions, and the companion paper's rule metrics
by batched greedy decoding, scored exactly as :func:`theory.properties.rule_metrics` scores them.

* :func:`greedy_completions` decodes many prompts at once (argmax of the logits, first index on ties
  — the outcome order of :meth:`NextTokenDistribution.argmax`, EOS last); a completion is finished
  when it emits EOS within ``max_new_tokens`` tokens (EOS included), as in ``theory.properties``.
* :func:`score_completions` turns completions into a :class:`~theory.properties.RuleMetrics`: ID R1/R2
  of prompt + completion, OOD R1 of prompt + completion, OOD R2 of the completion alone; unfinished
  completions fail every metric.  The tests check it against ``rule_metrics`` on hand-made
  completions, and :func:`greedy_completions` against ``greedy_completion`` through :class:`TrainedNetworkModel`.
* :class:`TrainedNetworkModel` wraps a network as a ``theory`` AR model: its float64 probabilities, read as
  exact rationals and renormalised exactly, are the model's rows.
* :func:`measure_losses` — E_P[−ln Q(x)] per sequence, per token (÷ (E|x| + 1)) and padded (÷ (T − 1),
  PAD targets counted as certain: docs/theory.md §1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F

from constructions import check as _check
from empirical.data import IGNORE, LanguageData, Vocab
from theory.prompts import PromptSet
from theory.properties import Completion, RuleMetrics, score_completions


# ---- greedy decoding ------------------------------------------------------------------------------
@torch.no_grad()
def greedy_completions(model: torch.nn.Module, vocab: Vocab, prompts: Sequence[str], max_new_tokens: int, *,
                       batch_size: int = 1024) -> list[Completion]:
    """Greedy completions of ``prompts`` (any lengths), in order.  ``max_new_tokens`` counts EOS and
    is cut to the model's positional range (``model.max_positions`` − 1 − |prompt|)."""
    device = next(model.parameters()).device
    out: list[Completion | None] = [None] * len(prompts)
    by_length: dict[int, list[int]] = {}
    for i, u in enumerate(prompts):
        by_length.setdefault(len(u), []).append(i)
    limit = getattr(model, "max_positions", None)
    for n, idx in by_length.items():
        budget = max_new_tokens if limit is None else max(0, min(max_new_tokens, limit - 1 - n))
        for start in range(0, len(idx), batch_size):
            chunk = idx[start:start + batch_size]
            tokens = vocab.encode([prompts[i] for i in chunk]).to(device)
            texts: list[list[int]] = [[] for _ in chunk]
            done = [False] * len(chunk)
            tied = [False] * len(chunk)
            active = list(range(len(chunk)))  # rows still generating; finished rows leave the batch
            for _ in range(budget):
                logits = model(tokens)[:, -1]
                best = logits.argmax(dim=-1)
                top = logits.max(dim=-1, keepdim=True).values
                is_tied = ((logits == top).sum(dim=-1) > 1).tolist()
                keep = []
                for k, (r, b) in enumerate(zip(active, best.tolist())):
                    tied[r] = tied[r] or is_tied[k]
                    if b == vocab.eos:
                        done[r] = True
                    else:
                        texts[r].append(b)
                        keep.append(k)
                if not keep:
                    break
                rows = torch.tensor(keep, device=device)
                tokens = torch.cat([tokens[rows], best[rows, None]], dim=1)
                active = [active[k] for k in keep]
            for r, i in enumerate(chunk):
                text = "".join(vocab.alphabet.symbols[t] for t in texts[r])
                out[i] = Completion(text, done[r], tied[r])
    return out  # type: ignore[return-value]


def rule_metrics_batched(model: torch.nn.Module, vocab: Vocab, prompt_set: PromptSet, max_new_tokens: int, *,
                         convention: str = "paper") -> RuleMetrics:
    """Greedy-decode every distinct prompt of ``prompt_set`` once, in batches, and score the four metrics in
    both denominators under ``convention`` (:func:`theory.properties.score_completions`; a prompt drawn twice
    counts twice)."""
    prompts = list(dict.fromkeys(prompt_set.prompts))
    comps = greedy_completions(model, vocab, prompts, max_new_tokens)
    return score_completions(prompt_set.language, prompt_set, dict(zip(prompts, comps)), convention=convention)


# ---- the network as an exact AR model -------------------------------------------------------------
class TrainedNetworkModel(_check.TorchARModel):
    """A trained network as a ``theory.models.ARModel`` (:class:`constructions.check.TorchARModel` on a
    float64 CPU copy of the network, with the experiment's vocabulary): the exact renormalisation of
    its float64 softmax at every prefix, memoised."""

    def __init__(self, model: torch.nn.Module, vocab: Vocab) -> None:
        import copy

        net = copy.deepcopy(model).to("cpu", torch.float64).eval()
        super().__init__(net, name=type(model).__name__, encode=vocab.encode, alphabet=vocab.alphabet)
        self.vocab = vocab


TorchARModel = TrainedNetworkModel
"""Deprecated alias of :class:`TrainedNetworkModel` (``constructions.check.TorchARModel`` is the
network adapter it specialises)."""


# ---- test losses ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Losses:
    """E_P[−ln Q(x)] in nats: per sequence, per token (÷ (E|x| + 1)) and padded (÷ (T − 1))."""

    per_sequence: float
    per_token: float
    padded: float


@torch.no_grad()
def sequence_nll(model: torch.nn.Module, vocab: Vocab, words: Sequence[str], *, batch_size: int = 512) -> torch.Tensor:
    """−ln Q(x) for each word (float64 on the CPU), in batches, in the model's own dtype."""
    device = next(model.parameters()).device
    out = []
    for start in range(0, len(words), batch_size):
        chunk = words[start:start + batch_size]
        inputs, targets = vocab.examples([("", w) for w in chunk])
        inputs, targets = inputs.to(device), targets.to(device)
        logp = model(inputs).log_softmax(-1)
        nll = F.nll_loss(logp.transpose(1, 2), targets, ignore_index=IGNORE, reduction="none")
        out.append(nll.sum(dim=1).double().cpu())
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.float64)


def measure_losses(model: torch.nn.Module, data: LanguageData) -> Losses:
    """The test loss of ``model`` on ``data.test`` (exact P, or a held-out sample), both conventions."""
    vocab = Vocab(data.language.alphabet)
    words = [w for w, _ in data.test]
    weights = torch.tensor([p for _, p in data.test], dtype=torch.float64)
    per_seq = float((sequence_nll(model, vocab, words) * weights).sum() / weights.sum())
    mean_len = float(sum(len(w) * p for w, p in data.test) / float(weights.sum()))
    return Losses(per_seq, per_seq / (mean_len + 1), per_seq / (data.padded_length - 1))
