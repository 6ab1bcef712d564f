"""Where the appendix's certificates come from, and how each is reproduced.

Every number in the appendix is read from a :class:`~theory.certificate.Certificate`.  The sources:

* ``proof`` — the proof checks of ``nonid prove`` (:mod:`proofs`), one certificate each;
* ``z3-horizons`` — Lemmas A, B, C proved by z3 at a list of small horizons (:func:`z3_horizon_certificate`:
  variables and status in the quantities, solver seconds in the timings, which are never hashed);
* ``finetuning-alpha`` — the fine-tuning gap against α (:func:`constructions.finetuning.alpha_sweep_certificate`);
* ``experiment`` — the rule-extrapolation experiment (:func:`empirical.certificate.experiment_certificate`),
  trained here in a small CPU configuration or read from an earlier ``nonid experiment`` folder;
* ``counterexample`` — a compiled aⁿbⁿ transformer pair written as a ``nonid counterexample`` directory
  (so ``nonid check`` re-verifies it from its files).

:class:`Entry` pairs a certificate with its source and its reproduction command; :func:`load_entries`
reads them back from a ``certificates.json`` (or a ``nonid prove --json`` list), refusing another
certificate format, an unknown appendix format, or a certificate that does not match its recorded hash.
An entry read back is marked :data:`READ_BACK` ("read back, not re-checked") until
:func:`nonid.appendix.readback.recheck` re-runs it (:data:`RECHECKED`, or :data:`RERUN` when the saved
certificate disagreed with the re-run, which then replaces it).
"""

from __future__ import annotations

import os
import shlex
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from proofs.cli import format_reason, format_row
from theory.certificate import CERTIFICATE_FORMAT, Certificate, Status, library_versions
from theory.errors import InvalidArtifact, InvalidCertificate
from theory.jsonio import CERTIFICATE_LIMITS, SMALL_FILE_LIMITS, read_json_file
from theory.validation import check_choice

APPENDIX_FORMAT = 1
Z3_CHECK = "z3-lemmas-by-horizon"
DEFAULT_HORIZONS = (2, 4, 6, 8, 10)
DEFAULT_ALPHAS = (0.25, 0.5, 1.0, 2.0, 4.0)
DEFAULT_EXPERIMENT_STEPS = 1500
COUNTEREXAMPLE_DIR = "counterexample-anbn"
ALPHA_CHECK = "finetuning-gap-vs-alpha"
NAME_WIDTH = 32
"""Width of the name column of the table ``nonid appendix`` prints (:func:`proofs.cli.format_row`)."""

COMPUTED = "computed"
"""Provenance of an entry computed by this run."""
RECHECKED = "re-checked"
"""Read back from a saved file, re-run here, and the re-run agrees with it exactly (timings aside)."""
READ_BACK = "read back, not re-checked"
"""Read back from a saved file and *not* re-run here (a trained experiment, a model pair): its verdict is the
saved file's word only.  Shown so in every output, and the command exits 1."""
RERUN = "re-run, saved certificate disagreed"
"""Read back, re-run here, and the re-run differs from the saved certificate: the entry holds the re-run."""
PROVENANCES = (COMPUTED, RECHECKED, READ_BACK, RERUN)


@dataclass(frozen=True)
class Entry:
    """One certificate of the appendix: where it came from and the command that reproduces it."""

    certificate: Certificate
    source: str
    reproduce: str
    title: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False)
    provenance: str = COMPUTED
    note: str = ""

    def __post_init__(self) -> None:
        check_choice(self.provenance, "entry provenance", PROVENANCES, error=InvalidCertificate)

    @property
    def check(self) -> str:
        return self.certificate.check

    @property
    def checked_here(self) -> bool:
        """Whether this run computed or re-ran the certificate (anything but :data:`READ_BACK`)."""
        return self.provenance != READ_BACK

    def to_dict(self) -> dict[str, Any]:
        """The ``certificates.json`` entry.  ``provenance`` (and ``note``) appear only for an entry this run
        did not check ("read back, not re-checked") or whose saved certificate disagreed with its re-run; a
        re-checked entry is written exactly as a computed one."""
        d = {"check": self.check, "source": self.source, "title": self.title, "reproduce": self.reproduce,
             "sha256": self.certificate.sha256(), "certificate": self.certificate.to_dict()}
        if self.provenance in (READ_BACK, RERUN):
            d["provenance"] = self.provenance
        if self.note:
            d["note"] = self.note
        return d


