"""``python -m proofs``: the same as ``nonid prove``, with the same options."""

from proofs.cli import main

raise SystemExit(main())
