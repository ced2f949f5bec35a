"""MME perception: the official release folder, yes/no question pairs, acc + acc+ per subtask, summed.

Layout (`MME_Benchmark_release_version/`): one folder per subtask. For artwork, celebrity,
landmark, posters and scene, images are in `<subtask>/images/` and their questions in
`<subtask>/questions_answers_YN/<stem>.txt`; for the other subtasks image and `<stem>.txt` sit side
by side. Each .txt holds one "question<TAB>Yes|No" line per question (two per image).

Prompt (lmms-eval 0.5.0 `mme_doc_to_text`): the question with " Please answer yes or no." removed,
then the post-prompt. Parsing (lmms-eval `parse_pred_ans`, from Otter): "yes"/"no" after lower
casing and dropping "."; a single letter y/n; else "yes"/"no" found in the first 4 characters.
Score of a subtask: acc (% of questions right) + acc+ (% of images with both questions right),
0-200; the perception score is the sum over the 10 perception subtasks (0-2000), the trajectory's
raw MME value. Cognition subtasks, when present, are summed into a metric row.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..types import read_text
from .base import BenchmarkFormatError, ImageQuestion, MetricRow

NAME = "mme"
LMMS_TASK = "mme"
PERCEPTION = ("existence", "count", "position", "color", "posters", "celebrity", "scene", "landmark", "artwork", "OCR")
COGNITION = ("commonsense_reasoning", "numerical_calculation", "text_translation", "code_reasoning")
SEPARATE_QA = ("artwork", "celebrity", "landmark", "posters", "scene")
REPLACE_PROMPT = " Please answer yes or no."
POST_PROMPT = "\nAnswer the question using a single word or phrase."
IMAGE_EXT = (".jpg", ".png", ".jpeg")


def build_prompt(question: str) -> str:
    return question.strip().replace(REPLACE_PROMPT, "") + POST_PROMPT


def _pairs(sub_dir: Path, subtask: str) -> list[tuple[Path, Path]]:
    """(question file, image) for every image of a subtask folder."""
    if subtask in SEPARATE_QA:
        qa_dir, img_dir = sub_dir / "questions_answers_YN", sub_dir / "images"
    else:
        qa_dir = img_dir = sub_dir
    out = []
    for txt in sorted(qa_dir.glob("*.txt")):
        img = next((img_dir / (txt.stem + e) for e in IMAGE_EXT if (img_dir / (txt.stem + e)).is_file()), None)
        if img is None:
            raise BenchmarkFormatError(txt, None, "image", f"no image {txt.stem}.jpg/.png in {img_dir}")
        out.append((txt, img))
    return out


def load(root: str | Path, subtasks: tuple[str, ...] = PERCEPTION) -> list[ImageQuestion]:
    """Every question of the given subtasks (folders that are absent are skipped and logged by the caller)."""
    root = Path(root)
    out: list[ImageQuestion] = []
    for subtask in subtasks:
        sub_dir = root / subtask
        if not sub_dir.is_dir():
            continue
        for txt, img in _pairs(sub_dir, subtask):
            for line, text in enumerate(read_text(txt).splitlines(), start=1):
                if not text.strip():
                    continue
                parts = text.split("\t")
                if len(parts) < 2:
                    raise BenchmarkFormatError(txt, line, "answer", "expected 'question<TAB>Yes|No'")
                gold = parts[1].strip().lower().replace(".", "")
                if gold not in ("yes", "no"):
                    raise BenchmarkFormatError(txt, line, "answer", f"must be Yes or No, got {parts[1]!r}")
                rel = f"{subtask}/{img.name}"
                out.append(ImageQuestion(NAME, f"{rel}#{line}", build_prompt(parts[0]), gold, subtask=subtask,
                                         image_path=str(img.resolve()), meta={"group": rel}))
    return out


def parse_pred_ans(reply: str) -> str:
    """lmms-eval's MME parser: "yes", "no" or "other"."""
    pred = reply.lower().strip().replace(".", "")
    if pred in ("yes", "no"):
        return pred
    if len(pred) == 1:
        return {"y": "yes", "n": "no"}.get(pred, "other")
    head = pred[:4]
    return "yes" if "yes" in head else ("no" if "no" in head else "other")


def score_reply(q: ImageQuestion, reply: str) -> tuple[str, float]:
    parsed = parse_pred_ans(reply)
    return parsed, float(parsed == q.gold)


def subtask_scores(log: pd.DataFrame) -> pd.DataFrame:
    """Per subtask: acc, acc_plus (percent), score = acc + acc_plus, n questions, n images."""
    rows = []
    for sub, part in log.groupby("subtask", sort=True):
        per_image = part.groupby("group")["score"]
        sizes = per_image.size()
        if (sizes != 2).any():
            bad = sizes[sizes != 2].index[0]
            raise ValueError(f"MME {sub}: image {bad} has {int(sizes[bad])} questions; MME scores question pairs")
        acc = 100.0 * part["score"].mean()
        acc_plus = 100.0 * (per_image.sum() == 2).mean()
        rows.append({"subtask": str(sub), "acc": acc, "acc_plus": acc_plus, "score": acc + acc_plus,
                     "n": len(part), "images": len(sizes)})
    return pd.DataFrame(rows, columns=["subtask", "acc", "acc_plus", "score", "n", "images"])


def aggregate(log: pd.DataFrame) -> list[MetricRow]:
    """Perception score (sum of subtask scores) overall; each subtask's score, acc and acc+."""
    t = subtask_scores(log)
    perc = t[t["subtask"].isin(PERCEPTION)]
    cog = t[t["subtask"].isin(COGNITION)]
    rows = [MetricRow("overall", "", float(perc["score"].sum()), int(perc["n"].sum()))]
    for r in t.itertuples():
        rows.append(MetricRow("subtask", r.subtask, float(r.score), int(r.n)))
        rows.append(MetricRow("metric", f"{r.subtask}:acc", float(r.acc), int(r.n)))
        rows.append(MetricRow("metric", f"{r.subtask}:acc_plus", float(r.acc_plus), int(r.images)))
    if len(cog):
        rows.append(MetricRow("metric", "cognition_score", float(cog["score"].sum()), int(cog["n"].sum())))
    return rows
