"""The rigorous evaluator's side of the mutation catalogue: networks whose float evaluation and real
function disagree, and counterexample folders whose verdict parameters a forger edited.

The central fixture is the **batch-layout trap**, built as an adversary would: a compiled aⁿbⁿ pair
widened by four residual dimensions (three hold 1.0 at every position, one carries a gain) and one
extra ReLU unit whose pre-activation is ``1·1 + 2⁻⁶⁰·1 − 1·1``.  In real arithmetic that is 2⁻⁶⁰ > 0;
a float matrix product gives 0 or 2⁻⁶⁰ depending on the order it sums in, i.e. on the batch layout.
The unit writes ``gain`` onto the logit of ``b``, so the real function puts almost all mass on ``b``
at every prefix (KL in the hundreds of nats) while a float pass that sums left to right sees the
construction.  A check of the network must hold for the real function: the trap is falsified.
"""

from __future__ import annotations

import functools
import json
import tempfile
from pathlib import Path

import torch

from tests.mutants.registry import mutant, verdict
from tests.mutants.shared import N_MAX, cli_verdict, compiled_anbn, rehash


def trap_network(net, gain: float = 2.0 ** 70, tiny: float = 2.0 ** -60, out_symbol: int = 1):
    """``net`` (a norm-free compiled transformer) with the batch-layout trap added (module docstring).
    ``gain = 0`` gives the same function as ``net`` (the control)."""
    from constructions.transformer import DecoderTransformer, TransformerConfig

    cfg = net.config
    assert cfg.norm == "none"
    new = TransformerConfig(**{**cfg.to_dict(), "d_model": cfg.d_model + 4, "d_mlp": cfg.d_mlp + 1})
    out = DecoderTransformer(new)
    old = net.state_dict()
    d, k = cfg.d_model, cfg.d_mlp
    state = {}
    for name, t in out.state_dict().items():
        z = torch.zeros_like(t)
        src = old[name]
        z[tuple(slice(0, s) for s in src.shape)] = src
        state[name] = z
    state["token_embedding.weight"][:, d:d + 3] = 1.0  # three residual dims equal to 1.0 everywhere
    last = f"blocks.{cfg.n_layers - 1}.mlp"
    state[f"{last}.fc_in.weight"][k, d:d + 3] = torch.tensor([1.0, tiny, -1.0], dtype=torch.float64)
    state[f"{last}.fc_out.weight"][d + 3, k] = gain
    state["unembed.weight"][out_symbol, d + 3] = 1.0
    out.load_state_dict(state)
    return out


@mutant("enclosure-batch-layout-trap", "network", "falsified")
def batch_layout_trap(mutate: bool) -> str:
    """A compiled Q1 with one extra ReLU unit whose real pre-activation is 2^-60 but whose float value is
    0.0 or 2^-60 depending on the summation order (the batch layout), with gain 2^70 onto the logit of
    'b': its real function puts almost all mass on 'b' everywhere.  Control: the same unit with gain 0."""
    from constructions.check import check_pair

    case, ps, q1, q2 = compiled_anbn()
    net = trap_network(q1, gain=2.0 ** 70 if mutate else 0.0)
    return verdict(lambda: check_pair(case, net, q2, ps))


@mutant("enclosure-straddling-relu-small-margin", "network", "falsified")
def straddling_relu(mutate: bool) -> str:
    """The trap with a modest gain (2^40) and a pre-activation of 2^-70: invisible to any float pass in any
    layout (1 + 2^-70 = 1 exactly), still real.  The enclosure widens the straddling ReLU and the check
    cannot certify TV <= 1e-9.  Control: gain 0."""
    from constructions.check import check_pair

    case, ps, q1, q2 = compiled_anbn()
    net = trap_network(q1, gain=2.0 ** 40 if mutate else 0.0, tiny=2.0 ** -70)
    return verdict(lambda: check_pair(case, net, q2, ps))


@mutant("enclosure-kl-above-the-bound", "network", "falsified")
def kl_above_bound(mutate: bool) -> str:
    """A faithful compiled pair checked with a KL bound below what its enclosures can show (1e-30 nats):
    the pair passes only if both KL upper bounds are below the stated bound, not on TV alone.
    Control: the compile method's bound 1e-9."""
    from constructions.check import check_pair

    case, ps, q1, q2 = compiled_anbn()
    return verdict(lambda: check_pair(case, q1, q2, ps, kl_bound=1e-30 if mutate else 1e-9))


def _folder() -> Path:
    from constructions.export import build_pair, load_case, write_directory

    d = Path(tempfile.mkdtemp(prefix="nonid-mutant-")) / "cx"
    write_directory(build_pair(load_case("anbn", N_MAX)), d, n_max=N_MAX)
    return d


