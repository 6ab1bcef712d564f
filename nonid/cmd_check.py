"""``nonid check DIR``: re-verify a saved counterexample from its files alone."""

from __future__ import annotations

import argparse
import sys


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser("check", help="re-verify a directory written by `nonid counterexample` "
                              "(hashes, config vs weights, exhaustive check; library exports in DIR/hf re-loaded "
                              "and re-checked too)")
    p.add_argument("directory", metavar="DIR")
    p.add_argument("--json", action="store_true", help="print the fresh certificate as JSON")
    return p


def run(args: argparse.Namespace) -> int:
    from constructions.artifact_files import folder_to_check_problem
    from theory.errors import InvalidArtifact

    problem = folder_to_check_problem(args.directory)  # before torch is imported
    if problem:
        raise InvalidArtifact(problem)
    from constructions.export import disagreements, read_pair, verify_exports, verify_pair

    pair = read_pair(args.directory)
    stored, fresh = verify_pair(pair)
    exports = verify_exports(pair)
    if args.json:
        print(fresh.to_json(), end="")
    q = fresh.quantities
    n = q["q1"]["prefixes_checked"]
    where = args.directory
    out = sys.stderr if args.json else sys.stdout
    exported = "".join(f"; {to} export re-loaded with its library and re-checked: {f.status.value}"
                       for to, (_s, f) in exports.items())
    if fresh.verified:
        from constructions.check import evaluation_words

        how = evaluation_words(q["q1"])
        print(f"verified: {where} (hashes match; {n:,} prefixes re-checked {how}; OOD R1 "
              f"{q['q1']['ood_r1']['approx']:.3f} vs {q['q2']['ood_r1']['approx']:.3f}; "
              f"KL <= {q['q1']['kl_upper']}, {q['q2']['kl_upper']}{exported})", file=out)
    else:
        print(f"{fresh.status.value}: {where}: {fresh.reason}", file=sys.stderr if args.json else sys.stdout)
    if stored.status is not fresh.status:
        print(f"note: the stored certificate says {stored.status.value}, the re-check says {fresh.status.value}",
              file=sys.stderr if args.json else sys.stdout)
        return 1
    diffs = disagreements(stored, fresh, args.directory)
    for to, (s_cert, f_cert) in exports.items():
        if not f_cert.verified:
            print(f"{f_cert.status.value}: {where}/{to}: {f_cert.reason}", file=out)
        diffs += [f"{to}/certificate.json: {d}" for d in disagreements(s_cert, f_cert)]
    if diffs:
        more = f" (and {len(diffs) - 3} more)" if len(diffs) > 3 else ""
        print(f"note: the stored certificate disagrees with the re-check: {'; '.join(diffs[:3])}{more}", file=out)
        return 1
    return 0 if fresh.verified and all(f.verified for _s, f in exports.values()) else 1
