"""Word definitions shared by both methods (a bottom-level module).

* The word token: a run of [A-Za-z0-9_] (GDO_METHOD.md section 3, SC; section 5 lengths). One definition
  for every place that counts or compares words (pool report, plots, SC, coverage features);
  `gdo_utils.subsets.text` counts the same tokens with a byte-level fast path, tested against it.
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
