"""Training files of a subset: train.jsonl and exporters to LLaVA JSON, ms-swift and LLaMA-Factory.

train.jsonl, one line per selected QA (single turn, as GDO trains on single-turn candidates):

    {"id": "<qa_uid>",
     "messages": [{"role": "user", "content": "<image>\\n<question>"},
                  {"role": "assistant", "content": "<answer>"}],
     "images": ["/abs/path.jpg"]}

* image rows: one "<image>" and one path;
* video rows given as frames: one "<image>" per frame (the paper feeds <= 32 frames as an image
  sequence), in frame order, and the frame paths;
* video rows given as a video file: "<video>" and ``"videos": ["/abs/clip.mp4"]`` plus
  ``"frame_indices"`` (the uniform indices the pool chose, for trainers that decode them);
* text-only rows: no media token and ``"images": []``.
The user text is the question before whitespace collapse (``params.subsets.prompt_text="question_raw"``,
keeping MCQ option lines) or the collapsed one. This is also the ms-swift "messages + images" format and
LLaMA-Factory's sharegpt format with role/content tags (`export_subset` writes its dataset_info.json).
"""
from __future__ import annotations

import json
from json.encoder import encode_basestring as _q  # C-accelerated; the ensure_ascii=False form json.dumps uses
from pathlib import Path
from typing import Iterable, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..io import atomic_path, write_json, write_jsonl

ExportFormat = Literal["llava", "swift", "llamafactory"]
MEDIA_COLUMNS = ["qa_uid", "media_kind", "media", "frame_indices", "question", "question_raw", "answer"]
RECORD_COLUMNS = ("qa_uid", "media_kind", "media", "frame_indices", "question", "answer", "question_raw")


def read_rows(path: str | Path, rows: np.ndarray, columns: list[str], batch_size: int = 131072) -> pa.Table:
    """The given rows (positions in the Parquet file) of some columns, in the order of `rows` (Arrow).

    Reads the file batch by batch and keeps only the wanted rows, so a large list column (media) is
    never materialised for the whole pool.
    """
    rows = np.asarray(rows, dtype=np.int64)
    pf = pq.ParquetFile(path)
    cols = [c for c in columns if c in pf.schema_arrow.names]
    sorted_rows = np.sort(rows)
    parts, offset = [], 0
    for batch in pf.iter_batches(batch_size=batch_size, columns=cols):
        lo, hi = np.searchsorted(sorted_rows, [offset, offset + batch.num_rows])
        if hi > lo:
            parts.append(batch.take(pa.array(sorted_rows[lo:hi] - offset)))
        offset += batch.num_rows
    schema = pa.schema([pf.schema_arrow.field(c) for c in cols])
    table = pa.Table.from_batches(parts, schema=schema) if parts else schema.empty_table()
    if len(rows) and not np.array_equal(rows, sorted_rows):
        table = table.take(pa.array(np.searchsorted(sorted_rows, rows)))
    return table


def training_records(df: pd.DataFrame, prompt_text: str = "question_raw") -> list[dict]:
    """train.jsonl records (see the module docstring) from rows with MEDIA_COLUMNS."""
    use_raw = prompt_text == "question_raw" and "question_raw" in df.columns
    out = []
    cols = [df[c].tolist() for c in ("qa_uid", "media_kind", "media", "frame_indices", "question", "answer")]
    raws = df["question_raw"].tolist() if use_raw else [None] * len(df)
    for uid, kind, media, idx, q, a, raw in zip(*cols, raws):
        text = raw if isinstance(raw, str) and raw else q
        media = list(media) if media is not None else []
        rec: dict = {"id": uid}
        if kind == "video_file":
            rec["messages"] = _messages("<video>\n" + text, a)
            rec["videos"] = media
            rec["frame_indices"] = [int(i) for i in idx] if idx is not None else []
        else:
            tokens = "<image>" * len(media)
            rec["messages"] = _messages((tokens + "\n" if tokens else "") + text, a)
            rec["images"] = media
        out.append(rec)
    return out


_SIMPLE_ESCAPES = (("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t"),
                   ("\x08", "\\b"), ("\x0c", "\\f"))
