"""One annotation file -> QA rows as Arrow record batches + quarantine rows + counts.

JSONL files go through the Arrow fast path (`fast`: a block of lines parsed by Arrow's JSON reader,
pairs and text rules as Arrow kernels); what it cannot decide exactly (odd records, malformed lines)
goes record at a time through `_record` (schema checks, `text.pair_tuples`, the per-format media
readers), as JSON-array files do. Both give per-chunk tables of kept records and pairs; `_emit` gives
them ids and cuts record batches after the first record that brings a batch to `batch_rows` rows, so
the two paths write the same batches. Format specifics live in one module per format (onevision,
llava_video, llava_json).

Ids: `qa_uid = "{prefix}::{id}::t{k}"` with prefix "ov" (OneVision) / "vv" (LLaVA-Video) in the GDO
pool and the pool's name elsewhere. A repeated id is renamed `{id}#dup{n}` only within its own
namespace (the same prefix): an "ov::x" and a "vv::x" are different candidates, so ids keep joining
with per-candidate metrics computed by the release.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from itertools import repeat
from pathlib import Path
from typing import Iterable, Iterator, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..config import PoolSource
from ..schema import QA_SCHEMA
from . import fast, llava_json, llava_video, onevision
from .paths import MediaResolver
from .records import RawRecord, _decode_error, _DecodeError, _loads, iter_records
from .text import PairStats, RecordError, pair_tuples, source_group

GDO_POOL_NAME = "gdo"
ID_PREFIX = {onevision.FORMAT: onevision.ID_PREFIX, llava_video.FORMAT: llava_video.ID_PREFIX}
RELEASE_SOURCE = {onevision.FORMAT: onevision.RELEASE_SOURCE, llava_video.FORMAT: llava_video.RELEASE_SOURCE}
BATCH_ROWS = 65_536
SLOW_CHUNK = 8_192   # records per Arrow conversion on the record-at-a-time path
FAST_BLOCK = 8 << 20  # bytes of JSONL per Arrow fast-path block
FAST_FORMATS = tuple(fast.SCHEMAS)
_BUCKETS = pa.array(["text_only", "image_qa", "short_video"])  # by n_frames 0 / 1 / more
DefaultSource = Literal["release", "file_stem"]

def default_source(src: PoolSource, path: Path, mode: DefaultSource) -> str:
    """data_source for rows without one: the source's `source`, else the release's name or the file stem."""
    if src.source:
        return src.source
    if mode == "file_stem":
        return path.stem
    return RELEASE_SOURCE.get(src.format, src.format)


def id_prefix(fmt: str, pool: str) -> str:
    return ID_PREFIX.get(fmt, pool) if pool == GDO_POOL_NAME else pool


@dataclass
class FileReader:
    """Reads one annotation file; iterate `batches()`, then read `quarantine` and `report`."""

    src: PoolSource
    path: Path
    pool: str
    max_frames: int = 32
    check_media: bool = True
    media_root: Path | None = None
    seen_ids: Counter = field(default_factory=Counter)
    renamed_ids: set = field(default_factory=set)
    source_mode: DefaultSource = "release"
    batch_rows: int = BATCH_ROWS
    fast: bool = True  # JSONL through the Arrow fast path (same output; False: every record the slow way)
    quarantine: list[dict] = field(default_factory=list)
    report: dict = field(default_factory=dict)

    def _reject(self, r: RawRecord, rec_id: str, reason: str, fld: str, detail: str) -> None:
        self.quarantine.append({"pool": self.pool, "source_file": self.source_file, "line": r.line,
                                "record_id": rec_id, "field": fld, "reason": reason, "detail": detail})

    def batches(self) -> Iterator[pa.RecordBatch]:
        """QA rows of the file in file order, `batch_rows` at a time."""
        fmt = self.src.format
        self.source_file = str(Path(self.path).absolute())
        self._res = MediaResolver(root=self.media_root if self.media_root is not None else Path(self.path).parent,
                                  check=self.check_media)
        self._prefix = id_prefix(fmt, self.pool)
        self._fallback_source = default_source(self.src, Path(self.path), self.source_mode)
        self._groups: dict[str, str] = {}
        self._stats = PairStats()
        self._records = self._renamed = self._rows = 0
        self._pending: list[tuple[pa.Table, pa.Table, np.ndarray]] = []
        self._pending_rows = self._pending_records = 0
        chunks = self._fast_chunks() if self.fast and fmt in FAST_FORMATS else self._slow_chunks(iter_records(Path(self.path), fmt))
        for rec, pairs in chunks:
            yield from self._emit(rec, pairs)
        if self._pending_rows:
            yield self._flush()
        self.report = {
            "file": self.source_file, "format": fmt, "records": self._records,
            "records_ok": self._records - len(self.quarantine), "quarantined": len(self.quarantine), "qa_rows": self._rows,
            "quarantine_by_reason": dict(sorted(Counter(q["reason"] for q in self.quarantine).items())),
            "dropped_empty_pairs": self._stats.empty_pairs,
            "ignored_orphan_assistant_turns": self._stats.orphan_assistant_turns,
            "ignored_system_turns": self._stats.skipped_system_turns, "renamed_duplicate_ids": self._renamed,
        }

    def _record(self, r: RawRecord) -> tuple | None:
        """One record the slow way: a kept record's fields (REC_SCHEMA order) + its pairs, or None (quarantined)."""
        fmt = self.src.format
        d = r.data
        if d is None and r.error:
            self._reject(r, "", "malformed_json", "", r.error)
            return None
        if not isinstance(d, dict):
            self._reject(r, "", "wrong_schema", "", f"record is {type(d).__name__}, expected object")
            return None
        rid = d.get("id")
        if rid is None or (isinstance(rid, str) and not rid.strip()):
            self._reject(r, "", "missing_id", "id", "")
            return None
        rid = str(rid)
        rec_stats = PairStats()
        try:
            messages = d.get("messages")
            if messages is None:
                messages = d.get("conversations")
            if messages is None:
                raise RecordError("missing_messages", "messages|conversations")
            pairs = pair_tuples(messages, rec_stats)
            if not pairs:
                raise RecordError("empty_turns", "messages", "no user->assistant pair with text")
            if fmt == llava_video.FORMAT:
                kind, media, idx, n_total = llava_video.media_of(d, self._res, self.max_frames)
            elif fmt == onevision.FORMAT:
                kind, media, idx, n_total = onevision.media_of(d, self._res)
            else:
                kind, media, idx, n_total = llava_json.media_of(d, self._res)
        except RecordError as exc:
            self._reject(r, rid, exc.reason, exc.field, exc.detail)
            return None
        self._stats.add(rec_stats)  # pair counts only for records that are kept
        vid = llava_video.video_id(d) if fmt == llava_video.FORMAT else None
        source = d.get("data_source")
        if not (isinstance(source, str) and source):
            source = self._fallback_source
        return (rid, r.line, r.index, vid, source, kind, media, idx, n_total), pairs

    def _keep(self, r: RawRecord, recs: list[tuple], pairs: list[tuple]) -> None:
        """Read one record the slow way; a kept record goes to `recs`, its pairs (owner, turn, q, q_raw, a) to `pairs`."""
        kept = self._record(r)
        if kept is not None:
            fields, ps = kept
            pos = len(recs)
            recs.append(fields)
            pairs.extend((pos, k, q, q_raw, a) for k, (q, q_raw, a) in enumerate(ps))

    def _slow_chunks(self, records: Iterable[RawRecord]) -> Iterator[tuple[pa.Table, pa.Table]]:
        """(records, pairs) tables of the kept records, `SLOW_CHUNK` records at a time (record-at-a-time reader)."""
        recs: list[tuple] = []
        pairs: list[tuple] = []
        for r in records:
            self._records += 1
            self._keep(r, recs, pairs)
            if len(recs) >= SLOW_CHUNK:
                yield _tables(recs, pairs)
                recs, pairs = [], []
        if recs:
            yield _tables(recs, pairs)

    def _fast_chunks(self) -> Iterator[tuple[pa.Table, pa.Table]]:
        """JSONL pieces of ~FAST_BLOCK bytes through the Arrow fast path (gdo_utils.pool.fast); the rest record at a time."""
        first, lineno, tail = 0, 1, b""
        with open(self.path, "rb") as fh:
            while True:
                chunk = fh.read(FAST_BLOCK)
                data = tail + chunk
                if not chunk:
                    if not data:
                        break
                    if not data.endswith(b"\n"):
                        data += b"\n"
                    cut = len(data)
                else:
                    cut = data.rfind(b"\n") + 1
                    if cut == 0:
                        tail = data
                        continue
                data, tail = data[:cut], data[cut:]
                block = _Block.of(data, lineno, first)
                lineno += data.count(b"\n")
                first += block.n
                yield self._fast_block(block)
                if not chunk:
                    break

    def _fast_block(self, block: "_Block") -> tuple[pa.Table, pa.Table]:
        """One block of JSONL lines -> (records, pairs) of its kept records, quarantine rows in line order."""
        self._records += block.n
        q0 = len(self.quarantine)
        recs: list[pa.Table] = []
        pairs: list[pa.Table] = []
        slow_recs: list[tuple] = []
        slow_pairs: list[tuple] = []

        def slow(pos: int) -> None:
            self._keep(_parse_line(block.line(pos), int(block.lines[pos]), block.first + pos), slow_recs, slow_pairs)

        for lo, fb in self._fast_spans(block, 0, block.n):
            if fb is None:
                slow(lo)
                continue
            self._stats.add(PairStats(fb.empty_pairs, fb.orphan_assistant_turns, fb.skipped_system_turns))
            n_before = sum(t.num_rows for t in recs)
            recs.append(fb.rec)
            pairs.append(fb.pairs.set_column(0, "owner", pc.add(fb.pairs.column("owner"), n_before).cast(pa.int32())))
            for pos in fb.slow:
                slow(lo + pos)
            for pos, rid, reason, fld, detail in fb.rejected:
                self.quarantine.append({"pool": self.pool, "source_file": self.source_file,
                                        "line": int(block.lines[lo + pos]), "record_id": rid, "field": fld,
                                        "reason": reason, "detail": detail})
        self.quarantine[q0:] = sorted(self.quarantine[q0:], key=lambda q: q["line"])
        if slow_recs:
            srec, spairs = _tables(slow_recs, slow_pairs)
            n_fast = sum(t.num_rows for t in recs)
            recs.append(srec)
            pairs.append(spairs.set_column(0, "owner", pc.add(spairs.column("owner"), n_fast).cast(pa.int32())))
        rec = pa.concat_tables(recs).combine_chunks() if recs else _tables([], [])[0]
        pair = pa.concat_tables(pairs).combine_chunks() if pairs else _tables([], [])[1]
        if slow_recs:  # back to record order
            order = pc.sort_indices(rec.column("record_index"))
            inverse = np.empty(len(order), dtype=np.int32)
            inverse[order.to_numpy()] = np.arange(len(order), dtype=np.int32)
            rec = rec.take(order)
            pair = pair.set_column(0, "owner", pa.array(inverse[pair.column("owner").to_numpy()]))
            pair = pair.take(pc.sort_indices(pair, [("owner", "ascending"), ("turn", "ascending")]))
        return rec, pair

    def _fast_spans(self, block: "_Block", lo: int, hi: int) -> Iterator[tuple[int, fast.FastBlock | None]]:
        """(start, FastBlock) of the spans of the block the fast path reads; (line, None) for single lines it misses."""
        try:
            tab = fast.parse_block(block.span(lo, hi), hi - lo, self.src.format)
        except fast.FastPathMiss:
            if hi - lo == 1:
                yield lo, None
                return
            mid = (lo + hi) // 2
            yield from self._fast_spans(block, lo, mid)
            yield from self._fast_spans(block, mid, hi)
            return
        yield lo, fast.read_block(tab, block.lines[lo:hi], block.first + lo, self.src.format, self._res,
                                  self.max_frames, self._fallback_source)

    def _emit(self, rec: pa.Table, pairs: pa.Table) -> Iterator[pa.RecordBatch]:
        """Give the kept records their ids and QA columns, and cut batches where the record-at-a-time reader did."""
        if rec.num_rows == 0:
            return
        rids = rec.column("rid").to_pylist()
        sample_ids = self._sample_ids(rids, rec.column("line"))
        sample = rec.column("rid").combine_chunks() if sample_ids is rids else pa.array(sample_ids, pa.string())
        source = rec.column("source").combine_chunks()
        uniq = pc.unique(source)
        groups = []
        for s in uniq.to_pylist():
            g = self._groups.get(s)
            if g is None:
                g = self._groups[s] = source_group(s)
            groups.append(g)
        n_frames = pc.list_value_length(rec.column("frame_indices")).cast(pa.int32()).combine_chunks()
        bucket = _BUCKETS.take(pa.array(np.minimum(n_frames.to_numpy(), 2)))
        records = pa.table({
            "sample_id": sample, "video_uid": pc.coalesce(rec.column("video_id"), sample), "source": source,
            "source_group": pa.array(groups, pa.string()).take(pc.index_in(source, uniq)), "bucket": bucket,
            "media_kind": rec.column("media_kind"), "media": rec.column("media"),
            "frame_indices": rec.column("frame_indices"), "n_frames": n_frames,
            "n_frames_total": rec.column("n_frames_total"), "record_index": rec.column("record_index")})
        owner = pairs.column("owner").combine_chunks().to_numpy()
        ends = np.cumsum(np.bincount(owner, minlength=rec.num_rows))
        n = len(owner)
        r0 = p0 = 0
        while True:  # a batch ends after the first record that brings it to >= batch_rows rows
            i = int(np.searchsorted(ends, p0 + self.batch_rows - self._pending_rows, side="left"))
            if i >= len(ends):
                break
            self._hold(records.slice(r0, i + 1 - r0), pairs.slice(p0, int(ends[i]) - p0), owner[p0:ends[i]] - r0)
            r0, p0 = i + 1, int(ends[i])
            yield self._flush()
        if p0 < n:
            self._hold(records.slice(r0), pairs.slice(p0), owner[p0:] - r0)

    def _sample_ids(self, rids: list[str], lines: pa.ChunkedArray) -> list[str]:
        """Ids of kept records in order: a repeated id (same namespace) becomes `{id}#dup{n}`."""
        prefix = self._prefix
        keys = list(zip(repeat(prefix), rids))
        fresh = set(keys)
        if len(fresh) == len(keys) and self.seen_ids.keys().isdisjoint(fresh) and self.renamed_ids.isdisjoint(fresh):
            self.seen_ids.update(dict.fromkeys(keys, 1))  # no repeat: every id is its own sample id
            return rids
        sample_ids = []
        for rid, line in zip(rids, lines.to_pylist()):
            key = (prefix, rid)
            occurrence = self.seen_ids[key]
            self.seen_ids[key] = occurrence + 1
            if occurrence == 0:
                sample_ids.append(rid)
                if key in self.renamed_ids:
                    raise RuntimeError(f"{self.path}:{line}: id {rid!r} collides with a renamed duplicate id")
            else:
                sample_id = f"{rid}#dup{occurrence}"
                if (prefix, sample_id) in self.seen_ids:
                    raise RuntimeError(f"{self.path}:{line}: renamed duplicate {sample_id!r} is also a record id")
                self.renamed_ids.add((prefix, sample_id))
                self._renamed += 1
                sample_ids.append(sample_id)
        return sample_ids

    def _hold(self, records: pa.Table, pairs: pa.Table, owner: np.ndarray) -> None:
        """Keep records and their pairs (owner: row in `records`) for the next batch."""
        self._pending.append((records, pairs, owner + self._pending_records))
        self._pending_records += records.num_rows
        self._pending_rows += pairs.num_rows

    def _flush(self) -> pa.RecordBatch:
        """The held rows as one record batch: record-level columns repeated per pair with one `take`."""
        records = pa.concat_tables([r for r, _, _ in self._pending]).combine_chunks()
        pairs = pa.concat_tables([p for _, p, _ in self._pending]).combine_chunks()
        owner = pa.array(np.concatenate([o for _, _, o in self._pending]))
        n = len(owner)
        cols = {name: records.column(name).chunk(0).take(owner) if records.column(name).num_chunks else
                records.column(name).combine_chunks() for name in records.column_names}
        turn = pairs.column("turn").combine_chunks()
        cols.update({"qa_uid": pc.binary_join_element_wise(f"{self._prefix}::", cols["sample_id"], "::t",
                                                           pc.cast(turn, pa.string()), ""),
                     "question": pairs.column("question").combine_chunks(),
                     "question_raw": pairs.column("question_raw").combine_chunks(),
                     "answer": pairs.column("answer").combine_chunks(), "turn": turn,
                     "pool": pa.array([self.pool] * n, pa.string()),
                     "source_file": pa.array([self.source_file] * n, pa.string())})
        self._rows += n
        self._pending, self._pending_rows, self._pending_records = [], 0, 0
        return pa.RecordBatch.from_arrays([cols[f.name] for f in QA_SCHEMA], schema=QA_SCHEMA)


