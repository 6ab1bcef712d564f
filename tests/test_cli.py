"""The command line: the table, exit statuses, one-line errors, deterministic JSON."""

import json
import subprocess
import sys

import pytest

from nonid.cli import main


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nonid", *args], capture_output=True, text=True, timeout=600)


def test_prove_lemmas_table(capsys):
    assert main(["prove", "--only", "lemma-a", "--only", "lemma-b", "--only", "lemma-c"]) == 0
    out = capsys.readouterr().out
    for name in ("lemma-a", "lemma-b", "lemma-c"):
        line = next(l for l in out.splitlines() if l.startswith(name))
        assert "verified" in line
    assert "3 verified, 0 falsified, 0 unknown" in out


def test_prove_json_is_deterministic(capsys):
    main(["prove", "--only", "lemma-*", "--json"])
    first = capsys.readouterr().out
    main(["prove", "--only", "lemma-*", "--json"])
    assert capsys.readouterr().out == first
    certs = json.loads(first)
    assert [c["check"] for c in certs] == ["lemma-a", "lemma-b", "lemma-c"]
    assert all(c["status"] == "verified" and "elapsed_s" not in c for c in certs)


def test_prove_in_worker_processes_gives_the_same_certificates(capsys):
    """--jobs 2 runs each module's checks in a worker process: the same certificates, in table order."""
    import proofs

    only = ["--only", "chain-rule", "--only", "lemma-*", "--only", "closed-form-padded-floor"]
    assert len(proofs.groups(proofs.select(proofs.discover(), only[1::2]))) > 2
    main(["prove", *only, "--json", "--jobs", "1"])
    alone = capsys.readouterr().out
    main(["prove", *only, "--json", "--jobs", "2"])
    assert capsys.readouterr().out == alone


def test_prove_list(capsys):
    assert main(["prove", "--list"]) == 0
    assert "lemma-a" in capsys.readouterr().out


@pytest.mark.parametrize("args, fragment", [
    (["prove", "--only", "no-such-check"], "'no-such-check' matches no check"),
    (["prove", "--bogus"], "unrecognized arguments: --bogus"),
    (["frobnicate"], "invalid choice"),
    (["prove", "--jobs", "0"], "--jobs: must be a whole number >= 1, not '0'"),
    (["prove", "--jobs", "two"], "--jobs: must be a whole number >= 1, not 'two'"),
])
def test_bad_usage_is_one_line_exit_2(args, fragment):
    res = run_cli(*args)
    assert res.returncode == 2
    assert res.stdout == ""
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nonid: ") and fragment in lines[0]
    assert "Traceback" not in res.stderr


def test_falsified_check_gives_exit_1(monkeypatch, capsys):
    import proofs
    from theory.certificate import Certificate

    bad = proofs.ProofCheck("broken", "a deliberately false check",
                            lambda: Certificate("broken", "false", "falsified", "exact", reason="planted"))
    monkeypatch.setattr(proofs, "discover", lambda: [bad])
    assert main(["prove"]) == 1
    out = capsys.readouterr().out
    assert "falsified" in out and "reason: planted" in out


def test_crashing_check_is_unknown_not_verified(monkeypatch, capsys):
    import proofs

    def boom():
        raise RuntimeError("planted crash")

    monkeypatch.setattr(proofs, "discover", lambda: [proofs.ProofCheck("crash", "crashes", boom)])
    assert main(["prove"]) == 1
    assert "planted crash" in capsys.readouterr().out