_RARE_CONTROL = r"[\x00-\x07\x0b\x0e-\x1f]"
_ANY_ESCAPE = r'["\\\x00-\x1f]'


def as_large_string(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    """A contiguous large_string array (nulls kept)."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks else pa.array([], type=pa.large_string())
    return arr if arr.type == pa.large_string() else arr.cast(pa.large_string())


def json_bodies(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Each string JSON-escaped exactly as json.dumps(ensure_ascii=False) writes it, without the quotes.

    Vectorised Arrow replacements handle the usual escapes; the rare rows holding other control
    characters go through json's own C escaper.
    """
    src = pc.fill_null(as_large_string(arr), "")
    needs = pc.match_substring_regex(src, _ANY_ESCAPE) if len(src) else pa.array([], pa.bool_())
    if not len(src) or not pc.any(needs).as_py():
        return src                                   # the usual case for paths and ids: nothing to escape
    sub = pc.filter(src, needs)                      # escape only the rows that need it
    out = sub
    for old, new in _SIMPLE_ESCAPES:
        if pc.any(pc.match_substring(out, old)).as_py():
            out = pc.replace_substring(out, old, new)
    rare = pc.match_substring_regex(sub, _RARE_CONTROL)
    if pc.any(rare).as_py():
        idx = pa.array(np.flatnonzero(rare.to_numpy(zero_copy_only=False)))
        fixed = [_q(x)[1:-1] for x in sub.take(idx).to_pylist()]
        out = pc.replace_with_mask(out, rare, pa.array(fixed, type=pa.large_string()))
    return pc.replace_with_mask(src, needs, out)


def json_list_bodies(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Each list<string> row as the inside of a JSON array ('"a", "b"'; '' for an empty or null list)."""
    arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    arr = pc.fill_null(arr, pa.scalar([], arr.type))
    lengths = pc.list_value_length(arr)
    values = json_bodies(pc.list_flatten(arr))
    offsets = np.concatenate([[0], np.cumsum(lengths.to_numpy(zero_copy_only=False))]).astype(np.int64)
    escaped = pa.LargeListArray.from_arrays(pa.array(offsets), values)
    joined = pc.binary_join(escaped, pa.scalar('", "', pa.large_string()))
    return pc.if_else(pc.equal(lengths, 0), pa.scalar("", pa.large_string()),
                      _cat('"', joined, '"'))


def int_list_bodies(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Each list<int> row as the inside of a JSON array ('0, 5, 9')."""
    arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    arr = pc.fill_null(arr, pa.scalar([], arr.type))
    return as_large_string(pc.binary_join(pc.cast(arr, pa.list_(pa.string())), ", "))


def _cat(*parts: pa.Array | str) -> pa.Array:
    """Element-wise concatenation of large_string arrays and constants."""
    args = [pa.scalar(p, pa.large_string()) if isinstance(p, str) else as_large_string(p) for p in parts]
    return pc.binary_join_element_wise(*args, pa.scalar("", pa.large_string()))


def training_jsonl_array(table: pa.Table, prompt_text: str = "question_raw") -> pa.Array:
    """One train.jsonl line (newline included) per row, byte-identical to json.dumps of `training_records`.

    `table` has qa_uid, media_kind, media, frame_indices, question, answer (and question_raw). Built
    column-wise with Arrow, so writing 10^5 lines costs no Python per row; the concatenation of the
    returned strings is the file.
    """
    n = table.num_rows
    question = as_large_string(table.column("question"))
    if prompt_text == "question_raw" and "question_raw" in table.column_names:
        raw = as_large_string(table.column("question_raw"))
        use_raw = pc.fill_null(pc.greater(pc.binary_length(raw), 0), False)
        question = pc.if_else(use_raw, raw, question)
    kind = as_large_string(table.column("media_kind"))
    is_file = pc.fill_null(pc.equal(kind, "video_file"), False)
    n_media = pc.fill_null(pc.list_value_length(table.column("media")), 0)
    image_tokens = pc.binary_repeat(pa.array(["<image>"] * 1, pa.large_string()).take(pa.array(np.zeros(n, np.int64))),
                                    n_media) if n else pa.array([], pa.large_string())
    image_prefix = pc.if_else(pc.greater(n_media, 0), _cat(image_tokens, "\\n"), pa.scalar("", pa.large_string()))
    prefix = pc.if_else(is_file, pa.scalar("<video>\\n", pa.large_string()), image_prefix)
    media = json_list_bodies(table.column("media"))
    frames = int_list_bodies(table.column("frame_indices"))
    tail = pc.if_else(is_file, _cat('"videos": [', media, '], "frame_indices": [', frames, "]"),
                      _cat('"images": [', media, "]"))
    return _cat('{"id": "', json_bodies(table.column("qa_uid")), '", "messages": [{"role": "user", "content": "',
                prefix, json_bodies(question), '"}, {"role": "assistant", "content": "',
                json_bodies(table.column("answer")), '"}], ', tail, "}\n")


def write_string_array(path: str | Path, lines: pa.Array) -> Path:
    """Atomically write the concatenation of a string array (its data buffer, no Python per row)."""
    lines = as_large_string(lines)
    if lines.null_count:
        raise ValueError(f"{path}: a line is null")
    _, off_buf, data_buf = lines.buffers()
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            if len(lines):
                off = np.frombuffer(off_buf, dtype=np.int64, count=len(lines) + 1, offset=lines.offset * 8)
                fh.write(memoryview(data_buf)[off[0]:off[-1]])
    return Path(path)


def _messages(user: str, answer: str) -> list[dict]:
    return [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]


def to_llava(rec: dict) -> dict:
    """LLaVA JSON record: conversations with from/value (human/gpt), `image` (path or list) or `video`."""
    conv = [{"from": "human" if m["role"] == "user" else "gpt", "value": m["content"]} for m in rec["messages"]]
    out: dict = {"id": rec["id"]}
    if rec.get("videos"):
        out["video"] = rec["videos"][0]
    elif rec.get("images"):
        out["image"] = rec["images"][0] if len(rec["images"]) == 1 else list(rec["images"])
    out["conversations"] = conv
    return out


def to_swift(rec: dict) -> dict:
    """ms-swift standard record: messages + images / videos (the id is dropped)."""
    out: dict = {"messages": rec["messages"]}
    for k in ("images", "videos"):
        if k in rec:
            out[k] = rec[k]
    return out


def llamafactory_dataset_info(name: str, file_name: str, has_videos: bool) -> dict:
    """dataset_info.json entry for LLaMA-Factory's sharegpt format with role/content tags."""
    columns = {"messages": "messages", "images": "images"}
    if has_videos:
        columns["videos"] = "videos"
    return {name: {"file_name": file_name, "formatting": "sharegpt", "columns": columns,
                   "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user",
                            "assistant_tag": "assistant"}}}


def read_train_jsonl(path: str | Path) -> Iterable[dict]:
    """The records of a train.jsonl, one by one."""
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def export_subset(subset_dir: str | Path, fmt: ExportFormat, out_path: str | Path | None = None) -> Path:
    """Convert a subset's train.jsonl to another trainer's format; returns the written file."""
    subset_dir = Path(subset_dir)
    src = subset_dir / "train.jsonl"
    if not src.is_file():
        raise FileNotFoundError(f"{src} not found: build the subset first")
    records = list(read_train_jsonl(src))
    if fmt == "llava":
        out = Path(out_path or subset_dir / "train_llava.json")
        return write_json(out, [to_llava(r) for r in records])
    if fmt == "swift":
        out = Path(out_path or subset_dir / "train_swift.jsonl")
        return write_jsonl(out, (to_swift(r) for r in records))
    if fmt == "llamafactory":
        out = Path(out_path or subset_dir / "train_llamafactory.json")
        write_json(out, [to_swift(r) for r in records])
        has_videos = any("videos" in r for r in records)
        write_json(out.parent / "dataset_info.json", llamafactory_dataset_info(subset_dir.name, out.name, has_videos))
        return out
    raise ValueError(f"unknown export format {fmt!r}; valid: llava, swift, llamafactory")
