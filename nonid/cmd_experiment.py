"""``nonid experiment rule-extrapolation``: train real architectures on the papers' languages, compare
with the published numbers, and certify each run's saturation gap.

    nonid experiment rule-extrapolation --language L3 --arch transformer,lstm \\
        --regime ml,adversarial,oracle --seeds 5 --device auto --out DIR [--steps N] [--resume] [--size paper]
        [--convention paper|published] [--language all] [--arch all]

Prints one line per finished run (test loss, certified gap over the exact floor, ID R1, OOD R1, OOD R2
of the completion, best-validation step, wall time), then the Markdown comparison table, the regime
comparison (the spread of the certified gaps, OOD R1 over seeds) and the experiment certificate: every
run's certified gap ≤ ``--epsilon`` nats per token and two regimes' OOD R1 ≥ ``--delta`` apart on every
seed, with ≥ 3 seeds per regime (:func:`empirical.certificate.experiment_certificate`); progress goes to
stderr.  The adversarial and oracle terms train on OOD prompts held out from the evaluated ones (lengths
9, 10 for L3) unless ``--train-on-evaluated-prompts`` (:mod:`empirical.protocol`).  Writes ``DIR/results.csv`` (one line per run, both
aggregations), ``DIR/report.md`` and ``DIR/ood_r1_vs_gap.png``; each run's folder holds its
checkpoint and ``result.json``.  Other options: ``--arch`` also takes ``transformer-nopos`` (the
published position-blind Transformer), ``linear``, ``ssm``; ``--regime-lengths`` the OOD prompt
lengths of the regime term; ``--aggregation``; ``--jobs`` / ``--threads`` for the CPU.

Where the runs train (:mod:`empirical.executors`): ``--executor local`` (default: this process, or ``--jobs``
processes) or ``--executor ray`` (one Ray task of ``--threads`` CPUs per run, on a local Ray bound to 127.0.0.1
that sends no usage statistics, or on the cluster at ``--ray-address``; the ``[ray]`` extra; not with
``--ensemble``).  The rows do not depend on where the runs trained.  ``--first-seed K`` starts the seeds at K, so
a grid can be split over invocations or machines writing into one shared ``--out`` (all but the first with
``--resume``); ``--report-only`` then rebuilds ``results.csv``, ``report.md``, the figure and the certificate
from every ``*/result.json`` in ``--out``, in grid order, training nothing; it re-derives each run's certified
gap from the best-validation weights in the run's own ``checkpoint.pt`` (about 0.1-0.3 s a run for L3 at ``--size
cpu``; an ``estimate:`` line first) and certifies no gap that is not what those weights give (the stored bracket
must be the re-derived one, or contain it): a mismatch, or a checkpoint missing, damaged or of another run, is named
on stderr and that run's gap is not certified (the certificate cannot be verified on it; falsified when the
re-derived gap is certainly above ``--epsilon``).  ``--no-recheck`` reads the gaps as written instead, and the
certificate says so.  ``--log-dir DIR`` also writes
TensorBoard event files, one folder per run (:mod:`empirical.tblog`; the ``[logging]`` extra).  Progress: on a
terminal, a bar of the finished runs (with an ETA) and one of each run's steps on stderr; otherwise the plain
progress lines; none with ``--quiet``.

``--convention published`` reads L2, the prompt sets and the Dyck R2 completion as the published code does
(:mod:`theory.conventions`); every row, the report and the certificate say which reading they use, and the
report shows both denominators of the rule metrics and the exact chance levels beside the published ones.

Exit 0 when every run finished (whatever the certificate's verdict, which is printed); 2 for bad input — unknown language, architecture, regime, size,
convention or device, ``--epsilon`` or ``--delta`` not a finite number > 0 (Δ ≤ 1), ``--seeds`` below 1, regime prompt
lengths that leave no held-out prompt, a configuration whose memory estimate exceeds the device (refused before training), a
damaged or foreign checkpoint on ``--resume`` (left untouched), an unknown ``--executor``, ``--executor ray`` with
``--ensemble`` or without Ray installed, ``--ray-address`` without it, ``--log-dir`` inside ``--out`` or without
tensorboard, ``--report-only`` with a training option or a folder holding no finished run, ``--no-recheck`` without ``--report-only``, an ``--out`` folder that holds an
earlier output of this command without ``--resume`` or ``--force``, or anything this command did not
write (refused even with ``--force``) — with one line on stderr.  Ctrl-C exits 130 and prints the
command that resumes (worker processes terminated, Ray tasks cancelled and a local Ray shut down).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _duration(seconds: float) -> str:
    """``41 s``, ``12 min``, ``3.5 h`` or ``2.1 days``."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("experiment", help="train real models and compare with the published experiments")
    p.add_argument("name", choices=["rule-extrapolation"], help="the experiment")
    p.add_argument("--language", default="L3", help="comma-separated languages, L1..L6, or all (default L3)")
    p.add_argument("--arch", default="transformer,lstm",
                   help="comma-separated architectures: transformer, transformer-nopos (the published "
                        "position-blind one), lstm, linear, ssm (a small Mamba-style model), or all "
                        "(default transformer,lstm)")
    p.add_argument("--convention", default="paper",
                   help="the reading of the paper: paper (its text: default) or published (its published code: L2's "
                        "rules, the drawn prompt sets, the Dyck R2 completion); recorded in every row and the certificate")
    p.add_argument("--regime", default=None,
                   help="comma-separated regimes: ml, adversarial, oracle (default: all three for L3/L5, ml otherwise)")
    p.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 per (language, arch, regime) (default 3)")
    p.add_argument("--first-seed", type=int, default=0, metavar="K",
                   help="start the seeds at K: seeds K..K+N-1 (default 0), to split a grid over machines or invocations")
    p.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda (default auto)")
    p.add_argument("--size", default="cpu", help="cpu (default: minutes on 2 cores) or paper (the papers' sizes, for a GPU)")
    p.add_argument("--steps", type=int, default=None, help="training steps per run (default: the size's)")
    p.add_argument("--regime-lengths", default=None, metavar="N,M",
                   help="lengths of the OOD prompts the adversarial/oracle term trains on; the evaluated prompts are "
                        "left out of them (default: the two lengths above the evaluation prompts', 9,10 for L3)")
    p.add_argument("--train-on-evaluated-prompts", action="store_true",
                   help="train the adversarial/oracle term on the evaluated OOD prompts themselves (default lengths: "
                        "the evaluation length, 8 for L3) instead of held-out ones; the report and certificate say so")
    p.add_argument("--epsilon", type=float, default=None, metavar="EPS",
                   help="the certificate's saturation bound: every run's certified gap must be <= EPS nats per token "
                        "(default 0.01)")
    p.add_argument("--delta", type=float, default=None, metavar="D",
                   help="the certificate's OOD R1 margin: two regimes' OOD R1 must be >= D apart on every seed (default 0.5)")
    p.add_argument("--aggregation", default="best-validation", choices=["best-validation", "max-over-checkpoints"],
                   help="which aggregation the report's table uses (both are in the CSV)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--resume", action="store_true", help="continue an earlier run of this command in DIR from its checkpoints")
    p.add_argument("--force", action="store_true",
                   help="start afresh in DIR when it holds an earlier output of this command (its files are replaced)")
    p.add_argument("--jobs", type=int, default=None,
                   help="runs trained at once: separate processes (--executor local, CPU; default 1), or Ray tasks in "
                        "flight (--executor ray; default: as many as Ray's CPUs allow)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per run on the CPU (default 1: the models are tiny)")
    p.add_argument("--ensemble", action="store_true",
                   help="train the runs of one (language, architecture) together as one batched ensemble in this process "
                        "(equal to training each alone up to rounding; the LSTM cannot be batched and trains one run after "
                        "another); not with --jobs")
    p.add_argument("--executor", default="local",
                   help="where the runs train: local (this machine: --jobs processes; default) or ray (one Ray task per "
                        "run of --threads CPUs, on a local Ray bound to 127.0.0.1 or on --ray-address; needs the [ray] extra)")
    p.add_argument("--ray-address", default=None, metavar="ADDR",
                   help="with --executor ray: a running Ray cluster (host:port, ray://host:port or auto) whose workers have "
                        "nonid installed and see --out (and --log-dir) at the same path; default: start a local Ray")
    p.add_argument("--log-dir", default=None, metavar="DIR",
                   help="also write TensorBoard event files, one folder per run: training losses, each evaluation, and the "
                        "recorded gap bounds and OOD R1 (needs the [logging] extra; not inside --out)")
    p.add_argument("--report-only", action="store_true",
                   help="train nothing: rebuild results.csv, report.md, the figure and the certificate from the runs' "
                        "result.json files in --out (written by any number of invocations or machines)")
    p.add_argument("--no-recheck", action="store_true",
                   help="with --report-only: take each run's certified gap from its result.json as written when it "
                        "finished, without re-deriving it from the run's checkpoint.pt (faster; the certificate says so)")
    p.add_argument("--quiet", action="store_true", help="no progress bars or lines on stderr")
    return p


