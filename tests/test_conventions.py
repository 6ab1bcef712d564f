"""The conventions every command and script follows, checked over all of them rather than case by case:
README examples write into the git-ignored scratch folder; help texts speak of the project, never of
its issue tracker; every flag an error text or a help text names exists; benchmarks rewrite tracked
files only with --write."""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _parsers() -> dict[str, argparse.ArgumentParser]:
    """``nonid``'s parser and each subcommand's, by name."""
    from nonid.cli import _build_parser

    top = _build_parser()
    out = {"nonid": top}
    for action in top._actions:  # argparse keeps no public list of subparsers
        if isinstance(action, argparse._SubParsersAction):
            out.update(action.choices)
    return out


def _flags() -> set[str]:
    flags = {o for p in _parsers().values() for a in p._actions for o in a.option_strings}
    from proofs.cli import _Parser, add_arguments

    flags |= {o for a in add_arguments(_Parser(prog="x"))._actions for o in a.option_strings}
    return flags


def test_readme_examples_write_into_the_ignored_scratch_folder():
    """Every --out / --checkpoint-dir of a README command line names a folder under scratch/ (or a
    placeholder such as DIR), and .gitignore covers scratch/: running the README leaves the checkout clean."""
    ignored = (ROOT / ".gitignore").read_text().split()
    assert "/scratch/" in ignored
    commands = [line for line in README.splitlines() if re.search(r"(^|\$ |`)(\.venv/bin/)?nonid |python -m benchmarks", line)]
    assert commands, "no command line found in README"
    for line in commands:
        for flag, target in re.findall(r"(--out|--checkpoint-dir)[ =]([^\s`)]+)", line):
            if target.isupper() or target.startswith(("DIR", "<", "RUNS")):
                continue  # a placeholder in a synopsis
            assert target.startswith("scratch/"), f"README writes outside scratch/: {line.strip()!r}"


def _help_texts() -> dict[str, str]:
    texts = {}
    for name, parser in _parsers().items():
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            parser.print_help()
        texts[name] = buf.getvalue()
    return texts


def test_no_help_text_speaks_of_issues():
    """Help texts speak of the project only (no "issue 12", no tracker words)."""
    for name, text in _help_texts().items():
        assert not re.search(r"\bissues? ?#?\d+", text, re.I), f"{name} --help mentions an issue: {text!r}"


@pytest.mark.parametrize("script", sorted(p.stem for p in (ROOT / "benchmarks").glob("bench_*.py")))
def test_benchmark_help_is_about_the_project_and_changes_nothing(script):
    r = subprocess.run([sys.executable, "-m", f"benchmarks.{script}", "--help"], cwd=ROOT, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0 and "usage:" in r.stdout, (script, r.stderr[-500:])
    assert not re.search(r"\bissues? ?#?\d+", r.stdout, re.I), f"{script} --help mentions an issue"


def test_the_benchmark_runner_takes_options_and_lists_without_running():
    r = subprocess.run([sys.executable, "-m", "benchmarks", "--list"], cwd=ROOT, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0 and "benchmarks.bench_core" in r.stdout.split()
    r = subprocess.run([sys.executable, "-m", "benchmarks", "--only", "bench_nothing"], cwd=ROOT, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 2 and "no such script" in r.stderr


def test_every_flag_named_in_a_message_or_help_exists():
    """Each --flag written in the command-line modules' strings (error texts, help, hints) is a flag of
    some parser: no message points to an option that does not exist."""
    flags = _flags() | {"--help"}
    sources = [*sorted((ROOT / "nonid").rglob("*.py")), ROOT / "proofs" / "cli.py", ROOT / "theory" / "fileio.py",
               ROOT / "empirical" / "names.py", ROOT / "empirical" / "experiment.py", ROOT / "constructions" / "export.py"]
    named: dict[str, str] = {}
    for path in sources:
        for literal in re.findall(r"\"(?:[^\"\\\n]|\\.)*\"|'(?:[^'\\\n]|\\.)*'", path.read_text(encoding="utf-8")):
            for flag in re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", literal):
                named.setdefault(flag, str(path.relative_to(ROOT)))
    missing = {f: where for f, where in named.items() if f not in flags}
    assert not missing, f"messages name flags that no parser has: {missing}"


def test_an_out_inside_the_tracked_benchmark_folder_needs_write(tmp_path):
    from benchmarks.report import SCRATCH, TRACKED_OUT, output_folder

    assert output_folder(None, write=False) == SCRATCH and output_folder(None, write=True) == TRACKED_OUT
    assert output_folder(tmp_path, write=False) == tmp_path
    for inside in (TRACKED_OUT, TRACKED_OUT / "sub"):
        with pytest.raises(SystemExit) as e:
            output_folder(inside, write=False)
        assert e.value.code == 2
    assert output_folder(TRACKED_OUT, write=True) == TRACKED_OUT
