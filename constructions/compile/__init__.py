"""Analytic compilation of an AR model, restricted to a finite prefix set, into transformer weights.

Pipeline (one module per stage): :mod:`~constructions.compile.prefixes` (which words) →
:mod:`~constructions.compile.lookup` (the weights), with the knobs in
:mod:`~constructions.compile.config`.  The verdict on a compiled model comes only from the exhaustive
checker, :mod:`constructions.check`.
"""

from constructions.compile.config import CompileConfig
from constructions.compile.lookup import CompileReport, compile_model, compiled_config
from constructions.compile.prefixes import PrefixSet, greedy_path, prefix_set

__all__ = ["CompileConfig", "CompileReport", "PrefixSet", "compile_model", "compiled_config", "greedy_path", "prefix_set"]
