"""The torch side of the mutation catalogue: compiled networks, counterexample directories, distillation
checkpoints and fine-tuning reparametrisations, each broken in one named way.

Every fixture is built once per process (``functools.lru_cache``) and kept tiny: the aⁿbⁿ case with
n ≤ 4 (≈1,100 prefixes, both networks compiled in a tenth of a second), a 2-layer float64 model for
the fine-tuning maps checked exhaustively up to length 6, and a 16-wide student for the checkpoint.
The compiled pair and the counterexample folders are :mod:`tests.mutants.shared`'s (the file and
enclosure mutants use them too).  A mutant never changes a cached object: it clones what it breaks.
"""

from __future__ import annotations

import functools
import json
import tempfile
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import torch

from tests.mutants.registry import ACCEPTED, mutant, verdict
from tests.mutants.shared import N_MAX, anbn_pair, cli_verdict, compiled_anbn, fresh, rehash, written


# ---- shared fixtures --------------------------------------------------------------------------------
def _check(q1, q2, prefixes=None, case=None, **kw):
    from constructions.check import check_pair

    c, ps, _, _ = compiled_anbn()
    return check_pair(c if case is None else case, q1, q2, ps if prefixes is None else prefixes, **kw)


def _logit_rows(net) -> slice:
    """The residual coordinates of the LOGIT block (the compiled network's last |Σ| + 1)."""
    cfg = net.config
    return slice(cfg.d_model - cfg.n_outputs, cfg.d_model)


def _nudge_lookup(net, prefix: str, delta) -> object:
    """A clone of a compiled network with ``delta`` added to the logits written by ``prefix``'s lookup unit."""
    _, ps, _, _ = compiled_anbn()
    bad = net.clone()
    k = ps.prefixes.index(prefix)
    with torch.no_grad():
        bad.blocks[1].mlp.fc_out.weight[_logit_rows(bad), k] += torch.tensor(delta, dtype=torch.float64)
    return bad


def _pick(mutate: bool, good, bad):
    return bad if mutate else good


# ---- compiled networks and the exhaustive checker --------------------------------------------------
@mutant("compiled-weight-nudged", "compiled", "falsified")
def compiled_weight_nudged(mutate: bool) -> str:
    """One compiled output weight nudged: the lookup unit of the support prefix 'aab' writes the logit of
    'a' (probability 0 there, floored at −40) as −20 instead, a TV of e^−20 ≈ 2.1e−9 > the tolerance 1e−9."""
    _, _, q1, q2 = compiled_anbn()
    bad = _nudge_lookup(q1, "aab", [20.0, 0.0, 0.0])
    return verdict(lambda: _check(_pick(mutate, q1, bad), q2))


@mutant("compiled-logit-off-beyond-tolerance", "compiled", "falsified")
def compiled_logit_off(mutate: bool) -> str:
    """The compiled completer's logit for 'b' after the support prefix 'a' (p = 1/4, not a floored zero)
    off by 2e−8: TV ≈ p(1 − p)·2e−8 ≈ 3.8e−9, just beyond the stated tolerance 1e−9."""
    _, _, q1, q2 = compiled_anbn()
    bad = _nudge_lookup(q1, "a", [0.0, 2e-8, 0.0])
    return verdict(lambda: _check(_pick(mutate, q1, bad), q2))


@mutant("compiled-lookup-unit-silenced", "compiled", "falsified")
def compiled_lookup_silenced(mutate: bool) -> str:
    """The violator's lookup unit of the support prefix 'aabb' never fires (its bias lowered by 2·margin):
    the network is uniform there instead of ending the word."""
    _, ps, q1, q2 = compiled_anbn()
    bad = q2.clone()
    with torch.no_grad():
        bad.blocks[1].mlp.fc_in.bias[ps.prefixes.index("aabb")] -= 2.0
    return verdict(lambda: _check(q1, _pick(mutate, q2, bad)))


