"""Exact k-DPP sampling (Kulesza & Taskar, "Determinantal point processes for machine learning").

P(S) is proportional to det(L_S) over the subsets S of size k. Eigendecompose L; choose k eigenvectors
with the elementary symmetric polynomial recursion (Algorithm 8), computed in log space so large
blocks and large k neither overflow nor underflow; then sample the projection DPP they span
(Algorithm 1). `sample_kdpp_jitter` adds jitter * I to L and retries with more jitter on numerical
failure (OFA spec step 8: 1e-8, then 1e-6, 1e-4).
"""
from __future__ import annotations

import logging

import numpy as np

log = logging.getLogger(__name__)

JITTERS: tuple[float, ...] = (1e-8, 1e-6, 1e-4)


class KDPPError(ArithmeticError):
    """The k-DPP could not be sampled (non-finite kernel, or every size-k subset has probability 0)."""


def log_elementary_symmetric(lams: np.ndarray, k: int) -> np.ndarray:
    """log e_l(lams[:n]) for l = 0..k and n = 0..N, shape (k+1, N+1) (-inf where the value is 0)."""
    n_items = len(lams)
    with np.errstate(divide="ignore"):
        loglam = np.log(np.maximum(lams, 0.0))
    table = np.full((k + 1, n_items + 1), -np.inf)
    table[0, :] = 0.0
    for n in range(1, n_items + 1):  # over items (<= block size), vectorised over l
        table[1:, n] = np.logaddexp(table[1:, n - 1], loglam[n - 1] + table[:-1, n - 1])
    return table


def choose_eigenvectors(lams: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of the k eigenvectors of one k-DPP draw (Algorithm 8)."""
    table = log_elementary_symmetric(lams, k)
    if not np.isfinite(table[k, len(lams)]):
        raise KDPPError(f"e_{k} of the eigenvalues is zero: the kernel has rank < {k}")
    with np.errstate(divide="ignore"):
        loglam = np.log(np.maximum(lams, 0.0))
    chosen = []
    remaining = k
    for n in range(len(lams), 0, -1):
        if remaining == 0:
            break
        if n == remaining:
            marginal = 1.0
        else:
            marginal = float(np.exp(loglam[n - 1] + table[remaining - 1, n - 1] - table[remaining, n]))
        if rng.random() < marginal:
            chosen.append(n - 1)
            remaining -= 1
    if remaining:
        raise KDPPError(f"chose {k - remaining} of {k} eigenvectors")
    return np.array(chosen[::-1], dtype=np.int64)


def sample_projection_dpp(vecs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One draw (sorted item indices) of the projection DPP spanned by the orthonormal columns of vecs (Algorithm 1)."""
    v = np.array(vecs, dtype=np.float64, copy=True)
    n_items, k = v.shape
    picked: list[int] = []
    for _ in range(k):
        p = (v ** 2).sum(axis=1)
        p[picked] = 0.0
        total = p.sum()
        if not np.isfinite(total) or total <= 0:
            raise KDPPError("projection DPP has no probability mass left")
        item = int(rng.choice(n_items, p=p / total))
        picked.append(item)
        j = int(np.argmax(np.abs(v[item])))
        col = v[:, j].copy()
        v = v - np.outer(col, v[item] / v[item, j])
        v = np.delete(v, j, axis=1)
        if v.shape[1]:
            v, _ = np.linalg.qr(v)
    return np.sort(np.array(picked, dtype=np.int64))


def sample_kdpp(kernel: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k distinct indices (sorted) drawn exactly from the k-DPP with PSD kernel L."""
    kernel = np.asarray(kernel, dtype=np.float64)
    n_items = kernel.shape[0]
    if kernel.ndim != 2 or kernel.shape[1] != n_items:
        raise ValueError(f"kernel must be square, got {kernel.shape}")
    if not 0 <= k <= n_items:
        raise ValueError(f"k must be in [0, {n_items}], got {k}")
    if k == 0:
        return np.zeros(0, dtype=np.int64)
    if k == n_items:
        return np.arange(n_items, dtype=np.int64)
    if not np.isfinite(kernel).all():
        raise KDPPError("kernel has non-finite entries")
    try:
        lams, vecs = np.linalg.eigh((kernel + kernel.T) / 2.0)
    except np.linalg.LinAlgError as exc:
        raise KDPPError(f"eigendecomposition failed: {exc}") from None
    idx = choose_eigenvectors(np.maximum(lams, 0.0), k, rng)
    out = sample_projection_dpp(vecs[:, idx], rng)
    if len(np.unique(out)) != k:
        raise KDPPError("sampled items are not distinct")
    return out


def sample_kdpp_jitter(kernel: np.ndarray, k: int, seed: int, jitters: tuple[float, ...] = JITTERS) -> np.ndarray:
    """sample_kdpp(L + jitter*I) with a generator seeded by `seed`; on failure retry with the next jitter."""
    last: Exception | None = None
    eye = np.eye(len(kernel))
    for jitter in jitters:
        try:
            return sample_kdpp(kernel + jitter * eye, k, np.random.default_rng(seed))
        except KDPPError as exc:
            last = exc
            log.debug("k-DPP failed with jitter %g (%s), retrying", jitter, exc)
    raise KDPPError(f"k-DPP sampling failed with every jitter {jitters}: {last}")