# ---- options are validated before any heavy import or work (issue: validate before computing) -------
REFUSED_EARLY = [
    (["prve"], "did you mean 'prove'?"),
    (["prove", "--olny", "lemma-a"], "did you mean '--only'"),
    (["prove", "--only", "lema-a"], "did you mean 'lemma-a'"),
    (["prove", "--timings"], "--timings applies to --json output only"),
    (["counterexample", "anbm", "--out", "{d}/cx"], "did you mean 'anbn'?"),
    (["counterexample", "L1", "--out", "{d}/cx", "--n-max", "4"], "--n-max does not apply to case L1"),
    (["counterexample", "anbn", "--out", "{d}/cx", "--max-steps", "9"], "--max-steps applies to --method distill only"),
    (["counterexample", "anbn", "--out", "{d}/cx", "--zero-logit", "0.5"], "--zero-logit 0.5 must be"),
    (["check", "{d}/file.txt"], "is a file, not a folder"),
    (["experiment", "rule-extrapolation", "--arch", "lstn", "--out", "{d}/e"], "did you mean 'lstm'?"),
    (["experiment", "rule-extrapolation", "--size", "gpu", "--out", "{d}/e"], "--size 'gpu' is not one of"),
    (["experiment", "rule-extrapolation", "--regime", "orcale", "--out", "{d}/e"], "did you mean 'oracle'?"),
    (["experiment", "rule-extrapolation", "--language", "L1", "--regime-lengths", "6", "--out", "{d}/e"],
     "--regime-lengths applies to the adversarial and oracle regimes only"),
    (["experiment", "rule-extrapolation", "--resume", "--force", "--out", "{d}/e"], "give one"),
    (["experiment", "rule-extrapolation", "--convention", "publshed", "--out", "{d}/e"], "did you mean 'published'?"),
    (["experiment", "rule-extrapolation", "--ensemble", "--jobs", "2", "--out", "{d}/e"], "does not take --jobs 2"),
    (["experiment", "rule-extrapolation", "--language", "all,L7", "--out", "{d}/e"], "unknown language 'all'"),
    (["experiment", "rule-extrapolation", "--language", "all", "--seeds", "0", "--out", "{d}/e"], "--seeds 0"),
    (["experiment", "rule-extrapolation", "--out", "{d}/foreign"], "is not an earlier output of `nonid experiment`"),
    (["appendix", "--out", "{d}/a", "--experiment", "{d}/missing"], "missing"),
    (["appendix", "--out", "{d}/a", "--experiment-arch", "lstn"], "did you mean 'lstm'?"),
    (["icl", "--k", "1"], "--k = 1 must be >= 2"),
    (["icl", "--n", "0,-1"], "--n = -1 must be >= 0"),
    (["icl", "--n", "1,2"], "must include 0"),
    (["icl", "--epsilon", "0"], "--epsilon = 0 must lie in (0, 1)"),
    (["icl", "--epsilon", "1"], "--epsilon = 1 must lie in (0, 1)"),
    (["icl", "--eta", "0"], "--eta = 0 gives zero transitions"),
    (["icl", "--instance", "ginc", "--vocab-size", "1"], "the label set is empty"),
    (["icl", "--instance", "ginc", "--vocab-size", "2"], "needs a wrong label"),
    (["icl", "--lambda", "1/2"], "--lambda = 1/2 must lie in (1/2, 1)"),
    (["icl", "--prompts", "9"], "--prompts applies to --instance ginc only"),
    (["icl", "--instance", "ginc", "--rho", "1/10"], "--rho applies to --instance learning only"),
    (["icl", "--instance", "gnic"], "did you mean 'ginc'?"),
]


@pytest.mark.parametrize("argv, fragment", REFUSED_EARLY, ids=[" ".join(a[:3]) for a, _ in REFUSED_EARLY])
def test_bad_options_are_refused_before_torch_z3_or_sympy_is_imported(tmp_path, argv, fragment):
    (tmp_path / "file.txt").write_text("not a folder\n")
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "notes.txt").write_text("mine\n")
    args = [a.format(d=tmp_path) for a in argv]
    probe = ("import sys\nfrom nonid.cli import main\nrc = main(sys.argv[1:])\n"
             "heavy = sorted(m for m in ('torch', 'z3', 'sympy') if m in sys.modules)\n"
             "print('HEAVY', ','.join(heavy), 'RC', rc)\n")
    r = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, timeout=120)
    assert r.stdout.strip().splitlines() == ["HEAVY  RC 2"], (r.stdout, r.stderr)  # nothing else on stdout
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("nonid: ") and fragment in r.stderr, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt", "foreign"], "something was written"


