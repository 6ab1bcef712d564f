"""Where `nonid experiment` trains (empirical.executors: local processes, Ray tasks), the report rebuilt from
the run folders (--report-only), the TensorBoard logs (--log-dir, empirical.tblog) and the progress bars
(constructions.progress): the same rows wherever the runs train, bad input refused before any work, Ray
bound to the loopback interface only, Ctrl-C an interrupt and never a verdict."""

from __future__ import annotations

import io
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from empirical.errors import InvalidExperimentConfig
from empirical.executors import LocalExecutor, RayExecutor, make_executor, ray_available
from nonid.cli import main
from theory.errors import InapplicableOption

torch = pytest.importorskip("torch")

GRID = ["experiment", "rule-extrapolation", "--arch", "linear", "--regime", "ml", "--steps", "3", "--device", "cpu",
        "--quiet"]
LOOPBACK = {"127.0.0.1", "::1", "::ffff:127.0.0.1"}


def _cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    res = capsys.readouterr()
    return code, res.out, res.err


def _strip_wall(row):
    return replace(row, wall_s=0.0)


# ---- bad input: one line, exit 2, nothing written, before any work -------------------------------------------
@pytest.mark.parametrize("extra, fragment", [
    (["--executor", "nope"], "--executor 'nope' is not one of 'local', 'ray'"),
    (["--executor", "rya"], "(did you mean 'ray'?)"),
    (["--executor", "ray", "--ensemble"], "--ensemble trains in this one process: it does not take --executor ray"),
    (["--ray-address", "auto"], "--ray-address 'auto' applies to --executor ray only"),
    (["--first-seed", "-1"], "--first-seed"),
    (["--jobs", "0"], "--jobs"),
    (["--executor", "ray", "--ray-address", "127.0.0.1:1"], "--ray-address '127.0.0.1:1': cannot connect"),
])
def test_bad_executor_input_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, extra, fragment):
    out = tmp_path / "runs"
    code, _out, err = _cli(capsys, *GRID, "--seeds", "1", "--out", str(out), *extra)
    assert code == 2 and err.startswith("nonid: ") and err.count("\n") == 1 and fragment in err, err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("extra, fragment", [
    (["--seeds", "2"], "--seeds trains runs: --report-only only rebuilds the report from --out"),
    (["--executor", "ray"], "--executor trains runs"),
    (["--log-dir", "tb"], "--log-dir trains runs"),
    ([], "not an earlier output of `nonid experiment`"),
])
def test_report_only_refuses_training_options_and_a_folder_not_its_own(tmp_path, capsys, extra, fragment):
    out = tmp_path / "runs"
    out.mkdir()
    code, _out, err = _cli(capsys, "experiment", "rule-extrapolation", "--report-only", "--out", str(out), *extra)
    assert code == 2 and err.startswith("nonid: ") and err.count("\n") == 1 and fragment in err, err
    assert list(tmp_path.iterdir()) == [out] and list(out.iterdir()) == []


