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
from typing import Any, Literal, Sequence

import torch

from ..io import read_json, write_json
from ..shards import dist_info

Media = Literal["image", "video"]


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