@mutant("compiled-from-wrong-conditional", "model", "falsified")
def compiled_from_wrong_conditional(mutate: bool) -> str:
    """Q1 compiled faithfully, but from a completer whose conditional at the one support prefix 'aa' is
    changed: the probabilities of 'a' and 'b' after 'aa' (2/3, 1/3) swapped."""
    from constructions.compile import compile_model
    from theory.probability import NextTokenDistribution

    case, ps, q1, q2 = compiled_anbn()

    class OneRowChanged:
        alphabet = case.completer.alphabet

        def next_token(self, prefix: str):
            row = case.completer.next_token(prefix)
            if prefix != "aa":
                return row
            probs = list(row.probs)
            probs[0], probs[1] = probs[1], probs[0]
            return NextTokenDistribution(self.alphabet, dict(zip(self.alphabet.outcomes, probs)))

    bad = compile_model(OneRowChanged(), ps)[0] if mutate else q1
    return verdict(lambda: _check(bad, q2))


@mutant("compiled-pair-swapped", "compiled", "falsified")
def compiled_pair_swapped(mutate: bool) -> str:
    """The completer and the violator handed to the checker the wrong way round (Q1 := violator network):
    the certificate's OOD claim about Q1 would be the opposite of the truth."""
    _, _, q1, q2 = compiled_anbn()
    return verdict(lambda: _check(q2, q1) if mutate else _check(q1, q2))


@mutant("compiled-ood-greedy-step-flipped", "compiled", "falsified")
def compiled_ood_flipped(mutate: bool) -> str:
    """A change that touches no support prefix: on the OOD prompt 'b' the completer's greedy path is
    steered (its first step's logit for EOS raised by 50), so Q1's OOD behaviour is no longer the
    construction's — the test loss is unchanged, and the checker must still see it."""
    case, ps, q1, q2 = compiled_anbn()
    assert not case.data.in_support("b")
    bad = _nudge_lookup(q1, "b", [0.0, 0.0, 50.0])
    return verdict(lambda: _check(_pick(mutate, q1, bad), q2))


@mutant("compiled-prompt-split-off-by-one", "prompt", "falsified")
def compiled_prompt_split_off_by_one(mutate: bool) -> str:
    """Both networks compiled on a prefix set whose prompts were split off by one (each prompt's last
    symbol moved into the continuation, so the greedy paths are followed from u[:-1]) and checked on
    the real set: greedy steps from the real prompts fall off the compiled set (uniform rows)."""
    from constructions.compile import PrefixSet, compile_model, prefix_set

    case, ps, q1, q2 = compiled_anbn()
    if not mutate:
        return verdict(lambda: _check(q1, q2))
    short = prefix_set(case.completer, data=case.data, prompts=[u[:-1] for u in case.prompts.prompts],
                       max_new_tokens=case.max_new_tokens, follow=[case.violator])
    missing = set(ps.prefixes) - set(short.prefixes)
    assert missing
    # keep the positional range of the full set (one unchecked filler word of its maximal length)
    filler = next(w for w in ("b" * ps.max_length, "ba" * ps.max_length) if w[:ps.max_length] not in ps)
    short = PrefixSet.closure(short.alphabet, [*short.maximal, filler[:ps.max_length]])
    b1, b2 = (compile_model(m, short)[0] for m in (case.completer, case.violator))
    return verdict(lambda: _check(b1, b2))


@mutant("check-prefix-set-misses-a-support-prefix", "prompt", "refused:InvalidDistribution")
def check_prefix_set_misses_support(mutate: bool) -> str:
    """The checker handed a prefix set one symbol short of the longest support word 'aaaabbbb' (an
    off-by-one split of the data's words): the rigorous KL cannot be computed on it and is refused,
    never silently bounded on a part of the support."""
    from constructions.compile import PrefixSet

    case, ps, q1, q2 = compiled_anbn()
    longest = "a" * N_MAX + "b" * N_MAX
    cut = PrefixSet.closure(ps.alphabet, [w for w in ps.maximal if not w.startswith(longest)] + [longest[:-1]])
    assert longest in ps and longest not in cut
    return verdict(lambda: _check(q1, q2, prefixes=cut if mutate else ps))


