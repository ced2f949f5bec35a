"""The GDO release's random stream and per-stratum candidate lists, for the release behaviour options.

The release (gdo/build_pair.py) reads the pool once, row by row in file order, with one
`random.Random(seed)` generator: each row draws its tie number (`random()`), then, once the uniform
reservoir holds its cap rows, one `randint(1, i)` for reservoir sampling (Algorithm R); after the last
row the reservoir copy is shuffled (`shuffle`) for the uniform baseline. Because the draws interleave,
the tie numbers depend on the reservoir cap, i.e. on the uniform size of the profile being built.
`release_stream` replays that stream with the standard library's generator (same algorithm, same
draws), so ties, reservoir and shuffled order equal the release's for the same seed.

Per-stratum candidates (`stream_candidates`, option `candidate_ties: stream`): the release keeps each
stratum's best rows in a bounded min-heap of (score, tie) while reading, and a new row replaces the
heap's lowest only when its *score* is strictly higher. Every row scoring above the stratum's cap-th
highest score t is kept and none below it; which rows scoring exactly t are kept depends on the reading
order, so only those boundary rows are replayed through a heap (rows below t never change which rows at
t survive: they leave the heap before any row at t does).
"""
from __future__ import annotations

import heapq
import math
import random
from dataclasses import dataclass

import numpy as np

RANDOM_OVERSAMPLE = 1.35  # the release's --random-oversample-factor default (reservoir = 1.35 x uniform size)


@dataclass(frozen=True)
class ReleaseStream:
    """Tie number per pool row, the reservoir rows (reservoir order) and their shuffled order."""

    ties: np.ndarray
    reservoir: np.ndarray
    shuffled: np.ndarray
    uniform_count: int
    reservoir_cap: int


def reservoir_cap(uniform_count: int) -> int:
    """The release's reservoir size: max(count, ceil(count * 1.35)) (0 when no uniform baseline)."""
    if uniform_count <= 0:
        return 0
    return max(uniform_count, int(math.ceil(uniform_count * max(1.0, RANDOM_OVERSAMPLE))))


def _randbelow(bits, m: int) -> int:
    """random.Random._randbelow(m) over the generator's `getrandbits`: k = m.bit_length() bits, redrawn while >= m."""
    k = m.bit_length()
    r = bits(k)
    while r >= m:
        r = bits(k)
    return r


def release_stream(n: int, seed: int, uniform_count: int) -> ReleaseStream:
    """Replay the release's random stream over `n` rows in file order (ties, reservoir, shuffle).

    `randint(1, m)` is `1 + _randbelow(m)` and `shuffle` swaps with `_randbelow(i + 1)`; both are written over
    `getrandbits` so a million rows do not pay randint's argument checks; tests compare the draws with
    `random.Random`'s own methods."""
    rng = random.Random(seed)
    cap = reservoir_cap(uniform_count)
    head = min(n, cap)
    draw, bits = rng.random, rng.getrandbits
    ties = [draw() for _ in range(head)]     # rows filling the reservoir draw no index
    res = list(range(head))
    for i in range(head, n):
        ties.append(draw())
        r = _randbelow(bits, i + 1)          # randint(1, i + 1) - 1
        if r < cap:
            res[r] = i
    shuffled = list(res)
    for i in range(len(shuffled) - 1, 0, -1):   # random.shuffle
        j = _randbelow(bits, i + 1)
        shuffled[i], shuffled[j] = shuffled[j], shuffled[i]
    return ReleaseStream(ties=np.asarray(ties, dtype=np.float64), reservoir=np.asarray(res, dtype=np.int64),
                         shuffled=np.asarray(shuffled, dtype=np.int64), uniform_count=int(uniform_count),
                         reservoir_cap=cap)


def stream_candidates(order: np.ndarray, stratum: np.ndarray, caps: np.ndarray, score: np.ndarray,
                      tie: np.ndarray) -> np.ndarray:
    """The rows of `order` (score order) the release's per-stratum heaps keep, still in score order."""
    order = np.asarray(order, dtype=np.int64)
    g = stratum[order]
    by_group = np.argsort(g, kind="stable")
    g_sorted = g[by_group]
    starts = np.searchsorted(g_sorted, g_sorted, side="left")
    rank = np.empty(len(order), dtype=np.int64)
    rank[by_group] = np.arange(len(order)) - starts
    cap_of = caps[g]
    keep = rank < cap_of
    # boundary score t of each stratum = the score of its last kept row (rank cap-1)
    n_strata = len(caps)
    t = np.full(n_strata, np.inf)
    last = keep & (rank == cap_of - 1)
    t[g[last]] = score[order[last]]
    s = score[order]
    at_t = s == t[g]
    # strata where rows at t exist beyond the cap: the kept set among them follows the reading order
    spill = np.zeros(n_strata, dtype=bool)
    spill[g[at_t & ~keep]] = True
    if not spill.any():
        return order[keep]
    keep &= ~(spill[g] & at_t)          # rows at t of spilling strata are decided by the replay below
    involved = spill[g] & (s >= t[g])   # the rows a replay needs: every row >= t of a spilling stratum
    pos = np.flatnonzero(involved)
    pos = pos[np.argsort(g[pos], kind="stable")]
    bounds = np.searchsorted(g[pos], np.flatnonzero(spill).tolist() + [n_strata], side="left")
    kept: list[np.ndarray] = []
    for j, k in enumerate(np.flatnonzero(spill).tolist()):
        p = pos[bounds[j]:bounds[j + 1]]
        above = s[p] > t[k]
        kept.append(_replay_heap(order[p[above]], order[p[~above]], int(caps[k]), score, tie))
    kept_rows = np.concatenate(kept) if kept else np.zeros(0, np.int64)
    keep[np.isin(order, kept_rows)] = True
    return order[keep]


def _replay_heap(rows_above: np.ndarray, rows_at: np.ndarray, cap: int, score: np.ndarray,
                 tie: np.ndarray) -> np.ndarray:
    """Rows at the boundary score a bounded heap keeps when fed every row >= t in reading (row) order."""
    rows = np.sort(np.concatenate([rows_above, rows_at]))
    heap: list[tuple[float, float, int]] = []
    for r in rows.tolist():
        key = (float(score[r]), float(tie[r]), r)
        if len(heap) < cap:
            heapq.heappush(heap, key)
        elif key[0] > heap[0][0]:
            heapq.heapreplace(heap, key)
    above = set(rows_above.tolist())
    return np.asarray([r for _, _, r in heap if r not in above], dtype=np.int64)
