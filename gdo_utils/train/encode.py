"""One training row -> model inputs: chat template, media, placeholder expansion, answer-only labels.

The processor's own chat template renders the turns (no system prompt, as the release); the
processor expands each image / video placeholder to its token count. Labels keep the tokens of every
assistant answer and its end-of-turn token, what each family's own recipe supervises: `answer<|im_end|>`
for Qwen (ms-swift), `answer</s>` for LLaVA-1.5. llava-1.5-hf's chat template writes no end-of-turn
token after an answer ("ASSISTANT: answer USER: ..."), so `close_answers` puts the tokenizer's eos
there, as LLaVA-1.5's conversation format does ("ASSISTANT: answer</s>USER: ..."); every prompt token is -100. The
answer spans are found as character spans of the rendered text (the template rendered up to each
assistant turn is a prefix of the whole) and carried through the placeholder expansion with the
processor's `text_replacement_offsets`, then mapped to tokens with the tokenizer's offsets.

Videos (GDO rows: up to 32 frames): `frames` (release) gives each frame as a separate image of at most
`max_pixels` pixels, no timestamps; `video` gives one video with its true timestamps
(index / fps) and `do_sample_frames=False`, so the processor does not resample the chosen frames.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
from PIL import Image

from ..imageprep import training_images
from ..media import load_image, read_video_frames
from .families import Family
from .records import PLACEHOLDER, TrainRecord

IGNORE_INDEX = -100
SEQ_KEYS = ("input_ids", "attention_mask", "labels", "mm_token_type_ids", "token_type_ids")


@dataclass(frozen=True)
class EncodeSettings:
    """What shapes the encoding: video input mode, pixel bounds, length policy."""

    video_input: str = "frames"
    max_pixels: int = 50176
    min_pixels: int = 4096
    max_length: int = 8192
    over_length: str = "drop"
    default_video_fps: float = 2.0


class RowSkipped(Exception):
    """A row that cannot be trained on (over length, no answer left); `reason` is a short tag."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        super().__init__(f"{reason}: {detail}" if detail else reason)


@dataclass
class Media:
    """A row's loaded media: images (one per placeholder) or one video (frames + metadata)."""

    images: list[Image.Image]
    video: np.ndarray | None = None
    fps: float | None = None
    indices: list[int] | None = None


# ----------------------------------------------------------------------------- media
def load_media(rec: TrainRecord, settings: EncodeSettings, family: Family) -> Media:
    """Decode a row's media (raises gdo_utils.media.MediaError for missing / corrupt files)."""
    if rec.media_kind == "text":
        return Media([])
    if rec.media_kind == "image":
        return Media([load_image(rec.images[0])])
    if rec.media_kind == "video":
        frames, ts, idx = read_video_frames(rec.videos[0], rec.frame_indices[0])
        pils = [Image.fromarray(f) for f in frames]
        fps = rec.video_fps or _decoder_fps(ts, idx) or settings.default_video_fps
    else:  # frames
        pils = [load_image(p) for p in rec.images]
        idx = rec.frame_indices[0] if rec.frame_indices else list(range(len(pils)))
        fps = rec.video_fps or settings.default_video_fps
    if settings.video_input == "video" and family.video:
        size = pils[0].size
        arr = np.stack([np.asarray(im if im.size == size else im.resize(size)) for im in pils])
        return Media([], video=arr, fps=float(fps), indices=list(idx))
    return Media(pils)


def _decoder_fps(ts: np.ndarray, idx: Sequence[int]) -> float | None:
    """fps implied by the decoder's true timestamps of two decoded frames (None when undefined)."""
    if len(idx) < 2 or ts[-1] <= ts[0]:
        return None
    return float((idx[-1] - idx[0]) / (ts[-1] - ts[0]))


# ----------------------------------------------------------------------------- chat
def chat_messages(rec: TrainRecord, as_video: bool, image_newline: bool = False) -> list[dict]:
    """C1 turns as the processor's structured content ("<image>" -> image items; a video row's frames -> one video).

    With `image_newline` (templates that write "<image>\n" themselves) the C1 newline after a placeholder is dropped.
    """
    out = []
    video_done = False
    for m in rec.messages:
        if m["role"] == "assistant":
            out.append({"role": "assistant", "content": [{"type": "text", "text": m["content"]}]})
            continue
        parts = m["content"].split(PLACEHOLDER)
        content: list[dict] = []
        for i, text in enumerate(parts):
            if i > 0:
                if not as_video:
                    content.append({"type": "image"})
                elif not video_done:
                    content.append({"type": "video"})
                    video_done = True
            if i > 0 and image_newline and text.startswith("\n"):
                text = text[1:]
            if text:
                content.append({"type": "text", "text": text})
        out.append({"role": "user", "content": content})
    return out