@dataclass
class _Block:
    """Non-blank JSONL lines (each ending in a newline) as one bytes object, with their file lines."""

    data: bytes
    starts: np.ndarray   # byte offset of each line, then len(data)
    lines: np.ndarray    # 1-based file line of each line
    first: int           # record index of the first line

    @property
    def n(self) -> int:
        return len(self.lines)

    def line(self, i: int) -> bytes:
        return self.data[self.starts[i]:self.starts[i + 1]]

    def span(self, lo: int, hi: int) -> bytes:
        return self.data if (lo, hi) == (0, self.n) else self.data[self.starts[lo]:self.starts[hi]]

    @classmethod
    def of(cls, data: bytes, lineno: int, first: int) -> "_Block":
        """Lines of `data` (newline-terminated) starting at file line `lineno`; blank lines are skipped as iter_jsonl does."""
        ends = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10) + 1
        starts = np.concatenate([[0], ends]).astype(np.int64)
        if len(ends) == 0 or (np.frombuffer(data, dtype=np.uint8)[starts[:-1]] == 123).all():  # every line starts "{"
            return cls(data, starts, np.arange(lineno, lineno + len(ends), dtype=np.int64), first)
        keep = [i for i in range(len(ends)) if data[starts[i]:starts[i + 1]].strip()]
        parts = [data[starts[i]:starts[i + 1]] for i in keep]
        lens = np.array([len(x) for x in parts], dtype=np.int64)
        return cls(b"".join(parts), np.concatenate([[0], np.cumsum(lens)]).astype(np.int64),
                   lineno + np.asarray(keep, dtype=np.int64), first)


def _parse_line(line: bytes, lineno: int, index: int) -> RawRecord:
    """One JSONL line as `records.iter_jsonl` parses it."""
    try:
        return RawRecord(lineno, index, _loads(line))
    except _DecodeError as exc:
        return RawRecord(lineno, index, None, _decode_error(exc))


def _tables(recs: list[tuple], pairs: list[tuple]) -> tuple[pa.Table, pa.Table]:
    """Python rows of kept records / pairs -> REC_SCHEMA / PAIR_SCHEMA tables."""
    rc = list(zip(*recs)) or [()] * len(fast.REC_SCHEMA)
    pc_ = list(zip(*pairs)) or [()] * len(fast.PAIR_SCHEMA)
    return (pa.table([pa.array(c, f.type) for c, f in zip(rc, fast.REC_SCHEMA)], schema=fast.REC_SCHEMA),
            pa.table([pa.array(c, f.type) for c, f in zip(pc_, fast.PAIR_SCHEMA)], schema=fast.PAIR_SCHEMA))
