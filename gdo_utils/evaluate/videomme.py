"""VideoMME without subtitles: `videomme/test-00000-of-00001.parquet` (lmms-lab/Video-MME) + `<videoID>.mp4`.

Columns read: question_id, videoID, duration (short/medium/long), domain, sub_category, task_type,
question, options (four strings already lettered "A. ..."), answer (a letter). Videos are
`<media_root>/<videoID>.mp4` (VLMEvalKit's flat folder) or `<media_root>/data/<videoID>.mp4`
(lmms-eval's cache), with `.MP4` / `.mkv` as lmms-eval's fallbacks. Prompt: the `qwen3_vl` profile of
lmms-eval 0.5.0 (`videomme_doc_to_text_qwen3vl`); metric: micro accuracy over all questions, plus
the breakdowns by duration, task type and domain that lmms-eval only logs.
"""
from __future__ import annotations

import re
from pathlib import Path

from .extract import first_upper_abcd, reasoning_answer
from .types import LETTERS, Benchmark, BenchmarkFormatError, Question, ReleaseParse, first_existing, read_parquet_table

NAME = "videomme"
PRE_PROMPT = "Question: "
POST_PROMPT = "Answer with the option letter only."
COLUMNS = ("question_id", "videoID", "duration", "domain", "task_type", "question", "options", "answer")


def find_video(media_root: Path, video_id: str) -> Path:
    return first_existing([f / f"{video_id}{ext}" for f in (media_root, media_root / "data") for ext in (".mp4", ".MP4", ".mkv")])


def load(annotations: Path, media_root: Path) -> list[Question]:
    path = Path(annotations)
    if path.is_dir():
        found = sorted(path.rglob("test-*.parquet"))
        if not found:
            raise FileNotFoundError(f"videomme: no test-*.parquet under {path}")
        path = found[0]
    df = read_parquet_table(path)
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise BenchmarkFormatError(f"{path}: columns {missing} missing (have {list(df.columns)})")
    out: list[Question] = []
    for i, r in enumerate(df.to_dict("records")):
        opts = [str(o) for o in list(r["options"])]
        if not 2 <= len(opts) <= 4 or str(r["answer"]) not in LETTERS[: len(opts)]:
            raise BenchmarkFormatError(f"{path} row {i}: field 'options'/'answer' must be 2-4 options and a letter among them")
        texts = tuple(re.sub(r"^[A-D]\.\s*", "", o) for o in opts)
        out.append(Question(NAME, str(r["question_id"]), str(r["question"]), tuple(opts), texts, str(r["answer"]),
                            str(find_video(Path(media_root), str(r["videoID"]))), duration=str(r["duration"]),
                            domain=str(r["domain"]), task_type=str(r["task_type"])))
    return out


def prompt(q: Question) -> str:
    options = "\n".join(q.options)
    return f"{PRE_PROMPT}{q.question}\nOptions:\n{options}\n{POST_PROMPT}"


def release_parse(reply: str, q: Question) -> ReleaseParse:
    parsed = first_upper_abcd(reasoning_answer(reply))
    return ReleaseParse(parsed, parsed == q.gold)


BENCHMARK = Benchmark(NAME, load, prompt, release_parse, levels=("duration", "task_type", "domain"), max_options=4)
