"""`nonid appendix`: the paper appendix from certificates only (LaTeX, Markdown, figures, certificates.json).

One small appendix is generated twice per module (fixture ``built``) — a few proof checks, z3 at
horizons 2 and 4, three alphas, a 60-step experiment, the compiled pair — and every test reads it.
The .tex is compiled with pdflatex when installed (and the PDF placed beside it), and always checked
with the LaTeX-aware parser.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
from fractions import Fraction
from pathlib import Path

import pytest

from nonid.appendix import PDF, check_output_dir, compile_appendix, file_hashes
from nonid.appendix.manifest import read_manifest
from nonid.appendix.render import tex
from nonid.appendix.texcheck import check_latex, compile_pdf, latex_engine
from nonid.cli import main
from theory.certificate import Certificate
from theory.errors import InvalidArtifact

SMALL = ["--only", "lemma-a", "--only", "z3-lemma-a-h6", "--only", "prop-1-L3", "--only", "prop-2-icl-*",
         "--only", "prop-3-qk-scaling", "--z3-horizons", "2,4", "--alphas", "0.5,1,2", "--experiment-steps", "60", "--quiet"]
TIMED = ("z3-time-vs-horizon.pdf", "z3-time-vs-horizon.png", "timings.json")
TINY = ["--only", "lemma-a", "--z3-horizons", "2", "--alphas", "none", "--experiment-steps", "0", "--no-models", "--quiet"]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("appendix")
    codes = [main(["appendix", "--out", str(root / name)] + SMALL) for name in ("one", "two")]
    return root / "one", root / "two", codes


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """An appendix whose every certificate can be re-run (lemma-a and z3 at horizon 2): a second or so."""
    out = tmp_path_factory.mktemp("tiny") / "appendix"
    assert main(["appendix", "--out", str(out)] + TINY) == 0
    return out


def _certs(d: Path) -> dict:
    return json.loads((d / "certificates.json").read_text())


def test_writes_every_part(built):
    one, _two, codes = built
    assert codes[0] in (0, 1)  # 1 if the tiny experiment does not reach its claim: still written, shown as such
    for name in ("appendix.tex", "appendix.md", "certificates.json", "timings.json"):
        assert (one / name).is_file()
    for fig in ("z3-time-vs-horizon", "icl-accuracy-vs-n", "finetuning-gap-vs-alpha", "ood-r1-vs-gap"):
        for ext in ("pdf", "png"):
            assert (one / "figures" / f"{fig}.{ext}").stat().st_size > 1000
    doc = _certs(one)
    names = [e["check"] for e in doc["certificates"]]
    assert names[:9] == ["lemma-a", "z3-lemma-a-h6", "prop-1-L3", "prop-2-icl-effect", "prop-2-icl-surgery",
                         "prop-2-icl-surgery-every-epsilon", "prop-2-icl-mixture", "prop-2-icl-mixture-every-epsilon",
                         "prop-3-qk-scaling"]
    assert set(names[9:]) == {"z3-lemmas-by-horizon", "finetuning-gap-vs-alpha", "experiment-rule-extrapolation",
                              "counterexample-anbn"}
    for e in doc["certificates"]:
        assert Certificate.from_dict(e["certificate"]).sha256() == e["sha256"]
        assert e["reproduce"]
    assert not list(one.parent.glob(".one.*")), "temporary folder left behind"


def test_twice_gives_the_same_bytes(built):
    one, two, _codes = built
    a, b = file_hashes(one), file_hashes(two)
    assert set(a) == set(b)
    for name in ("appendix.tex", "appendix.md", "certificates.json"):
        assert a[name] == b[name], name
    # manifest.json lists the hashes of the timed files too, so it differs exactly where they do
    differ = sorted(k for k in a if a[k] != b[k] and not k.endswith(TIMED + ("manifest.json",)))
    assert differ == [], f"differ between two runs: {differ}"
    ma, mb = (json.loads((d / "manifest.json").read_text())["files"] for d in (one, two))
    assert set(ma) == set(a) - {"manifest.json"}  # every file written, the manifest itself aside
    assert {k for k in ma if ma[k] != mb[k]} == {k for k in a if a[k] != b[k] and k != "manifest.json"}


def test_numbers_come_from_the_certificates(built):
    one, _two, _codes = built
    text, md = (one / "appendix.tex").read_text(), (one / "appendix.md").read_text()
    for e in _certs(one)["certificates"]:
        c = Certificate.from_dict(e["certificate"])
        assert tex(c.detail) in text and c.sha256()[:16] in text
        assert c.sha256() in md
    assert r"\texttt{nonid prove -{}-{}only prop-{}1-{}L3}" in text
    assert "`nonid prove --only prop-1-L3`" in md
    mix = next(e for e in _certs(one)["certificates"] if e["check"] == "prop-2-icl-mixture")["certificate"]
    acc = mix["quantities"]["per_n"]["3"]
    row = next(line for line in text.splitlines() if line.startswith("3 & "))
    assert row.startswith(f"3 & {acc['acc_P']['approx']:.3g} & {acc['acc_Q']['approx']:.3g} & ")
    assert "horizon L = 6" in text and "z3 " in text  # horizon and solver of the SMT certificate


def test_tex_compiles(built):
    one, _two, _codes = built
    text = (one / "appendix.tex").read_text()
    assert text.isascii()
    assert check_latex(text) == []
    if latex_engine():
        ok, log = compile_pdf(one)
        assert ok, log


def test_figure_captions_keep_their_math_and_cite_docs_theory(built):
    one, _two, _codes = built
    text, md = (one / "appendix.tex").read_text(), (one / "appendix.md").read_text()
    caption = next(line for line in text.splitlines() if line.startswith(r"\caption{ICL accuracy (the fraction"))
    assert r"$Q_\varepsilon = (1 - \varepsilon) P + \varepsilon R$" in caption and r"$\varepsilon = 10^{-6}$" in caption
    assert r"$\varepsilon = 10^{-6}$" in md and r"\$" not in caption  # math, not escaped dollars
    assert "THEORY.md" not in text + md and "Statements are those of docs/theory.md." in text


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed")
def test_compile_leaves_the_pdf_in_the_folder(tiny, tmp_path):
    out, again = tmp_path / "appendix", tmp_path / "again"
    for d in (out, again):
        shutil.copytree(tiny, d)
        ok, log = compile_appendix(d)
        assert ok, log
    pdf = (out / PDF).read_bytes()
    assert pdf.startswith(b"%PDF") and pdf == (again / PDF).read_bytes()  # dates fixed: the same sources, the same bytes
    assert PDF in read_manifest(out)  # listed, so a later `nonid appendix --out` replaces it as its own file
    check_output_dir(out, force=True)  # the PDF is its own file: --force replaces the folder, PDF and all
    with pytest.raises(InvalidArtifact, match="pass --force to replace it"):
        check_output_dir(out)  # an earlier appendix is replaced only with --force
    assert sorted(p.name for p in tmp_path.iterdir()) == ["again", "appendix"]  # no temporary file left beside
    assert file_hashes(out).keys() - file_hashes(tiny).keys() == {PDF}
    assert main(["appendix", "--out", str(out), "--from", str(tiny), "--quiet", "--force"]) == 0 and not (out / PDF).exists()


def test_compile_without_pdflatex_writes_no_pdf(tiny, tmp_path, monkeypatch):
    from nonid.appendix import texcheck

    monkeypatch.setattr(texcheck, "latex_engine", lambda: None)
    out = tmp_path / "appendix"
    shutil.copytree(tiny, out)
    with pytest.raises(FileNotFoundError, match="pdflatex is not installed"):
        compile_appendix(out)
    assert file_hashes(out) == file_hashes(tiny)


@pytest.mark.parametrize("breakage, found", [
    (lambda t: t.replace(r"\end{tabular}}", r"\end{tabular}", 1), "never closed"),
    (lambda t: t.replace(r"\toprule", r"\toprul", 1), "undefined control sequence"),
    (lambda t: t.replace(r"\end{table*}", r"\end{table}", 1), "closes"),
    (lambda t: t.replace(r"kl\_q1", "kl_q1", 1), "outside math"),
    (lambda t: t.replace(r" \\" + "\n" + r"\midrule", r" & extra \\" + "\n" + r"\midrule", 1), "cells"),
])
def test_a_broken_tex_is_caught(built, tmp_path, breakage, found):
    one, _two, _codes = built
    text = (one / "appendix.tex").read_text()
    broken = breakage(text)
    assert broken != text
    problems = check_latex(broken)
    assert any(found in p for p in problems), problems
    if latex_engine() and found in ("never closed", "undefined control sequence", "closes"):
        shutil.copytree(one / "figures", tmp_path / "figures")
        (tmp_path / "appendix.tex").write_text(broken)
        ok, _log = compile_pdf(tmp_path)
        assert not ok


def test_falsified_and_unknown_are_shown_never_dropped(built, tmp_path, capsys):
    one, _two, _codes = built
    doc = _certs(one)
    by_name = {e["check"]: e for e in doc["certificates"]}
    # the two certificates --from cannot re-run, so their saved verdicts are what the appendix shows
    for entry, status, reason in ((by_name["counterexample-anbn"], "falsified", "changed row at prefix 'ab' leaks onto the support"),
                                  (by_name["experiment-rule-extrapolation"], "unknown", "z3 timed out at 1000 ms")):
        entry["certificate"]["status"], entry["certificate"]["reason"] = status, reason
        entry["sha256"] = Certificate.from_dict(entry["certificate"]).sha256()
    src = tmp_path / "certificates.json"
    src.write_text(json.dumps(doc))
    out = tmp_path / "out"
    assert main(["appendix", "--out", str(out), "--from", str(src)]) == 1
    text, md = (out / "appendix.tex").read_text(), (out / "appendix.md").read_text()
    assert (r"\paragraph{\texttt{counterexample-{}anbn}: \textbf{FALSIFIED} \textbf{(read back, not re-checked)}.}" in text
            and "leaks onto the support" in text)
    assert r"\textbf{UNKNOWN}" in text and "z3 timed out at 1000 ms" in text
    assert "**FALSIFIED**" in md and "**UNKNOWN**" in md
    assert len(_certs(out)["certificates"]) == len(doc["certificates"])
    statuses = [e["certificate"]["status"] for e in doc["certificates"]]
    assert f"{statuses.count('falsified')} falsified, {statuses.count('unknown')} unknown" in capsys.readouterr().out
    assert check_latex(text) == []


def test_rebuild_from_saved_certificates_is_identical_when_everything_is_re_checked(tiny, tmp_path, capsys):
    capsys.readouterr()
    out = tmp_path / "again"
    assert main(["appendix", "--out", str(out), "--from", str(tiny)]) == 0
    assert file_hashes(tiny) == file_hashes(out)  # timings.json travels with the certificates: even the z3 panel
    lines = capsys.readouterr().out.splitlines()
    assert sum("re-checked: the saved certificate agrees with its re-run" in line for line in lines) == 2
    assert lines[-1].startswith("2 certificates: 2 verified, 0 falsified, 0 unknown; 2 re-checked  (")
    plain = tmp_path / "prove.json"  # the `nonid prove --json` list is accepted (and re-checked) too
    plain.write_text(json.dumps([e["certificate"] for e in _certs(tiny)["certificates"][:1]]))
    assert main(["appendix", "--out", str(tmp_path / "plain"), "--from", str(plain)]) == 0


def test_what_cannot_be_re_run_is_marked_read_back_everywhere_and_exits_1(built, tmp_path, capsys):
    one, _two, _codes = built
    capsys.readouterr()
    out = tmp_path / "again"
    assert main(["appendix", "--out", str(out), "--from", str(one), "--quiet"]) == 1
    summary = capsys.readouterr().out.splitlines()[-1]
    assert ("; 11 re-checked, 2 read back, not re-checked (experiment-rule-extrapolation, counterexample-anbn)"
            in summary), summary
    a, b = file_hashes(one), file_hashes(out)
    assert sorted(k for k in a if a[k] != b[k]) == ["appendix.md", "appendix.tex", "certificates.json", "manifest.json"]
    unchecked = {"experiment-rule-extrapolation", "counterexample-anbn"}
    for old, new in zip(_certs(one)["certificates"], _certs(out)["certificates"]):
        assert new["sha256"] == old["sha256"] and new["certificate"] == old["certificate"]
        assert new.get("provenance") == ("read back, not re-checked" if new["check"] in unchecked else None), new["check"]
    text, md = (out / "appendix.tex").read_text(), (out / "appendix.md").read_text()
    for entry in _certs(out)["certificates"]:
        status = entry["certificate"]["status"]
        word = status if status == "verified" else f"**{status.upper()}**"
        marked = f"#### `{entry['check']}`: {word} **(read back, not re-checked)**" in md
        assert marked == (entry["check"] in unchecked), entry["check"]
    assert md.count("(read back, not re-checked)") >= 2 * len(unchecked)  # the summary table and the record
    assert text.count(r"\textbf{(read back, not re-checked)}") == len(unchecked)
    assert "2 of the certificates were read back, not re-checked by this run" in md
    assert check_latex(text) == []


def test_an_edited_and_re_signed_certificate_is_re_run_and_reported(tiny, tmp_path, capsys):
    doc = _certs(tiny)
    lemma = doc["certificates"][0]
    assert lemma["check"] == "lemma-a"
    lemma["certificate"]["claim"] = "Lemma A holds for every model whatsoever."
    lemma["sha256"] = Certificate.from_dict(lemma["certificate"]).sha256()  # re-signed, as a forger would
    src = tmp_path / "certificates.json"
    src.write_text(json.dumps(doc))
    capsys.readouterr()
    out = tmp_path / "out"
    assert main(["appendix", "--out", str(out), "--from", str(src), "--quiet"]) == 1
    lines = capsys.readouterr().out.splitlines()
    report = [line for line in lines if line.startswith("lemma-a: ")]
    assert len(report) == 1 and "disagreed with this re-run at claim: saved 'Lemma A holds for every model" in report[0]
    assert "1 disagreed with their re-run (shown re-run)" in lines[-1]
    entry = _certs(out)["certificates"][0]
    assert entry["certificate"] == _certs(tiny)["certificates"][0]["certificate"]  # the re-run, not the forgery
    assert entry["provenance"] == "re-run, saved certificate disagreed" and "at claim" in entry["note"]
    md = (out / "appendix.md").read_text()
    from nonid.appendix.render import md as md_text

    assert f"- *Claim.* {md_text(entry['certificate']['claim'])}" in md and "- *Claim.* Lemma A holds for every" not in md
    assert "#### `lemma-a`: verified **(re-run; the saved one disagreed)**" in md


def test_help_says_what_from_re_checks_and_what_it_does_not(capsys):
    with pytest.raises(SystemExit):
        main(["appendix", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "read back, not re-checked" in help_text and "exit 1" in help_text and "manifest.json" in help_text


def test_a_folder_that_is_not_an_appendix_is_refused_even_with_force(tiny, tmp_path, capsys):
    out = tmp_path / "paper"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    for force in ([], ["--force"]):  # --force replaces only an earlier appendix (one with its manifest.json)
        assert main(["appendix", "--out", str(out), "--from", str(tiny)] + force) == 2
        err = capsys.readouterr().err
        assert "notes.txt" in err and "--force" in err and "manifest.json" in err and len(err.strip().splitlines()) == 1
        assert sorted(os.listdir(out)) == ["notes.txt"] and (out / "notes.txt").read_text() == "mine"
    (tmp_path / "file").write_text("x")
    assert main(["appendix", "--out", str(tmp_path / "file"), "--from", str(tiny)]) == 2


def test_an_earlier_appendix_needs_force_and_a_user_file_anywhere_in_it_is_never_deleted(tiny, tmp_path, capsys):
    """The one output-folder rule: its own earlier output is replaced only with --force; a file of the
    user's (or an edit of one of its files), anywhere under it, is refused even with --force."""
    out = tmp_path / "appendix"
    shutil.copytree(tiny, out)
    assert main(["appendix", "--out", str(out), "--from", str(tiny), "--quiet"]) == 2  # its own output: --force
    assert "pass --force to replace it" in capsys.readouterr().err
    assert main(["appendix", "--out", str(out), "--from", str(tiny), "--quiet", "--force"]) == 0
    for where in ("figures/mine/draft.tex", "appendix.md"):  # a new file in a subfolder; an edit of one of ours
        path = out / where
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as f:
            f.write("my words\n")
        before = file_hashes(out)
        for force in ([], ["--force"]):
            capsys.readouterr()
            assert main(["appendix", "--out", str(out), "--from", str(tiny)] + force) == 2
            err = capsys.readouterr().err
            assert where in err and "--force will not delete it" in err and len(err.strip().splitlines()) == 1, err
            assert file_hashes(out) == before
        shutil.rmtree(out)
        shutil.copytree(tiny, out)
    (out / "empty").mkdir()  # an empty folder of the user's counts too
    assert main(["appendix", "--out", str(out), "--from", str(tiny), "--force"]) == 2 and (out / "empty").is_dir()


