"""Trainer callbacks: save / evaluate at exact steps, name checkpoints by samples seen, time the steps.

Checkpoint naming uses the Trainer's own saving: the Trainer writes `checkpoint-<step>` into a
staging folder (its `output_dir`, `<run>/.trainer/`), and `on_save` moves the finished folder to
`<run>/checkpoint-<samples seen>` (an atomic rename on one filesystem) after every rank has written
its part. A run killed between the two leaves a staging folder that `finalize_staged` completes (or
removes when the Trainer had not finished writing it) before the next start.
"""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any, Callable

from transformers import TrainerCallback

from .schedule import samples_seen

TRAINER_STATE = "trainer_state.json"


def _barrier() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def finalize_staged(staging: Path, run_dir: Path, name_of: Callable[[int], str]) -> list[str]:
    """Move complete staged checkpoints to their samples-seen names; drop incomplete ones. Returns names moved."""
    moved = []
    if not staging.is_dir():
        return moved
    for d in sorted(staging.glob("checkpoint-*")):
        step = int(d.name.split("-")[1])
        if (d / TRAINER_STATE).is_file():
            dest = run_dir / name_of(step)
            if dest.exists():
                shutil.rmtree(dest)
            os.replace(d, dest)
            moved.append(dest.name)
        else:
            shutil.rmtree(d)
    return moved


class SampleCheckpoints(TrainerCallback):
    """Request saves / evaluations at fixed steps; rename each saved checkpoint to checkpoint-<samples seen>."""

    def __init__(self, run_dir: Path, save_steps: list[int], eval_steps: list[int], n_train: int, global_batch: int,
                 expected_steps: int, on_saved: Callable[[int, str], None] | None = None) -> None:
        self.run_dir, self.staging = Path(run_dir), Path(run_dir) / ".trainer"
        self.save_steps, self.eval_steps = set(save_steps), set(eval_steps)
        self.n_train, self.global_batch, self.expected_steps = n_train, global_batch, expected_steps
        self.on_saved = on_saved

    def on_train_begin(self, args, state, control, **kwargs):
        if state.max_steps != self.expected_steps:
            raise RuntimeError(f"the Trainer plans {state.max_steps} steps but the schedule expects "
                               f"{self.expected_steps} (n_train {self.n_train}, global batch {self.global_batch})")

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step in self.save_steps:
            control.should_save = True
        if state.global_step in self.eval_steps:
            control.should_evaluate = True
        return control

    def on_save(self, args, state, control, **kwargs):
        _barrier()
        if state.is_world_process_zero:
            src = self.staging / f"checkpoint-{state.global_step}"
            name = f"checkpoint-{samples_seen(state.global_step, self.n_train, self.global_batch)}"
            dest = self.run_dir / name
            if dest.exists():
                shutil.rmtree(dest)
            os.replace(src, dest)
            if self.on_saved is not None:
                self.on_saved(state.global_step, name)
        _barrier()
        return control


class StepTimer(TrainerCallback):
    """Adds samples seen and the compute seconds since the previous log to each log_history entry."""

    def __init__(self, n_train: int, global_batch: int) -> None:
        self.n_train, self.global_batch = n_train, global_batch
        self._t0: float | None = None
        self._acc = 0.0

    def on_step_begin(self, args, state, control, **kwargs):
        self._t0 = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        if self._t0 is not None:
            self._acc += time.perf_counter() - self._t0
            self._t0 = None

    def on_log(self, args, state, control, logs: dict[str, Any] | None = None, **kwargs):
        if not state.log_history:
            return
        entry = state.log_history[-1]
        entry["samples_seen"] = samples_seen(state.global_step, self.n_train, self.global_batch)
        if "loss" in entry:
            entry["step_seconds"] = self._acc
            self._acc = 0.0
