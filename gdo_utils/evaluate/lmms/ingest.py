"""Ingest an lmms-eval output folder as one (subset, checkpoint): per-question logs + results JSON (C3).

Rows come from `ingest_image` / `ingest_video`; the kit's own metrics score them (image: each
benchmark's aggregate; video: gdo_utils.evaluate.metrics in `release` mode, missing videos none,
since lmms-eval does not log them), so MVBench overall, VideoMME by duration / task type and MLVU
per task exist even though lmms-eval only logs them. Results carry `engine: "lmms-eval"`, the
lmms-eval version/layout, and lmms-eval's own aggregated number as `lmms_eval_reported`.

Checkpoints and subsets of the release's outputs: ms-swift's `checkpoint-N` is optimizer step N, so
samples seen = N x the run's global batch (per-device batch x accumulation x world size), read from
the run's saved `args.json` (in the checkpoint folder or its run folder, where `pretrained=` points)
or given with `--global-batch`; without either the ingest stops. Each run maps to its own subset:
`--subset`, else the `<run>__checkpoint-N` folder `scripts/eval_lmms.sh` writes, else the run folder
above the checkpoint. Two different models landing on one (subset, checkpoint) is an error, never an
overwrite.
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
from ...io import read_json
from .folder import LmmsFolderError, LmmsRun, read_output_folder, reply_of
from .ingest_image import JUDGE_METRICS, image_bench, image_log, judged_levels
from .ingest_video import base_task, video_bench, video_logs

CKPT_RE = re.compile(r"checkpoint-(\d+)")
PRETRAINED_RE = re.compile(r"(?:^|,)pretrained=([^,]+)")
RUN_FOLDER_RE = re.compile(r"^(?P<run>.+)__checkpoint-\d+$")
VERSION_RE = re.compile(r"^v\d+-\d{8}-\d{6}$")      # ms-swift's add_version folder


class IngestError(LmmsFolderError):
    """An lmms-eval folder cannot be placed: unknown global batch, or two models on one (subset, checkpoint)."""


def model_path(run: LmmsRun) -> str | None:
    """The `pretrained=` path of the lmms-eval launch (None when the results do not name it)."""
    m = PRETRAINED_RE.search(str(run.results.get("config", {}).get("model_args") or ""))
    return m.group(1) if m else None


def saved_global_batch(checkpoint: str | Path) -> int | None:
    """Global batch from ms-swift's args.json (checkpoint folder, else its run folder): per-device x accum x world."""
    ck = Path(checkpoint)
    for f in (ck / "args.json", ck.parent / "args.json"):
        if f.is_file():
            a = read_json(f)
            world = a.get("global_world_size", a.get("world_size"))
            if world is None or "per_device_train_batch_size" not in a:
                raise IngestError(f"{f}: fields per_device_train_batch_size and global_world_size expected")
            return int(a["per_device_train_batch_size"]) * int(a.get("gradient_accumulation_steps", 1)) * int(world)
    return None


def run_name(run: LmmsRun) -> str | None:
    """The training run a results file belongs to: its `<run>__checkpoint-N` folder, else the run folder above the
    checkpoint in `pretrained=` (ms-swift's v<N>-<timestamp> folder skipped)."""
    for d in run.results_file.parents:
        m = RUN_FOLDER_RE.match(d.name)
        if m and not VERSION_RE.match(m.group("run")):
            return m.group("run")
    path = model_path(run)
    if path and CKPT_RE.fullmatch(Path(path).name):
        parent = Path(path).parent
        return parent.parent.name if VERSION_RE.match(parent.name) else parent.name
    return None


def reported(run: LmmsRun, task: str) -> dict:
    """lmms-eval's own aggregated numbers for a task (metric -> value, stderr and alias dropped)."""
    return {k.split(",")[0]: v for k, v in run.task_result(task).items()
            if "," in k and "_stderr" not in k and isinstance(v, (int, float))}


def checkpoint_of(run: LmmsRun) -> tuple[str, int]:
    """(checkpoint name, optimizer step) from `model_name_sanitized` (…__checkpoint-N); ("base", 0) otherwise."""
    m = CKPT_RE.search(run.model_name)
    return (f"checkpoint-{m.group(1)}", int(m.group(1))) if m else ("base", 0)


