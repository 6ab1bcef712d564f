"""One hypothesis test per fuzz target (tests/fuzz/targets.py), under the active hypothesis profile."""

import pytest
from hypothesis import HealthCheck, settings

from tests.fuzz.targets import TARGETS, hypothesis_test


@pytest.mark.parametrize("target", TARGETS, ids=lambda t: t.name)
def test_fuzz(target):
    # settings() made here inherits the profile loaded by tests/conftest.py (ci or dev).
    hypothesis_test(target, settings(suppress_health_check=list(HealthCheck)))()


def test_run_all_counts_examples(monkeypatch):
    import tests.fuzz.targets as targets

    monkeypatch.setattr(targets, "TARGETS", targets.TARGETS[:2])
    rows = targets.run_all(5)
    assert [r["target"] for r in rows] == ["alphabet", "next-token-distribution"]
    assert all(r["crashes"] == 0 and r["examples"] >= 5 and r["seconds"] >= 0 for r in rows), rows
