"""The pool stage: every source file of a pool -> qa.parquet + quarantine.parquet + report.json.

Files are read in order; their record batches stream into one Parquet writer (the whole pool is
never held as Python objects), while the report's counts accumulate batch by batch. The stage is
skipped when its cache key matches (gdo_utils.cache: params, the code of this package and of the
media/schema modules, and fingerprints of every annotation file); the log says why it recomputes.
"""
from __future__ import annotations

import json
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..cache import StageCache
from ..config import Params, PoolSource, params_hash, resolve_path
from ..io import atomic_path, read_parquet, write_json, write_manifest, write_parquet
from ..schema import QA_SCHEMA, QUARANTINE_COLUMNS, QUARANTINE_SCHEMA
from ..words import word_counts
from .reader import GDO_POOL_NAME, FileReader, id_prefix
from .records import PoolFormatError

log = logging.getLogger(__name__)
CODE_MODULES = ("gdo_utils.pool", "gdo_utils.media", "gdo_utils.schema", "gdo_utils.words")
OUTPUT_FILES = ["qa.parquet", "quarantine.parquet", "report.json"]


def distinct(parts: list[pa.Array]) -> int:
    """How many distinct values the arrays hold together, a null counting as one (as a Python set of them)."""
    if not parts:
        return 0
    return pc.count_distinct(pa.chunked_array(parts, parts[0].type), mode="all").as_py()


@dataclass
class PoolSummary:
    """Counts of the QA rows seen so far (batch by batch)."""

    rows: int = 0
    by_bucket: Counter = field(default_factory=Counter)
    by_media_kind: Counter = field(default_factory=Counter)
    by_source: Counter = field(default_factory=Counter)
    groups: list = field(default_factory=list)    # distinct values of each batch (Arrow), counted in report()
    samples: list = field(default_factory=list)
    videos: list = field(default_factory=list)
    words: list = field(default_factory=list)

    def add(self, b: pa.RecordBatch) -> None:
        self.rows += b.num_rows
        for name, counter in (("bucket", self.by_bucket), ("media_kind", self.by_media_kind), ("source", self.by_source)):
            vc = pc.value_counts(b.column(name))
            counter.update(dict(zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist())))
        self.groups.append(pc.unique(b.column("source_group")))
        self.samples.append(pc.unique(b.column("sample_id")))
        video = pc.equal(b.column("bucket"), "short_video")
        self.videos.append(pc.unique(pc.filter(b.column("video_uid"), video)))
        self.words.append(word_counts(b.column("question")))  # the WORD_TOKEN regex's counts, byte-level

    def merge(self, other: "PoolSummary") -> None:
        """Add the counts of another file's summary."""
        self.rows += other.rows
        for mine, theirs in ((self.by_bucket, other.by_bucket), (self.by_media_kind, other.by_media_kind),
                             (self.by_source, other.by_source)):
            mine.update(theirs)
        self.groups += other.groups
        self.samples += other.samples
        self.videos += other.videos
        self.words += other.words

    def report(self, pool: str, files: list[dict], quarantine: pd.DataFrame) -> dict:
        words = np.concatenate(self.words) if self.words else np.zeros(0)

        def total(key: str) -> int:
            return sum(f[key] for f in files)
        return {
            "pool": pool, "files": files, "records": total("records"), "records_ok": total("records_ok"),
            "quarantined": int(len(quarantine)),
            "quarantine_by_reason": dict(sorted(Counter(quarantine["reason"]).items())) if len(quarantine) else {},
            "qa_rows": self.rows, "samples": distinct(self.samples), "videos": distinct(self.videos),
            "by_bucket": dict(sorted(self.by_bucket.items())), "by_media_kind": dict(sorted(self.by_media_kind.items())),
            "by_source": dict(sorted(self.by_source.items())), "source_groups": distinct(self.groups),
            "question_words_median": float(np.median(words)) if len(words) else 0.0,
            "dropped_empty_pairs": total("dropped_empty_pairs"),
            "ignored_orphan_assistant_turns": total("ignored_orphan_assistant_turns"),
            "renamed_duplicate_ids": total("renamed_duplicate_ids"),
        }