def test_a_file_added_while_the_appendix_is_computed_is_not_lost(tiny, tmp_path, monkeypatch):
    from nonid.appendix import readback

    out = tmp_path / "appendix"
    shutil.copytree(tiny, out)
    real = readback.recheck

    def slow_recheck(entries, echo):  # the user saves a file into the folder while the proofs re-run
        (out / "late.txt").write_text("saved meanwhile")
        return real(entries, echo)

    monkeypatch.setattr(readback, "recheck", slow_recheck)
    assert main(["appendix", "--out", str(out), "--from", str(tiny), "--force"]) == 2
    assert (out / "late.txt").read_text() == "saved meanwhile" and not list(tmp_path.glob(".appendix.*"))


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["certificates"][0]["certificate"].__setitem__("format", 2), "incompatible nonid version"),
    (lambda d: d.__setitem__("appendix_format", 7), "incompatible nonid version"),
    (lambda d: d["certificates"][0]["certificate"].__setitem__("claim", "edited"), "does not match its SHA-256"),
    (lambda d: d["certificates"][0]["certificate"]["quantities"].__setitem__("x", float("nan")), "NaN is not a JSON value"),
    (lambda d: d["certificates"][0]["certificate"]["quantities"].__setitem__("x", json.loads("[" * 100 + "]" * 100)),
     "nested deeper than 64 levels"),
])
def test_incompatible_or_tampered_certificates_are_refused(built, tmp_path, capsys, edit, message):
    one, _two, _codes = built
    doc = _certs(one)
    edit(doc)
    src = tmp_path / "certificates.json"
    src.write_text(json.dumps(doc))
    assert main(["appendix", "--out", str(tmp_path / "out"), "--from", str(src)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_the_counterexample_pair_re_verifies_with_nonid_check(built, capsys):
    one, _two, _codes = built
    assert main(["check", str(one / "counterexample-anbn")]) == 0
    assert capsys.readouterr().out.startswith("verified:")


def test_a_failure_leaves_nothing_half_written(tiny, tmp_path, monkeypatch):
    from nonid.appendix import render

    def boom(*_a, **_k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(render, "markdown", boom)
    with pytest.raises(RuntimeError):
        main(["appendix", "--out", str(tmp_path / "out"), "--from", str(tiny)])
    assert os.listdir(tmp_path) == []


def test_figures_are_sized_for_two_columns_without_timestamps(built):
    one, _two, _codes = built
    for png in sorted((one / "figures").glob("*.png")):
        width, height = struct.unpack(">II", png.read_bytes()[16:24])
        assert width in (680, 1400) and height < 600, (png.name, width, height)
        assert b"Software" not in png.read_bytes()[:4096]
    for pdf in sorted((one / "figures").glob("*.pdf")):
        assert b"/CreationDate" not in pdf.read_bytes()


def test_bad_options_are_refused(tmp_path, capsys):
    for argv in (["--only", "no-such-check"], ["--z3-horizons", "2,x"], ["--alphas", "0,1"], ["--experiment", str(tmp_path / "none")]):
        assert main(["appendix", "--out", str(tmp_path / "o"), "--no-models", "--z3-horizons", "none"] + argv) == 2, argv
        assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def _row(regime: str, loss: float, ood: float, gap: float | None = 1e-3, rigorous: bool = True, seed: int = 0):
    from empirical.rows import GapRecord, RunRow

    g = None if gap is None else GapRecord(
        gap_lo=257 * gap, gap_hi=257 * gap, gap_padded_lo=gap, gap_padded_hi=gap, gap_token_lo=2 * gap, gap_token_hi=2 * gap,
        floor_padded=0.084, floor_token=0.154, entropy=2.77, gap_prefixes=153, gap_method="rigorous", gap_rigorous=rigorous)
    return RunRow(name=f"L3-lstm-{regime}-s{seed}", language="L3", arch="lstm", regime=regime, seed=seed, size="cpu", steps=None,
                  aux_lengths=None, steps_done=20, wall_s=1.0, best_step=20, params=1287, test_exact=True, data="L3", step=20,
                  test_loss_padded=loss, test_loss_token=loss, id_r1=1.0, id_r2=1.0, ood_r1=ood, ood_r2c=1.0,
                  min_test_loss_padded=loss, min_test_loss_token=loss, max_id_r1=1.0, max_id_r2=1.0, max_ood_r1=ood,
                  max_ood_r2c=1.0, gap=g, gap_note=None if g is not None else "no gap")


def _seeds(regime: str, ood: float, **kw):
    return [_row(regime, 0.085, ood, seed=s, **kw) for s in range(3)]


def test_experiment_certificate_states_its_claim():
    """What the appendix's experiment entry rests on: saturation certified per run (gap <= epsilon), OOD
    R1 apart by Delta on every seed, at least three seeds (the rules themselves: tests/test_empirical.py)."""
    from empirical.certificate import experiment_certificate

    good = _seeds("ml", 0.3) + _seeds("adversarial", 0.0) + _seeds("oracle", 1.0)
    c = experiment_certificate(good)
    assert c.verified, c.reason
    assert "at least 3 seeds" in c.claim and "eps = 0.01 nats per token" in c.claim and "Delta = 0.5" in c.claim
    assert c.quantities["groups"][0]["published"]["source"] == "arXiv 2409.13728"  # from empirical/reference, not retyped
    one_seed = [r for r in good if r.seed == 0]
    assert experiment_certificate(one_seed).status.value == "unknown"  # one draw is not a claim about the regimes
    float_only = _seeds("ml", 0.3) + _seeds("adversarial", 0.0) + _seeds("oracle", 1.0, rigorous=False)
    assert experiment_certificate(float_only).status.value == "unknown"  # a gap from one float pass certifies nothing
    assert "wall_s" not in json.dumps(c.to_dict()) and c.timings  # wall times are timings, never hashed


def test_table_bounds_are_rounded_outward():
    """A bound in an appendix table still bounds: KL <= columns round up, >= columns down, intervals
    outward (the mixture's -ln(1 - 1e-6) = 1.0000005e-6 must not print as 1e-06)."""
    from nonid.appendix.content import fmt

    kl = {"exact": "-ln(999999/1000000)", "approx": 1.0000005e-06,
          "interval": ["0.0000010000005000003333", "0.0000010000005000003334"]}
    assert fmt(kl, bound="up") == "1.01e-06" and Fraction(fmt(kl, bound="up")) >= Fraction("0.0000010000005000003334")
    assert fmt({"exact": "1/3", "approx": 1 / 3}, bound="down") == "3.33e-01"
    assert fmt({"exact": "1/3", "approx": 1 / 3}, bound="up") == "3.34e-01"
    assert fmt({"lower": {"exact": "1/3", "approx": 1 / 3}, "upper": {"exact": "2/3", "approx": 2 / 3}}) == "[3.33e-01, 6.67e-01]"
