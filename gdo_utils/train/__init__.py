"""Fine-tuning on a subset with transformers' Trainer + accelerate (notebook 04, `gdo-repro train`).

Modules, lower layers first: records (read C1 / LLaVA JSON), families (vision / projector / LLM, FSDP
classes), encode (chat template, media, answer-only labels), collate (padding, dummy image), data
(row check, held-out split, dataset), schedule (steps, samples seen, checkpoint steps), callbacks,
trainer (TrainingArguments, KitTrainer), launch (accelerate configs and command), logs, run
(orchestration, run folder C2), worker (process entry point).
"""
from .run import EmptySubsetError, plan_run, prepare, print_launch, run_worker, train_runs, train_subset

__all__ = ["EmptySubsetError", "plan_run", "prepare", "print_launch", "run_worker", "train_runs", "train_subset"]
