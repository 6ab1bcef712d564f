"""``nonid appendix``: wall time of two fresh runs, and which files are byte-identical
between them (all but the measured timings should be).

    python -m benchmarks.bench_appendix [--write]
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.report import ROOT, machine, write_section


def run(out: Path) -> float:
    t = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "nonid", "appendix", "--out", str(out)], cwd=ROOT,
                         capture_output=True, text=True)
    if res.returncode not in (0, 1):
        raise SystemExit(f"nonid appendix failed ({res.returncode}): {res.stderr.strip()}")
    return time.perf_counter() - t


def digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--write", action="store_true", help="write the section into BENCHMARKS.md")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        a, b = Path(tmp) / "a", Path(tmp) / "b"
        walls = [run(a), run(b)]
        da, db = digests(a), digests(b)
        tex = (a / "appendix.tex").read_text()
    same = sorted(k for k in da if da[k] == db.get(k))
    differ = sorted(k for k in da if da[k] != db.get(k))
    body = "\n".join([
        f"Two fresh `nonid appendix --out DIR` runs (38 certificates, the CPU experiment included): "
        f"**{walls[0]:.1f} s** and **{walls[1]:.1f} s**.",
        "",
        f"Files written: {len(da)}; byte-identical between the runs: {len(same)}; differing: "
        + (", ".join(f"`{k}`" for k in differ) if differ else "none")
        + " (measured seconds only: `timings.json` and the right panel of the z3 figure).",
        "",
        f"`appendix.tex`: {len(tex.splitlines()):,} lines, {len(tex.encode()):,} bytes.",
    ])
    print(body)
    print(f"\n{machine()}")
    if args.write:
        write_section("appendix", "The paper appendix: `nonid appendix`", body,
                      "python -m benchmarks.bench_appendix --write")


if __name__ == "__main__":
    main()
