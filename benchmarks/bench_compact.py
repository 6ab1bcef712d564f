"""The compact compiler: size, compile time and the every-prefix certificate per case, beside
the lookup compiler, and how the abstract-state check grows with the context T.

For each case and role: parameters, bytes of the safetensors file, compile time (best of 3), the
abstract states the check enumerates (groups) and layer-1 states, and the time of the every-prefix
check of that network (abstract evaluation, support bounds, the OOD dynamic program and the
cross-check on every word of length <= 14).  The lookup compiler's sizes come from its planned
configuration (no weights are made for n <= 128: 33 M parameters).  Targets: aⁿbⁿ at n <= 128 and
T = 256, each model <= 100,000 parameters and <= 1 MB; compile < 1 s; the full certificate < 60 s on
2 cores.

``python -m benchmarks.bench_compact [--write]`` (about 3 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

from benchmarks.report import best_time, publish
from theory.tables import markdown_table


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help="write the section into BENCHMARKS.md")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    import torch

    from constructions.compact_pair import check_every_prefix, every_prefix_certificate
    from constructions.compile.compact import CompactConfig, compile_compact
    from constructions.export import case_prefixes, load_case, planned_config
    from constructions.rule_extrapolation import build_case
    from constructions.transformer import DecoderTransformer

    torch.set_num_threads(2)
    cases = [("anbn (geometric r = 1/2, infinite support)", build_case("anbn")),
             ("L3, n <= 16", load_case("L3", 16)), ("L3, n <= 128 (the paper's data)", load_case("L3", 128))]
    rows, totals = [], []
    T = 256
    cfg = CompactConfig(context=T)
    with tempfile.TemporaryDirectory() as tmp:
        for label, case in cases:
            nets = {}
            for role in ("completer", "violator"):
                compile_s = best_time(lambda: compile_compact(case.data, role, cfg))
                net, rep = compile_compact(case.data, role, cfg)
                path = Path(tmp) / f"{role}.safetensors"
                net.save(path)
                t0 = time.perf_counter()
                status, _reasons, q = check_every_prefix(net, case, role, tolerance=1e-9)
                check_s = time.perf_counter() - t0
                nets[role] = net
                rows.append([label, role, f"{rep.parameters:,}", f"{path.stat().st_size / 1e3:,.1f} kB", "2", str(T),
                             f"{compile_s * 1e3:.0f} ms", f"{q['groups']:,}", f"{q['layer1_states']:,}",
                             f"{check_s:.1f} s", status.value])
            t0 = time.perf_counter()
            cert = every_prefix_certificate(case, nets["completer"], nets["violator"], tolerance=1e-9)
            totals.append([label, f"{time.perf_counter() - t0:.1f} s", cert.status.value])
    lookup = []
    for label, n in (("anbn / L3, n <= 16", 16), ("L3, n <= 128", 128)):
        case = load_case("L3", n)
        prefixes = case_prefixes(case)
        lc = planned_config(case, prefixes, "compile")
        with torch.device("meta"):
            params = sum(p.numel() for p in DecoderTransformer(lc).parameters())
        lookup.append([label, f"{params:,}", f"{params * 8 / 1e6:,.1f} MB", "2", str(lc.max_len - 1),
                       f"{len(prefixes):,} prefixes (the set it is built for; nothing is claimed off it)"])
    grow = []
    case = load_case("L3", 16)
    for t in (64, 128, 256, 512):
        net, _ = compile_compact(case.data, "violator", CompactConfig(context=t))
        t0 = time.perf_counter()
        _s, _r, q = check_every_prefix(net, case, "violator", tolerance=1e-9, cross_length=0)
        grow.append([str(t), f"{q['groups']:,}", f"{q['layer1_states']:,}", f"{q['corner_evaluations']:,}",
                     f"{time.perf_counter() - t0:.1f} s"])
    body = ("Compact networks (both roles: 2 layers, d_model 19, one head of width 3, 10 MLP units per layer):\n\n"
            + "\n".join(markdown_table(["case", "role", "parameters", "file", "layers", "T", "compile",
                                        "abstract states", "layer-1 states", "every-prefix check", "verdict"], rows))
            + "\n\nThe full every-prefix certificate of the pair (both networks, cross-check included):\n\n"
            + "\n".join(markdown_table(["case", "wall", "verdict"], totals))
            + "\n\nThe lookup compiler beside it (sizes of its planned networks; its check covers only its prefix set):\n\n"
            + "\n".join(markdown_table(["case", "parameters", "float64 weights", "layers", "T", "covers"], lookup))
            + "\n\nGrowth of the abstract-state check with T (L3 n <= 16 violator, no cross-check): the states grow "
            "as T², the check time about as fast.\n\n"
            + "\n".join(markdown_table(["T", "abstract states", "layer-1 states", "corner evaluations", "check"], grow))
            + "\n")
    return publish(body, args.write, "compact", "Compact compiler (issue 22)", "python -m benchmarks.bench_compact")


if __name__ == "__main__":
    raise SystemExit(main())
