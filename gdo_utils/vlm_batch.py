"""Chat formatting and batch encoding for Qwen-VL style processors, with answer-only labels.

GDO feeds frames to the backbone as a sequence of images (GDO_METHOD.md section 3.2). A batch is
left-padded (so the same encoding serves loss and generation); labels keep only the answer tokens
(`answer<|im_end|>`: the answer tokens and the end-of-turn token); everything else is -100. Per-sample
losses come from the logits, never from the model's batch-mean loss.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

IGNORE_INDEX = -100


@dataclass
class VLMSample:
    """One candidate as the model sees it: frames (1 for an image), question, answer."""

    question: str
    answer: str = ""
    images: list[Image.Image] = field(default_factory=list)


def to_pil(frames: np.ndarray | Sequence[Any]) -> list[Image.Image]:
    """(T, H, W, 3) uint8 frames (or a list of arrays / images) as RGB PIL images."""
    return [f if isinstance(f, Image.Image) else Image.fromarray(np.asarray(f)).convert("RGB") for f in frames]


def messages_for(sample: VLMSample, with_visuals: bool, system: str | None = None) -> list[dict]:
    """User turn = one image entry per frame (when with_visuals) + the question text."""
    content: list[dict] = [{"type": "image"} for _ in (sample.images if with_visuals else [])]
    content.append({"type": "text", "text": sample.question})
    msgs = [{"role": "system", "content": [{"type": "text", "text": system}]}] if system else []
    return msgs + [{"role": "user", "content": content}]


def prompt_text(processor: Any, sample: VLMSample, with_visuals: bool) -> str:
    return processor.apply_chat_template(messages_for(sample, with_visuals), add_generation_prompt=True, tokenize=False)


def _answer_suffix(processor: Any) -> str:
    return processor.tokenizer.eos_token or "<|im_end|>"


def encode_batch(processor: Any, samples: Sequence[VLMSample], with_visuals: bool, with_answer: bool,
                 image_kwargs: dict | None = None) -> dict:
    """Tokenise a batch (left padding). With answers, adds `labels` over the answer tokens only."""
    processor.tokenizer.padding_side = "left"
    prompts = [prompt_text(processor, s, with_visuals) for s in samples]
    suffix = _answer_suffix(processor)
    texts = [p + s.answer + suffix for p, s in zip(prompts, samples)] if with_answer else prompts
    images = [im for s in samples for im in s.images] if with_visuals else []
    kw: dict[str, Any] = {"text": texts, "return_tensors": "pt", "padding": True}
    if images:
        kw["images"] = images
        kw.update(image_kwargs or {})
    enc = dict(processor(**kw))
    if with_answer:
        enc["labels"] = _answer_labels(processor, enc, samples, prompts, with_visuals, suffix, image_kwargs)
    return enc


def _answer_labels(processor: Any, enc: dict, samples: Sequence[VLMSample], prompts: list[str], with_visuals: bool,
                   suffix: str, image_kwargs: dict | None) -> torch.Tensor:
    """Labels = input ids on the last n_answer tokens of each row (left padding), -100 elsewhere.

    n_answer is the token count of `answer<|im_end|>` tokenised alone; that this equals the tail of
    the full encoding is checked, and a row where it does not (a tokenizer merging across the
    boundary) falls back to encoding its prompt alone.
    """
    ids = enc["input_ids"]
    labels = torch.full_like(ids, IGNORE_INDEX)
    tok = processor.tokenizer
    width = ids.shape[1]
    for i, s in enumerate(samples):
        ans = tok(s.answer + suffix, add_special_tokens=False)["input_ids"]
        n = len(ans)
        if ids[i, width - n:].tolist() != ans:
            kw: dict[str, Any] = {"text": [prompts[i]], "return_tensors": "pt"}
            if with_visuals and s.images:
                kw["images"] = s.images
                kw.update(image_kwargs or {})
            n_prompt = processor(**kw)["input_ids"].shape[1]
            n_real = int(enc["attention_mask"][i].sum())
            n = n_real - n_prompt
        labels[i, width - n:] = ids[i, width - n:]
    return labels


def per_sample_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy over each row's labelled tokens (float32), shape (batch,)."""
    shift_logits = logits[:, :-1, :].float()
    shift_labels = labels[:, 1:]
    ce = F.cross_entropy(shift_logits.reshape(-1, shift_logits.shape[-1]), shift_labels.reshape(-1),
                         ignore_index=IGNORE_INDEX, reduction="none").view(shift_labels.shape)
    mask = (shift_labels != IGNORE_INDEX).float()
    return (ce * mask).sum(1) / mask.sum(1).clamp(min=1.0)


def move_to(batch: dict, device: torch.device, dtype: torch.dtype | None = None) -> dict:
    """Tensors to device; floating pixel tensors to the model dtype."""
    out = {}
    for k, v in batch.items():
        if isinstance(v, torch.Tensor):
            v = v.to(device)
            if dtype is not None and v.is_floating_point() and k.startswith("pixel_values"):
                v = v.to(dtype)
        out[k] = v
    return out


@torch.no_grad()
def answer_losses(vlm: Any, samples: Sequence[VLMSample], with_visuals: bool, image_kwargs: dict | None = None
                  ) -> np.ndarray:
    """Per-sample mean answer-token loss for a batch (one forward pass)."""
    batch = encode_batch(vlm.processor, samples, with_visuals, with_answer=True, image_kwargs=image_kwargs)
    labels = batch.pop("labels")
    batch = move_to(batch, vlm.device, vlm.model.dtype)
    logits = vlm.model(**batch).logits
    return per_sample_loss(logits, labels.to(logits.device)).cpu().numpy().astype(np.float64)


@torch.no_grad()
def generate(vlm: Any, samples: Sequence[VLMSample], with_visuals: bool, *, max_new_tokens: int,
             do_sample: bool = False, num_return_sequences: int = 1, top_p: float | None = None,
             temperature: float | None = None, image_kwargs: dict | None = None) -> list[list[str]]:
    """One `generate` call for a batch; returns, per sample, its `num_return_sequences` decoded replies."""
    batch = encode_batch(vlm.processor, samples, with_visuals, with_answer=False, image_kwargs=image_kwargs)
    batch = move_to(batch, vlm.device, vlm.model.dtype)
    kw: dict[str, Any] = {"max_new_tokens": max_new_tokens, "do_sample": do_sample,
                          "num_return_sequences": num_return_sequences,
                          "pad_token_id": vlm.tokenizer.pad_token_id}
    if do_sample:
        kw.update(top_p=top_p, temperature=temperature, top_k=0)
    else:
        kw.update(top_p=None, temperature=None, top_k=None)
    out = vlm.model.generate(**batch, **kw)
    new = out[:, batch["input_ids"].shape[1]:]
    texts = vlm.processor.batch_decode(new, skip_special_tokens=True)
    r = num_return_sequences
    return [texts[i * r:(i + 1) * r] for i in range(len(samples))]
