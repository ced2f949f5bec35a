"""Training files of a subset: the kit's train.jsonl (`gdo_utils.trainfile`) and exports to other trainers.

GDO rows are single turn (GDO trains on single-turn candidates): the user text is the question before
whitespace collapse (`params.subsets.prompt_text="question_raw"`, keeping MCQ option lines) or the
collapsed one, after one "<image>" per image or frame. Videos are written the one way the release
trains them, as an image sequence of <= 32 frames: frame folders as frame lists ("frames"), mp4 files
as `videos` + `frame_indices` ("video", decoded by the kit). `extract_frames` (CLI `gdo-repro export
--extract-frames`) turns "video" rows into "frames" rows over lossless PNG files of exactly those
frames, so ms-swift and LLaMA-Factory, which cannot be told which indices to decode, see the kit's frames.

Lines are `json.dumps(row, ensure_ascii=False)`, so the same rows give the same bytes; the subsets write
train.jsonl a batch at a time with Arrow string kernels (`trainlines`) that produce exactly those bytes.
Exports: `kit` (train.jsonl itself, or train_frames.jsonl with extracted frames), `ms-swift`
(messages + images JSONL), `llama-factory` (sharegpt JSON + dataset_info.json), `llava` (LLaVA JSON).
"""
from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Any, Iterable, Iterator, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from PIL import Image

from ..io import atomic_path, jsonl_bytes, write_chunks, write_json, write_jsonl
from ..trainfile import ExportError, conversation, media_fields, n_visuals
from ..trainfile import read_rows as read_train_rows
from .trainlines import line_bytes, training_lines

log = logging.getLogger(__name__)

ExportFormat = Literal["kit", "ms-swift", "llama-factory", "llava"]
EXPORT_FORMATS: tuple[str, ...] = ("kit", "ms-swift", "llama-factory", "llava")
FORMAT_ALIASES = {"swift": "ms-swift", "llamafactory": "llama-factory"}
EXTRA_COLUMNS = ("source", "bucket", "video_uid")


def read_rows(path: str | Path, rows: np.ndarray, columns: list[str], batch_size: int = 16384) -> pa.Table:
    """The given rows (positions in the Parquet file) of some columns, in the order of `rows` (Arrow).

    Reads the file batch by batch and keeps only the wanted rows, so a large list column (media) is
    never materialised for the whole pool; one thread, no pre-buffering of whole row groups (at 1M
    pool rows this halves the peak memory of the read and its CPU time).
    """
    rows = np.asarray(rows, dtype=np.int64)
    pf = pq.ParquetFile(path, pre_buffer=False, buffer_size=1 << 20)
    cols = [c for c in columns if c in pf.schema_arrow.names]
    sorted_rows = np.sort(rows)
    parts, offset = [], 0
    for batch in pf.iter_batches(batch_size=batch_size, columns=cols, use_threads=False):
        lo, hi = np.searchsorted(sorted_rows, [offset, offset + batch.num_rows])
        if hi > lo:
            parts.append(batch.take(pa.array(sorted_rows[lo:hi] - offset)))
        offset += batch.num_rows
    schema = pa.schema([pf.schema_arrow.field(c) for c in cols])
    table = pa.Table.from_batches(parts, schema=schema) if parts else schema.empty_table()
    if len(rows) and not np.array_equal(rows, sorted_rows):
        table = table.take(pa.array(np.searchsorted(sorted_rows, rows)))
    return table



def absolute_media(media: pa.ChunkedArray | pa.Array) -> pa.Array:
    """os.path.abspath of every media path, with Arrow kernels: a path that starts with "/" and has no
    "//", no "/." and no trailing "/" is already what abspath returns (the pool writes such paths), only
    the others go through os.path.abspath."""
    media = media.combine_chunks() if isinstance(media, pa.ChunkedArray) else media
    flat = media.values.slice(media.offsets[0].as_py(), media.offsets[-1].as_py() - media.offsets[0].as_py()) \
        if len(media) else media.values.slice(0, 0)
    flat = pc.fill_null(flat, "None")  # str(None), as media_fields writes a null entry
    odd = pc.or_(pc.or_(pc.invert(pc.starts_with(flat, "/")), pc.match_substring(flat, "//")),
                 pc.or_(pc.match_substring(flat, "/."), pc.ends_with(flat, "/")))
    if pc.any(odd).as_py():
        fixed = pa.array([os.path.abspath(p) for p in flat.filter(odd).to_pylist()], flat.type)
        flat = pc.replace_with_mask(flat, odd, fixed)
    offsets = pc.subtract(media.offsets, media.offsets[0])
    return pa.ListArray.from_arrays(offsets, flat, mask=media.is_null()) if media.null_count else \
        pa.ListArray.from_arrays(offsets, flat)