@dataclass
class PoolResult:
    """A built pool: the QA rows (Arrow, or None when streamed to disk), quarantine and report."""

    arrow: pa.Table | None
    quarantine: pd.DataFrame
    report: dict

    @property
    def table(self) -> pd.DataFrame:
        if self.arrow is None:
            raise ValueError("the QA rows were streamed to disk: read them with load_pool")
        return self.arrow.to_pandas()


def source_paths(params: Params, sources: list[PoolSource], field_prefix: str) -> list[tuple[Path, Path | None]]:
    """(annotation file, media root or None) of every source, resolved and checked to exist."""
    out = []
    for i, src in enumerate(sources):
        path = resolve_path(params, src.path, f"{field_prefix}[{i}].path")
        root = resolve_path(params, src.media_root, f"{field_prefix}[{i}].media_root") if src.media_root else None
        if not path.is_file():
            raise PoolFormatError(f"{field_prefix}[{i}].path: annotation file not found: {path}")
        out.append((path, root))
    return out


@dataclass
class FileJob:
    """One annotation file of a pool, with its position in the pool's file order."""

    index: int
    src: PoolSource
    path: Path
    root: Path | None


def _reader(job: FileJob, pool: str, params: Params, seen: Counter, renamed: set) -> FileReader:
    return FileReader(job.src, job.path, pool, max_frames=params.pool.max_frames, check_media=params.pool.check_media,
                      media_root=job.root, seen_ids=seen, renamed_ids=renamed, source_mode=params.pool.default_source)


# qa.parquet is written once and read by every later stage: LZ4 (de)compresses with less CPU than zstd at
# both ends (1M pairs: ~1 CPU s less in all) for a ~1.8x larger file (159 vs 87 MB; bench/README.md)
QA_COMPRESSION = "lz4"
# dictionary pages only for the label columns (a handful of values); the ids and texts are nearly all
# distinct, and trying a dictionary on them first only to fall back to plain pages costs CPU. Min / max
# statistics only on the flat columns: those of the texts and frame lists are never read and cost ~0.5 CPU s
# at 1M pairs (write 2.5 -> 1.8 CPU s with both choices; the same rows and values)
QA_DICTIONARY = ["source", "source_group", "bucket", "media_kind", "pool", "source_file"]
QA_STATISTICS = [f.name for f in QA_SCHEMA
                 if not pa.types.is_list(f.type) and f.name not in ("question", "question_raw", "answer")]
# spill files of the worker processes: LZ4 frames (fast), ~5x fewer bytes through the file system than raw
# Arrow buffers (the repeated frame lists compress well); the replay decompresses them
SPILL_OPTIONS = pa.ipc.IpcWriteOptions(compression="lz4")


def read_namespace(jobs: list[FileJob], pool: str, params: Params, spill_dir: str) -> list[tuple]:
    """Read the files of one id namespace in order (a worker process); batches go to Arrow IPC files."""
    seen: Counter = Counter()
    renamed: set = set()
    out = []
    for job in jobs:
        reader, summary = _reader(job, pool, params, seen, renamed), PoolSummary()
        spill = Path(spill_dir) / f"{job.index}.arrow"
        with pa.OSFile(str(spill), "wb") as fh, pa.ipc.new_file(fh, QA_SCHEMA, options=SPILL_OPTIONS) as w:
            for b in reader.batches():
                summary.add(b)
                w.write_batch(b)
        out.append((job.index, reader.quarantine, reader.report, summary))
    return out


def _namespaces(jobs: list[FileJob], pool: str) -> dict[str, list[FileJob]]:
    groups: dict[str, list[FileJob]] = {}
    for job in jobs:
        groups.setdefault(id_prefix(job.src.format, pool), []).append(job)
    return groups


