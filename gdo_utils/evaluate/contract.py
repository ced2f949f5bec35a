"""What an evaluation's replies depend on besides the checkpoint's files: the runtime and the benchmark's inputs.

Part of every (checkpoint, benchmark) generation hash, in the video stage and the image suite:
- the runtime: weights dtype, attention implementation, batch size and padding side (a batch pads
  its prompts, which changes bf16 logits), greedy decoding, and the transformers / torch versions;
- the benchmark's inputs: a sha256 over the CONTENT of its annotation file(s) (a changed gold answer
  makes the pair stale), and a listing of the media its questions read (name relative to the media
  root, size, and a sha256 of the file's first and last 64 KiB, the whole file when smaller; a frame
  folder: every file in it), so a replaced video is noticed without hashing gigabytes (an mp4 keeps its
  index at one end, so a re-encoded or swapped video differs there). Names are relative and no time
  stamp enters, so the key does not depend on where the data lives or when it was copied.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Iterable

PADDING_SIDE = "left"   # gdo_utils.evaluate.generation pads prompts on the left


def _files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file())
    return []


def annotations_digest(path: str | Path) -> str:
    """sha256 over the names and bytes of an annotation file, or of every file under an annotation folder."""
    root = Path(path)
    files = _files(root)
    if not files:
        return "missing"
    h = hashlib.sha256()
    for f in files:
        h.update(f"{f.relative_to(root) if f != root else f.name}\0".encode())
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        h.update(b"\0")
    return h.hexdigest()[:16]


SAMPLE = 1 << 16   # bytes read from each end of a media file


def sampled_digest(path: str | Path) -> str:
    """sha256 (16 hex) of a file's size, first and last 64 KiB (the whole file when it is at most 128 KiB)."""
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        h = hashlib.sha256(f"{size}\0".encode())
        if size <= 2 * SAMPLE:
            h.update(fh.read())
        else:
            h.update(fh.read(SAMPLE))
            fh.seek(size - SAMPLE)
            h.update(fh.read(SAMPLE))
    return h.hexdigest()[:16]


def media_digest(media: Iterable[str | Path], root: str | Path) -> str:
    """sha256 over (name relative to `root`, sampled content digest) of each media file or frame-folder file.

    No time stamp: the same bytes copied (or regenerated) at another time give the same digest; absent: 'missing'.
    """
    root = Path(root)
    h = hashlib.sha256()
    for m in sorted({str(x) for x in media if x}):
        p = Path(m)
        rel = os.path.relpath(p, root)
        if p.is_dir():
            for e in sorted(os.scandir(p), key=lambda e: e.name):
                if e.is_file():
                    h.update(f"{rel}/{e.name}\0{sampled_digest(e.path)}\n".encode())
        elif p.is_file():
            h.update(f"{rel}\0{sampled_digest(p)}\n".encode())
        else:
            h.update(f"{rel}\0missing\n".encode())
    return h.hexdigest()[:16]


def inputs_key(annotations: str | Path, media_root: str | Path, media: Iterable[str | Path]) -> dict:
    """The benchmark-input part of a generation hash."""
    return {"annotations": annotations_digest(annotations), "media": media_digest(media, media_root)}


def runtime_key(dtype: str, attn_implementation: str | None, batch_size: int) -> dict:
    """The runtime part of a generation hash: how the model is loaded and batched, and the library versions."""
    import torch
    import transformers

    return {"dtype": dtype, "attn_implementation": attn_implementation or "default", "batch_size": batch_size,
            "padding_side": PADDING_SIDE, "decoding": "greedy", "transformers": transformers.__version__,
            "torch": torch.__version__}
