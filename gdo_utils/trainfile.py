"""The training-file contract (kit format, `train.jsonl`): build, check and decode one row.

One JSON object per line (UTF-8), written by the subsets and OFA stages, read by the trainer:

    {"id": "<unique in the file>",
     "messages": [{"role": "user", "content": "<image><image>\\n<question>"},
                  {"role": "assistant", "content": "<answer>"}, ...],
     "images": ["/abs/frame_or_image.jpg", ...],
     "media_kind": "image" | "frames" | "video" | "text",
     ...optional keys: "videos", "frame_indices", "video_fps", and extra keys carried along}

* messages alternate user / assistant, start with user, end with assistant, no system turn;
* one "<image>" per image or decoded frame, in order, across the user turns; the count equals
  len(images) + sum(len(f) for f in frame_indices) when media_kind is "video" (then images == []);
* "frames": a video as <= 32 frame files in frame order (optional `frame_indices` [[i0, ...]]: one list
  per video, one index per frame file, indexing the source);
  "video": `"videos": ["/abs/clip.mp4"]` and `"frame_indices": [[i0, i1, ...]]`, decoded by the kit;
  `video_fps` (optional, positive or null) gives true timestamps (index / fps) to video rows;
  "text": no media and no "<image>";
* every path is absolute.

`row_images` decodes a row to the PIL images a trainer feeds the processor; both ways of writing a
video (frame files or videos + frame_indices) give the same pixels when the frame files are lossless
(`gdo-repro export --extract-frames` writes PNG).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterator, Sequence

from PIL import Image

from .media import load_image, read_video_frames

IMAGE_TOKEN = "<image>"
MEDIA_KINDS = ("image", "frames", "video", "text")
ROLES = ("user", "assistant")


class ContractError(ValueError):
    """A training row breaks the contract; the message names the file, line and field."""

    def __init__(self, where: str, field: str, reason: str) -> None:
        self.where, self.field, self.reason = where, field, reason
        super().__init__(f"{where}: {field}: {reason}")


class ExportError(ValueError):
    """A subset cannot be written in the asked trainer format (the message says what to add)."""


def user_prompt(question: str, n_images: int) -> str:
    """The user text of the first turn: one "<image>" per image or frame, a newline, the question."""
    return (IMAGE_TOKEN * n_images + "\n" if n_images else "") + question


def conversation(pairs: Sequence[tuple[str, str]], n_images: int) -> list[dict[str, str]]:
    """user/assistant messages of (question, answer) pairs; the placeholders go on the first user turn."""
    out: list[dict[str, str]] = []
    for k, (q, a) in enumerate(pairs):
        out += [{"role": "user", "content": user_prompt(q, n_images if k == 0 else 0)},
                {"role": "assistant", "content": a}]
    return out


def media_fields(pool_kind: str, media: Sequence[str], frame_indices: Sequence[int] | None,
                 absolute: bool = False) -> dict[str, Any]:
    """The contract's media keys for a pool row (pool media_kind: image | frames | video_file | none).

    Relative media paths are made absolute against the working directory (where the pool stage ran);
    `absolute=True` says the caller already did (os.path.abspath of every path).
    """
    media = list(media) if absolute and media is not None else \
        [os.path.abspath(str(m)) for m in (media if media is not None else [])]
    idx = [int(i) for i in frame_indices] if frame_indices is not None else []
    if pool_kind == "video_file":
        return {"images": [], "media_kind": "video", "videos": media, "frame_indices": [idx]}
    if pool_kind == "frames":
        return {"images": media, "media_kind": "frames", "frame_indices": [idx]}
    if pool_kind == "image":
        return {"images": media, "media_kind": "image"}
    if pool_kind == "none" and not media:
        return {"images": [], "media_kind": "text"}
    raise ValueError(f"unknown pool media_kind {pool_kind!r} (with {len(media)} media)")


def n_visuals(row: dict) -> int:
    """How many "<image>" placeholders the row must hold (images, or decoded video frames)."""
    if row.get("media_kind") == "video":
        return sum(len(f) for f in row.get("frame_indices") or [])
    return len(row.get("images") or [])


def check_row(row: Any, where: str = "<row>") -> None:
    """Raise ContractError (naming `where` and the field) unless `row` follows the contract."""
    def fail(field: str, msg: str) -> None:
        raise ContractError(where, field, msg)

    def nested_indices(idx: Any) -> bool:
        return (isinstance(idx, list) and len(idx) == 1 and isinstance(idx[0], list) and bool(idx[0])
                and all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in idx[0]))

    if not isinstance(row, dict):
        fail("<row>", f"must be an object, got {type(row).__name__}")
    if not isinstance(row.get("id"), str) or not row["id"]:
        fail("id", "missing or not a non-empty string")
    msgs = row.get("messages")
    if not isinstance(msgs, list) or not msgs:
        fail("messages", "must be a non-empty list of user/assistant pairs")
    for i, m in enumerate(msgs):
        if not isinstance(m, dict) or m.get("role") != ROLES[i % 2] or not isinstance(m.get("content"), str):
            fail(f"messages[{i}]", f"must be {{'role': '{ROLES[i % 2]}', 'content': str}} (turns alternate "
                                   f"user/assistant from a user turn, no system turn)")
        if m["role"] == "assistant" and IMAGE_TOKEN in m["content"]:
            fail(f"messages[{i}].content", "an assistant turn holds '<image>'")
    if len(msgs) % 2:
        fail("messages", "must end with an assistant turn")
    kind = row.get("media_kind")
    if kind not in MEDIA_KINDS:
        fail("media_kind", f"must be one of {MEDIA_KINDS}, got {kind!r}")
    images = row.get("images")
    if not isinstance(images, list) or not all(isinstance(p, str) for p in images):
        fail("images", "must be a list of paths")
    if kind == "video":
        vids, idx = row.get("videos"), row.get("frame_indices")
        if images or not isinstance(vids, list) or len(vids) != 1 or not isinstance(vids[0], str):
            fail("videos", "a 'video' row has images == [] and exactly one video path")
        if not nested_indices(idx):
            fail("frame_indices", "a 'video' row needs [[i0, i1, ...]] (non-negative ints)")
    elif "videos" in row:
        fail("videos", f"only 'video' rows carry videos (media_kind {kind!r})")
    if kind == "image" and len(images) != 1:
        fail("images", f"an 'image' row has exactly one image, got {len(images)}")
    if kind == "frames" and not images:
        fail("images", "a 'frames' row has at least one frame")
    if kind == "frames" and "frame_indices" in row and not (
            nested_indices(row["frame_indices"]) and len(row["frame_indices"][0]) == len(images)):
        fail("frame_indices", "a 'frames' row carries [[i0, i1, ...]], one index per frame file")
    if kind in ("image", "text") and "frame_indices" in row:
        fail("frame_indices", f"only video rows carry frame indices (media_kind {kind!r})")
    fps = row.get("video_fps")
    if fps is not None and (isinstance(fps, bool) or not isinstance(fps, (int, float)) or fps <= 0):
        fail("video_fps", f"must be a positive number or null, got {fps!r}")
    if kind == "text" and images:
        fail("images", "a 'text' row has no images")
    for key in ("images", "videos"):
        for j, p in enumerate(row.get(key) or []):
            if not Path(p).is_absolute():
                fail(f"{key}[{j}]", f"path {p!r} is not absolute")
    n_tokens = sum(m["content"].count(IMAGE_TOKEN) for m in msgs if m["role"] == "user")
    if n_tokens != n_visuals(row):
        fail("messages", f"{n_tokens} '<image>' placeholders for {n_visuals(row)} images/frames")


def read_rows(path: str | Path, check: bool = True) -> Iterator[dict]:
    """The rows of a train.jsonl, checked one by one (errors name the file and line); ids must be unique."""
    seen: set[str] = set()
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ContractError(where, "<json>", f"not valid JSON ({exc.msg} at column {exc.colno})") from None
            if check:
                check_row(row, where)
                if row["id"] in seen:
                    raise ContractError(where, "id", f"{row['id']!r} appears twice")
                seen.add(row["id"])
            yield row


def row_images(row: dict) -> list[Image.Image]:
    """The RGB images of a row, in placeholder order: its image files, or its video's frames decoded."""
    if row.get("media_kind") == "video":
        frames, _, _ = read_video_frames(row["videos"][0], row["frame_indices"][0])
        return [Image.fromarray(f) for f in frames]
    return [load_image(p) for p in row.get("images") or []]
