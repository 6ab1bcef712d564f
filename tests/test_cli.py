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


def test_prove_list(capsys):
    assert main(["prove", "--list"]) == 0
    assert "lemma-a" in capsys.readouterr().out


@pytest.mark.parametrize("args, fragment", [
    (["prove", "--only", "no-such-check"], "'no-such-check' matches no check"),
    (["prove", "--bogus"], "unrecognized arguments: --bogus"),
    (["frobnicate"], "invalid choice"),
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
