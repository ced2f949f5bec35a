"""Shared pytest setup: offline hubs, deterministic hashing, small thread counts, tiny media fixtures."""
from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("OMP_NUM_THREADS", "2")

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def repo_root() -> Path:
    return REPO


def write_jpg(path: Path, color=(200, 30, 30), size=(32, 32)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path, quality=90)
    return path


def write_mp4(path: Path, n_frames: int = 12, size: int = 32, fps: int = 8) -> Path:
    """A square moving right, written with imageio-ffmpeg (libx264)."""
    import imageio.v2 as imageio

    path.parent.mkdir(parents=True, exist_ok=True)
    frames = []
    for t in range(n_frames):
        f = np.zeros((size, size, 3), np.uint8)
        x = 2 + t
        f[12:20, x:x + 8] = (255, 255, 0)
        frames.append(f)
    imageio.mimwrite(path, frames, fps=fps, codec="libx264", macro_block_size=16,
                     ffmpeg_params=["-threads", "1"], pixelformat="yuv420p")
    return path


@pytest.fixture
def media_dir(tmp_path: Path) -> Path:
    """A media folder: two images, a 40-frame frame folder, a 12-frame mp4 and a corrupt mp4."""
    d = tmp_path / "media"
    write_jpg(d / "a.jpg")
    write_jpg(d / "b.jpg", color=(20, 200, 40))
    for i in range(40):
        write_jpg(d / "frames" / "v1" / f"frame_{i:04d}.jpg", color=(i * 6, 10, 10), size=(16, 16))
    write_mp4(d / "v2.mp4")
    (d / "bad.mp4").write_bytes(b"\x00\x00\x00 ftypisom not really a video" * 4)
    return d
