"""Certificates: canonical JSON, round trips, reasons, atomic writes; witnesses: the three verdicts."""

import os
from fractions import Fraction

import pytest

from theory.alphabet import EOS, Alphabet
from theory.certificate import Certificate, Status, write_atomic
from theory.data import FiniteDistribution
from theory.errors import InvalidCertificate, InvalidWitness
from theory.exact import FractionInterval, LogCombination
from theory.models import FunctionModel, PatchedModel, SupportExtension
from theory.witness import Witness, check_witness, kl_within

AB = Alphabet("ab")


def make_cert(**kw):
    base = dict(check="x", claim="c", status="verified", method="exact", quantities={"kl": LogCombination.log(2), "f": Fraction(1, 3)})
    base.update(kw)
    return Certificate(**base)


def test_round_trip_and_stable_bytes():
    c = make_cert().with_elapsed(1.23)
    assert c.to_json() == make_cert().to_json()  # timing is not part of the canonical form
    assert Certificate.from_json(c.to_json()) == make_cert()
    assert "elapsed_s" in c.to_json(timings=True)
    assert c.sha256() == make_cert().sha256()


def test_non_verified_needs_reason_and_method_is_checked():
    with pytest.raises(InvalidCertificate, match="needs a reason"):
        make_cert(status="unknown")
    with pytest.raises(InvalidCertificate, match="method"):
        make_cert(method="vibes")
    with pytest.raises(InvalidCertificate, match="format"):
        Certificate.from_dict({"format": 99})


def test_write_atomic_leaves_nothing_half_written(tmp_path):
    target = tmp_path / "c.json"
    write_atomic(target, "hello")
    assert target.read_text() == "hello"

    with pytest.raises(TypeError):
        write_atomic(target, 123)  # not text: the write fails
    assert target.read_text() == "hello"
    assert os.listdir(tmp_path) == ["c.json"]


# --- witnesses -------------------------------------------------------------------------------------
P = FiniteDistribution.uniform(AB, ["ab", "aabb"])


def completer(u):
    a, b = u.count("a"), u.count("b")
    return {"b": 1} if a > b else {"a": 1} if b > a else {EOS: 1}


def violator(u):
    a, b = u.count("a"), u.count("b")
    return {EOS: 1} if a != b else {"a": 1}


def ends_balanced(model):
    """Toy property: does greedy decoding from 'ba' end with #a = #b (within 6 tokens)?"""
    u = "ba"
    for _ in range(6):
        tok, _ = model.next_token(u).argmax()
        if tok == EOS:
            return Fraction(int(u.count("a") == u.count("b")))
        u += tok
    return Fraction(0)


def witness(q1, q2, **kw):
    args = dict(name="toy", claim="toy", data=P, q1=q1, q2=q2, prop=ends_balanced, property_name="balanced")
    args.update(kw)
    return Witness(**args)


Q1 = SupportExtension(P, FunctionModel(AB, completer))
Q2 = SupportExtension(P, FunctionModel(AB, violator))


def test_good_witness_verified():
    cert = check_witness(witness(Q1, Q2))
    assert cert.status is Status.VERIFIED, cert.reason
    assert cert.quantities["kl_q1"]["exact"] == "0"


def test_leak_onto_support_is_falsified_naming_prefix():
    leaky = PatchedModel(Q2, {"aa": {"a": Fraction(1, 2), "b": Fraction(1, 2)}})
    cert = check_witness(witness(Q1, leaky))
    assert cert.status is Status.FALSIFIED
    assert "KL(P || Q2)" in cert.reason and "'aa'" in cert.reason


def test_no_gap_is_falsified_and_bracket_is_unknown():
    assert check_witness(witness(Q1, Q1)).status is Status.FALSIFIED
    bracket = witness(Q1, Q2, prop=lambda m: FractionInterval(0, 1))
    cert = check_witness(bracket)
    assert cert.status is Status.UNKNOWN and "not certified" in cert.reason


def test_epsilon_comparisons():
    assert kl_within(LogCombination.zero(), Fraction(0))
    assert kl_within(LogCombination.log(Fraction(3, 2)), Fraction(1, 2)) is True  # ln 1.5 = 0.405
    assert kl_within(LogCombination.log(Fraction(3, 2)), Fraction(2, 5)) is False
    with pytest.raises(InvalidWitness, match="delta 0 must be positive"):
        witness(Q1, Q2, delta=0)
