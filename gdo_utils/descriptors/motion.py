"""Motion descriptors: AMM (average motion magnitude, "Flow") and frame diversity (GDO_METHOD.md s.3.1).

Recipe, exactly as the method specifies: take <= 8 frames uniformly (gdo_utils.media.uniform_indices)
from the candidate's (<= 32) frames; convert to grayscale; resize to 224x224 with area interpolation;
run Farneback optical flow between consecutive frames (pyr_scale 0.5, 2 levels, window 15,
2 iterations, poly_n 5, poly_sigma 1.1, flags 0); per pair take the mean flow magnitude (pixels of
the 224x224 frame); AMM = mean over pairs. Frame diversity = mean over the same pairs of
mean |I_t - I_{t-1}| / 255 on the resized gray frames. Images, text-only rows and clips with fewer
than 2 frames get (0.0, 0.0).

OpenCV runs single-threaded (cv2.setNumThreads(1), set once on first use) so results do not depend
on the machine's core count and parallel ranks do not oversubscribe the CPU.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from gdo_utils.media import MediaError, is_video_file, load_frames, uniform_indices

FARNEBACK_PARAMS: dict[str, float | int] = dict(
    pyr_scale=0.5, levels=2, winsize=15, iterations=2, poly_n=5, poly_sigma=1.1, flags=0,
)
NO_MOTION_KINDS = ("image", "none")
MOTION_KINDS = ("frames", "video_file")

_threads_pinned = False


def _pin_cv2_threads() -> None:
    """Make OpenCV single-threaded once per process (determinism, no oversubscription)."""
    global _threads_pinned
    if not _threads_pinned:
        cv2.setNumThreads(1)
        _threads_pinned = True


def _prepare_gray(frames: np.ndarray, size: int) -> np.ndarray:
    """RGB uint8 (T,H,W,3) (or gray (T,H,W)) -> gray uint8 (T,size,size), area-resized."""
    out = np.empty((len(frames), size, size), dtype=np.uint8)
    for i, f in enumerate(frames):
        f = np.ascontiguousarray(f)
        g = f if f.ndim == 2 else cv2.cvtColor(f, cv2.COLOR_RGB2GRAY)
        out[i] = g if g.shape == (size, size) else cv2.resize(g, (size, size), interpolation=cv2.INTER_AREA)
    return out


def motion_descriptors(frames: np.ndarray, n_frames: int = 8, size: int = 224) -> tuple[float, float]:
    """(AMM, frame_diversity) of a clip: Farneback mean flow magnitude and mean abs gray difference."""
    _pin_cv2_threads()
    frames = np.asarray(frames)
    if frames.ndim not in (3, 4) or (frames.ndim == 4 and frames.shape[-1] != 3):
        raise ValueError(f"frames must be (T,H,W,3) RGB or (T,H,W) gray, got shape {frames.shape}")
    if frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8, got {frames.dtype}")
    if n_frames < 2 or size < 1:
        raise ValueError(f"need n_frames >= 2 and size >= 1, got n_frames={n_frames}, size={size}")
    if len(frames) < 2:
        return 0.0, 0.0
    gray = _prepare_gray(frames[uniform_indices(len(frames), n_frames)], size)
    if len(gray) < 2:
        return 0.0, 0.0
    mags = np.empty(len(gray) - 1, dtype=np.float64)
    for i in range(len(gray) - 1):
        flow = cv2.calcOpticalFlowFarneback(gray[i], gray[i + 1], None, **FARNEBACK_PARAMS)
        mags[i] = float(np.sqrt(np.einsum("hwc,hwc->hw", flow, flow, dtype=np.float64)).mean())
    g = gray.astype(np.float32)
    diffs = np.abs(g[1:] - g[:-1]).reshape(len(g) - 1, -1).mean(axis=1, dtype=np.float64) / 255.0
    return float(mags.mean()), float(diffs.mean())


def motion_for_row(media: Sequence[str], media_kind: str, frame_indices: Sequence[int] | None = None,
                   n_frames: int = 8, size: int = 224, max_frames: int = 32) -> tuple[float, float]:
    """(AMM, frame_diversity) for one QA-table row; decodes only the <= n_frames frames it needs.

    `media_kind` "image"/"none" -> (0.0, 0.0) without decoding. "frames": `media` is the row's
    (already subsampled) frame files, or one frame folder read at `frame_indices`; "video_file": one
    video decoded at `frame_indices` (default: uniform <= max_frames). The <= n_frames motion frames
    are the uniform pick from those, exactly as if all were decoded first. Unreadable or missing
    media raise gdo_utils.media.MediaError (the runner records it as the row's error).
    """
    if media_kind in NO_MOTION_KINDS:
        return 0.0, 0.0
    if media_kind not in MOTION_KINDS:
        raise ValueError(f"unknown media_kind {media_kind!r}; expected one of {NO_MOTION_KINDS + MOTION_KINDS}")
    paths = [str(m) for m in (media if media is not None else [])]
    if not paths:
        raise MediaError("no_media", "<no media>", f"media_kind={media_kind} with an empty media list")
    single_container = len(paths) == 1 and (is_video_file(paths[0]) or Path(paths[0]).is_dir())
    if single_container:
        idx = [int(i) for i in frame_indices] if frame_indices is not None and len(frame_indices) else None
        if idx is not None:
            idx = [idx[j] for j in uniform_indices(len(idx), n_frames)]
        frames = load_frames(paths, idx, max_frames=max_frames)
    else:
        frames = load_frames([paths[j] for j in uniform_indices(len(paths), n_frames)])
    return motion_descriptors(frames, n_frames=n_frames, size=size)
