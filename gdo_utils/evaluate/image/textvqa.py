"""TextVQA val: the official `TextVQA_0.5.1_val.json`, VQA soft accuracy with the EvalAI normalisation.

File: {"data": [{question_id, question, image_id, answers: [10 str], ...}]}; images
`train_images/<image_id>.jpg` (val images live in the train folder). Prompt (lmms-eval 0.5.0
`textvqa_doc_to_text`, no OCR tokens): `question.capitalize()` + post-prompt. Metric:
`vqa_metric.soft_accuracy` with the `textvqa` normalisation.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from .base import (
    BenchmarkFormatError,
    ImageQuestion,
    MetricRow,
    image_file,
    pct,
    read_json_file,
    require,
)
from .vqa_metric import normalize_answer, soft_accuracy

NAME = "textvqa"
LMMS_TASK = "textvqa_val"
POST_PROMPT = "\nAnswer the question using a single word or phrase."


def load(path: str | Path, image_root: str | Path | None = None) -> list[ImageQuestion]:
    path = Path(path)
    data = read_json_file(path)
    root = Path(image_root) if image_root else path.parent / "train_images"
    out = []
    for i, rec in enumerate(require(data, "data", path, None)):
        answers = require(rec, "answers", path, None)
        if not answers:
            raise BenchmarkFormatError(path, None, f"data[{i}].answers", "empty")
        img = image_file(root, f"{require(rec, 'image_id', path, None)}.jpg", path, None, f"data[{i}].image_id")
        out.append(ImageQuestion(NAME, str(require(rec, "question_id", path, None)),
                                 str(require(rec, "question", path, None)).capitalize() + POST_PROMPT,
                                 tuple(str(a) for a in answers), image_path=img))
    return out


def score_reply(q: ImageQuestion, reply: str) -> tuple[str, float]:
    return normalize_answer(reply, "textvqa"), soft_accuracy(reply, q.gold, "textvqa")


def aggregate(log: pd.DataFrame) -> list[MetricRow]:
    return [MetricRow("overall", "", pct(log["score"].mean()), len(log))]
