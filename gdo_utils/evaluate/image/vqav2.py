"""VQAv2: test-dev (the published numbers) as an EvalAI submission file; val with local VQA soft accuracy.

The papers' VQAv2 numbers are test-dev scores from the official EvalAI server. Given the test-dev
questions (`v2_OpenEnded_mscoco_test-dev2015_questions.json`, images `COCO_test2015_<id:012d>.jpg`,
no annotations), the kit writes `<checkpoint>/vqav2.submission.json` in the server's format (a list
of {question_id, answer}; the answer is the raw reply, as lmms-eval 0.5.0's `vqav2_test` submits it)
and reports no local accuracy. Given the val files, it scores locally (an option, labelled "val").

Val files:
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
TEST_IMAGE_NAME = "COCO_test2015_{:012d}.jpg"
TEST_SPLIT = "test-dev"


def is_test(questions: Path) -> bool:
    """A test(-dev) questions file: no annotations exist for it (scored by the EvalAI server)."""
    return "test" in Path(questions).name


def _read(path: Path, key: str) -> list[dict]:
    data = read_json_file(path)
    return require(data, key, path, None)


def locate(questions: str | Path) -> tuple[Path, Path | None]:
    """(questions file, annotations file or None for test-dev): a folder holding them, or the questions file."""
    q = Path(questions)
    if q.is_dir():
        tests = sorted(q.glob("*test-dev*questions*.json"))
        if tests and not sorted(q.glob("*annotations*.json")):
            return tests[0], None
        qs, ans = sorted(q.glob("*questions*.json")), sorted(q.glob("*annotations*.json"))
        if len(qs) != 1 or len(ans) != 1:
            raise BenchmarkFormatError(q, None, "<folder>", "expected one *questions*.json and one *annotations*.json")
        return qs[0], ans[0]
    if is_test(q):
        return q, None
    a = q.with_name(q.name.replace("OpenEnded_", "").replace("questions", "annotations"))
    if a == q or not a.is_file():
        raise BenchmarkFormatError(q, None, "<annotations>", f"annotations file not found beside it (looked for {a.name})")
    return q, a


def load(questions: str | Path, image_root: str | Path, annotations: str | Path | None = None,
         image_name: str = IMAGE_NAME) -> list[ImageQuestion]:
    """Questions joined with their ten human answers (a question without annotations is an error); test-dev
    questions (no annotations) have no gold answers and split `test-dev`."""
    qpath, apath = (Path(questions), Path(annotations)) if annotations else locate(questions)
    root = Path(image_root)
    if apath is None:
        return _load_test(qpath, root)
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


def _load_test(qpath: Path, root: Path) -> list[ImageQuestion]:
    out = []
    for i, q in enumerate(_read(qpath, "questions")):
        qid = require(q, "question_id", qpath, None)
        img = image_file(root, TEST_IMAGE_NAME.format(int(require(q, "image_id", qpath, None))), qpath, None,
                         f"questions[{i}].image_id")
        out.append(ImageQuestion(NAME, str(qid), str(require(q, "question", qpath, None)) + POST_PROMPT, (),
                                 subtask=TEST_SPLIT, image_path=img))
    return out


def score_reply(q: ImageQuestion, reply: str) -> tuple[str, float]:
    """(normalised reply, soft accuracy); a test-dev question: (the raw reply, 0) -- the server scores it."""
    if not q.gold:
        return reply, 0.0
    return normalize_answer(reply, "vqav2"), soft_accuracy(reply, q.gold, "vqav2")


def submission(log: pd.DataFrame) -> list[dict] | None:
    """The EvalAI test-dev submission ([{question_id: int, answer: str}]) of a test-dev log; None for val."""
    test = log[log["subtask"] == TEST_SPLIT]
    if test.empty:
        return None
    return [{"question_id": int(q), "answer": str(r)} for q, r in zip(test["question_id"], test["reply"])]


def aggregate(log: pd.DataFrame) -> list[MetricRow]:
    """Val: mean soft accuracy overall and per answer type (yes/no, number, other); test-dev: none (server)."""
    log = log[log["subtask"] != TEST_SPLIT]
    if log.empty:
        return []
    rows = [MetricRow("overall", "", pct(log["score"].mean()), len(log))]
    rows += [MetricRow("question_type", str(t), pct(p["score"].mean()), len(p))
             for t, p in log.groupby("subtask", sort=True) if t]
    return rows