def _prompt_texts(cols: dict[str, list], prompt_text: str) -> list[str]:
    """question_raw where asked for and non-empty, else the collapsed question."""
    raws = cols.get("question_raw") if prompt_text == "question_raw" else None
    if raws is None:
        return [str(q) for q in cols["question"]]
    return [r if isinstance(r, str) and r else str(q) for r, q in zip(raws, cols["question"])]


def training_rows(table: pa.Table | pd.DataFrame, prompt_text: str = "question_raw") -> list[dict[str, Any]]:
    """Single-turn contract rows of pool rows (qa_uid, media_kind, media, frame_indices, question[_raw], answer).

    Extra pool columns present in `table` (source, bucket, video_uid) are carried along.
    """
    absolute = isinstance(table, pa.Table)
    if absolute:
        table = table.set_column(table.schema.get_field_index("media"), "media", absolute_media(table.column("media")))
    df = table.to_pydict() if absolute else {c: table[c].tolist() for c in table.columns}
    questions = _prompt_texts(df, prompt_text)
    extras = [c for c in EXTRA_COLUMNS if c in df]
    out = []
    for i, uid in enumerate(df["qa_uid"]):
        media = media_fields(df["media_kind"][i], df["media"][i], df["frame_indices"][i], absolute=absolute)
        pair = [(questions[i], str(df["answer"][i]))]
        row: dict[str, Any] = {"id": str(uid), "messages": conversation(pair, n_visuals(media))}
        row.update(media)
        row.update({c: df[c][i] for c in extras})
        out.append(row)
    return out


def training_file_chunks(tables: Iterable[pa.Table], prompt_text: str = "question_raw") -> Iterator[bytes | memoryview]:
    """The bytes of train.jsonl for a sequence of Arrow tables (batches): each batch's lines by Arrow kernels
    (`trainlines.training_lines`), or, where it does not model the batch, `training_rows` through json.dumps;
    the same bytes either way."""
    for table in tables:
        fast = None
        if isinstance(table, pa.Table) and "media" in table.column_names:
            extras = [c for c in EXTRA_COLUMNS if c in table.column_names]
            fast = training_lines(table.set_column(table.schema.get_field_index("media"), "media",
                                                   absolute_media(table.column("media"))), prompt_text, extras)
        yield line_bytes(fast) if fast is not None else jsonl_bytes(training_rows(table, prompt_text))


def write_training_file(path: str | Path, tables: Iterable[pa.Table], prompt_text: str = "question_raw") -> Path:
    """Atomically write train.jsonl of a sequence of Arrow tables (`training_file_chunks`)."""
    return write_chunks(path, training_file_chunks(tables, prompt_text))


def write_rows(path: str | Path, rows: Iterable[dict]) -> Path:
    """Atomically write contract rows as JSONL (json.dumps, ensure_ascii=False, key order kept)."""
    return write_jsonl(path, rows)


# ----------------------------------------------------------------------------- frame extraction
def frames_dir(frames_root: str | Path, video: str) -> Path:
    """Folder of a video's extracted frames: <frames_root>/<sha1 of the absolute video path, 16 hex>/."""
    return Path(frames_root) / hashlib.sha1(str(video).encode("utf-8")).hexdigest()[:16]


def extract_video_row(row: dict, frames_root: str | Path) -> dict:
    """A "video" row as a "frames" row over PNG files of exactly its frame_indices (written once, atomically)."""
    from ..media import read_video_frames

    video, idx = row["videos"][0], [int(i) for i in row["frame_indices"][0]]
    d = frames_dir(frames_root, video)
    paths = [d / f"frame_{i:06d}.png" for i in idx]
    todo = [k for k, p in enumerate(paths) if not p.is_file()]
    if todo:
        frames, _, _ = read_video_frames(video, [idx[k] for k in todo])
        for k, arr in zip(todo, frames):
            with atomic_path(paths[k]) as tmp:
                Image.fromarray(arr).save(tmp, format="PNG")
    out = {k: v for k, v in row.items() if k not in ("videos", "frame_indices", "images", "media_kind")}
    out.update(images=[str(p.resolve()) for p in paths], media_kind="frames", frame_indices=[idx], source_video=video)
    return out


