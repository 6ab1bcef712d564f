"""Bring-your-own-model and export timings: ``nonid audit`` of a 2-layer d_model 64 model on L3 (n ≤ 16,
the paper's 256 prompts) end to end, as a Hugging Face GPT-2 folder and as a nonid transformer file
(the issue's target: under 10 s on 2 CPU cores, including the gap bracket and the greedy metrics), the
in-process split (gap, greedy), and the export + re-check of the default compiled pair to Hugging
Face and to TransformerLens (target: under 30 s).

The models are trained first with ``examples/train_tiny.py`` (``--steps``, default 200: not timed),
so the greedy completions run as long as a trained model's do.  Each command is timed once, as a user
would run it (imports included).

``python -m benchmarks.bench_audit [--write] [--steps 200]`` (about 4 minutes on 2 cores, most of it
training and building the pair).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.report import ROOT, publish
from theory.tables import markdown_table


def _run(argv: list[str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    out = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=1800)
    wall = time.perf_counter() - t0
    if out.returncode not in (0, 1):
        raise SystemExit(f"bench_audit: {' '.join(argv)} failed ({out.returncode}): {out.stderr.strip()[-400:]}")
    return wall, out.stdout + out.stderr


def _line(text: str, start: str) -> str:
    return next((ln.strip() for ln in text.splitlines() if ln.strip().startswith(start)), "")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help="write the section into BENCHMARKS.md")
    ap.add_argument("--steps", type=int, default=200, help="training steps of each audited model")
    args = ap.parse_args(argv)
    py = sys.executable
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        models = {"Hugging Face GPT-2 folder": (["--arch", "gpt2", "--out", str(d / "gpt2")], str(d / "gpt2"),
                                                ["--tokens", "a=0,b=1,eos=2,bos=3"]),
                  "nonid transformer file": (["--arch", "nonid", "--out", str(d / "net.safetensors")],
                                             str(d / "net.safetensors"), [])}
        for label, (train_args, path, extra) in models.items():
            _run([py, "examples/train_tiny.py", "--d-model", "64", "--layers", "2", "--steps", str(args.steps),
                  *train_args])
            wall, text = _run([py, "-m", "nonid", "audit", path, "--language", "L3", *extra])
            split = _split(path, extra)
            rows.append([f"`nonid audit` of a {label} (2 layers, d_model 64)", f"{wall:.1f} s",
                         f"gap {split['gap_s']:.2f} s, greedy {split['greedy_s']:.2f} s in-process; "
                         + _line(text, "verdict:").replace("|", "/")])
        _run([py, "-m", "nonid", "counterexample", "anbn", "--out", str(d / "pair")])
        for to in ("hf", "tl"):
            wall, text = _run([py, "-m", "nonid", "export", str(d / "pair"), "--to", to])
            rows.append([f"`nonid export PAIR --to {to}` (default compiled aⁿbⁿ pair, N = 16)", f"{wall:.1f} s",
                         _line(text, f"export {to}").replace("|", "/")[:160]])
        wall, text = _run([py, "-m", "nonid", "check", str(d / "pair")])
        rows.append(["`nonid check PAIR` (pair + both exports re-verified)", f"{wall:.1f} s", _line(text, "verified")[:120] + "…"])
    body = ("\n".join(markdown_table(["what", "wall", "detail"], rows))
            + "\n\nWall times of the whole command as a user runs it (imports included: about 3 s for torch, 2–4 s more "
            "for transformers / TransformerLens).  In-process times are of `empirical.audit.audit` alone.\n")
    return publish(body, args.write, "audit", "Audit and export (issue 21)", "python -m benchmarks.bench_audit")


def _split(path: str, extra: list[str]) -> dict[str, float]:
    """The in-process gap and greedy times of one audit (a fresh process, as the command)."""
    code = ("import sys, json\nfrom empirical.sources import source_problem, load_source\n"
            "from empirical.adapter import NetworkModel\nfrom empirical.audit import audit\n"
            "from empirical.data import language_data\nfrom theory.tokenmap import parse_token_map, native_token_map\n"
            f"src, _ = source_problem({path!r}); L = load_source(src)\n"
            + (f"tm = parse_token_map({extra[1]!r}, 'ab')\n" if extra else "tm = native_token_map('ab')\n") +
            "r = audit(NetworkModel(L.network, tm, 34), language_data('L3', n_max=16))\n"
            "print(json.dumps(dict(r.timings)))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=600)
    import json

    return json.loads(out.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    raise SystemExit(main())
