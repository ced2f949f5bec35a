"""LLaVA-Video QA (JSONL `{id, video_id, images: [frames] | video: file-or-frame-folder, messages}`).

Frames are uniformly subsampled to at most T (GDO_METHOD.md section 2: index_i = round(i*(n-1)/(T-1)));
a frame folder is listed in natural order; a video file is probed with decord and keeps the same
uniform indices (decoded later). Every kept path is absolute.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from ..media import MediaError, is_video_file, list_frame_folder, uniform_indices
from .paths import MediaResolver
from .text import RecordError

FORMAT = "llava_video"
RELEASE_SOURCE = "llava_video"  # the release's data_source for rows without one (build_pair.py)
ID_PREFIX = "vv"


@lru_cache(maxsize=4096)
def _indices(n: int, t: int) -> tuple[int, ...]:
    return tuple(uniform_indices(n, t))


def media_of(rec: dict, res: MediaResolver, t: int) -> tuple[str, list[str], list[int], int]:
    """Video row: frame list (`images`/`frames`), frame folder or file (`video`), uniformly subsampled."""
    frames = rec.get("images")
    if frames is None:
        frames = rec.get("frames")
    if frames is not None and not isinstance(frames, list):
        frames = [frames]
    if frames:
        idx = _indices(len(frames), t)
        try:  # only the kept frames are read later, so only they must be path strings
            chosen = [res.path(frames[i]) for i in idx]
        except (TypeError, AttributeError):
            raise RecordError("wrong_schema", "images", "frame paths must be strings") from None
        if res.check:
            for j, p in zip(idx, chosen):
                try:
                    res.check_image(p)
                except MediaError as exc:
                    raise RecordError(exc.reason, f"images[{j}]", exc.path) from None
        return "frames", chosen, list(idx), len(frames)
    video = rec.get("video")
    if isinstance(video, list):
        video = video[0] if video else None
    if video is None:
        raise RecordError("no_frames", "images|video")
    if not isinstance(video, str):
        raise RecordError("wrong_schema", "video", f"type {type(video).__name__}")
    p = res.path(video)
    pp = Path(p)
    try:
        if pp.is_dir():
            files = list_frame_folder(pp)
            idx = _indices(len(files), t)
            return "frames", [str(files[i]) for i in idx], list(idx), len(files)
        if not is_video_file(pp) and pp.suffix:
            raise RecordError("wrong_schema", "video", f"not a video file or frame folder: {pp.name}")
        n = res.video_frames_total(p)
    except MediaError as exc:
        raise RecordError(exc.reason, "video", exc.path) from None
    return "video_file", [p], list(_indices(n, t)), n


def video_id(rec: dict) -> str | None:
    """The record's video_id (None when absent or empty)."""
    v = rec.get("video_id")
    return None if v in (None, "") else str(v)
