"""Benchmarks by name: adding one is a module declaring a `Benchmark` and one line here."""
from __future__ import annotations

from .types import Benchmark, UnknownBenchmarkError


def _entries() -> dict[str, Benchmark]:
    from . import lvbench, mlvu, mvbench, videomme

    return {b.name: b for b in (mvbench.BENCHMARK, videomme.BENCHMARK, mlvu.BENCHMARK, lvbench.BENCHMARK)}


def names() -> list[str]:
    return list(_entries())


def get(name: str) -> Benchmark:
    """The registered benchmark `name` (a clear error listing the known ones otherwise)."""
    reg = _entries()
    if name not in reg:
        raise UnknownBenchmarkError(f"unknown video benchmark {name!r}; registered: {sorted(reg)}")
    return reg[name]
