"""Pool readers: LLaVA-OneVision / LLaVA-Video JSONL and LLaVA-665K / Vision-Flan JSON -> one QA table.

Parsing follows GDO_METHOD.md section 2 exactly: every user->assistant turn pair becomes one
single-turn candidate; <image>/<video>/<audio> tokens are stripped from the user text and whitespace
is collapsed; pairs with an empty question or answer are dropped (counted); an assistant turn with no
preceding user turn is ignored (counted); k counts emitted pairs. Image rows keep only their first
image; video rows are uniformly subsampled to T frames. Videos may be frame lists, frame folders or
video files (decord, same uniform indices).

Rejected records never vanish: each becomes a quarantine row (file, line, id, field, reason) and the
pool report counts everything. The table schema is in `gdo_utils.schema`.
"""
from __future__ import annotations

import json
import logging
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pandas as pd
import pyarrow as pa

from .config import Params, PoolSource, params_hash, resolve_path
from .io import manifest_matches, read_parquet, write_json, write_manifest, write_parquet
from .media import MediaError, is_video_file, list_frame_folder, load_image, probe_video, uniform_indices
from .schema import QA_COLUMNS, QA_SCHEMA, QUARANTINE_COLUMNS, QUARANTINE_SCHEMA
from .words import count_words

log = logging.getLogger(__name__)

MEDIA_TOKEN_RE = re.compile(r"<(?:image|video|audio)>", re.IGNORECASE)
USER_ROLES = {"user", "human"}
ASSISTANT_ROLES = {"assistant", "gpt"}
SKIPPED_ROLES = {"system"}
GDO_POOL_NAME = "gdo"
ID_PREFIX = {"onevision": "ov", "llava_video": "vv"}


class PoolFormatError(ValueError):
    """A whole annotation file is unreadable (not JSON, wrong top-level type); names file and line."""


class RecordError(ValueError):
    """One record is rejected: becomes a quarantine row."""

    def __init__(self, reason: str, field: str = "", detail: str = "") -> None:
        self.reason, self.field, self.detail = reason, field, detail
        super().__init__(f"{reason} [{field}] {detail}".strip())


# ----------------------------------------------------------------------------- text rules
def strip_media_tokens(text: str) -> str:
    """Remove <image>/<video>/<audio> placeholders (whitespace is NOT collapsed here)."""
    return MEDIA_TOKEN_RE.sub("", text)


def collapse_ws(text: str) -> str:
    return " ".join(text.split())


def source_group(source: str) -> str:
    """Text before "(" if present; else the first four "_"-separated parts; else the string."""
    if "(" in source:
        head = source.split("(", 1)[0].strip()
        if head:
            return head
    parts = source.split("_")
    if len(parts) > 4:
        return "_".join(parts[:4])
    return source


