"""The machine-checked core: time of the check ``coq-core`` (compile the Coq development from source
in a fresh folder, then ``Check`` and ``Print Assumptions`` of every main theorem and ``Print`` of every
definition) in fresh processes, and of a plain ``make -C proofs/coq`` build.  The time to install Coq
cannot be re-measured without uninstalling it; give the one measured on this machine
(``time make coq latex`` on a fresh machine) with ``--install-s``.  Aim: the proofs check
in under 60 s on 2 cores.

    python -m benchmarks.bench_coq [--repeats 3] [--install-s SECONDS] [--write]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from benchmarks.report import ROOT, write_section


def check_once() -> tuple[float, dict]:
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "nonid", "prove", "--only", "coq-core", "--json", "--jobs", "1"],
                         cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if out.returncode not in (0, 1):
        raise SystemExit(f"nonid prove failed ({out.returncode}): {out.stderr.strip()}")
    return wall, json.loads(out.stdout)[0]


def make_once() -> float:
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copytree(ROOT / "proofs" / "coq", f"{tmp}/coq", ignore=shutil.ignore_patterns("*.vo*", "*.glob", ".*"))
        t = time.perf_counter()
        subprocess.run(["make", "-C", f"{tmp}/coq"], capture_output=True, check=True)
        return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--install-s", type=float, default=None,
                    help="the measured time of `make coq latex` on a fresh machine machine, to report")
    ap.add_argument("--write", action="store_true", help="write the section into BENCHMARKS.md")
    args = ap.parse_args()
    if shutil.which("coqc") is None:
        raise SystemExit("coqc is not installed: apt-get install coq (Debian/Ubuntu) or opam install coq.8.16.1")
    runs = [check_once() for _ in range(args.repeats)]
    walls = [w for w, _ in runs]
    cert = runs[-1][1]
    build = make_once()
    lines = [f"`nonid prove --only coq-core` (fresh process, {args.repeats} runs): median **{statistics.median(walls):.1f} s** "
             f"(min {min(walls):.1f}, max {max(walls):.1f}); status {cert['status']}, {cert['detail']}.",
             f"A plain `make -C proofs/coq` of a clean copy: {build:.1f} s.",
             ("Installing Coq and pdflatex on a fresh machine (`make coq latex`: `apt-get install -y --no-install-recommends "
              "coq` and the TeX packages, Debian bookworm, Coq 8.16.1): "
              f"{args.install_s:.0f} s together, measured once by hand with `time` on this machine (Coq alone was about "
              "40 s on an earlier fresh machine)." if args.install_s is not None else
              "Install time: not given (`--install-s`)."),
             "Aim: under 60 s to check the proofs."]
    body = "\n\n".join(lines)
    print(body)
    if args.write:
        write_section("coq", "The machine-checked core (Coq)", body, "python -m benchmarks.bench_coq --install-s 59 --write")


if __name__ == "__main__":
    main()