MARKER = "experiment.json"
"""Written first into DIR: it marks the folder as this command's output (``--resume``/``--force`` use it)."""
OUTPUT_FILES = ("results.csv", "report.md", "ood_r1_vs_gap.png", MARKER)
RUN_FILES = ("checkpoint.pt", "result.json")


def _is_ours(folder: Path) -> bool:
    return (folder / MARKER).is_file() and not (folder / MARKER).is_symlink()


def _foreign(folder: Path) -> list[str]:
    """Entries of ``folder`` this command did not write: anything but its output files and run folders
    holding only run files (and the temporary files of an atomic write, ``.name.*``)."""
    names = sorted(p.name for p in folder.iterdir())
    bad = []
    for name in names:
        p = folder / name
        if p.is_symlink():
            bad.append(name)
        elif p.is_dir():
            inner = [q.name for q in p.iterdir() if not (q.name in RUN_FILES or q.name.startswith(".")) or q.is_dir()]
            bad.extend(f"{name}/{q}" for q in sorted(inner))
        elif name not in OUTPUT_FILES and not name.startswith("."):
            bad.append(name)
    return bad


def validate(args: argparse.Namespace) -> tuple[list[str], list[str], list[str], list[int] | None]:
    """Every option checked before torch is imported: (languages, architectures, regimes, lengths); also
    ``--epsilon``, ``--delta`` (filled in with their defaults) and the regime prompts of the protocol.

    Raises:
        InvalidLanguage, UnknownArchitecture, UnknownRegime, InvalidExperimentConfig: naming the flag.
    """
    from empirical.errors import InvalidExperimentConfig
    from empirical.names import ARCHITECTURES, SIZE_NAMES, check_architecture, check_regime
    from empirical.protocol import DEFAULT_DELTA, DEFAULT_EPSILON, check_delta, check_epsilon, check_seeds, regime_prompts
    from theory.conventions import check_convention
    from theory.fileio import claimed_folder_problem
    from theory.languages import LANGUAGES, get_language
    from theory.validation import check_choice, check_int

    check_convention(getattr(args, "convention", "paper"), "--convention")
    if getattr(args, "no_recheck", False):
        from theory.errors import InapplicableOption

        raise InapplicableOption("--no-recheck applies to --report-only only: training computes every gap afresh")
    languages = list(LANGUAGES) if args.language.strip() == "all" else [get_language(x).name for x in _csv(args.language)]
    archs = list(ARCHITECTURES) if args.arch.strip() == "all" else _csv(args.arch)
    if not languages or not archs:
        raise InvalidExperimentConfig("give at least one --language and one --arch")
    if args.regime is None:
        regimes = ["ml", "adversarial", "oracle"] if all(x in ("L3", "L5") for x in languages) else ["ml"]
    else:
        regimes = _csv(args.regime)
    check_choice(args.size, "--size", SIZE_NAMES, error=InvalidExperimentConfig)
    check_choice(args.device, "--device", ("auto", "cpu", "cuda"), error=InvalidExperimentConfig)
    check_int(args.threads, "--threads", minimum=1, error=InvalidExperimentConfig)
    if getattr(args, "jobs", None) is not None:
        check_int(args.jobs, "--jobs", minimum=1, error=InvalidExperimentConfig)
    check_seeds(args.seeds, "--seeds")
    check_int(getattr(args, "first_seed", 0), "--first-seed", minimum=0, error=InvalidExperimentConfig)
    _validate_executor(args)
    args.epsilon = check_epsilon(DEFAULT_EPSILON if getattr(args, "epsilon", None) is None else args.epsilon, "--epsilon")
    args.delta = check_delta(DEFAULT_DELTA if getattr(args, "delta", None) is None else args.delta, "--delta")
    evaluated_switch = bool(getattr(args, "train_on_evaluated_prompts", False))
    if args.steps is not None:
        check_int(args.steps, "--steps", minimum=1, error=InvalidExperimentConfig)
    try:
        lengths = [int(x) for x in _csv(args.regime_lengths)] if args.regime_lengths else None
    except ValueError:
        raise InvalidExperimentConfig(f"--regime-lengths {args.regime_lengths!r} is not a comma-separated list of integers") from None
    if regimes == ["ml"] and (lengths is not None or evaluated_switch):
        from theory.errors import InapplicableOption

        flag = "--regime-lengths" if lengths is not None else "--train-on-evaluated-prompts"
        raise InapplicableOption(f"{flag} applies to the adversarial and oracle regimes only, not --regime ml")
    for arch in archs:
        check_architecture(arch)
    for lang in languages:
        for regime in regimes:
            check_regime(get_language(lang), regime)
        if any(r != "ml" for r in regimes):  # a held-out protocol with nothing left to train on: refused now
            regime_prompts(lang, lengths, train_on_evaluated_prompts=evaluated_switch)
    if getattr(args, "ensemble", False) and (args.jobs or 1) > 1:
        from theory.errors import InapplicableOption

        raise InapplicableOption(f"--ensemble trains in this one process: it does not take --jobs {args.jobs}")
    if args.resume and args.force:
        raise InvalidExperimentConfig("--resume continues the runs in --out and --force replaces them: give one")
    problem = claimed_folder_problem(args.out, "experiment", marker=MARKER, is_ours=_is_ours, foreign=_foreign,
                                     force=args.force, resume=args.resume, replace=False)
    if problem:
        raise InvalidExperimentConfig(f"--out: {problem}")
    if getattr(args, "log_dir", None) is not None:
        from empirical.tblog import check_log_dir

        check_log_dir(args.log_dir, args.out)
    return languages, archs, regimes, lengths


