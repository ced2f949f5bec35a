"""Prepare a subset for training: read, hold out, check every row once, and serve rows to the Trainer.

`prepare_rows` encodes every row once before training starts (as ms-swift does): missing or corrupt
media and over-length rows are found here, skipped and counted with their reason (or stop the run
with `strict`), and each kept row's exact token count is known (for length-grouped batching and the
report). The held-out split is seeded (ceil(eval_ratio * n) rows, at least one when the ratio is > 0,
as `datasets.train_test_split` counts) and taken from the rows that passed the check.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from ..media import MediaError
from .encode import EncodeSettings, RowSkipped, load_media
from .families import Family
from .records import TrainRecord


class BadRowError(RuntimeError):
    """A row failed its check under `strict`; names file, line and id."""


@dataclass
class Prepared:
    """Rows that passed the check (with token counts), the held-out rows, and what was skipped."""

    train: list[TrainRecord]
    eval: list[TrainRecord]
    lengths: dict[str, int]
    skipped: list[dict]


def held_out_count(n: int, ratio: float) -> int:
    """Rows held out: ceil(ratio * n), at least 1 when ratio > 0 and n > 1."""
    if ratio <= 0 or n < 2:
        return 0
    return min(n - 1, max(1, math.ceil(ratio * n)))


def split_held_out(rows: Sequence[TrainRecord], ratio: float, seed: int) -> tuple[list, list]:
    """Seeded split into (train, eval); both keep the file order."""
    k = held_out_count(len(rows), ratio)
    pick = set(np.random.default_rng(seed).permutation(len(rows))[:k].tolist())
    return ([r for i, r in enumerate(rows) if i not in pick], [r for i, r in enumerate(rows) if i in pick])


class _CheckRows(torch.utils.data.Dataset):
    """Each item: (position, n_tokens or None, skip reason or None) for one row, so a DataLoader can parallelise it."""

    def __init__(self, rows: Sequence[TrainRecord], encode: Callable[[TrainRecord], dict], strict: bool) -> None:
        self.rows, self.encode, self.strict = rows, encode, strict

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> tuple[int, int | None, str | None, str]:
        rec = self.rows[i]
        try:
            return i, int(self.encode(rec)["input_ids"].shape[1]), None, ""
        except (MediaError, RowSkipped) as exc:
            reason = exc.reason
            if self.strict:
                raise BadRowError(f"{rec.source_file}:{rec.line}: row {rec.id!r}: {exc} "
                                  f"(train.strict is true; set it false to skip and count such rows)") from exc
            return i, None, reason, str(exc)[:300]


def check_rows(rows: Sequence[TrainRecord], encode: Callable[[TrainRecord], dict], strict: bool,
               workers: int = 0) -> tuple[dict[str, int], list[dict]]:
    """Encode every row once: token counts of the good rows, skip records (id, file, line, reason) of the rest."""
    ds = _CheckRows(rows, encode, strict)
    loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=workers, collate_fn=lambda x: x)
    lengths, skipped = {}, []
    for i, n, reason, detail in tqdm(loader, total=len(ds), desc="check rows", mininterval=5):
        rec = rows[i]
        if reason is None:
            lengths[rec.id] = n
        else:
            skipped.append({"id": rec.id, "file": rec.source_file, "line": rec.line, "reason": reason,
                            "detail": detail})
    return lengths, skipped


def prepare_rows(rows: Sequence[TrainRecord], encode: Callable[[TrainRecord], dict], *, eval_ratio: float,
                 seed: int, strict: bool, workers: int = 0) -> Prepared:
    """Check all rows, then split the good ones into train / held-out."""
    lengths, skipped = check_rows(rows, encode, strict, workers)
    good = [r for r in rows if r.id in lengths]
    train, held = split_held_out(good, eval_ratio, seed)
    return Prepared(train, held, lengths, skipped)


class TrainDataset(torch.utils.data.Dataset):
    """Rows for the Trainer: each item is the record with its media decoded (the collator encodes)."""

    def __init__(self, rows: Sequence[TrainRecord], settings: EncodeSettings, family: Family,
                 lengths: dict[str, int] | None = None) -> None:
        self.rows, self.settings, self.family = list(rows), settings, family
        self.lengths = [int((lengths or {}).get(r.id, 0)) for r in self.rows]

    @property
    def modality_lengths(self) -> list[int]:
        """Token counts, negative for text-only rows (LLaVA's modality_lengths); at least 1 in size."""
        return [max(n, 1) * (-1 if r.media_kind == "text" else 1) for r, n in zip(self.rows, self.lengths)]

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, Any]:
        rec = self.rows[i]
        try:
            media = load_media(rec, self.settings, self.family)
        except MediaError as exc:  # checked before training: a file changed since
            raise BadRowError(f"{rec.source_file}:{rec.line}: row {rec.id!r}: {exc} (media changed after the check)") from exc
        return {"record": rec, "media": media}