def test_ray_missing_names_the_extra_before_any_work(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as it does without the package
    assert not ray_available()
    code, _out, err = _cli(capsys, *GRID, "--seeds", "1", "--out", str(tmp_path / "runs"), "--executor", "ray")
    assert code == 2 and "pip install -e '.[ray]'" in err and err.count("\n") == 1, err
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(InvalidExperimentConfig, match=r"pip install -e '\.\[ray\]'"):
        make_executor("ray")
    with pytest.raises(InvalidExperimentConfig, match=r"pip install -e '\.\[ray\]'"):
        next(RayExecutor().imap_unordered(abs, [1]))


def test_tensorboard_missing_or_a_log_dir_inside_out_is_refused(tmp_path, capsys, monkeypatch):
    out = tmp_path / "runs"
    code, _o, err = _cli(capsys, *GRID, "--seeds", "1", "--out", str(out), "--log-dir", str(out / "tb"))
    assert code == 2 and "overlap" in err and err.count("\n") == 1, err
    (tmp_path / "afile").write_text("x")
    code, _o, err = _cli(capsys, *GRID, "--seeds", "1", "--out", str(out), "--log-dir", str(tmp_path / "afile"))
    assert code == 2 and "is a file" in err, err
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    code, _o, err = _cli(capsys, *GRID, "--seeds", "1", "--out", str(out), "--log-dir", str(tmp_path / "tb"))
    assert code == 2 and "pip install -e '.[logging]'" in err and err.count("\n") == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def test_make_executor_and_run_grid_refuse_what_does_not_combine(tmp_path):
    with pytest.raises(InvalidExperimentConfig, match="'nope'"):
        make_executor("nope")
    with pytest.raises(InapplicableOption, match="--ray-address"):
        make_executor("local", address="auto")
    with pytest.raises(InvalidExperimentConfig, match="jobs = 0"):
        LocalExecutor(0)
    from empirical.experiment import run_grid

    with pytest.raises(InvalidExperimentConfig, match="jobs = 2 and an executor"):
        run_grid(["L3"], ["linear"], ["ml"], [0], tmp_path / "o", torch.device("cpu"), jobs=2, executor=LocalExecutor(2))
    with pytest.raises(InvalidExperimentConfig, match="does not take the ray executor"):
        run_grid(["L3"], ["linear"], ["ml"], [0], tmp_path / "o", torch.device("cpu"), ensemble=True, executor=RayExecutor())
    assert not (tmp_path / "o").exists()


def test_the_local_executor_yields_every_item_with_its_index():
    assert list(LocalExecutor().imap_unordered(abs, [-2, 3, -5])) == [(0, 2), (1, 3), (2, 5)]
    assert LocalExecutor().in_process() and not LocalExecutor(2).in_process() and not RayExecutor().in_process()
    assert list(LocalExecutor(2).imap_unordered(abs, [-7])) == [(0, 7)]  # one item: no pool started


# ---- Ray ------------------------------------------------------------------------------------------------------
def _listeners(pid: int) -> list[tuple[str, int, str]]:
    """(address, port, process name) of every listening TCP socket and bound UDP socket of ``pid``'s descendants."""
    import psutil  # Ray ships it (ray/thirdparty_files), on sys.path once ray is imported

    found = []
    for proc in psutil.Process(pid).children(recursive=True):
        try:
            conns = proc.net_connections(kind="inet") if hasattr(proc, "net_connections") else proc.connections(kind="inet")
            name = proc.name()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        for c in conns:
            if c.laddr and (c.status == psutil.CONN_LISTEN or c.type == 2):  # 2: SOCK_DGRAM, bound
                found.append((c.laddr.ip, c.laddr.port, name))
    return found


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray (2 CPUs, bound to 127.0.0.1) for the module's in-process tests; its start-up time."""
    if not ray_available():
        pytest.skip("ray is not installed (pip install -e '.[ray]')")
    from empirical.executors import start_local_ray

    start = time.perf_counter()
    try:
        start_local_ray(2, log_to_driver=False)  # imports ray itself, after the switches are set
    except Exception as e:  # noqa: BLE001 - any reason Ray cannot start in this sandbox is a skip, said plainly
        pytest.skip(f"a local Ray could not start here: {type(e).__name__}: {str(e)[:200]}")
    import ray

    yield time.perf_counter() - start
    ray.shutdown()


def test_a_local_ray_listens_on_the_loopback_interface_only(local_ray):
    listeners = _listeners(os.getpid())
    assert listeners, "no listening socket found under this process: the check would be vacuous"
    outside = [x for x in listeners if x[0] not in LOOPBACK]
    assert not outside, f"Ray listens beyond the loopback interface: {outside}"
    assert os.environ["RAY_USAGE_STATS_ENABLED"] == "0"


def test_ray_and_local_executors_give_the_same_rows_and_files(tmp_path, local_ray):
    from empirical.experiment import run_grid

    kw = dict(steps=5, progress=False, echo=None)
    grid = (["L3"], ["linear"], ["ml"], [0, 1])
    start = time.perf_counter()
    on_ray = run_grid(*grid, tmp_path / "ray", torch.device("cpu"), executor=RayExecutor(), **kw)
    ray_s = time.perf_counter() - start
    here = run_grid(*grid, tmp_path / "local", torch.device("cpu"), **kw)
    assert [_strip_wall(r) for r in on_ray] == [_strip_wall(r) for r in here], f"ray grid {ray_s:.1f}s"
    assert [r.seed for r in on_ray] == [0, 1]  # grid order, whatever order the tasks finished in
    for name in ("L3-linear-ml-s0", "L3-linear-ml-s1"):
        assert (tmp_path / "ray" / name / "result.json").is_file() and (tmp_path / "ray" / name / "checkpoint.pt").is_file()


def test_a_ray_task_raises_the_runs_own_error_not_rays_wrapper(tmp_path, local_ray):
    from empirical.experiment import RunSpec, _run_packed
    from theory.errors import InvalidLanguage

    bad = (RunSpec("L9", "linear", "ml", 0), tmp_path, "cpu", False, False, 1)
    with pytest.raises(InvalidLanguage, match="L9") as err:
        list(RayExecutor().imap_unordered(_run_packed, [bad]))
    assert "Traceback" not in str(err.value)


def test_nonid_experiment_on_ray_end_to_end(tmp_path, capsys, local_ray):
    out = tmp_path / "runs"
    code, text, err = _cli(capsys, *GRID, "--seeds", "2", "--out", str(out), "--executor", "ray", "--threads", "1")
    assert code == 0, err
    assert "a local Ray" in text and "L3-linear-ml-s0 " in text and "L3-linear-ml-s1 " in text
    assert (out / "results.csv").read_text().count("\n") == 3 and (out / "report.md").is_file()


def _wait_for(path_glob: Path, pattern: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(path_glob.glob(pattern)):
            return True
        time.sleep(0.2)
    return False


@pytest.mark.slow
def test_ctrl_c_on_ray_cancels_the_tasks_and_exits_130_with_no_verdict(tmp_path):
    """The command's own local Ray, interrupted while its tasks train (SIGINT to the whole process group, as a
    terminal sends it): exit 130 with the one resume line, no Ray process left, only loopback listeners while
    it ran; the printed command then finishes the grid."""
    if not ray_available():
        pytest.skip("ray is not installed (pip install -e '.[ray]')")
    pytest.importorskip("psutil")
    out = tmp_path / "runs"
    argv = ["experiment", "rule-extrapolation", "--arch", "transformer", "--regime", "ml", "--seeds", "2", "--steps", "3000",
            "--out", str(out), "--quiet", "--executor", "ray"]
    p = subprocess.Popen([sys.executable, "-m", "nonid", *argv], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, start_new_session=True, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    try:
        training = _wait_for(out, "*/checkpoint.pt", 90)
        listeners = _listeners(p.pid)
        import psutil

        family = psutil.Process(p.pid).children(recursive=True)
        os.killpg(p.pid, signal.SIGINT)
        text, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    if p.returncode == 0:
        pytest.skip("the grid finished before the interrupt")
    assert training, "no run had started training within 90 s"
    assert listeners and not [x for x in listeners if x[0] not in LOOPBACK], listeners
    assert p.returncode == 130, (p.returncode, err[-2000:])
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nonid: interrupted; finished runs and checkpoints are kept; continue with: ")
    assert "certificate" not in text and "verified" not in text and "falsified" not in text
    _gone, alive = psutil.wait_procs(family, timeout=15)
    assert not alive, f"left running after the interrupt: {[q.pid for q in alive]}"
    resume = shlex.split(lines[0].split("continue with: ", 1)[1])
    assert "--resume" in resume and "--executor" in resume


# ---- the report rebuilt from the run folders -----------------------------------------------------------------
def _csv_without_wall(path: Path) -> list[list[str]]:
    rows = [line.split(",") for line in path.read_text().splitlines()]
    col = rows[0].index("wall_s")
    return [r[:col] + r[col + 1:] for r in rows]


def _certificate_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(("certificate ", "reason: "))]


def test_a_grid_split_over_two_invocations_rebuilds_the_report_of_one(tmp_path, capsys):
    one, split = tmp_path / "one", tmp_path / "split"
    code, _o, err = _cli(capsys, *GRID, "--regime", "ml,oracle", "--seeds", "2", "--out", str(one))
    assert code == 0, err
    code, _o, err = _cli(capsys, *GRID, "--regime", "ml,oracle", "--seeds", "1", "--out", str(split))  # seed 0
    assert code == 0, err
    code, first_seed, err = _cli(capsys, *GRID, "--regime", "ml,oracle", "--first-seed", "1", "--seeds", "1", "--out",
                                 str(split), "--resume")  # seed 1, as another machine would add it
    assert code == 0 and "seeds 1..1" in first_seed, err
    assert (split / "results.csv").read_text().count("\n") == 3  # that invocation's own report: its two runs
    code, rebuilt, err = _cli(capsys, "experiment", "rule-extrapolation", "--out", str(split), "--report-only")
    assert code == 0, err
    assert (split / "report.md").read_text() == (one / "report.md").read_text()
    assert _csv_without_wall(split / "results.csv") == _csv_without_wall(one / "results.csv")
    code, again, err = _cli(capsys, "experiment", "rule-extrapolation", "--out", str(one), "--report-only")
    assert code == 0 and _certificate_lines(again) == _certificate_lines(rebuilt) != [], err
    assert (one / "results.csv").read_text().count("\n") == 5


_GAP = {"gap_lo": 0.0005, "gap_hi": 0.0006, "gap_padded_lo": 0.0004, "gap_padded_hi": 0.0005, "gap_token_lo": 0.0008,
        "gap_token_hi": 0.0009, "floor_padded": 0.084, "floor_token": 0.154, "entropy": 2.77, "gap_prefixes": 153,
        "gap_method": "rigorous", "gap_rigorous": True}
_ROW = {"finished": True, "language": "L3", "arch": "lstm", "size": "cpu", "steps": None, "aux_lengths": [9, 10],
        "steps_done": 20, "wall_s": 0.1, "best_step": 20, "params": 1287, "test_exact": True, "data": "L3", "step": 20,
        "test_loss_padded": 0.49, "test_loss_token": 0.9, "id_r1": 1.0, "id_r2": 1.0, "ood_r2c": 1.0,
        "min_test_loss_padded": 0.49, "min_test_loss_token": 0.9, "max_id_r1": 1.0, "max_id_r2": 1.0, "max_ood_r2c": 1.0,
        "regime_prompts": "held-out", "regime_prompt_count": 184, "regime_prompt_lengths": [9, 10], "convention": "paper",
        "prompts": "L3 prompts", "id_finished": 1.0, "ood_finished": 1.0, "id_r1_finished": 1.0, "id_r2_finished": 1.0,
        "ood_r1_finished": 1.0, "ood_r2c_finished": 1.0, "max_id_r1_finished": 1.0, "max_id_r2_finished": 1.0,
        "max_ood_r1_finished": 1.0, "max_ood_r2c_finished": 1.0}


def _folder_of_runs(out: Path, edit=lambda name, row: row) -> Path:
    """An experiment folder of 3 regimes × 3 seeds of stored rows (as other machines would leave them) whose
    certificate is verified: certified gaps ≤ 9e-4 nats/token, OOD R1 0 / 0.5 / 1 on every seed."""
    out.mkdir()
    (out / "experiment.json").write_text(json.dumps({"format": "nonid-experiment-1", "experiment": "rule-extrapolation"}))
    for regime, ood in (("ml", 0.5), ("adversarial", 0.0), ("oracle", 1.0)):
        for seed in range(3):
            name = f"L3-lstm-{regime}-s{seed}"
            row = {**_ROW, **_GAP, "name": name, "regime": regime, "seed": seed, "ood_r1": ood, "max_ood_r1": ood}
            if regime == "ml":
                row.update(aux_lengths=None, regime_prompts=None, regime_prompt_count=None, regime_prompt_lengths=None)
            row = edit(name, row)
            if row is not None:
                (out / name).mkdir()
                (out / name / "result.json").write_text(json.dumps({"row": row, "history": []}))
    return out


def _verdict(text: str) -> str:
    line = next(x for x in text.splitlines() if x.startswith("certificate experiment-rule-extrapolation: "))
    return line.split(": ", 1)[1].split(" ", 1)[0]


def _gap_above_eps(name, row):
    return {**row, "gap_token_lo": 0.02, "gap_token_hi": 0.03} if name == "L3-lstm-oracle-s1" else row


def _a_seed_missing(name, row):
    return None if name == "L3-lstm-adversarial-s2" else row


def _regimes_not_apart(name, row):
    return {**row, "ood_r1": 0.5, "max_ood_r1": 0.5}


@pytest.mark.parametrize("edit, verdict", [
    (lambda name, row: row, "verified"),  # the control
    (_gap_above_eps, "falsified"),  # one run certainly not saturated at eps
    (_regimes_not_apart, "falsified"),  # no two regimes Delta apart
    (_a_seed_missing, "unknown"),  # a regime with 2 seeds: not decided
])
def test_report_only_verdicts_of_stored_runs_with_their_control(tmp_path, capsys, edit, verdict):
    out = _folder_of_runs(tmp_path / "runs", edit)
    code, text, err = _cli(capsys, "experiment", "rule-extrapolation", "--out", str(out), "--report-only", "--no-recheck")
    assert code == 0, err
    assert _verdict(text) == verdict, _certificate_lines(text)
    assert "not re-derived: --no-recheck" in _certificate_lines(text)[0]
    assert (out / "results.csv").is_file() and (out / "report.md").is_file()


def test_report_only_rechecks_by_default_so_rows_without_weights_certify_nothing(tmp_path, capsys):
    out = _folder_of_runs(tmp_path / "runs")  # stored rows only: no checkpoint.pt to re-derive a gap from
    code, text, err = _cli(capsys, "experiment", "rule-extrapolation", "--out", str(out), "--report-only")
    assert code == 0 and _verdict(text) == "unknown", _certificate_lines(text)
    assert err.count("gap not certified: ") == 9 and "L3-lstm-oracle-s2: not re-derived: no checkpoint.pt" in err, err
    assert "L3-lstm-ml-s0: no gap (not re-derived: no checkpoint.pt" in _certificate_lines(text)[1]


def test_report_only_refuses_a_damaged_or_foreign_folder_and_writes_nothing(tmp_path, capsys):
    out = _folder_of_runs(tmp_path / "runs")
    (out / "L3-lstm-ml-s1" / "result.json").write_text("{not json")
    code, _t, err = _cli(capsys, "experiment", "rule-extrapolation", "--out", str(out), "--report-only")
    assert code == 2 and "L3-lstm-ml-s1" in err and err.count("\n") == 1, err
    assert not (out / "results.csv").exists() and not (out / "report.md").exists()
    (out / "L3-lstm-ml-s1" / "result.json").unlink()
    (out / "notes.txt").write_text("mine")
    code, _t, err = _cli(capsys, "experiment", "rule-extrapolation", "--out", str(out), "--report-only")
    assert code == 2 and "notes.txt" in err, err
    (out / "notes.txt").unlink()
    code, text, err = _cli(capsys, "experiment", "rule-extrapolation", "--out", str(out), "--report-only")
    assert code == 0 and "1 unfinished runs (no result.json): L3-lstm-ml-s1" in err and _verdict(text) == "unknown", err


# ---- TensorBoard ----------------------------------------------------------------------------------------------
def _events(folder: Path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder))
    acc.Reload()
    return acc


def test_log_dir_holds_the_training_curves_and_the_recorded_numbers_of_each_run(tmp_path, capsys):
    pytest.importorskip("tensorboard")
    import numpy as np

    from empirical.certificate import load_rows

    out, logs = tmp_path / "runs", tmp_path / "tb"
    code, _t, err = _cli(capsys, *GRID, "--regime", "ml,oracle", "--seeds", "1", "--steps", "6", "--out", str(out),
                         "--log-dir", str(logs))
    assert code == 0, err
    assert sorted(p.name for p in logs.iterdir()) == ["L3-linear-ml-s0", "L3-linear-oracle-s0"]
    rows = {r.name: r for r in load_rows(out)}
    for name, row in rows.items():
        acc = _events(logs / name)
        scalars = acc.Tags()["scalars"]
        assert [e.step for e in acc.Scalars("train/loss")] == list(range(1, 7))
        assert ("train/regime_loss" in scalars) == (row.regime != "ml")
        history = json.loads((out / name / "result.json").read_text())["history"]
        assert [e.step for e in acc.Scalars("eval/val_loss")] == [h["step"] for h in history] == [0, 6]
        assert [e.value for e in acc.Scalars("eval/ood_r1")] == pytest.approx([h["ood_r1"] for h in history], abs=1e-6)
        (hi,), (lo,) = acc.Scalars("certified/gap_token_hi"), acc.Scalars("certified/gap_token_lo")
        assert hi.step == lo.step == 6
        eps32 = float(np.finfo(np.float32).eps)
        assert row.gap.gap_token_hi <= hi.value <= row.gap.gap_token_hi * (1 + eps32)  # float32, rounded up: still a bound
        assert row.gap.gap_token_lo * (1 - eps32) <= lo.value <= row.gap.gap_token_lo  # rounded down
        assert acc.Scalars("certified/ood_r1")[0].value == pytest.approx(row.ood_r1, abs=1e-6)
    code, _t, err = _cli(capsys, *GRID, "--regime", "ml,oracle", "--seeds", "1", "--steps", "6", "--out", str(out),
                         "--log-dir", str(logs), "--force")
    assert code == 0, err  # trained afresh into the same log folders: the older records are purged, each step once
    assert [e.step for e in _events(logs / "L3-linear-ml-s0").Scalars("train/loss")] == list(range(1, 7))


def test_ensemble_training_logs_each_member(tmp_path):
    pytest.importorskip("tensorboard")
    from empirical.experiment import run_grid

    rows = run_grid(["L3"], ["linear"], ["ml"], [0, 1], tmp_path / "o", torch.device("cpu"), steps=4, progress=False,
                    echo=None, ensemble=True, log_dir=tmp_path / "tb")
    for row in rows:
        acc = _events(tmp_path / "tb" / row.name)
        assert [e.step for e in acc.Scalars("train/loss")] == [1, 2, 3, 4]
        assert acc.Scalars("certified/ood_r1")[0].step == 4


# ---- progress: bars on a terminal only, plain lines otherwise --------------------------------------------------
class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bars_only_on_a_terminal_and_not_in_worker_processes(monkeypatch):
    pytest.importorskip("tqdm")
    from constructions.progress import Progress, no_bars

    assert not Progress(5, terminal_only=True).has_bar  # pytest's stderr is not a terminal
    monkeypatch.setattr(sys, "stderr", _Terminal())
    bar = Progress(5, terminal_only=True, label="runs")
    assert bar.has_bar
    printed: list[str] = []
    bar.around(printed.append, "a summary line")
    bar.advance(5, "done")
    bar.close()
    assert printed == ["a summary line"] and "runs" in sys.stderr.getvalue()
    with no_bars():
        assert not Progress(5, terminal_only=True).has_bar
    assert not Progress(5, terminal_only=True, enabled=False).has_bar
    assert Progress(5, terminal_only=True).has_bar


def test_without_a_terminal_the_training_lines_are_todays(tmp_path, capsys):
    code = main(["experiment", "rule-extrapolation", "--arch", "linear", "--regime", "ml", "--seeds", "2", "--steps", "3",
                 "--device", "cpu", "--out", str(tmp_path / "runs")])
    res = capsys.readouterr()
    assert code == 0, res.err
    lines = [x for x in res.err.splitlines() if x.strip()]
    assert len(lines) == 2 and all(x.startswith("  [L3-linear-ml-s") and " step 3/3  train " in x for x in lines), lines
    assert "\r" not in res.err and "it/s" not in res.err and "run/s" not in res.err


def test_a_resumed_run_logs_each_step_once(tmp_path):
    """Interrupted after step 5 with its checkpoint at step 4, then resumed: the records of step 5 from the first
    session are purged, so each step shows once."""
    pytest.importorskip("tensorboard")
    from empirical.experiment import RunSpec, _setup
    from empirical.tblog import RunLog
    from empirical.train import TrainConfig, train

    def session(stop_after, resume):
        run = _setup(RunSpec("L3", "linear", "ml", 0, steps=6), tmp_path / "o")
        cfg = TrainConfig(steps=6, batch_size=8, eval_every=2, checkpoint_every=2)
        log = RunLog(tmp_path / "tb", "run")
        try:
            return train(run.model, run.vocab, run.data.train, cfg, evaluate=run.evaluate, run_dir=run.run_dir,
                         fingerprint=run.fingerprint, resume=resume, stop_after=stop_after, progress=False, log=log)
        finally:
            log.close()

    assert session(5, False).step == 5
    assert session(None, True).finished
    acc = _events(tmp_path / "tb" / "run")
    assert [e.step for e in acc.Scalars("train/loss")] == [1, 2, 3, 4, 5, 6]
    assert [e.step for e in acc.Scalars("eval/val_loss")] == [0, 2, 4, 6]
    assert len(list((tmp_path / "tb" / "run").glob("events.out.tfevents.*"))) == 2
