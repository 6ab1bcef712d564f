# Set-up and the two entry points of README.md.  `make prove` and `make test` create .venv on first
# use (installing the local CPU wheel of torch first where this machine has one), then run.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: prove test bench setup latex coq
setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	@# torch 2.13.0 is a local CPU wheel on the project's machines; elsewhere the range in pyproject applies.
	$(BIN)/pip install -q torch==2.13.0 || echo "make: no local torch 2.13.0 wheel; pip will resolve torch from pyproject.toml"
	$(BIN)/pip install -q -e '.[test]'
	touch $@

prove: $(VENV)/.installed coq
	$(BIN)/nonid prove

test: $(VENV)/.installed latex coq
	$(BIN)/python -m pytest -n 2 -q

# pdflatex for the appendix test (tests/test_appendix.py compiles appendix.tex with it when present).
# Best effort: only as root with Debian's apt-get (about 20 s); otherwise the test checks the .tex with
# the LaTeX-aware parser alone and says so.
TEX_PACKAGES := texlive-latex-base texlive-latex-recommended
latex:
	@command -v pdflatex >/dev/null 2>&1 && exit 0; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "make: installing pdflatex ($(TEX_PACKAGES)) for the appendix test"; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(TEX_PACKAGES) >/dev/null 2>&1 || \
	  { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(TEX_PACKAGES) >/dev/null 2>&1; } || \
	  echo "make: could not install pdflatex; the appendix test uses the LaTeX-aware parser only"; \
	else echo "make: no pdflatex; the appendix test checks appendix.tex with the LaTeX-aware parser only"; fi

bench: $(VENV)/.installed
	$(BIN)/python -m benchmarks

# Coq 8.16 for the machine-checked core (proofs/coq/, the check coq-core).  Best effort, as for pdflatex:
# only as root with Debian's apt-get (about 40 s); without coqc the check is `unknown` and says what to
# install, and every other check runs.
COQ_PACKAGES := coq
coq:
	@command -v coqc >/dev/null 2>&1 && exit 0; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "make: installing Coq ($(COQ_PACKAGES)) for the check coq-core"; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(COQ_PACKAGES) >/dev/null 2>&1 || \
	  { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(COQ_PACKAGES) >/dev/null 2>&1; } || \
	  echo "make: could not install Coq; coq-core will be unknown (install coq 8.16 to check it)"; \
	else echo "make: no coqc; coq-core will be unknown (install coq 8.16: apt-get install coq, or opam install coq.8.16.1)"; fi
