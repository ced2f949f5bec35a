"""MMBench (en / cn) dev: the official TSV (base64 images), lmms-eval's prompt, circular evaluation.

File: `MMBench_DEV_EN.tsv` / `MMBench_DEV_CN.tsv` (the TSV the MMBench authors and lmms-lab ship):
columns index, question, hint, A, B, C, D (E optional), answer, category, image (base64), and
optionally source, l2-category, split. Circular copies of a question (options rotated) are rows
whose index is the original's plus k * 1,000,000.

Prompt (lmms-eval 0.5.0 `mmbench_doc_to_text`): `"{hint} {question} {options}"` (hint dropped when
empty or "nan"), options `"There are several options:\nA. ..\nB. .."`, then the post-prompt.

Scoring: the reply's letter comes from MMBench's own prefetch matcher (`can_infer`: a single
letter token, a letter with punctuation, else the one option whose text appears in the reply).
lmms-eval 0.5.0 asks a GPT judge when the matcher fails; the kit has no judge and counts such a
reply wrong (the static, no-API matching upstream lmms-eval added later). Official metric:
circular accuracy, a question counts right only when all its circular copies are right.
"""
from __future__ import annotations

import csv
import io
import string
import sys
from pathlib import Path

import pandas as pd

from ..types import read_text
from .base import BenchmarkFormatError, ImageQuestion, MetricRow, pct

NAMES = ("mmbench_en", "mmbench_cn")
LMMS_TASKS = {"mmbench_en": "mmbench_en_dev", "mmbench_cn": "mmbench_cn_dev"}
SYS_PROMPT = "There are several options:"
POST_PROMPTS = {"mmbench_en": "\nAnswer with the option's letter from the given choices directly.",
                "mmbench_cn": "\n请直接使用所提供的选项字母作为答案回答。"}
OPTION_LETTERS = "ABCDE"
CIRCULAR_STRIDE = 1_000_000
REQUIRED = ("index", "question", "A", "B", "answer", "category", "image")


def _present(v: object) -> bool:
    return v is not None and str(v) != "" and str(v).lower() != "nan"


def options_prompt(row: dict) -> tuple[str, dict[str, str]]:
    """`There are several options:\\nA. ..` over the row's non-empty option columns, and the options."""
    opts = {c: str(row[c]) for c in OPTION_LETTERS if c in row and _present(row[c])}
    body = "".join(f"{k}. {v}\n" for k, v in opts.items())
    return f"{SYS_PROMPT}\n{body}".rstrip("\n"), opts


def build_prompt(row: dict, name: str) -> str:
    """The exact text lmms-eval 0.5.0 sends after the image."""
    opts, _ = options_prompt(row)
    q = str(row["question"])
    core = f"{row['hint']} {q} {opts}" if _present(row.get("hint")) else f"{q} {opts}"
    return f"{core}{POST_PROMPTS[name]}"


def load(path: str | Path, name: str = "mmbench_en") -> list[ImageQuestion]:
    """Every row of an official MMBench TSV (circular copies included) as a question."""
    path = Path(path)
    csv.field_size_limit(sys.maxsize)
    out: list[ImageQuestion] = []
    with io.StringIO(read_text(path), newline="") as fh:
        reader = csv.DictReader(fh, delimiter="\t")
        missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
        if missing:
            raise BenchmarkFormatError(path, 1, missing[0], "column missing from the TSV header")
        for line, row in enumerate(reader, start=2):
            try:
                idx = int(float(row["index"]))
            except ValueError:
                raise BenchmarkFormatError(path, line, "index", f"not an integer: {row['index']!r}") from None
            _, opts = options_prompt(row)
            gold = str(row["answer"]).strip()
            if gold not in opts:
                raise BenchmarkFormatError(path, line, "answer", f"{gold!r} is not one of the options {list(opts)}")
            if not _present(row["image"]):
                raise BenchmarkFormatError(path, line, "image", "empty base64 image")
            out.append(ImageQuestion(
                benchmark=name, qid=str(idx), prompt=build_prompt(row, name), gold=gold,
                subtask=str(row["category"]), image_b64=row["image"],
                meta={"group": str(idx % CIRCULAR_STRIDE), "options": opts,
                      "l2_category": row.get("l2-category") or row.get("L2-category") or ""}))
    return out


