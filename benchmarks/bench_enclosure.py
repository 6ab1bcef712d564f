"""Benchmarks of the rigorous evaluator.

* rigorous enclosure of every binary prefix of length ≤ 12 (8,191 prefixes, 4,096 maximal words) for a
  d_model 64 × 2-layer float64 transformer, against the plain float64 forward on the same CPU (best of 3;
  the ratio is the target: within 10×);
* the widest log-probability enclosure (half-width) for a compiled pair, a distilled pair and a random
  model, and the KL upper bounds the check certifies;
* `nonid check` on the default aⁿbⁿ pair (n ≤ 16) and the whole `nonid prove`, wall time in a fresh process;
* with CUDA: every binary prefix of length ≤ 20 (2,097,150) for d128 × 4 layers, rigorous, with the ratio to
  the bare forward (skipped without a GPU; ``--gpu-only`` runs just that, for the device machine).

``python -m benchmarks.bench_enclosure`` prints Markdown; ``--write`` also writes the section of
BENCHMARKS.md; ``--skip-distill`` leaves out the distilled pair (about a minute on 2 cores).
"""

from __future__ import annotations

import argparse
import itertools
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.report import best_time
from constructions.enclosure import enclose
from constructions.transformer import DecoderTransformer, TransformerConfig
from theory.tables import markdown_table


def _binary(length: int) -> tuple[list[str], list[str]]:
    words = ["".join(p) for p in itertools.product("ab", repeat=length)]
    prefixes = [""] + ["".join(p) for n in range(1, length + 1) for p in itertools.product("ab", repeat=n)]
    return words, prefixes


def bench_throughput(device: str = "cpu", length: int = 12, d_model: int = 64, n_layers: int = 2) -> list[list[str]]:
    cfg = TransformerConfig(alphabet="ab", d_model=d_model, n_heads=4, d_head=d_model // 4, d_mlp=4 * d_model,
                            n_layers=n_layers, max_len=length + 1, dtype="float64", seed=1)
    net = DecoderTransformer(cfg).to(device)
    words, prefixes = _binary(length)
    tokens = net.encode(words)

    def bare() -> None:
        with torch.inference_mode():
            for i in range(0, len(words), 1 << 16):
                net(tokens[i:i + (1 << 16)])
        if device == "cuda":
            torch.cuda.synchronize()

    box: dict = {}

    def rigorous() -> None:
        box["e"] = enclose(net, words, prefixes, device=device)
        if device == "cuda":
            torch.cuda.synchronize()

    tf = best_time(bare, 2 if length > 16 else 3)
    te = best_time(rigorous, 1 if length > 16 else 3)
    e = box["e"]
    return [[f"d_model {d_model} × {n_layers} layers, float64, {device}", f"{len(prefixes):,}", f"{tf:.3f}", f"{te:.3f}",
             f"{te / tf:.1f}×", f"{e.max_radius:.2e}"]]


def bench_radii(skip_distill: bool) -> list[list[str]]:
    from constructions.check import check_pair
    from constructions.export import METHOD_BOUNDS, build_pair, case_prefixes, load_case

    case = load_case("anbn", 16)
    ps = case_prefixes(case)
    rows = []
    pair = build_pair(case, "compile")
    q = pair.certificate.quantities
    rows.append(["compiled aⁿbⁿ pair (n ≤ 16)", f"{len(ps):,}",
                 f"{q['q1']['max_logprob_radius_upper']}, {q['q2']['max_logprob_radius_upper']}",
                 f"{q['q1']['max_tv_upper']}, {q['q2']['max_tv_upper']}", f"{q['q1']['kl_upper']}, {q['q2']['kl_upper']}",
                 f"{pair.certificate.status.value}"])
    if not skip_distill:
        dpair = build_pair(case, "distill", device="cpu")
        q = dpair.certificate.quantities
        rows.append(["distilled aⁿbⁿ pair (n ≤ 16, float32 weights)", f"{len(ps):,}",
                     f"{q['q1']['max_logprob_radius_upper']}, {q['q2']['max_logprob_radius_upper']}",
                     f"{q['q1']['max_tv_upper']}, {q['q2']['max_tv_upper']}", f"{q['q1']['kl_upper']}, {q['q2']['kl_upper']}",
                     f"{dpair.certificate.status.value} (bounds {METHOD_BOUNDS['distill']})"])
    net = DecoderTransformer(TransformerConfig(alphabet="ab", d_model=64, n_heads=4, d_head=16, d_mlp=256,
                                               max_len=ps.max_length + 1, seed=3))
    rnd = check_pair(case, net, net, ps)
    q = rnd.quantities
    rows.append(["random d_model 64 × 2 (pre-LN)", f"{len(ps):,}", f"{q['q1']['max_logprob_radius_upper']}",
                 f"{q['q1']['max_tv_upper']}", f"{q['q1']['kl_upper']}", f"{rnd.status.value} (as it must be)"])
    return rows


def bench_commands() -> list[list[str]]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "cx"
        subprocess.run([sys.executable, "-m", "nonid", "counterexample", "anbn", "--out", str(out)], check=True,
                       capture_output=True)
        t0 = time.perf_counter()
        r = subprocess.run([sys.executable, "-m", "nonid", "check", str(out)], capture_output=True, text=True)
        rows.append(["`nonid check` on the default aⁿbⁿ pair (n ≤ 16)", f"{time.perf_counter() - t0:.1f}", "< 5",
                     f"exit {r.returncode}"])
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "nonid", "prove"], capture_output=True, text=True)
    last = (r.stdout.strip().splitlines() or ["?"])[-1]
    rows.append(["`nonid prove` (every check)", f"{time.perf_counter() - t0:.1f}", "< 30", f"exit {r.returncode}: {last}"])
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help="write the section into BENCHMARKS.md")
    ap.add_argument("--skip-distill", action="store_true", help="leave out the distilled pair (about a minute on 2 cores)")
    ap.add_argument("--gpu-only", action="store_true", help="only the CUDA enclosure of every prefix of length <= 20")
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    head = ["network", "prefixes", "bare float forward (s)", "rigorous enclosure (s)", "ratio", "widest log-prob radius"]
    parts = []
    if not args.gpu_only:
        parts.append("### Rigorous enclosure vs the bare forward (CPU, 2 threads)\n\n"
                     + "\n".join(markdown_table(head, bench_throughput())))
        parts.append("### Enclosure widths and certified bounds\n\n"
                     + "\n".join(markdown_table(["pair", "prefixes", "widest log-prob radius (Q1, Q2)", "max TV ≤", "KL ≤ (nats)",
                                                  "verdict"], bench_radii(args.skip_distill))))
        parts.append("### Commands (fresh processes, wall time)\n\n"
                     + "\n".join(markdown_table(["command", "seconds", "target", "result"], bench_commands())))
    if torch.cuda.is_available():
        name = torch.cuda.get_device_name(0)
        parts.append(f"### GPU ({name})\n\n" + "\n".join(markdown_table(head, bench_throughput("cuda", 20, 128, 4))))
    else:
        parts.append("### GPU\n\nNo CUDA device on this machine: the 2,097,150-prefix (length ≤ 20, d128 × 4) run was not made.")
    body = "\n\n".join(parts)
    from benchmarks.report import publish

    return publish(body, args.write, "enclosure", "Rigorous evaluator", "python -m benchmarks.bench_enclosure")


if __name__ == "__main__":
    raise SystemExit(main())