def _validate_executor(args: argparse.Namespace) -> None:
    """``--executor``, ``--ray-address`` and what they do not combine with, checked before any import of
    Ray or torch (Ray only looked up: a missing one names the extra to install)."""
    from empirical.errors import InvalidExperimentConfig
    from empirical.executors import EXECUTORS, check_ray_address, check_ray_available
    from theory.errors import InapplicableOption
    from theory.validation import check_choice

    executor = getattr(args, "executor", "local")
    address = getattr(args, "ray_address", None)
    check_choice(executor, "--executor", EXECUTORS, error=InvalidExperimentConfig)
    if executor == "local" and address is not None:
        raise InapplicableOption(f"--ray-address {address!r} applies to --executor ray only")
    if executor == "ray":
        if getattr(args, "ensemble", False):
            raise InapplicableOption("--ensemble trains in this one process: it does not take --executor ray")
        if address is not None and not address.strip():
            raise InvalidExperimentConfig(f"--ray-address {address!r}: give host:port, ray://host:port or auto")
        check_ray_available()
        if address is not None:
            check_ray_address(address)  # a cluster that takes no connection: refused now, not after minutes in Ray


_REPORT_ONLY_IGNORES = {  # what --report-only cannot use (it trains nothing): flag -> (attribute, default)
    "--language": ("language", "L3"), "--arch": ("arch", "transformer,lstm"), "--convention": ("convention", "paper"),
    "--regime": ("regime", None), "--seeds": ("seeds", 3), "--first-seed": ("first_seed", 0), "--device": ("device", "auto"),
    "--size": ("size", "cpu"), "--steps": ("steps", None), "--regime-lengths": ("regime_lengths", None),
    "--train-on-evaluated-prompts": ("train_on_evaluated_prompts", False), "--resume": ("resume", False),
    "--force": ("force", False), "--jobs": ("jobs", None), "--threads": ("threads", 1), "--ensemble": ("ensemble", False),
    "--executor": ("executor", "local"), "--ray-address": ("ray_address", None), "--log-dir": ("log_dir", None)}