def samples_seen_of(run: LmmsRun, step: int, global_batch: int | None) -> int:
    """Samples seen at optimizer step `step`: x the run's saved global batch, else x `global_batch`."""
    if step == 0:
        return 0
    path = model_path(run)
    saved = saved_global_batch(path) if path else None
    if saved is not None and global_batch is not None and saved != global_batch:
        raise IngestError(f"{run.results_file}: --global-batch {global_batch} differs from the run's saved args "
                          f"({saved}, args.json beside {path})")
    gb = saved if saved is not None else global_batch
    if gb is None:
        raise IngestError(f"{run.results_file}: checkpoint-{step} is an ms-swift optimizer step, not samples seen, "
                          f"and no args.json was found beside {path or 'the model (pretrained= not logged)'}: "
                          "pass --global-batch N (GPUs x per-device batch x accumulation; the release's script: 8)")
    return step * gb


def _common(run: LmmsRun) -> dict:
    cfg = run.results.get("config", {})
    return {"lmms_eval_layout": run.layout, "lmms_eval_model_args": cfg.get("model_args"),
            "lmms_eval_results_file": str(run.results_file), "lmms_eval_git_hash": run.results.get("git_hash")}


def ingest_run(run: LmmsRun, eval_dir: Path, subset: str, checkpoint: str | None = None,
               samples_seen: int | None = None, contract: str = "lmms-eval", global_batch: int | None = None) -> list[dict]:
    """Write the C3 files of every task in one lmms-eval results file; returns the results dicts."""
    name, step = checkpoint_of(run)
    seen = samples_seen if samples_seen is not None else samples_seen_of(run, step, global_batch)
    ck = Checkpoint(checkpoint or name, seen,
                    model_path(run) or str(run.results.get("config", {}).get("model_args", "")))
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


def _check_destination(eval_dir: Path, subset: str, ck: str, model: str, source: Path, claims: dict) -> None:
    """Refuse a second model on one (subset, checkpoint), in this ingest or already on disk."""
    key = (subset, ck)
    if key in claims and claims[key][0] != model:
        raise IngestError(f"{source} and {claims[key][1]} are two models ({model} / {claims[key][0]}) on one "
                          f"{subset}/{ck}: ingest them under their own --subset")
    claims[key] = (model, source)
    for res in sorted((eval_dir / subset / ck).glob("*.json")):
        r = read_json(res)
        if "benchmark" in r and (r.get("engine") != "lmms-eval" or r.get("model") != model):
            raise IngestError(f"{res} holds results of {r.get('model')} ({r.get('engine')}); ingesting {model} from "
                              f"{source} would overwrite them: choose another --subset (or remove that folder)")


def ingest_folder(params: Params, folder: str | Path, subset: str | None = None, checkpoint: str | None = None,
                  samples_seen: int | None = None, global_batch: int | None = None) -> dict:
    """Ingest every results file under `folder` into outputs/<run>/eval/ (each run its own subset) + the trajectory."""
    eval_dir = params.stage_dir("eval")
    runs = read_output_folder(folder)
    claims: dict = {}
    placed = []
    for run in runs:
        sub = subset or run_name(run)
        if not sub:
            raise IngestError(f"{run.results_file}: no <run>__checkpoint-N folder and no run folder in pretrained=: "
                              "pass --subset")
        ck = checkpoint or checkpoint_of(run)[0]
        model = model_path(run) or str(run.results.get("config", {}).get("model_args", ""))
        _check_destination(eval_dir, sub, ck, model, run.results_file, claims)
        placed.append((run, sub))
    written = []
    for run, sub in placed:
        written += ingest_run(run, eval_dir, sub, checkpoint, samples_seen, contract=f"lmms-eval-{run.layout}",
                              global_batch=global_batch)
    traj = write_trajectory(eval_dir)
    return {"written": [{k: r[k] for k in ("subset", "checkpoint", "samples_seen", "benchmark", "accuracy", "n")}
                        for r in written],
            "trajectory_rows": len(traj)}
