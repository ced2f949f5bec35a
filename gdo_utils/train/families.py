"""Model families the trainer knows: how to find their vision tower, projector and LLM, and what FSDP wraps.

The family comes from `config.json`'s `model_type`. The layer classes are the models' own
`_no_split_modules` (the units FSDP wraps); the vision-tower prefixes include Qwen3-VL's deepstack
mergers (LLaMA-Factory #9399: forgetting them leaves part of the vision side trainable).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class UnknownFamilyError(ValueError):
    """The base model's model_type is not one the trainer supports."""


@dataclass(frozen=True)
class Family:
    """What the trainer needs to know about one model family."""

    name: str
    layer_classes: tuple[str, ...]
    vision: tuple[str, ...]
    projector: tuple[str, ...]
    llm: tuple[str, ...]
    qwen_pixels: bool         # image processor takes size={shortest_edge, longest_edge} in pixels
    video: bool               # accepts video input (train.video_input: video)
    dummy_text: str           # the prompt text of one image, for the dummy-image forward
    image_newline: bool = False  # the chat template already puts "\n" after each image (LLaVA-1.5)


FAMILIES: dict[str, Family] = {
    "qwen3_vl": Family("qwen3_vl", ("Qwen3VLTextDecoderLayer", "Qwen3VLVisionBlock"),
                       ("visual.patch_embed", "visual.pos_embed", "visual.blocks", "visual.deepstack_merger_list"),
                       ("visual.merger",), ("language_model", "lm_head"), True, True,
                       "<|vision_start|><|image_pad|><|vision_end|>"),
    "qwen2_5_vl": Family("qwen2_5_vl", ("Qwen2_5_VLDecoderLayer", "Qwen2_5_VLVisionBlock"),
                         ("visual.patch_embed", "visual.blocks"), ("visual.merger",), ("language_model", "lm_head"),
                         True, True, "<|vision_start|><|image_pad|><|vision_end|>"),
    "llava": Family("llava", ("LlamaDecoderLayer", "CLIPEncoderLayer"), ("vision_tower",),
                    ("multi_modal_projector",), ("language_model", "lm_head"), False, False, "<image>", True),
}


def family_of(model_type: str) -> Family:
    """The family for a config `model_type`, or a clear error listing the known ones."""
    if model_type not in FAMILIES:
        raise UnknownFamilyError(f"model_type {model_type!r} is not a supported family "
                                 f"(known: {', '.join(sorted(FAMILIES))})")
    return FAMILIES[model_type]


def family_of_model_path(path: str | Path) -> Family:
    """Read config.json (local dir or cached hub id) and return its family."""
    from transformers import AutoConfig

    return family_of(AutoConfig.from_pretrained(str(path)).model_type)


def _local(name: str) -> str:
    """Parameter name without the wrapper prefixes (`model.`, peft's `base_model.model.`)."""
    for pre in ("base_model.model.", "model."):
        if name.startswith(pre):
            name = name[len(pre):]
    return name


def part_of(name: str, fam: Family) -> str:
    """'vision', 'projector', 'llm' or 'other' for a parameter name."""
    local = _local(name)
    for part, prefixes in (("vision", fam.vision), ("projector", fam.projector), ("llm", fam.llm)):
        if any(local == p or local.startswith(p + ".") for p in prefixes):
            return part
    return "other"


def apply_freeze(model: Any, fam: Family, vision_tower: bool, projector: bool, llm: bool) -> dict[str, int]:
    """Set requires_grad False on the frozen parts; returns trainable parameter counts per part."""
    frozen = {"vision": vision_tower, "projector": projector, "llm": llm}
    counts: dict[str, int] = {"vision": 0, "projector": 0, "llm": 0, "other": 0}
    for n, p in model.named_parameters():
        part = part_of(n, fam)
        if frozen.get(part, False):
            p.requires_grad_(False)
        if p.requires_grad:
            counts[part] += p.numel()
    return counts


def lora_target_regex(fam: Family) -> str:
    """peft target_modules regex: every Linear of the LLM's decoder layers (not lm_head, vision or projector)."""
    return r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)$"


def projector_module_names(fam: Family) -> list[str]:
    """peft modules_to_save: the projector stays fully trainable under LoRA (LLaVA-1.5 recipe)."""
    return [re.sub(r"^visual\.", "", p) for p in fam.projector]
