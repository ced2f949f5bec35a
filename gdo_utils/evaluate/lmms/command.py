"""The exact `accelerate launch -m lmms_eval ...` command for one checkpoint, matching the built-in engine.

Model arguments carry the kit's contract: for video tasks fps, max_num_frames and the pixel bounds
of `evaluate` (the release: fps=1, max_num_frames=32, 200704..602112 px), for image tasks the image
suite's pixel bounds; `interleave_visuals=False` as the release's script. One launch per task group
(video / image), as `scripts/eval_lmms.sh` runs one task per launch; `--log_samples` so the output
folder can be ingested.
"""
from __future__ import annotations

import shlex
from pathlib import Path

from ...config import Params
from ..image import IMAGE_BENCHMARKS

VIDEO_TASKS = {"mvbench": "mvbench", "videomme": "videomme", "mlvu": "mlvu_test", "lvbench": "lvbench"}


def lmms_tasks(names: list[str], override: dict[str, str] | None = None) -> list[str]:
    """lmms-eval task names for kit benchmark names (`override` first; unknown names are an error)."""
    out = []
    for n in names:
        if override and n in override:
            out.append(override[n])
        elif n in VIDEO_TASKS:
            out.append(VIDEO_TASKS[n])
        elif n in IMAGE_BENCHMARKS:
            out.append(IMAGE_BENCHMARKS[n].lmms_task)
        else:
            raise KeyError(f"no lmms-eval task known for benchmark {n!r}")
    return out


def model_args(params: Params, checkpoint: str | Path, image: bool) -> str:
    e = params.evaluate
    lo, hi = (e.image.min_pixels, e.image.max_pixels) if image else (e.min_pixels, e.max_pixels)
    args = [f"pretrained={Path(checkpoint).resolve()}", f"max_pixels={hi}", f"min_pixels={lo}",
            "interleave_visuals=False", f"max_num_frames={e.max_frames}", f"fps={e.fps:g}"]
    if e.system_prompt is not None:  # 0.7.x always sends a system turn; make it the kit's (no way to drop it)
        args.append(f"system_prompt={e.system_prompt}")
    if params.device == "cpu":     # lmms-eval's qwen3_vl defaults to cuda
        args += ["device=cpu", "device_map=cpu"]
    attn = params.evaluate.attn_implementation or params.models.vlm.attn_implementation
    if attn:
        args.append(f"attn_implementation={attn}")
    return ",".join(args)


def launch_command(params: Params, checkpoint: str | Path, benchmarks: list[str], output_path: str | Path,
                   image: bool = False) -> list[str]:
    """argv of one lmms-eval launch for `benchmarks` (all video or all image) on `checkpoint`."""
    c = params.evaluate.lmms_eval
    launch = ["accelerate", "launch"] if c.python == "python" else [c.python, "-m", "accelerate.commands.launch"]
    cmd = [*launch, "--num_processes", str(c.num_processes), "-m", "lmms_eval",
           "--model", c.model, "--model_args", model_args(params, checkpoint, image),
           "--tasks", ",".join(lmms_tasks(benchmarks, c.tasks)), "--batch_size", str(c.batch_size),
           "--output_path", str(Path(output_path).resolve()), "--log_samples"]
    if c.include_path:
        cmd += ["--include_path", str(Path(c.include_path).resolve())]
    return cmd


def command_text(cmd: list[str]) -> str:
    return " ".join(shlex.quote(x) for x in cmd)
