"""`nonid counterexample` and `nonid check`: the directory round-trips, tampering is refused with one
line and exit 2, a failed re-check exits 1, and the weights load in plain PyTorch from the model card."""

import json
import re
import shutil
import subprocess
import sys

import pytest
import torch

from constructions.transformer import DecoderTransformer
from nonid.cli import main
from tests.oracles import rehash


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("cx") / "anbn"
    assert main(["counterexample", "anbn", "--out", str(out), "--n-max", "3"]) == 0
    return out


@pytest.fixture
def cx(built, tmp_path):
    d = tmp_path / "copy"
    shutil.copytree(built, d)
    return d




def one_line_error(capsys, rc: int, fragment: str) -> None:
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("nonid: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert fragment in err, err


def test_counterexample_writes_every_file_and_check_verifies_it(built, capsys):
    assert sorted(p.name for p in built.iterdir()) == ["README.md", "certificate.json", "config.json",
                                                      "q1.safetensors", "q2.safetensors"]
    cert = json.loads((built / "certificate.json").read_text())
    assert cert["status"] == "verified" and cert["method"] == "exhaustive"
    assert set(cert["quantities"]["files_sha256"]) == {"README.md", "config.json", "q1.safetensors", "q2.safetensors"}
    assert cert["quantities"]["q1"]["ood_r1"]["exact"] == "1" and cert["quantities"]["q2"]["ood_r1"]["exact"] == "0"
    capsys.readouterr()
    assert main(["check", str(built)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"verified: {built} (hashes match;") and "OOD R1 1.000 vs 0.000" in out
    assert not list(built.parent.glob(".*"))  # no temporary directory left behind


def test_an_edited_byte_is_refused_by_its_hash(cx, capsys):
    data = bytearray((cx / "q1.safetensors").read_bytes())
    data[-5] ^= 1
    (cx / "q1.safetensors").write_bytes(bytes(data))
    one_line_error(capsys, main(["check", str(cx)]), "q1.safetensors: SHA-256 does not match the certificate")


def test_a_truncated_file_is_refused_even_when_re_signed(cx, capsys):
    path = cx / "q2.safetensors"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    one_line_error(capsys, main(["check", str(cx)]), "SHA-256 does not match")
    rehash(cx)
    one_line_error(capsys, main(["check", str(cx)]), "q2.safetensors: not a readable safetensors file")


def test_a_config_that_disagrees_with_the_weights_is_refused_even_when_re_signed(cx, capsys):
    config = json.loads((cx / "config.json").read_text())
    config["models"]["q1"]["transformer"]["d_mlp"] += 1
    (cx / "config.json").write_text(json.dumps(config))
    rehash(cx)
    one_line_error(capsys, main(["check", str(cx)]), "config.json disagrees with the weights' own config on d_mlp")


def test_weights_of_the_other_construction_fail_the_re_check(cx, capsys):
    a, b = cx / "q1.safetensors", cx / "q2.safetensors"
    tmp = cx / "swap"
    a.rename(tmp), b.rename(a), tmp.rename(b)
    rehash(cx)
    assert main(["check", str(cx)]) == 1
    out = capsys.readouterr().out
    assert out.startswith("falsified:") and "Q1: max TV" in out


def test_the_model_card_loader_runs_in_plain_torch_and_gives_the_same_distributions(built, tmp_path):
    card = (built / "README.md").read_text()
    code = re.search(r"```python\n(.*?)```", card, re.S).group(1)
    assert not re.search(r"\b(nonid|constructions|theory)\b", code)
    words = ["", "aabb", "abababab", "bbbbbbbb"]
    script = code + f"\nimport json\nprint(json.dumps(logits(config, W, {words!r}).log_softmax(-1).tolist()))\n"
    run = subprocess.run([sys.executable, "-I", "-c", script], cwd=built, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    plain = torch.tensor(json.loads(run.stdout.strip().splitlines()[-1]), dtype=torch.float64)
    net = DecoderTransformer.load(built / "q1.safetensors")
    ref = net.log_probs(net.encode(words)).detach()
    for i, w in enumerate(words):
        assert torch.allclose(plain[i, : len(w) + 1], ref[i, : len(w) + 1], atol=1e-12)


@pytest.mark.parametrize("argv, fragment", [
    (["counterexample", "L9", "--out", "{d}"], "unknown rule-extrapolation case 'L9'"),
    (["counterexample", "anbn", "--out", "{d}", "--method", "magic"], "--method 'magic' is not one of 'compile', 'compact', 'distill'"),
    (["counterexample", "anbn", "--out", "{d}", "--device", "tpu"], "--device 'tpu'"),
    (["counterexample", "anbn", "--out", "{d}", "--zero-logit", "0"], "--zero-logit 0.0 must be a finite number in [1, 700]"),
    (["counterexample", "anbn", "--out", "{d}", "--margin", "nan"], "--margin nan must be a finite number"),
    (["counterexample", "L1", "--out", "{d}", "--n-max", "4"], "--n-max does not apply to case L1"),
    (["counterexample", "anbn", "--out", "{d}", "--n-max", "0"], "--n-max 0 must be an int in 1..4096"),
    (["counterexample", "anbn"], "--out"),
    (["check", "{d}/nowhere"], "no such directory"),
    (["counterexample", "anbm", "--out", "{d}"], "(did you mean 'anbn'?)"),
    (["counterexample", "anbn", "--out", "{d}", "--max-steps", "5"], "--max-steps applies to --method distill only"),
    (["counterexample", "anbn", "--out", "{d}", "--checkpoint-dir", "{d}/ck"], "--checkpoint-dir applies to --method distill"),
    (["counterexample", "anbn", "--out", "{d}", "--method", "distill", "--margin", "2"], "--margin applies to --method compile"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, argv, fragment):
    rc = main([a.format(d=tmp_path / "out") for a in argv])
    one_line_error(capsys, rc, fragment)
    assert not (tmp_path / "out").exists() or argv[0] == "check"


def test_a_non_empty_output_directory_is_refused(built, capsys):
    one_line_error(capsys, main(["counterexample", "anbn", "--out", str(built), "--n-max", "2"]), "not empty")


@pytest.mark.parametrize("norm", ["pre", "post", "none"])
def test_the_loader_matches_the_project_transformer_in_every_norm_placement(tmp_path, norm):
    from constructions.model_card import LOADER
    from constructions.transformer import TransformerConfig

    net = DecoderTransformer(TransformerConfig(alphabet="abc", d_model=8, n_heads=2, d_head=4, d_mlp=8, max_len=8,
                                               norm=norm, seed=5))
    net.save(tmp_path / "m.safetensors")
    ns: dict = {}
    exec(LOADER, ns)
    config, W = ns["load"](str(tmp_path / "m.safetensors"))
    words = ["", "abc", "cabba"]
    got = ns["logits"](config, W, words)
    want = net(net.encode(words)).detach()
    assert torch.allclose(got, want, atol=1e-12)


def test_force_replaces_a_directory_atomically(built, tmp_path, capsys):
    d = tmp_path / "again"
    shutil.copytree(built, d)
    assert main(["counterexample", "anbn", "--out", str(d), "--n-max", "2", "--force"]) == 0
    assert json.loads((d / "config.json").read_text())["case_options"] == {"n_max": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["again"]  # no temporary or old directory left
    assert main(["check", str(d)]) == 0


@pytest.mark.parametrize("stray", ["stray.txt", "runs/seed3/notes.txt", "q1.safetensors.bak", "empty-folder/"])
def test_force_never_deletes_a_file_the_counterexample_did_not_write(built, tmp_path, capsys, stray):
    d = tmp_path / "again"
    shutil.copytree(built, d)
    path = d / stray
    if stray.endswith("/"):
        path.mkdir()
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("mine")
    before = {str(p.relative_to(d)) for p in d.rglob("*")}
    for force in ([], ["--force"]):
        capsys.readouterr()
        one_line_error(capsys, main(["counterexample", "anbn", "--out", str(d), "--n-max", "2"] + force),
                       f"holds {stray}, which `nonid counterexample` did not write; --force will not delete it")
        assert {str(p.relative_to(d)) for p in d.rglob("*")} == before and "case_options" in (d / "config.json").read_text()


def test_force_never_deletes_a_folder_that_is_not_a_counterexample(tmp_path, capsys):
    d = tmp_path / "mine"
    d.mkdir()
    (d / "config.json").write_text(json.dumps({"format": "my-own-config"}))
    one_line_error(capsys, main(["counterexample", "anbn", "--out", str(d), "--n-max", "2", "--force"]),
                   "is not an earlier output of `nonid counterexample`")
    (d / "config.json").write_text('{"format": ' + "1" * 5000 + "}")  # unreadable as bounded JSON: not ours either
    one_line_error(capsys, main(["counterexample", "anbn", "--out", str(d), "--n-max", "2", "--force"]),
                   "--force will not delete it")
    assert sorted(p.name for p in d.iterdir()) == ["config.json"]


def test_files_sha256_names_only_the_hashed_files(built):
    from constructions.artifact_files import HASHED_FILES, check_files_sha256
    from theory.errors import InvalidArtifact

    files = json.loads((built / "certificate.json").read_text())["quantities"]["files_sha256"]
    assert check_files_sha256(files, built) == files and set(files) == HASHED_FILES
    digest = files["README.md"]
    for bad, fragment in (({**files, "../../etc/passwd": digest}, "names '../../etc/passwd', which is not one of"),
                          ({**files, "certificate.json": digest}, "names 'certificate.json'"),
                          ({**files, "README.md": digest.upper()}, "is not a SHA-256 digest"),
                          ({**files, "README.md": digest[:-1]}, "is not a SHA-256 digest"),
                          ({**files, "README.md": 7}, "files_sha256['README.md'] = 7"),
                          ({k: v for k, v in files.items() if k != "q2.safetensors"}, "does not list the SHA-256 of q2.safetensors"),
                          ([digest], "is not a mapping")):
        with pytest.raises(InvalidArtifact, match="certificate.json: files_sha256") as e:
            check_files_sha256(bad, built)
        assert fragment in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("edit, fragment", [
    (lambda t: t.replace('"prefixes": ', '"prefixes": ' + "9" * 10_000 + ", \"old_prefixes\": ", 1),
     "config.json: an integer of 10,000 digits (limit 1,000)"),
    (lambda t: t.replace('"case":', '"deep": ' + "[" * 100_000 + "]" * 100_000 + ', "case":', 1), "config.json: nested deeper than 64"),
    (lambda t: t.replace('"format":', '"format": "x", "format":', 1), "config.json: the key 'format' appears twice"),
    (lambda t: t + " " * (1 << 20), "config.json: 1,04"),  # over the 1 MiB cap of a config
])
def test_unbounded_json_in_a_counterexample_is_refused_even_when_re_signed(cx, capsys, edit, fragment):
    path = cx / "config.json"
    path.write_text(edit(path.read_text()))
    rehash(cx)
    one_line_error(capsys, main(["check", str(cx)]), fragment)


def test_a_distillation_stopped_by_its_step_cap_is_an_honest_unknown(tmp_path, capsys):
    out = tmp_path / "d"
    rc = main(["counterexample", "anbn", "--n-max", "2", "--method", "distill", "--device", "cpu", "--max-steps", "2",
               "--out", str(out), "--checkpoint-dir", str(tmp_path / "ck")])
    assert rc == 1
    cert = json.loads((out / "certificate.json").read_text())
    assert cert["status"] == "unknown" and "step cap" in cert["reason"]
    assert (tmp_path / "ck" / "q1.distill.pt").exists()
    capsys.readouterr()
    assert main(["check", str(out)]) == 1  # the re-check cannot verify it either
    one_line_error(capsys, main(["counterexample", "anbn", "--method", "distill", "--max-steps", "0", "--out",
                                 str(tmp_path / "e")]), "--max-steps 0 must be an int >= 1")


def test_check_json_prints_exactly_one_json_document_and_human_lines_on_stderr(built, capsys):
    capsys.readouterr()
    assert main(["check", "--json", str(built)]) == 0
    captured = capsys.readouterr()
    doc = json.loads(captured.out)  # the whole of stdout, nothing after it
    assert doc["status"] == "verified" and captured.err.startswith(f"verified: {built}")


def test_check_points_from_an_appendix_folder_to_its_pair(built, tmp_path, capsys):
    appendix = tmp_path / "appendix"
    appendix.mkdir()
    shutil.copytree(built, appendix / "counterexample-anbn")
    one_line_error(capsys, main(["check", str(appendix)]),
                   f"no certificate.json here, but a counterexample folder inside it: try `nonid check {appendix / 'counterexample-anbn'}`")


def test_counterexample_prints_its_size_estimate_before_building(tmp_path, capsys):
    assert main(["counterexample", "anbn", "--n-max", "2", "--out", str(tmp_path / "p")]) == 0
    lines = capsys.readouterr().out.splitlines()
    est = next(i for i, line in enumerate(lines) if line.startswith("estimate: 2 models x "))
    first_compile = next(i for i, line in enumerate(lines) if line.startswith("compiled "))
    assert est < first_compile and "MB on disk" in lines[est] and "prefixes to check" in lines[est]
    params = int(lines[est].split(" x ")[1].split(" parameters")[0].replace(",", ""))
    assert f"{params:,} params" in lines[first_compile]  # the estimate is the model that is built
