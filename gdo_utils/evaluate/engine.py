"""Batched greedy generation over benchmark questions and the per-question log rows.

One batch = left-padded chat prompts `[user: video, text]` (no system turn by default, as the release's
chat wrapper; gdo_utils.evaluate.generation), the videos as frames + metadata (true timestamps,
do_sample_frames=False, do_resize=False: frames are already sized by `video.load_eval_video`), one
`generate` call. Questions whose video is missing, undecodable or outside media_root, and questions whose
prompt exceeds the model's context, get a row with `media_error` and no model call; a batch that runs
out of memory is halved down to single questions. Every reply is logged with
both parses (release and robust). `EvalWorker` is the `work` function for `gdo_utils.shards.run_sharded`.
"""
from __future__ import annotations

from typing import Any, Sequence

import pyarrow as pa

from ..config import EvaluateConfig
from ..media import MediaError
from .extract import robust_letter
from .generation import batch_replies, generate_replies, prompt_hash, text_too_long, token_order
from .types import Benchmark, Question
from .video import EvalVideo, load_eval_video

LOG_SCHEMA = pa.schema([
    ("question_id", pa.string()), ("benchmark", pa.string()), ("subtask", pa.string()), ("duration", pa.string()),
    ("domain", pa.string()), ("task_type", pa.string()), ("question_types", pa.list_(pa.string())),
    ("prompt", pa.string()), ("prompt_hash", pa.string()), ("reply", pa.string()),
    ("parsed_release", pa.string()), ("parsed_robust", pa.string()), ("gold", pa.string()),
    ("correct_release", pa.bool_()), ("correct_robust", pa.bool_()), ("counted_release", pa.bool_()),
    ("media_error", pa.string()), ("n_frames", pa.int64()),
])
LOG_COLUMNS = LOG_SCHEMA.names


def log_row(q: Question, bench: Benchmark, reply: str, media_error: str | None, n_frames: int) -> dict:
    """One per-question log row: the reply with its release and robust parses."""
    text = bench.prompt(q)
    rel = bench.release_parse(reply, q)
    rob = robust_letter(reply, q.letters, q.option_texts) if media_error is None else None
    return {"question_id": q.qid, "benchmark": bench.name, "subtask": q.subtask, "duration": q.duration,
            "domain": q.domain, "task_type": q.task_type, "question_types": list(q.question_types),
            "prompt": text, "prompt_hash": prompt_hash(text), "reply": reply,
            "parsed_release": rel.parsed, "parsed_robust": rob or "", "gold": q.gold,
            "correct_release": bool(rel.correct) and media_error is None, "correct_robust": rob == q.gold,
            "counted_release": bool(rel.counted) or media_error is not None,
            "media_error": media_error, "n_frames": int(n_frames)}


def generate_video_replies(vlm: Any, prompts: Sequence[str], videos: Sequence[EvalVideo], max_new_tokens: int,
                          system_prompt: str | None = None) -> list[str]:
    """Greedy replies for a batch of videos (frames already sized; their true indices as metadata)."""
    kw = {"videos": [v.frames for v in videos], "video_metadata": [v.metadata for v in videos],
          "do_sample_frames": False, "do_resize": False}
    return generate_replies(vlm, prompts, "video", kw, max_new_tokens, system_prompt)


class EvalWorker:
    """Turns a batch of question ids into log rows (one per id)."""

    def __init__(self, vlm: Any, bench: Benchmark, questions: dict[str, Question], cfg: EvaluateConfig) -> None:
        self.vlm, self.bench, self.q, self.cfg = vlm, bench, questions, cfg

    def __call__(self, batch_ids: Sequence[str]) -> list[dict]:
        rows: dict[str, dict] = {}
        ok: list[tuple[Question, EvalVideo]] = []
        texts = {i: self.bench.prompt(self.q[i]) for i in batch_ids if not self.q[i].media_error}
        too_long = text_too_long(self.vlm, texts, "video", self.cfg.max_new_tokens, self.cfg.system_prompt)
        for qid in batch_ids:
            q = self.q[qid]
            if q.media_error or qid in too_long:
                rows[qid] = log_row(q, self.bench, "", q.media_error or too_long[qid], 0)
                continue
            try:
                ok.append((q, load_eval_video(q, self.cfg)))
            except MediaError as exc:
                rows[qid] = log_row(q, self.bench, "", f"{exc.reason}: {exc.path}", 0)

        def run(pos: Sequence[int]) -> dict[int, str]:
            replies = generate_video_replies(self.vlm, [self.bench.prompt(ok[j][0]) for j in pos],
                                             [ok[j][1] for j in pos], self.cfg.max_new_tokens, self.cfg.system_prompt)
            return dict(zip(pos, replies))

        replies, errors = batch_replies(run, range(len(ok)))
        for j, (q, v) in enumerate(ok):
            if j in errors:
                rows[q.qid] = log_row(q, self.bench, "", errors[j], len(v.indices))
            else:
                rows[q.qid] = log_row(q, self.bench, replies[j], None, len(v.indices))
        return [rows[i] for i in batch_ids]


def length_order(questions: Sequence[Question], bench: Benchmark, tokenizer: Any) -> list[str]:
    """Question ids sorted by prompt token count (then id), so a batch holds prompts of similar length."""
    return token_order({q.qid: bench.prompt(q) for q in questions}, tokenizer)