def _content_text(content: Any, where: str) -> str:
    """Message content as text: a string, or the text parts of an OpenAI-style list (media parts dropped)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for i, part in enumerate(content):
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, dict):
                if isinstance(part.get("text"), str):
                    texts.append(part["text"])
            else:
                raise RecordError("wrong_schema", f"{where}[{i}]", f"content part of type {type(part).__name__}")
        return "\n".join(texts)
    raise RecordError("wrong_schema", where, f"content of type {type(content).__name__}")


@dataclass
class Pair:
    turn: int
    question: str
    question_raw: str
    answer: str


@dataclass
class PairStats:
    empty_pairs: int = 0
    orphan_assistant_turns: int = 0
    skipped_system_turns: int = 0


def extract_pairs(messages: Any, stats: PairStats | None = None) -> list[Pair]:
    """User->assistant pairs of one record (GDO section 2 rules). Raises RecordError on bad schema."""
    stats = stats if stats is not None else PairStats()
    if not isinstance(messages, list):
        raise RecordError("missing_messages" if messages is None else "wrong_schema", "messages",
                          "" if messages is None else f"type {type(messages).__name__}")
    pairs: list[Pair] = []
    pending: str | None = None
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict):
            raise RecordError("wrong_schema", f"messages[{i}]", f"type {type(msg).__name__}")
        role = msg.get("role", msg.get("from"))
        if not isinstance(role, str):
            raise RecordError("wrong_schema", f"messages[{i}].role", "missing role/from")
        role = role.lower()
        text = _content_text(msg.get("content", msg.get("value")), f"messages[{i}].content")
        if role in USER_ROLES:
            pending = text
        elif role in ASSISTANT_ROLES:
            if pending is None:
                stats.orphan_assistant_turns += 1
                continue
            q_raw = strip_media_tokens(pending).strip()
            q, a = collapse_ws(q_raw), collapse_ws(text)
            pending = None
            if not q or not a:
                stats.empty_pairs += 1
                continue
            pairs.append(Pair(turn=len(pairs), question=q, question_raw=q_raw, answer=a))
        elif role in SKIPPED_ROLES:
            stats.skipped_system_turns += 1
        else:
            raise RecordError("wrong_schema", f"messages[{i}].role", f"unknown role {role!r}")
    return pairs


# ----------------------------------------------------------------------------- record iteration
@dataclass
class RawRecord:
    line: int            # 1-based line (JSONL) or record number (JSON array)
    index: int           # 0-based record index
    data: Any            # parsed JSON, or None when malformed
    error: str = ""      # parse error detail


def iter_jsonl(path: Path) -> Iterator[RawRecord]:
    """Each non-blank line parsed on its own; malformed lines come back with `error` set."""
    with open(path, "r", encoding="utf-8", errors="replace") as fh:
        idx = 0
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                yield RawRecord(lineno, idx, json.loads(line))
            except json.JSONDecodeError as exc:
                yield RawRecord(lineno, idx, None, f"{exc.msg} at column {exc.colno}")
            idx += 1


def iter_json_array(path: Path) -> Iterator[RawRecord]:
    """Records of a JSON array file (LLaVA-665K / Vision-Flan annotation)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise PoolFormatError(f"{path}:{exc.lineno}:{exc.colno}: not valid JSON ({exc.msg})") from None
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        data = data["data"]
    if not isinstance(data, list):
        raise PoolFormatError(f"{path}: top level must be a JSON array of records, got {type(data).__name__}")
    for i, rec in enumerate(data):
        yield RawRecord(i + 1, i, rec)


def load_raw_records(path: str | Path, fmt: str) -> list[Any]:
    """The original records of an annotation file in order (None for malformed JSONL lines).

    Used to write selected subsets back in their original format (record_index indexes this list).
    """
    p = Path(path)
    it = iter_jsonl(p) if fmt in ("onevision", "llava_video") else iter_json_array(p)
    return [r.data for r in it]


# ----------------------------------------------------------------------------- media resolution
@dataclass
class MediaResolver:
    """Resolves media paths against a root and (optionally) checks them, caching per path."""

    root: Path
    check: bool
    _image_ok: dict = field(default_factory=dict)
    _video: dict = field(default_factory=dict)

    def path(self, rel: str) -> Path:
        p = Path(rel).expanduser()
        return p if p.is_absolute() else self.root / p

    def image(self, rel: str) -> Path:
        p = self.path(rel)
        if self.check:
            key = str(p)
            if key not in self._image_ok:
                try:
                    load_image(p)
                    self._image_ok[key] = None
                except MediaError as exc:
                    self._image_ok[key] = exc
            if self._image_ok[key] is not None:
                raise self._image_ok[key]
        return p

    def video_frames_total(self, p: Path) -> int:
        key = str(p)
        if key not in self._video:
            try:
                self._video[key] = probe_video(p).n_frames
            except MediaError as exc:
                self._video[key] = exc
        v = self._video[key]
        if isinstance(v, MediaError):
            raise v
        return v


def _as_list(v: Any) -> list:
    if v is None:
        return []
    return v if isinstance(v, list) else [v]


