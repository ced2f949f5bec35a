"""Another trainer's recipe for an exported subset: a LLaMA-Factory YAML and the `swift sft` command line.

`gdo-repro export` writes one beside each ms-swift / LLaMA-Factory export, built from the run's settings
(gdo_utils.train.recipes: its recipe preset, the train section's keys, its `train.run_overrides`): by default the
GDO release's recipe (ms-swift full SFT of
Qwen3-VL: AdamW lr 2e-5, beta2 0.95, warmup 0.1, cosine, weight decay 0.01, clip 1.0, bf16, gradient
checkpointing, max length 8192 with over-length rows dropped, 0.1% held out, data seed 42, images and frames
capped at 50176 px = 49 tokens, the release's 8-GPU DeepSpeed ZeRO-2), or the OFA LoRA recipe (`llava15_lora`)
where the run's recipe says so. Keys are the tools' own argument names (ms-swift 4.6 `SftArguments`, LLaMA-Factory 0.9.5
`hparams`); tests/test_user_path.py parses both with the tools' parsers when they are importable.

LLaMA-Factory's `dataset_info.json` is merged, never replaced: every other entry is kept, and an entry of
the same name describing a different file is refused unless forced.
"""
from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

from .config import TrainConfig
from .io import write_text
from .trainfile import ExportError

# LLaMA-Factory template per model family (its `qwen3_vl_nothink` is the one for the Instruct models).
LLAMAFACTORY_TEMPLATES = {"qwen3_vl": "qwen3_vl_nothink", "qwen2_5_vl": "qwen2_vl", "llava": "llava"}
# The family a model id names (used where config.json is not on this machine).
FAMILY_PATTERNS = (("qwen3_vl", r"qwen3[-_.]?vl"), ("qwen2_5_vl", r"qwen2[-_.]5[-_.]?vl"), ("llava", r"llava"))
RELEASE_GPUS = 8      # the release's NPROC_PER_NODE
PIXELS_PER_TOKEN = 32 * 32   # Qwen3-VL: patch 16, merge 2


def family_from_name(model: str) -> str | None:
    """The model family a hub id or folder name spells (qwen3_vl, qwen2_5_vl, llava), else None."""
    low = model.lower()
    return next((fam for fam, pat in FAMILY_PATTERNS if re.search(pat, low)), None)


def _bool(v: bool) -> str:
    return "true" if v else "false"


def swift_argv(cfg: TrainConfig, model: str, dataset: str | Path, output_dir: str | Path) -> list[str]:
    """`swift sft` arguments (without the program name) for one subset."""
    argv = ["--model", model, "--dataset", str(dataset), "--output_dir", str(output_dir)]
    if cfg.lora.enabled:
        argv += ["--tuner_type", "lora", "--lora_rank", str(cfg.lora.r), "--lora_alpha", str(cfg.lora.alpha),
                 "--lora_dropout", str(cfg.lora.dropout), "--target_modules", "all-linear"]
        if cfg.projector_lr:
            argv += ["--aligner_lr", str(cfg.projector_lr)]
    else:
        argv += ["--tuner_type", "full"]
    argv += ["--freeze_vit", _bool(cfg.freeze.vision_tower), "--freeze_aligner", _bool(cfg.freeze.projector),
             "--freeze_llm", _bool(cfg.freeze.llm),
             "--num_train_epochs", str(cfg.num_epochs), "--learning_rate", str(cfg.learning_rate),
             "--warmup_ratio", str(cfg.warmup_ratio), "--lr_scheduler_type", cfg.lr_scheduler,
             "--weight_decay", str(cfg.weight_decay), "--max_grad_norm", str(cfg.max_grad_norm),
             "--adam_beta1", str(cfg.adam_beta1), "--adam_beta2", str(cfg.adam_beta2),
             "--per_device_train_batch_size", str(cfg.per_device_batch_size),
             "--gradient_accumulation_steps", str(cfg.grad_accum),
             "--max_length", str(cfg.max_length),
             "--truncation_strategy", "delete" if cfg.over_length == "drop" else "right",
             "--split_dataset_ratio", str(cfg.eval_ratio), "--data_seed", str(cfg.data_seed), "--seed", str(cfg.seed),
             "--train_dataloader_shuffle", "true", "--strict", _bool(cfg.strict),
             "--torch_dtype", "bfloat16", "--gradient_checkpointing", _bool(cfg.gradient_checkpointing),
             "--dataloader_num_workers", str(cfg.dataloader_workers), "--save_only_model", _bool(cfg.save_only_model),
             "--deepspeed", "zero2"]
    if cfg.attn_implementation == "flash_attention_2":
        argv += ["--attn_impl", "flash_attn"]
    return argv


