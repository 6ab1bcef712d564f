"""docs/theory.md: its seven numbered sections, the check names and module paths it cites, and every
"docs/theory.md §N" citation in the sources and the README.

Fast: the document and the sources are read as text; the only import is ``proofs`` (inside the one
test that needs the check registry), whose check modules import their heavy libraries lazily.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "theory.md"

# The section numbering of the team's contract, which docstrings cite ("§4"); titles as in docs/theory.md.
SECTIONS = {
    1: "Objects",
    2: "The chain rule",
    3: "Non-identifiability",
    4: "The three case studies (Prop. 1, 2, 3)",
    5: "Two-sided identifiability",
    6: "Machine-checked core",
    7: "Beyond the papers",
}

# Where "docs/theory.md §N" citations may live.
SOURCE_DIRS = ("theory", "constructions", "empirical", "proofs", "nonid")
CITING_FILES = ("README.md",)

# "docs/theory.md §4", "docs/theory.md §1–§2", "docs/theory.md (§3–4)", "docs/theory.md §2, §5", "docs/theory.md §4.2".
_REF = r"\d+(?:\.\d+)?"
CITATION = re.compile(rf"docs/theory\.md\W{{0,3}}§\s*({_REF}(?:\s*(?:[–—-]|,|and)\s*§?\s*{_REF})*)")
CHECK_LIKE = re.compile(r"^[a-z][a-z0-9]*(?:-[A-Za-z0-9]+)+$")
MODULE_PATH = re.compile(r"^(?:theory|constructions|empirical|proofs|nonid)(?:\.[A-Za-z_][A-Za-z0-9_]*)+$")


def _text() -> str:
    assert DOC.is_file(), f"{DOC} is missing"
    return DOC.read_text(encoding="utf-8")


def _prose(text: str) -> str:
    """The document without fenced code blocks (a ``## `` inside one is not a heading)."""
    return re.sub(r"^```.*?^```[^\n]*$", "", text, flags=re.M | re.S)


def _sections(text: str) -> tuple[list[tuple[int, str]], dict[int, list[int]]]:
    """The numbered ``## N. Title`` headings in order, and each section's ``### N.M`` subsection numbers."""
    top: list[tuple[int, str]] = []
    subs: dict[int, list[int]] = {}
    for line in _prose(text).splitlines():
        if m := re.match(r"^## (\d+)\. (.+?)\s*$", line):
            top.append((int(m.group(1)), m.group(2)))
            subs.setdefault(int(m.group(1)), [])
        elif m := re.match(r"^### (\d+)\.(\d+) \S", line):
            assert top and int(m.group(1)) == top[-1][0], f"subsection {m.group(1)}.{m.group(2)} outside section {m.group(1)}"
            subs[int(m.group(1))].append(int(m.group(2)))
    return top, subs


def _backticked(text: str) -> list[str]:
    return re.findall(r"`([^`\n]+)`", _prose(text))


# ---- (1) the seven sections ---------------------------------------------------------------------------
def test_theory_md_has_exactly_the_seven_numbered_sections():
    text = _text()
    top, subs = _sections(text)
    assert top == list(SECTIONS.items())
    level2 = re.findall(r"^## .*$", _prose(text), flags=re.M)
    assert len(level2) == len(SECTIONS), f"unnumbered level-2 headings: {level2}"
    for n, numbers in subs.items():
        assert numbers == list(range(1, len(numbers) + 1)), f"§{n}'s subsections are numbered {numbers}"


def test_every_section_says_where_it_lives_in_the_code():
    """Each section ends with an "In the code" line (naming what implements it, or saying it is not)."""
    text = _prose(_text())
    parts = re.split(r"^## \d+\. .*$", text, flags=re.M)[1:]
    assert len(parts) == len(SECTIONS)
    for n, part in zip(SECTIONS, parts):
        assert "*In the code:*" in part, f"§{n} has no 'In the code' line"


def test_theory_md_cites_only_its_own_existing_sections():
    text = _text()
    refs = [(text.count("\n", 0, m.start()) + 1, m.group(1)) for m in re.finditer(rf"§\s*({_REF})", text)]
    assert refs, "docs/theory.md cites none of its own sections: has the extraction broken?"
    bad = _bad_citations([("docs/theory.md", line, ref) for line, ref in refs], text)
    assert not bad, "\n".join(bad)


# ---- (2) check names ----------------------------------------------------------------------------------
def test_every_check_name_in_theory_md_is_registered():
    from proofs import discover

    names = {c.name for c in discover()}
    families = {n.split("-")[0] for n in names}  # chain, lemma, closed, z3, prop, compiled
    cited = sorted({s for s in _backticked(_text()) if CHECK_LIKE.match(s) and s.split("-")[0] in families})
    assert len(cited) >= 10, f"only {cited} look like check names: has the extraction broken?"
    unknown = [s for s in cited if s not in names]
    assert not unknown, f"docs/theory.md names checks that `nonid prove --list` does not have: {unknown}"


# ---- module paths -------------------------------------------------------------------------------------
def _defines(source: str, name: str) -> bool:
    pattern = (rf"^\s*(?:async\s+)?(?:def|class)\s+{re.escape(name)}\b"
               rf"|^\s*{re.escape(name)}\s*[:=]"
               rf"|\bimport\b[^\n]*\b{re.escape(name)}\b"
               rf"|^\s*[\"']{re.escape(name)}[\"'],?")
    return re.search(pattern, source, flags=re.M) is not None or f'"{name}"' in source


def _resolves(dotted: str) -> bool:
    """Whether ``dotted`` (``theory.losses.per_token``, ``constructions.icl``…) names a module of this
    repository, optionally followed by a name that module (or package) defines or re-exports."""
    parts = dotted.split(".")
    path = ROOT / parts[0]
    if not (path / "__init__.py").is_file():
        return False
    rest = parts[1:]
    while rest and ((path / rest[0] / "__init__.py").is_file() or (path / f"{rest[0]}.py").is_file()):
        if (path / rest[0] / "__init__.py").is_file():
            path = path / rest[0]
        else:
            path = path / f"{rest[0]}.py"
            rest = rest[1:]
            break
        rest = rest[1:]
    if not rest:
        return True
    source = (path / "__init__.py" if path.is_dir() else path).read_text(encoding="utf-8")
    return all(_defines(source, name) for name in rest)


def test_every_module_path_in_theory_md_exists():
    cited = sorted({s for s in _backticked(_text()) if MODULE_PATH.match(s)})
    assert len(cited) >= 10, f"only {cited} look like module paths: has the extraction broken?"
    missing = [s for s in cited if not _resolves(s)]
    assert not missing, f"docs/theory.md names modules or attributes that do not exist: {missing}"


def _defined_names() -> set[str]:
    """Every module, package, function, class, and top-level or class-level name assigned (dataclass
    fields included) in the source packages."""
    names: set[str] = set()
    for d in SOURCE_DIRS:
        for path in (ROOT / d).rglob("*.py"):
            names.update(p for p in path.relative_to(ROOT).with_suffix("").parts if p != "__init__")
            for m in re.finditer(r"^\s*(?:async\s+)?(?:def|class)\s+(\w+)|^\s*(\w+)\s*[:=]",
                                 path.read_text(encoding="utf-8"), flags=re.M):
                names.add(m.group(1) or m.group(2))
    for path in (ROOT / "proofs" / "coq").rglob("*.v"):  # the Coq development's theorems and definitions
        names.update(re.findall(r"(?m)^\s*(?:Theorem|Lemma|Corollary|Definition|Fixpoint)\s+([A-Za-z_]\w*)",
                                path.read_text(encoding="utf-8")))
    return names


def test_every_name_on_an_in_the_code_line_is_defined():
    """The code names of the "In the code" lines (``entropy``, ``config.GINCConfig``, ``GINCConfig.xie``…)
    are defined somewhere in the source packages; full module paths are checked above."""
    defined = _defined_names()
    lines = re.findall(r"^\*In the code:\*.*?(?=^\s*$|\Z)", _prose(_text()), flags=re.M | re.S)
    assert len(lines) >= len(SECTIONS)
    spans = {s for line in lines for s in re.findall(r"`([^`\n]+)`", line)
             if re.fullmatch(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*", s) and not MODULE_PATH.match(s)}
    assert len(spans) >= 10, f"only {sorted(spans)}: has the extraction broken?"
    missing = sorted(s for s in spans if not all(part in defined for part in s.split(".")))
    assert not missing, f"docs/theory.md's In-the-code lines name things the code does not define: {missing}"


def test_the_resolvers_refuse_what_does_not_exist():
    assert _resolves("theory.losses.per_token") and _resolves("constructions.icl.models.SurgeryModel")
    assert not _resolves("theory.losses.no_such_function") and not _resolves("theory.no_such_module")
    assert "no_such_name_anywhere" not in _defined_names()


# ---- (3) citations of docs/theory.md elsewhere --------------------------------------------------------
def _citing_files() -> list[Path]:
    files = [ROOT / name for name in CITING_FILES if (ROOT / name).is_file()]
    for d in SOURCE_DIRS:
        files.extend(sorted((ROOT / d).rglob("*.py")))
    return files


def _refs(text: str) -> list[tuple[int, str]]:
    """(line number, cited section) for every "docs/theory.md §…" in ``text``."""
    out: list[tuple[int, str]] = []
    for m in CITATION.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        out.extend((line, ref) for ref in re.findall(_REF, m.group(1)))
    return out


def _bad_citations(citations: list[tuple[str, int, str]], text: str) -> list[str]:
    top, subs = _sections(text)
    bad: list[str] = []
    for where, line, ref in citations:
        section, _, sub = ref.partition(".")
        if int(section) not in dict(top) or (sub and int(sub) not in subs[int(section)]):
            bad.append(f"{where}:{line} cites docs/theory.md §{ref}, which does not exist")
    return bad


def test_citation_pattern_reads_the_forms_in_use():
    def refs(s: str) -> list[str]:
        return [r for _, r in _refs(s)]

    assert refs("by the chain rule (docs/theory.md §2), KL") == ["2"]
    assert refs("Closed forms (docs/theory.md §1–§2), derived") == ["1", "2"]
    assert refs("Properties (docs/theory.md §3–4), computed") == ["3", "4"]
    assert refs("see docs/theory.md, §4.2 and §5") == ["4.2", "5"]
    assert refs("THEORY.md §4") == []
    assert _bad_citations([("x.py", 1, "8"), ("x.py", 2, "4.9"), ("x.py", 3, "4.2")], _text()) == [
        "x.py:1 cites docs/theory.md §8, which does not exist",
        "x.py:2 cites docs/theory.md §4.9, which does not exist"]


def test_every_citation_of_theory_md_points_to_an_existing_section():
    """Passes vacuously while no file cites docs/theory.md yet; checks each citation once they do."""
    citations = [(str(path.relative_to(ROOT)), line, ref)
                 for path in _citing_files() for line, ref in _refs(path.read_text(encoding="utf-8"))]
    bad = _bad_citations(citations, _text())
    assert not bad, "\n".join(bad)