def _media_for_image_row(rec: dict, res: MediaResolver, required: bool) -> tuple[str, list[str], list[int], int]:
    """(media_kind, media, frame_indices, n_total) for an image row: first image only."""
    images = _as_list(rec.get("images", rec.get("image")))
    if not all(isinstance(x, str) for x in images):
        raise RecordError("wrong_schema", "images", "image paths must be strings")
    if not images:
        if required:
            raise RecordError("no_image", "images")
        return "none", [], [], 0
    try:
        p = res.image(images[0])
    except MediaError as exc:
        raise RecordError(exc.reason, "images[0]", exc.path) from None
    return "image", [str(p)], [0], 1


def _media_for_video_row(rec: dict, res: MediaResolver, t: int) -> tuple[str, list[str], list[int], int]:
    """Video row: frame list (`images`/`frames`), frame folder or file (`video`), uniformly subsampled."""
    frames = _as_list(rec.get("images", rec.get("frames")))
    video = rec.get("video")
    if isinstance(video, list):
        video = video[0] if video else None
    if frames:
        if not all(isinstance(x, str) for x in frames):
            raise RecordError("wrong_schema", "images", "frame paths must be strings")
        idx = uniform_indices(len(frames), t)
        chosen = [res.path(frames[i]) for i in idx]
        if res.check:
            for j, p in zip(idx, chosen):
                try:
                    res.image(str(p))
                except MediaError as exc:
                    raise RecordError(exc.reason, f"images[{j}]", exc.path) from None
        return "frames", [str(p) for p in chosen], idx, len(frames)
    if video is None:
        raise RecordError("no_frames", "images|video")
    if not isinstance(video, str):
        raise RecordError("wrong_schema", "video", f"type {type(video).__name__}")
    p = res.path(video)
    try:
        if p.is_dir():
            files = list_frame_folder(p)
            idx = uniform_indices(len(files), t)
            return "frames", [str(files[i]) for i in idx], idx, len(files)
        if not is_video_file(p) and p.suffix:
            raise RecordError("wrong_schema", "video", f"not a video file or frame folder: {p.name}")
        n = res.video_frames_total(p)
    except MediaError as exc:
        raise RecordError(exc.reason, "video", exc.path) from None
    return "video_file", [str(p)], uniform_indices(n, t), n


# ----------------------------------------------------------------------------- one file -> rows
@dataclass
class FileResult:
    rows: list[dict]
    quarantine: list[dict]
    report: dict


