"""Batched greedy generation over benchmark questions and the per-question log rows.

One batch = left-padded chat prompts `[user: video, text]` (no system turn, as the release's chat
wrapper), the videos as frames + metadata (true timestamps, do_sample_frames=False, do_resize=False:
frames are already sized by `video.load_eval_video`), one `generate` call. Questions whose video is
missing or undecodable get a row with `media_error` and no model call. Every reply is logged with
both parses (release and robust). `EvalWorker` is the `work` function for `gdo_utils.shards.run_sharded`.
"""
from __future__ import annotations

import hashlib
from typing import Any, Sequence

import pyarrow as pa
import torch

from ..config import EvaluateConfig
from ..descriptors.runner import with_oom_retry
from ..media import MediaError
from .extract import robust_letter
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


def prompt_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def messages(prompt: str) -> list[dict]:
    """The chat wrapper's messages: one user turn, the video then the text; no system prompt."""
    return [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": prompt}]}]


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


@torch.no_grad()
def generate_replies(vlm: Any, prompts: Sequence[str], videos: Sequence[EvalVideo], max_new_tokens: int) -> list[str]:
    """Greedy replies for a batch (left padding); decoded as the release does (special tokens skipped)."""
    proc = vlm.processor
    proc.tokenizer.padding_side = "left"
    texts = proc.apply_chat_template([messages(p) for p in prompts], tokenize=False, add_generation_prompt=True)
    enc = proc(text=texts, videos=[v.frames for v in videos], video_metadata=[v.metadata for v in videos],
               do_sample_frames=False, do_resize=False, padding=True, return_tensors="pt")
    enc = {k: (v.to(vlm.device) if isinstance(v, torch.Tensor) else v) for k, v in enc.items()}
    if "pixel_values_videos" in enc:
        enc["pixel_values_videos"] = enc["pixel_values_videos"].to(vlm.model.dtype)
    out = vlm.model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, num_beams=1, temperature=None,
                             top_p=None, top_k=None, pad_token_id=proc.tokenizer.pad_token_id,
                             eos_token_id=proc.tokenizer.eos_token_id)
    new = out[:, enc["input_ids"].shape[1]:]
    return proc.batch_decode(new, skip_special_tokens=True, clean_up_tokenization_spaces=False)


class EvalWorker:
    """Turns a batch of question ids into log rows (one per id)."""

    def __init__(self, vlm: Any, bench: Benchmark, questions: dict[str, Question], cfg: EvaluateConfig) -> None:
        self.vlm, self.bench, self.q, self.cfg = vlm, bench, questions, cfg

    def __call__(self, batch_ids: Sequence[str]) -> list[dict]:
        rows: dict[str, dict] = {}
        ok: list[tuple[Question, EvalVideo]] = []
        for qid in batch_ids:
            q = self.q[qid]
            try:
                ok.append((q, load_eval_video(q, self.cfg)))
            except MediaError as exc:
                rows[qid] = log_row(q, self.bench, "", f"{exc.reason}: {exc.path}", 0)

        def run(pos: Sequence[int]) -> dict[int, str]:
            replies = generate_replies(self.vlm, [self.bench.prompt(ok[j][0]) for j in pos], [ok[j][1] for j in pos],
                                       self.cfg.max_new_tokens)
            return dict(zip(pos, replies))

        replies, errors = with_oom_retry(run, list(range(len(ok)))) if ok else ({}, {})
        for j, (q, v) in enumerate(ok):
            if j in errors:
                rows[q.qid] = log_row(q, self.bench, "", f"model_error: {errors[j]}", len(v.indices))
            else:
                rows[q.qid] = log_row(q, self.bench, replies[j], None, len(v.indices))
        return [rows[i] for i in batch_ids]


def length_order(questions: Sequence[Question], bench: Benchmark, tokenizer: Any) -> list[str]:
    """Question ids sorted by prompt token count (then id), so a batch holds prompts of similar length."""
    n = {q.qid: len(tokenizer(bench.prompt(q), add_special_tokens=False)["input_ids"]) for q in questions}
    return sorted(n, key=lambda i: (n[i], i))
