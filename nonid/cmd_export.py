"""``nonid export DIR --to hf|tl``: add a library export of a saved counterexample pair, re-checked through the
library (no mathematics here: :func:`constructions.export.add_export`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser("export", help="add library models (Hugging Face, TransformerLens) to a folder written by "
                              "`nonid counterexample`, re-checked through the library",
                              description="Writes DIR/hf/q1 and DIR/hf/q2 (folders that transformers' "
                              "AutoModelForCausalLM and AutoTokenizer load offline) and DIR/hf/certificate.json "
                              "(the re-check of the loaded models on rigorous enclosures), and records its SHA-256 "
                              "in DIR/certificate.json; the folder is replaced atomically.  --to tl writes DIR/tl/q1, DIR/tl/q2 "
                              "(TransformerLens 4 native models) and DIR/tl/certificate.json.")
    p.add_argument("directory", metavar="DIR", help="a folder written by `nonid counterexample`")
    p.add_argument("--to", required=True, metavar="TO", help="hf (Hugging Face GPT-2 / OPT; pip install -e '.[hf]'); "
                   "tl (TransformerLens 4 native models of LayerNorm-free and pre-LN networks; pip install -e '.[tl]')")
    p.add_argument("--force", action="store_true", help="replace an existing export of the same kind")
    p.add_argument("--json", action="store_true", help="print the export certificate as JSON")
    return p


def export_line(folder: str, to: str) -> str:
    """The one line that reports an export folder from its certificate (what `nonid export` and
    `nonid counterexample --export` print)."""
    cert = json.loads((Path(folder) / "certificate.json").read_text(encoding="utf-8"))
    q = cert.get("quantities", {})
    if cert.get("status") != "verified":
        return f"export {to} {cert.get('status')}: {folder}: {cert.get('reason')}"
    if to == "tl":
        return (f"export tl verified: {folder} (TransformerLens {q['q1'].get('transformer_lens', '?')} native models; "
                f"weights read back bitwise equal; its float64 logits within twice the rigorous enclosure's radius at "
                f"{q['q1'].get('prefixes', 0):,} prefixes each (a float cross-check, not a proof))")
    variants = ", ".join(f"{k} {q['layouts'][k]['variant']}" for k in ("q1", "q2"))
    return (f"export {to} verified: {folder} ({variants}; loaded back with transformers, {q['q1']['prefixes_checked']:,} "
            f"prefixes re-checked on rigorous enclosures, full softmax: max TV <= {q['q1']['max_tv_upper']}, "
            f"{q['q2']['max_tv_upper']}; KL <= {q['q1']['kl_upper']}, {q['q2']['kl_upper']})")


def run(args: argparse.Namespace) -> int:
    from constructions.artifact_files import EXPORT_DIRS, folder_to_check_problem
    from theory.errors import InapplicableOption, InvalidArtifact, InvalidModelConfig
    from theory.validation import check_choice

    check_choice(args.to, "--to", tuple(EXPORT_DIRS), error=InvalidModelConfig)
    from constructions.artifact_files import export_unavailable

    why = export_unavailable(args.to)  # before torch is imported
    if why:
        raise InapplicableOption(why)
    problem = folder_to_check_problem(args.directory)
    if problem:
        raise InvalidArtifact(problem)
    d = Path(args.directory)
    if (d / args.to).exists() and not args.force:
        raise InvalidArtifact(f"{d / args.to}: the folder already has a {args.to} export (replace it with --force)")
    from constructions.export import add_export

    _pair, cert = add_export(d, args.to, force=args.force)
    if args.json:
        print(cert.to_json(), end="")
    import sys

    print(export_line(str(d / args.to), args.to), file=sys.stderr if args.json else sys.stdout)
    return 0 if cert.verified else 1
