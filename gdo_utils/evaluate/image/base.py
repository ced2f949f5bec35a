"""The image suite's common types: one question as the engines see it, and the format error.

Every image benchmark module turns its official files into `ImageQuestion`s (the exact prompt text
sent after the image, the gold answer, a subtask), scores one reply with `score_reply`, and
aggregates a per-question log into metric rows (`MetricRow`) that land in the trajectory (C3).
"""
from __future__ import annotations

import base64
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from .. import types

Gold = str | tuple[str, ...]


class BenchmarkFormatError(types.BenchmarkFormatError):
    """A benchmark file does not follow its official layout; the message names file, line and field."""

    def __init__(self, path: str | Path, line: int | None, field_: str, why: str):
        where = f"{path}" + (f":{line}" if line is not None else "")
        super().__init__(f"{where}: field {field_!r}: {why}")
        self.path, self.line, self.field = str(path), line, field_


@dataclass(frozen=True)
class ImageQuestion:
    """One question: id, image (a file, or base64 bytes for TSV benchmarks), prompt text, gold answer."""

    benchmark: str
    qid: str
    prompt: str
    gold: Gold
    subtask: str = ""
    image_path: str | None = None
    image_b64: str | None = None
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def image(self) -> Image.Image | None:
        """The question's image as RGB, or None for a text-only question."""
        if self.image_b64 is not None:
            return Image.open(io.BytesIO(base64.b64decode(self.image_b64))).convert("RGB")
        if self.image_path is not None:
            with Image.open(self.image_path) as im:
                return im.convert("RGB")
        return None


@dataclass(frozen=True)
class MetricRow:
    """One trajectory row's metric part: level, subtask, value (percent, or MME's raw score), n."""

    level: str
    subtask: str
    accuracy: float
    n: int


def require(rec: dict, key: str, path: str | Path, line: int | None) -> Any:
    """rec[key], or a BenchmarkFormatError naming the file, line and missing field."""
    if not isinstance(rec, dict) or key not in rec or rec[key] is None:
        raise BenchmarkFormatError(path, line, key, "missing")
    return rec[key]


def image_file(root: Path, rel: str, path: str | Path, line: int | None, field_: str = "image") -> str:
    """Absolute path of an image named in a benchmark file (checked to exist)."""
    p = (root / rel).resolve()
    if not p.is_file():
        raise BenchmarkFormatError(path, line, field_, f"image not found: {p}")
    return str(p)


def pct(x: float) -> float:
    """A fraction as a percent (the trajectory's unit)."""
    return 100.0 * float(x)


def read_json_file(path: Path) -> Any:
    """A benchmark's JSON file; a syntax error names the file and line."""
    import json

    try:
        return json.loads(types.read_text(path))
    except json.JSONDecodeError as exc:
        raise BenchmarkFormatError(path, exc.lineno, "<json>", f"not valid JSON: {exc.msg}") from None


def read_jsonl_file(path: Path) -> list[tuple[int, dict]]:
    """(line number, record) for every non-empty line of a JSON Lines benchmark file."""
    import json

    out = []
    for line, text in enumerate(types.read_text(path).splitlines(), start=1):
        if not text.strip():
            continue
        try:
            out.append((line, json.loads(text)))
        except json.JSONDecodeError as exc:
            raise BenchmarkFormatError(path, line, "<json>", f"not valid JSON: {exc.msg}") from None
    return out
