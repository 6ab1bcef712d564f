"""``python -m proofs``: the same as ``nonid prove``."""

from nonid.cli import main

raise SystemExit(main(["prove"]))
