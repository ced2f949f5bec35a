"""One annotation file -> QA rows as Arrow record batches + quarantine rows + counts.

The per-record work (schema checks, turn pairs, media) is a tight Python loop that fills plain
column lists; every `batch_rows` QA rows the lists become one Arrow record batch (record-level columns
are built once per record and repeated per pair with `take`), so a million-record pool never exists
as a million Python dicts. Format specifics live in one module per format (onevision, llava_video,
llava_json).

Ids: `qa_uid = "{prefix}::{id}::t{k}"` with prefix "ov" (OneVision) / "vv" (LLaVA-Video) in the GDO
pool and the pool's name elsewhere. A repeated id is renamed `{id}#dup{n}` only within its own
namespace (the same prefix): an "ov::x" and a "vv::x" are different candidates, so ids keep joining
with per-candidate metrics computed by the release.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Literal

import pyarrow as pa

from ..config import PoolSource
from ..schema import QA_SCHEMA
from . import llava_json, llava_video, onevision
from .paths import MediaResolver
from .records import RawRecord, iter_records
from .text import PairStats, RecordError, pair_tuples, source_group

GDO_POOL_NAME = "gdo"
ID_PREFIX = {onevision.FORMAT: onevision.ID_PREFIX, llava_video.FORMAT: llava_video.ID_PREFIX}
RELEASE_SOURCE = {onevision.FORMAT: onevision.RELEASE_SOURCE, llava_video.FORMAT: llava_video.RELEASE_SOURCE}
BATCH_ROWS = 65_536
DefaultSource = Literal["release", "file_stem"]
_RECORD_COLS = ("sample_id", "video_uid", "source", "source_group", "bucket", "media_kind", "media",
                "frame_indices", "n_frames", "n_frames_total", "record_index")  # order of the record tuples
_RECORD_TYPES = {f.name: f.type for f in QA_SCHEMA if f.name in _RECORD_COLS}


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
    quarantine: list[dict] = field(default_factory=list)
    report: dict = field(default_factory=dict)

    def _reject(self, r: RawRecord, rec_id: str, reason: str, fld: str, detail: str) -> None:
        self.quarantine.append({"pool": self.pool, "source_file": self.source_file, "line": r.line,
                                "record_id": rec_id, "field": fld, "reason": reason, "detail": detail})

    def batches(self) -> Iterator[pa.RecordBatch]:
        """QA rows of the file in file order, `batch_rows` at a time."""
        fmt, pool = self.src.format, self.pool
        self.source_file = str(Path(self.path).absolute())
        res = MediaResolver(root=self.media_root if self.media_root is not None else Path(self.path).parent,
                            check=self.check_media)
        prefix = id_prefix(fmt, pool)
        is_video = fmt == llava_video.FORMAT
        required_image = fmt == onevision.FORMAT
        fallback_source = default_source(self.src, Path(self.path), self.source_mode)
        groups: dict[str, str] = {}
        stats, rec_stats = PairStats(), PairStats()
        records = renamed = n_rows = 0
        recs: list[tuple] = []   # one tuple per kept record, fields in _RECORD_COLS order
        pairs_out: list[tuple] = []  # (qa_uid, question, question_raw, answer, turn, record position)

        def flush() -> pa.RecordBatch:
            rec_cols = list(zip(*recs))
            rec_tab = pa.table({c: pa.array(rec_cols[j], type=_RECORD_TYPES[c]) for j, c in enumerate(_RECORD_COLS)})
            qa_uid, question, question_raw, answer, turn, owner = zip(*pairs_out)
            rep = rec_tab.take(pa.array(owner, type=pa.int32()))
            n = len(qa_uid)
            cols = {"qa_uid": pa.array(qa_uid, pa.string()), "question": pa.array(question, pa.string()),
                    "question_raw": pa.array(question_raw, pa.string()), "answer": pa.array(answer, pa.string()),
                    "turn": pa.array(turn, pa.int32()), "pool": pa.array([pool] * n, pa.string()),
                    "source_file": pa.array([self.source_file] * n, pa.string())}
            arrays = [cols[f.name] if f.name in cols else rep.column(f.name).combine_chunks() for f in QA_SCHEMA]
            recs.clear()
            pairs_out.clear()
            return pa.RecordBatch.from_arrays(arrays, schema=QA_SCHEMA)

        for r in iter_records(Path(self.path), fmt):
            records += 1
            d = r.data
            if d is None and r.error:
                self._reject(r, "", "malformed_json", "", r.error)
                continue
            if not isinstance(d, dict):
                self._reject(r, "", "wrong_schema", "", f"record is {type(d).__name__}, expected object")
                continue
            rid = d.get("id")
            if rid is None or (isinstance(rid, str) and not rid.strip()):
                self._reject(r, "", "missing_id", "id", "")
                continue
            rid = str(rid)
            rec_stats.empty_pairs = rec_stats.orphan_assistant_turns = rec_stats.skipped_system_turns = 0
            try:
                messages = d.get("messages")
                if messages is None:
                    messages = d.get("conversations")
                if messages is None:
                    raise RecordError("missing_messages", "messages|conversations")
                pairs = pair_tuples(messages, rec_stats)
                if not pairs:
                    raise RecordError("empty_turns", "messages", "no user->assistant pair with text")
                if is_video:
                    kind, media, idx, n_total = llava_video.media_of(d, res, self.max_frames)
                elif required_image:
                    kind, media, idx, n_total = onevision.media_of(d, res)
                else:
                    kind, media, idx, n_total = llava_json.media_of(d, res)
            except RecordError as exc:
                self._reject(r, rid, exc.reason, exc.field, exc.detail)
                continue
            stats.add(rec_stats)  # pair counts only for records that are kept
            key = (prefix, rid)
            occurrence = self.seen_ids[key]
            self.seen_ids[key] = occurrence + 1
            if occurrence == 0:
                sample_id = rid
                if key in self.renamed_ids:
                    raise RuntimeError(f"{self.path}:{r.line}: id {rid!r} collides with a renamed duplicate id")
            else:
                sample_id = f"{rid}#dup{occurrence}"
                if (prefix, sample_id) in self.seen_ids:
                    raise RuntimeError(f"{self.path}:{r.line}: renamed duplicate {sample_id!r} is also a record id")
                self.renamed_ids.add((prefix, sample_id))
                renamed += 1
            n_frames = len(idx)
            vid = llava_video.video_id(d) if is_video else None
            source = d.get("data_source")
            if not (isinstance(source, str) and source):
                source = fallback_source
            grp = groups.get(source)
            if grp is None:
                grp = groups[source] = source_group(source)
            pos = len(recs)
            recs.append((sample_id, vid if vid is not None else sample_id, source, grp,
                         "text_only" if n_frames == 0 else ("image_qa" if n_frames == 1 else "short_video"),
                         kind, media, idx, n_frames, n_total, r.index))
            head = f"{prefix}::{sample_id}::t"
            for k, (q, q_raw, a) in enumerate(pairs):
                pairs_out.append((f"{head}{k}", q, q_raw, a, k, pos))
            if len(pairs_out) >= self.batch_rows:
                n_rows += len(pairs_out)
                yield flush()
        if pairs_out:
            n_rows += len(pairs_out)
            yield flush()
        self.report = {
            "file": self.source_file, "format": fmt, "records": records, "records_ok": records - len(self.quarantine),
            "quarantined": len(self.quarantine), "qa_rows": n_rows,
            "quarantine_by_reason": dict(sorted(Counter(q["reason"] for q in self.quarantine).items())),
            "dropped_empty_pairs": stats.empty_pairs, "ignored_orphan_assistant_turns": stats.orphan_assistant_turns,
            "ignored_system_turns": stats.skipped_system_turns, "renamed_duplicate_ids": renamed,
        }
