"""Interrupts are interrupts: SIGINT at any moment stops a command with exit 130 and the one line
``nonid: interrupted`` (naming the resume command where there is one), leaves no partial output and
never records a verdict — inside a z3 solve (which installs its own SIGINT handler unless told not
to), in worker processes, and in the middle of ``nonid appendix``."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from theory.processes import interruptible, parallel_imap

ROOT = Path(__file__).resolve().parents[1]


def _hard_query():
    """A pigeonhole query z3 needs far longer than a test for (40 distinct integers in 0..38)."""
    from theory.smt.query import _Query

    q = _Query()
    names = [f"x{i}" for i in range(40)]
    q.parts.append("".join(f"(declare-const {n} Int)" for n in names))
    q.parts.append(f"(assert (distinct {' '.join(names)}))")
    q.parts.append("".join(f"(assert (and (>= {n} 0) (< {n} 39)))" for n in names))
    return q


def _sigint_in(seconds: float) -> threading.Timer:
    timer = threading.Timer(seconds, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    return timer


@pytest.fixture
def python_sigint():
    """Python's own SIGINT handler for the test (a test worker may run with SIGINT ignored)."""
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, old)


def test_ctrl_c_inside_a_z3_solve_raises_keyboard_interrupt_not_unknown(python_sigint):
    pytest.importorskip("z3")
    from theory.smt.query import _solve

    start = time.perf_counter()
    timer = _sigint_in(0.5)
    with pytest.raises(KeyboardInterrupt):
        _solve(_hard_query(), 60_000)
    timer.cancel()
    assert time.perf_counter() - start < 10, "the solve was not cancelled promptly"


def test_a_real_z3_timeout_is_still_an_unknown_with_its_reason():
    pytest.importorskip("z3")
    from theory.smt.query import _solve

    out = _solve(_hard_query(), 300)
    assert out.answer == "unknown" and out.reason.startswith("timeout: z3 stopped at the 300 ms budget")


def test_interruptible_returns_the_value_and_reraises_the_calls_error():
    assert interruptible(lambda: 41 + 1, lambda: None) == 42

    def boom() -> int:
        raise ZeroDivisionError("inside")

    with pytest.raises(ZeroDivisionError, match="inside"):
        interruptible(boom, lambda: None)


def test_interruptible_cancels_the_call_and_discards_its_result(python_sigint):
    stop = threading.Event()
    cancelled = []

    def slow() -> str:
        stop.wait(30)
        return "a result that must not be used"

    def cancel() -> None:
        cancelled.append(True)
        stop.set()

    timer = _sigint_in(0.2)
    with pytest.raises(KeyboardInterrupt):
        interruptible(slow, cancel)
    timer.cancel()
    assert cancelled == [True]


def _square(x: int) -> int:
    return x * x


def _sleep_then(x: float) -> float:
    time.sleep(x)
    return x


def test_parallel_imap_keeps_order_and_propagates_errors():
    assert list(parallel_imap(_square, range(7), 2)) == [x * x for x in range(7)]
    with pytest.raises(ZeroDivisionError):
        list(parallel_imap(_reciprocal, [1, 0, 2], 2))


def _reciprocal(x: int) -> float:
    return 1 / x


def test_parallel_imap_stops_its_workers_at_once_on_an_interrupt(python_sigint):
    start = time.perf_counter()
    timer = _sigint_in(0.5)
    with pytest.raises(KeyboardInterrupt):
        list(parallel_imap(_sleep_then, [30.0, 30.0], 2))
    timer.cancel()
    assert time.perf_counter() - start < 10, "the parent waited for its workers"


class _SwallowsAnInterrupt:
    """A finalizer during which SIGINT arrives: Python prints "Exception ignored in …" and goes on."""

    def __del__(self) -> None:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.2)  # the handler runs here; its KeyboardInterrupt is swallowed with the finalizer


@pytest.fixture
def remembered_sigint(python_sigint):
    import theory.processes as processes

    previous_alarm = signal.getsignal(signal.SIGALRM)
    assert processes.install_sigint_handler()
    yield
    processes._PENDING = False
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, previous_alarm)


def _function_in(module: str, source: str, name: str):
    """A function whose frames belong to ``module`` (what the SIGINT handler reads), defined from
    ``source``."""
    namespace: dict = {"__name__": module}
    exec(textwrap.dedent(source), namespace)
    return namespace[name]