@mutant("compiled-weight-nan", "compiled", "falsified")
def compiled_weight_nan(mutate: bool) -> str:
    """One lookup weight of the completer set to NaN: its logits at that prefix are not numbers, which
    is a failed check (non-finite logits), never a pass and never a crash."""
    _, ps, q1, q2 = compiled_anbn()
    bad = _nudge_lookup(q1, "aab", [float("nan"), 0.0, 0.0])
    return verdict(lambda: _check(_pick(mutate, q1, bad), q2))


# ---- counterexample directories ---------------------------------------------------------------------
def _edit_certificate(d: Path, edit) -> None:
    cert = json.loads((d / "certificate.json").read_text())
    edit(cert)
    (d / "certificate.json").write_text(json.dumps(cert))


def _cli(d: Path) -> str:
    """The command line's verdict on a directory: ``verified`` for exit 0, else ``exit N``."""
    return cli_verdict(["check", str(d)])


def _flip_byte(path: Path, offset_from_end: int = 9) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) - offset_from_end] ^= 0x01
    path.write_bytes(bytes(data))


@mutant("export-weight-byte-flipped", "file", "refused:InvalidArtifact")
def export_byte_flipped(mutate: bool) -> str:
    """One bit of one weight in q1.safetensors flipped after writing: refused by its SHA-256."""
    with written() as d:
        if mutate:
            _flip_byte(d / "q1.safetensors")
        return verdict(lambda: fresh(d))


@mutant("export-certificate-hash-edited", "certificate", "refused:InvalidArtifact")
def export_hash_edited(mutate: bool) -> str:
    """The certificate's SHA-256 of q2.safetensors edited (one hex digit changed), the files intact."""
    def edit(cert):
        h = cert["quantities"]["files_sha256"]["q2.safetensors"]
        cert["quantities"]["files_sha256"]["q2.safetensors"] = ("0" if h[0] != "0" else "1") + h[1:]

    with written() as d:
        if mutate:
            _edit_certificate(d, edit)
        return verdict(lambda: fresh(d))


@mutant("export-weights-truncated-resigned", "file", "refused:InvalidArtifact")
def export_truncated(mutate: bool) -> str:
    """q2.safetensors cut to half its length and the certificate re-signed with the new hash: refused
    as an unreadable weight file, not loaded in part."""
    with written() as d:
        if mutate:
            p = d / "q2.safetensors"
            p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
            rehash(d)
        return verdict(lambda: fresh(d))


@mutant("export-config-disagrees-with-weights", "file", "refused:InvalidArtifact")
def export_config_mismatch(mutate: bool) -> str:
    """config.json's d_mlp for q1 edited (and re-signed): the config no longer describes the weights."""
    with written() as d:
        if mutate:
            cfg = json.loads((d / "config.json").read_text())
            cfg["models"]["q1"]["transformer"]["d_mlp"] += 1
            (d / "config.json").write_text(json.dumps(cfg))
            rehash(d)
        return verdict(lambda: fresh(d))


@mutant("export-weights-swapped-resigned", "file", "exit 1")
def export_weights_swapped(mutate: bool) -> str:
    """q1.safetensors and q2.safetensors swapped and re-signed: every file is intact and consistent,
    but the re-check finds the completer's file holds the violator, so `nonid check` exits 1."""
    with written() as d:
        if mutate:
            a, b = d / "q1.safetensors", d / "q2.safetensors"
            tmp = d / "swap"
            a.rename(tmp), b.rename(a), tmp.rename(b)
            rehash(d)
        return _cli(d)


@mutant("export-forged-verified-status", "certificate", "exit 1")
def export_forged_status(mutate: bool) -> str:
    """A directory whose completer has one support prefix's logit nudged (its honest certificate says
    falsified), with the certificate's status edited to verified: `nonid check` re-checks and exits 1."""
    from constructions.check import check_pair

    if not mutate:
        with written() as d:
            return _cli(d)
    pair = anbn_pair()
    bad = pair.q1.clone()
    k = pair.prefixes.prefixes.index("aab")
    with torch.no_grad():
        bad.blocks[1].mlp.fc_out.weight[_logit_rows(bad), k] += torch.tensor([45.0, 0.0, 0.0], dtype=torch.float64)
    cert = check_pair(pair.case, bad, pair.q2, pair.prefixes, tolerance=pair.tolerance)
    assert cert.status.value == "falsified"
    with written(replace(pair, q1=bad, certificate=cert)) as d:
        _edit_certificate(d, lambda c: c.update(status="verified", reason=""))
        return _cli(d)


