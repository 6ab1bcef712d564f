"""Checking that ``appendix.tex`` compiles: with a real LaTeX engine when one is installed
(:func:`compile_pdf`), else with a LaTeX-aware checker of our own (:func:`check_latex`).

The checker tokenises the source the way TeX does for the constructs the appendix uses and reports,
with line numbers: unbalanced braces; ``\\begin``/``\\end`` that do not pair; unbalanced inline math;
the special characters ``& # _ ^`` where TeX would reject them (``_``/``^`` outside math, ``&`` outside
a tabular, ``#`` anywhere (the appendix defines no macro with parameters)); a tabular row with more cells than its column spec;
control sequences outside a known list (what an engine reports as *Undefined control sequence*);
non-ASCII characters.  It is stricter than LaTeX, never looser, for the appendix's constructs.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

KNOWN_COMMANDS = frozenset("""
section subsection subsubsection paragraph label ref caption centering scriptsize small footnotesize emph textbf
texttt textit begin end toprule midrule bottomrule includegraphics resizebox ifdim width else fi textwidth
columnwidth linewidth providecommand nonidfigdir def textbackslash textasciitilde textless textgreater textbar
dots ldots cdot sum in le ge ne leq geq infty alpha delta theta lambda varepsilon epsilon Sigma Delta mu pm times to
approx cap cup mathrm mathcal log ln quad qquad hline noindent par input
""".split())
ENVIRONMENTS = frozenset({"table", "table*", "figure", "figure*", "tabular", "itemize", "enumerate", "center",
                          "document"})
ESCAPABLE = set("{}$&#_%^~\\ ,;!'`\"|")


def _columns(spec: str) -> int:
    spec = re.sub(r"@\{[^{}]*\}", "", spec)
    spec = re.sub(r"[pmb]\{[^{}]*\}", "l", spec)
    return sum(1 for ch in spec if ch in "lcr")


def check_latex(text: str) -> list[str]:
    """Problems found in a LaTeX body (empty list: none).  Each names its line."""
    problems: list[str] = []
    braces: list[int] = []
    envs: list[tuple[str, int, int]] = []  # (name, line, columns)
    math_open: int | None = None
    cells = 0
    i, line, n = 0, 1, len(text)

    def inside(names: set[str]) -> bool:
        return any(e[0] in names for e in envs)

    def read_group(j: int) -> tuple[str, int]:
        if j < n and text[j] == "{":
            depth = 0
            for k in range(j, n):
                if text[k] == "{" and text[k - 1] != "\\":
                    depth += 1
                elif text[k] == "}" and text[k - 1] != "\\":
                    depth -= 1
                    if depth == 0:
                        return text[j + 1:k], k + 1
        return "", j

    while i < n:
        ch = text[i]
        if ord(ch) > 127:
            problems.append(f"line {line}: non-ASCII character {ch!r}")
        if ch == "\n":
            line += 1
            if text[i + 1:i + 2] == "\n" and math_open is not None:
                problems.append(f"line {math_open}: inline math ($) not closed before the paragraph ends")
                math_open = None
            i += 1
            continue
        if ch == "%":
            k = text.find("\n", i)
            i = n if k < 0 else k
            continue
        if ch == "\\":
            m = re.match(r"\\([A-Za-z]+)\*?", text[i:])
            if not m:
                nxt = text[i + 1:i + 2]
                if nxt == "\\":
                    if inside({"tabular"}):
                        cols = next(e[2] for e in reversed(envs) if e[0] == "tabular")
                        if cells + 1 > cols:
                            problems.append(f"line {line}: tabular row has {cells + 1} cells, the column spec {cols}")
                        cells = 0
                elif nxt not in ESCAPABLE:
                    problems.append(f"line {line}: unknown control symbol \\{nxt}")
                i += 2
                continue
            name = m.group(1)
            j = i + m.end()
            if name not in KNOWN_COMMANDS:
                problems.append(f"line {line}: undefined control sequence \\{name}")
            if name in ("begin", "end"):
                env, j = read_group(j)
                if name == "begin":
                    if env not in ENVIRONMENTS:
                        problems.append(f"line {line}: unknown environment {env!r}")
                    cols = 0
                    if env == "tabular":
                        spec, j = read_group(j)
                        cols = _columns(spec)
                        cells = 0
                    envs.append((env, line, cols))
                else:
                    if not envs:
                        problems.append(f"line {line}: \\end{{{env}}} without \\begin")
                    elif envs[-1][0] != env:
                        problems.append(f"line {line}: \\end{{{env}}} closes \\begin{{{envs[-1][0]}}} of line {envs[-1][1]}")
                        envs.pop()
                    else:
                        envs.pop()
            i = j
            continue
        if ch == "{":
            braces.append(line)
        elif ch == "}":
            if not braces:
                problems.append(f"line {line}: '}}' closes nothing")
            else:
                braces.pop()
        elif ch == "$":
            math_open = None if math_open is not None else line
        elif ch in "_^" and math_open is None:
            problems.append(f"line {line}: '{ch}' outside math (write \\{ch})")
        elif ch == "&":
            if not inside({"tabular"}):
                problems.append(f"line {line}: '&' outside a tabular (write \\&)")
            else:
                cells += 1
        elif ch == "#":
            problems.append(f"line {line}: '#' (write \\#)")
        i += 1
    for b in braces:
        problems.append(f"line {b}: '{{' never closed")
    for env, ln, _c in envs:
        problems.append(f"line {ln}: \\begin{{{env}}} never ended")
    if math_open is not None:
        problems.append(f"line {math_open}: inline math ($) never closed")
    return problems


WRAPPER = ("\\documentclass[twocolumn]{article}\n\\usepackage{booktabs}\n\\usepackage{graphicx}\n"
           "\\begin{document}\n\\input{appendix}\n\\end{document}\n")


def latex_engine() -> str | None:
    """The path of ``pdflatex`` if installed."""
    return shutil.which("pdflatex")


def compile_pdf(appendix_dir: str | Path, timeout: float = 120) -> tuple[bool, str]:
    """Compile ``appendix.tex`` (in a two-column ``article`` loading booktabs and graphicx, with the
    appendix's figures) with pdflatex in a scratch copy.  Returns (ok, the log's error lines or tail)."""
    engine = latex_engine()
    if engine is None:
        raise FileNotFoundError("pdflatex is not installed")
    src = Path(appendix_dir)
    with tempfile.TemporaryDirectory(prefix="nonid-tex-") as tmp:
        t = Path(tmp)
        shutil.copy(src / "appendix.tex", t / "appendix.tex")
        if (src / "figures").is_dir():
            shutil.copytree(src / "figures", t / "figures")
        (t / "main.tex").write_text(WRAPPER)
        proc = subprocess.run([engine, "-interaction=nonstopmode", "-halt-on-error", "-no-shell-escape", "main.tex"],
                              cwd=t, capture_output=True, text=True, timeout=timeout, errors="replace")
        log = (t / "main.log").read_text(errors="replace") if (t / "main.log").exists() else proc.stdout
        errors = [ln for ln in log.splitlines() if ln.startswith("!") or "Undefined" in ln or "Missing character" in ln]
        ok = proc.returncode == 0 and (t / "main.pdf").exists() and not errors
        return ok, "\n".join(errors) if errors else "\n".join(log.splitlines()[-15:])