def build_pool(params: Params, sources: list[PoolSource], pool: str, field_prefix: str,
               sink: Callable[[pa.RecordBatch], None] | None = None) -> PoolResult:
    """Read every source of one pool (file order) into QA rows + quarantine + report.

    With `sink`, each record batch is handed to it and not kept (PoolResult.arrow is None). Files of
    different id namespaces (the image and the video file of the GDO pool) are read at once by this
    process (the first file's namespace) and up to `pool.workers - 1` worker processes (the others);
    the rows still come out in file order, identical to one process.
    """
    from tqdm.auto import tqdm

    jobs = [FileJob(i, src, path, root) for i, (src, (path, root))
            in enumerate(zip(sources, source_paths(params, sources, field_prefix)))]
    groups = _namespaces(jobs, pool)
    batches: list[pa.RecordBatch] = []
    emit = sink or batches.append
    results: dict[int, tuple] = {}
    summary = PoolSummary()
    seen: dict[str, Counter] = {g: Counter() for g in groups}
    renamed: dict[str, set] = {g: set() for g in groups}

    def read_here(job: FileJob) -> None:
        ns = id_prefix(job.src.format, pool)
        reader = _reader(job, pool, params, seen[ns], renamed[ns])
        for b in reader.batches():
            summary.add(b)
            emit(b)
        results[job.index] = (reader.quarantine, reader.report)

    if params.pool.workers > 1 and len(groups) > 1:
        import multiprocessing as mp
        import tempfile
        from concurrent.futures import ProcessPoolExecutor

        # this process reads the first file's namespace itself (its rows go straight to the sink); the
        # other namespaces are read by worker processes at the same time and replayed from their spill files
        here = id_prefix(jobs[0].src.format, pool)
        others = {ns: g for ns, g in groups.items() if ns != here}
        with tempfile.TemporaryDirectory(prefix="gdo_pool_") as spill:
            ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
            with ProcessPoolExecutor(min(params.pool.workers - 1, len(others)), mp_context=ctx) as ex:
                futures = {ns: ex.submit(read_namespace, g, pool, params, spill) for ns, g in others.items()}
                for job in jobs:  # in file order, each worker's file as soon as its worker is done
                    ns = id_prefix(job.src.format, pool)
                    if ns == here:
                        read_here(job)
                        continue
                    if job.index not in results:
                        for index, q, rep, summ in futures[ns].result():
                            results[index] = (q, rep)
                            summary.merge(summ)
                    # read, not memory-mapped: a mapped spill file stays resident in this process as it is
                    # replayed (RSS grew by the whole file, 0.9 GB at 1M pairs, 2.8 GB at 3M)
                    with pa.OSFile(str(Path(spill) / f"{job.index}.arrow")) as src:
                        reader = pa.ipc.open_file(src)
                        for i in range(reader.num_record_batches):
                            emit(reader.get_batch(i))
    else:
        for job in tqdm(jobs, desc=f"pool {pool}", disable=len(jobs) < 2):
            read_here(job)
    quarantine: list[dict] = []
    files: list[dict] = []
    for job in jobs:
        q, rep = results[job.index]
        quarantine.extend(q)
        files.append(rep)
        if q:
            log.warning("%s: %d record(s) quarantined %s", job.path, len(q), rep["quarantine_by_reason"])
    qdf = pd.DataFrame(quarantine, columns=QUARANTINE_COLUMNS)
    arrow = None if sink else pa.Table.from_batches(batches, schema=QA_SCHEMA)
    return PoolResult(arrow, qdf, summary.report(pool, files, qdf))


def pool_hash(params: Params) -> str:
    """The pool stage depends on the pool sources, the pool settings and the toy world."""
    return params_hash(params, ["pools", "pool", "toyworld"])


def pool_dir(params: Params, name: str = GDO_POOL_NAME) -> Path:
    """outputs/<run>/pool for the GDO candidate pool, outputs/<run>/pools/<name> for any other pool."""
    return params.stage_dir("pool") if name == GDO_POOL_NAME else params.stage_dir("pools", name)