# ---- producers ---------------------------------------------------------------------------------------
def z3_horizon_certificate(horizons: Sequence[int] = DEFAULT_HORIZONS, lemmas: str = "abc") -> Certificate:
    """Lemmas A, B, C proved by z3 at each horizon (modular encoding): ``verified`` when every proof is
    unsat; the variables, assertions and status per (lemma, horizon) are the quantities, the solver
    seconds the timings (machine-dependent, never hashed)."""
    horizons = tuple(sorted({int(h) for h in horizons}))
    claim = (f"Lemmas {', '.join(x.upper() for x in lemmas)} hold for every data distribution and model on words "
             f"over {{a, b}} of length <= L, for each horizon L in {{{', '.join(map(str, horizons))}}} (z3: unsat of the negation).")
    try:
        from theory import smt
    except ImportError as e:  # pragma: no cover - z3 is a dependency
        return Certificate(check=Z3_CHECK, claim=claim, status=Status.UNKNOWN, method="smt", detail="z3 unavailable",
                           reason=f"z3 is not importable ({e})", versions=library_versions("z3-solver"))
    rows, timings, assumptions, bad = [], {}, {}, []
    version = ""
    for L in horizons:
        for x in lemmas:
            r = getattr(smt, f"prove_lemma_{x}")(L)
            version = r.z3_version
            rows.append({"lemma": x.upper(), "horizon": L, "model_variables": r.model_variables,
                         "variables": r.variables, "assertions": r.assertions, "status": r.status.value})
            timings[f"solver_seconds_{x}_h{L}"] = r.solver_seconds
            assumptions.update(dict.fromkeys(r.assumptions))
            if not r.verified:
                bad.append((r.status, f"lemma {x.upper()} at horizon {L}: {r.status.value} ({r.reason})"))
    status = Status.VERIFIED if not bad else (Status.FALSIFIED if any(s is Status.FALSIFIED for s, _ in bad) else Status.UNKNOWN)
    top = max(rows, key=lambda r: r["variables"])
    return Certificate(
        check=Z3_CHECK, claim=claim, status=status, method="smt",
        detail=f"{len(rows) - len(bad)}/{len(rows)} unsat; up to {top['variables']:,} vars (L = {top['horizon']}), z3 {version}",
        reason="; ".join(m for _s, m in bad), quantities={"horizons": list(horizons), "lemmas": [x.upper() for x in lemmas],
                                                          "encoding": "modular", "rows": rows, "z3_version": version},
        assumptions=tuple(assumptions), versions=library_versions("z3-solver"), timings=timings,
    )


def _csv(values: Sequence[Any]) -> str:
    return ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values)


@dataclass(frozen=True)
class Options:
    """What :func:`collect` computes.  ``only``: proof-check patterns (empty: all); ``experiment_dir``: take
    the runs of an earlier ``nonid experiment`` instead of training; ``experiment_steps`` 0 skips the experiment."""

    only: tuple[str, ...] = ()
    horizons: tuple[int, ...] = DEFAULT_HORIZONS
    alphas: tuple[float, ...] = DEFAULT_ALPHAS
    experiment_dir: str | None = None
    experiment_steps: int = DEFAULT_EXPERIMENT_STEPS
    experiment_arch: str = "lstm"
    models: bool = True


def collect(options: Options, models_dir: Path | None = None,
            echo: Callable[[str], None] = lambda _m: None) -> list[Entry]:
    """Run every source and return its entries, in appendix order.  With ``options.models`` the compiled
    counterexample pair is written into ``models_dir``/counterexample-anbn."""
    import proofs

    entries: list[Entry] = []

    def done(entry: Entry, seconds: float) -> None:
        c = entry.certificate
        echo(format_row(c.check, c, NAME_WIDTH, seconds=seconds))
        if not c.verified:
            echo(format_reason(c.reason, NAME_WIDTH))
        entries.append(entry)

    for check in proofs.select(proofs.discover(), options.only):
        entry = proof_entry(check)
        done(entry, entry.certificate.elapsed_s or 0.0)
    if options.horizons:
        t = time.perf_counter()
        done(z3_entry(options.horizons), time.perf_counter() - t)
    if options.alphas:
        t = time.perf_counter()
        done(alpha_entry(options.alphas), time.perf_counter() - t)
    if options.experiment_dir or options.experiment_steps:
        t = time.perf_counter()
        entry = _experiment_entry(options)
        done(entry, time.perf_counter() - t)
    if options.models and models_dir is not None:
        t = time.perf_counter()
        done(_counterexample_entry(models_dir / COUNTEREXAMPLE_DIR), time.perf_counter() - t)
    return entries