def swift_command(cfg: TrainConfig, model: str, dataset: str | Path, output_dir: str | Path) -> str:
    """The full shell line: pixel cap and GPU count as environment variables, then `swift sft ...`."""
    tokens = max(1, cfg.max_pixels // PIXELS_PER_TOKEN)
    env = [f"NPROC_PER_NODE={RELEASE_GPUS}", f"MAX_PIXELS={cfg.max_pixels}", f"IMAGE_MAX_TOKEN_NUM={tokens}"]
    return " ".join(env + ["swift", "sft"] + [shlex.quote(a) for a in swift_argv(cfg, model, dataset, output_dir)])


def llamafactory_args(cfg: TrainConfig, model: str, dataset_name: str, dataset_dir: str | Path,
                      output_dir: str | Path) -> dict[str, Any]:
    """LLaMA-Factory training arguments (`llamafactory-cli train <yaml>`) for one dataset_info entry."""
    family = family_from_name(model)
    args: dict[str, Any] = {
        "model_name_or_path": model, "trust_remote_code": True,
        "image_max_pixels": cfg.max_pixels, "image_min_pixels": cfg.min_pixels,
        "stage": "sft", "do_train": True, "finetuning_type": "lora" if cfg.lora.enabled else "full",
        "freeze_vision_tower": cfg.freeze.vision_tower, "freeze_multi_modal_projector": cfg.freeze.projector,
        "freeze_language_model": cfg.freeze.llm,
    }
    if cfg.lora.enabled:
        args.update(lora_rank=cfg.lora.r, lora_alpha=cfg.lora.alpha, lora_dropout=cfg.lora.dropout, lora_target="all")
    args.update({
        "dataset": dataset_name, "dataset_dir": str(dataset_dir),
        "template": LLAMAFACTORY_TEMPLATES.get(family or "", "qwen3_vl_nothink"),
        "cutoff_len": cfg.max_length, "val_size": cfg.eval_ratio, "preprocessing_num_workers": cfg.dataloader_workers,
        "dataloader_num_workers": cfg.dataloader_workers,
        "output_dir": str(output_dir), "logging_steps": 1, "save_only_model": cfg.save_only_model,
        "per_device_train_batch_size": cfg.per_device_batch_size, "gradient_accumulation_steps": cfg.grad_accum,
        "learning_rate": cfg.learning_rate, "num_train_epochs": float(cfg.num_epochs),
        "lr_scheduler_type": cfg.lr_scheduler, "warmup_ratio": cfg.warmup_ratio, "weight_decay": cfg.weight_decay,
        "max_grad_norm": cfg.max_grad_norm, "adam_beta1": cfg.adam_beta1, "adam_beta2": cfg.adam_beta2,
        "bf16": True, "seed": cfg.seed, "data_seed": cfg.data_seed,
        "disable_gradient_checkpointing": not cfg.gradient_checkpointing,
        "deepspeed": "examples/deepspeed/ds_z2_config.json",
    })
    return args


def llamafactory_yaml(args: dict[str, Any], note: str) -> str:
    """The YAML text (a comment header, then one key per line in the order given)."""
    import yaml

    header = "".join(f"# {line}\n" for line in note.splitlines())
    return header + yaml.safe_dump(args, sort_keys=False, allow_unicode=True)


def merged_dataset_info(info_file: str | Path, entry: dict[str, dict], force: bool = False) -> dict:
    """LLaMA-Factory's dataset_info.json with `entry` added, every other entry kept (in its order).

    An existing entry of the same name that differs is refused (ExportError naming the file) unless
    `force`; an identical one stays as it is, so exporting twice is harmless. Nothing is written here.
    """
    info_file = Path(info_file)
    existing: dict = {}
    if info_file.is_file():
        try:
            existing = json.loads(info_file.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ExportError(f"{info_file}:{exc.lineno}:{exc.colno}: not JSON ({exc.msg}); nothing was written") from None
        if not isinstance(existing, dict):
            raise ExportError(f"{info_file}: top level must be an object of dataset entries; nothing was written")
    for name, spec in entry.items():
        old = existing.get(name)
        if old is not None and old != spec and not force:
            where = old.get("file_name") if isinstance(old, dict) else old
            raise ExportError(f"{info_file}: a dataset named {name!r} already exists (file_name {where!r}); nothing "
                              f"was written: export under another name (--out <dir>/<new name>.json) or pass --force "
                              f"to replace that entry")
    merged = dict(existing)
    merged.update(entry)
    return merged


def write_dataset_info(info_file: str | Path, info: dict) -> Path:
    """Write dataset_info.json as LLaMA-Factory keeps it (indent 2, UTF-8, key order kept)."""
    return write_text(info_file, json.dumps(info, indent=2, ensure_ascii=False) + "\n")


def write_recipe(fmt: str, export_file: str | Path, cfg: TrainConfig, model: str, dataset_name: str,
                 output_dir: str | Path) -> Path | None:
    """The trainer's recipe beside an export (`<stem>.swift_sft.sh` / `<stem>.llamafactory.yaml`); None for others."""
    export_file = Path(export_file).resolve()
    note = (f"Recipe for {export_file.name}, written by gdo-repro export from the run's train section "
            f"(the GDO release's hyper-parameters unless the params change them).")
    if fmt == "ms-swift":
        out = export_file.with_name(export_file.stem + ".swift_sft.sh")
        text = f"#!/bin/sh\n# {note}\n{swift_command(cfg, model, export_file, output_dir)}\n"
        return write_text(out, text)
    if fmt == "llama-factory":
        out = export_file.with_name(export_file.stem + ".llamafactory.yaml")
        args = llamafactory_args(cfg, model, dataset_name, export_file.parent, output_dir)
        return write_text(out, llamafactory_yaml(args, note + "\nRun: llamafactory-cli train " + out.name))
    return None
