"""VQAv2 val: the official questions + annotations JSON files, VQA soft accuracy.

Files: `v2_OpenEnded_mscoco_val2014_questions.json` ({"questions": [{image_id, question,
question_id}]}) and `v2_mscoco_val2014_annotations.json` ({"annotations": [{question_id, image_id,
answer_type, question_type, answers: [{answer, answer_confidence, answer_id} x 10], ...}]}); images
`COCO_val2014_<image_id:012d>.jpg`. Prompt: question + post-prompt. Metric: `vqa_metric.soft_accuracy`
with the `vqav2` normalisation (lmms-eval `vqav2_process_results`), per question in [0, 1].
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

NAME = "vqav2"
LMMS_TASK = "vqav2_val"
POST_PROMPT = "\nAnswer the question using a single word or phrase."
IMAGE_NAME = "COCO_val2014_{:012d}.jpg"


def _read(path: Path, key: str) -> list[dict]:
    data = read_json_file(path)
    return require(data, key, path, None)


def locate(questions: str | Path) -> tuple[Path, Path]:
    """(questions file, annotations file): a folder holding both, or the questions file (annotations named after it)."""
    q = Path(questions)
    if q.is_dir():
        qs, ans = sorted(q.glob("*questions*.json")), sorted(q.glob("*annotations*.json"))
        if len(qs) != 1 or len(ans) != 1:
            raise BenchmarkFormatError(q, None, "<folder>", "expected one *questions*.json and one *annotations*.json")
        return qs[0], ans[0]
    a = q.with_name(q.name.replace("OpenEnded_", "").replace("questions", "annotations"))
    if a == q or not a.is_file():
        raise BenchmarkFormatError(q, None, "<annotations>", f"annotations file not found beside it (looked for {a.name})")
    return q, a


def load(questions: str | Path, image_root: str | Path, annotations: str | Path | None = None,
         image_name: str = IMAGE_NAME) -> list[ImageQuestion]:
    """Questions joined with their ten human answers (a question without annotations is an error)."""
    qpath, apath = (Path(questions), Path(annotations)) if annotations else locate(questions)
    root = Path(image_root)
    anns = {}
    for i, a in enumerate(_read(apath, "annotations")):
        answers = require(a, "answers", apath, None)
        if not answers:
            raise BenchmarkFormatError(apath, None, f"annotations[{i}].answers", "empty")
        anns[require(a, "question_id", apath, None)] = a
    out = []
    for i, q in enumerate(_read(qpath, "questions")):
        qid = require(q, "question_id", qpath, None)
        if qid not in anns:
            raise BenchmarkFormatError(apath, None, "annotations", f"no annotation for question_id {qid}")
        a = anns[qid]
        img = image_file(root, image_name.format(int(require(q, "image_id", qpath, None))), qpath, None,
                         f"questions[{i}].image_id")
        out.append(ImageQuestion(NAME, str(qid), str(require(q, "question", qpath, None)) + POST_PROMPT,
                                 tuple(str(x["answer"]) for x in a["answers"]), subtask=str(a.get("answer_type", "")),
                                 image_path=img))
    return out


def score_reply(q: ImageQuestion, reply: str) -> tuple[str, float]:
    return normalize_answer(reply, "vqav2"), soft_accuracy(reply, q.gold, "vqav2")


def aggregate(log: pd.DataFrame) -> list[MetricRow]:
    """Mean soft accuracy overall and per answer type (yes/no, number, other)."""
    rows = [MetricRow("overall", "", pct(log["score"].mean()), len(log))]
    rows += [MetricRow("question_type", str(t), pct(p["score"].mean()), len(p))
             for t, p in log.groupby("subtask", sort=True) if t]
    return rows
