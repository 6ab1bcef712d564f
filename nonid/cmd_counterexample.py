"""``nonid counterexample CASE --out DIR``: build, check and write a network pair (no mathematics here)."""

from __future__ import annotations

import argparse
import time


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser("counterexample", help="compile (or distill) a transformer pair with equal test loss "
                              "and opposite OOD behaviour, check it exhaustively, and write weights + certificate")
    p.add_argument("case", metavar="CASE", help="anbn (finite a^n b^n, n = 1..N) or L1..L6")
    p.add_argument("--out", required=True, metavar="DIR", help="directory to write (created; must be empty unless --force)")
    p.add_argument("--method", default="compile", help="compile (analytic weights, default) or distill (trained)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda (distillation only; checks run on the CPU)")
    p.add_argument("--n-max", type=int, default=None, metavar="N", help="a^n b^n with n = 1..N (anbn default 16; L3 128; L5 85)")
    p.add_argument("--zero-logit", type=float, default=None, metavar="LAMBDA",
                   help="compile: logit of zero-probability tokens is -LAMBDA (default 40, safe range [1, 700])")
    p.add_argument("--margin", type=float, default=None, help="compile: lookup-unit margin (default 1, safe range [1e-3, 1e3])")
    p.add_argument("--max-steps", type=int, default=None, help="distill: step cap (default 20000)")
    p.add_argument("--checkpoint-dir", default=None, metavar="CKPT",
                   help="distill: write checkpoints here every 500 steps and resume from them")
    p.add_argument("--force", action="store_true", help="replace a non-empty DIR")
    return p


def run(args: argparse.Namespace) -> int:
    from constructions.compile import CompileConfig
    from constructions.export import METHODS, build_pair, check_output_dir, load_case, write_directory
    from theory.errors import InvalidModelConfig

    if args.method not in METHODS:
        raise InvalidModelConfig(f"--method {args.method!r} is not one of {', '.join(METHODS)}")
    if args.device not in ("auto", "cpu", "cuda"):
        raise InvalidModelConfig(f"--device {args.device!r} is not one of auto, cpu, cuda")
    check_output_dir(args.out, args.force)
    if args.checkpoint_dir is not None:
        import os
        from pathlib import Path

        from theory.errors import InvalidArtifact

        out, ck = Path(os.path.abspath(args.out)), Path(os.path.abspath(args.checkpoint_dir))
        if ck == out or out in ck.parents:  # the checkpoints would land in the folder about to be replaced
            raise InvalidArtifact(f"--checkpoint-dir {args.checkpoint_dir!r} lies inside --out {args.out!r}; "
                                  "put the checkpoints elsewhere")
    knobs = {k: v for k, v in (("zero_logit", args.zero_logit), ("margin", args.margin)) if v is not None}
    compile_config = CompileConfig(**knobs)
    distill_config = None
    if args.method == "distill":
        from constructions.distill import DistillConfig, resolve_device

        resolve_device(args.device)
        distill_config = DistillConfig(device=args.device, **({"max_steps": args.max_steps} if args.max_steps is not None else {}))
    t0 = time.perf_counter()
    case = load_case(args.case, args.n_max)
    if args.method == "distill" and args.checkpoint_dir is not None:  # created only once every input is known good
        from pathlib import Path

        from theory.errors import InvalidArtifact

        try:
            Path(args.checkpoint_dir).mkdir(parents=True, exist_ok=True)
        except (OSError, ValueError) as e:
            raise InvalidArtifact(f"--checkpoint-dir {args.checkpoint_dir!r} cannot be created ({getattr(e, 'strerror', None) or e})") from None
    print(f"built construction {case.name} ({case.data.name})  {time.perf_counter() - t0:.1f}s", flush=True)
    pair = build_pair(case, args.method, compile_config=compile_config, distill_config=distill_config,
                      device=args.device, log=lambda m: print(m, flush=True), checkpoint_dir=args.checkpoint_dir)
    cert = write_directory(pair, args.out, n_max=args.n_max, overwrite=args.force)
    q = cert.quantities
    q1, q2 = q["q1"], q["q2"]
    h = q["entropy_nats"]
    print(f"  checked {q1['prefixes_checked']:,} prefixes on rigorous enclosures  max TV <= {q1['max_tv_upper']}, "
          f"{q2['max_tv_upper']} (tolerance {q1['tolerance_tv']:g}; KL bound {q1['kl_bound']:g})")
    print(f"  test loss   Q1 = H(P) + [{q1['kl_lower']}, {q1['kl_upper']}]   Q2 = H(P) + [{q2['kl_lower']}, {q2['kl_upper']}] nats"
          f"   (H(P) = {h['exact']} ~ {float(h['lower']):.6f})")
    def r1(m: dict) -> str:  # None: the network's greedy completions are not certainly the construction's
        return "n/a" if m.get("ood_r1") is None else f"{m['ood_r1']['approx']:.3f}"

    print(f"  OOD R1      Q1 {r1(q1)}   Q2 {r1(q2)}   ({q['ood_prompts']} prompts)")
    for note in pair.notes:
        print(f"  note: {note}")
    out = args.out.rstrip("/")
    print(f"wrote {out}/q1.safetensors {out}/q2.safetensors {out}/config.json {out}/certificate.json {out}/README.md")
    print(f"{cert.status.value}" + (f": {cert.reason}" if cert.reason else ""))
    return 0 if cert.verified else 1