def read_source(src: PoolSource, path: Path, pool: str, *, max_frames: int = 32, check_media: bool = True,
                media_root: Path | None = None, seen_ids: Counter | None = None) -> FileResult:
    """Parse one annotation file into QA rows + quarantine rows + counts."""
    fmt = src.format
    root = media_root if media_root is not None else path.parent
    res = MediaResolver(root=root, check=check_media)
    seen_ids = seen_ids if seen_ids is not None else Counter()
    stats = PairStats()
    rows: list[dict] = []
    quarantine: list[dict] = []
    records = 0
    renamed = 0
    prefix = ID_PREFIX.get(fmt, pool) if pool == GDO_POOL_NAME else pool
    is_video_fmt = fmt == "llava_video"
    iterator = iter_jsonl(path) if fmt in ("onevision", "llava_video") else iter_json_array(path)
    default_source = src.source or path.stem

    def reject(r: RawRecord, rec_id: str, reason: str, fld: str, detail: str) -> None:
        quarantine.append({"pool": pool, "source_file": str(path), "line": r.line, "record_id": rec_id,
                           "field": fld, "reason": reason, "detail": detail})

    for r in iterator:
        records += 1
        if r.data is None and r.error:
            reject(r, "", "malformed_json", "", r.error)
            continue
        rec = r.data
        if not isinstance(rec, dict):
            reject(r, "", "wrong_schema", "", f"record is {type(rec).__name__}, expected object")
            continue
        rid = rec.get("id")
        if rid is None or (isinstance(rid, str) and not rid.strip()):
            reject(r, "", "missing_id", "id", "")
            continue
        rid = str(rid)
        try:
            messages = rec.get("messages", rec.get("conversations"))
            if messages is None:
                raise RecordError("missing_messages", "messages|conversations")
            rec_stats = PairStats()
            pairs = extract_pairs(messages, rec_stats)
            if not pairs:
                raise RecordError("empty_turns", "messages", "no user->assistant pair with text")
            if is_video_fmt:
                kind, media, idx, n_total = _media_for_video_row(rec, res, max_frames)
            else:
                kind, media, idx, n_total = _media_for_image_row(rec, res, required=(fmt == "onevision"))
        except RecordError as exc:
            reject(r, rid, exc.reason, exc.field, exc.detail)
            continue
        for k, v in vars(rec_stats).items():  # pair counts only for records that are kept
            setattr(stats, k, getattr(stats, k) + v)
        occurrence = seen_ids[rid]
        seen_ids[rid] += 1
        sample_id = rid if occurrence == 0 else f"{rid}#dup{occurrence}"
        renamed += occurrence > 0
        n_frames = len(idx)
        bucket = "text_only" if n_frames == 0 else ("image_qa" if n_frames == 1 else "short_video")
        video_id = rec.get("video_id") if is_video_fmt else None
        video_uid = str(video_id) if video_id not in (None, "") else sample_id
        source = rec.get("data_source") if isinstance(rec.get("data_source"), str) and rec.get("data_source") else default_source
        for p in pairs:
            rows.append({
                "qa_uid": f"{prefix}::{sample_id}::t{p.turn}", "sample_id": sample_id, "video_uid": video_uid,
                "source": source, "source_group": source_group(source), "bucket": bucket, "media_kind": kind,
                "media": media, "frame_indices": idx, "n_frames": n_frames, "n_frames_total": n_total,
                "question": p.question, "question_raw": p.question_raw, "answer": p.answer, "turn": p.turn,
                "pool": pool, "source_file": str(path), "record_index": r.index,
            })
    report = {
        "file": str(path), "format": fmt, "records": records, "records_ok": records - len(quarantine),
        "quarantined": len(quarantine), "qa_rows": len(rows),
        "quarantine_by_reason": dict(sorted(Counter(q["reason"] for q in quarantine).items())),
        "dropped_empty_pairs": stats.empty_pairs, "ignored_orphan_assistant_turns": stats.orphan_assistant_turns,
        "ignored_system_turns": stats.skipped_system_turns, "renamed_duplicate_ids": renamed,
    }
    return FileResult(rows, quarantine, report)


# ----------------------------------------------------------------------------- a pool
@dataclass
class PoolResult:
    table: pd.DataFrame
    quarantine: pd.DataFrame
    report: dict


def build_pool(params: Params, sources: list[PoolSource], pool: str, field_prefix: str) -> PoolResult:
    """Read every source of one pool into a QA table (file order) + quarantine + report."""
    from tqdm.auto import tqdm

    all_rows: list[dict] = []
    all_q: list[dict] = []
    files = []
    seen = Counter()
    for i, src in enumerate(tqdm(sources, desc=f"pool {pool}", disable=len(sources) < 2)):
        path = resolve_path(params, src.path, f"{field_prefix}[{i}].path")
        root = resolve_path(params, src.media_root, f"{field_prefix}[{i}].media_root") if src.media_root else None
        if not path.is_file():
            raise PoolFormatError(f"{field_prefix}[{i}].path: annotation file not found: {path}")
        fr = read_source(src, path, pool, max_frames=params.pool.max_frames, check_media=params.pool.check_media,
                         media_root=root, seen_ids=seen)
        all_rows.extend(fr.rows)
        all_q.extend(fr.quarantine)
        files.append(fr.report)
        if fr.quarantine:
            log.warning("%s: %d record(s) quarantined %s", path, len(fr.quarantine), fr.report["quarantine_by_reason"])
    table = pd.DataFrame(all_rows, columns=QA_COLUMNS)
    dup = table["qa_uid"].duplicated()
    if dup.any():  # cannot happen with renamed duplicate ids; guard the contract anyway
        raise RuntimeError(f"pool {pool}: duplicated qa_uid {table.loc[dup, 'qa_uid'].iloc[0]!r}")
    quarantine = pd.DataFrame(all_q, columns=QUARANTINE_COLUMNS)
    return PoolResult(table, quarantine, summarize(table, quarantine, files, pool))


