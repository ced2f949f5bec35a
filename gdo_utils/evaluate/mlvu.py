"""MLVU test (the split the release scored): 9 multiple-choice task types, up to 6 options, M-Avg.

Two layouts are read:
- the official test JSON (`JUNJIE99/MLVU` evaluation_test: `test_question.json` rows {question_id,
  question_type, video, question, candidates, answer}); `answer` is a letter or the candidate text
  (the public file ships without answers: merge the ground truth into it first). The text sent is
  the question followed by "(A) ..." option lines, which is how lmms-eval's copy embeds them
  (UNVERIFIED reconstruction, EVAL_TRAIN_FORMATS.md 1.3);
- lmms-eval's copy (`sy1998/MLVU_Test` parquet: video_name, question with the options inside,
  answer letter, task_type); the text sent is `question` verbatim, exactly as mlvu_test.yaml does.
Videos: `<media_root>/<video>`, `<media_root>/video/<video>` or `<media_root>/<task type>/<video>`.
Metric (lmms-eval `mlvu_aggregate_results_test`): the mean of the per-task accuracies (M-Avg) over
the task types present (lmms-eval divides by its fixed 9 types; equal on the real test set, where
all 9 are present).
"""
from __future__ import annotations

from pathlib import Path

from .extract import mlvu_char, reasoning_answer, split_inline_options
from .types import (LETTERS, Benchmark, BenchmarkFormatError, Question, ReleaseParse, first_existing, read_json_list,
                    read_parquet_table, require_object)

NAME = "mlvu"
TASK_TYPES = ("anomaly_reco", "count", "ego", "needleQA", "order", "plotQA", "sportsQA", "topic_reasoning", "tutorialQA")


def find_video(media_root: Path, name: str, task_type: str) -> Path:
    return first_existing([media_root / name, media_root / "video" / name, media_root / task_type / name])


def embed_options(question: str, candidates: list[str]) -> str:
    return question + "".join(f"\n({LETTERS[i]}) {c}" for i, c in enumerate(candidates))


def _gold(answer: object, candidates: list[str], where: str) -> str:
    a = str(answer).strip()
    if a in candidates:
        return LETTERS[candidates.index(a)]
    a = a.strip("()").rstrip(".")
    if len(a) == 1 and a.upper() in LETTERS[: len(candidates)]:
        return a.upper()
    raise BenchmarkFormatError(f"{where}: field 'answer' {answer!r} is neither an option letter nor a candidate text")


def _official(path: Path, media_root: Path) -> list[Question]:
    rows = read_json_list(path)
    out = []
    for i, r in enumerate(rows):
        where = f"{path} row {i}"
        require_object(r, where)
        for field in ("question_id", "question_type", "video", "question", "candidates", "answer"):
            if field not in r:
                raise BenchmarkFormatError(f"{where}: field {field!r} missing")
        if not isinstance(r["candidates"], list):
            raise BenchmarkFormatError(f"{where}: field 'candidates' must be a list of option texts")
        cands = [str(c) for c in r["candidates"]]
        if not 2 <= len(cands) <= 6:
            raise BenchmarkFormatError(f"{where}: field 'candidates' must hold 2-6 options")
        tt = str(r["question_type"])
        out.append(Question(NAME, str(r["question_id"]), embed_options(str(r["question"]), cands), (), tuple(cands),
                            _gold(r["answer"], cands, where), str(find_video(media_root, str(r["video"]), tt)),
                            task_type=tt))
    return out


def _lmms_parquet(path: Path, media_root: Path) -> list[Question]:
    df = read_parquet_table(path)
    missing = [c for c in ("video_name", "question", "answer", "task_type") if c not in df.columns]
    if missing:
        raise BenchmarkFormatError(f"{path}: columns {missing} missing (have {list(df.columns)})")
    out = []
    for i, r in enumerate(df.to_dict("records")):
        _, texts = split_inline_options(str(r["question"]))
        tt = str(r["task_type"])
        qid = str(r["question_id"]) if "question_id" in df.columns else f"{tt}/{i:05d}"
        out.append(Question(NAME, qid, str(r["question"]), (), tuple(texts),
                            _gold(r["answer"], texts, f"{path} row {i}"),
                            str(find_video(media_root, str(r["video_name"]), tt)), task_type=tt))
    return out


def load(annotations: Path, media_root: Path) -> list[Question]:
    path = Path(annotations)
    if path.is_dir():
        cands = sorted(path.rglob("test_question*.json")) or sorted(path.rglob("test-*.parquet"))
        if not cands:
            raise FileNotFoundError(f"mlvu: no test_question*.json or test-*.parquet under {path}")
        path = cands[0]
    return _lmms_parquet(path, Path(media_root)) if path.suffix == ".parquet" else _official(path, Path(media_root))


def prompt(q: Question) -> str:
    """mlvu_test.yaml has no pre/post prompt: the question (with its options) alone."""
    return q.question


def release_parse(reply: str, q: Question) -> ReleaseParse:
    parsed = mlvu_char(reasoning_answer(reply))
    return ReleaseParse(parsed, parsed == q.gold)


BENCHMARK = Benchmark(NAME, load, prompt, release_parse, levels=("task_type",), overall="mean:task_type", max_options=6)