def named_pools(params: Params) -> list[tuple[str, list[PoolSource], str]]:
    """(name, sources, field prefix) of every pool the params define, GDO pool first."""
    out = []
    if params.pools.gdo:
        out.append((GDO_POOL_NAME, params.pools.gdo, "pools.gdo"))
    if params.pools.ofa_source:
        out.append((params.pools.ofa_source.name, params.pools.ofa_source.sources, "pools.ofa_source.sources"))
    for i, p in enumerate(params.pools.ofa_transfer):
        out.append((p.name, p.sources, f"pools.ofa_transfer[{i}].sources"))
    names = [n for n, _, _ in out]
    if len(set(names)) != len(names):
        raise ValueError(f"pool names must be unique, got {names}")
    return out


def pool_cache(params: Params, name: str, sources: list[PoolSource], field_prefix: str) -> StageCache:
    """Cache key of one pool: params, this package's code, and the annotation files' fingerprints."""
    files = [p for p, _ in source_paths(params, sources, field_prefix)]
    return StageCache(f"pool {name}", pool_dir(params, name), pool_hash(params), CODE_MODULES, files)


def build_and_write(params: Params, name: str, sources: list[PoolSource], field_prefix: str,
                    cache: StageCache) -> dict:
    """Stream one pool into qa.parquet, then write quarantine, report and the manifest (all atomic)."""
    t0 = time.time()
    out = pool_dir(params, name)
    out.mkdir(parents=True, exist_ok=True)
    cache.snapshot()
    with atomic_path(out / "qa.parquet") as tmp:
        with pq.ParquetWriter(tmp, QA_SCHEMA, compression=QA_COMPRESSION, use_dictionary=QA_DICTIONARY,
                              write_statistics=QA_STATISTICS) as writer:
            result = build_pool(params, sources, name, field_prefix, sink=writer.write_batch)
    q = pa.Table.from_pandas(result.quarantine, schema=QUARANTINE_SCHEMA, preserve_index=False)
    outs = [out / "qa.parquet", write_parquet(out / "quarantine.parquet", q), write_json(out / "report.json", result.report)]
    write_manifest(out, stage=f"pool:{name}", params_hash=cache.params_hash, params_file=params.source_file,
                   wall_time_s=time.time() - t0, outputs=outs, extra=cache.record())
    return result.report


def run_pool_stage(params: Params, force: bool = False, only: list[str] | None = None) -> dict[str, dict]:
    """Generate the toy world when enabled, then build every pool; skip pools whose cache key matches."""
    if params.toyworld.enabled:
        from ..toyworld import generate_toyworld  # the demo's data source, imported only when used

        generate_toyworld(params.toyworld, params.toyworld_dir, force=force)
    reports = {}
    for name, sources, prefix in named_pools(params):
        if only and name not in only:
            continue
        cache = pool_cache(params, name, sources, prefix)
        if cache.fresh(OUTPUT_FILES, force=force):
            reports[name] = json.loads((pool_dir(params, name) / "report.json").read_text())
            continue
        rep = reports[name] = build_and_write(params, name, sources, prefix, cache)
        log.info("pool %s: %d QA rows from %d records, %d quarantined", name, rep["qa_rows"], rep["records"],
                 rep["quarantined"])
    return reports


def load_pool(params: Params, name: str = GDO_POOL_NAME, columns: list[str] | None = None) -> pd.DataFrame:
    """The QA table of a built pool (optionally only some columns)."""
    path = pool_dir(params, name) / "qa.parquet"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run the pool stage first (gdo-repro pool --params ...)")
    return read_parquet(path, columns=columns)


def load_pool_column(params: Params, column: str, name: str = GDO_POOL_NAME) -> pa.Array:
    """One column of a built pool's QA table as one Arrow array (e.g. the ids, without the texts and media)."""
    path = pool_dir(params, name) / "qa.parquet"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run the pool stage first (gdo-repro pool --params ...)")
    return pq.read_table(path, columns=[column], use_threads=False).column(column).combine_chunks()


def load_quarantine(params: Params, name: str = GDO_POOL_NAME) -> pd.DataFrame:
    return read_parquet(pool_dir(params, name) / "quarantine.parquet")
