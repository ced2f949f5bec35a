"""Fine-tuning on a subset with transformers' Trainer + accelerate (notebook 04, `gdo-repro train`).

Modules, lower layers first: records (read C1 / LLaVA JSON), families (vision / projector / LLM, FSDP
classes), encode (chat template, media, answer + end-of-turn labels), collate (padding, dummy image), data
(row check, held-out split, dataset), schedule (steps, samples seen, checkpoint steps), sampling (LLaVA's
modality-grouped order), callbacks, trainer (TrainingArguments, KitTrainer), recipes (named presets per
run), launch (accelerate configs and command), logs, llava (the OFA starting model, assemble-llava), tiny
(tiny Qwen2.5-VL / LLaVA), run (orchestration, run folder C2), worker (process entry point). The entry points load lazily so that
importing an error class from a light module does not import torch and transformers.
"""
from __future__ import annotations

from typing import Any

_RUN_NAMES = ("EmptySubsetError", "plan_run", "prepare", "print_launch", "run_worker", "train_runs", "train_subset",
              "load_run_logs")
__all__ = list(_RUN_NAMES)


def __getattr__(name: str) -> Any:
    if name in _RUN_NAMES:
        from . import run

        return getattr(run, name)
    raise AttributeError(name)