@mutant("export-certificate-number-edited", "certificate", "exit 1")
def export_number_edited(mutate: bool) -> str:
    """The stored certificate's exact OOD R1 accuracy of the violator edited from 0 to 1/2 (status and
    files untouched): the stored record no longer says what the re-check finds, so `nonid check` exits 1."""
    def edit(cert):
        cert["quantities"]["q2"]["ood_r1"]["exact"] = "1/2"
        cert["quantities"]["q2"]["ood_r1"]["approx"] = 0.5

    with written() as d:
        if mutate:
            _edit_certificate(d, edit)
        return _cli(d)


@mutant("export-certificate-json-truncated", "certificate", "exit 2")
def export_certificate_truncated(mutate: bool) -> str:
    """certificate.json cut in the middle: `nonid check` refuses it with one line and exit 2."""
    with written() as d:
        if mutate:
            p = d / "certificate.json"
            p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
        return _cli(d)


# ---- distillation checkpoints -----------------------------------------------------------------------
_TINY = dict(d_model=16, n_heads=2, d_head=8, d_mlp=32, n_layers=1, lr=1e-2, check_every=1, checkpoint_every=1,
             device="cpu")


@mutant("distill-checkpoint-byte-flipped", "file", "refused:InvalidArtifact")
def distill_checkpoint_flipped(mutate: bool) -> str:
    """One bit of a distillation checkpoint's weights flipped between runs: resuming must refuse it
    (SHA-256), not continue training from silently corrupted weights."""
    from constructions.compile import prefix_set
    from constructions.distill import DistillConfig, distill
    from constructions.export import load_case

    case = load_case("anbn", 2)
    ps = prefix_set(case.completer, data=case.data)
    with tempfile.TemporaryDirectory() as tmp:
        ck = Path(tmp) / "q1.distill.pt"
        distill(case.completer, ps, DistillConfig(max_steps=2, **_TINY), checkpoint=ck, progress=False)
        if mutate:
            _flip_byte(ck, offset_from_end=ck.stat().st_size // 3)

        def resume():
            res = distill(case.completer, ps, DistillConfig(max_steps=3, **_TINY), checkpoint=ck, progress=False)
            return SimpleNamespace(status=ACCEPTED if res.steps == 3 else "unknown")

        return verdict(resume)


# ---- fine-tuning reparametrisations -----------------------------------------------------------------
FT_LENGTH = 6


@functools.lru_cache(maxsize=None)
def _ft_model(activation: str = "relu"):
    from constructions.transformer import DecoderTransformer, TransformerConfig

    cfg = TransformerConfig(alphabet="ab", d_model=12, n_heads=2, d_head=6, d_mlp=16, n_layers=2, max_len=8,
                            norm="pre", activation=activation, dtype="float64", seed=3)
    net = DecoderTransformer(cfg)
    with torch.no_grad():  # spread the attention scores so a wrong q/k scaling shows (×3 made the rigorous
        for p in net.parameters():  # enclosures ~1e-2 wide, too wide to decide; ×2 keeps them ~1e-5)
            p.mul_(2.0)
    return net.eval()


def _twin_certificate(model, other):
    from constructions.finetuning import certify_function_equality

    return certify_function_equality("mutant", model, other, FT_LENGTH)


def _same_function(model, other) -> str:
    return verdict(lambda: _twin_certificate(model, other))


@mutant("finetuning-wrong-inverse-qk", "finetuning", "falsified")
def finetuning_wrong_inverse(mutate: bool) -> str:
    """A query/key scaling whose key factor is 1/α² instead of 1/α (wrong inverse): the scores change, so
    the 'twin' is another function."""
    from constructions.finetuning import qk_scaling, wrong_inverse_qk_scaling

    m = _ft_model()
    pmap = (wrong_inverse_qk_scaling if mutate else qk_scaling)(m, 1, 0, 2.0)
    return _same_function(m, pmap.apply(m))


@mutant("finetuning-mlp-scaling-one-side", "finetuning", "falsified")
def finetuning_one_sided(mutate: bool) -> str:
    """A ReLU-MLP scaling that multiplies (W₁, b₁) by α but forgets to divide W₂: one of the paired
    matrices scaled alone, the function not preserved."""
    from constructions.finetuning import ParameterMap, mlp_scaling

    m = _ft_model()
    good = mlp_scaling(m, 0, 3.0)
    bad = ParameterMap("one-sided", tuple(s for s in good.steps if "fc_out" not in s.parameter), good.shape)
    assert len(bad.steps) < len(good.steps)
    return _same_function(m, (bad if mutate else good).apply(m))


@mutant("finetuning-permutation-inconsistent", "finetuning", "falsified")
def finetuning_permutation_inconsistent(mutate: bool) -> str:
    """A hidden-unit permutation applied to W₁ and b₁ but with the inverse order on W₂'s columns (the
    rows and the columns permuted inconsistently)."""
    from constructions.finetuning import ParameterMap, SlicePermutation, hidden_unit_permutation

    m = _ft_model()
    order = (1, 2, 0) + tuple(range(3, m.config.d_mlp))
    good = hidden_unit_permutation(m, 1, order)
    inv = (2, 0, 1) + tuple(range(3, m.config.d_mlp))
    steps = tuple(replace(s, order=inv) if isinstance(s, SlicePermutation) and "fc_out" in s.parameter else s
                  for s in good.steps)
    bad = ParameterMap("inconsistent", steps, good.shape, gradient_equivariant=True)
    assert steps != good.steps
    return _same_function(m, (bad if mutate else good).apply(m))


@mutant("finetuning-inverse-half-inverted", "finetuning", "falsified")
def finetuning_inverse_half_inverted(mutate: bool) -> str:
    """T = head permutation, value/output scaling by 2.5, hidden-unit 3-cycle; its 'inverse' built with the
    output factor left uninverted (W_O·(1/2.5) again instead of ·2.5): T⁻¹(T(θ)) must be θ's function and
    is not.  (A wrong inverse that is itself a consistent symmetry would be no mutant: the function check
    rightly accepts it.)"""
    from constructions.finetuning import ParameterMap, SliceScale, compose, head_permutation, hidden_unit_permutation, vo_scaling

    m = _ft_model()
    cycle = (1, 2, 0) + tuple(range(3, m.config.d_mlp))
    t = compose(head_permutation(m, 0, (1, 0)), vo_scaling(m, 0, 0, 2.5), hidden_unit_permutation(m, 0, cycle))
    inv = t.inverse()
    if mutate:
        steps = tuple(replace(s, factor=1.0 / s.factor) if isinstance(s, SliceScale) and "o_proj" in s.parameter else s
                      for s in inv.steps)
        assert steps != inv.steps
        inv = ParameterMap("inverse-with-output-factor-uninverted", steps, t.shape)
    return _same_function(m, inv.apply(t.apply(m)))


@mutant("finetuning-mlp-scaling-negative-alpha", "finetuning", "refused:InvalidReparametrisation")
def finetuning_negative_alpha(mutate: bool) -> str:
    """An MLP 'scaling' with α = −2: ReLU(−2z) ≠ −2·ReLU(z), so it is no symmetry; the map is refused
    when built, before any check could be fooled (α = 2 is the control)."""
    from constructions.finetuning import mlp_scaling

    m = _ft_model()
    return verdict(lambda: _twin_certificate(m, mlp_scaling(m, 0, -2.0 if mutate else 2.0).apply(m)))


@mutant("finetuning-mlp-scaling-on-gelu", "finetuning", "refused:NotPositivelyHomogeneous")
def finetuning_gelu(mutate: bool) -> str:
    """An MLP scaling applied to a GELU model: GELU is not positively homogeneous, so the map is refused
    (a ReLU model is the control)."""
    from constructions.finetuning import mlp_scaling

    m = _ft_model("gelu" if mutate else "relu")
    return verdict(lambda: _twin_certificate(m, mlp_scaling(m, 0, 2.0).apply(m)))
