"""LLaVA-Bench in-the-Wild and MM-Vet: read the official files and generate replies; scores need a GPT judge.

The kit has no judge: its results for these two carry `needs_judge: true` and no score, and the
replies are kept in the per-question log for a judge to grade. Scores arrive from an lmms-eval run
(`gpt_eval_llava_all` / `gpt_eval_score`) through ingestion.

LLaVA-Bench in-the-Wild (`liuhaotian/llava-bench-in-the-wild`): `questions.jsonl` lines
{question_id, image, text, category} + `images/`; prompt = text (no pre/post prompt in lmms-eval).
MM-Vet (`mm-vet.json`: {"v1_0": {imagename, question, answer, capability: [...]}} + `images/`);
prompt = lmms-eval's reasoning pre-prompt + question.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from .base import (
    ImageQuestion,
    MetricRow,
    image_file,
    read_json_file,
    read_jsonl_file,
    require,
)

JUDGED = ("llava_wild", "mmvet")
LMMS_TASKS = {"llava_wild": "llava_in_the_wild", "mmvet": "mmvet"}
LMMS_METRICS = {"llava_wild": "gpt_eval_llava_all", "mmvet": "gpt_eval_score"}
MMVET_PRE_PROMPT = ("First please perform reasoning, and think step by step to provide best answer to the "
                    "following question: \n\n")


def load_llava_wild(path: str | Path, image_root: str | Path | None = None) -> list[ImageQuestion]:
    """questions.jsonl of LLaVA-Bench in-the-Wild (gold: none; the judge reads the reference answers)."""
    path = Path(path)
    root = Path(image_root) if image_root else path.parent / "images"
    out = []
    for line, rec in read_jsonl_file(path):
        img = image_file(root, str(require(rec, "image", path, line)), path, line)
        out.append(ImageQuestion("llava_wild", str(require(rec, "question_id", path, line)),
                                 str(require(rec, "text", path, line)), "", subtask=str(rec.get("category", "")),
                                 image_path=img))
    return out


def load_mmvet(path: str | Path, image_root: str | Path | None = None) -> list[ImageQuestion]:
    """mm-vet.json (gold: the reference answer, for the judge)."""
    path = Path(path)
    data = read_json_file(path)
    root = Path(image_root) if image_root else path.parent / "images"
    out = []
    for qid in sorted(data, key=lambda k: (len(k), k)):
        rec = data[qid]
        img = image_file(root, str(require(rec, "imagename", path, None)), path, None, f"{qid}.imagename")
        caps = rec.get("capability") or []
        out.append(ImageQuestion("mmvet", str(qid), MMVET_PRE_PROMPT + str(require(rec, "question", path, None)),
                                 str(require(rec, "answer", path, None)), subtask=",".join(caps), image_path=img))
    return out


def score_reply(q: ImageQuestion, reply: str) -> tuple[str, float]:
    """No judge here: the reply is kept, the score is NaN (never counted as right or wrong)."""
    return "", float("nan")


def aggregate(log: pd.DataFrame) -> list[MetricRow]:
    """Nothing to aggregate without a judge: the results file says `needs_judge`."""
    return []
