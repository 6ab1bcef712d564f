"""``nonid counterexample CASE --out DIR``: build, check and write a network pair (no mathematics here)."""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from constructions.compile.config import CompileConfig


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser("counterexample", help="compile (or distill) a transformer pair with equal test loss "
                              "and opposite OOD behaviour, check it exhaustively, and write weights + certificate",
                              description="Sizes: the compiled networks are lookup tables over every prefix they "
                              "are checked on, so they grow with the data: anbn (n <= 16) is 0.6 M parameters per "
                              "model, L3 (n <= 128, the paper's data) 33 M, L5 (n <= 85) 42 M.  An estimate of "
                              "parameters, disk and time is printed before any weight is made.")
    p.add_argument("case", metavar="CASE", help="anbn (a^n b^n, n = 1..N, default N = 16: the small case for a CPU) "
                   "or L1..L6 (the companion paper's languages at its data sizes: L3 n <= 128, L5 n <= 85)")
    p.add_argument("--out", required=True, metavar="DIR", help="directory to write (created; must be empty unless --force)")
    p.add_argument("--method", default="compile", help="compile (analytic lookup weights, default), compact (anbn and L3: "
                   "a 2-layer network that computes the rule, 19*T + O(1) parameters, checked on every prefix up to T) "
                   "or distill (trained)")
    p.add_argument("--context", type=int, default=None, metavar="T",
                   help="compact: the longest prefix the networks are built and checked for (default 256, range [2, 4096]; "
                   "at least the longest support word, 2N)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda (distillation only; checks run on the CPU)")
    p.add_argument("--n-max", type=int, default=None, metavar="N",
                   help="anbn, L3, L5: a^n b^n (c^n) with n = 1..N (defaults anbn 16, L3 128, L5 85)")
    p.add_argument("--zero-logit", type=float, default=None, metavar="LAMBDA",
                   help="compile: logit of zero-probability tokens is -LAMBDA (default 40, safe range [1, 700])")
    p.add_argument("--margin", type=float, default=None, help="compile: lookup-unit margin (default 1, safe range [1e-3, 1e3])")
    p.add_argument("--max-steps", type=int, default=None, help="distill: step cap (default 20000)")
    p.add_argument("--checkpoint-dir", default=None, metavar="CKPT",
                   help="distill: write checkpoints here every 500 steps and resume from them")
    p.add_argument("--force", action="store_true", help="replace DIR when it is an earlier counterexample")
    p.add_argument("--export", default=None, metavar="TO",
                   help="also write the pair as library models and re-check them through the library: hf (Hugging Face "
                   "GPT-2 / OPT folders in DIR/hf/q1, DIR/hf/q2; needs pip install -e '.[hf]') or tl (TransformerLens folders DIR/tl/q1, DIR/tl/q2; "
                   "needs pip install -e '.[tl]')")
    return p


N_MAX_CASES = ("anbn", "L3", "L5")
"""The cases with a length bound n (the others are bounded by their word length, fixed per case)."""