_SPIN = """
    import os, signal, time

    def spin(seconds, interrupt=False):
        if interrupt:
            os.kill(os.getpid(), signal.SIGINT)
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            pass
        return "returned"
"""


def test_an_interrupt_inside_torch_code_is_raised_once_the_project_s_code_runs(remembered_sigint):
    """Python code that torch runs (possibly called from C++, where a KeyboardInterrupt aborts the
    process) is never where the interrupt is raised: it is kept until the main thread is back in the
    project's own code, and raised there."""
    pytest.importorskip("torch")
    import theory.processes as processes

    inside_torch = _function_in("torch._nonid_test_callback", _SPIN, "spin")
    own_loop = _function_in("theory._nonid_test_loop", _SPIN, "spin")
    assert inside_torch(0.3, interrupt=True) == "returned"  # not raised inside "torch"
    assert processes.interrupt_pending()
    start = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        own_loop(10.0)
    assert time.perf_counter() - start < 2, "the deferred interrupt was not retried promptly"


def test_a_delivered_interrupt_disarms_its_retry(remembered_sigint):
    """Deferred inside torch, then raised by the project's poll: the retry timer is disarmed at once, so the
    interrupt is not raised a second time while the first unwinds (it could land in a frame that cannot
    pass it on).  Control: before the poll, the retry is armed."""
    pytest.importorskip("torch")
    import signal

    import theory.processes as processes

    inside_torch = _function_in("torch._nonid_test_callback", _SPIN, "spin")
    assert inside_torch(0.0, interrupt=True) == "returned"
    assert processes.interrupt_pending() and signal.getitimer(signal.ITIMER_REAL)[0] > 0  # armed
    with pytest.raises(KeyboardInterrupt):
        processes.raise_if_interrupted()
    assert signal.getitimer(signal.ITIMER_REAL)[0] == 0  # disarmed: nothing fires during the unwinding
    assert processes.interrupt_pending()  # still remembered for the next commit point


def test_which_frames_an_interrupt_may_be_raised_in():
    pytest.importorskip("torch")
    import sys

    from theory.processes import safe_to_raise

    def frame_of(module: str, source: str, name: str):
        return _function_in(module, source, name)()

    grab = "import sys\ndef here():\n    return sys._getframe()\n"
    assert safe_to_raise(frame_of("empirical.train", grab, "here"))
    assert not safe_to_raise(frame_of("torch.nn.modules.module", grab, "here"))
    assert not safe_to_raise(frame_of("warnings", grab, "here"))  # torch warns from C++
    assert safe_to_raise(frame_of("threading", grab, "here"))  # a wait called from Python
    importing = _function_in("importlib._bootstrap", "def call(f):\n    return f()\n", "call")
    assert not safe_to_raise(importing(_function_in("json", grab, "here")))  # an import in progress
    assert safe_to_raise(importing(_function_in("theory.exact", grab, "here")))  # the project's own code
    # a wait with a torch frame below it may be inside a torch callback: not safe
    below = _function_in("torch._nonid_test_caller", "def call(f):\n    return f()\n", "call")
    wait = _function_in("threading", grab, "here")
    assert not safe_to_raise(below(wait))
    assert "torch" in sys.modules


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # swallowed on purpose
def test_an_interrupt_swallowed_by_a_finalizer_still_stops_the_next_commit(tmp_path, remembered_sigint):
    from theory.fileio import write_atomic
    from theory.processes import interrupt_pending

    _SwallowsAnInterrupt()  # made and freed at once: the interrupt is lost to Python, not to us
    assert interrupt_pending()
    with pytest.raises(KeyboardInterrupt):
        write_atomic(tmp_path / "result.json", "{}")
    assert list(tmp_path.iterdir()) == [], "a file was committed after the interrupt"


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # swallowed on purpose
def test_a_command_whose_interrupt_was_swallowed_exits_130(capsys, python_sigint):
    from theory.errors import exit_status

    def body() -> int:
        _SwallowsAnInterrupt()
        return 0

    assert exit_status("nonid", body) == 130
    assert capsys.readouterr().err.splitlines()[-1] == "nonid: interrupted"


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # swallowed on purpose
def test_a_check_cut_short_by_a_swallowed_interrupt_records_no_verdict(remembered_sigint):
    import proofs
    from theory.certificate import Certificate, Status

    def run() -> Certificate:
        _SwallowsAnInterrupt()
        return Certificate(check="fake", claim="a claim", status=Status.VERIFIED, method="exact", detail="")

    check = next(iter(proofs.discover()))
    from dataclasses import replace

    with pytest.raises(KeyboardInterrupt):
        proofs.run(replace(check, run=run))


