"""TNC (temporal necessity / temporal demand) descriptor, GDO_METHOD.md section 3.3.

Two modes:
- "regex": 1.0 when the question contains one of TEMPORAL_WORDS (gdo_utils.words, the one list the
  subsets' temporal category also uses) as a whole word (case-insensitive),
  else 0.0. Whole word means regex word boundaries: "then" matches "Then," but not "thenceforth",
  and inflections ("happens", "happened") do not match "happen", exactly as the word list reads.
- "llm": the backbone, text only, is asked TNC_PROMPT_TEMPLATE (the release's wording) and answers one word (greedy, <= 3 new
  tokens); `parse_tnc_reply` maps the reply to 1.0 / 0.0 / 0.5.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

from ..words import TEMPORAL_PATTERN, TEMPORAL_WORDS, has_temporal_word, temporal_mask  # noqa: F401 - one list

# The release's prompt, verbatim (gdo/extract_six_metrics.py, tnc_llm), sent as one text-only user turn.
TNC_PROMPT_TEMPLATE = (
    "Decide if the question requires temporal reasoning over multiple frames.\n"
    "Answer only one word: Temporal or Static.\n"
    "Question: {question}"
)
TNC_TEMPORAL, TNC_STATIC, TNC_UNSURE = 1.0, 0.0, 0.5
_REPLY_PATTERN = re.compile(r"temporal|static", re.IGNORECASE)


def tnc_regex(question: str | None) -> float:
    """Regex TNC of one question: 1.0 if it holds a temporal word (whole word, any case), else 0.0."""
    return 1.0 if has_temporal_word(question) else 0.0


def tnc_regex_series(questions: pd.Series) -> np.ndarray:
    """Vectorised regex TNC over a column of questions -> float64 array of 1.0 / 0.0 (None/NaN -> 0.0)."""
    return temporal_mask(questions).astype(np.float64)


def parse_tnc_reply(text: str | None, rule: str = "containment") -> float:
    """Map the model's one-word reply to TNC: "temporal" -> 1.0, "static" -> 0.0, anything else 0.5.

    Case-insensitive substring match, so "Temporal.", "TEMPORAL" and "temporally" count. When both
    words occur (e.g. "Static, not temporal"): rule "containment" (the release: "temporal" is tested
    first, so Temporal wins) or "first_word" (the kit's option: the word that comes first is the answer,
    later words are commentary). For the usual <= 3-token reply the two agree.
    """
    if not text:
        return TNC_UNSURE
    low = str(text).lower()
    if rule == "containment":
        return TNC_TEMPORAL if "temporal" in low else TNC_STATIC if "static" in low else TNC_UNSURE
    if rule != "first_word":
        raise ValueError(f"unknown TNC reply rule {rule!r} (containment | first_word)")
    m = _REPLY_PATTERN.search(low)
    if m is None:
        return TNC_UNSURE
    return TNC_TEMPORAL if m.group(0) == "temporal" else TNC_STATIC
