"""faiss's k-means training (Clustering::train, faiss 1.15) step for step, its searches spread over threads.

Why not faiss.Kmeans itself: it searches all training rows in one faiss call, whose matrix product
(OpenBLAS sgemm) is split over OpenMP threads, and a split product rounds differently (on 200,000 rows,
two threads changed the last bits of 3-4% of the distances), so the result would depend on the thread
count. Here every faiss call runs on one thread, and the threads share the rows: `search_ranges` cuts
them only where faiss's own row blocks begin (`distance_compute_blas_query_bs` rows), so each BLAS call
is exactly the one a single-threaded faiss search of all the rows makes — the same bytes for any
thread count. Everything else is faiss's code written out in numpy with the same float32 operations in
the same order: the seeded subsample and initialisation (faiss.rand_perm), the centroid update
(`compute_centroids`: sums in row order, times 1 / count), the empty-cluster split (`split_clusters`:
mt19937 seeded 1234, donor drawn with p = (count - 1) / (n - k), perturbation 1 +- 1/1024) and the early
stop (objective unchanged). tests/test_kmeans.py checks the centroids bit for bit against faiss.Kmeans.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Iterator

import faiss
import numpy as np

FUSED_MAX_DIM = 32   # faiss's fused top-1 kernels (d <= 32) group rows in their own way: one call there
TASKS_PER_THREAD = 4  # smaller ranges than one per thread, so a thread slowed by other jobs holds up less
EPS = np.float32(1.0 / 1024.0)
MT_MAX = np.float32(4294967295.0)  # float(mt19937::max()), as faiss's rand_float divides by it


@contextmanager
def one_thread() -> Iterator[None]:
    """faiss (OpenMP, and through it OpenBLAS) on one thread in this thread for the block, then as before."""
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def search_ranges(n: int, d: int, parts: int) -> list[tuple[int, int]]:
    """Row ranges whose separate faiss searches repeat one search of all `n` rows exactly.

    faiss computes the distances of row block [i0, i0 + bs) against all centroids with one sgemm and takes
    the BLAS path only when rows * d reaches `distance_compute_blas_threshold`: ranges start at multiples
    of bs, each has enough rows for the BLAS path, the last one ends at n. One range when that cannot hold.
    """
    bs = int(faiss.cvar.distance_compute_blas_query_bs)
    threshold = int(faiss.cvar.distance_compute_blas_threshold)
    full = n // bs
    if parts <= 1 or d <= FUSED_MAX_DIM or n * d < threshold or full < 2:
        return [(0, n)]
    per = max(-(-threshold // (d * bs)), -(-full // parts))  # blocks per range
    starts = list(range(0, full * bs, per * bs))
    if (n - starts[-1]) * d < threshold:  # a short tail joins the range before it
        starts.pop()
    return [(s, e) for s, e in zip(starts, starts[1:] + [n])] if starts else [(0, n)]


def nearest(x: np.ndarray, centroids: np.ndarray, threads: int, batch: int | None = None,
            ) -> tuple[np.ndarray, np.ndarray]:
    """Squared L2 distance (float32) and index (int64) of each row's nearest centroid, faiss on `threads` threads.

    The bytes are those of single-threaded faiss IndexFlatL2 searches of `batch` rows at a time (default:
    all rows in one search), for any `threads`.
    """
    n, d = x.shape
    index = faiss.IndexFlatL2(d)
    index.add(np.ascontiguousarray(centroids, dtype=np.float32))
    dist = np.empty((n, 1), dtype=np.float32)
    labels = np.empty((n, 1), dtype=np.int64)
    step = max(n, 1) if batch is None else batch
    parts = threads * TASKS_PER_THREAD if threads > 1 else 1
    ranges = [(b + s, b + e) for b in range(0, n, step) for s, e in search_ranges(min(step, n - b), d, parts)]

    def run(rows: tuple[int, int]) -> None:
        s, e = rows
        index.search(x[s:e], 1, D=dist[s:e], I=labels[s:e])

    if threads <= 1 or len(ranges) <= 1:
        with one_thread():
            for rows in ranges:
                run(rows)
    else:  # each worker's OpenMP (and so OpenBLAS) thread count is its own: 1
        with ThreadPoolExecutor(min(threads, len(ranges)), initializer=faiss.omp_set_num_threads,
                                initargs=(1,)) as pool:
            list(pool.map(run, ranges))
    return dist[:, 0], labels[:, 0]


def rand_perm(n: int, seed: int) -> np.ndarray:
    """faiss.rand_perm: the seeded permutation faiss's k-means samples and initialises with (int32)."""
    perm = np.empty(n, dtype=np.int32)
    faiss.rand_perm(faiss.swig_ptr(perm), n, seed)
    return perm