def extract_frames(rows: list[dict], frames_root: str | Path) -> list[dict]:
    """Every "video" row turned into a "frames" row (PNG, lossless: the same pixels the kit decodes)."""
    from tqdm.auto import tqdm

    n_video = sum(r.get("media_kind") == "video" for r in rows)
    bar = tqdm(total=n_video, desc="extract frames", leave=False, disable=not n_video)
    out = []
    for r in rows:
        if r.get("media_kind") == "video":
            r = extract_video_row(r, frames_root)
            bar.update()
        out.append(r)
    bar.close()
    return out


# ----------------------------------------------------------------------------- other trainers
def to_llava(row: dict) -> dict:
    """LLaVA JSON record: conversations with from/value (human/gpt), `image` (path or list of frames)."""
    conv = [{"from": "human" if m["role"] == "user" else "gpt", "value": m["content"]} for m in row["messages"]]
    out: dict = {"id": row["id"]}
    if row["images"]:
        out["image"] = row["images"][0] if len(row["images"]) == 1 else list(row["images"])
    out["conversations"] = conv
    return out


def to_swift(row: dict) -> dict:
    """ms-swift standard record (also LLaMA-Factory sharegpt with role/content tags): messages + images."""
    return {"messages": row["messages"], "images": row["images"]}


def llamafactory_dataset_info(name: str, file_name: str) -> dict:
    """dataset_info.json entry for LLaMA-Factory's sharegpt format with role/content tags."""
    return {name: {"file_name": file_name, "formatting": "sharegpt",
                   "columns": {"messages": "messages", "images": "images"},
                   "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user",
                            "assistant_tag": "assistant"}}}


def normalise_format(fmt: str) -> str:
    """A known export format name (accepts swift / llamafactory); else ValueError listing them."""
    fmt = FORMAT_ALIASES.get(fmt, fmt)
    if fmt not in EXPORT_FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; valid: {', '.join(EXPORT_FORMATS)}")
    return fmt


def llamafactory_dataset_name(subset_dir: str | Path, out_path: str | Path | None) -> str:
    """The dataset_info.json entry name: the subset's name, or the stem of an explicit `--out` file."""
    return Path(out_path).stem if out_path else Path(subset_dir).name


def export_subset(subset_dir: str | Path, fmt: str, *, extract: bool = False,
                  frames_root: str | Path | None = None, out_path: str | Path | None = None,
                  force: bool = False) -> Path:
    """Write a subset's train.jsonl in another trainer's format (beside it); returns the written file.

    Trainers other than the kit cannot decode chosen frame indices of an mp4, so a subset holding
    "video" rows needs `extract=True` for them (frames go to `frames_root`, default <subset>/../../frames).
    LLaMA-Factory's dataset_info.json beside the export is merged (gdo_utils.export_recipes.merged_dataset_info):
    other entries stay, a different entry of the same name is refused unless `force`.
    """
    fmt = normalise_format(fmt)
    subset_dir = Path(subset_dir)
    src = subset_dir / "train.jsonl"
    if not src.is_file():
        raise FileNotFoundError(f"{src} not found: build the subset first")
    rows = list(read_train_rows(src))
    n_video = sum(r["media_kind"] == "video" for r in rows)
    if extract and n_video:
        rows = extract_frames(rows, frames_root or subset_dir.parent.parent / "frames")
    elif n_video and fmt != "kit":
        raise ExportError(f"{src}: {n_video} row(s) are mp4 videos that {fmt} would re-sample; "
                         "add --extract-frames (extract=True) so it trains on the kit's frames")
    if fmt == "kit":
        if not extract:
            return src
        return write_rows(Path(out_path or subset_dir / "train_frames.jsonl"), rows)
    if fmt == "llava":
        return write_json(Path(out_path or subset_dir / "train_llava.json"), [to_llava(r) for r in rows])
    if fmt == "ms-swift":
        return write_jsonl(Path(out_path or subset_dir / "train_swift.jsonl"), (to_swift(r) for r in rows))
    from ..export_recipes import merged_dataset_info, write_dataset_info

    out = Path(out_path or subset_dir / "train_llamafactory.json")
    info_file = out.parent / "dataset_info.json"
    entry = llamafactory_dataset_info(llamafactory_dataset_name(subset_dir, out_path), out.name)
    merged = merged_dataset_info(info_file, entry, force=force)   # a name clash stops before anything is written
    write_json(out, [to_swift(r) for r in rows])
    write_dataset_info(info_file, merged)
    return out
