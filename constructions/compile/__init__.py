"""Analytic compilation of an AR model, restricted to a finite prefix set, into transformer weights.

Pipeline (one module per stage): :mod:`~constructions.compile.prefixes` (which words) →
:mod:`~constructions.compile.lookup` (the weights), with the knobs in
:mod:`~constructions.compile.config`.  The verdict on a compiled model comes only from the exhaustive
checker, :mod:`constructions.check`.
"""

from typing import TYPE_CHECKING, Any

from constructions.compile.config import CompileConfig

if TYPE_CHECKING:
    from constructions.compile.lookup import CompileReport, compile_model, compiled_config
    from constructions.compile.prefixes import PrefixSet, greedy_path, prefix_set

# the stages that need torch load on first use, so the knobs (CompileConfig) validate a command's
# options before torch is imported
_LAZY = {"CompileReport": "lookup", "compile_model": "lookup", "compiled_config": "lookup",
         "PrefixSet": "prefixes", "greedy_path": "prefixes", "prefix_set": "prefixes"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"constructions.compile.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'constructions.compile' has no attribute {name!r}")


__all__ = ["CompileConfig", "CompileReport", "PrefixSet", "compile_model", "compiled_config", "greedy_path", "prefix_set"]
