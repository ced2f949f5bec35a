"""Writing a selected set of pool rows: train.jsonl, selected_ids.txt and selection.parquet.

Media lists (the largest pool column) and the texts are read once per build for the union of the rows
to write (`RowSource`); the id and label columns come from the already-loaded pool table. A context built
from in-memory tables (`context_from_tables`) keeps its texts, and they are taken from there.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..io import sha256_file, write_parquet, write_text
from .context import PoolContext, check_inputs_unchanged, pool_file
from .export import read_rows, write_training_file
from .text import as_arrow

REQUIRED = ("train.jsonl", "selected_ids.txt", "report.json", "card.md")
WRITE_BATCH = 8192   # rows of train.jsonl taken from the RowSource and built as Python objects at a time


TABLE_COLUMNS = ("qa_uid", "question", "answer", "source", "bucket", "video_uid")   # of a training record


class RowSource:
    """Training-record columns of a set of pool rows: media and texts read once from Parquet, ids and labels
    (and texts, when the context holds them) from the loaded table."""

    def __init__(self, ctx: PoolContext, rows: np.ndarray) -> None:
        check_inputs_unchanged(ctx)
        self.ctx = ctx
        self.rows = np.unique(np.asarray(rows, dtype=np.int64))
        self.from_table = [c for c in TABLE_COLUMNS if c in ctx.table.columns]
        cols = ["media_kind", "media", "frame_indices"] + [c for c in TABLE_COLUMNS if c not in self.from_table]
        if ctx.params.subsets.prompt_text == "question_raw":
            cols.append("question_raw")
        # one chunk: a take from the 16,384-row chunks read_rows returns costs ~2.5x more per written batch
        self.table = read_rows(pool_file(ctx.params), self.rows, cols).combine_chunks()

    def table_of(self, rows: np.ndarray) -> pa.Table:
        """qa_uid, question, answer and the media columns of `rows` (each must be in this source)."""
        t = self.table.take(pa.array(np.searchsorted(self.rows, rows)))
        idx = pa.array(rows)
        for c in self.from_table:
            t = t.append_column(c, as_arrow(self.ctx.table[c]).take(idx))
        return t


def column_of(ctx: PoolContext, rows: np.ndarray, name: str) -> pa.Array:
    """One column of some pool rows, in their order: from the loaded table, else (the texts) from qa.parquet."""
    rows = np.asarray(rows, dtype=np.int64)
    if name in ctx.table.columns:
        return as_arrow(ctx.table[name]).take(pa.array(rows))
    check_inputs_unchanged(ctx)
    return read_rows(pool_file(ctx.params), rows, [name]).column(name).combine_chunks()


def sorted_by_uid(ctx: PoolContext, rows: np.ndarray) -> np.ndarray:
    """Rows ordered by qa_uid (the order of train.jsonl and selected_ids.txt)."""
    if not len(rows):
        return rows
    uids = as_arrow(ctx.table["qa_uid"]).take(pa.array(rows))
    return rows[pc.sort_indices(uids).to_numpy()]


def write_subset_files(ctx: PoolContext, out_dir: Path, rows: np.ndarray, stages: list[str] | None,
                       scores: pd.DataFrame, source: RowSource) -> dict[str, str]:
    """train.jsonl, selected_ids.txt and selection.parquet of some rows; returns their sha256."""
    out_dir.mkdir(parents=True, exist_ok=True)
    ordered = sorted_by_uid(ctx, rows)
    batches = (source.table_of(ordered[i:i + WRITE_BATCH]) for i in range(0, len(ordered), WRITE_BATCH))
    write_training_file(out_dir / "train.jsonl", batches, ctx.params.subsets.prompt_text)
    ids = as_arrow(ctx.table["qa_uid"]).take(pa.array(ordered, type=pa.int64())).to_pylist()
    write_text(out_dir / "selected_ids.txt", "".join(f"{u}\n" for u in ids))
    sel = pa.table({"qa_uid": as_arrow(ctx.table["qa_uid"]).take(pa.array(rows)).cast(pa.string()),
                    "stage": pa.array(stages if stages is not None else ["uniform"] * len(rows), type=pa.string()),
                    "pick": pa.array(np.arange(len(rows), dtype=np.int64)),
                    "score": pa.array(scores["score"].to_numpy()[rows])})
    write_parquet(out_dir / "selection.parquet", sel)
    return {f: sha256_file(out_dir / f) for f in ("train.jsonl", "selected_ids.txt")}


def rows_of_ids(ctx: PoolContext, ids: list[str]) -> np.ndarray:
    """Pool rows of some qa_uids (an error when one is not in the pool)."""
    pos = pc.index_in(pa.array(ids, type=pa.large_string()), value_set=as_arrow(ctx.table["qa_uid"]))
    if pos.null_count:
        raise ValueError("a uniform baseline lists qa_uids that are not in the pool; rebuild it with force=True")
    return pos.to_numpy(zero_copy_only=False).astype(np.int64)
