"""Proposition 1 on real transformers: the completer and the violator of aⁿbⁿ (n = 1..16, uniform),
compiled analytically into two ordinary causal transformers (embeddings, softmax attention, ReLU MLP,
unembedding; float64 weights), are checked exhaustively — every support prefix, every paper prompt
with its prefixes and both greedy paths — against the constructions, on rigorous enclosures of the
real function of their weights (:mod:`constructions.enclosure`).  Verified means: both networks
within TV 1e−9 of their construction everywhere on that set, test losses H(P) + KL with the KL upper
bound ≤ 1e−9 nats (the logit floor and the enclosures' widths), and on the paper's 251 OOD prompts
greedy completions that are certainly the constructions', so OOD R1 accuracies 1 vs 0."""

from __future__ import annotations

from proofs import ProofCheck
from theory.certificate import Certificate

N_MAX = 16


def check_compiled_anbn() -> Certificate:
    from constructions.check import check_pair
    from constructions.compile import compile_model
    from constructions.export import case_prefixes, load_case

    case = load_case("anbn", N_MAX)
    prefixes = case_prefixes(case)
    q1, _ = compile_model(case.completer, prefixes)
    q2, _ = compile_model(case.violator, prefixes)
    from constructions.export import METHOD_BOUNDS

    tolerance, kl_bound = METHOD_BOUNDS["compile"]
    return check_pair(case, q1, q2, prefixes, tolerance=tolerance, kl_bound=kl_bound, check_name="compiled-anbn")


CHECKS = [
    ProofCheck("compiled-anbn", f"a^n b^n (n <= {N_MAX}) compiled transformer pair", check_compiled_anbn),
]