def validate(args: argparse.Namespace) -> tuple[str, CompileConfig]:
    """Every option checked, before torch is imported: the canonical case name and the compile knobs.

    Raises:
        InvalidLanguage, InvalidModelConfig, InapplicableOption, InvalidArtifact: naming the flag.
    """
    from constructions.artifact_files import MAX_N_MAX, check_output_dir
    from constructions.compile.config import CompileConfig
    from constructions.rule_extrapolation import CASES
    from theory.errors import InapplicableOption, InvalidArtifact, InvalidLanguage, InvalidModelConfig
    from theory.validation import check_choice, check_int, did_you_mean

    folded = {c.casefold(): c for c in CASES}
    case = folded.get(str(args.case).casefold())
    if case is None:
        raise InvalidLanguage(f"unknown rule-extrapolation case {args.case!r}; known: {', '.join(CASES)}"
                              f"{did_you_mean(args.case, CASES)}")
    check_choice(args.method, "--method", ("compile", "compact", "distill"), error=InvalidModelConfig)
    if args.method == "compact":
        from constructions.compact_pair import COMPACT_CASES

        if case not in COMPACT_CASES:
            raise InapplicableOption(f"case {case} has no compact construction (--method compact covers "
                                     f"{', '.join(COMPACT_CASES)}); use --method compile")
    check_choice(args.device, "--device", ("auto", "cpu", "cuda"), error=InvalidModelConfig)
    if args.n_max is not None:
        if case not in N_MAX_CASES:
            raise InapplicableOption(f"--n-max does not apply to case {case} (only {', '.join(N_MAX_CASES)} take it; "
                                     f"{case}'s words are bounded by a fixed length)")
        check_int(args.n_max, "--n-max", minimum=1, maximum=MAX_N_MAX, error=InvalidModelConfig)
    used = {"--zero-logit": ("compile", "compact"), "--margin": ("compile", "compact"), "--context": ("compact",),
            "--max-steps": ("distill",), "--checkpoint-dir": ("distill",), "--device": ("distill",)}
    given = {"--zero-logit": args.zero_logit, "--margin": args.margin, "--max-steps": args.max_steps,
             "--context": getattr(args, "context", None),
             "--checkpoint-dir": args.checkpoint_dir, "--device": None if args.device == "auto" else args.device}
    for flag, methods in used.items():
        if given[flag] is not None and args.method not in methods:
            raise InapplicableOption(f"{flag} applies to --method {' or '.join(methods)} only, not --method {args.method}")
    if args.max_steps is not None:
        check_int(args.max_steps, "--max-steps", minimum=1, error=InvalidModelConfig)
    from constructions.compile.config import MARGIN_RANGE, ZERO_LOGIT_RANGE
    from theory.validation import check_number

    if args.method == "compact":
        from constructions.compile import compact

        ZERO_LOGIT_RANGE, MARGIN_RANGE = compact.ZERO_LOGIT_RANGE, compact.MARGIN_RANGE  # noqa: N806
    for flag, value, (lo, hi) in (("--zero-logit", args.zero_logit, ZERO_LOGIT_RANGE), ("--margin", args.margin, MARGIN_RANGE)):
        if value is not None:
            check_number(value, flag, lo=lo, hi=hi, error=InvalidModelConfig, note="its safe range")
    export = getattr(args, "export", None)
    if export is not None:
        from constructions.artifact_files import EXPORT_DIRS

        check_choice(export, "--export", tuple(EXPORT_DIRS), error=InvalidModelConfig)
        from constructions.artifact_files import export_unavailable

        why = export_unavailable(export)
        if why:
            raise InapplicableOption(why)
    knobs = {k: v for k, v in (("zero_logit", args.zero_logit), ("margin", args.margin)) if v is not None}
    if args.method == "compact":
        from constructions.compile.compact import CompactConfig
        from constructions.rule_extrapolation import PAPER_N_MAX

        context = getattr(args, "context", None)
        if context is not None:
            knobs["context"] = context
        compact_config = CompactConfig(**knobs)
        n = args.n_max if args.n_max is not None else (16 if case == "anbn" else PAPER_N_MAX[case])
        if compact_config.context < 2 * n:
            raise InvalidModelConfig(f"--context {compact_config.context} is shorter than the longest support word "
                                     f"(a^{n} b^{n}: {2 * n} symbols); give --context {2 * n} or more")
        knobs = {}
        args.compact_config = compact_config
    compile_config = CompileConfig(**knobs)
    check_output_dir(args.out, args.force)
    if args.checkpoint_dir is not None:
        import os
        from pathlib import Path

        out, ck = Path(os.path.abspath(args.out)), Path(os.path.abspath(args.checkpoint_dir))
        if ck == out or out in ck.parents:  # the checkpoints would land in the folder about to be replaced
            raise InvalidArtifact(f"--checkpoint-dir {args.checkpoint_dir!r} lies inside --out {args.out!r}; "
                                  "put the checkpoints elsewhere")
    return case, compile_config