@functools.lru_cache(maxsize=None)
def _saved() -> Path:
    return _folder()


def _copy() -> Path:
    import shutil

    d = Path(tempfile.mkdtemp(prefix="nonid-mutant-")) / "cx"
    shutil.copytree(_saved(), d)
    return d


def _check_cli(d: Path) -> str:
    """`nonid check d` as a verdict: "verified" for exit 0 (the control), else "exit N"."""
    return cli_verdict(["check", str(d)])


def _forged_config(mutate: bool, **changes) -> str:
    """`nonid check` on a copy of the saved folder whose config.json has ``changes`` (when ``mutate``),
    re-signed as a forger would."""
    d = _copy()
    if mutate:
        _edit_config(d, **changes)
    return _check_cli(d)


def _edit_config(d: Path, **changes) -> None:
    cfg = json.loads((d / "config.json").read_text())
    for key, value in changes.items():
        if key == "n_max":
            cfg["case_options"] = {"n_max": value}
        else:
            cfg[key] = value
    (d / "config.json").write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    rehash(d)


@mutant("check-forged-tolerance", "file", "exit 2")
def forged_tolerance(mutate: bool) -> str:
    """config.json's tolerance_tv raised from the compile method's 1e-9 to 0.9 and the hashes recomputed:
    the tolerance comes from the method, so the file's value is refused.  Control: the folder as written."""
    return _forged_config(mutate, tolerance_tv=0.9)


@mutant("check-forged-kl-bound", "file", "exit 2")
def forged_kl_bound(mutate: bool) -> str:
    """config.json's kl_bound raised to 1.0 and re-signed: refused like the tolerance."""
    return _forged_config(mutate, kl_bound=1.0)


@mutant("check-forged-method-distill", "file", "exit 2")
def forged_method(mutate: bool) -> str:
    """A compiled folder relabelled method 'distill' (whose tolerance 0.01 is looser) without changing the
    stated tolerance: the file's tolerance is not the distill method's, refused."""
    return _forged_config(mutate, method="distill")


@mutant("check-case-option-huge", "file", "exit 2")
def huge_case_option(mutate: bool) -> str:
    """case_options.n_max set to 10**9 and re-signed: refused before anything is built (it would not fit
    the networks' positions, nor memory)."""
    return _forged_config(mutate, n_max=10 ** 9)


@mutant("check-stored-bound-edited", "certificate", "exit 1")
def stored_bound_edited(mutate: bool) -> str:
    """The stored certificate's q1 KL upper bound edited (certificate.json is not itself hashed): the
    stored bounds must equal the re-derived ones exactly, so `nonid check` exits 1 and says where."""
    d = _copy()
    if mutate:
        cert = json.loads((d / "certificate.json").read_text())
        cert["quantities"]["q1"]["kl_upper"] = "1.00e-30"
        (d / "certificate.json").write_text(json.dumps(cert))
    return _check_cli(d)


@mutant("check-stored-assumption-dropped", "certificate", "exit 1")
def stored_assumption_dropped(mutate: bool) -> str:
    """An assumption deleted from the stored certificate: compared field by field, so exit 1."""
    d = _copy()
    if mutate:
        cert = json.loads((d / "certificate.json").read_text())
        cert["assumptions"] = cert["assumptions"][1:]
        (d / "certificate.json").write_text(json.dumps(cert))
    return _check_cli(d)


@mutant("check-model-card-edited", "file", "exit 1")
def model_card_edited(mutate: bool) -> str:
    """README.md (the model card) rewritten to claim something else and re-signed: the card is regenerated
    from config.json and the certificate and must be the file."""
    d = _copy()
    if mutate:
        (d / "README.md").write_text("# Verified forever\n")
        rehash(d)
    return _check_cli(d)


@mutant("enclosure-subclass-overrides-forward", "network", "refused:InvalidModelConfig")
def subclass_forward(mutate: bool) -> str:
    """A DecoderTransformer subclass whose forward computes something else: the evaluator encloses the
    DecoderTransformer's function, so it refuses a class that is not that function."""
    from constructions.check import check_pair
    from constructions.transformer import DecoderTransformer

    case, ps, q1, q2 = compiled_anbn()

    class Sneaky(DecoderTransformer):
        def forward(self, tokens):  # noqa: D401 - a forged forward
            return super().forward(tokens) * 0

    net = q1
    if mutate:
        net = Sneaky(q1.config)
        net.load_state_dict(q1.state_dict())
    return verdict(lambda: check_pair(case, net, q2, ps))