def summarize(table: pd.DataFrame, quarantine: pd.DataFrame, files: list[dict], pool: str) -> dict:
    """Pool report: counts per file and in total, buckets, sources, lengths, quarantine reasons."""
    words = count_words(table["question"]) if len(table) else pd.Series(dtype=int)
    return {
        "pool": pool,
        "files": files,
        "records": sum(f["records"] for f in files),
        "records_ok": sum(f["records_ok"] for f in files),
        "quarantined": int(len(quarantine)),
        "quarantine_by_reason": dict(sorted(Counter(quarantine["reason"]).items())) if len(quarantine) else {},
        "qa_rows": int(len(table)),
        "samples": int(table["sample_id"].nunique()),
        "videos": int(table.loc[table["bucket"] == "short_video", "video_uid"].nunique()),
        "by_bucket": {k: int(v) for k, v in table["bucket"].value_counts().sort_index().items()},
        "by_media_kind": {k: int(v) for k, v in table["media_kind"].value_counts().sort_index().items()},
        "by_source": {k: int(v) for k, v in table["source"].value_counts().sort_index().items()},
        "source_groups": int(table["source_group"].nunique()),
        "question_words_median": float(words.median()) if len(words) else 0.0,
        "dropped_empty_pairs": sum(f["dropped_empty_pairs"] for f in files),
        "ignored_orphan_assistant_turns": sum(f["ignored_orphan_assistant_turns"] for f in files),
        "renamed_duplicate_ids": sum(f["renamed_duplicate_ids"] for f in files),
    }


def write_pool(result: PoolResult, out_dir: Path, p_hash: str, params_file: str | None, wall: float) -> dict:
    """Write qa.parquet, quarantine.parquet, report.json and the manifest (all atomic)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    qa = pa.Table.from_pandas(result.table, schema=QA_SCHEMA, preserve_index=False)
    q = pa.Table.from_pandas(result.quarantine, schema=QUARANTINE_SCHEMA, preserve_index=False)
    outs = [write_parquet(out_dir / "qa.parquet", qa), write_parquet(out_dir / "quarantine.parquet", q),
            write_json(out_dir / "report.json", result.report)]
    write_manifest(out_dir, stage=f"pool:{result.report['pool']}", params_hash=p_hash, params_file=params_file,
                   wall_time_s=wall, outputs=outs)
    return result.report


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


def run_pool_stage(params: Params, force: bool = False, only: list[str] | None = None) -> dict[str, dict]:
    """Generate the toy world when enabled, then build every pool; skip pools whose manifest matches."""
    if params.toyworld.enabled:
        from .toyworld import generate_toyworld

        generate_toyworld(params.toyworld, params.toyworld_dir, force=force)
    h = pool_hash(params)
    reports = {}
    for name, sources, prefix in named_pools(params):
        if only and name not in only:
            continue
        out = pool_dir(params, name)
        if not force and manifest_matches(out, h, ["qa.parquet", "quarantine.parquet", "report.json"]):
            log.info("pool %s: up to date (%s), skipped", name, out)
            reports[name] = json.loads((out / "report.json").read_text())
            continue
        t0 = time.time()
        result = build_pool(params, sources, name, prefix)
        reports[name] = write_pool(result, out, h, params.source_file, time.time() - t0)
        log.info("pool %s: %d QA rows from %d records, %d quarantined", name, result.report["qa_rows"],
                 result.report["records"], result.report["quarantined"])
    return reports


def load_pool(params: Params, name: str = GDO_POOL_NAME) -> pd.DataFrame:
    """The QA table of a built pool."""
    path = pool_dir(params, name) / "qa.parquet"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run the pool stage first (gdo-repro pool --params ...)")
    return read_parquet(path)


def load_quarantine(params: Params, name: str = GDO_POOL_NAME) -> pd.DataFrame:
    return read_parquet(pool_dir(params, name) / "quarantine.parquet")
