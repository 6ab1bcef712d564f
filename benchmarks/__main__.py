"""Run every benchmark script with ``--write``: each rewrites its section of BENCHMARKS.md and its
tracked figures and data in benchmarks/out/ — ``python -m benchmarks`` (``make bench``).  Each script
can also be run alone; without ``--write`` it changes no tracked file (see its docstring)."""

from __future__ import annotations

import subprocess
import sys

from benchmarks.report import ROOT

SCRIPTS = (
    ("benchmarks.bench_core", []),
    ("benchmarks.bench_codebase", ["--base", "7e03796", "--suite"]),
    ("benchmarks.bench_smt", []),
    ("benchmarks.bench_prove", []),
    ("benchmarks.bench_coq", ["--install-s", "59"]),
    ("benchmarks.bench_icl", []),
    ("benchmarks.bench_finetuning", []),
    ("benchmarks.bench_compile", []),
    ("benchmarks.bench_exact", []),
    ("benchmarks.bench_empirical", []),
    ("benchmarks.bench_architectures", []),
    ("benchmarks.bench_soundness", []),
    ("benchmarks.bench_appendix", []),
    ("benchmarks.bench_enclosure", []),
    ("benchmarks.bench_cli", []),
    ("benchmarks.bench_steps", []),
    ("benchmarks.bench_ensemble", []),
    ("benchmarks.bench_audit", []),
)


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0].rstrip(":"))
    ap.add_argument("--only", action="append", default=None, metavar="MODULE",
                    help="run only these scripts (e.g. bench_icl; repeatable)")
    ap.add_argument("--list", action="store_true", help="list the scripts and exit")
    args = ap.parse_args(argv)
    if args.list:
        print("\n".join(m for m, _ in SCRIPTS))
        return 0
    chosen = [(m, e) for m, e in SCRIPTS if not args.only or m.rsplit(".", 1)[-1] in args.only or m in args.only]
    if args.only and not chosen:
        ap.error(f"--only {', '.join(args.only)}: no such script (see --list)")
    failed = []
    for module, extra in chosen:
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
