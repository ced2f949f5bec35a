"""Per-cluster least-confidence selection (spec step 8), with the optional k-DPP diversity stage.

Budget N_sel = ceil(budget_ratio * N_scored) (exact decimal ceiling). Quotas are proportional to the
cluster sizes by largest remainder, with every non-empty cluster getting >= 1 while the budget allows:
clusters whose proportional share is below 1 are fixed at 1 and the rest of the budget is shared
again among the others (repeated until no share is below 1), which also keeps every quota <= its
cluster size. When N_sel is smaller than the number of non-empty clusters, the N_sel largest
clusters (ties: lower cluster id) get one each. Inside a cluster the lowest-confidence members are
taken (ties: earlier row). Everything is deterministic for a seed.

Diversity stage: candidates = the 2*q_k lowest-confidence members, quality u = 1 - rank/n; the
candidates are shuffled (generator seeded with seed + 100000*k) and cut into ceil(n/dpp_block)
balanced blocks (sizes differ by at most one, all <= dpp_block); the quota is shared across blocks in
proportion to their sizes (largest remainder); each block draws an exact k-DPP with
L_ij = sqrt(u_i) (1 + cos(x_i, x_j))/2 sqrt(u_j) seeded with seed + 100000*k + block + 1.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from .core import rank_within_group
from .features import l2_normalize
from .kdpp import sample_kdpp_jitter
from ..apportion import ceil_ratio, largest_remainder


@dataclass
class Selection:
    """Selected row indices (sorted, into the scored rows) with the per-cluster sizes, quotas and counts taken."""

    indices: np.ndarray
    sizes: np.ndarray
    quotas: np.ndarray
    taken: np.ndarray
    n_sel: int


def selection_budget(budget_ratio: float, n_scored: int) -> int:
    """N_sel = ceil(budget_ratio * N_scored)."""
    return ceil_ratio(budget_ratio, n_scored)


def cluster_quotas(sizes: np.ndarray, n_sel: int) -> np.ndarray:
    """Per-cluster quotas: proportional (largest remainder), >= 1 per non-empty cluster while possible, <= size, sum n_sel."""
    sizes = np.asarray(sizes, dtype=np.int64)
    if n_sel < 0 or n_sel > int(sizes.sum()):
        raise ValueError(f"budget {n_sel} must be between 0 and the number of rows {int(sizes.sum())}")
    quotas = np.zeros_like(sizes)
    nonempty = sizes > 0
    if n_sel < int(nonempty.sum()):
        order = np.lexsort((np.arange(len(sizes)), -sizes))
        quotas[order[:n_sel]] = 1
        return quotas
    active = nonempty.copy()
    budget = int(n_sel)
    while active.any():
        small = active & (budget * sizes < int(sizes[active].sum()))  # proportional share below 1
        if not small.any():
            break
        quotas[small] = 1
        budget -= int(small.sum())
        active &= ~small
    if active.any():
        quotas[active] = largest_remainder(sizes[active], budget)
    if int(quotas.sum()) != n_sel or (quotas > sizes).any():  # guarded contract, cannot happen by construction
        raise RuntimeError(f"quota allocation broke its contract: sum {int(quotas.sum())} vs {n_sel}")
    return quotas


def least_confident(conf: np.ndarray, clusters: np.ndarray, quotas: np.ndarray) -> np.ndarray:
    """Sorted indices of the quotas[c] lowest-confidence rows of every cluster c (ties: earlier row)."""
    ranks = rank_within_group(clusters, np.asarray(conf, dtype=np.float64))
    return np.flatnonzero(ranks < np.asarray(quotas)[clusters])


def dpp_kernel(x: np.ndarray, quality: np.ndarray) -> np.ndarray:
    """L_ij = sqrt(u_i) * (1 + cos(x_i, x_j)) / 2 * sqrt(u_j) (float64)."""
    xn = l2_normalize(x).astype(np.float64)
    s = np.sqrt(np.asarray(quality, dtype=np.float64))
    return s[:, None] * ((1.0 + xn @ xn.T) / 2.0) * s[None, :]


def diverse_in_cluster(cand: np.ndarray, x: np.ndarray, quota: int, cluster: int, block: int, seed: int) -> np.ndarray:
    """k-DPP stage for one cluster: `cand` are row indices ordered by confidence (lowest first)."""
    n = len(cand)
    if quota >= n:
        return cand.copy()
    quality = 1.0 - np.arange(n) / n
    perm = np.random.default_rng(seed + 100000 * cluster).permutation(n)
    blocks = np.array_split(perm, math.ceil(n / block))
    shares = largest_remainder(np.array([len(b) for b in blocks]), quota)
    picked = []
    for b, (members, kb) in enumerate(zip(blocks, shares)):
        if kb == 0:
            continue
        kernel = dpp_kernel(x[cand[members]], quality[members])
        picked.append(cand[members[sample_kdpp_jitter(kernel, int(kb), seed + 100000 * cluster + b + 1)]])
    return np.concatenate(picked) if picked else np.zeros(0, dtype=np.int64)


def diverse_select(conf: np.ndarray, clusters: np.ndarray, quotas: np.ndarray, x: np.ndarray, block: int,
                   seed: int, progress: bool = True) -> np.ndarray:
    """Sorted indices chosen by the diversity stage in every cluster with a quota."""
    clusters = np.asarray(clusters, dtype=np.int64)
    ranks = rank_within_group(clusters, np.asarray(conf, dtype=np.float64))
    order = np.lexsort((ranks, clusters))  # grouped by cluster, lowest confidence first
    starts = np.searchsorted(clusters[order], np.arange(len(quotas) + 1))
    chosen = []
    with threadpool_limits(limits=1, user_api="blas"):  # blocks are <= dpp_block wide: threads only add overhead
        for c in tqdm(np.flatnonzero(quotas), desc="k-DPP per cluster", disable=not progress):
            q = int(quotas[c])
            members = order[starts[c]:starts[c + 1]]
            chosen.append(diverse_in_cluster(members[:2 * q], x, q, int(c), block, seed))
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=np.int64)


def select(conf: np.ndarray, clusters: np.ndarray, k: int, budget_ratio: float, *, x: np.ndarray | None = None,
           diversity: bool = False, block: int = 128, seed: int = 42, progress: bool = True) -> Selection:
    """Budget, quotas and the selected rows for a scored pool (clusters in [0, k))."""
    clusters = np.asarray(clusters, dtype=np.int64)
    sizes = np.bincount(clusters, minlength=k)
    n_sel = selection_budget(budget_ratio, len(clusters))
    quotas = cluster_quotas(sizes, n_sel)
    if diversity:
        if x is None:
            raise ValueError("the diversity stage needs the joint features x")
        idx = diverse_select(conf, clusters, quotas, x, block, seed, progress=progress)
    else:
        idx = least_confident(conf, clusters, quotas)
    taken = np.bincount(clusters[idx], minlength=k)
    return Selection(idx, sizes, quotas, taken, n_sel)