# ---- the command line -----------------------------------------------------------------------------
def _interrupt_cli(args: list[str], after_s: float, cwd: Path) -> tuple[int, str, str]:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    p = subprocess.Popen([sys.executable, "-m", "nonid", *args], cwd=cwd, env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    time.sleep(after_s)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    return p.returncode, out, err


def _assert_interrupted(rc: int, out: str, err: str) -> None:
    assert rc == 130, (rc, out, err)
    assert err.strip().splitlines() == ["nonid: interrupted"], err
    for line in out.splitlines():  # rows of checks that finished are verdicts of finished checks only
        assert " unknown " not in line and " falsified " not in line, line
    assert "verified, " not in out, "a summary line was printed after the interrupt"


@pytest.mark.parametrize("after_s", [1.5, 3.0, 4.5])
def test_sigint_during_a_z3_heavy_prove_exits_130_without_a_verdict(tmp_path, after_s):
    pytest.importorskip("z3")
    rc, out, err = _interrupt_cli(["prove", "--only", "z3-lemma-*"], after_s, tmp_path)
    if rc == 0:
        pytest.skip(f"the checks finished in under {after_s} s on this machine")
    _assert_interrupted(rc, out, err)


@pytest.mark.parametrize("after_s", [4.0, 12.0])
def test_sigint_during_appendix_leaves_no_output_and_no_verdict(tmp_path, after_s):
    pytest.importorskip("z3")
    target = tmp_path / "appx"
    rc, out, err = _interrupt_cli(["appendix", "--out", str(target), "--only", "z3-lemma-a-*", "--no-models",
                                   "--alphas", "none", "--z3-horizons", "10,12"], after_s, tmp_path)
    _assert_interrupted(rc, out, err)
    assert list(tmp_path.iterdir()) == [], f"left behind: {sorted(p.name for p in tmp_path.iterdir())}"


@pytest.mark.parametrize("ensemble", [False, True])
def test_sigint_during_an_experiment_exits_130_and_the_printed_command_resumes_it(tmp_path, ensemble):
    """``nonid experiment`` interrupted while it trains (one run after another, or as a batched ensemble) exits
    130 with the one line that names the resuming command; that command then finishes the grid from the
    checkpoints."""
    pytest.importorskip("torch")
    out = tmp_path / "runs"
    argv = ["experiment", "rule-extrapolation", "--language", "L3", "--arch", "transformer", "--regime", "ml",
            "--seeds", "2", "--steps", "400", "--out", str(out), "--quiet"] + (["--ensemble"] if ensemble else [])
    rc, _out, err = _interrupt_cli(argv, 5.0, tmp_path)
    if rc == 0:
        pytest.skip("the grid finished in under 5 s on this machine")
    assert rc == 130, (rc, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nonid: interrupted; finished runs and checkpoints are kept; continue with: ")
    resume = shlex.split(lines[0].split("continue with: ", 1)[1])
    assert resume[0] == "nonid" and "--resume" in resume
    done = subprocess.run([sys.executable, "-m", "nonid", *resume[1:]], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (out / "results.csv").read_text().count("\n") == 3  # the header and both runs


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # swallowed on purpose
def test_nothing_of_an_interrupt_carries_over_to_the_next_command(python_sigint, tmp_path):
    """After a command whose interrupt was swallowed, the previous SIGINT handler is back and no
    interrupt is remembered: the next write in the same process goes through."""
    from theory.errors import exit_status
    from theory.fileio import write_atomic
    from theory.processes import interrupt_pending

    before = signal.getsignal(signal.SIGINT)

    def body() -> int:
        _SwallowsAnInterrupt()
        return 0

    assert exit_status("nonid", body) == 130
    assert signal.getsignal(signal.SIGINT) is before and not interrupt_pending()
    write_atomic(tmp_path / "next.json", "{}")
    assert (tmp_path / "next.json").read_text() == "{}"
