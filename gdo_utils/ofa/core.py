"""The selector's training set, the "core" (spec step 3), and its class-balanced sampler.

Per cluster C_k the max(core_min, ceil(core_ratio * |C_k|)) members nearest to the centroid form the
core (never more than |C_k|; distance ties go to the earlier row; the ceiling is taken on the
decimal ratio, see gdo_utils.apportion.ceil_ratio). The core is shuffled with the seed; max(1, round(val_ratio *
|core|)) rows are validation (Python's round, half to even; at most |core| - 1), the rest training.
Training batches are drawn with replacement with weight 1/count(y): one draw of the size
of the training core per epoch.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import WeightedRandomSampler

from ..apportion import ceil_ratio


@dataclass
class CoreSplit:
    """Row indices (into the clustered rows) of the core's training and validation parts."""

    train: np.ndarray
    val: np.ndarray

    @property
    def core(self) -> np.ndarray:
        return np.concatenate([self.train, self.val])


def core_quota(sizes: np.ndarray, core_ratio: float, core_min: int) -> np.ndarray:
    """Core members per cluster: min(|C_k|, max(core_min, ceil(core_ratio * |C_k|)))."""
    sizes = np.asarray(sizes, dtype=np.int64)
    want = np.array([max(core_min, ceil_ratio(core_ratio, int(s))) for s in sizes], dtype=np.int64)  # K values, not rows
    return np.minimum(sizes, want)


def rank_within_group(groups: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """0-based rank of each row inside its group when ordered by key (ties: earlier row first)."""
    groups = np.asarray(groups)
    order = np.lexsort((np.arange(len(groups)), keys, groups))
    g_sorted = groups[order]
    starts = np.r_[0, np.flatnonzero(g_sorted[1:] != g_sorted[:-1]) + 1]
    run_start = np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    ranks = np.empty(len(groups), dtype=np.int64)
    ranks[order] = np.arange(len(order)) - run_start
    return ranks


def core_indices(labels: np.ndarray, distances: np.ndarray, k: int, core_ratio: float, core_min: int) -> np.ndarray:
    """Sorted row indices of the core: in each cluster the quota members nearest to its centroid."""
    labels = np.asarray(labels, dtype=np.int64)
    sizes = np.bincount(labels, minlength=k)
    quota = core_quota(sizes, core_ratio, core_min)
    ranks = rank_within_group(labels, np.asarray(distances, dtype=np.float64))
    return np.flatnonzero(ranks < quota[labels])


def split_core(labels: np.ndarray, distances: np.ndarray, k: int, core_ratio: float, core_min: int,
               val_ratio: float, seed: int) -> CoreSplit:
    """Core rows, shuffled with `seed`, split into max(1, round(val_ratio*|core|)) validation + training."""
    core = core_indices(labels, distances, k, core_ratio, core_min)
    if len(core) < 2:
        raise ValueError(f"the core has {len(core)} row(s); the selector needs at least 2 (one to train, one to validate)")
    shuffled = core[np.random.default_rng(seed).permutation(len(core))]
    n_val = min(max(1, round(val_ratio * len(core))), len(core) - 1)
    return CoreSplit(train=shuffled[n_val:], val=shuffled[:n_val])


def balanced_sampler(y: np.ndarray, seed: int, num_samples: int | None = None) -> WeightedRandomSampler:
    """Sampler with replacement, weight 1/count(y) per row, `num_samples` (default len(y)) per epoch."""
    y = np.asarray(y, dtype=np.int64)
    counts = np.bincount(y)
    weights = torch.as_tensor(1.0 / counts[y], dtype=torch.double)
    gen = torch.Generator().manual_seed(int(seed))
    return WeightedRandomSampler(weights, num_samples=int(num_samples or len(y)), replacement=True, generator=gen)
