"""Sharded, resumable per-row work: rank assignment by a stable id hash, Parquet parts, merge.

The same code runs single-process and under `torchrun` (RANK / WORLD_SIZE from the environment).
A row belongs to rank `stable_hash(id) % world_size`, so assignment never depends on row order.
Each rank appends Parquet parts `rank{r:05d}-part{p:06d}.parquet` atomically every `part_rows`
rows. On restart, every id already present in any part (written by any rank, under any world size)
is skipped, so a killed run resumes without duplicates or losses and the world size may change.
`merge_parts` concatenates, checks every expected id exactly once and sorts by id.

With `row_keys` (id -> a digest of the input that row's result depends on), parts are also keyed on the
rows they hold: each row stores its key (column `row_key`), and `prepare_parts` drops only the rows whose
input changed (or whose id left the table), so one edited record re-computes one row, not every part.

This fixes the release's `index % world_size` split with row-count resume (GDO_METHOD.md section 3).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .io import write_json, write_parquet

log = logging.getLogger(__name__)
PART_RE = re.compile(r"^rank(\d{5})-part(\d{6})\.parquet$")
ROW_KEY = "row_key"


def stable_hash(key: str) -> int:
    """A process-independent 64-bit hash of a string (sha1 prefix; Python's hash() is salted)."""
    return int.from_bytes(hashlib.sha1(key.encode("utf-8")).digest()[:8], "big")


def dist_info() -> tuple[int, int]:
    """(rank, world_size) from torchrun-style environment variables; (0, 1) when unset."""
    rank = int(os.environ.get("RANK", "0"))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"invalid RANK={rank} / WORLD_SIZE={world}")
    return rank, world


def close_process_group(meet: bool = True) -> bool:
    """Destroy torch.distributed's default group if one is open (after a barrier when `meet`); True if one was.

    A process that exits with a gloo group still open can abort at interpreter teardown ("terminate called
    without an active exception", SIGABRT) while gloo's worker threads are destroyed, failing a run that
    finished; every entry point that may run under torchrun / accelerate launch calls this before it returns.
    """
    # never imports torch: a command that did not (import-metrics, subsets: 300-400 MB and 2-3 CPU s) has no group
    tdist = sys.modules.get("torch.distributed")
    if tdist is None or not (tdist.is_available() and tdist.is_initialized()):
        return False
    if meet:
        tdist.barrier()
    tdist.destroy_process_group()
    return True


def ids_for_rank(ids: Sequence[str], rank: int, world_size: int) -> list[str]:
    """The ids this rank owns, in the given order."""
    if world_size == 1:
        return list(ids)
    return [i for i in ids if stable_hash(i) % world_size == rank]


def list_parts(parts_dir: str | Path) -> list[Path]:
    d = Path(parts_dir)
    if not d.is_dir():
        return []
    return sorted(p for p in d.iterdir() if PART_RE.match(p.name))


def done_ids(parts_dir: str | Path, id_col: str) -> set[str]:
    """Ids already written by any rank (any world size)."""
    out: set[str] = set()
    for p in list_parts(parts_dir):
        out.update(pq.read_table(p, columns=[id_col]).column(id_col).to_pylist())
    return out


def _next_part_index(parts_dir: Path, rank: int) -> int:
    idx = [int(m.group(2)) for p in list_parts(parts_dir) if (m := PART_RE.match(p.name)) and int(m.group(1)) == rank]
    return max(idx, default=-1) + 1


@dataclass
class PartWriter:
    """Buffers result rows of one rank and flushes them as atomic Parquet parts."""

    parts_dir: Path
    rank: int
    part_rows: int
    schema: pa.Schema | None = None

    def __post_init__(self) -> None:
        self.parts_dir = Path(self.parts_dir)
        self.parts_dir.mkdir(parents=True, exist_ok=True)
        self._buf: list[dict] = []
        self._next = _next_part_index(self.parts_dir, self.rank)
        self.rows_written = 0

    def add(self, rows: Iterable[dict]) -> None:
        self._buf.extend(rows)
        while len(self._buf) >= self.part_rows:
            self._flush(self._buf[: self.part_rows])
            self._buf = self._buf[self.part_rows:]

    def close(self) -> None:
        if self._buf:
            self._flush(self._buf)
            self._buf = []

    def _flush(self, rows: list[dict]) -> None:
        table = pa.Table.from_pylist(rows, schema=self.schema)
        path = self.parts_dir / f"rank{self.rank:05d}-part{self._next:06d}.parquet"
        write_parquet(path, table)
        self._next += 1
        self.rows_written += len(rows)

    def __enter__(self) -> "PartWriter":
        return self

    def __exit__(self, *exc) -> None:
        # Flush on normal exit and on Python exceptions (work done is kept); SIGKILL loses only the buffer.
        self.close()


def batched(items: Sequence, size: int) -> Iterator[Sequence]:
    for i in range(0, len(items), size):
        yield items[i: i + size]


