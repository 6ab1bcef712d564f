"""Where the runs of a grid train: :class:`LocalExecutor` (this process, or worker processes on this
machine) and :class:`RayExecutor` (one Ray task per run, on a local Ray started for the grid or on a
running cluster).

Both map one picklable, module-level function over a list of work items and yield ``(index, result)``
as each item finishes (:meth:`Executor.imap_unordered`); the caller
(:func:`empirical.experiment.run_grid`) puts the results back in grid order, so what a grid returns
never depends on where it ran.  Both treat an interrupt alike: the work still running is stopped at
once — worker processes terminated (:func:`theory.processes.parallel_imap`), Ray tasks cancelled with
``force=True`` and a Ray this process started shut down — and the ``KeyboardInterrupt`` propagates;
nothing is returned for an item cut short, so no verdict can come from it.

Ray is an optional extra (``pip install -e '.[ray]'``): it is imported only inside
:class:`RayExecutor`, so ``import empirical.executors`` works without it.  A local Ray is bound to
127.0.0.1 only, without dashboard, and sends no usage statistics (:func:`start_local_ray`).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any, Callable, ContextManager, Generator, Iterator, Protocol, Sequence, TypeVar

from empirical.errors import InvalidExperimentConfig
from theory.processes import parallel_imap, raise_if_interrupted
from theory.validation import check_choice, check_int

__all__ = ["EXECUTORS", "RAY_EXTRA", "Executor", "LocalExecutor", "RayExecutor", "check_ray_address", "check_ray_available",
           "make_executor", "ray_available", "start_local_ray"]

T = TypeVar("T")
R = TypeVar("R")

EXECUTORS = ("local", "ray")
RAY_EXTRA = "pip install -e '.[ray]'"
RAY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}
"""Set in the environment before ``ray.init``: no usage statistics sent, no cluster on Windows/macOS."""
LOOPBACK = "127.0.0.1"
LOOPBACK_ADDRESSES = frozenset({"127.0.0.1", "::1", "localhost"})
_POLL_S = 0.1  # how often a waiting driver looks for an interrupt


class Executor(Protocol):
    """Runs ``fn`` over ``items``; ``cpus`` / ``gpus`` are what one item needs (a scheduler's resources)."""

    @property
    def name(self) -> str:
        """``local`` or ``ray`` (:data:`EXECUTORS`)."""
        ...

    def imap_unordered(self, fn: Callable[[T], R], items: Sequence[T], *, cpus: float = 1,
                       gpus: float = 0) -> Generator[tuple[int, R], None, None]:
        """``(index, fn(items[index]))`` for every item, as each finishes; raises what ``fn`` raised."""
        ...

    def in_process(self) -> bool:
        """Whether the items run in this process (progress bars may then be drawn on its terminal)."""
        ...

    def session(self) -> ContextManager[None]:
        """Where :meth:`imap_unordered` may be called: connected (Ray: started or joined) on entry, so that a
        cluster that cannot be reached is refused before anything is written; released on exit."""
        ...


@dataclass(frozen=True)
class LocalExecutor:
    """This machine: in this process when ``jobs`` is 1 (or there is one item), else ``jobs`` worker
    processes (``start_method`` ``spawn``: safe after torch started threads) that ignore SIGINT and are
    terminated at once on an interrupt.  Results come in item order."""

    jobs: int = 1
    start_method: str = "spawn"
    name: str = "local"

    def __post_init__(self) -> None:
        check_int(self.jobs, "jobs =", minimum=1, error=InvalidExperimentConfig)

    def in_process(self) -> bool:
        return self.jobs == 1

    def session(self) -> ContextManager[None]:
        return nullcontext()

    def imap_unordered(self, fn: Callable[[T], R], items: Sequence[T], *, cpus: float = 1,
                       gpus: float = 0) -> Generator[tuple[int, R], None, None]:
        if self.jobs == 1 or len(items) <= 1:
            for i, item in enumerate(items):
                yield i, fn(item)
            return
        yield from enumerate(parallel_imap(fn, items, min(self.jobs, len(items)), start_method=self.start_method))


def ray_available() -> bool:
    """Whether ``import ray`` can work here (checked without importing it)."""
    if "ray" in sys.modules:
        return sys.modules["ray"] is not None
    try:
        return importlib.util.find_spec("ray") is not None
    except (ImportError, ValueError):
        return False


def check_ray_available(flag: str = "--executor ray") -> None:
    """Raise :class:`InvalidExperimentConfig` (naming ``flag`` and the extra to install) without Ray."""
    if not ray_available():
        raise InvalidExperimentConfig(f"{flag} needs Ray, which is not installed here: {RAY_EXTRA}")


def _import_ray(local: bool = True) -> Any:
    """``ray``, imported after :data:`RAY_ENV` is in the environment (``local``; Ray reads the cluster switch
    once, at import) or, for a cluster, after usage statistics alone are turned off."""
    if local:
        os.environ.update(RAY_ENV)
    else:
        os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    try:
        import ray
    except ImportError:
        raise InvalidExperimentConfig(f"the Ray executor needs Ray, which is not installed here: {RAY_EXTRA}") from None
    return ray


def start_local_ray(cpus: int | None = None, *, log_to_driver: bool = True) -> None:
    """Start a Ray on this machine for this process only: every listener on 127.0.0.1, no dashboard, no
    usage statistics (:data:`RAY_ENV`), ``cpus`` CPUs (``None``: all of them), Ray's own log lines
    below ERROR silenced; ``log_to_driver``: the tasks' stdout/stderr are printed here.

    Ray binds its servers to the node's address, and on Linux it replaces a loopback ``_node_ip_address`` by
    the machine's reachable one unless ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` was set before ``ray`` was
    first imported (it reads the switch at import): so the switch is set before the import here, and the
    node's address is checked after the start.

    Raises:
        InvalidExperimentConfig: Ray missing, or a Ray that would not be bound to 127.0.0.1 (``ray`` imported
            earlier in this process without the switch): it is shut down at once.
    """
    ray = _import_ray(local=True)
    if not sys.stderr.isatty():  # the tasks' forwarded lines without colour codes in a log file
        os.environ.setdefault("RAY_COLOR_PREFIX", "0")
    ray.init(num_cpus=cpus, _node_ip_address=LOOPBACK, include_dashboard=False, dashboard_host=LOOPBACK,
             logging_level=logging.ERROR, log_to_driver=log_to_driver)
    node = ray.util.get_node_ip_address()
    if node not in LOOPBACK_ADDRESSES:
        ray.shutdown()
        raise InvalidExperimentConfig(f"a local Ray here would listen on {node}, not on 127.0.0.1 only (ray was imported in this "
                                      "process before RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 was set); run it in a fresh process")


def _connect(ray: Any, address: str | None, cpus: int | None, log_to_driver: bool) -> bool:
    """Connect to ``address`` or start a local Ray, unless this process already has one; returns whether
    this call started it (then the caller shuts it down)."""
    if ray.is_initialized():
        return False
    if address is None:
        start_local_ray(cpus, log_to_driver=log_to_driver)
    else:
        if not sys.stderr.isatty():
            os.environ.setdefault("RAY_COLOR_PREFIX", "0")
        check_ray_address(address)
        try:
            ray.init(address=address, logging_level=logging.ERROR, log_to_driver=log_to_driver)
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise InvalidExperimentConfig(f"--ray-address {address!r}: cannot connect ({str(e).splitlines()[0][:200]})") from None
    return True


def check_ray_address(address: str, timeout_s: float = 5.0) -> None:
    """Refuse an ``address`` of the form ``[ray://]host:port`` that takes no TCP connection within
    ``timeout_s`` (Ray itself would wait for minutes); ``auto`` and other forms are left to Ray."""
    import socket

    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit() or not host:
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as e:
        raise InvalidExperimentConfig(f"--ray-address {address!r}: cannot connect ({e.strerror or e})") from None


def _cause(ray: Any, error: BaseException) -> BaseException:
    """The exception a task raised, without Ray's wrapper (whose message holds the remote traceback)."""
    cause = getattr(error, "cause", None)
    return cause if isinstance(error, ray.exceptions.RayTaskError) and isinstance(cause, BaseException) else error


@dataclass(frozen=True)
class RayExecutor:
    """One Ray task per item (``num_cpus = cpus``, ``num_gpus = gpus`` of :meth:`imap_unordered`, no
    retries), each calling ``fn`` in a Ray worker.  ``address``: a running cluster (``ray://host:10001``,
    ``host:6379`` or ``auto``), whose workers must have this project installed and see the same paths;
    ``None``: a local Ray started for the call (:func:`start_local_ray`, ``local_cpus`` CPUs, ``None``
    all) and shut down after it.  A process that already called ``ray.init`` keeps its Ray.  ``jobs``: at
    most that many tasks submitted at once (``None``: all; Ray queues them by their CPUs).
    ``log_to_driver``: the tasks' progress lines are printed here.  Results come as tasks finish."""

    address: str | None = None
    jobs: int | None = None
    local_cpus: int | None = None
    log_to_driver: bool = True
    name: str = "ray"

    def __post_init__(self) -> None:
        if self.jobs is not None:
            check_int(self.jobs, "jobs =", minimum=1, error=InvalidExperimentConfig)
        if self.local_cpus is not None:
            check_int(self.local_cpus, "local_cpus =", minimum=1, error=InvalidExperimentConfig)
        if self.address is not None and (not isinstance(self.address, str) or not self.address.strip()):
            raise InvalidExperimentConfig(f"--ray-address {self.address!r}: give host:port, ray://host:port or auto")

    def in_process(self) -> bool:
        return False

    @contextmanager
    def session(self) -> Iterator[None]:
        """Start (or join) Ray on entry; on exit shut down a Ray that this session started (on any exit:
        an interrupt too)."""
        ray = _import_ray(local=self.address is None)
        started = _connect(ray, self.address, self.local_cpus, self.log_to_driver)
        try:
            yield
        finally:
            if started:
                ray.shutdown()

    def imap_unordered(self, fn: Callable[[T], R], items: Sequence[T], *, cpus: float = 1,
                       gpus: float = 0) -> Generator[tuple[int, R], None, None]:
        """As :meth:`Executor.imap_unordered`, inside :meth:`session` (entered here when it is not yet)."""
        ray = _import_ray(local=self.address is None)
        if not ray.is_initialized():
            with self.session():
                yield from self.imap_unordered(fn, items, cpus=cpus, gpus=gpus)
            return
        pending: dict[Any, int] = {}
        try:
            task = ray.remote(num_cpus=cpus, num_gpus=gpus, max_retries=0)(fn)
            limit = self.jobs or max(1, len(items))
            submitted = 0
            while submitted < len(items) or pending:
                while submitted < len(items) and len(pending) < limit:
                    pending[task.remote(items[submitted])] = submitted
                    submitted += 1
                done, _ = ray.wait(list(pending), num_returns=1, timeout=_POLL_S)
                raise_if_interrupted()  # an interrupt deferred while this thread waited inside Ray
                for ref in done:
                    index = pending.pop(ref)
                    try:
                        result = ray.get(ref)
                    except ray.exceptions.RayTaskError as e:
                        raise _cause(ray, e) from None
                    yield index, result
        except BaseException:  # an interrupt, a failed run, or the consumer gone: nothing keeps running
            for ref in pending:
                try:
                    ray.cancel(ref, force=True)
                except Exception:  # noqa: BLE001 - a task that finished meanwhile cannot be cancelled
                    pass
            raise


def make_executor(name: str, *, jobs: int | None = None, address: str | None = None, threads: int = 1,
                  log_to_driver: bool = True) -> Executor:
    """The executor ``name`` (:data:`EXECUTORS`) as the command line builds it: ``local`` with ``jobs``
    processes (default 1); ``ray`` on ``address`` (else a local Ray of ``jobs`` × ``threads`` CPUs, all
    of them without ``jobs``).

    Raises:
        InvalidExperimentConfig: an unknown name, ``address`` with ``local``, or Ray missing for ``ray``.
    """
    check_choice(name, "--executor", EXECUTORS, error=InvalidExperimentConfig)
    if name == "local":
        if address is not None:
            from theory.errors import InapplicableOption

            raise InapplicableOption(f"--ray-address {address!r} applies to --executor ray only")
        return LocalExecutor(jobs or 1)
    check_ray_available()
    return RayExecutor(address, jobs=jobs, local_cpus=None if jobs is None else jobs * threads,
                       log_to_driver=log_to_driver)
