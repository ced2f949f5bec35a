"""Stratum fields of every candidate (GDO_METHOD.md section 5) and the combined stratum key.

Fields (the key is ``bucket|duration|temporal|form|q_len|a_len|source_group``):

* duration by frame count: <=1 image, <=8 very_short, <=24 short, <=64 medium, <=160 long, else very_long.
  The spec counts ``n_frames`` (after the T=32 subsampling, so medium and longer never occur); the option
  ``duration_frames="n_frames_total"`` counts the original frames instead.
* temporal category: non-video rows are Static; a video row is Temporal when the temporal regex matches
  its question, else Mixed (release behaviour, ``temporal_category="regex"``); with
  ``temporal_category="tnc"`` a video is Temporal when its TNC descriptor is >= 0.5 (a missing TNC falls
  back to the regex and is counted in ``Strata.notes``).
* question form: MCQ when the question mentions "choice(s)" or has an option line "A." / "A)" / "(A)".
  ``mcq_detection="after_collapse"`` reproduces the release: it looks for newline-prefixed option lines in
  the whitespace-collapsed question, which has no newlines, so only the "choice" words ever fire.
  ``"before_collapse"`` looks for option lines in ``question_raw`` (the text before collapsing).
* q-length / a-length buckets over word tokens: q <=6, <=14, <=30, <=60, more; a <=2, <=8, <=24, <=64, more.
* source group: the pool's ``source_group`` column (text before "(", else the first four "_" parts).
"""
from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..words import temporal_mask
from .text import answer_token_stats, as_arrow, sorted_codes, word_counts

log = logging.getLogger(__name__)

TemporalMode = Literal["regex", "tnc"]
McqMode = Literal["before_collapse", "after_collapse"]
DurationFrames = Literal["n_frames", "n_frames_total"]

CHOICE_RE = r"\bchoices?\b"                                           # used with ignore_case=True
OPTION_LINE_RE = r"(?m)^[ \t]*\(?[A-H][.)](?:[ \t]|$)"               # before_collapse, on question_raw
RELEASE_OPTION_RE = r"\n[ \t]*\(?[A-H][.)]"                           # after_collapse, on question (never matches)

DURATION_EDGES = (1, 8, 24, 64, 160)
DURATION_LABELS = ("image", "very_short", "short", "medium", "long", "very_long")
Q_LEN_EDGES = (6, 14, 30, 60)
Q_LEN_LABELS = ("q<=6", "q<=14", "q<=30", "q<=60", "q>60")
A_LEN_EDGES = (2, 8, 24, 64)
A_LEN_LABELS = ("a<=2", "a<=8", "a<=24", "a<=64", "a>64")
TEMPORAL_LABELS = ("Static", "Mixed", "Temporal")
FORM_LABELS = ("Open", "MCQ")
VIDEO_BUCKET = "short_video"

STRATA_FIELDS = ("bucket", "duration", "temporal", "form", "q_len", "a_len", "source_group")
ALIGNMENT_FIELDS = ("duration", "temporal", "form", "q_len", "a_len", "source_group")


@dataclass
class Strata:
    """Per-row stratum fields (categoricals), the stratum id per row and per-stratum labels and counts."""

    fields: pd.DataFrame
    stratum: np.ndarray
    labels: list[str]
    counts: np.ndarray
    q_words: np.ndarray
    a_words: np.ndarray
    a_distinct: np.ndarray
    is_video: np.ndarray
    notes: dict = field(default_factory=dict)
    alignment_fields: tuple[str, ...] = ALIGNMENT_FIELDS

    @property
    def n_strata(self) -> int:
        """Number of non-empty strata."""
        return len(self.labels)

    def first_seen(self) -> np.ndarray:
        """Stratum ids in order of first appearance in the table (the release's dict order: file order)."""
        return first_seen_order(self.stratum, self.n_strata)


def first_seen_order(codes: np.ndarray, n_codes: int) -> np.ndarray:
    """Codes 0..n_codes-1 ordered by their first row in `codes` (codes that never occur go last)."""
    first = np.full(n_codes, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first, np.asarray(codes, dtype=np.int64), np.arange(len(codes), dtype=np.int64))
    return np.argsort(first, kind="stable")


def _bin(values: np.ndarray, edges: tuple[int, ...], labels: tuple[str, ...]) -> pd.Categorical:
    """Bucket ``values`` by inclusive upper edges (<= edge) into ordered categorical labels."""
    codes = np.searchsorted(np.asarray(edges), values, side="left")
    return pd.Categorical.from_codes(codes.astype(np.int8), categories=list(labels))


def _require(table: pd.DataFrame, cols: list[str], what: str) -> None:
    """Error naming the missing columns."""
    missing = [c for c in cols if c not in table.columns]
    if missing:
        raise ValueError(f"{what}: the QA table lacks column(s) {missing}")


def temporal_match(questions: pd.Series) -> np.ndarray:
    """True where the question contains one of the temporal words (gdo_utils.words, the TNC regex's list)."""
    return temporal_mask(as_arrow(questions))


