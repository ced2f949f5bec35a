"""Trainer callbacks: save / evaluate at exact steps, name checkpoints by samples seen, time the steps.

Checkpoint naming uses the Trainer's own saving: the Trainer writes `checkpoint-<step>` into a
staging folder (its `output_dir`, `<run>/.trainer/`), and `on_save` moves the finished folder to
`<run>/checkpoint-<samples seen>` (an atomic rename on one filesystem) after every rank has written
its part. A run killed between the two leaves a staging folder that `finalize_staged` completes (or
removes when the Trainer had not finished writing it) before the next start.

The Trainer writes `trainer_state.json` last, so a staged checkpoint is complete when that file parses
(`state_step`); a cut or missing file means the save was interrupted and the folder is never promoted.
A checkpoint is resumable to the weights an uninterrupted run ends with only when it also holds the
optimizer, scheduler and RNG states (`has_full_state`; `train.save_only_model: true` leaves them out).
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any, Callable

from transformers import TrainerCallback

from .schedule import samples_seen

TRAINER_STATE = "trainer_state.json"
log = logging.getLogger(__name__)


class BrokenCheckpointError(RuntimeError):
    """A checkpoint folder whose trainer_state.json is missing, cut or not a Trainer state."""


def state_step(ckpt: Path) -> int:
    """global_step from a checkpoint's trainer_state.json; BrokenCheckpointError naming the file otherwise."""
    f = Path(ckpt) / TRAINER_STATE
    try:
        step = json.loads(f.read_text(encoding="utf-8"))["global_step"]
    except FileNotFoundError:
        raise BrokenCheckpointError(f"{f}: missing (the save was interrupted)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BrokenCheckpointError(f"{f}: not valid JSON ({exc}); the save was interrupted") from None
    except (KeyError, TypeError):
        raise BrokenCheckpointError(f"{f}: no global_step (not a Trainer state)") from None
    if not isinstance(step, int):
        raise BrokenCheckpointError(f"{f}: global_step {step!r} is not an integer")
    return step


def has_full_state(ckpt: Path) -> bool:
    """True when a checkpoint holds optimizer, scheduler and RNG states (a resume continues the same run).

    Plain / DDP saves write optimizer.pt + scheduler.pt + rng_state*.pth; FSDP an optimizer* file or folder;
    DeepSpeed a global_step* folder holding the optimizer shards (with scheduler.pt and the RNG files).
    """
    names = [p.name for p in Path(ckpt).iterdir()]
    optim = any(n.startswith("optimizer") or n.startswith("global_step") for n in names)
    return optim and "scheduler.pt" in names and any(n.startswith("rng_state") for n in names)


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
        try:
            state_step(d)
        except BrokenCheckpointError as exc:
            log.warning("staged checkpoint not promoted, removed: %s", exc)
            shutil.rmtree(d)
            continue
        dest = run_dir / name_of(step)
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(d, dest)
        moved.append(dest.name)
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
            state_step(src)  # written and readable before the checkpoint becomes visible
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
