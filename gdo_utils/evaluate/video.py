"""The release's video input at evaluation: which frames, at what size, with which timestamps.

Re-implements what lmms-eval 0.5.0's chat Qwen3-VL wrapper gets from qwen-vl-utils 0.0.14
`fetch_video` (EVAL_TRAIN_FORMATS.md sections 0.1, 3.2): the clip (or its `bound` segment: start
frame ceil(start*fps), end frame floor(end*fps); its timestamps then count from the segment's start,
as in the pre-trimmed segment files the release read) is sampled at `fps` frames per second, clamped to
[min_frames, max_frames] and to the frame count, floored to an even count; indices are
`linspace(start, end, n).round()` (torch, half to even); frames are resized (bicubic, antialiased)
to multiples of 32 px holding min_pixels..max_pixels pixels; the model gets the frames with their
true indices and fps as metadata (do_sample_frames=False), so Qwen3-VL prints real timestamps.
Frame folders (MVBench's episodic_reasoning) are a video at the fps they were extracted at.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..config import EvaluateConfig
from ..imageprep import smart_resize
from ..media import MediaError, _video_reader, list_frame_folder, read_frame_list
from .types import Question

FRAME_FACTOR = 2
PATCH_FACTOR = 32          # Qwen3-VL: patch 16 x spatial merge 2
VIDEO_MAX_TOKENS = 768     # qwen-vl-utils VIDEO_MAX_TOKEN_NUM
MODEL_SEQ_LEN = 128000     # qwen-vl-utils default total_pixels budget (tokens)


@dataclass(frozen=True)
class EvalVideo:
    """Frames (T, C, H, W float, resized) and the metadata the processor needs for timestamps."""

    frames: torch.Tensor
    fps: float
    indices: list[int]
    total_frames: int

    @property
    def metadata(self) -> dict:
        return {"fps": self.fps, "frames_indices": list(self.indices), "total_num_frames": self.total_frames}


def contract_id(cfg: EvaluateConfig) -> str:
    """The frozen eval contract as a short id, e.g. fps1-f4..32-px200704..602112-greedy16-release."""
    return (f"fps{cfg.fps:g}-f{cfg.min_frames}..{cfg.max_frames}-px{cfg.min_pixels}..{cfg.max_pixels}"
            f"-greedy{cfg.max_new_tokens}-{cfg.extraction}" + ("-system" if cfg.system_prompt is not None else ""))


def frame_range(total: int, fps: float, start: float | None, end: float | None) -> tuple[int, int, int]:
    """qwen-vl-utils `calculate_video_frame_range`: (first, last, count) of the bound segment."""
    if fps <= 0 or total <= 0:
        raise ValueError("fps and total frames must be positive")
    if start is None and end is None:
        return 0, total - 1, total
    dur = total / fps
    first = math.ceil(max(0.0, min(start, dur)) * fps) if start is not None else 0
    last = min(math.floor(max(0.0, min(end, dur)) * fps), total - 1) if end is not None else total - 1
    if first >= last:
        raise ValueError(f"bound {start}-{end}s is empty for {total} frames at {fps} fps")
    return first, last, last - first + 1


def n_frames(count: int, video_fps: float, cfg: EvaluateConfig) -> int:
    """qwen-vl-utils `smart_nframes` with fps / min_frames / max_frames."""
    lo = math.ceil(cfg.min_frames / FRAME_FACTOR) * FRAME_FACTOR
    hi = math.floor(cfg.max_frames / FRAME_FACTOR) * FRAME_FACTOR
    n = count / video_fps * cfg.fps
    n = min(min(max(n, lo), hi), count)
    n = math.floor(n / FRAME_FACTOR) * FRAME_FACTOR
    if not FRAME_FACTOR <= n <= count:
        raise ValueError(f"{count} frames are too few for a {FRAME_FACTOR}-frame video input")
    return int(n)


def sample_indices(total: int, video_fps: float, start: float | None, end: float | None,
                   cfg: EvaluateConfig) -> list[int]:
    first, last, count = frame_range(total, video_fps, start, end)
    n = n_frames(count, video_fps, cfg)
    return torch.linspace(first, last, n).round().long().tolist()


def segment_metadata(total: int, video_fps: float, start: float | None, end: float | None,
                     idx: list[int]) -> tuple[list[int], int]:
    """(indices, frame count) as the model's timestamps see them: a `bound` segment counts from its own start,
    as a pre-trimmed segment file does (MVBench `main_bound` input); a whole video is unchanged."""
    if start is None and end is None:
        return idx, total
    first, _, count = frame_range(total, video_fps, start, end)
    return [i - first for i in idx], count


def frame_size(h: int, w: int, n: int, cfg: EvaluateConfig) -> tuple[int, int]:
    """Per-frame target size: fetch_video's max_pixels rule (capped by 768 tokens and the total budget)."""
    total_pixels = MODEL_SEQ_LEN * PATCH_FACTOR * PATCH_FACTOR * 0.9
    cap = max(min(VIDEO_MAX_TOKENS * PATCH_FACTOR ** 2, total_pixels / n * FRAME_FACTOR), int(cfg.min_pixels * 1.05))
    return smart_resize(h, w, cfg.min_pixels, min(cfg.max_pixels, cap))


def _resize(frames: np.ndarray, cfg: EvaluateConfig) -> torch.Tensor:
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as TF

    t = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)
    h, w = frame_size(t.shape[2], t.shape[3], t.shape[0], cfg)
    return TF.resize(t, [h, w], interpolation=InterpolationMode.BICUBIC, antialias=True).float()


def load_eval_video(q: Question, cfg: EvaluateConfig) -> EvalVideo:
    """Decode the frames the release would give the model for `q` (MediaError when missing/undecodable)."""
    path = Path(q.media)
    if path.is_dir() or q.frame_fps is not None:
        files = list_frame_folder(path)
        fps = float(q.frame_fps or 3.0)
        try:
            idx = sample_indices(len(files), fps, q.start, q.end, cfg)
        except ValueError as exc:
            raise MediaError("unreadable_media", path, str(exc)) from exc
        frames = read_frame_list([files[i] for i in idx])
        return EvalVideo(_resize(frames, cfg), fps, *segment_metadata(len(files), fps, q.start, q.end, idx))
    vr = _video_reader(path)
    fps = float(vr.get_avg_fps() or 0.0)
    if fps <= 0:
        raise MediaError("unreadable_media", path, "unknown fps")
    try:
        idx = sample_indices(len(vr), fps, q.start, q.end, cfg)
        frames = vr.get_batch(idx).asnumpy()
    except ValueError as exc:
        raise MediaError("unreadable_media", path, str(exc)) from exc
    except Exception as exc:  # decord raises its own error types on broken streams
        raise MediaError("unreadable_media", path, f"decode failed: {type(exc).__name__}") from exc
    return EvalVideo(_resize(frames, cfg), fps, *segment_metadata(len(vr), fps, q.start, q.end, idx))
