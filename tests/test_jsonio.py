"""theory.jsonio: every JSON the tool reads is bounded — size, depth, number length, string and key
length, no NaN, no repeated key, UTF-8 only — and each refusal is one typed line naming the file and
the limit or value.  The project's readers (certificates, appendix, experiment rows) go through it."""

from __future__ import annotations

import json
import os

import pytest

from theory.certificate import Certificate
from theory.errors import InvalidArtifact, InvalidCertificate
from theory.jsonio import CERTIFICATE_LIMITS, InvalidJsonLimits, JsonLimits, json_depth, parse_json_text, read_json_file

GOOD = {"format": 1, "check": "c", "claim": "a claim", "status": "verified", "method": "exact",
        "quantities": {"n": 12, "kl": {"exact": "1/3", "approx": 0.333}, "rows": [[1, "ab"], [2, "ba"]]}}


def refused(text, fragment, **kw) -> str:
    with pytest.raises(InvalidArtifact) as e:
        parse_json_text(text, what="cx/config.json", **kw)
    msg = str(e.value)
    assert msg.startswith("cx/config.json: ") and "\n" not in msg and fragment in msg, msg
    return msg


def test_ordinary_json_comes_back_unchanged():
    text = json.dumps(GOOD, indent=2)
    assert parse_json_text(text, what="x") == GOOD
    assert parse_json_text(text.encode(), what="x") == GOOD
    assert parse_json_text('"é ☃ \\u00e9"', what="x") == "é ☃ é"
    assert parse_json_text("[" * 64 + "]" * 64, what="x") == json.loads("[" * 64 + "]" * 64)  # exactly at the limit


@pytest.mark.parametrize("text, fragment", [
    ("[" * 100_000 + "]" * 100_000, "nested deeper than 64 levels"),
    ('{"a": ' * 65 + "1" + "}" * 65, "nested deeper than 64"),
    ("[" * 65 + "]" * 65, "limit 64"),
    ('{"n": ' + "9" * 10_000 + "}", "an integer of 10,000 digits (limit 1,000)"),
    ('{"n": -' + "9" * 5_000 + "}", "an integer of 5,000 digits"),
    ('{"x": 0.' + "1" * 2_000 + "}", "a number literal of 2,002 characters"),
    ('{"x": 1e999}', "1e999 overflows to inf"),
    ('{"x": NaN}', "NaN is not a JSON value"),
    ('[-Infinity]', "-Infinity is not a JSON value"),
    ('{"status": "falsified", "status": "verified"}', "the key 'status' appears twice"),
    ('{"' + "k" * 1025 + '": 1}', "a key of 1,025 characters (limit 1,024)"),
    ('["' + "s" * (CERTIFICATE_LIMITS.max_string + 1) + '"]', "a string of 1,048,577 characters"),
    ('{"a": "' + "s" * (CERTIFICATE_LIMITS.max_string + 1) + '"}', "a string of"),
    ('"\\ud800"', "lone surrogate U+D800"),
    ('{"\\udfff": 1}', "a key holding the lone surrogate"),
    (b'{"a": "\xff"}', "not UTF-8 (byte 0xff at offset 7)"),
    ('{"a": 1,}', "not JSON (Expecting property name"),
    ("", "not JSON"),
])
def test_each_unbounded_or_ambiguous_input_is_refused_in_one_line(text, fragment):
    refused(text, fragment)


def test_the_depth_pre_scan_ignores_brackets_inside_strings():
    assert json_depth(b'["]]]", "\\"[[[", [[]]]') == 3
    assert json_depth(b'{"a": [1, {"b": []}]}') == 4
    assert json_depth(b"5") == 0
    assert json_depth(b"[" * 200_000) == 200_000  # the vectorised path of a large input
    assert parse_json_text('["' + "[" * 1000 + '"]', what="x") == ["[" * 1000]


def test_limits_are_validated_and_can_be_tightened():
    with pytest.raises(InvalidJsonLimits, match="max_depth = 0"):
        JsonLimits(max_depth=0)
    with pytest.raises(InvalidJsonLimits, match="max_number_digits = 5000"):
        JsonLimits(max_number_digits=5000)  # above Python's own 4,300-digit limit: the typed refusal must come first
    tight = JsonLimits(max_bytes=10)
    refused("[1, 2, 3, 4, 5]", "15 bytes, over the limit of 10 bytes", limits=tight)
    assert parse_json_text("[NaN, Infinity]", what="x", limits=JsonLimits(allow_nonfinite=True))[1] == float("inf")


