"""ScienceQA-IMG: the official `problems.json` (+ `pid_splits.json`), test questions that have an image.

Files (lupantech/ScienceQA `data/scienceqa/`): `problems.json` maps pid -> {question, choices,
answer (index), hint, image ("image.png" or null), subject, split, ...}; images are
`images/<split>/<pid>/image.png`. SQA-IMG = the test split's problems with an image (2017 in the
release). Prompt (lmms-eval 0.5.0 `sqa_doc_to_text`, default format):
`"Context: {hint}\\n" (when hint) + question + "\\n" + "A. c0\\nB. c1..." + post-prompt`.
Scoring (lmms-eval `sqa_process_results`, LLaVA's rule): right when the reply equals the letter
(case-insensitive), or starts with "<Upper>." whose letter is the gold one.
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

NAME = "sqa_img"
LMMS_TASK = "scienceqa_img"
POST_PROMPT = "\nAnswer with the option's letter from the given choices directly."


def build_prompt(hint: str, question: str, choices: list[str]) -> str:
    """The exact text lmms-eval 0.5.0 sends after the image."""
    opts = "\n".join(f"{chr(ord('A') + i)}. {c}" for i, c in enumerate(choices))
    context = f"Context: {hint}\n" if hint else hint
    return f"{context}{question}\n{opts}{POST_PROMPT}"


def load(path: str | Path, image_root: str | Path | None = None, split: str = "test") -> list[ImageQuestion]:
    """Test problems with an image from an official problems.json (image root default: `<dir>/images`)."""
    path = Path(path)
    problems = read_json_file(path)
    root = Path(image_root) if image_root else path.parent / "images"
    out: list[ImageQuestion] = []
    for pid in sorted(problems, key=lambda k: (len(k), k)):
        p = problems[pid]
        if p.get("split", split) != split or not p.get("image"):
            continue
        choices = require(p, "choices", path, None)
        ans = require(p, "answer", path, None)
        if not isinstance(ans, int) or not 0 <= ans < len(choices):
            raise BenchmarkFormatError(path, None, f"{pid}.answer", f"index {ans!r} outside the {len(choices)} choices")
        img = image_file(root, f"{split}/{pid}/{p['image']}", path, None, f"{pid}.image")
        out.append(ImageQuestion(NAME, str(pid), build_prompt(p.get("hint") or "", require(p, "question", path, None),
                                                             choices),
                                 chr(ord("A") + ans), subtask=str(p.get("subject", "")), image_path=img))
    return out


def score_reply(q: ImageQuestion, reply: str) -> tuple[str, float]:
    """lmms-eval's rule: exact letter, or "<Upper>. ..." with the gold letter."""
    pred = reply.strip()
    target = str(q.gold).lower()
    if pred.lower() == target:
        return pred.upper(), 1.0
    if len(pred) >= 2 and pred[0].isupper() and pred[1] == ".":
        return pred[0], float(pred[0].lower() == target)
    return "", 0.0


def aggregate(log: pd.DataFrame) -> list[MetricRow]:
    """Accuracy overall (the reported number) and per subject."""
    rows = [MetricRow("overall", "", pct(log["score"].mean()), len(log))]
    for subj, part in log.groupby("subtask", sort=True):
        if subj:
            rows.append(MetricRow("subtask", str(subj), pct(part["score"].mean()), len(part)))
    return rows
