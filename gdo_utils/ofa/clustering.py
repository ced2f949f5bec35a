"""OFA pseudo-labels (spec step 2) and their transfer to unseen pools (step 7).

k-means (k-means++ init, seeded, shared implementation in gdo_utils.kmeans) on the joint features of
the source pool gives the pseudo-labels and the centroids; an unseen pool is labelled by its nearest
source centroid, never re-clustered.
"""
from __future__ import annotations

import numpy as np

from ..kmeans import KMeansResult, assign, fit_kmeans


def pseudo_labels(x: np.ndarray, k: int, seed: int, niter: int = 25) -> KMeansResult:
    """Cluster the source pool's joint features into min(k, n) clusters (labels = pseudo-labels)."""
    return fit_kmeans(x, k, seed=seed, niter=niter)


def transfer_labels(x: np.ndarray, centroids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest source centroid (int64) and Euclidean distance (float32) for every row of a pool."""
    if x.shape[1] != centroids.shape[1]:
        raise ValueError(f"features have dimension {x.shape[1]} but the centroids have {centroids.shape[1]}")
    return assign(x, centroids)
