"""The word token of both methods: a run of [A-Za-z0-9_] (GDO_METHOD.md section 3, SC; section 5 lengths).

One definition for every place that counts or compares words (pool report, plots, SC, coverage
features); `gdo_utils.subsets.text` counts the same tokens with a byte-level fast path for million-row
tables, tested against this pattern.
"""
from __future__ import annotations

import re

import pandas as pd

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
