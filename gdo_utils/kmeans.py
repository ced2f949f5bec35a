"""Seeded k-means with faiss, shared by GDO coverage and the OFA pseudo-labels.

Everything runs in float32 in faiss. The Lloyd iterations are faiss.Kmeans's, step for step
(gdo_utils.lloyd): every faiss call runs on one thread and the threads (faiss.omp_get_max_threads(),
i.e. OMP_NUM_THREADS or the core count) share the rows at faiss's own block boundaries, so the same
features and seed give the same bytes on any machine size and thread count. Initialisation (`init`):
- "kmeans++" (OFA spec, step 2): k-means++ seeding on at most `init_sample` rows, seeded, with the
  distance updates as one matrix-vector product per pick (fine for K = 128; K = 4096 picks are
  sequential and cost K passes over the sample);
- "faiss": faiss's own seeded initialisation (K distinct rows drawn from the training sample), the
  only practical choice at the coverage clustering's K = 4096.
Training uses at most `max_points_per_centroid` * K rows (faiss's seeded subsample); then every row is
assigned to its nearest centroid.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import faiss
import numpy as np

from gdo_utils import lloyd


@dataclass
class KMeansResult:
    """Centroids (k, d) float32, labels (n,) int64, distances (n,) float32 (Euclidean, not squared)."""

    centroids: np.ndarray
    labels: np.ndarray
    distances: np.ndarray


def kmeans_plus_plus(x: np.ndarray, k: int, seed: int, sample: int = 100_000) -> np.ndarray:
    """k-means++ seeding (Arthur & Vassilvitskii) on at most `sample` rows, seeded (float32 centres).

    Squared distances to a new centre come from ||x||^2 - 2 x.c + ||c||^2 (one BLAS matrix-vector
    product) and are accumulated in float64 for the sampling probabilities.
    """
    rng = np.random.default_rng(seed)
    n = x.shape[0]
    pool = x if n <= sample else x[np.sort(rng.choice(n, sample, replace=False))]
    pool = np.ascontiguousarray(pool, dtype=np.float32)
    sq = np.einsum("ij,ij->i", pool, pool, dtype=np.float64)
    centers = np.empty((k, pool.shape[1]), dtype=np.float32)

    def dist2(c: np.ndarray) -> np.ndarray:
        return np.maximum(sq - 2.0 * (pool @ c).astype(np.float64) + float(c.astype(np.float64) @ c), 0.0)

    centers[0] = pool[int(rng.integers(len(pool)))]
    d2 = dist2(centers[0])
    for j in range(1, k):
        total = d2.sum()
        if total <= 0:  # fewer distinct points than k: repeat picks deterministically
            idx = int(rng.integers(len(pool)))
        else:
            idx = int(rng.choice(len(pool), p=d2 / total))
        centers[j] = pool[idx]
        d2 = np.minimum(d2, dist2(centers[j]))
    return centers


def assign(x: np.ndarray, centroids: np.ndarray, batch: int = 65_536) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centroid (labels int64) and Euclidean distance (float32) for every row, one faiss search per batch."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    d2, labels = lloyd.nearest(x, centroids, faiss.omp_get_max_threads(), batch=batch)
    return labels, np.sqrt(np.maximum(d2, 0.0))


def fit_kmeans(x: np.ndarray, k: int, seed: int, niter: int = 25, max_points_per_centroid: int = 256,
               init: Literal["kmeans++", "faiss"] = "kmeans++", init_sample: int = 100_000) -> KMeansResult:
    """Cluster `x` into min(k, n) clusters: seeded init, faiss's Lloyd iterations, nearest-centroid assignment.

    Deterministic for a seed, whatever the thread count. Raises ValueError on NaN/inf rows.
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim != 2 or len(x) == 0:
        raise ValueError(f"k-means needs a non-empty 2-D array, got shape {x.shape}")
    if not np.isfinite(x).all():
        bad = int((~np.isfinite(x)).any(1).sum())
        raise ValueError(f"k-means features contain NaN/inf in {bad} row(s)")
    k = int(min(k, len(x)))
    if init not in ("kmeans++", "faiss"):
        raise ValueError(f"k-means init must be 'kmeans++' or 'faiss', got {init!r}")
    start = kmeans_plus_plus(x, k, seed, sample=init_sample) if init == "kmeans++" else None
    centroids, _ = lloyd.train(x, k, niter, seed, max_points_per_centroid, init_centroids=start,
                               threads=faiss.omp_get_max_threads())
    labels, dist = assign(x, centroids)
    return KMeansResult(centroids, labels, dist)
