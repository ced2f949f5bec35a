"""GQA testdev-balanced: the official questions JSON, exact match after lmms-eval's normalisation.

File: `testdev_balanced_questions.json`, qid -> {imageId, question, answer, types: {structural,
semantic, detailed}, ...}; images `images/<imageId>.jpg`. Prompt: question + post-prompt.
Metric (lmms-eval `exact_match`, ignore_case + ignore_punctuation): the reply and the answer lower
cased, every `string.punctuation` character removed, surrounding whitespace stripped, then equal.
"""
from __future__ import annotations

import string
from pathlib import Path

import pandas as pd

from .base import (
    ImageQuestion,
    MetricRow,
    image_file,
    pct,
    read_json_file,
    require,
)

NAME = "gqa"
LMMS_TASK = "gqa"
POST_PROMPT = "\nAnswer the question using a single word or phrase."
_PUNCT = str.maketrans("", "", string.punctuation)


def normalize(text: str) -> str:
    return text.lower().translate(_PUNCT).strip()


def load(path: str | Path, image_root: str | Path | None = None) -> list[ImageQuestion]:
    """Every question of an official GQA questions file (images under `<dir>/images` by default)."""
    path = Path(path)
    data = read_json_file(path)
    root = Path(image_root) if image_root else path.parent / "images"
    out = []
    for qid in sorted(data):
        rec = data[qid]
        img = image_file(root, f"{require(rec, 'imageId', path, None)}.jpg", path, None, f"{qid}.imageId")
        types = rec.get("types") or {}
        out.append(ImageQuestion(NAME, str(qid), str(require(rec, "question", path, None)) + POST_PROMPT,
                                 str(require(rec, "answer", path, None)), subtask=str(types.get("structural", "")),
                                 image_path=img))
    return out


def score_reply(q: ImageQuestion, reply: str) -> tuple[str, float]:
    parsed = normalize(reply)
    return parsed, float(parsed == normalize(str(q.gold)))


def aggregate(log: pd.DataFrame) -> list[MetricRow]:
    """Exact-match accuracy overall and per structural type."""
    rows = [MetricRow("overall", "", pct(log["score"].mean()), len(log))]
    rows += [MetricRow("question_type", str(t), pct(p["score"].mean()), len(p))
             for t, p in log.groupby("subtask", sort=True) if t]
    return rows