def proof_entry(check: Any) -> Entry:
    """Run the proof check ``check`` (a :class:`proofs.ProofCheck`) and return its entry."""
    import proofs

    return Entry(proofs.run(check), "proof", f"nonid prove --only {check.name}", check.title)


def z3_entry(horizons: Sequence[int], lemmas: str = "abc") -> Entry:
    """Lemmas A, B, C by z3 at ``horizons`` (:func:`z3_horizon_certificate`), with its reproduction command."""
    cert = z3_horizon_certificate(horizons, lemmas)
    args = f"({_csv(sorted(set(horizons)))},)" + (f", {lemmas!r}" if lemmas != "abc" else "")
    repro = f"python -c 'from nonid.appendix.sources import z3_horizon_certificate as f; print(f({args}).to_json())'"
    return Entry(cert, "z3-horizons", repro, "z3: Lemmas A, B, C by horizon")


def alpha_entry(alphas: Sequence[float]) -> Entry:
    """The fine-tuning gap against α (:func:`constructions.finetuning.alpha_sweep_certificate`), with its command."""
    from constructions.finetuning import alpha_sweep_certificate

    cert = alpha_sweep_certificate(alphas)
    repro = ("python -c 'from constructions.finetuning import alpha_sweep_certificate as f; "
             f"print(f(({_csv(alphas)},)).to_json())'")
    return Entry(cert, "finetuning-alpha", repro, "Prop. 3: fine-tuning gap against alpha")


EXPERIMENT_SEEDS = 3
"""Seeds per regime of the appendix's own runs: the experiment certificate needs at least 3
(:data:`empirical.protocol.MIN_SEEDS`) before it says anything about the regimes."""
PARALLEL_FROM_STEPS = 300
"""From this many steps per run the appendix trains two runs at once (one per core of the 2-core machine it is
sized for); below it the worker start-up (a torch import each, about 3 s) costs more than it saves.  Rows do not
depend on it (:func:`empirical.experiment.run_grid`)."""


def experiment_jobs(steps: int) -> int:
    """Worker processes for the appendix's experiment grid: two from ``PARALLEL_FROM_STEPS`` steps per
    run on a machine with two CPUs or more (below that, starting workers costs more than it saves)."""
    return 2 if steps >= PARALLEL_FROM_STEPS and (os.cpu_count() or 1) >= 2 else 1


def _experiment_entry(options: Options) -> Entry:
    from empirical.certificate import experiment_certificate, load_rows

    if options.experiment_dir:
        from empirical.experiment import recheck_gap
        from empirical.protocol import DEFAULT_EPSILON

        stored = load_rows(options.experiment_dir)
        checks = [recheck_gap(r, Path(options.experiment_dir) / r.name) for r in stored]
        rows = [c.reported(DEFAULT_EPSILON) for c in checks]  # a gap its own weights do not give is not certified
        recheck = {c.row.name: c.outcome for c in checks}
        command = f"nonid experiment rule-extrapolation ... --out {options.experiment_dir}"
        repro = f"nonid appendix --experiment {shlex.quote(str(options.experiment_dir))} --out DIR"
    else:
        import torch

        from empirical.experiment import run_grid

        seeds = EXPERIMENT_SEEDS
        jobs = experiment_jobs(options.experiment_steps)
        command = (f"nonid experiment rule-extrapolation --language L3 --arch {options.experiment_arch} --seeds {seeds} "
                   f"--steps {options.experiment_steps} --device cpu --out RUNS")
        with tempfile.TemporaryDirectory(prefix="nonid-appendix-runs-") as tmp:
            before = torch.get_num_threads()
            try:
                rows = run_grid(["L3"], [options.experiment_arch], ["ml", "adversarial", "oracle"], list(range(seeds)),
                                Path(tmp), torch.device("cpu"), steps=options.experiment_steps, progress=False, echo=None,
                                threads=1, jobs=jobs)
            finally:
                torch.set_num_threads(before)
        repro = f"{command} && nonid appendix --experiment RUNS --out DIR"
        recheck = None
    cert = experiment_certificate(rows, command=command, rechecked=True, recheck=recheck)  # fresh gaps, or re-derived
    return Entry(cert, "experiment", repro,
                 "Rule extrapolation: trained models against the published numbers")