def validate_report_only(args: argparse.Namespace) -> Path:
    """``--report-only``: ``--out`` an earlier output of this command holding only its own files and at least
    one finished run; no option that only training uses; ``--epsilon`` / ``--delta`` filled in.

    Raises:
        InapplicableOption: a training option given; InvalidExperimentConfig: the folder.
    """
    from empirical.errors import InvalidExperimentConfig
    from empirical.protocol import DEFAULT_DELTA, DEFAULT_EPSILON, check_delta, check_epsilon
    from theory.errors import InapplicableOption

    for flag, (attr, default) in _REPORT_ONLY_IGNORES.items():
        if getattr(args, attr, default) != default:
            raise InapplicableOption(f"{flag} trains runs: --report-only only rebuilds the report from --out")
    args.epsilon = check_epsilon(DEFAULT_EPSILON if getattr(args, "epsilon", None) is None else args.epsilon, "--epsilon")
    args.delta = check_delta(DEFAULT_DELTA if getattr(args, "delta", None) is None else args.delta, "--delta")
    out = Path(args.out)
    if not out.is_dir() or not _is_ours(out):
        raise InvalidExperimentConfig(f"--out {args.out!r}: not an earlier output of `nonid experiment` (no {MARKER}); "
                                      "--report-only rebuilds the report of one")
    alien = _foreign(out)
    if alien:
        shown = ", ".join(alien[:3]) + (" and more" if len(alien) > 3 else "")
        raise InvalidExperimentConfig(f"--out {args.out!r} holds {shown}, which `nonid experiment` did not write")
    if not any(out.glob("*/result.json")):
        raise InvalidExperimentConfig(f"--out {args.out!r} holds no finished run (no */result.json)")
    return out


