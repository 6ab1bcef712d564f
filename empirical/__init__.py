"""Training experiments on real architectures, compared with the published numbers (issue 7).

Modules, in pipeline order:

* :mod:`empirical.data` — vocabulary/encoding, the languages' exact data distributions and training
  sets, the adversarial/oracle regime targets;
* :mod:`empirical.transformer` (the project's DecoderTransformer, with the published position-blind
  switch), :mod:`empirical.lstm`, :mod:`empirical.linear` (a correct causal mask);
  :mod:`empirical.architectures` names them, sizes them and refuses what cannot fit in memory;
* :mod:`empirical.train` — the one training loop (AdamW, atomic checkpoints, exact resume);
* :mod:`empirical.metrics` — test loss in both conventions, batched greedy rule metrics scored as
  ``theory.properties`` scores them, the network as an exact ``theory`` AR model;
* :mod:`empirical.saturation` — the certified saturation gap KL(P ‖ Q) over every support prefix;
* :mod:`empirical.protocol` — which OOD prompts the regime terms train on (held out from the evaluated
  ones by default) and the certificate's ε, Δ and seed count (no torch);
* :mod:`empirical.experiment` — runs, grids and the two aggregations;
* :mod:`empirical.certificate` — the experiment certificate: certified gaps ≤ ε, OOD R1 Δ apart on every
  seed, ≥ 3 seeds;
* :mod:`empirical.report` and :mod:`empirical.reference_data` — CSV, Markdown comparison with the
  published numbers (stored in ``empirical/reference/``), the figure.

The command line is ``nonid experiment rule-extrapolation`` (:mod:`nonid.cmd_experiment`).
Importing this package does not import torch; its modules do.
"""