def _counterexample_entry(target: Path) -> Entry:
    from constructions.export import build_pair, load_case, write_directory

    pair = build_pair(load_case("anbn"))
    cert = write_directory(pair, target, overwrite=True)
    return Entry(cert, "counterexample", f"nonid check {COUNTEREXAMPLE_DIR}/   "
                 "(or rebuild: nonid counterexample anbn --out DIR)", "Compiled aNbN transformer pair (N = 16)",
                 extra={"directory": COUNTEREXAMPLE_DIR})


# ---- reading saved certificates ---------------------------------------------------------------------------
def _certificate(d: Any, where: str) -> Certificate:
    if not isinstance(d, dict):
        raise InvalidArtifact(f"{where}: not a certificate object")
    fmt = d.get("format")
    if fmt != CERTIFICATE_FORMAT:
        raise InvalidArtifact(f"{where}: certificate format {fmt!r}, but this nonid reads format {CERTIFICATE_FORMAT} "
                              "(written by an incompatible nonid version: regenerate it with this one)")
    try:
        return Certificate.from_dict(d)
    except (ValueError, TypeError) as e:
        raise InvalidArtifact(f"{where}: not a valid certificate ({e})") from None


def load_entries(path: str | os.PathLike[str]) -> list[Entry]:
    """Entries from saved certificates: an appendix folder or its ``certificates.json`` (with
    ``timings.json`` beside it, if there), or the JSON list of ``nonid prove --json [--timings]``.

    Every entry comes back marked :data:`READ_BACK`: nothing in a file is taken as checked
    (:func:`nonid.appendix.readback.recheck` re-runs what can be re-run).  The files are read within
    :mod:`theory.jsonio`'s bounds (16 MiB for ``certificates.json``, 1 MiB for ``timings.json``).

    Raises:
        InvalidArtifact: a missing, oversized or unreadable file (one line naming the bound or value), an
            incompatible appendix or certificate format, a certificate that does not match its recorded
            SHA-256, a repeated check name.
    """
    p = Path(path)
    if p.is_dir():
        p = p / "certificates.json"
    if not p.exists() and not p.is_symlink():
        raise InvalidArtifact(f"{p}: no such file")
    data = read_json_file(p, limits=CERTIFICATE_LIMITS)
    timings: dict[str, Any] = {}
    if isinstance(data, dict):
        fmt = data.get("appendix_format")
        if fmt != APPENDIX_FORMAT:
            raise InvalidArtifact(f"{p}: appendix format {fmt!r}, but this nonid reads format {APPENDIX_FORMAT} "
                                  "(written by an incompatible nonid version, or not a certificates.json of `nonid appendix`)")
        raw = data.get("certificates")
        if not isinstance(raw, list):
            raise InvalidArtifact(f"{p}: no 'certificates' list")
        tpath = p.with_name("timings.json")
        if tpath.is_file():
            timings = read_json_file(tpath, limits=SMALL_FILE_LIMITS)
    elif isinstance(data, list):  # nonid prove --json
        raw = [{"certificate": d, "source": "proof"} for d in data]
    else:
        raise InvalidArtifact(f"{p}: neither a certificates.json of `nonid appendix` nor a `nonid prove --json` list")
    entries, seen = [], set()
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or "certificate" not in item:
            raise InvalidArtifact(f"{p}: entry {i} has no certificate")
        name = item["certificate"].get("check", "?") if isinstance(item["certificate"], dict) else "?"
        where = f"{p}: entry {i} ({name})"
        cert = _certificate(item["certificate"], where)
        if "sha256" in item and item["sha256"] != cert.sha256():
            raise InvalidArtifact(f"{where}: certificate does not match its SHA-256 (expected {str(item['sha256'])[:12]}…, "
                                  f"found {cert.sha256()[:12]}…)")
        if cert.check in seen:
            raise InvalidArtifact(f"{where}: check {cert.check!r} appears twice")
        seen.add(cert.check)
        t = timings.get(cert.check, {}) if isinstance(timings, dict) else {}
        if isinstance(t, dict) and (t.get("timings") or t.get("elapsed_s") is not None):
            from dataclasses import replace

            cert = replace(cert, timings=t.get("timings") or cert.timings, elapsed_s=t.get("elapsed_s", cert.elapsed_s))
        source = str(item.get("source", "proof"))
        repro = str(item.get("reproduce") or (f"nonid prove --only {cert.check}" if source == "proof" else ""))
        entries.append(Entry(cert, source, repro, str(item.get("title", "")), provenance=READ_BACK))
    return entries
