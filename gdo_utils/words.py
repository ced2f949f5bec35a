"""Word definitions shared by both methods (a bottom-level module).

* The word token: a run of [A-Za-z0-9_] (GDO_METHOD.md section 3, SC; section 5 lengths). One definition
  for every place that counts or compares words (pool report, plots, SC, coverage features);
  `word_counts` counts the same tokens over a whole Arrow column with a byte lookup instead of a
  regex per row (the pool report and the subsets' strata), tested against the regex.
* The temporal word list (section 3, TNC regex mode; section 5, temporal category): one list and one
  matching rule, Python `re` with IGNORECASE and `\b` boundaries as in the release. `temporal_mask`
  answers a whole column: ASCII strings go through Arrow's regex kernel (where RE2 and Python `re`
  agree), the others through Python `re`, so million-row columns stay fast and every row gets the
  release's answer (e.g. "firſt" matches "first" case-insensitively only under Python's Unicode rules).
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

WORD_TOKEN = r"[A-Za-z0-9_]+"
WORD_TOKEN_RE = re.compile(WORD_TOKEN)


_WORD = np.zeros(256, dtype=bool)
_WORD[np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_", dtype=np.uint8)] = True

def is_word_byte(data: np.ndarray) -> np.ndarray:
    """True for the bytes of [A-Za-z0-9_] (uint8 arithmetic: faster than a lookup table on 10^8 bytes)."""
    w = (data | 32) - 97 < 26          # letters (uint8 wrap-around keeps everything else >= 26)
    w |= data - 48 < 10                # digits
    w |= data == 95                    # underscore
    return w


def as_arrow(values: pd.Series | pa.Array | pa.ChunkedArray | list) -> pa.LargeStringArray:
    """One contiguous large_string array (nulls become empty strings)."""
    arr = values if isinstance(values, (pa.Array, pa.ChunkedArray)) else pa.array(values, type=pa.large_string())
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks else pa.array([], type=pa.large_string())
    if arr.type != pa.large_string():
        arr = arr.cast(pa.large_string())
    if arr.null_count:
        arr = pc.fill_null(arr, "")
    return arr


def _offsets_and_bytes(arr: pa.LargeStringArray) -> tuple[np.ndarray, np.ndarray]:
    """(offsets rebased to 0, the string bytes they index) of a large_string array, zero-copy."""
    _, off_buf, data_buf = arr.buffers()
    off = np.frombuffer(off_buf, dtype=np.int64, count=len(arr) + 1, offset=arr.offset * 8)
    data = np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.zeros(0, np.uint8)
    return off - off[0], data[off[0]:off[-1]]


CHUNK_ROWS = 1 << 16   # rows per vectorised pass: bounds the temporary arrays (~10x the text bytes)


def _chunked(fn, arr: pa.LargeStringArray) -> tuple[np.ndarray, ...]:
    """Apply a per-chunk statistic to row slices of `arr` and concatenate each output."""
    parts = [fn(arr.slice(i, CHUNK_ROWS)) for i in range(0, len(arr), CHUNK_ROWS)] or [fn(arr)]
    return tuple(np.concatenate([p[k] for p in parts]) for k in range(len(parts[0])))


def word_counts(values: pd.Series | pa.Array | pa.ChunkedArray | list) -> np.ndarray:
    """Number of ``[A-Za-z0-9_]+`` tokens per string (int64), vectorised over the byte buffer."""
    return _chunked(lambda a: (_word_counts(a),), as_arrow(values))[0]


def _word_counts(arr: pa.LargeStringArray) -> np.ndarray:
    n = len(arr)
    if n == 0:
        return np.zeros(0, np.int64)
    off, data = _offsets_and_bytes(arr)
    if len(data) == 0:
        return np.zeros(n, np.int64)
    w = is_word_byte(data)
    start = np.empty_like(w)
    start[0] = w[0]
    np.greater(w[1:], w[:-1], out=start[1:])
    first = off[:-1][off[:-1] < len(data)]      # a token starting a string starts a token
    start[first] = w[first]
    pos = np.flatnonzero(start)
    return np.diff(np.searchsorted(pos, off)).astype(np.int64)


def word_tokens(text: str | None) -> set[str]:
    """Lowercase word-token set of a text (None -> empty set)."""
    if not text:
        return set()
    return {t.lower() for t in WORD_TOKEN_RE.findall(str(text))}


def count_words(texts: pd.Series) -> pd.Series:
    """Number of word tokens of each string of a column."""
    return texts.str.count(WORD_TOKEN)


TEMPORAL_WORDS: tuple[str, ...] = (
    "before", "after", "then", "while", "during", "first", "next", "finally", "sequence", "later",
    "earlier", "transition", "happen",
)
TEMPORAL_REGEX = r"\b(?:" + "|".join(TEMPORAL_WORDS) + r")\b"
TEMPORAL_PATTERN: re.Pattern[str] = re.compile(TEMPORAL_REGEX, re.IGNORECASE)


def has_temporal_word(text: str | None) -> bool:
    """True when the text holds one of TEMPORAL_WORDS as a whole word, any case (None -> False)."""
    return bool(text) and TEMPORAL_PATTERN.search(str(text)) is not None


def temporal_mask(texts: pd.Series | pa.Array | pa.ChunkedArray | list) -> np.ndarray:
    """`has_temporal_word` of every string of a column (nulls -> False), vectorised for ASCII strings."""
    arr = texts if isinstance(texts, (pa.Array, pa.ChunkedArray)) else pa.array(
        pd.Series(texts, dtype=object), type=pa.large_string(), from_pandas=True)
    arr = pc.fill_null(arr.cast(pa.large_string()), "")
    out = pc.match_substring_regex(arr, TEMPORAL_REGEX, ignore_case=True).to_numpy(zero_copy_only=False)
    out = np.asarray(out, dtype=bool).copy()
    non_ascii = ~np.asarray(pc.string_is_ascii(arr).to_numpy(zero_copy_only=False), dtype=bool)
    if non_ascii.any():
        rows = np.flatnonzero(non_ascii)
        vals = arr.take(pa.array(rows)).to_pylist()
        out[rows] = [has_temporal_word(v) for v in vals]
    return out