def test_prove_list_json_is_one_json_document(capsys):
    assert main(["prove", "--list", "--json", "--only", "lemma"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [c["name"] for c in listed] == ["lemma-a", "lemma-b", "lemma-c"] and all(c["title"] for c in listed)


def test_python_m_proofs_takes_the_options_of_nonid_prove():
    r = subprocess.run([sys.executable, "-m", "proofs", "--list", "--only", "lemma-a"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.split() [0] == "lemma-a", (r.stdout, r.stderr)
    r = subprocess.run([sys.executable, "-m", "proofs", "--bogus"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.strip().startswith("proofs: unrecognized arguments: --bogus"), r.stderr
    assert r.stderr.count("\n") == 1
    r = subprocess.run([sys.executable, "-m", "proofs", "--onyl", "x"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.strip().endswith("(did you mean '--only' or '--json'?)"), r.stderr


def _earlier_experiment(folder):
    folder.mkdir()
    (folder / "experiment.json").write_text('{"format": "nonid-experiment-1", "experiment": "rule-extrapolation"}\n')
    (folder / "results.csv").write_text("name\n")
    (folder / "L3-linear-ml-s0").mkdir()
    (folder / "L3-linear-ml-s0" / "result.json").write_text("{}\n")
    return folder


def test_experiment_out_holding_an_earlier_output_needs_resume_or_force(tmp_path, capsys):
    out = _earlier_experiment(tmp_path / "runs")
    base = ["experiment", "rule-extrapolation", "--arch", "linear", "--regime", "ml", "--seeds", "1", "--steps", "2",
            "--quiet", "--out", str(out)]
    assert main(base) == 2
    assert "(an earlier output of `nonid experiment`: pass --force to replace it or --resume to continue it)" in capsys.readouterr().err
    (out / "L3-linear-ml-s0" / "draft.tex").write_text("a user's file\n")
    assert main(base + ["--force"]) == 2  # a file it did not write: never deleted, not even with --force
    assert "L3-linear-ml-s0/draft.tex" in capsys.readouterr().err
    (out / "L3-linear-ml-s0" / "draft.tex").unlink()
    assert main(base + ["--force"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["L3-linear-ml-s0", "experiment.json", "ood_r1_vs_gap.png",
                                                     "report.md", "results.csv"]
    assert main(base + ["--resume"]) == 0  # its own output: continued (the finished run is read back)


def test_an_interrupt_with_a_resume_hint_is_still_exit_130_and_one_line(capsys):
    from nonid.cmd_experiment import _resume_command
    from theory.errors import Interrupted, exit_status

    def body() -> int:
        raise Interrupted("continue with: nonid experiment rule-extrapolation --out runs --resume")

    assert exit_status("nonid", body) == 130
    assert capsys.readouterr().err == "nonid: interrupted; continue with: nonid experiment rule-extrapolation --out runs --resume\n"
    import argparse

    args = argparse.Namespace(argv=["experiment", "rule-extrapolation", "--out", "my runs", "--force"])
    assert _resume_command(args) == "nonid experiment rule-extrapolation --out 'my runs' --resume"


def test_instance_checks_say_they_are_instance_checks():
    """The chain-rule and Lemma A–C checks run on a fixed set of instances: their titles and claims say
    so (with the real count), and none claims the lemma for every support."""
    import proofs
    from proofs.instances import lemma_instances

    n = len(lemma_instances())
    checks = {c.name: c for c in proofs.discover()}
    for name in ("chain-rule", "lemma-a", "lemma-b", "lemma-c"):
        assert checks[name].title.endswith(f"on {n} instances"), checks[name].title
        cert = proofs.run(checks[name])
        assert cert.claim.startswith("Instance check of") and f"each of the {n} instances" in cert.claim, cert.claim


def test_icl_certifies_the_learning_instance_and_prints_one_json_document(capsys):
    """`nonid icl` on the designed instance: the five Proposition 2 certificates, every one verified;
    with --json one JSON list on stdout and nothing else."""
    assert main(["icl"]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert [r.split()[0] for r in rows] == ["prop-2-icl-effect", "prop-2-icl-surgery", "prop-2-icl-surgery-every-epsilon",
                                            "prop-2-icl-mixture", "prop-2-icl-mixture-every-epsilon"]
    assert all(r.split()[1] == "verified" for r in rows)
    assert main(["icl", "--json", "--delta", "1"]) == 1  # a gap of 1 is more than any of them shows
    out = capsys.readouterr().out
    certs = json.loads(out)
    assert len(certs) == 5 and not all(c["status"] == "verified" for c in certs)
