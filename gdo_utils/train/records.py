"""Read training rows: the kit's train.jsonl (contract C1) strictly, and LLaVA conversation JSON with a media root.

A row becomes a `TrainRecord`: the chat turns, its media (images / frame files, or one video file with
the frame indices to decode) and where it came from (file, line) so every later error can name them.
A row that breaks the contract stops the read with file, line and field: C1 files are written by the
kit, so a malformed one is a bug to fix, not data to skip. (Missing or corrupt media are different:
they are checked later and skipped and counted, or stop the run with `train.strict`.)
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from ..trainfile import IMAGE_TOKEN as PLACEHOLDER
from ..trainfile import ContractError, check_row


class TrainFileError(ValueError):
    """A training file breaks its format; the message names file, line and field."""

    def __init__(self, path: str | Path, line: int, fld: str, msg: str) -> None:
        self.path, self.line, self.field = str(path), line, fld
        super().__init__(f"{path}:{line}: field {fld!r}: {msg}")


class EmptySubsetError(ValueError):
    """A subset with no trainable rows."""


@dataclass
class TrainRecord:
    """One training conversation: user/assistant turns, media, provenance."""

    id: str
    messages: list[dict[str, str]]
    media_kind: str
    images: list[str] = field(default_factory=list)
    videos: list[str] = field(default_factory=list)
    frame_indices: list[list[int]] | None = None
    video_fps: float | None = None
    source_file: str = ""
    line: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n_visuals(self) -> int:
        """Images or frames the row feeds (== its "<image>" count)."""
        if self.media_kind == "video":
            return sum(len(x) for x in self.frame_indices or [])
        return len(self.images)

    def to_json(self) -> dict:
        out: dict[str, Any] = {"id": self.id, "messages": self.messages, "images": self.images,
                               "media_kind": self.media_kind}
        if self.videos:
            out["videos"] = self.videos
        if self.frame_indices is not None:
            out["frame_indices"] = self.frame_indices
        if self.video_fps is not None:
            out["video_fps"] = self.video_fps
        out.update({"source_file": self.source_file, "line": self.line})
        return {**self.extra, **out}


def parse_c1_row(obj: Any, path: str, line: int) -> TrainRecord:
    """Validate one decoded C1 object (gdo_utils.trainfile.check_row, the contract's one definition) and build its record."""
    try:
        check_row(obj)
    except ContractError as exc:
        raise TrainFileError(path, line, exc.field, exc.reason) from None
    fps = obj.get("video_fps")
    return TrainRecord(id=obj["id"], messages=[{"role": m["role"], "content": m["content"]} for m in obj["messages"]],
                       media_kind=obj["media_kind"], images=list(obj["images"]), videos=list(obj.get("videos") or []),
                       frame_indices=obj.get("frame_indices"), video_fps=float(fps) if fps is not None else None,
                       source_file=path, line=line,
                       extra={k: v for k, v in obj.items() if k not in {
                           "id", "messages", "images", "videos", "frame_indices", "video_fps", "media_kind"}})


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, Any]]:
    """(line number, decoded object) for every non-blank line; bad JSON names file:line:col."""
    with open(path, encoding="utf-8") as fh:
        for n, text in enumerate(fh, 1):
            if not text.strip():
                continue
            try:
                yield n, json.loads(text)
            except json.JSONDecodeError as exc:
                raise TrainFileError(path, n, "<json>", f"not valid JSON at column {exc.colno}: {exc.msg}") from None


def read_c1(path: str | Path) -> list[TrainRecord]:
    """All rows of a C1 train.jsonl, validated; duplicate ids are an error."""
    path = str(Path(path).resolve())
    if not Path(path).is_file():
        raise FileNotFoundError(f"training file not found: {path}")
    out, seen = [], {}
    for n, obj in iter_jsonl(path):
        rec = parse_c1_row(obj, path, n)
        if rec.id in seen:
            raise TrainFileError(path, n, "id", f"duplicate id {rec.id!r} (first on line {seen[rec.id]})")
        seen[rec.id] = n
        out.append(rec)
    return out


def read_llava_json(path: str | Path, media_root: str | Path | None = None) -> list[TrainRecord]:
    """LLaVA conversation JSON (`[{id, image?, conversations: [{from, value}]}]`) as records.

    The image path is relative to `media_root` (default: the file's folder); "<image>" stays where the
    file puts it (LLaVA-665K: in the first human turn); rows without an image are text rows.
    """
    p = Path(path).resolve()
    root = Path(media_root).resolve() if media_root else p.parent
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise TrainFileError(p, exc.lineno, "<json>", f"not valid JSON at column {exc.colno}: {exc.msg}") from None
    if not isinstance(data, list):
        raise TrainFileError(p, 1, "<root>", "must be a JSON list of samples")
    out, seen = [], set()
    roles = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant"}
    for i, s in enumerate(data, 1):
        if not isinstance(s, dict) or not isinstance(s.get("conversations"), list):
            raise TrainFileError(p, i, "conversations", f"sample {i} has no conversations list")
        rid = str(s.get("id", i))
        if rid in seen:
            raise TrainFileError(p, i, "id", f"duplicate id {rid!r}")
        seen.add(rid)
        msgs = []
        for j, t in enumerate(s["conversations"]):
            role = roles.get(t.get("from", t.get("role")))
            if role is None:
                raise TrainFileError(p, i, f"conversations[{j}].from", f"unknown speaker {t.get('from')!r}")
            msgs.append({"role": role, "content": str(t.get("value", t.get("content", "")))})
        image = s.get("image")
        images = [str((root / image).resolve())] if image else []
        if images and not any(PLACEHOLDER in m["content"] for m in msgs if m["role"] == "user"):
            msgs[0]["content"] = PLACEHOLDER + "\n" + msgs[0]["content"]
        obj = {"id": rid, "messages": msgs, "images": images, "media_kind": "image" if images else "text"}
        out.append(parse_c1_row(obj, str(p), i))
    return out