def run_sharded(ids: Sequence[str], work: Callable[[Sequence[str]], list[dict]], parts_dir: str | Path, *,
                id_col: str, batch_size: int, part_rows: int, rank: int | None = None,
                world_size: int | None = None, schema: pa.Schema | None = None, desc: str = "rows",
                progress: bool = True, shard_key: Callable[[str], str] | None = None,
                row_keys: dict[str, str] | None = None) -> dict:
    """Process this rank's not-yet-done ids in batches with `work(batch_ids) -> result rows`.

    `work` must return exactly one row (a dict with `id_col`) per input id; failures belong in the
    row (an error column), not as exceptions. `shard_key` (default: the id) decides the rank and the
    order: ids sharing a key (e.g. the QAs of one video) land on the same rank, next to each other.
    Batches are the ones a run from scratch makes, whatever is already done (`recomputed_for_batch`
    counts the done rows computed again for that and not written).
    `row_keys` (id -> input digest) are stored with each row (see `prepare_parts`).
    Returns counts for the stage report.
    """
    from tqdm.auto import tqdm

    if rank is None or world_size is None:
        rank, world_size = dist_info()
    parts_dir = Path(parts_dir)
    if shard_key is None:
        mine = ids_for_rank(ids, rank, world_size)
    else:
        keyed = sorted((shard_key(i), i) for i in ids)
        mine = [i for k, i in keyed if world_size == 1 or stable_hash(k) % world_size == rank]
    done = done_ids(parts_dir, id_col)
    todo = [i for i in mine if i not in done]
    log.info("rank %d/%d: %d ids owned, %d already done, %d to do", rank, world_size, len(mine), len(mine) - len(todo), len(todo))
    if row_keys is not None and schema is not None:
        schema = schema.append(pa.field(ROW_KEY, pa.string()))
    extra = 0
    with PartWriter(parts_dir, rank, part_rows, schema) as writer:
        bar = tqdm(total=len(todo), desc=f"{desc} (rank {rank})", disable=not progress)
        # Batches are cut from every owned id, as a run from scratch cuts them, and a batch is computed
        # whole when any of its ids is to do: batched maths (padding, BLAS blocking) then sees the same
        # batch as in an uninterrupted run, so a resumed or partly recomputed run gives the same bits.
        # Only the to-do rows are written; the others are already in the parts.
        for chunk in batched(mine, batch_size):
            need = [i for i in chunk if i not in done]
            if not need:
                continue
            rows = work(chunk)
            got = [r[id_col] for r in rows]
            if sorted(got) != sorted(chunk):
                raise RuntimeError(f"work() returned ids {got[:3]}... for batch {list(chunk)[:3]}...: must be one row per id")
            if len(need) < len(chunk):
                keep = set(need)
                rows = [r for r in rows if r[id_col] in keep]
                extra += len(chunk) - len(need)
            if row_keys is not None:
                rows = [{**r, ROW_KEY: row_keys[r[id_col]]} for r in rows]
            writer.add(rows)
            bar.update(len(need))
        bar.close()
    return {"rank": rank, "world_size": world_size, "owned": len(mine), "skipped_done": len(mine) - len(todo),
            "processed": len(todo), "recomputed_for_batch": extra}


class MergeError(RuntimeError):
    """Parts do not cover the expected ids exactly once."""


def _ids_match(ids: pa.ChunkedArray, expected_ids: pd.Series | list) -> bool:
    """True when the string `ids` hold every expected id exactly once and nothing else (by Arrow kernels).

    False also when Arrow cannot decide it simply (not strings, nulls): `merge_parts` then applies its set rule.
    """
    if not (pa.types.is_string(ids.type) or pa.types.is_large_string(ids.type)) or ids.null_count:
        return False
    try:
        exp = pa.array(expected_ids.array if isinstance(expected_ids, pd.Series) else expected_ids).cast(ids.type)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, TypeError):
        return False
    if exp.null_count or pc.count_distinct(ids).as_py() != len(ids):
        return False
    return bool(pc.all(pc.is_in(ids, value_set=exp)).as_py()) and bool(pc.all(pc.is_in(exp, value_set=ids)).as_py())


def merge_parts(parts_dir: str | Path, expected_ids: Iterable[str], id_col: str) -> pd.DataFrame:
    """Concatenate all parts, check each expected id appears exactly once, sort by id."""
    parts = list_parts(parts_dir)
    if not parts:
        raise MergeError(f"no parts in {parts_dir}")
    table = pa.concat_tables([pq.read_table(p) for p in parts], promote_options="default")
    if not isinstance(expected_ids, pd.Series):
        expected_ids = list(expected_ids)  # read twice below
    df = table.to_pandas()
    if _ids_match(table.column(id_col), expected_ids):
        return df.sort_values(id_col, kind="mergesort").reset_index(drop=True)
    expected = set(expected_ids)  # the rule, and the error's examples
    counts = df[id_col].value_counts()
    dup = counts[counts > 1]
    missing = expected - set(counts.index)
    extra = set(counts.index) - expected
    if len(dup) or missing or extra:
        raise MergeError(
            f"{parts_dir}: {len(dup)} duplicated, {len(missing)} missing, {len(extra)} unexpected ids "
            f"(e.g. dup={list(dup.index[:3])}, missing={sorted(missing)[:3]}, extra={sorted(extra)[:3]})"
        )
    return df.sort_values(id_col, kind="mergesort").reset_index(drop=True)


