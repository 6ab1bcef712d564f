"""``nonid audit SOURCE``: certify a network someone trained elsewhere against a language's data — its
saturation gap, the rule metrics on the paper's prompts, and the context-length check.

    nonid audit SOURCE --language L3 [--n-max N | --max-length M | --data FILE] [--tokens a=0,b=1,eos=2,bos=3]
                [--context T] [--factory MODULE:FUNCTION] [--epsilon E] [--unit token|sequence|padded]
                [--convention paper|published] [--sampled [--node-budget N]] [--exact] [--json]
                [--certificate FILE [--force]] [--device cpu|cuda|auto]

SOURCE is a Hugging Face folder, a nonid transformer file (``.safetensors``), a TorchScript file, or
(with ``--factory``) the weights of the module ``MODULE.FUNCTION()`` returns (:mod:`empirical.sources`).
What it computes and what each verdict means: :mod:`empirical.audit`.  Exit 0 when the saturation claim
is verified, 1 when falsified or unknown, 2 for bad input (one line, decided before torch is imported,
nothing written).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from theory.errors import InapplicableOption, InvalidArtifact, InvalidModelConfig


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser("audit", help="certify a network trained elsewhere: saturation gap, rule metrics, context")
    p.add_argument("source", metavar="SOURCE", help="a Hugging Face folder, a nonid .safetensors file, a TorchScript file, "
                   "or the weights file of --factory")
    p.add_argument("--language", required=True, help="L1..L6: the data P and the prompt sets")
    p.add_argument("--n-max", type=int, default=None, metavar="N", help="L3, L5: P uniform over n = 1..N (default 16)")
    p.add_argument("--max-length", type=int, default=None, metavar="M",
                   help="L1, L2, L4, L6: P the budget-uniform walk over words of at most M symbols (default 12)")
    p.add_argument("--data", default=None, metavar="FILE",
                   help='your own finite P instead: a JSON object {"word": "p/q", ...} of exact probabilities summing '
                        "to 1 (the language still gives the prompts and rules)")
    p.add_argument("--tokens", default=None, metavar="MAP",
                   help="token ids, e.g. a=0,b=1,eos=2,bos=3[,pad=4] (default: the tokenizer's, or a nonid file's own)")
    p.add_argument("--context", type=int, default=None, metavar="T",
                   help="positions the network may read, BOS included (default: its positional range)")
    p.add_argument("--factory", default=None, metavar="MODULE:FUNCTION",
                   help="build the network with MODULE.FUNCTION() and load SOURCE as its weights")
    p.add_argument("--epsilon", type=float, default=None, metavar="EPS", help="saturation threshold (default 1e-3)")
    p.add_argument("--unit", default="token", choices=["token", "sequence", "padded"],
                   help="unit of EPS: nats per token (default), per sequence, per padded token")
    p.add_argument("--convention", default="paper", help="the reading of the language for P: paper (default) or published; "
                   "the rule metrics are given under both")
    p.add_argument("--sampled", action="store_true", help="also the sampled-completion OOD R1 probability (budgeted)")
    p.add_argument("--node-budget", type=int, default=None, metavar="N",
                   help="with --sampled: rows expanded per prompt before the bracket is left open (default 2000)")
    p.add_argument("--exact", action="store_true", help="also print and store the exact entropy H(P)")
    p.add_argument("--json", action="store_true", help="print the certificate as JSON on stdout (the table goes to stderr)")
    p.add_argument("--certificate", default=None, metavar="FILE", help="write the certificate to FILE")
    p.add_argument("--force", action="store_true", help="replace FILE if it exists")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda or auto")
    return p


DEFAULT_MAX_LENGTH = 12
DEFAULT_N_MAX = 16
SIZE_LIMIT = 64


def _check_args(args: argparse.Namespace):
    """Every refusal that needs no torch: returns (language, token map or None, source)."""
    from empirical.sources import source_problem
    from theory import conventions
    from theory.languages import get_language
    from theory.tokenmap import parse_token_map
    from theory.validation import check_int, check_number

    lang = get_language(args.language)
    conventions.check_convention(args.convention, "--convention")
    lang = conventions.language(lang.name, args.convention)
    counting = lang.name in ("L3", "L5")
    if counting and args.max_length is not None:
        raise InapplicableOption(f"--max-length applies to L1, L2, L4, L6; {lang.name} takes --n-max")
    if not counting and args.n_max is not None:
        raise InapplicableOption(f"--n-max applies to L3 and L5; {lang.name} takes --max-length")
    if args.data is not None and (args.n_max is not None or args.max_length is not None):
        raise InapplicableOption("--data gives P itself: --n-max and --max-length do not apply")
    if args.n_max is not None:
        check_int(args.n_max, "--n-max", minimum=1, maximum=SIZE_LIMIT, error=InvalidModelConfig)
    if args.max_length is not None:
        check_int(args.max_length, "--max-length", minimum=1, maximum=16, error=InvalidModelConfig)
    if args.context is not None:
        check_int(args.context, "--context", minimum=2, maximum=1 << 20, error=InvalidModelConfig)
    if args.epsilon is not None:
        check_number(args.epsilon, "--epsilon", lo=0, lo_open=True, error=InvalidModelConfig)
    if args.node_budget is not None:
        if not args.sampled:
            raise InapplicableOption("--node-budget applies with --sampled only")
        check_int(args.node_budget, "--node-budget", minimum=1, maximum=10**7, error=InvalidModelConfig)
    if args.force and args.certificate is None:
        raise InapplicableOption("--force applies with --certificate only")
    if args.device not in ("cpu", "cuda", "auto"):
        raise InvalidModelConfig(f"--device {args.device!r} is not cpu, cuda or auto")
    tokens = parse_token_map(args.tokens, lang.alphabet) if args.tokens is not None else None
    args.data_distribution = _read_data(args.data, lang) if args.data is not None else None
    src, problem = source_problem(args.source, args.factory)
    if problem:
        raise InvalidArtifact(problem)
    if args.certificate is not None:
        out = Path(args.certificate)
        if out.is_dir():
            raise InvalidArtifact(f"--certificate {out}: is a folder")
        if not out.parent.is_dir():
            raise InvalidArtifact(f"--certificate {out}: the folder {out.parent} does not exist")
        if out.exists() and not args.force:
            raise InvalidArtifact(f"--certificate {out}: exists (pass --force to replace it)")
    return lang, tokens, src


def run(args: argparse.Namespace) -> int:
    lang, tokens, src = _check_args(args)
    say = (lambda s: print(s, file=sys.stderr)) if args.json else print
    import torch

    from empirical.adapter import NetworkModel
    from empirical.audit import DEFAULT_EPSILON, DEFAULT_NODE_BUDGET, audit, audit_certificate, audit_table
    from empirical.data import language_data
    from empirical.sources import load_source
    from theory.fileio import write_atomic
    from theory.tokenmap import native_token_map, token_map_from_tokenizer

    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    elif device == "cuda" and not torch.cuda.is_available():
        raise InvalidModelConfig("--device cuda: no CUDA device here")
    if args.data_distribution is not None:
        from empirical.audit import data_for_audit

        data = data_for_audit(args.data_distribution, lang)
    else:
        data = language_data(lang, n_max=args.n_max or DEFAULT_N_MAX, max_length=args.max_length or DEFAULT_MAX_LENGTH)
    loaded = load_source(src, device=device)
    if tokens is None:
        if loaded.tokenizer is not None:
            tokens = token_map_from_tokenizer(loaded.tokenizer, lang.alphabet)
        elif loaded.native_alphabet is not None:
            if loaded.native_alphabet != str(lang.alphabet):
                raise InvalidModelConfig(f"{src.path} is a network over {loaded.native_alphabet!r}; {lang.name} is over "
                                         f"{str(lang.alphabet)!r}")
            tokens = native_token_map(lang.alphabet)
        else:
            raise InvalidModelConfig(f"{src.path}: no tokenizer to read the token map from; pass --tokens "
                                     f"(e.g. {_example(lang)})")
    from empirical.adapter import positions_of

    context = args.context or loaded.context or positions_of(loaded.network)
    if context is None:
        raise InvalidModelConfig(f"{src.path}: the network's positional range is not known; pass --context T")
    model = NetworkModel(loaded.network, tokens, context, name=loaded.name, device=device)
    if data.max_length + 1 > model.context:
        raise InvalidModelConfig(f"context length {model.context} is shorter than the longest support word needs: "
                                 f"{data.max_length} symbols + BOS = {data.max_length + 1} positions")
    n_params = sum(p.numel() for p in loaded.network.parameters()) if isinstance(loaded.network, torch.nn.Module) else None
    size = f"{n_params:,} parameters" if n_params is not None else "a callable"
    say(f"estimate: {size}; {data.description}; greedy completions of the evaluated prompts of both readings, by "
        f"{'rigorous enclosures' if model.rigorous else 'float evaluation'}; seconds for a small model on 2 CPU cores")
    res = audit(model, data, epsilon=args.epsilon if args.epsilon is not None else DEFAULT_EPSILON, unit=args.unit,
                sampled=args.sampled, node_budget=args.node_budget or DEFAULT_NODE_BUDGET)
    cert = audit_certificate(res, exact=args.exact)
    say(audit_table(res, exact=args.exact))
    if args.certificate is not None:
        write_atomic(args.certificate, cert.to_json())
        say(f"certificate: {args.certificate}")
    if args.json:
        print(cert.to_json(), end="")
    return 0 if cert.verified else 1


def _read_data(path: str, lang):
    """P from a JSON object {word: exact probability} over the language's alphabet (torch-free; every
    refusal names the file and the bad entry)."""
    from theory.data import FiniteDistribution
    from theory.errors import NonidError
    from theory.jsonio import SMALL_FILE_LIMITS, JsonLimits, read_json_file

    limits = JsonLimits(max_bytes=16 * SMALL_FILE_LIMITS.max_bytes, max_depth=2)
    raw = read_json_file(path, what=f"--data {path}", error=InvalidArtifact, limits=limits)
    if not isinstance(raw, dict) or not raw:
        raise InvalidArtifact(f"--data {path}: not a non-empty JSON object {{\"word\": \"p/q\", ...}}")
    try:
        return FiniteDistribution(lang.alphabet, raw, name=Path(path).name)
    except NonidError as e:
        raise type(e)(f"--data {path}: {e}") from None


def _example(lang) -> str:
    from theory.tokenmap import example_map

    return example_map(lang.alphabet)
