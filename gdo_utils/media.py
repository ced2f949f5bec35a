"""Image and video loading with uniform frame indices.

Videos come either as a file (mp4 etc., decoded with decord) or as a list of frame images (a
frame folder, as LLaVA-Video ships them). Both give frames at the same uniform indices
(GDO_METHOD.md section 2): for n > T frames, index_i = round(i*(n-1)/(T-1)), i = 0..T-1, using
Python's round (half to even), so the first and last frame are always included.

Every failure raises `MediaError` (with `reason` and `path`); callers turn it into quarantine rows
or error strings, never a silent skip.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

VIDEO_SUFFIXES = {".mp4", ".mkv", ".avi", ".mov", ".webm", ".m4v"}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif"}


class MediaError(RuntimeError):
    """A media file is missing, unreadable or empty. `reason` is a short machine-readable tag."""

    def __init__(self, reason: str, path: str | Path, detail: str = "") -> None:
        self.reason, self.path, self.detail = reason, str(path), detail
        super().__init__(f"{reason}: {path}" + (f" ({detail})" if detail else ""))


def leaves_root(root: str | Path, path: str | Path) -> bool:
    """True when `path` (lexically normalised, `..` applied, symlinks not followed) is not inside `root`."""
    r = os.path.normpath(os.path.abspath(root))
    p = os.path.normpath(os.path.abspath(path))
    return os.path.commonpath([r, p]) != r


def uniform_indices(n: int, t: int) -> list[int]:
    """Indices of at most `t` frames spread uniformly over `n` (all frames when n <= t)."""
    if n <= 0:
        return []
    if t <= 0:
        raise ValueError("t must be positive")
    if n <= t:
        return list(range(n))
    if t == 1:
        return [0]
    return [int(round(i * (n - 1) / (t - 1))) for i in range(t)]


def is_video_file(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def load_image(path: str | Path) -> Image.Image:
    """Open an image as RGB, fully decoded (so truncated files fail here, not later)."""
    p = Path(path)
    if not p.is_file():
        raise MediaError("missing_media", p)
    try:
        with Image.open(p) as im:
            im.load()
            return im.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise MediaError("unreadable_media", p, type(exc).__name__) from exc


@dataclass(frozen=True)
class VideoInfo:
    """What a video file holds: frame count, fps (0 when unknown), size."""

    n_frames: int
    fps: float
    width: int
    height: int


def _video_reader(path: Path):
    if not path.is_file():
        raise MediaError("missing_media", path)
    if path.stat().st_size == 0:
        raise MediaError("unreadable_media", path, "empty file")
    try:
        import decord
    except ImportError as exc:  # pragma: no cover - decord is pinned in requirements
        raise MediaError("unreadable_media", path, "decord not installed") from exc
    try:
        vr = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=1)
    except Exception as exc:  # decord raises DECORDError / RuntimeError for corrupt files
        raise MediaError("unreadable_media", path, f"{type(exc).__name__}: {str(exc)[:120]}") from exc
    if len(vr) == 0:
        raise MediaError("unreadable_media", path, "no frames")
    return vr


def probe_video(path: str | Path) -> VideoInfo:
    """Frame count, fps and size of a video file (decord header read, no full decode)."""
    vr = _video_reader(Path(path))
    h, w = vr[0].shape[:2]
    return VideoInfo(n_frames=len(vr), fps=float(vr.get_avg_fps() or 0.0), width=int(w), height=int(h))


def read_video_frames(path: str | Path, indices: Sequence[int] | None = None, max_frames: int = 32
                      ) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Decode frames of a video file -> (frames uint8 [T,H,W,3], timestamps_s [T], indices).

    `indices` default to `uniform_indices(len, max_frames)`; timestamps are the decoder's true
    presentation times of those frames (seconds).
    """
    p = Path(path)
    vr = _video_reader(p)
    n = len(vr)
    idx = list(indices) if indices is not None else uniform_indices(n, max_frames)
    bad = [i for i in idx if not 0 <= i < n]
    if bad:
        raise MediaError("unreadable_media", p, f"frame indices {bad[:3]} out of range (n={n})")
    try:
        frames = vr.get_batch(idx).asnumpy()
        ts = np.asarray([vr.get_frame_timestamp(i)[0] for i in idx], dtype=np.float64)
    except Exception as exc:
        raise MediaError("unreadable_media", p, f"decode failed: {type(exc).__name__}") from exc
    return frames, ts, idx


def read_frame_list(paths: Sequence[str | Path]) -> np.ndarray:
    """Load a list of frame images (same size expected; resized to the first frame otherwise)."""
    if not paths:
        raise MediaError("no_media", "<empty frame list>")
    imgs = [load_image(p) for p in paths]
    size = imgs[0].size
    arrs = [np.asarray(im if im.size == size else im.resize(size, Image.BILINEAR)) for im in imgs]
    return np.stack(arrs, axis=0)


def list_frame_folder(folder: str | Path) -> list[Path]:
    """Sorted image files of a frame folder (natural order by name)."""
    d = Path(folder)
    if not d.is_dir():
        raise MediaError("missing_media", d)
    files = sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise MediaError("no_media", d, "frame folder has no images")
    return files


def load_frames(media: Sequence[str], frame_indices: Sequence[int] | None = None, max_frames: int = 32
                ) -> np.ndarray:
    """Frames of one candidate as uint8 [T,H,W,3].

    `media` is the QA table's media list: one video file (decoded at `frame_indices`), one frame
    folder, or a list of frame/image paths (already subsampled by the pool reader).
    """
    if not media:
        raise MediaError("no_media", "<no media>")
    if len(media) == 1 and is_video_file(media[0]):
        frames, _, _ = read_video_frames(media[0], frame_indices, max_frames=max_frames)
        return frames
    if len(media) == 1 and Path(media[0]).is_dir():
        files = list_frame_folder(media[0])
        idx = list(frame_indices) if frame_indices is not None else uniform_indices(len(files), max_frames)
        return read_frame_list([files[i] for i in idx])
    return read_frame_list(list(media))


def subsample(frames: np.ndarray, t: int) -> np.ndarray:
    """Uniformly keep at most `t` of the given frames (same index rule)."""
    return frames[uniform_indices(len(frames), t)]
