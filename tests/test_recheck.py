"""``nonid experiment … --report-only`` re-derives each run's certified gap from its own checkpoint
(empirical.experiment.recheck_gap) instead of certifying numbers it only read from result.json; ``--no-recheck``
keeps the old reading and the certificate says so.  Mutants (a forged gap, a deleted or foreign checkpoint) with
their controls, on one tiny grid trained once (L3, linear, 3 steps, 3 seeds × 3 regimes: a few seconds)."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import pytest

from nonid.cli import main

pytest.importorskip("torch")

GRID = ["experiment", "rule-extrapolation", "--arch", "linear", "--steps", "3", "--seeds", "3", "--device", "cpu", "--quiet"]
REPORT = ["experiment", "rule-extrapolation", "--report-only"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, str]:
    """The grid trained once, and the verdict its training run printed."""
    out = tmp_path_factory.mktemp("trained") / "runs"
    text = io.StringIO()
    with contextlib.redirect_stdout(text), contextlib.redirect_stderr(io.StringIO()):
        assert main([*GRID, "--out", str(out)]) == 0
    return out, _verdict(text.getvalue())


@pytest.fixture
def certificates(monkeypatch) -> list:
    """Every experiment certificate the command builds (the printed one: the last)."""
    import empirical.certificate as certificate

    made: list = []
    original = certificate.experiment_certificate

    def keep(*args, **kwargs):
        made.append(original(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(certificate, "experiment_certificate", keep)
    return made


def _verdict(text: str) -> str:
    line = next(x for x in text.splitlines() if x.startswith("certificate experiment-rule-extrapolation: "))
    return line.split(": ", 1)[1].split(" ", 1)[0]


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(("certificate ", "reason: "))]


def _copy(trained: tuple[Path, str], tmp_path: Path) -> Path:
    return Path(shutil.copytree(trained[0], tmp_path / "runs"))


def _edit(out: Path, name: str, **fields) -> None:
    path = out / name / "result.json"
    doc = json.loads(path.read_text())
    doc["row"].update(fields)
    path.write_text(json.dumps(doc))


def _apart(out: Path) -> None:
    """OOD R1 0.5 / 0 / 1 in the three regimes on every seed (result.json only): the regime half of the claim holds,
    so the verdict turns on the gaps alone."""
    for regime, ood in (("ml", 0.5), ("adversarial", 0.0), ("oracle", 1.0)):
        for seed in range(3):
            _edit(out, f"L3-linear-{regime}-s{seed}", ood_r1=ood, max_ood_r1=ood)


def _report(capsys, out: Path, *extra: str) -> tuple[int, str, str]:
    code = main([*REPORT, "--out", str(out), *extra])
    res = capsys.readouterr()
    return code, res.out, res.err


def test_an_honest_folder_rebuilds_the_training_verdict_with_every_gap_rederived(trained, tmp_path, capsys, certificates):
    out = _copy(trained, tmp_path)
    code, text, err = _report(capsys, out)
    assert code == 0 and "gap not certified" not in err, err
    assert _verdict(text) == trained[1]  # falsified: 3 steps do not saturate, the regimes do not differ
    assert text.index("estimate: re-deriving the certified gaps of 9 runs") < text.index("re-derived the gaps of 9 runs")
    cert = certificates[-1]
    assert cert.quantities["gaps_rederived"] is True
    assert set(cert.quantities["gap_recheck"].values()) == {"identical"}  # same weights, same code: the same floats
    assert "re-derived from the run's checkpoint.pt" in cert.assumptions[0]


def test_forged_gaps_below_eps_are_caught_and_only_no_recheck_believes_them(trained, tmp_path, capsys, certificates):
    out = _copy(trained, tmp_path)
    _apart(out)
    tiny = dict(gap_lo=0.0, gap_hi=1e-4, gap_padded_lo=0.0, gap_padded_hi=1e-4, gap_token_lo=0.0, gap_token_hi=1e-4)
    for regime in ("ml", "adversarial", "oracle"):
        for seed in range(3):
            _edit(out, f"L3-linear-{regime}-s{seed}", **tiny)  # the real gaps are ~0.9 nats/token
    code, text, err = _report(capsys, out, "--epsilon", "0.5", "--no-recheck")  # the control: the old reading is fooled
    assert code == 0 and _verdict(text) == "verified", _lines(text)
    assert "gaps read from the runs' result.json files as written, not re-derived" in _lines(text)[0]
    assert certificates[-1].quantities["gaps_rederived"] is False and "gap_recheck" not in certificates[-1].quantities
    assert "not re-derived from the stored weights" in certificates[-1].assumptions[0]
    code, text, err = _report(capsys, out, "--epsilon", "0.5")
    assert code == 0 and _verdict(text) == "falsified", _lines(text)  # the re-derived gaps are certainly above eps
    assert err.count("gap not certified: ") == 9 and "L3-linear-oracle-s1: result.json's gap [0, 1.000001e-04] nats/token is not the [1.0" in err, err
    assert "in 9 of 9 runs: L3-linear-ml-s0 >= " in _lines(text)[1]
    assert "falsified" in (out / "report.md").read_text()  # the report's certificate speaks of the same rows


def test_one_edited_gap_makes_the_certificate_unknown_and_names_the_run(trained, tmp_path, capsys, certificates):
    out = _copy(trained, tmp_path)
    _apart(out)
    code, text, err = _report(capsys, out, "--epsilon", "2")  # the control: every real gap is below 2 nats/token
    assert code == 0 and _verdict(text) == "verified" and "gap not certified" not in err, (_lines(text), err)
    _edit(out, "L3-linear-oracle-s1", gap_token_hi=1e-9)
    code, text, err = _report(capsys, out, "--epsilon", "2")
    assert code == 0 and _verdict(text) == "unknown", _lines(text)
    assert err.count("gap not certified: ") == 1 and "L3-linear-oracle-s1: result.json's gap" in err, err
    assert "L3-linear-oracle-s1: no gap (result.json's gap" in _lines(text)[1]
    assert certificates[-1].quantities["gap_recheck"]["L3-linear-oracle-s1"] == "mismatch"


def test_a_widened_stored_bracket_still_holds_the_rederived_one(trained, tmp_path, capsys, certificates):
    out = _copy(trained, tmp_path)
    _apart(out)
    doc = json.loads((out / "L3-linear-ml-s2" / "result.json").read_text())["row"]
    _edit(out, "L3-linear-ml-s2", gap_token_lo=doc["gap_token_lo"] / 2, gap_token_hi=1.5)  # looser, still sound
    code, text, err = _report(capsys, out, "--epsilon", "2")
    assert code == 0 and _verdict(text) == "verified" and "gap not certified" not in err, (_lines(text), err)
    assert certificates[-1].quantities["gap_recheck"]["L3-linear-ml-s2"] == "contained"


@pytest.mark.parametrize("damage, fragment", [
    (lambda out: (out / "L3-linear-adversarial-s0" / "checkpoint.pt").unlink(), "not re-derived: no checkpoint.pt"),
    (lambda out: shutil.copy(out / "L3-linear-adversarial-s1" / "checkpoint.pt", out / "L3-linear-adversarial-s0"),
     "belongs to another run configuration"),  # another seed's weights: its fingerprint is not this run's
    (lambda out: (out / "L3-linear-adversarial-s0" / "checkpoint.pt").write_bytes(b"NONID-CKPT-1 sha256=0\n"), "damaged"),
])
def test_a_missing_foreign_or_damaged_checkpoint_certifies_nothing(trained, tmp_path, capsys, damage, fragment):
    out = _copy(trained, tmp_path)
    _apart(out)
    damage(out)
    code, text, err = _report(capsys, out, "--epsilon", "2")
    assert code == 0 and _verdict(text) == "unknown", _lines(text)
    assert err.count("gap not certified: ") == 1 and "L3-linear-adversarial-s0: not re-derived" in err, err
    assert fragment in err and "L3-linear-adversarial-s0: no gap" in _lines(text)[1], err


def test_no_recheck_without_report_only_is_refused_before_any_work(tmp_path, capsys):
    code = main([*GRID, "--out", str(tmp_path / "runs"), "--no-recheck"])
    err = capsys.readouterr().err
    assert code == 2 and err == "nonid: --no-recheck applies to --report-only only: training computes every gap afresh\n"
    assert list(tmp_path.iterdir()) == []


def test_the_appendix_rederives_the_gaps_of_an_experiment_folder_too(trained, tmp_path):
    """``nonid appendix --experiment RUNS`` certifies from the runs' own weights, not their result.json."""
    from nonid.appendix.sources import Options, _experiment_entry

    out = _copy(trained, tmp_path)
    honest = _experiment_entry(Options(experiment_dir=str(out))).certificate
    assert honest.quantities["gaps_rederived"] is True
    assert set(honest.quantities["gap_recheck"].values()) == {"identical"}
    _edit(out, "L3-linear-oracle-s1", gap_token_hi=1e-9)
    forged = _experiment_entry(Options(experiment_dir=str(out))).certificate
    assert forged.quantities["gap_recheck"]["L3-linear-oracle-s1"] == "mismatch"
    assert forged.status is honest.status  # the edited file changes nothing: the gaps come from the weights