def test_the_caller_chooses_the_error_class():
    with pytest.raises(InvalidCertificate, match="^certificate: NaN is not a JSON value$"):
        parse_json_text("[NaN]", what="certificate", error=InvalidCertificate)


def test_a_file_is_sized_before_it_is_read(tmp_path, monkeypatch):
    p = tmp_path / "certificate.json"
    p.write_text(json.dumps(GOOD))
    assert read_json_file(p) == GOOD
    with open(p, "r+b") as f:  # sparse: 16 MiB + 1 byte on paper, nothing on disk
        f.truncate(CERTIFICATE_LIMITS.max_bytes + 1)
    opened = []
    monkeypatch.setattr("builtins.open", lambda *a, **k: opened.append(a) or (_ for _ in ()).throw(AssertionError))
    with pytest.raises(InvalidArtifact, match=r"certificate.json: 16,777,217 bytes, over the limit of 16 MiB$"):
        read_json_file(p)
    assert opened == []


def test_missing_special_and_unreadable_files_are_refused(tmp_path):
    with pytest.raises(InvalidArtifact, match="nowhere.json: missing$"):
        read_json_file(tmp_path / "nowhere.json")
    with pytest.raises(InvalidArtifact, match="not a regular file"):
        read_json_file(tmp_path)
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    with pytest.raises(InvalidArtifact, match="pipe.json: not a regular file"):  # opening it would block forever
        read_json_file(fifo)
    with pytest.raises(InvalidArtifact, match="^run 3: missing$"):
        read_json_file(tmp_path / "x.json", what="run 3")


def test_certificate_from_json_is_bounded():
    text = Certificate.from_dict(GOOD).to_json()
    assert Certificate.from_json(text) == Certificate.from_dict(GOOD)
    deep = text.replace('"quantities": {', '"quantities": {"deep": ' + "[" * 50_000 + "]" * 50_000 + ", ", 1)
    for bad, fragment in ((deep, "nested deeper than 64"), (text.replace('"n": 12', '"n": NaN'), "NaN"),
                          (text.replace('"n": 12', '"n": 12, "n": 13'), "'n' appears twice"), ("{", "not JSON")):
        with pytest.raises(InvalidCertificate, match=fragment):
            Certificate.from_json(bad)
    with pytest.raises(InvalidCertificate, match="not JSON text"):
        Certificate.from_json(None)  # type: ignore[arg-type]


def test_experiment_rows_are_bounded_but_keep_a_diverged_loss(tmp_path):
    from empirical.certificate import load_rows
    from empirical.errors import InvalidExperimentConfig

    run = tmp_path / "L3-lstm-ml-s0"
    run.mkdir()
    row = {"name": "L3-lstm-ml-s0", "finished": True, "language": "L3", "arch": "lstm", "regime": "ml", "seed": 0,
           "size": "cpu", "steps": 20, "aux_lengths": None, "steps_done": 20, "wall_s": 0.1, "best_step": 20,
           "params": 1287, "test_exact": True, "data": "L3", "step": 20, "test_loss_padded": float("nan"),
           "test_loss_token": 0.9, "id_r1": 0.0, "id_r2": 0.2, "ood_r1": 0.0, "ood_r2c": 1.0,
           "min_test_loss_padded": 0.49, "min_test_loss_token": 0.9, "max_id_r1": 0.0, "max_id_r2": 0.2,
           "max_ood_r1": 0.0, "max_ood_r2c": 1.0, "gap_lo": 13.5, "gap_hi": float("inf"), "gap_padded_lo": 0.41,
           "gap_padded_hi": float("inf"), "gap_token_lo": 0.75, "gap_token_hi": float("inf"), "floor_padded": 0.084,
           "floor_token": 0.154, "entropy": 2.77, "gap_prefixes": 153, "gap_method": "rigorous", "gap_rigorous": True}
    (run / "result.json").write_text(json.dumps({"row": row, "history": []}))  # the writer's own NaN/Infinity
    assert load_rows(tmp_path)[0]["gap_hi"] == float("inf")
    (run / "result.json").write_text('{"row": {"seed": ' + "1" * 5000 + "}}")
    with pytest.raises(InvalidExperimentConfig, match="result.json: an integer of 5,000 digits"):
        load_rows(tmp_path)
