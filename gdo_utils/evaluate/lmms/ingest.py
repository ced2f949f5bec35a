"""Ingest an lmms-eval output folder as one (subset, checkpoint): per-question logs + results JSON (C3).

Rows come from `ingest_image` / `ingest_video`; the kit's own metrics score them (image: each
benchmark's aggregate; video: gdo_utils.evaluate.metrics in `release` mode, missing videos none,
since lmms-eval does not log them), so MVBench overall, VideoMME by duration / task type and MLVU
per task exist even though lmms-eval only logs them. Results carry `engine: "lmms-eval"`, the
lmms-eval version/layout, and lmms-eval's own aggregated number as `lmms_eval_reported`.
"""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from ...config import Params
from ...io import write_json, write_parquet
from .. import registry
from ..engine import LOG_COLUMNS as VIDEO_LOG_COLUMNS
from ..image import IMAGE_BENCHMARKS
from ..image.stage import LOG_COLUMNS as IMAGE_LOG_COLUMNS
from ..image.stage import results_dict
from ..metrics import aggregate
from ..stage import Checkpoint, TrainRun, results_paths, write_trajectory
from .folder import LmmsRun, read_output_folder, reply_of
from .ingest_image import JUDGE_METRICS, image_bench, image_log, judged_levels
from .ingest_video import base_task, video_bench, video_logs

CKPT_RE = re.compile(r"checkpoint-(\d+)")


def reported(run: LmmsRun, task: str) -> dict:
    """lmms-eval's own aggregated numbers for a task (metric -> value, stderr and alias dropped)."""
    return {k.split(",")[0]: v for k, v in run.task_result(task).items()
            if "," in k and "_stderr" not in k and isinstance(v, (int, float))}


def checkpoint_of(run: LmmsRun) -> tuple[str, int]:
    """(checkpoint name, samples seen) from `model_name_sanitized` (…__checkpoint-N); ("base", 0) otherwise."""
    m = CKPT_RE.search(run.model_name)
    return (f"checkpoint-{m.group(1)}", int(m.group(1))) if m else ("base", 0)


def _common(run: LmmsRun) -> dict:
    cfg = run.results.get("config", {})
    return {"lmms_eval_layout": run.layout, "lmms_eval_model_args": cfg.get("model_args"),
            "lmms_eval_results_file": str(run.results_file), "lmms_eval_git_hash": run.results.get("git_hash")}


def ingest_run(run: LmmsRun, eval_dir: Path, subset: str, checkpoint: str | None = None,
               samples_seen: int | None = None, contract: str = "lmms-eval") -> list[dict]:
    """Write the C3 files of every task in one lmms-eval results file; returns the results dicts."""
    name, seen = checkpoint_of(run)
    ck = Checkpoint(checkpoint or name, samples_seen if samples_seen is not None else seen,
                    str(run.results.get("config", {}).get("model_args", "")))
    tr = TrainRun(subset, None, eval_dir, [ck])
    out = []
    for task in sorted(run.samples):
        if image_bench(task) is None:
            continue
        bench = IMAGE_BENCHMARKS[image_bench(task)]
        logdf = image_log(task, run.samples[task], reply_of)[IMAGE_LOG_COLUMNS]
        extra = {**_common(run), "lmms_eval_reported": reported(run, task)}
        res = results_dict(tr, ck, bench, logdf, "release", contract, engine="lmms-eval", extra=extra)
        if base_task(task) in JUDGE_METRICS:
            res["accuracy"], res["levels"] = judged_levels(base_task(task), run.task_result(task))
            res["n"] = len(logdf)
            res["needs_judge"] = res["accuracy"] is None
        out.append(_write(tr, ck, bench.name, logdf, res))
    for bench_name, logdf in video_logs(run.samples, reply_of).items():
        bench = registry.get(bench_name)
        agg = aggregate(logdf, bench, "release", "wrong")
        tasks = [t for t in run.samples if video_bench(t) == bench_name]
        res = {"benchmark": bench_name, "subset": subset, "checkpoint": ck.name, "samples_seen": ck.samples_seen,
               "model": ck.path, "base_model": None, "engine": "lmms-eval", "contract": contract, "suite": "video",
               "extraction": "release", "missing_video": "wrong", "n_questions": int(len(logdf)), "n_missing": 0,
               "accuracy": agg["overall"]["accuracy"], "n": agg["overall"]["n"], "levels": agg["levels"],
               "overall_rule": bench.overall, **_common(run),
               "lmms_eval_reported": {t: reported(run, t) for t in sorted(tasks)}}
        out.append(_write(tr, ck, bench_name, logdf[VIDEO_LOG_COLUMNS], res))
    return out


def _write(run: TrainRun, ck: Checkpoint, bench: str, logdf: pd.DataFrame, res: dict) -> dict:
    res_path, log_path, _ = results_paths(run.eval_dir, run.subset, ck.name, bench)
    write_parquet(log_path, logdf)
    write_json(res_path, res)
    return res


def ingest_folder(params: Params, folder: str | Path, subset: str, checkpoint: str | None = None,
                  samples_seen: int | None = None) -> dict:
    """Ingest every results file under `folder` into outputs/<run>/eval/ and refresh the trajectory."""
    eval_dir = params.stage_dir("eval")
    written = []
    for run in read_output_folder(folder):
        written += ingest_run(run, eval_dir, subset, checkpoint, samples_seen, contract=f"lmms-eval-{run.layout}")
    traj = write_trajectory(eval_dir)
    return {"written": [{k: r[k] for k in ("subset", "checkpoint", "benchmark", "accuracy", "n")} for r in written],
            "trajectory_rows": len(traj)}
