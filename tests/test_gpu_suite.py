"""The prepared GPU suite (benchmarks/gpu_suite.py) in its tiny CPU configuration: every part runs and
reports its numbers, ``--write`` writes sections naming the device into a temporary BENCHMARKS.md, z3
is never imported, ``--device cuda`` without CUDA is one line and exit 2, a failing part is one line
and exit 1 with the other parts still run, an interrupt is 130 with no section of the part it stopped.
The tiny run happens once, in a fresh process (10-30 s on 2 cores, with the load)."""

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PARTS = ("anbn-regimes", "distill", "enclosure")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """The tiny suite with --write, in a fresh interpreter, its BENCHMARKS.md a temporary copy."""
    tmp = tmp_path_factory.mktemp("gpu_suite")
    md, out, export = tmp / "BENCHMARKS.md", tmp / "out", tmp / "export"
    if (ROOT / "BENCHMARKS.md").exists():
        shutil.copyfile(ROOT / "BENCHMARKS.md", md)
    code = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        import benchmarks.report as report
        report.BENCHMARKS_MD = Path({str(md)!r})
        from benchmarks.gpu_suite import main
        rc = main(["--device", "cpu", "--tiny", "--write", "--out", {str(out)!r}, "--export", {str(export)!r}])
        print("Z3_IMPORTED", "z3" in sys.modules, flush=True)
        sys.exit(rc)
    """)
    before = (ROOT / "BENCHMARKS.md").read_bytes() if (ROOT / "BENCHMARKS.md").exists() else None
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    after = (ROOT / "BENCHMARKS.md").read_bytes() if (ROOT / "BENCHMARKS.md").exists() else None
    return {"proc": proc, "md": md, "out": out, "export": export, "tracked_unchanged": before == after}


def test_tiny_suite_runs_every_part(tiny_run):
    proc = tiny_run["proc"]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads((tiny_run["out"] / "gpu_suite.json").read_text())
    assert summary["finished"] and summary["tiny"]
    parts = {p["name"]: p for p in summary["parts"]}
    assert set(parts) == set(PARTS)
    assert all(p["status"] == "ok" for p in parts.values()), {k: p["status"] for k, p in parts.items()}
    for name in PARTS:  # each part printed its size and estimate before it ran
        assert f"({name.replace('anbn-regimes', 'anbn regimes')})" in proc.stdout
    regimes = parts["anbn-regimes"]["numbers"]
    assert regimes["steps"] == 5 and len(regimes["runs"]) == 3
    assert {"ml", "adversarial", "oracle"} == {r["name"].split("-")[2] for r in regimes["runs"]}
    for r in regimes["runs"]:
        assert r["gap_padded_hi"] >= r["gap_padded_lo"] >= 0 and r["gap_token_hi"] > 0
        assert r["ood_r1"] is not None and r["wall_s"] > 0
    assert regimes["calibration"]["fixed_s"] > 0 and regimes["certificate"] in ("verified", "falsified", "unknown")
    distill = parts["distill"]["numbers"]
    assert distill["n_max"] == 4 and distill["prefixes"] > 0
    assert all(distill["students"][k]["steps"] == 10 for k in ("q1", "q2"))
    assert distill["status"] in ("verified", "falsified", "unknown") and len(distill["kl"]["q1"]) == 2
    assert distill["recheck"]["status"] in ("verified", "falsified", "unknown")
    enclosure = parts["enclosure"]["numbers"]
    assert enclosure["length"] == 6 and enclosure["rows"][-1][1] == "127" and enclosure["prefixes_per_s"] > 0
    assert "Z3_IMPORTED False" in proc.stdout  # checked inside the fresh process, after the whole run


def test_tiny_suite_writes_sections_naming_the_device(tiny_run):
    text = tiny_run["md"].read_text()
    for key in (*PARTS, "suite"):
        block = text.split(f"<!-- bench:gpu-{key}-tiny-cpu -->")[1].split(f"<!-- /bench:gpu-{key}-tiny-cpu -->")[0]
        assert "Device: **CPU**" in block and "torch " in block
    assert "<!-- bench:gpu-anbn-regimes -->" not in text  # a tiny CPU run never replaces the GPU's section
    assert tiny_run["tracked_unchanged"]
    exported = {p.name for p in tiny_run["export"].iterdir()}
    assert {"BENCHMARKS.sections.md", "gpu_suite.json", "anbn_regimes.csv", "distill_certificate.json"} <= exported


def test_apply_puts_the_sections_into_benchmarks_md(tiny_run, tmp_path, monkeypatch):
    import benchmarks.report as report
    from benchmarks import gpu_suite

    target = tmp_path / "BENCHMARKS.md"
    target.write_text(report.HEADER + "\n<!-- bench:other -->\nkept\n<!-- /bench:other -->\n")
    monkeypatch.setattr(report, "BENCHMARKS_MD", target)
    assert gpu_suite.main(["--apply", str(tiny_run["export"] / "BENCHMARKS.sections.md")]) == 0
    text = target.read_text()
    assert "kept" in text and text.count("<!-- bench:gpu-") == 4
    empty = tmp_path / "none.md"
    empty.write_text("nothing\n")
    assert gpu_suite.main(["--apply", str(empty)]) == 2


def test_cuda_without_cuda_is_one_line_and_exit_2(tmp_path, capsys):
    import torch

    from benchmarks import gpu_suite

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert gpu_suite.main(["--device", "cuda", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("gpu_suite: ") and "CUDA" in err
    assert not (tmp_path / "o").exists()


def test_out_inside_the_tracked_folder_needs_write():
    import benchmarks.report as report
    from benchmarks import gpu_suite

    with pytest.raises(SystemExit) as e:
        gpu_suite.main(["--device", "cpu", "--tiny", "--out", str(report.TRACKED_OUT / "gpu_suite")])
    assert e.value.code == 2


def _fake(name, action):
    from benchmarks.gpu_suite import PartResult

    def part(ctx, budget):
        if action == "raise":
            raise RuntimeError("broken\nsecond line")
        if action == "interrupt":
            raise KeyboardInterrupt
        return PartResult(name, f"fake {name}", "ok", body=f"body of {name}", numbers={"n": 1}, summary="fine")

    return (name, 0.5, part)


def test_a_failing_part_is_one_line_and_the_suite_goes_on(tmp_path, monkeypatch, capsys):
    import benchmarks.report as report
    from benchmarks import gpu_suite

    monkeypatch.setattr(report, "BENCHMARKS_MD", tmp_path / "BENCHMARKS.md")
    monkeypatch.setattr(gpu_suite, "PARTS", (_fake("a", "raise"), _fake("b", "ok")))
    assert gpu_suite.main(["--device", "cpu", "--write", "--out", str(tmp_path / "o")]) == 1
    out = capsys.readouterr().out
    failed = [line for line in out.splitlines() if line.startswith("gpu_suite: part a failed")]
    assert failed == ["gpu_suite: part a failed: RuntimeError: broken\\nsecond line"]
    text = (tmp_path / "BENCHMARKS.md").read_text()
    assert "<!-- bench:gpu-b-cpu -->" in text and "<!-- bench:gpu-a-cpu -->" not in text
    assert "<!-- bench:gpu-suite-cpu -->" in text and "failed: RuntimeError" in text


def test_an_interrupt_exits_130_without_the_stopped_part(tmp_path, monkeypatch, capsys):
    import benchmarks.report as report
    from benchmarks import gpu_suite

    monkeypatch.setattr(report, "BENCHMARKS_MD", tmp_path / "BENCHMARKS.md")
    monkeypatch.setattr(gpu_suite, "PARTS", (_fake("a", "ok"), _fake("b", "interrupt"), _fake("c", "ok")))
    assert gpu_suite.main(["--device", "cpu", "--write", "--out", str(tmp_path / "o")]) == 130
    assert capsys.readouterr().err.strip().splitlines()[-1] == "gpu_suite: interrupted"
    text = (tmp_path / "BENCHMARKS.md").read_text()
    assert "<!-- bench:gpu-a-cpu -->" in text  # finished before the interrupt: a whole section
    assert "gpu-b-cpu" not in text and "gpu-c-cpu" not in text and "gpu-suite-cpu" not in text


def test_the_schedule_is_the_largest_that_fits():
    from benchmarks.gpu_suite import choose_schedule

    # 15 runs × 2 s fixed + steps × 0.25 s (the grid's step) ≤ 100 s: 280 steps, 250 the largest multiple of 50
    assert choose_schedule(0.25, 2.0, 1.0, 1000, 15, 100.0, 20_000, 50) == 250
    assert choose_schedule(0.25, 2.0, 1.0, 1000, 15, 100.0, 150, 50) == 150  # the cap
    assert choose_schedule(0.25, 2.0, 1.0, 1000, 15, 30.0, 20_000, 50) is None  # not even 50 steps
    # beyond eval_every each further evaluation costs eval_s per run: 1,100 steps → 3 evaluations
    assert choose_schedule(0.05, 0.0, 0.0, 1000, 3, 55.0 + 1e-9, 20_000, 50) == 1100
    assert choose_schedule(0.05, 0.0, 10.0, 1000, 3, 55.0 + 1e-9, 20_000, 50) == 1000
