"""What the video engine and the image suite share: chat messages, one greedy `generate` per batch,
prompt hashes and token-length order, and the stamped parts folder of one (checkpoint, benchmark).

The chat input is the release's lmms-eval chat Qwen3-VL wrapper's: one user turn [media, text] and,
by default, no system turn (`evaluate.system_prompt` adds one, as lmms-eval 0.7.x always does).
Replies are greedy and decoded as the release does (special tokens skipped).
"""
from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any, Callable, Literal, Sequence

import torch

from ..io import read_json, write_json
from ..shards import dist_info

Media = Literal["image", "video"]
TOO_LONG = "prompt_too_long"


class PromptTooLongError(RuntimeError):
    """Rows of a batch whose prompt (media placeholder tokens included) plus the new tokens exceed the context."""

    def __init__(self, lengths: dict[int, int], max_new_tokens: int, limit: int) -> None:
        self.lengths, self.max_new_tokens, self.limit = lengths, max_new_tokens, limit
        super().__init__(f"{len(lengths)} prompt(s) longer than the model's context of {limit} tokens")

    def reason(self, i: int) -> str:
        """The log's media_error text for batch row i."""
        return too_long_reason(self.lengths[i], self.max_new_tokens, self.limit)


def too_long_reason(n: int, max_new_tokens: int, limit: int) -> str:
    return f"{TOO_LONG}: {n} prompt tokens + {max_new_tokens} new > context {limit}"


def context_length(model: Any) -> int | None:
    """The model's context (max_position_embeddings of its text config), None when it does not say."""
    cfg = getattr(model, "config", None)
    for c in (getattr(cfg, "text_config", None), cfg):
        n = getattr(c, "max_position_embeddings", None)
        if isinstance(n, int) and n > 0:
            return n
    return None


def over_context(lengths: Sequence[int], max_new_tokens: int, limit: int | None) -> dict[int, int]:
    """Positions whose prompt length plus max_new_tokens exceeds `limit` (none when the limit is unknown)."""
    if limit is None:
        return {}
    return {i: int(n) for i, n in enumerate(lengths) if int(n) + max_new_tokens > limit}


def text_too_long(vlm: Any, prompts: dict[str, str], media: Media, max_new_tokens: int,
                  system_prompt: str | None = None) -> dict[str, str]:
    """Before any media is decoded: ids whose chat text alone (one placeholder per media) exceeds the context."""
    if not prompts:
        return {}
    limit = context_length(vlm.model)
    if limit is None:
        return {}
    ids = list(prompts)
    texts = chat_texts(vlm.processor, [prompts[i] for i in ids], media, system_prompt)
    lengths = [len(x) for x in vlm.processor.tokenizer(texts, add_special_tokens=False)["input_ids"]]
    return {ids[i]: too_long_reason(n, max_new_tokens, limit) for i, n in over_context(lengths, max_new_tokens, limit).items()}


def batch_replies(fn: Callable[[Sequence[int]], dict[int, str]], idx: Sequence[int]) -> tuple[dict[int, str], dict[int, str]]:
    """fn over a batch of positions -> (replies, media_error texts): out of memory (CUDA or CPU) halves the
    batch down to single rows (`model_error: oom`); rows longer than the context are left out
    (`prompt_too_long: ...`) and the rest run again."""
    from ..descriptors.runner import with_oom_retry

    too_long: dict[int, str] = {}

    def run(pos: Sequence[int]) -> dict[int, str]:
        try:
            return fn(pos)
        except PromptTooLongError as exc:
            too_long.update({pos[i]: exc.reason(i) for i in exc.lengths})
            rest = [p for p in pos if p not in too_long]
            return run(rest) if rest else {}

    replies, errors = with_oom_retry(run, list(idx)) if len(idx) else ({}, {})
    return replies, {**{j: f"model_error: {e}" for j, e in errors.items()}, **too_long}


def prompt_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def messages(prompt: str, media: Media = "video", system_prompt: str | None = None) -> list[dict]:
    """One user turn, the media then the text; a system turn first only when `system_prompt` is given."""
    turn = [{"role": "user", "content": [{"type": media}, {"type": "text", "text": prompt}]}]
    if system_prompt is None:
        return turn
    return [{"role": "system", "content": [{"type": "text", "text": system_prompt}]}, *turn]


def chat_texts(processor: Any, prompts: Sequence[str], media: Media, system_prompt: str | None = None) -> list[str]:
    """The rendered chat texts (generation prompt added) of a batch."""
    return processor.apply_chat_template([messages(p, media, system_prompt) for p in prompts], tokenize=False,
                                         add_generation_prompt=True)


@torch.no_grad()
def generate_replies(vlm: Any, prompts: Sequence[str], media: Media, proc_kwargs: dict, max_new_tokens: int,
                     system_prompt: str | None = None) -> list[str]:
    """Greedy replies for a batch: left padding, the media in `proc_kwargs` (images= or videos= + metadata)."""
    proc = vlm.processor
    proc.tokenizer.padding_side = "left"
    texts = chat_texts(proc, prompts, media, system_prompt)
    enc = proc(text=texts, padding=True, return_tensors="pt", **proc_kwargs)
    limit = context_length(vlm.model)
    over = over_context(enc["attention_mask"].sum(-1).tolist(), max_new_tokens, limit) if limit else {}
    if over:
        raise PromptTooLongError(over, max_new_tokens, limit)
    enc = {k: (v.to(vlm.device) if isinstance(v, torch.Tensor) else v) for k, v in enc.items()}
    for key in ("pixel_values", "pixel_values_videos"):
        if key in enc:
            enc[key] = enc[key].to(vlm.model.dtype)
    out = vlm.model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, num_beams=1, temperature=None,
                             top_p=None, top_k=None, pad_token_id=proc.tokenizer.pad_token_id,
                             eos_token_id=proc.tokenizer.eos_token_id)
    return proc.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True,
                             clean_up_tokenization_spaces=False)


def token_order(prompts: dict[str, str], tokenizer: Any) -> list[str]:
    """Ids sorted by prompt token count (then id), so a batch holds prompts of similar length."""
    n = {i: len(tokenizer(p, add_special_tokens=False)["input_ids"]) for i, p in prompts.items()}
    return sorted(n, key=lambda i: (n[i], i))


def barrier() -> None:
    import torch.distributed as tdist

    if tdist.is_available() and tdist.is_initialized():
        tdist.barrier()


def prepare_parts(parts: Path, gen_h: str) -> None:
    """Rank 0: drop parts written under another generation hash, stamp the folder; then all ranks meet."""
    if dist_info()[0] == 0:
        stamp = parts / "stamp.json"
        if parts.exists() and (not stamp.is_file() or read_json(stamp).get("generation_hash") != gen_h):
            shutil.rmtree(parts)
        parts.mkdir(parents=True, exist_ok=True)
        write_json(stamp, {"generation_hash": gen_h})
    barrier()
