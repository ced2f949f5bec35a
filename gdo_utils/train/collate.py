"""Batch collation for any AutoModelForImageTextToText + AutoProcessor family.

Each row is encoded alone (`encode.encode_row`), then the batch is right-padded (pad id, attention 0,
labels -100, mm_token_type_ids 0) and the vision tensors are concatenated in row order, which is how
Qwen-VL (flattened patches + grid_thw) and LLaVA (stacked pixel_values) both expect them.

Text-only batches: a rank whose micro-batch holds no media would skip the vision tower while the
other ranks run it, and FSDP / ZeRO then wait forever (transformers #37186). With
`text_only_batches: dummy_image` (default) such a batch gets one small dummy image appended after
the end of its first row, with attention mask 0 and labels -100: the vision tower runs on every
rank, and because the dummy sits after the row's last real token (causal attention, masked), the
loss is unchanged (checked by a test). This is LLaMA-Factory's fix; ms-swift adds 0 x the
vision output instead.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch
from PIL import Image

from .encode import IGNORE_INDEX, SEQ_KEYS, EncodeSettings, Media, encode_row
from .families import Family
from .records import TrainRecord

DUMMY_SIZE = 32


def pad_and_concat(rows: Sequence[dict], pad_id: int) -> dict:
    """Right-pad the sequence tensors of single-row encodings; concatenate the rest along dim 0."""
    width = max(r["input_ids"].shape[1] for r in rows)
    fill = {"input_ids": pad_id, "attention_mask": 0, "labels": IGNORE_INDEX, "mm_token_type_ids": 0,
            "token_type_ids": 0}
    out: dict[str, Any] = {}
    keys = [k for k in rows[0] if all(k in r for r in rows)]
    for k in keys:
        if k in SEQ_KEYS:
            parts = []
            for r in rows:
                v = r[k]
                pad = width - v.shape[1]
                parts.append(torch.cat([v, torch.full((1, pad), fill[k], dtype=v.dtype)], dim=1) if pad else v)
            out[k] = torch.cat(parts, dim=0)
        else:
            out[k] = torch.cat([r[k] for r in rows], dim=0)
    for k in {k for r in rows for k in r} - set(keys):
        have = [r[k] for r in rows if k in r]
        if k in SEQ_KEYS:
            raise ValueError(f"sequence key {k!r} missing from some rows")
        out[k] = torch.cat(have, dim=0)
    return out


def has_visual(enc: dict) -> bool:
    return any(k.startswith("pixel_values") for k in enc)


@dataclass
class Collator:
    """Turns dataset items (record + loaded media) into one padded model batch."""

    processor: Any
    family: Family
    settings: EncodeSettings
    text_only_batches: str = "dummy_image"

    def encode(self, rec: TrainRecord, media: Media) -> dict:
        return encode_row(self.processor, self.family, rec, media, self.settings)

    def dummy(self) -> dict:
        """Encoding of one masked dummy image (attention 0, labels -100)."""
        kw: dict[str, Any] = {}
        if self.family.qwen_pixels:
            kw["images_kwargs"] = {"size": {"shortest_edge": self.settings.min_pixels,
                                            "longest_edge": self.settings.max_pixels}}
        enc = self.processor(text=[self.family.dummy_text], images=[Image.new("RGB", (DUMMY_SIZE, DUMMY_SIZE))],
                             return_tensors="pt", add_special_tokens=False, **kw)
        out = {k: v for k, v in enc.items() if isinstance(v, torch.Tensor)}
        out["attention_mask"] = torch.zeros_like(out["input_ids"])
        out["labels"] = torch.full_like(out["input_ids"], IGNORE_INDEX)
        return out

    def __call__(self, items: Sequence[dict]) -> dict:
        rows = [self.encode(it["record"], it["media"]) for it in items]
        if self.text_only_batches == "dummy_image" and not any(has_visual(r) for r in rows):
            d = self.dummy()
            first = rows[0]
            rows[0] = {k: torch.cat([first[k], d[k]], dim=1) for k in first if k in SEQ_KEYS and k in d}
            rows[0].update({k: v for k, v in d.items() if k not in SEQ_KEYS})
        pad_id = self.processor.tokenizer.pad_token_id
        return pad_and_concat(rows, pad_id if pad_id is not None else 0)
