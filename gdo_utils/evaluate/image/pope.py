"""POPE: the official per-split question files, yes/no replies, accuracy / precision / recall / F1 / yes-ratio.

Files (RUCAIBox/POPE `output/coco/`): `coco_pope_{random,popular,adversarial}.json`, JSON Lines of
{question_id, image, text, label} with label "yes"/"no"; images in a COCO val2014 folder. The split
is read from the file name (`*_pope_<split>.json`). Prompt: text + lmms-eval's post-prompt.

Parsing, two named modes:
- `release` (lmms-eval 0.5.0 `pope_process_results`): the stripped, lower-cased reply must equal
  "yes" or "no" exactly ("Yes." counts as neither);
- `robust` (POPE's / LLaVA's `eval_pope.py`): cut at the first ".", drop ",", "no" when the words
  hold "No", "no" or "not", else "yes".
Metrics per split and over all splits; "yes" is the positive class. yes-ratio is the share of
replies parsed as "yes" (POPE's definition; lmms-eval's `pope_yes_ratio` counts gold "yes" instead,
which is 50% by construction). The overall number is what the LLaVA-1.5 / OFA tables print: the mean
of the per-split F1 (adversarial, popular, random); F1 pooled over all questions is the extra metric
row `pooled_f1` (and the overall when the log names no split, e.g. an lmms-eval POPE log).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import pandas as pd

from .base import (
    BenchmarkFormatError,
    ImageQuestion,
    MetricRow,
    image_file,
    pct,
    read_jsonl_file,
    require,
)

NAME = "pope"
LMMS_TASK = "pope"
POST_PROMPT = "\nAnswer the question using a single word or phrase."
ParseMode = Literal["release", "robust"]
SPLIT_RE = re.compile(r"pope_(\w+?)\.json$")


def load(paths: str | Path | list[str | Path], image_root: str | Path) -> list[ImageQuestion]:
    """All questions of official POPE split files (a file, a list, or a folder of `*_pope_<split>.json`)."""
    given = [Path(p) for p in (paths if isinstance(paths, list) else [paths])]
    paths = [f for p in given for f in (sorted(p.glob("*_pope_*.json")) if p.is_dir() else [p])]
    if not paths:
        raise BenchmarkFormatError(given[0], None, "<file name>", "no *_pope_<split>.json file found")
    root = Path(image_root)
    out: list[ImageQuestion] = []
    for path in paths:
        m = SPLIT_RE.search(path.name)
        if not m:
            raise BenchmarkFormatError(path, None, "<file name>", "expected *_pope_<split>.json")
        split = m.group(1)
        for line, rec in read_jsonl_file(path):
            label = str(require(rec, "label", path, line)).strip().lower()
            if label not in ("yes", "no"):
                raise BenchmarkFormatError(path, line, "label", f"must be yes or no, got {label!r}")
            img = image_file(root, str(require(rec, "image", path, line)), path, line)
            q = str(require(rec, "text", path, line)).strip()
            out.append(ImageQuestion(NAME, f"{split}/{require(rec, 'question_id', path, line)}", q + POST_PROMPT,
                                     label, subtask=split, image_path=img))
    return out


def parse_yes_no(reply: str, mode: ParseMode = "release") -> str:
    """"yes", "no", or "" (release mode, a reply that is neither)."""
    if mode == "release":
        pred = reply.lower().strip()
        return pred if pred in ("yes", "no") else ""
    text = reply.strip()
    if "." in text:
        text = text.split(".")[0]
    words = text.replace(",", "").split(" ")
    return "no" if ("No" in words or "not" in words or "no" in words) else "yes"


def score_reply(q: ImageQuestion, reply: str, mode: ParseMode = "release") -> tuple[str, float]:
    parsed = parse_yes_no(reply, mode)
    return parsed, float(parsed == q.gold)


def binary_metrics(parsed: pd.Series, gold: pd.Series) -> dict[str, float]:
    """accuracy, precision, recall, f1, yes_ratio (fractions) with "yes" as the positive class.

    Counted as lmms-eval counts them: TP/FP over replies parsed "yes", FN over replies parsed "no".
    """
    p_yes, g_yes = parsed == "yes", gold == "yes"
    tp = int((p_yes & g_yes).sum())
    fp = int((p_yes & ~g_yes).sum())
    fn = int(((parsed == "no") & g_yes).sum())  # lmms-eval: an unparsed reply is neither TP nor FN
    prec = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    return {"accuracy": float((parsed == gold).mean()), "precision": prec, "recall": rec, "f1": f1,
            "yes_ratio": float(p_yes.mean())}


def aggregate(log: pd.DataFrame) -> list[MetricRow]:
    """Overall: mean of the per-split F1; per split F1; pooled F1 and every metric per split and pooled ("metric")."""
    allm = binary_metrics(log["parsed"], log["gold"])
    per = {s: (binary_metrics(p["parsed"], p["gold"]), len(p)) for s, p in log.groupby("subtask", sort=True) if s}
    mean_f1 = sum(m["f1"] for m, _ in per.values()) / len(per) if per else allm["f1"]
    rows = [MetricRow("overall", "", pct(mean_f1), len(log))]
    rows += [MetricRow("split", s, pct(m["f1"]), n) for s, (m, n) in per.items()]
    rows += [MetricRow("metric", "pooled_f1", pct(allm["f1"]), len(log))]
    rows += [MetricRow("metric", k, pct(v), len(log)) for k, v in allm.items()]
    rows += [MetricRow("metric", f"{s}:{k}", pct(v), n) for s, (m, n) in per.items() for k, v in m.items()]
    return rows
