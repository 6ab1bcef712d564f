"""The Hugging Face export side of the mutation catalogue (:mod:`constructions.hf_export`): exported folders
edited after the export, re-signed after a weight change, an export that drops the unembedding bias, and
SOS/PAD rows left open.  Every name starts with ``hf-`` (``pytest tests/mutants -k hf``).

Fixtures are built once per process: the cached aⁿbⁿ (n ≤ 3) pair of :mod:`tests.mutants.shared`, written
once with its export into a process-lifetime temporary folder; a mutant works on a copy.  The verdict of a
folder mutant is the library's: the fresh export certificate of :func:`constructions.export.verify_exports`
(a file-level refusal is ``refused:InvalidArtifact``).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from tests.mutants.registry import mutant, verdict
from tests.mutants.shared import anbn_pair

pytest_skip = None
try:  # the catalogue lists these mutants whether or not the extra is installed; they need it to run
    import transformers  # noqa: F401
except ImportError:  # pragma: no cover - only without the hf extra
    pytest_skip = "transformers is not installed (pip install -e '.[hf]')"


def _need_transformers() -> None:
    if pytest_skip:
        import pytest

        pytest.skip(pytest_skip)


@functools.lru_cache(maxsize=None)
def _exported() -> Path:
    """The n ≤ 3 pair folder with its hf export, written once."""
    from constructions.export import write_directory

    root = Path(tempfile.mkdtemp(prefix="nonid-hf-mutants-"))
    write_directory(anbn_pair(), root / "cx", n_max=3, export="hf")
    return root / "cx"


@contextlib.contextmanager
def _copy() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / "cx"
        shutil.copytree(_exported(), d)
        yield d


def _hf_verdict(d: Path) -> str:
    from constructions.export import read_pair, verify_exports

    return verdict(lambda: verify_exports(read_pair(d))["hf"][1])


def _edit_weights(d: Path) -> None:
    """Raise Q1's logit of ``a`` by 5 everywhere (its lm_head row on the constant coordinate)."""
    from safetensors.torch import load_file, save_file

    path = d / "hf" / "q1" / "model.safetensors"
    tensors = load_file(str(path))
    head = tensors["lm_head.weight"].clone()
    cfg = json.loads((d / "config.json").read_text())["models"]["q1"]["transformer"]
    head[0, cfg["d_model"] + 1] += 5.0
    tensors["lm_head.weight"] = head
    save_file(tensors, str(path), metadata={"format": "pt"})


def _resign(d: Path) -> None:
    """Re-sign the export as a forger would: every hf file's SHA-256 in hf/certificate.json, and that
    certificate's SHA-256 in the pair certificate."""
    hf = d / "hf" / "certificate.json"
    cert = json.loads(hf.read_text())
    files = cert["quantities"]["files_sha256"]
    for name in files:
        files[name] = hashlib.sha256((d / "hf" / name).read_bytes()).hexdigest()
    hf.write_text(json.dumps(cert))
    pair = json.loads((d / "certificate.json").read_text())
    pair["quantities"]["exports"]["hf"]["certificate_sha256"] = hashlib.sha256(hf.read_bytes()).hexdigest()
    (d / "certificate.json").write_text(json.dumps(pair))


@mutant("hf-weights-edited-after-export", "file", "refused:InvalidArtifact")
def edited(mutate: bool) -> str:
    """An exported model.safetensors whose lm_head was changed after the export, its hash left as it
    was: refused by the export certificate's SHA-256 before any re-check."""
    _need_transformers()
    with _copy() as d:
        if mutate:
            _edit_weights(d)
        return _hf_verdict(d)


@mutant("hf-weights-rehashed-after-change", "file", "falsified")
def rehashed(mutate: bool) -> str:
    """The same weight change, with every hash re-signed (the export certificate's and the pair
    certificate's record of it): the re-check through transformers finds Q1 far from the completer."""
    _need_transformers()
    with _copy() as d:
        if mutate:
            _edit_weights(d)
        _resign(d)
        return _hf_verdict(d)


# ---- exports that get the mapping wrong -----------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def _biased_pair() -> tuple:
    """The n ≤ 3 compiled pair with an unembedding bias b_U = (3, −2, 0) that the last MLP's output bias
    cancels (W_U w = b_U, b_out −= w): the same function, but an export must fold b_U to keep it."""
    import torch

    pair = anbn_pair()
    nets = []
    for net in (pair.q1, pair.q2):
        n = net.clone()
        last = n.blocks[-1].mlp.fc_out
        with torch.no_grad():
            b = torch.tensor([3.0, -2.0, 0.0], dtype=torch.float64)
            w = torch.linalg.pinv(n.unembed.weight) @ b
            n.unembed.bias.copy_(b)
            last.bias.sub_(w)
        nets.append(n)
    return pair, nets[0], nets[1]


def _export_verdict(fold_bias: bool = True, closed_logit: float | None = None, biased: bool = False) -> str:
    from constructions.hf_export import CLOSED_LOGIT, recheck_pair, to_hf

    pair, q1, q2 = _biased_pair() if biased else (anbn_pair(), anbn_pair().q1, anbn_pair().q2)
    with tempfile.TemporaryDirectory() as tmp:
        ex = {k: to_hf(net, Path(tmp) / k, fold_bias=fold_bias,
                       closed_logit=CLOSED_LOGIT if closed_logit is None else closed_logit)
              for k, net in (("q1", q1), ("q2", q2))}
        return verdict(lambda: recheck_pair(pair.case, pair.prefixes, {k: e.folder for k, e in ex.items()}, pair.method,
                                            check_name="hf-export-mutant", layouts={k: e.layout.to_dict() for k, e in ex.items()}))


@mutant("hf-export-without-bias-fold", "model", "falsified")
def no_fold(mutate: bool) -> str:
    """A pair whose unembedding has a bias (cancelled upstream, so the function is the compiled one),
    exported with the bias dropped instead of folded into the lm_head: every logit of a and b is off by
    3 and −2, and the re-check through the library is falsified.  Control: the same pair folded."""
    _need_transformers()
    return _export_verdict(fold_bias=not mutate, biased=True)


@mutant("hf-closed-rows-logit-zero", "model", "falsified")
def open_rows(mutate: bool) -> str:
    """SOS and PAD lm_head rows at logit 0 instead of −200: the library model puts probability mass on
    tokens nonid never predicts (up to 2/3 where the construction is sure), which the full-softmax
    re-check counts against it.  Control: the export as written (−200)."""
    _need_transformers()
    return _export_verdict(closed_logit=0.0 if mutate else None)
