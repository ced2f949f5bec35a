"""Shared builders for the training tests: a tiny Qwen3-VL, C1 subset files with hand-made media, params files."""
from __future__ import annotations

import json
from pathlib import Path

import yaml

from tests.conftest import write_jpg, write_mp4

CORPUS = ["What colour is the square?", "The square is red.", "Describe the video.", "A ball moves left.",
          "seconds 0.5 1.0 2.5", "red green blue yellow"] * 10


def tiny_qwen3vl(root: Path) -> Path:
    from gdo_utils.models import build_tiny_vlm

    d = root / "tiny-qwen3vl"
    if not (d / "config.json").is_file():
        build_tiny_vlm(d, CORPUS, seed=0)
    return d


def c1_rows(media: Path, n: int, kinds: tuple[str, ...] = ("image", "frames", "video", "text")) -> list[dict]:
    """n C1 rows cycling through the media kinds, each with its own hand-made media."""
    colours = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (200, 200, 30)]
    names = ["red", "green", "blue", "yellow"]
    rows = []
    for i in range(n):
        kind, c = kinds[i % len(kinds)], i % 4
        q = {"role": "user", "content": ""}
        a = {"role": "assistant", "content": f"The square is {names[c]}."}
        row: dict = {"id": f"r{i:03d}", "images": [], "media_kind": kind}
        if kind == "image":
            row["images"] = [str(write_jpg(media / f"img{i}.jpg", colours[c], (48, 40)))]
            q["content"] = "<image>\nWhat colour is the square?"
        elif kind == "frames":
            row["images"] = [str(write_jpg(media / f"f{i}_{t}.jpg", colours[(c + t) % 4], (32, 32))) for t in range(3)]
            row["frame_indices"] = [[0, 4, 8]]
            q["content"] = "<image><image><image>\nDescribe the video."
        elif kind == "video":
            mp4 = media / f"v{i}.mp4"
            if not mp4.exists():
                write_mp4(mp4, n_frames=12, size=32, fps=8)
            row["videos"] = [str(mp4)]
            row["frame_indices"] = [[0, 5, 11]]
            q["content"] = "<image><image><image>\nDescribe the video."
        else:
            q["content"] = "What colour is the square?"
        row["messages"] = [q, a]
        rows.append(row)
    return rows


def write_subset(out_root: Path, run: str, name: str, rows: list[dict]) -> Path:
    f = out_root / run / "subsets" / name / "train.jsonl"
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return f


def write_params(path: Path, out_root: Path, model: Path, run: str = "t", **train) -> Path:
    tr = {"dataloader_workers": 0, "per_device_batch_size": 4, "eval_ratio": 0.0, "learning_rate": 1e-3,
          "gradient_checkpointing": False}
    tr.update(train)
    path.write_text(yaml.safe_dump({"run_name": run, "output_root": str(out_root), "device": "cpu",
                                    "models": {"vlm": {"path": str(model), "dtype": "float32"}}, "train": tr}))
    return path