def _start_afresh(out: Path) -> None:
    """--force: remove what an earlier run of this command wrote in ``out`` (only that: checked by
    :func:`_foreign` first)."""
    import shutil

    for p in sorted(out.iterdir()):
        if p.is_dir():
            shutil.rmtree(p)
        else:
            p.unlink()


def _command(args: argparse.Namespace) -> str:
    import shlex

    return shlex.join(["nonid", *(getattr(args, "argv", None) or sys.argv[1:])])


def _resume_command(args: argparse.Namespace) -> str:
    import shlex

    argv = [a for a in getattr(args, "argv", None) or sys.argv[1:] if a != "--force"]
    return shlex.join(["nonid", *argv] + ([] if "--resume" in argv else ["--resume"]))


def run(args: argparse.Namespace) -> int:
    if getattr(args, "report_only", False):
        return _report_only(args)
    languages, archs, regimes, lengths = validate(args)
    from empirical.experiment import resolve_device, run_grid
    from theory.errors import Interrupted
    from theory.fileio import write_atomic

    device = resolve_device(args.device)
    out = Path(args.out)
    first = getattr(args, "first_seed", 0)
    seeds = list(range(first, first + args.seeds))
    executor_name = getattr(args, "executor", "local")
    n = len(languages) * len(archs) * len(regimes) * args.seeds
    seed_text = f"{args.seeds} seeds" if first == 0 else f"seeds {first}..{first + args.seeds - 1}"
    where = "" if executor_name == "local" else (f", Ray at {args.ray_address}" if args.ray_address else ", a local Ray")
    print(f"rule-extrapolation: {n} runs ({', '.join(languages)} × {', '.join(archs)} × {', '.join(regimes)} × "
          f"{seed_text}), size {args.size}, device {device}, {args.convention} reading{where}", flush=True)
    from empirical.experiment import step_work
    from empirical.names import DEFAULT_STEPS, estimate_seconds

    steps = args.steps if args.steps is not None else DEFAULT_STEPS[args.size]
    work = {(lang, a, size): step_work(lang, a, size) for lang in languages for a in archs
            for size in {args.size, "cpu"}}
    params = {a: max(work[lang, a, args.size][0] for lang in languages) for a in archs}
    sizes = ", ".join(f"{a} {p:,}" for a, p in params.items())
    disk = sum(params[a] for a in archs) * len(languages) * len(regimes) * args.seeds * 12  # weights + Adam's two moments, fp32
    import os

    at_once = args.jobs or (1 if executor_name == "local" else max(1, (os.cpu_count() or 1) // args.threads))
    seconds = estimate_seconds(archs, regimes, len(languages) * args.seeds, steps, "cpu", at_once)
    assert seconds is not None  # the cpu rates are measured
    if args.size != "cpu":  # the CPU rate, scaled by the work of a step (parameters × tokens)
        ratio = max(work[lang, a, args.size][1] / work[lang, a, "cpu"][1] for lang in languages for a in archs)
        seconds *= ratio
    if device.type == "cpu":
        how = "measured at --size cpu" if args.size == "cpu" else "extrapolated from --size cpu by the work per step"
        when = f"about {_duration(seconds)} on 2 CPU cores ({how})"
    else:
        when = "no time estimate for this device (the memory check runs before training)"
    print(f"estimate: {n} runs × up to {steps:,} steps; parameters per model: {sizes}; checkpoints about "
          f"{disk / 1e6:,.1f} MB; {when}", flush=True)

    def prepare() -> None:  # every run checked: only now is the folder cleared (--force) and marked
        import json

        if args.force and out.is_dir():
            _start_afresh(out)
        out.mkdir(parents=True, exist_ok=True)
        if not (out / MARKER).exists():
            write_atomic(out / MARKER, json.dumps({"format": "nonid-experiment-1", "experiment": args.name}, indent=2) + "\n")

    from empirical.executors import make_executor

    executor = make_executor(executor_name, jobs=args.jobs, address=getattr(args, "ray_address", None),
                             threads=args.threads, log_to_driver=not args.quiet)
    log_dir = Path(args.log_dir) if getattr(args, "log_dir", None) is not None else None
    start = time.perf_counter()
    try:
        rows = run_grid(languages, archs, regimes, seeds, out, device, size=args.size, steps=args.steps,
                        resume=args.resume, progress=not args.quiet, echo=lambda s: print(s, flush=True),
                        threads=args.threads, aux_lengths=lengths,
                        train_on_evaluated_prompts=bool(getattr(args, "train_on_evaluated_prompts", False)), prepare=prepare,
                        convention=args.convention, ensemble=bool(getattr(args, "ensemble", False)), executor=executor,
                        log_dir=log_dir)
    except KeyboardInterrupt:
        raise Interrupted(f"finished runs and checkpoints are kept; continue with: {_resume_command(args)}") from None
    _write_report(args, rows, out, start)
    return 0


RECHECK_SECONDS = {"L1": 4.0, "L2": 0.15, "L3": 0.35, "L4": 21.4, "L5": 0.25, "L6": 7.0}
"""Seconds to re-derive one run's certified gap from its checkpoint at ``--size cpu`` on one CPU core, per language:
the slowest architecture measured (LSTM or SSM; linear and Transformer take 0.1-0.3 of it), for the ``estimate:``
line of ``--report-only``."""


def _report_only(args: argparse.Namespace) -> int:
    """``--report-only``: the report of every finished run in ``--out`` (:func:`empirical.certificate.load_rows`,
    in grid order), whichever invocation or machine trained it; runs without a ``result.json`` are named on
    stderr and left out.  Each run's certified gap is re-derived from its own ``checkpoint.pt``
    (:func:`empirical.experiment.recheck_gap`) unless ``--no-recheck``: a run whose stored gap is not what its
    weights give, or whose weights cannot be read, is named on stderr and its gap is not certified."""
    out = validate_report_only(args)
    from empirical.certificate import load_rows
    from empirical.experiment import in_grid_order

    start = time.perf_counter()
    rows = in_grid_order(load_rows(out))
    unfinished = sorted(p.name for p in out.iterdir() if p.is_dir() and not p.name.startswith(".")
                        and not (p / "result.json").is_file())
    print(f"rule-extrapolation: the report of {len(rows)} finished runs in {out}", flush=True)
    if unfinished:
        shown = ", ".join(unfinished[:5]) + (" and more" if len(unfinished) > 5 else "")
        print(f"not in the report: {len(unfinished)} unfinished runs (no result.json): {shown}", file=sys.stderr)
    rechecked = not getattr(args, "no_recheck", False)
    outcomes: dict[str, str] | None = None
    if rechecked:
        rows, outcomes = _recheck(rows, out, args.epsilon)
    _write_report(args, rows, out, start, rechecked=rechecked, recheck=outcomes)
    return 0


def _recheck(rows: list, out: Path, epsilon: float) -> tuple[list, dict[str, str]]:
    """The rows to report, each run's gap re-derived from its checkpoint (:func:`empirical.experiment.recheck_gap`),
    and each run's outcome; one line on stderr per run whose stored gap does not stand."""
    timed = [r for r in rows if r.size == "cpu" and r.language in RECHECK_SECONDS]
    seconds = sum(RECHECK_SECONDS[r.language] for r in timed)
    untimed = len(rows) - len(timed)
    print(f"estimate: re-deriving the certified gaps of {len(rows)} runs from their checkpoints: up to about "
          f"{_duration(seconds)} for the {len(timed)} at --size cpu (measured per run: "
          + ", ".join(f"{k} {v:g} s" for k, v in RECHECK_SECONDS.items() if any(r.language == k for r in timed))
          + ")" + (f", and {untimed} at another size, not measured (longer)" if untimed else "")
          + "; --no-recheck skips it", flush=True)
    import torch

    from empirical.experiment import recheck_gap

    began = time.perf_counter()
    reported, outcomes = [], {}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the runs trained (--threads 1); the gaps are the same bits at any count (measured)
    try:
        for row in rows:
            check = recheck_gap(row, out / row.name)
            outcomes[row.name] = check.outcome
            if not check.stands:
                print(f"gap not certified: {check.reason}", file=sys.stderr, flush=True)
            reported.append(check.reported(epsilon))
    finally:
        torch.set_num_threads(threads)
    counts = {k: sum(v == k for v in outcomes.values()) for k in dict.fromkeys(outcomes.values())}
    print(f"re-derived the gaps of {len(rows)} runs from their stored weights in {time.perf_counter() - began:.1f}s: "
          + ", ".join(f"{n} {k}" for k, n in counts.items()), flush=True)
    return reported, outcomes


def _write_report(args: argparse.Namespace, rows: list, out: Path, start: float, *, rechecked: bool = True,
                  recheck: dict[str, str] | None = None) -> None:
    """``results.csv``, ``report.md``, the figure and the printed certificate of ``rows`` (one code path for a
    grid just trained and a rebuilt one); ``rechecked``: the gaps were computed from the weights (in training, or
    re-derived with the outcomes ``recheck``), else read from the runs' files."""
    from empirical.certificate import experiment_certificate
    from empirical.report import figure, markdown, write_csv
    from theory.fileio import write_atomic

    write_csv(rows, out / "results.csv")
    md = markdown(rows, args.aggregation, epsilon=args.epsilon, delta=args.delta)
    write_atomic(out / "report.md", "# Rule extrapolation: our runs against the published numbers\n\n" + md)
    drew = figure(rows, out / "ood_r1_vs_gap.png", args.aggregation)
    print()
    print(md)
    files = [out / "results.csv", out / "report.md"] + ([out / "ood_r1_vs_gap.png"] if drew else [])
    print(f"wrote {' '.join(str(f) for f in files)}  ({time.perf_counter() - start:.1f}s)")
    cert = experiment_certificate(rows, aggregation=args.aggregation, epsilon=args.epsilon, delta=args.delta,
                                  command=_command(args), rechecked=rechecked, recheck=recheck)
    read = "" if rechecked else " [gaps read from the runs' result.json files as written, not re-derived: --no-recheck]"
    print(f"certificate {cert.check}: {cert.status.value} (eps = {args.epsilon:g} nats/token, Delta = {args.delta:g}) "
          f"— {cert.detail}{read}")
    if cert.reason:
        print(f"reason: {cert.reason}")
    if not drew:
        print("no figure: no run has a finite certified gap", file=sys.stderr)
