"""Steps, samples seen and checkpoint steps of a one-epoch run (pure arithmetic, no torch).

Global batch B = per-device batch x gradient accumulation x processes. An epoch over n rows has
ceil(n / B) optimizer steps; after step s the run has seen min(s * B, n) samples. A checkpoint at
fraction f of the epoch is saved at the first step whose samples seen reach f * n, i.e.
s = ceil(f * n / B), and is named by the samples seen at that step, so the names are exact even when
n is not a multiple of B (37 rows, B = 4: 12, 20, 28, 37 for the quarters).
"""
from __future__ import annotations

import math


def total_steps(n_train: int, global_batch: int, epochs: int = 1) -> int:
    return epochs * math.ceil(n_train / global_batch)


def samples_seen(step: int, n_train: int, global_batch: int) -> int:
    """Samples seen after `step` optimizer steps (epochs wrap: counts every pass)."""
    per_epoch = math.ceil(n_train / global_batch)
    full, rest = divmod(step, per_epoch)
    return full * n_train + min(rest * global_batch, n_train)


def fraction_steps(fractions: list[float], n_train: int, global_batch: int, epochs: int = 1) -> list[int]:
    """Steps at which the given fractions of the whole run are reached (unique, increasing, >= 1)."""
    total = total_steps(n_train, global_batch, epochs)
    out = []
    for f in fractions:
        target = f * n_train * epochs
        s = total if f >= 1 else min(total, max(1, _first_step_reaching(target, n_train, global_batch)))
        if s not in out:
            out.append(s)
    return out


def _first_step_reaching(target: float, n_train: int, global_batch: int) -> int:
    per_epoch = math.ceil(n_train / global_batch)
    full, rest = divmod(target, n_train)
    return int(full) * per_epoch + math.ceil(round(rest, 9) / global_batch)


def checkpoint_name(step: int, n_train: int, global_batch: int) -> str:
    return f"checkpoint-{samples_seen(step, n_train, global_batch)}"
