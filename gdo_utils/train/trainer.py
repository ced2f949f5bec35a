"""The Trainer and its arguments: the release recipe (ms-swift full SFT) as transformers TrainingArguments.

`KitTrainer` adds what the stock Trainer lacks: an own learning rate for the projector (the OFA
LLaVA-1.5 LoRA recipe trains the projector at 2e-5 beside LoRA at 2e-4), length-grouped batches
from the token counts measured before training (instead of re-encoding every row to measure it), and
LLaVA's modality-grouped batches (gdo_utils.train.sampling).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from transformers import Trainer, TrainingArguments
from transformers.trainer_pt_utils import LengthGroupedSampler

from ..config import TrainConfig
from .families import Family, part_of
from .sampling import ModalityLengthSampler


def bf16_enabled(cfg: TrainConfig) -> bool:
    """bf16 autocast: 'auto' -> on when a CUDA device supports it, off on CPU."""
    if cfg.bf16 == "auto":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return cfg.bf16 == "true"


def check_speed_options(cfg: TrainConfig, on_gpu: bool) -> None:
    """GPU-only options must be off on CPU, and their packages installed (clear error before any work)."""
    import importlib.util

    wanted = {"train.liger": cfg.liger, "train.attn_implementation=flash_attention_2":
              cfg.attn_implementation == "flash_attention_2"}
    for name, on in wanted.items():
        if on and not on_gpu:
            raise ValueError(f"{name} needs a CUDA device (this run is on CPU): turn it off")
    if cfg.liger and importlib.util.find_spec("liger_kernel") is None:
        raise ValueError("train.liger: the liger-kernel package is not installed (pip install liger-kernel)")
    if cfg.attn_implementation == "flash_attention_2" and importlib.util.find_spec("flash_attn") is None:
        raise ValueError("train.attn_implementation=flash_attention_2: the flash-attn package is not installed")


def training_arguments(cfg: TrainConfig, output_dir: Path, *, use_cpu: bool, fsdp_checkpointing: bool,
                       has_eval: bool) -> TrainingArguments:
    """TrainingArguments for the recipe; saving / evaluation are driven by the SampleCheckpoints callback."""
    gc = cfg.gradient_checkpointing and not fsdp_checkpointing  # FSDP's activation checkpointing replaces it
    return TrainingArguments(
        output_dir=str(output_dir),
        per_device_train_batch_size=cfg.per_device_batch_size,
        per_device_eval_batch_size=cfg.per_device_batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        num_train_epochs=cfg.num_epochs,
        learning_rate=cfg.learning_rate,
        adam_beta1=cfg.adam_beta1, adam_beta2=cfg.adam_beta2, adam_epsilon=cfg.adam_epsilon,
        optim="adamw_torch",
        weight_decay=cfg.weight_decay,
        warmup_steps=cfg.warmup_ratio,          # < 1: a ratio of the total steps (transformers 5.x)
        lr_scheduler_type=cfg.lr_scheduler,
        max_grad_norm=cfg.max_grad_norm,
        bf16=bf16_enabled(cfg) and not use_cpu,
        activation_checkpointing=gc,
        activation_checkpointing_kwargs={"use_reentrant": False} if gc else None,
        use_liger_kernel=cfg.liger,
        seed=cfg.seed, data_seed=cfg.data_seed,
        logging_strategy="steps", logging_steps=1, logging_first_step=True,
        include_num_input_tokens_seen="non_padding",
        save_strategy="no", eval_strategy="no", eval_on_start=has_eval,
        save_only_model=cfg.save_only_model,
        dataloader_num_workers=cfg.dataloader_workers,
        dataloader_persistent_workers=cfg.dataloader_workers > 0,
        remove_unused_columns=False, label_names=["labels"],
        report_to="none", disable_tqdm=True, use_cpu=use_cpu,
        ddp_find_unused_parameters=False,
    )


class KitTrainer(Trainer):
    """Trainer with a projector learning rate and length grouping from precomputed token counts."""

    def __init__(self, *args: Any, family: Family, projector_lr: float | None = None,
                 group_by_length: bool = False, group_by_modality: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.family, self.projector_lr, self.group_by_length = family, projector_lr, group_by_length
        self.group_by_modality = group_by_modality

    def create_optimizer(self, model=None):
        opt = super().create_optimizer(model)
        if self.projector_lr is None:
            return opt
        names = {id(p): n for n, p in (model or self.model).named_parameters()}
        groups = []
        for g in opt.param_groups:
            proj = [p for p in g["params"] if part_of(names.get(id(p), ""), self.family) == "projector"]
            rest = [p for p in g["params"] if part_of(names.get(id(p), ""), self.family) != "projector"]
            groups += [{**g, "params": ps, "lr": lr} for ps, lr in ((rest, g["lr"]), (proj, self.projector_lr)) if ps]
        opt.param_groups = groups
        return opt

    def _get_train_sampler(self, train_dataset=None):
        ds = train_dataset if train_dataset is not None else self.train_dataset
        if self.group_by_modality:   # LLaVA: batch = per-device, world = processes x accumulation
            return ModalityLengthSampler(ds.modality_lengths, self.args.per_device_train_batch_size,
                                         self.args.world_size * self.args.gradient_accumulation_steps,
                                         self.args.data_seed)
        if not self.group_by_length:
            return super()._get_train_sampler(train_dataset)
        g = torch.Generator().manual_seed(self.args.data_seed)
        return LengthGroupedSampler(self.args.train_batch_size * self.args.gradient_accumulation_steps,
                                    lengths=list(ds.lengths), generator=g)