def mcq_mask(table: pd.DataFrame, mode: McqMode) -> np.ndarray:
    """Question form MCQ per row under the named detection option (see the module docstring)."""
    q = as_arrow(table["question"])
    mcq = pc.match_substring_regex(q, CHOICE_RE, ignore_case=True)
    if mode == "before_collapse":
        _require(table, ["question_raw"], "mcq_detection=before_collapse")
        opt = pc.match_substring_regex(as_arrow(table["question_raw"]), OPTION_LINE_RE)
    elif mode == "after_collapse":
        opt = pc.match_substring_regex(q, RELEASE_OPTION_RE)
    else:
        raise ValueError(f"mcq_detection must be before_collapse or after_collapse, got {mode!r}")
    return pc.or_(mcq, opt).to_numpy(zero_copy_only=False)


def temporal_categories(table: pd.DataFrame, is_video: np.ndarray, mode: TemporalMode,
                        tnc: np.ndarray | None = None) -> tuple[np.ndarray, dict]:
    """Codes into TEMPORAL_LABELS (0 Static, 1 Mixed, 2 Temporal) and notes (TNC fallbacks)."""
    regex = np.zeros(len(is_video), dtype=bool)   # only video rows have a temporal category: match only those
    if is_video.any():
        regex[is_video] = temporal_match(as_arrow(table["question"]).filter(pa.array(is_video)))
    notes: dict = {"temporal_category": mode}
    if mode == "regex":
        temporal = regex
    elif mode == "tnc":
        if tnc is None:
            raise ValueError("temporal_category=tnc needs the descriptors' 'tnc' column")
        tnc = np.asarray(tnc, dtype=float)
        missing = np.isnan(tnc) & is_video
        temporal = np.where(np.isnan(tnc), regex, tnc >= 0.5)
        notes["tnc_missing_videos_regex_fallback"] = int(missing.sum())
        if missing.any():
            log.warning("temporal_category=tnc: %d video rows without TNC use the regex instead", int(missing.sum()))
    else:
        raise ValueError(f"temporal_category must be regex or tnc, got {mode!r}")
    codes = np.where(is_video, np.where(temporal, 2, 1), 0).astype(np.int8)
    return codes, notes


def compute_strata(table: pd.DataFrame, *, temporal_category: TemporalMode = "regex",
                   mcq_detection: McqMode = "after_collapse", tnc: np.ndarray | None = None,
                   duration_frames: DurationFrames = "n_frames") -> Strata:
    """Every stratum field for every row, the stratum ids and the per-stratum pool counts."""
    _require(table, ["bucket", "question", "answer", "source_group", duration_frames], "strata")
    n = len(table)
    bucket_codes, bucket_labels = sorted_codes(table["bucket"])
    is_video = bucket_codes == bucket_labels.index(VIDEO_BUCKET) if VIDEO_BUCKET in bucket_labels else np.zeros(n, bool)
    frames = table[duration_frames].to_numpy()
    if pd.isna(frames).any():
        raise ValueError(f"strata: column {duration_frames!r} has {int(pd.isna(frames).sum())} null value(s)")
    # Arrow and numpy release the GIL: the text passes run on two threads.
    with ThreadPoolExecutor(max_workers=2) as pool:
        f_answer = pool.submit(answer_token_stats, table["answer"])
        f_form = pool.submit(mcq_mask, table, mcq_detection)
        q_words = word_counts(table["question"])
        temporal, notes = temporal_categories(table, is_video, temporal_category, tnc)
        a_words, a_distinct = f_answer.result()
        form = f_form.result()
    notes["mcq_detection"] = mcq_detection
    notes["duration_frames"] = duration_frames
    fields = pd.DataFrame({
        "bucket": pd.Categorical.from_codes(bucket_codes, categories=bucket_labels),
        "duration": _bin(frames.astype(np.int64), DURATION_EDGES, DURATION_LABELS),
        "temporal": pd.Categorical.from_codes(temporal, categories=list(TEMPORAL_LABELS)),
        "form": pd.Categorical.from_codes(form.astype(np.int8), categories=list(FORM_LABELS)),
        "q_len": _bin(q_words, Q_LEN_EDGES, Q_LEN_LABELS),
        "a_len": _bin(a_words, A_LEN_EDGES, A_LEN_LABELS),
        "source_group": _sorted_categorical(table["source_group"]),
    })
    stratum, labels, counts = combine_fields(fields, list(STRATA_FIELDS))
    return Strata(fields=fields, stratum=stratum, labels=labels, counts=counts, q_words=q_words,
                  a_words=a_words, a_distinct=a_distinct, is_video=is_video, notes=notes)


def _sorted_categorical(values: pd.Series) -> pd.Categorical:
    """A categorical with sorted categories (deterministic codes whatever the row order)."""
    codes, labels = sorted_codes(values)
    return pd.Categorical.from_codes(codes, categories=labels)


def combine_fields(fields: pd.DataFrame, names: list[str]) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Mixed-radix combination of categorical codes -> (id per row, "a|b|..." label per id, count per id)."""
    n = len(fields)
    key = np.zeros(n, dtype=np.int64)
    radix = []
    for name in names:
        cat = fields[name].cat
        size = max(1, len(cat.categories))
        key = key * size + cat.codes.to_numpy().astype(np.int64)
        radix.append(size)
    uniq, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
    labels = []
    cats = [list(fields[name].cat.categories) for name in names]
    for k in uniq.tolist():
        parts = []
        for size, cat in zip(reversed(radix), reversed(cats)):
            parts.append(str(cat[k % size]) if cat else "")
            k //= size
        labels.append("|".join(reversed(parts)))
    return inverse.astype(np.int64).reshape(-1), labels, counts.astype(np.int64)
