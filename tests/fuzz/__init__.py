"""Fuzzing of every public entry point: hypothesis-generated malformed inputs to the constructors and
to the command line must give a typed error (a :class:`~theory.errors.NonidError` with a one-line
message) or, at the command line, exit status 2 with one ``nonid: …`` line on stderr — never a crash
or a traceback.  The targets live in :mod:`tests.fuzz.targets`; :func:`tests.fuzz.targets.run_all`
runs them for the benchmark script."""
