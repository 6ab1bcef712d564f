"""Interrupts are interrupts: long foreign calls and worker processes that stop on Ctrl-C.

Two ways an interrupt used to be lost or turned into a verdict:

* **A solver that owns SIGINT.**  z3 installs its own SIGINT handler for the duration of a check; a
  Ctrl-C then *cancels the query* and z3 returns ``unknown`` ("interrupted from keyboard", or
  "canceled"), which read as a timeout verdict while the command carried on.  :func:`interruptible`
  runs such a call in a helper thread (ctypes releases the GIL) with the solver's own handler off, so
  SIGINT reaches Python's handler in the main thread as :class:`KeyboardInterrupt`; the call is then
  cancelled through its own thread-safe cancel hook and the interrupt is re-raised — never a result.
* **Worker processes.**  A ``ProcessPoolExecutor`` waits for its workers on the way out of ``with``,
  so an interrupt in the parent waited for a 60 s solve to finish.  :func:`parallel_imap` runs work
  in a ``multiprocessing`` pool whose workers ignore SIGINT (the parent alone decides) and are
  terminated at once when the parent is interrupted.
* **An interrupt inside foreign code that calls back into Python.**  Python raises
  ``KeyboardInterrupt`` at whatever bytecode the main thread runs when SIGINT arrives.  If that is
  Python code called *from C++* (torch calls back into Python for warnings, hooks, serialisation,
  its Python-level operators; an extension module's initialisation runs Python code from C), the
  exception crosses a C frame that cannot pass it on: the process aborts (``terminate called after
  throwing … pybind11::error_already_set``, exit -6), or CPython remembers an "unhandled"
  KeyboardInterrupt and ends the process by SIGINT (-2) after it printed its verdict-free message —
  both seen from ``nonid appendix`` interrupted while it trained or imported torch.  So the handler
  raises only where that cannot happen (:func:`safe_to_raise`): in the project's own code (which
  nothing calls from C: the project registers no hooks, custom autograd functions or
  ``__torch_function__`` overrides), or outside any import and any torch frame — once torch is
  loaded, only in a standard-library wait.  Anywhere else the interrupt is remembered and retried
  every 20 ms (``SIGALRM``) until the main thread is back in such a frame, and the project's long
  loops poll :func:`raise_if_interrupted`.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from types import FrameType
from typing import Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")
R = TypeVar("R")


_PENDING = False  # set by the SIGINT handler of install_sigint_handler
_RETRY_S = 0.02  # how soon a deferred interrupt is tried again
# The project's own packages: code the project calls, never code called from C++ (see the module text).
_OWN_PACKAGES = frozenset({"theory", "constructions", "empirical", "proofs", "nonid", "benchmarks"})
# Standard-library modules in which the main thread waits for a thread, a process or a pipe.
_WAITS = frozenset({"threading", "multiprocessing", "subprocess", "selectors", "queue", "concurrent"})
_DEFERRING = ("torch",)  # extension packages that call back into Python from C++
_UNSAFE_BELOW = frozenset({*_DEFERRING, "importlib"})  # a frame of these anywhere below: C may sit in between


def _package(frame: FrameType | None) -> str:
    name = frame.f_globals.get("__name__", "") if frame is not None else ""
    return str(name).partition(".")[0]


def safe_to_raise(frame: FrameType | None) -> bool:
    """Whether a ``KeyboardInterrupt`` raised at ``frame`` (the main thread's innermost Python frame)
    can travel up the stack: in the project's own code, always; elsewhere only when no import is in
    progress (an extension module's initialisation runs Python code from C) and no torch frame is on
    the stack, and — once torch is loaded — only in a standard-library wait."""
    import sys

    top = _package(frame)
    if top in _OWN_PACKAGES:
        return True
    f = frame
    while f is not None:
        if _package(f) in _UNSAFE_BELOW:
            return False
        f = f.f_back
    return top in _WAITS or not any(name in sys.modules for name in _DEFERRING)


def _raise_or_retry(frame: FrameType | None) -> None:
    import signal

    if safe_to_raise(frame):
        _deliver()
    signal.setitimer(signal.ITIMER_REAL, _RETRY_S)  # SIGALRM -> _on_retry


def _deliver() -> None:
    """Raise the interrupt, first disarming a pending retry: once delivered it must not be raised a second
    time while the first unwinds (a retry firing in the unwinding's cleanup could land in a frame that
    cannot pass it on).  ``_PENDING`` stays set: an interrupt Python swallowed is raised again at the
    next :func:`raise_if_interrupted`."""
    import signal

    if threading.current_thread() is threading.main_thread():
        signal.setitimer(signal.ITIMER_REAL, 0)
    raise KeyboardInterrupt


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    global _PENDING
    _PENDING = True
    _raise_or_retry(frame)


def _on_retry(signum: int, frame: FrameType | None) -> None:
    if _PENDING:
        _raise_or_retry(frame)


def install_sigint_handler() -> bool:
    """Make SIGINT remembered as well as raised (when Python's own handler is in place, in the main
    thread; an ignored SIGINT stays ignored).  Python swallows an exception raised inside a finalizer
    (``__del__``), so an interrupt that lands there would be lost; :func:`raise_if_interrupted` at the
    points where work is committed (a verdict recorded, a folder renamed into place) raises it again.
    Returns whether the handler was installed.  Prefer :func:`remembered_sigint`, which also puts the
    previous handler back."""
    import signal

    global _PENDING
    _PENDING = False
    if threading.current_thread() is not threading.main_thread():
        return False
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        return False
    signal.signal(signal.SIGALRM, _on_retry)
    signal.signal(signal.SIGINT, _on_sigint)
    return True


@contextmanager
def remembered_sigint() -> Iterator[None]:
    """:func:`install_sigint_handler` for the duration of a block (one command); afterwards the previous
    handler is back and no interrupt is remembered, so nothing carries over to the next call in the same
    process."""
    import signal

    global _PENDING
    previous = signal.getsignal(signal.SIGINT)
    previous_alarm = signal.getsignal(signal.SIGALRM)
    installed = install_sigint_handler()
    try:
        yield
    finally:
        if installed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous_alarm)
            signal.signal(signal.SIGINT, previous)
        _PENDING = False


def raise_if_interrupted() -> None:
    """Raise :class:`KeyboardInterrupt` if a SIGINT arrived since :func:`install_sigint_handler` (even
    one Python swallowed): called before work is committed, so a lost interrupt still stops it.  A retry
    of a deferred interrupt still armed is disarmed first (:func:`_deliver`)."""
    if _PENDING:
        _deliver()


def interrupt_pending() -> bool:
    """Whether a SIGINT arrived since :func:`install_sigint_handler`."""
    return _PENDING


def interruptible(call: Callable[[], R], cancel: Callable[[], None], *, poll_s: float = 0.05) -> R:
    """Run ``call()`` in a helper thread and return its result (or raise its exception).  On
    :class:`KeyboardInterrupt` in the waiting main thread, ``cancel()`` is called (it must make
    ``call`` return soon and be safe from another thread, like ``z3.Context.interrupt``), the helper is
    joined, and the interrupt is re-raised: whatever ``call`` returned after being cancelled is
    discarded."""
    box: dict[str, object] = {}

    def work() -> None:
        try:
            box["value"] = call()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread below
            box["error"] = exc

    helper = threading.Thread(target=work, name="nonid-interruptible", daemon=True)
    helper.start()
    try:
        while helper.is_alive():
            helper.join(poll_s)
            raise_if_interrupted()  # an interrupt deferred while the main thread waited in threading
    except KeyboardInterrupt:
        cancel()
        helper.join()
        raise
    if "error" in box:
        raise box["error"]  # type: ignore[misc]  # a BaseException instance stored by work()
    raise_if_interrupted()
    return box["value"]  # type: ignore[return-value]  # set by work() when no error was stored


def _ignore_sigint() -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def parallel_imap(fn: Callable[[T], R], items: Iterable[T], jobs: int, *, start_method: str | None = None) -> Iterator[R]:
    """``fn`` over ``items`` in ``jobs`` worker processes, results in the order of ``items`` as they
    finish.  Workers ignore SIGINT; an interrupt (or any exception) in the parent terminates them
    before it propagates, so Ctrl-C stops the command at once and no worker outlives it.
    ``start_method``: ``"fork"`` where available by default, or ``"spawn"`` (needed after CUDA or
    threads have started)."""
    import multiprocessing as mp

    method = start_method or ("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    ctx = mp.get_context(method)
    pool = ctx.Pool(processes=jobs, initializer=_ignore_sigint)
    try:
        results = pool.imap(fn, items)
        while True:
            try:
                result = results.next(timeout=0.1)
            except mp.TimeoutError:
                raise_if_interrupted()  # an interrupt deferred while the main thread waited in multiprocessing
                continue
            except StopIteration:
                break
            yield result
        pool.close()
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()
