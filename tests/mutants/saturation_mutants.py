"""Mutants (issue 18): experiment certificates that must not call the regimes saturated.

The rows are built by hand (no training: each mutant takes milliseconds): L3 × LSTM × ml/adversarial/oracle,
OOD R1 0.3 / 0.0 / 1.0 on every seed, certified per-token gaps as given (1e-9-wide intervals).  The claim
checked is :func:`empirical.certificate.experiment_certificate`'s: every run's certified gap ≤ ε nats per
token and two regimes' OOD R1 ≥ Δ apart on every seed, with ≥ 3 seeds per regime.
"""

from __future__ import annotations

from tests.mutants.registry import mutant, verdict

_OOD = {"ml": 0.3, "adversarial": 0.0, "oracle": 1.0}


def _rows(gaps: dict[str, float], seeds: int) -> list:
    """``seeds`` runs per regime, each with the per-token gap ``gaps[regime]`` certified to 1e-9."""
    from empirical.rows import GapRecord, RunRow

    out = []
    for regime, gap in gaps.items():
        for seed in range(seeds):
            g = GapRecord(gap_lo=18 * gap, gap_hi=18 * (gap + 1e-9), gap_padded_lo=gap * 18 / 33,
                          gap_padded_hi=(gap + 1e-9) * 18 / 33, gap_token_lo=gap, gap_token_hi=gap + 1e-9,
                          floor_padded=0.084, floor_token=0.154, entropy=2.77, gap_prefixes=153, gap_method="rigorous",
                          gap_rigorous=True)
            term = regime != "ml"
            out.append(RunRow(
                name=f"L3-lstm-{regime}-s{seed}", language="L3", arch="lstm", regime=regime, seed=seed, size="cpu",
                steps=None, aux_lengths=None, steps_done=1500, wall_s=1.0, best_step=1500, params=1287, test_exact=True,
                data="L3", step=1500, test_loss_padded=0.0842, test_loss_token=0.155, id_r1=1.0, id_r2=1.0,
                ood_r1=_OOD[regime], ood_r2c=1.0, min_test_loss_padded=0.0842, min_test_loss_token=0.155, max_id_r1=1.0,
                max_id_r2=1.0, max_ood_r1=_OOD[regime], max_ood_r2c=1.0, gap=g,
                regime_prompts="held-out" if term else None, regime_prompt_count=1525 if term else None,
                regime_prompt_lengths=(9, 10) if term else None))
    return out


@mutant("saturation-gaps-2x-apart-at-an-epsilon-between", "certificate", "falsified")
def gaps_apart(mutate: bool) -> str:
    """Three seeds per regime whose adversarial gaps (2e-3 nats/token) are twice the ml and oracle ones (1e-3),
    certified at eps = 1.5e-3, between them: the adversarial runs are certainly above eps, not saturated (the old
    check, total losses within 10 % and gaps merely finite, passed them).  Control: the same rows at eps = 3e-3,
    above both gaps."""
    from empirical.certificate import experiment_certificate

    rows = _rows({"ml": 1e-3, "adversarial": 2e-3, "oracle": 1e-3}, seeds=3)
    return verdict(lambda: experiment_certificate(rows, epsilon=1.5e-3 if mutate else 3e-3, delta=0.5))


@mutant("saturation-fewer-than-three-seeds", "certificate", "unknown")
def two_seeds(mutate: bool) -> str:
    """Two seeds per regime, every gap below eps and OOD R1 1.0 apart: the claim is about the regimes and
    needs >= 3 seeds each, so two draws are not verified.  Control: the same rows with 3 seeds per regime."""
    from empirical.certificate import experiment_certificate

    rows = _rows({"ml": 1e-3, "adversarial": 1e-3, "oracle": 1e-3}, seeds=2 if mutate else 3)
    return verdict(lambda: experiment_certificate(rows, epsilon=3e-3, delta=0.5))
