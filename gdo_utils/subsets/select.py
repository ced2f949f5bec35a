"""Greedy fill of a goal preset: the six stages and the take conditions (GDO_METHOD.md section 5).

Everything heavy is vectorised once (sorting by (score, tie), per-stratum top-cap candidates, integer
codes for text hashes and videos). The stage loops then walk pre-ordered integer lists and stop as soon
as their floor, quota or the target is met, so they touch only the candidates they consider, never the
whole pool row by row with pandas.

Take conditions (every stage): the row is not taken yet (qa_uid new; qa_uids are unique in the pool),
its text key question + "|||" + answer is new (the dedup the release does with sha1 of that string;
the kit compares the text itself through an integer code, which is the same test without hashing a
million strings), the subset's video total is below max_video when the row is a video, and its video
has fewer than `per_video_cap` taken QAs (the caller's video codes decide which rows the cap counts:
`subsets.per_video_cap_on`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

STAGES = ("temporal_video_floor", "video_floor", "source_group_floors", "stratum_quotas", "global_fill",
          "uniform_fallback")


def score_order(score: np.ndarray, tie: np.ndarray) -> np.ndarray:
    """Row indices by decreasing (score, tie): two stable argsorts (faster than lexsort on 10^6 floats)."""
    by_tie = np.argsort(-np.asarray(tie, dtype=float), kind="stable")
    return by_tie[np.argsort(-np.asarray(score, dtype=float)[by_tie], kind="stable")]


def top_per_group(order: np.ndarray, group: np.ndarray, caps: np.ndarray) -> np.ndarray:
    """Rows of `order` (already in preference order) kept while their group's rank < caps[group]."""
    g = group[order]
    by_group = np.argsort(g, kind="stable")           # stable: keeps preference order inside a group
    g_sorted = g[by_group]
    starts = np.searchsorted(g_sorted, g_sorted, side="left")
    rank = np.empty(len(order), dtype=np.int64)
    rank[by_group] = np.arange(len(order)) - starts
    return order[rank < caps[g]]


@dataclass
class Picker:
    """Stateful greedy taker shared by the stages of one subset (or by the uniform draw)."""

    text_code: np.ndarray
    video_code: np.ndarray
    is_video: np.ndarray
    per_video_cap: int
    max_video: int
    target: int
    dedup: bool = True
    taken_mask: np.ndarray = field(init=False)
    picks: list = field(default_factory=list)
    stage_of: list = field(default_factory=list)
    n_video: int = 0

    def __post_init__(self) -> None:
        n = len(self.text_code)
        self.taken_mask = np.zeros(n, dtype=bool)
        self._seen = bytearray(int(self.text_code.max()) + 1 if n else 0)
        self._vcount = [0] * (int(self.video_code.max()) + 1 if n else 0)

    @property
    def total(self) -> int:
        return len(self.picks)

    def open_rows(self, rows: np.ndarray) -> np.ndarray:
        """Rows that are not taken and (with dedup) whose text is not taken: a vectorised pre-filter."""
        rows = rows[~self.taken_mask[rows]]
        if self.dedup and len(rows) and self.total:
            seen = np.frombuffer(self._seen, dtype=np.uint8)
            rows = rows[seen[self.text_code[rows]] == 0]
        return rows

    def take(self, rows: np.ndarray, stage: str, *, limit: int | None = None, key: np.ndarray | None = None,
             need: list[int] | None = None, chunk: int = 1 << 15) -> int:
        """Walk `rows` in order and take each row that passes the take conditions.

        limit: stop after `limit` rows were taken; key/need: take a row only while need[key[row]] > 0
        (decremented on take); the walk always stops at the target size. Rows are walked in chunks;
        before each chunk, rows that can no longer be taken (their key's need is met, or they are videos
        once max_video is reached) are dropped with numpy. Returns the number of rows taken.
        """
        rows = self.open_rows(np.asarray(rows, dtype=np.int64))
        state = {"got": 0, "limit": limit, "room": self.target - self.total,
                 "need_left": sum(n for n in need if n > 0) if need is not None else None}
        if state["room"] <= 0 or len(rows) == 0 or (limit is not None and limit <= 0) or state["need_left"] == 0:
            return 0
        for start in range(0, len(rows), chunk):
            part = rows[start:start + chunk]
            if key is not None:
                part = part[np.asarray(need)[key[part]] > 0]
            if self.n_video >= self.max_video:
                part = part[~self.is_video[part]]
            if len(part) and self._walk(part, stage, key, need, state):
                break
        if state["got"]:
            self.taken_mask[np.asarray(self.picks[len(self.picks) - state["got"]:], dtype=np.int64)] = True
        return state["got"]

    def _walk(self, rows: np.ndarray, stage: str, key: np.ndarray | None, need: list[int] | None, state: dict) -> bool:
        """The Python loop over one chunk; returns True when the stage is done (limit, needs or target)."""
        txt = self.text_code[rows].tolist()
        vid = self.video_code[rows].tolist()
        isv = self.is_video[rows].tolist()
        keys = key[rows].tolist() if key is not None else None
        seen, vcount, cap, dedup = self._seen, self._vcount, self.per_video_cap, self.dedup
        n_video, max_video = self.n_video, self.max_video
        picks, stages = self.picks, self.stage_of
        got, room, remaining, need_left = state["got"], state["room"], state["limit"], state["need_left"]
        done = False
        for j, r in enumerate(rows.tolist()):
            if keys is not None and need[keys[j]] <= 0:
                continue
            if dedup and seen[txt[j]]:
                continue
            v = vid[j]
            if vcount[v] >= cap:
                continue
            if isv[j]:
                if n_video >= max_video:
                    continue
                n_video += 1
            vcount[v] += 1
            seen[txt[j]] = 1
            picks.append(r)
            stages.append(stage)
            got += 1
            if keys is not None:
                need[keys[j]] -= 1
                need_left -= 1
                if need_left <= 0:
                    done = True
                    break
            if remaining is not None:
                remaining -= 1
                if remaining <= 0:
                    done = True
                    break
            if got >= room:
                done = True
                break
        self.n_video = n_video
        state.update(got=got, limit=remaining, need_left=need_left)
        return done

    def selected(self) -> np.ndarray:
        """Taken rows in pick order."""
        return np.asarray(self.picks, dtype=np.int64)
