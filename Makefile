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
	@# the test extra and every interop extra (Hugging Face, TransformerLens, Ray, TensorBoard), so the tests cover them
	$(BIN)/pip install -q -e '.[test,hf,tl,ray,logging]'
	touch $@

prove: $(VENV)/.installed coq
	$(BIN)/nonid prove

test: $(VENV)/.installed latex coq
	$(BIN)/python -m pytest -n 2 -q

# Best-effort system packages: only as root with Debian's apt-get; otherwise say what is missing and go on.
# $(call apt_best_effort,COMMAND,PACKAGES,WHAT FOR,WITHOUT IT) (no commas inside the arguments).
define apt_best_effort
	@command -v $(1) >/dev/null 2>&1 && exit 0; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "make: installing $(1) ($(2)) $(3)"; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(2) >/dev/null 2>&1 || \
	  { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(2) >/dev/null 2>&1; } || \
	  echo "make: could not install $(1); $(4)"; \
	else echo "make: no $(1); $(4)"; fi
endef

# pdflatex for the appendix test (tests/test_appendix.py compiles appendix.tex with it when present;
# about 20 s); without it the test checks the .tex with the LaTeX-aware parser alone and says so.
TEX_PACKAGES := texlive-latex-base texlive-latex-recommended
latex:
	$(call apt_best_effort,pdflatex,$(TEX_PACKAGES),for the appendix test,the appendix test checks appendix.tex with the LaTeX-aware parser only)

bench: $(VENV)/.installed
	$(BIN)/python -m benchmarks

# Coq 8.16 for the machine-checked core (proofs/coq/; the check coq-core; about 40 s); without coqc the
# check is `unknown` and says what to install, and every other check runs.
COQ_PACKAGES := coq
coq:
	$(call apt_best_effort,coqc,$(COQ_PACKAGES),for the check coq-core,coq-core will be unknown (install Coq 8.16 with apt-get install coq or opam install coq.8.16.1))
