"""Run every benchmark script with ``--write``: each rewrites its section of BENCHMARKS.md and its
tracked figures and data in benchmarks/out/ — ``python -m benchmarks`` (``make bench``).  Each script
can also be run alone; without ``--write`` it changes no tracked file (see its docstring)."""

from __future__ import annotations

import subprocess
import sys

from benchmarks.report import ROOT

SCRIPTS = (
    ("benchmarks.bench_core", ["--suite"]),
    ("benchmarks.bench_smt", []),
    ("benchmarks.bench_prove", []),
    ("benchmarks.bench_coq", ["--install-s", "39"]),
    ("benchmarks.bench_icl", []),
    ("benchmarks.bench_finetuning", []),
    ("benchmarks.bench_compile", []),
    ("benchmarks.bench_exact", []),
    ("benchmarks.bench_empirical", []),
    ("benchmarks.bench_soundness", []),
    ("benchmarks.bench_appendix", []),
    ("benchmarks.bench_enclosure", []),
    ("benchmarks.bench_cli", []),
    ("benchmarks.bench_steps", []),
)


def main() -> int:
    failed = []
    for module, extra in SCRIPTS:
        if not (ROOT / (module.replace(".", "/") + ".py")).exists():
            continue
        print(f"== {module}", flush=True)
        if subprocess.run([sys.executable, "-m", module, *extra, "--write"], cwd=ROOT).returncode:
            failed.append(module)
    if failed:
        print("failed: " + ", ".join(failed), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