# ----------------------------------------------------------------------------- answer matching
def _count(splits: list[str], choices: str, prefix: str = "", suffix: str = "") -> int:
    return sum(1 for c in choices if prefix + c + suffix in splits)


def can_infer_option(answer: str, choices: str) -> str | None:
    """MMBench's letter matcher: one bare letter token, or one letter with the listed punctuation."""
    splits = [x.strip() for x in answer.split()]
    if _count(splits, choices) == 1:
        quantifier = "A" in splits and len(splits) > 3  # "A" may be the article
        if not quantifier:
            for ch in choices:
                if ch in splits:
                    return ch
    for pre, suf in (("", "."), ("", ","), ("", ":"), ("", ")"), ("", ")."), ("(", ")"), ("(", ")."),
                     (":", ""), (":", ","), (":", "."), (":", ")"), (":", ").")):
        if _count(splits, choices, pre, suf) == 1:
            for ch in choices:
                if pre + ch + suf in splits:
                    return ch
    return None


def can_infer_text(answer: str, options: dict[str, str]) -> str | None:
    """The one option whose (lower-cased) text appears in the reply, if exactly one does."""
    low = answer.lower()
    hits = [k for k, v in options.items() if str(v).lower() in low]
    return hits[0] if len(hits) == 1 else None


def match_letter(reply: str, options: dict[str, str]) -> str | None:
    """MMBench's prefetch (`can_infer`): the letter first, else the option text."""
    choices = string.ascii_uppercase[:5]
    text_opts = {k: v for k, v in options.items() if k in "ABCD"}  # MMBench's build_choices reads A-D only
    return can_infer_option(reply, choices) or can_infer_text(reply, text_opts)


def score_reply(q: ImageQuestion, reply: str) -> tuple[str, float]:
    """(parsed letter or "", 1.0 / 0.0) for one row (circular copies are combined in `aggregate`)."""
    letter = match_letter(reply.strip(), q.meta["options"]) or ""
    return letter, float(letter == q.gold)


# ----------------------------------------------------------------------------- metrics
def circular_table(log: pd.DataFrame) -> pd.DataFrame:
    """One row per question group: category, hit (all copies right), main_hit (the original row right)."""
    df = log.assign(_idx=log["question_id"].astype(int))
    df["_group"] = df["_idx"] % CIRCULAR_STRIDE
    rows = []
    for g, part in df.groupby("_group", sort=True):
        main = part[part["_idx"] < CIRCULAR_STRIDE]
        if main.empty:
            raise ValueError(f"MMBench group {g} has circular copies but no original row (index < 1e6)")
        rows.append({"group": int(g), "category": str(main["subtask"].iloc[0]),
                     "hit": bool((part["score"] == 1.0).all()), "main_hit": bool(main["score"].iloc[0] == 1.0),
                     "copies": len(part)})
    return pd.DataFrame(rows, columns=["group", "category", "hit", "main_hit", "copies"])


def aggregate(log: pd.DataFrame) -> list[MetricRow]:
    """Circular accuracy overall (the official number) and per category; single-pass accuracy as a metric row."""
    t = circular_table(log)
    rows = [MetricRow("overall", "", pct(t["hit"].mean()), len(t))]
    for cat, part in t.groupby("category", sort=True):
        rows.append(MetricRow("subtask", str(cat), pct(part["hit"].mean()), len(part)))
    rows.append(MetricRow("metric", "single_pass", pct(t["main_hit"].mean()), len(t)))
    rows.append(MetricRow("metric", "circular", pct(t["hit"].mean()), len(t)))
    return rows