def wait_for_ranks(parts_dir: str | Path, expected_ids: Iterable[str], id_col: str, timeout_s: float = 86_400,
                   poll_s: float = 1.0) -> None:
    """Block rank 0 until every expected id is in the parts (a torch.distributed barrier when initialised)."""
    import time

    try:
        import torch.distributed as tdist

        if tdist.is_available() and tdist.is_initialized():
            tdist.barrier()
            return
    except ImportError:  # pragma: no cover - torch is a hard dependency
        pass
    expected = set(expected_ids)
    t0 = time.time()
    while True:
        missing = expected - done_ids(parts_dir, id_col)
        if not missing:
            return
        if time.time() - t0 > timeout_s:
            raise TimeoutError(f"{parts_dir}: {len(missing)} ids still missing after {timeout_s:.0f}s")
        log.info("waiting for other ranks: %d ids missing", len(missing))
        time.sleep(poll_s)
        poll_s = min(poll_s * 1.5, 30.0)


def rows_digest(row_keys: dict[str, str]) -> str:
    """sha256 (16 hex) of every (id, row key) pair: what the rows of a parts folder should hold."""
    h = hashlib.sha256()
    for i in sorted(row_keys):
        h.update(f"{i}\x1f{row_keys[i]}\n".encode("utf-8", "surrogatepass"))
    return h.hexdigest()[:16]


def _stamp_matches(stamp: Path, key: str, rows: str | None = None) -> bool:
    try:
        data = json.loads(stamp.read_text()) if stamp.is_file() else None
    except (ValueError, OSError):
        return False
    return bool(data) and data.get("key") == key and (rows is None or data.get("rows") == rows)


def drop_stale_rows(parts_dir: Path, id_col: str, row_keys: dict[str, str]) -> int:
    """Remove rows whose stored row key is not the current one (or whose id is gone); returns rows dropped.

    A part with stale rows is rewritten atomically without them (removed when none is left); a part
    written without row keys counts as stale as a whole.
    """
    dropped = 0
    for part in list_parts(parts_dir):
        names = pq.read_schema(part).names
        if ROW_KEY not in names:
            dropped += pq.read_metadata(part).num_rows
            part.unlink()
            continue
        keys = pq.read_table(part, columns=[id_col, ROW_KEY])
        ok = [row_keys.get(i) == k for i, k in zip(keys.column(id_col).to_pylist(), keys.column(ROW_KEY).to_pylist())]
        if all(ok):
            continue
        dropped += len(ok) - sum(ok)
        if any(ok):
            write_parquet(part, pq.read_table(part).filter(pa.array(ok)))
        else:
            part.unlink()
    return dropped


def prepare_parts(parts_dir: str | Path, key: str, force: bool = False, timeout_s: float = 3600,
                  row_keys: dict[str, str] | None = None, id_col: str = "id") -> None:
    """Make `parts_dir` hold only parts computed under `key` (a digest of everything the rows depend on).

    Rank 0 discards parts stamped with another key (or all of them with `force`) and stamps the folder
    (`<parts_dir>.json`); other ranks wait for that stamp before they write. Resume by id is therefore
    only ever a resume of the same computation. With `row_keys`, `key` holds the settings, code and models
    only, and each row's own input is checked instead: rows whose input changed are dropped
    (`drop_stale_rows`), the others are kept, before the stamp (with the rows' digest) is written.
    """
    import shutil
    import time

    parts_dir = Path(parts_dir)
    stamp = parts_dir.with_name(parts_dir.name + ".json")
    rows = rows_digest(row_keys) if row_keys is not None else None
    rank, _ = dist_info()
    if rank == 0:
        if parts_dir.exists() and (force or not _stamp_matches(stamp, key)):
            log.info("%s: parts were made with other settings, code or models (or forced): starting over", parts_dir)
            shutil.rmtree(parts_dir)
        parts_dir.parent.mkdir(parents=True, exist_ok=True)
        if row_keys is not None and parts_dir.exists() and not _stamp_matches(stamp, key, rows):
            n = drop_stale_rows(parts_dir, id_col, row_keys)
            if n:
                log.info("%s: %d row(s) whose input changed (or left the table) are recomputed; the rest are kept",
                         parts_dir, n)
        if not _stamp_matches(stamp, key, rows):
            write_json(stamp, {"key": key, "rows": rows})
        return
    waited = 0.0
    while not _stamp_matches(stamp, key, rows):
        if waited > timeout_s:
            raise TimeoutError(f"{stamp}: rank 0 did not prepare the parts folder within {timeout_s:.0f}s")
        time.sleep(0.5)
        waited += 0.5