def run(args: argparse.Namespace) -> int:
    case_name, compile_config = validate(args)
    from constructions.export import build_pair, case_prefixes, estimate_pair, load_case, write_directory
    from theory.errors import Interrupted

    distill_config = None
    if args.method == "distill":
        from constructions.distill import DistillConfig, resolve_device

        resolve_device(args.device)
        distill_config = DistillConfig(device=args.device, **({"max_steps": args.max_steps} if args.max_steps is not None else {}))
    t0 = time.perf_counter()
    case = load_case(case_name, args.n_max)
    if args.method == "distill" and args.checkpoint_dir is not None:  # created only once every input is known good
        from pathlib import Path

        from theory.errors import InvalidArtifact

        try:
            Path(args.checkpoint_dir).mkdir(parents=True, exist_ok=True)
        except (OSError, ValueError) as e:
            raise InvalidArtifact(f"--checkpoint-dir {args.checkpoint_dir!r} cannot be created ({getattr(e, 'strerror', None) or e})") from None
    print(f"built construction {case.name} ({case.data.name})  {time.perf_counter() - t0:.1f}s", flush=True)
    prefixes = case_prefixes(case)
    if args.export is not None:  # the networks' shapes are known before any weight is made
        from constructions.export import export_refusal, planned_config
        from theory.errors import InvalidModelConfig

        cfg = planned_config(case, prefixes, args.method, distill_config, getattr(args, "compact_config", None))
        why = export_refusal(args.export, [cfg, cfg])
        if why:
            raise InvalidModelConfig(why)
    compact_config = getattr(args, "compact_config", None)
    print(estimate_pair(case, prefixes, args.method, distill_config, compact_config).line(), flush=True)
    try:
        pair = build_pair(case, args.method, compile_config=compile_config, distill_config=distill_config,
                          device=args.device, log=lambda m: print(m, flush=True), checkpoint_dir=args.checkpoint_dir,
                          compact_config=compact_config)
        cert = write_directory(pair, args.out, n_max=args.n_max, overwrite=args.force, export=args.export)
    except KeyboardInterrupt:
        if args.checkpoint_dir is not None:
            raise Interrupted(f"rerun the same command to resume from --checkpoint-dir {args.checkpoint_dir}") from None
        raise
    q = cert.quantities
    q1, q2 = q["q1"], q["q2"]
    h = q["entropy_nats"]
    from constructions.check import evaluation_words

    print(f"  checked {q1['prefixes_checked']:,} prefixes {evaluation_words(q1)}  max TV <= {q1['max_tv_upper']}, "
          f"{q2['max_tv_upper']} (tolerance {q1['tolerance_tv']:g}; KL bound {q1['kl_bound']:g})")
    print(f"  test loss   Q1 = H(P) + [{q1['kl_lower']}, {q1['kl_upper']}]   Q2 = H(P) + [{q2['kl_lower']}, {q2['kl_upper']}] nats"
          f"   (H(P) = {h['exact']} ~ {float(h['lower']):.6f})")
    def r1(m: dict) -> str:  # None: the network's greedy completions are not certainly the construction's
        return "n/a" if m.get("ood_r1") is None else f"{m['ood_r1']['approx']:.3f}"

    print(f"  OOD R1      Q1 {r1(q1)}   Q2 {r1(q2)}   ({q['ood_prompts']} prompts)")
    every = q.get("every_prefix")
    if every:
        print(every_prefix_lines(every))
    for note in pair.notes:
        print(f"  note: {note}")
    out = args.out.rstrip("/")
    print(f"wrote {out}/q1.safetensors {out}/q2.safetensors {out}/config.json {out}/certificate.json {out}/README.md")
    exported_ok = True
    if args.export is not None:
        from nonid.cmd_export import export_line

        entry = q["exports"][args.export]
        exported_ok = entry["status"] == "verified"
        print(export_line(f"{out}/{args.export}", args.export))
    print(f"{cert.status.value}" + (f": {cert.reason}" if cert.reason else ""))
    return 0 if cert.verified and exported_ok else 1


def every_prefix_lines(every: dict) -> str:
    """The compact check's summary: abstract states, support bounds, OOD outcomes, cross-check."""
    out = []
    for key, label in (("q1", "Q1"), ("q2", "Q2")):
        m = every.get(key, {})
        if "groups" not in m:
            out.append(f"  every prefix {label}: not checked ({m.get('abstract_check', 'refused')})")
            continue
        o = m["ood_outcomes"]
        cc = m["cross_check"]
        out.append(f"  every prefix <= {m['context']} ({label}): {m['groups']:,} abstract states, {m['support_prefixes']:,} support "
                   f"prefixes max TV <= {m['max_tv_upper']}; {m['ood_states']:,} OOD states: {o['satisfies']:,} satisfy R1, "
                   f"{o['violates']:,} violate, {o['beyond']:,} pass position {m['context']} (every prompt of length <= "
                   f"{m['ood_prompt_length_all_finish']} finishes), {o['uncertified']:,} uncertified; "
                   f"cross-check on {cc['prefixes']:,} prefixes {'agrees' if cc['all_overlap'] and not cc['certified_argmax_disagreements'] else 'DISAGREES'}")
    return "\n".join(out)
