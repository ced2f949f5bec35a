"""The table schemas shared by every stage (one QA table for every pool; quarantine rows).

QA table (outputs/<run>/pool/qa.parquet and outputs/<run>/pools/<name>/qa.parquet), one row per
single-turn candidate (GDO_METHOD.md section 2):

  qa_uid         "ov::{id}::t{k}" (OneVision images), "vv::{id}::t{k}" (LLaVA-Video),
                 "{pool}::{id}::t{k}" for other pools; k counts emitted pairs from 0
  sample_id      the record's id
  video_uid      video_id for video rows (falls back to id); the id for image / text rows
  source         data_source (or the pool source's `source`, or the file stem)
  source_group   text before "(" if present; else the first four "_"-separated parts; else source
  bucket         "image_qa" (one image), "short_video" (frames), "text_only" (no media; OFA pools only)
  media_kind     "image" | "frames" | "video_file" | "none"
  media          list of absolute paths: [image] | subsampled frame files | [video file]
  frame_indices  indices into the original frame list / video decoded for this candidate (<= T)
  n_frames       len(frame_indices) (1 for images, 0 for text-only)
  n_frames_total frames in the original list / video
  question       user text with <image>/<video>/<audio> removed and whitespace collapsed
  question_raw   the same before whitespace collapse (option lines intact, for MCQ detection)
  answer         assistant text, whitespace collapsed
  turn           k
  pool           pool name ("gdo" for the GDO candidate pool)
  source_file    annotation file the row came from
  record_index   0-based position of the record in that file (JSONL: line number - 1)
"""
from __future__ import annotations

import pyarrow as pa

QA_SCHEMA = pa.schema([
    ("qa_uid", pa.string()),
    ("sample_id", pa.string()),
    ("video_uid", pa.string()),
    ("source", pa.string()),
    ("source_group", pa.string()),
    ("bucket", pa.string()),
    ("media_kind", pa.string()),
    ("media", pa.list_(pa.string())),
    ("frame_indices", pa.list_(pa.int32())),
    ("n_frames", pa.int32()),
    ("n_frames_total", pa.int32()),
    ("question", pa.string()),
    ("question_raw", pa.string()),
    ("answer", pa.string()),
    ("turn", pa.int32()),
    ("pool", pa.string()),
    ("source_file", pa.string()),
    ("record_index", pa.int64()),
])
QA_COLUMNS = [f.name for f in QA_SCHEMA]

QUARANTINE_SCHEMA = pa.schema([
    ("pool", pa.string()),
    ("source_file", pa.string()),
    ("line", pa.int64()),          # 1-based line (JSONL) or 1-based record number (JSON array)
    ("record_id", pa.string()),
    ("field", pa.string()),
    ("reason", pa.string()),
    ("detail", pa.string()),
])
QUARANTINE_COLUMNS = [f.name for f in QUARANTINE_SCHEMA]

# Reasons a row can be quarantined (a closed vocabulary so reports can count them).
QUARANTINE_REASONS = (
    "malformed_json",     # the line / file is not valid JSON
    "wrong_schema",       # valid JSON but not an object, or a field of the wrong type
    "missing_id",         # no id
    "duplicate_id",       # id already seen in this pool
    "missing_messages",   # no messages / conversations list
    "no_image",           # image row without an image (GDO OneVision pool)
    "no_frames",          # video row without frames or video file
    "empty_turns",        # no usable user->assistant pair after stripping
    "missing_media",      # a media file does not exist
    "unreadable_media",   # a media file exists but cannot be decoded
)

BUCKETS = ("image_qa", "short_video", "text_only")