def render_with_spans(processor: Any, messages: list[dict]) -> tuple[str, list[tuple[int, int]]]:
    """The chat-template text of the conversation and the (start, end) char span of every answer.

    An answer span runs from the end of the prompt rendered up to that turn (with the generation
    prompt) to the end of the turn's rendering, trailing whitespace excluded (so it holds
    `answer<|im_end|>` for ChatML, `answer</s>` for LLaVA-1.5).
    """
    full = processor.apply_chat_template(messages, tokenize=False)
    spans = []
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        start_text = processor.apply_chat_template(messages[:i], tokenize=False, add_generation_prompt=True)
        end_text = processor.apply_chat_template(messages[:i + 1], tokenize=False)
        if not full.startswith(start_text) or not full.startswith(end_text):
            raise ValueError("the chat template is not prefix-stable (a later turn changes earlier text); "
                             "answer spans cannot be located")
        spans.append((len(start_text), len(end_text.rstrip())))
    return full, spans


def close_answers(text: str, spans: list[tuple[int, int]], eos: str | None) -> tuple[str, list[tuple[int, int]]]:
    """End every answer span with `eos` (replacing the whitespace after it) unless it already ends with it."""
    if not eos:
        return text, spans
    parts, out, pos, shift = [], [], 0, 0
    for a, b in spans:
        if text[a:b].endswith(eos):
            out.append((a + shift, b + shift))
            continue
        c = b
        while c < len(text) and text[c].isspace():
            c += 1
        parts += [text[pos:b], eos]
        out.append((a + shift, b + shift + len(eos)))
        shift += len(eos) - (c - b)
        pos = c
    parts.append(text[pos:])
    return "".join(parts), out


def _shift(pos: int, replacements: list[dict]) -> int:
    """Position in the expanded text of a char position of the rendered text."""
    delta = 0
    for r in replacements:
        if r["span"][1] <= pos:
            delta += (r["new_span"][1] - r["new_span"][0]) - (r["span"][1] - r["span"][0])
    return pos + delta


def processor_kwargs(family: Family, settings: EncodeSettings, media: Media) -> dict:
    """Pixel bounds per image (Qwen families), and the video settings that keep the chosen frames."""
    kw: dict[str, Any] = {}
    if media.images and family.qwen_pixels:
        kw["images_kwargs"] = {"size": {"shortest_edge": settings.min_pixels, "longest_edge": settings.max_pixels}}
    if media.video is not None:
        from transformers.video_utils import VideoMetadata

        t = len(media.video)
        kw["videos"] = [media.video]
        kw["videos_kwargs"] = {
            "do_sample_frames": False, "return_metadata": True,
            "video_metadata": [VideoMetadata(total_num_frames=max(media.indices) + 1, fps=media.fps,
                                             frames_indices=list(media.indices), height=media.video.shape[1],
                                             width=media.video.shape[2])],
            "size": {"shortest_edge": settings.min_pixels * t, "longest_edge": settings.max_pixels * t},
        }
    return kw


def encode_row(processor: Any, family: Family, rec: TrainRecord, media: Media, settings: EncodeSettings) -> dict:
    """Model inputs for one row (batch dim 1) with `labels`; raises RowSkipped when the row cannot train."""
    msgs = chat_messages(rec, as_video=media.video is not None, image_newline=family.image_newline)
    text, spans = close_answers(*render_with_spans(processor, msgs), processor.tokenizer.eos_token)
    kw = processor_kwargs(family, settings, media)
    images = training_images(processor, family.name, media.images)   # LLaVA: padded to a square (imageprep)
    enc = processor(text=[text], images=images or None, return_tensors="pt", return_offsets_mapping=True,
                    return_text_replacement_offsets=True, **kw)
    repl = enc.pop("text_replacement_offsets")[0] if "text_replacement_offsets" in enc else []
    offsets = enc.pop("offset_mapping")[0]
    enc.pop("video_metadata", None)
    ids = enc["input_ids"]
    labels = torch.full_like(ids, IGNORE_INDEX)
    starts, ends = offsets[:, 0], offsets[:, 1]
    for a, b in spans:
        a2, b2 = _shift(a, repl), _shift(b, repl)
        inside = (ends > a2) & (starts < b2) & (ends > starts)
        labels[0, inside] = ids[0, inside]
    enc["labels"] = labels
    out = {k: v for k, v in enc.items() if isinstance(v, torch.Tensor)}
    if "mm_token_type_ids" not in out and family.qwen_pixels:
        raise ValueError("the processor returned no mm_token_type_ids (Qwen-VL models need them)")
    return apply_length_policy(out, settings, processor)


def apply_length_policy(enc: dict, settings: EncodeSettings, processor: Any) -> dict:
    """Drop (release) or truncate a row longer than max_length; a cut may not split visual tokens."""
    n = enc["input_ids"].shape[1]
    if n <= settings.max_length:
        return enc
    if settings.over_length == "drop":
        raise RowSkipped("over_length", f"{n} tokens > max_length {settings.max_length}")
    keep = settings.max_length
    special = {getattr(processor, "image_token_id", None), getattr(processor, "video_token_id", None)} - {None}
    tail = enc["input_ids"][0, keep:].tolist()
    if any(t in special for t in tail):
        raise RowSkipped("over_length_visual", f"{n} tokens; the cut at {keep} would split the visual tokens")
    out = {k: (v[:, :keep] if k in SEQ_KEYS else v) for k, v in enc.items()}
    if not (out["labels"] != IGNORE_INDEX).any():
        raise RowSkipped("no_answer_after_truncation", f"{n} tokens cut to {keep}")
    return out
