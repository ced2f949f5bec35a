"""SC (self-consistency, "stability") descriptor, GDO_METHOD.md section 3.4.

SC = mean pairwise Jaccard similarity of the lowercase word-token sets of several sampled answers
(tokens = runs of [A-Za-z0-9_]). When SC is missing for a row, the merge fills it with
`sc_fallback` = sigmoid(0.6*z(VDS) - 0.2*|z(PPL)|), z being the robust z-score over the pool
(gdo_utils.stats.robust_z).
"""
from __future__ import annotations

from itertools import combinations
from typing import Sequence

import numpy as np

from gdo_utils.stats import robust_z, sigmoid
from gdo_utils.words import word_tokens  # noqa: F401 - SC's tokens, re-exported

SC_FALLBACK_VDS_WEIGHT = 0.6
SC_FALLBACK_PPL_WEIGHT = 0.2


def jaccard(a: set[str], b: set[str]) -> float:
    """Jaccard similarity |a & b| / |a | b|; two empty sets are identical (1.0)."""
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def self_consistency(answers: Sequence[str]) -> float:
    """Mean pairwise Jaccard of the answers' token sets; NaN when fewer than 2 answers."""
    if len(answers) < 2:
        return float("nan")
    sets = [word_tokens(a) for a in answers]
    return float(np.mean([jaccard(a, b) for a, b in combinations(sets, 2)]))


def sc_fallback(vds: np.ndarray | Sequence[float], ppl: np.ndarray | Sequence[float]) -> np.ndarray:
    """SC stand-in sigmoid(0.6*z(VDS) - 0.2*|z(PPL)|), robust z over the given pool; NaN inputs -> NaN.

    z is taken over all rows passed (pass the whole pool, not only the rows that need the fallback).
    PPL enters raw, as the method states; the robust z (median, IQR) is insensitive to its heavy tail.
    """
    v = np.asarray(vds, dtype=np.float64)
    p = np.asarray(ppl, dtype=np.float64)
    if v.shape != p.shape:
        raise ValueError(f"vds and ppl must have the same shape, got {v.shape} and {p.shape}")
    return sigmoid(SC_FALLBACK_VDS_WEIGHT * robust_z(v) - SC_FALLBACK_PPL_WEIGHT * np.abs(robust_z(p)))