def compute_centroids(x: np.ndarray, labels: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean of each cluster's rows (zeros when empty) and the counts, as faiss's compute_centroids (float32).

    faiss adds each cluster's rows in row order, starting from 0, then multiplies by 1 / count. Here the rows
    are laid out by rank within their cluster, clusters by size, so step r adds the r-th row of every
    cluster that has one: the same additions in the same order per cluster.
    """
    n, d = x.shape
    counts = np.bincount(labels, minlength=k)
    by_size = np.argsort(-counts, kind="stable")
    slot = np.empty(k, dtype=np.int64)
    slot[by_size] = np.arange(k)
    grouped = np.argsort(labels, kind="stable")
    rank = np.empty(n, dtype=np.int64)
    rank[grouped] = np.arange(n) - np.repeat(np.cumsum(counts) - counts, counts)
    rows = x[np.argsort(rank * k + slot[labels], kind="stable")]
    sizes = counts[by_size]
    sums = np.zeros((k, d), dtype=np.float32)
    off = 0
    for r in range(int(sizes[0]) if k else 0):
        a = int(np.searchsorted(-sizes, -r, side="left"))  # clusters with more than r rows
        sums[:a] += rows[off:off + a]
        off += a
    centroids = np.empty_like(sums)
    centroids[by_size] = sums
    hassign = counts.astype(np.float32)
    live = hassign != 0
    centroids[live] *= (np.float32(1.0) / hassign[live])[:, None]
    return centroids, hassign


class _MT19937Floats:
    """faiss::RandomGenerator(seed).rand_float(): std::mt19937 outputs / float(max), as a stream."""

    def __init__(self, seed: int):
        self._rs = np.random.RandomState(seed)  # legacy seeding is std::mt19937's init_genrand
        self._buf = np.empty(0, dtype=np.float32)
        self._pos = 0

    def take(self, m: int) -> np.ndarray:
        """The next `m` floats, without consuming them (see `skip`)."""
        if self._pos + m > len(self._buf):
            more = self._rs.randint(0, 1 << 32, size=max(m, 65_536), dtype=np.uint32)
            self._buf = np.concatenate([self._buf[self._pos:], more.astype(np.float32) / MT_MAX])
            self._pos = 0
        return self._buf[self._pos:self._pos + m]

    def skip(self, m: int) -> None:
        """Consume `m` floats."""
        self._pos += m


def split_clusters(centroids: np.ndarray, hassign: np.ndarray, n: int) -> int:
    """faiss's split_clusters, in place: each empty cluster copies a donor drawn by size, both nudged apart.

    For each empty cluster in order, donors cj = 0, 1, ... (cycling) are tried with one draw each until
    draw < (count_cj - 1) / (n - k), at most 10 k tries (then the largest cluster); returns the split count.
    """
    k, d = centroids.shape
    rng = _MT19937Floats(1234)
    up = np.where(np.arange(d) % 2 == 0, np.float32(1) + EPS, np.float32(1) - EPS).astype(np.float32)
    down = np.where(np.arange(d) % 2 == 0, np.float32(1) - EPS, np.float32(1) + EPS).astype(np.float32)
    denom = np.float64(np.float32(n - k))
    nsplit = 0
    for ci in np.flatnonzero(hassign == 0):  # a split fills only its own empty cluster and a donor with count > 1
        p = ((hassign.astype(np.float64) - 1.0) / denom).astype(np.float32)
        donor, tries = -1, 0
        while tries < 10 * k:
            draws = rng.take(min(k, 10 * k - tries))
            hit = np.flatnonzero(draws < p[:len(draws)])
            if len(hit):
                donor = int(hit[0])
                rng.skip(donor + 1)
                break
            rng.skip(len(draws))
            tries += len(draws)
        if donor < 0:
            donor = int(np.argmax(hassign))
        centroids[ci] = centroids[donor] * up
        centroids[donor] *= down
        hassign[ci] = hassign[donor] / np.float32(2)
        hassign[donor] -= hassign[ci]
        nsplit += 1
    return nsplit


def train(x: np.ndarray, k: int, niter: int, seed: int, max_points_per_centroid: int,
          init_centroids: np.ndarray | None = None, threads: int = 1) -> tuple[np.ndarray, int]:
    """Centroids (k, d) float32 of faiss.Kmeans(d, k, niter, seed, max_points_per_centroid, min_points_per_centroid=1)
    and the number of iterations it ran (faiss's len(iteration_stats)).

    `x` float32 C-contiguous, finite, with at least k rows; `init_centroids` as faiss.Kmeans.train's.
    """
    n, d = x.shape
    if n < k:
        raise ValueError(f"k-means needs at least k = {k} rows, got {n}")
    sample = x
    if n > k * max_points_per_centroid:
        sample = x[rand_perm(n, seed)[:k * max_points_per_centroid]]
    m = len(sample)
    if m == k:  # faiss's corner case: the first k input rows (of x, not of the sample) are the centroids
        return np.array(x[:k], dtype=np.float32), 1
    if init_centroids is None:
        centroids = sample[rand_perm(m, seed + 1)[:k]]
    else:
        centroids = np.array(init_centroids, dtype=np.float32).reshape(k, d)
    prev, done = None, 0
    for _ in range(niter):
        dist, labels = nearest(sample, centroids, threads)
        obj = np.cumsum(dist, dtype=np.float32)[-1]  # faiss sums the objective in float, row by row
        centroids, hassign = compute_centroids(sample, labels, k)
        split_clusters(centroids, hassign, m)
        done += 1
        if prev is not None and prev != 0 and prev == obj:  # faiss's early stop (threshold 0): unchanged
            break
        prev = obj
    return centroids, done
