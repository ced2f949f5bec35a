"""The evaluation stage: every checkpoint of every training run (C2) on every benchmark -> C3 outputs.

For a run folder outputs/<run>/train/<subset>/ (run_info.json) the base model (checkpoint "base",
samples_seen 0) and each listed checkpoint are evaluated; results go to
outputs/<run>/eval/<subset>/<checkpoint>/<benchmark>.{json,log.parquet}, and
outputs/<run>/eval/trajectory.{parquet,csv} gathers every results JSON of the run.

Resumable at question granularity: each (checkpoint, benchmark) writes Parquet parts
(<benchmark>.parts/, gdo_utils.shards: rank by a stable hash of the question id, resume by id, any
world size), stamped with the generation hash (model fingerprint, frames/pixels contract, data);
a finished pair whose results JSON carries the same hashes is skipped; one whose extraction mode or
missing-video policy changed is re-scored from its log without generating again. Under torchrun /
accelerate launch (WORLD_SIZE > 1) ranks share each pair's questions and rank 0 merges.
"""
from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from ..cache import code_version, model_fingerprint
from ..config import EvaluateConfig, Params, params_hash, resolve_path
from ..io import read_json, read_parquet, write_json, write_manifest, write_parquet, write_text
from ..media import leaves_root
from ..shards import dist_info, merge_parts, run_sharded
from ..train.families import FAMILIES, UnknownFamilyError
from . import registry
from .generation import barrier, prepare_parts
from .engine import LOG_COLUMNS, LOG_SCHEMA, EvalWorker, length_order
from .metrics import aggregate, missing_counts
from .types import Question, refuse_duplicate_ids
from .contract import inputs_key, runtime_key
from .video import contract_id

log = logging.getLogger(__name__)
TRAJECTORY_COLUMNS = ["subset", "checkpoint", "samples_seen", "benchmark", "level", "subtask", "accuracy", "n",
                      "engine", "contract"]
BASE_ONLY_SUBSET = "base_model"


@dataclass(frozen=True)
class Checkpoint:
    """One model to evaluate: its C3 name, samples seen, weights folder and (LoRA) base."""

    name: str
    samples_seen: int
    path: str
    base_model: str | None = None


@dataclass(frozen=True)
class TrainRun:
    subset: str
    folder: Path | None
    eval_dir: Path
    checkpoints: list[Checkpoint]
    family: str = ""      # model_type of the trained model (run_info.json `family`, else the base model's config)


class NotAVideoModelError(UnknownFamilyError):
    """A training run named for the video benchmarks whose model family cannot take video (LLaVA-1.5)."""


def run_family(info: dict) -> str:
    """A run's model family: run_info.json `family`, else its base model's config model_type ("" when unknown)."""
    if info.get("family"):
        return str(info["family"])
    try:
        from transformers import AutoConfig

        return str(AutoConfig.from_pretrained(str(info["base_model"])).model_type)
    except (OSError, ValueError):
        return ""


def takes_video(family: str) -> bool:
    """Whether a model family accepts video input (gdo_utils.train.families; unknown families are assumed to)."""
    return FAMILIES[family].video if family in FAMILIES else True


def video_runs(runs: list[TrainRun], explicit: bool) -> tuple[list[TrainRun], list[dict]]:
    """The runs the video benchmarks can score, and a note per skipped run; a run named explicitly is refused."""
    keep, skipped = [], []
    for r in runs:
        if takes_video(r.family):
            keep.append(r)
            continue
        why = f"model family {r.family!r} cannot take video input"
        if explicit:
            raise NotAVideoModelError(f"{r.folder}: {why}, so it cannot be scored on the video benchmarks "
                                      "(evaluate.benchmarks); leave it out of --run-dir / evaluate.runs, or set "
                                      "evaluate.benchmarks=[] to score it on the image suite only")
        log.warning("%s: %s: skipped by the video benchmarks", r.subset, why)
        skipped.append({"subset": r.subset, "family": r.family, "reason": why})
    return keep, skipped


# ----------------------------------------------------------------------------- discovering runs (C2)
def read_run(folder: str | Path, include_base: bool = True) -> TrainRun:
    """A C2 training-run folder: the base model and every listed checkpoint present on disk."""
    folder = Path(folder)
    info_file = folder / "run_info.json"
    if not info_file.is_file():
        raise FileNotFoundError(f"{info_file} not found: not a training-run folder (outputs/<run>/train/<subset>/)")
    info = read_json(info_file)
    for key in ("subset", "base_model", "checkpoints"):
        if key not in info:
            raise ValueError(f"{info_file}: field {key!r} missing")
    lora = bool(info.get("lora", False))
    cks = [Checkpoint("base", 0, str(info["base_model"]))] if include_base else []
    for c in sorted(info["checkpoints"], key=lambda c: int(c["samples_seen"])):
        p = folder / c["name"]
        if not p.is_dir():
            log.warning("%s: checkpoint %s listed but not on disk: skipped", folder, c["name"])
            continue
        cks.append(Checkpoint(c["name"], int(c["samples_seen"]), str(p), str(info["base_model"]) if lora else None))
    return TrainRun(str(info["subset"]), folder, folder.parent.parent / "eval", cks, run_family(info))


def discover_runs(params: Params) -> list[TrainRun]:
    """Training runs under outputs/<run>/train/ (those named in evaluate.runs, else all)."""
    train = params.stage_dir("train")
    found = sorted(p.parent for p in train.glob("*/run_info.json")) if train.is_dir() else []
    wanted = params.evaluate.runs
    if wanted:
        missing = [w for w in wanted if not (train / w / "run_info.json").is_file()]
        if missing:
            raise FileNotFoundError(f"evaluate.runs: no run_info.json for {missing} under {train}")
        found = [train / w for w in wanted]
    return [read_run(f, params.evaluate.base_model) for f in found]


def base_only_run(params: Params) -> TrainRun:
    """No training run: the configured backbone alone, as subset `base_model`, checkpoint `base`."""
    from ..models import ensure_models

    info = ensure_models(params)
    return TrainRun(BASE_ONLY_SUBSET, None, params.stage_dir("eval"), [Checkpoint("base", 0, str(info["vlm"]))])


# ----------------------------------------------------------------------------- hashes
def checkpoint_fingerprint(ck: Checkpoint) -> str:
    """The checkpoint's files, plus its base model's for a LoRA adapter (what the replies are generated with)."""
    return model_fingerprint(ck.path) + (f"+{model_fingerprint(ck.base_model)}" if ck.base_model else "")


def generation_hash(cfg: EvaluateConfig, bench: str, data: dict, model: str, inputs: dict | None = None,
                    runtime: dict | None = None) -> str:
    """What the replies depend on (not the extraction mode or the missing-video policy): the contract, the
    benchmark files (paths, annotation content, media listing), the model's files, the runtime (dtype,
    attention, batching, library versions; gdo_utils.evaluate.contract) and the code that turns questions
    into replies."""
    keep = ("fps", "min_frames", "max_frames", "min_pixels", "max_pixels", "max_new_tokens")
    contract = {k: getattr(cfg, k) for k in keep}
    if cfg.system_prompt is not None:   # only when set, so results written before the option stay valid
        contract["system_prompt"] = cfg.system_prompt
    code = code_version(["gdo_utils.evaluate.engine", registry.get(bench).load.__module__])  # + their imports
    return params_hash({"contract": contract, "bench": bench, "data": data, "model": model, "code": code,
                        "inputs": inputs, "runtime": runtime})


def eval_key_parts(params: Params, name: str, media: list[str]) -> tuple[dict, dict]:
    """(inputs, runtime) of a benchmark's generation hash: annotation content + media listing; model runtime."""
    d = params.evaluate.data[name]
    ann = resolve_path(params, d.annotations, f"evaluate.data.{name}.annotations").resolve()
    root = resolve_path(params, d.media_root, f"evaluate.data.{name}.media_root").resolve()
    return inputs_key(ann, root, media), runtime_key(params.models.vlm.dtype, eval_attn(params), params.evaluate.batch_size)


def eval_attn(params: Params) -> str | None:
    """The attention kernel evaluated models load with: evaluate.attn_implementation, else models.vlm's."""
    return params.evaluate.attn_implementation or params.models.vlm.attn_implementation


# ----------------------------------------------------------------------------- questions
def loader_options(params: Params, name: str) -> dict:
    """A benchmark loader's named options from the params (MVBench: which video input)."""
    return {"input": params.evaluate.mvbench_input} if name == "mvbench" else {}


def load_questions(params: Params, name: str) -> list[Question]:
    """A benchmark's questions from the paths in evaluate.data (toyworld: / run: schemes allowed)."""
    bench = registry.get(name)
    d = params.evaluate.data.get(name)
    if d is None:
        raise FileNotFoundError(f"{params.source_file}: evaluate.data.{name} is not set (annotations + media_root)")
    ann = resolve_path(params, d.annotations, f"evaluate.data.{name}.annotations")
    media = resolve_path(params, d.media_root, f"evaluate.data.{name}.media_root")
    qs = refuse_outside_media(bench.load(ann.resolve(), media.resolve(), **loader_options(params, name)), media.resolve())
    refuse_duplicate_ids(name, ann, [q.qid for q in qs])
    return qs[: d.limit] if d.limit else qs


def refuse_outside_media(questions: list[Question], media_root: Path) -> list[Question]:
    """A question whose video path leaves media_root (`../`, an absolute path) is a bad row: no decoding,
    `media_error` `outside_media_root`, counted with the missing videos (missing_video policy)."""
    return [replace(q, media_error=f"outside_media_root: {q.media}") if leaves_root(media_root, q.media) else q
            for q in questions]


# ----------------------------------------------------------------------------- one (checkpoint, benchmark)


def results_paths(eval_dir: Path, subset: str, ckpt: str, bench: str) -> tuple[Path, Path, Path]:
    d = eval_dir / subset / ckpt
    return d / f"{bench}.json", d / f"{bench}.log.parquet", d / f"{bench}.parts"


def pair_state(res: Path, gen_h: str, cfg: EvaluateConfig) -> str:
    """'done', 'rescore' (same replies, other extraction/policy) or 'todo'."""
    if not res.is_file() or not res.with_name(res.name.replace(".json", ".log.parquet")).is_file():
        return "todo"
    r = read_json(res)
    if r.get("generation_hash") != gen_h:
        return "todo"
    same = r.get("extraction") == cfg.extraction and r.get("missing_video") == cfg.missing_video
    return "done" if same else "rescore"


def write_results(run: TrainRun, ck: Checkpoint, name: str, logdf: pd.DataFrame, cfg: EvaluateConfig,
                  gen_h: str, model_fp: str, seconds: float | None, counts: dict | None = None) -> dict:
    """Score a finished log and write <benchmark>.json + .log.parquet (+ manifest of the checkpoint folder)."""
    bench = registry.get(name)
    res, logp, _ = results_paths(run.eval_dir, run.subset, ck.name, name)
    agg = aggregate(logdf, bench, cfg.extraction, cfg.missing_video)
    both_policy = {p: aggregate(logdf, bench, cfg.extraction, p)["overall"] for p in ("wrong", "exclude")}
    both_mode = {m: aggregate(logdf, bench, m, cfg.missing_video)["overall"] for m in ("release", "robust")}
    out = {"benchmark": name, "subset": run.subset, "checkpoint": ck.name, "samples_seen": ck.samples_seen,
           "model": ck.path, "base_model": ck.base_model, "engine": "kit", "contract": contract_id(cfg),
           "contract_detail": {"fps": cfg.fps, "min_frames": cfg.min_frames, "max_frames": cfg.max_frames,
                               "min_pixels": cfg.min_pixels, "max_pixels": cfg.max_pixels, "greedy": True,
                               "max_new_tokens": cfg.max_new_tokens, "system_prompt": cfg.system_prompt,
                               "prompt": "lmms-eval 0.5.0 chat qwen3_vl", "extraction": cfg.extraction},
           "extraction": cfg.extraction, "missing_video": cfg.missing_video,
           "n_questions": int(len(logdf)), **missing_counts(logdf),
           "accuracy": agg["overall"]["accuracy"], "n": agg["overall"]["n"], "levels": agg["levels"],
           "overall_by_missing_video": both_policy, "overall_by_extraction": both_mode,
           "overall_rule": bench.overall, "generation_hash": gen_h, "model_fingerprint": model_fp,
           "seconds": seconds, "generation": counts}
    write_parquet(logp, logdf[LOG_COLUMNS])
    write_json(res, out)
    return out


def evaluate_pair(run: TrainRun, ck: Checkpoint, name: str, questions: list[Question], vlm: Any,
                  cfg: EvaluateConfig, gen_h: str, model_fp: str, progress: bool = True) -> dict | None:
    """Generate this rank's share of one (checkpoint, benchmark), then (rank 0) merge and score."""
    rank, world = dist_info()
    res, logp, parts = results_paths(run.eval_dir, run.subset, ck.name, name)
    prepare_parts(parts, gen_h)
    bench = registry.get(name)
    qmap = {q.qid: q for q in questions}
    order = length_order(questions, bench, vlm.processor.tokenizer)
    t0 = time.time()
    counts = run_sharded(order, EvalWorker(vlm, bench, qmap, cfg), parts, id_col="question_id",
                         batch_size=cfg.batch_size, part_rows=cfg.part_rows, schema=LOG_SCHEMA,
                         desc=f"{run.subset}/{ck.name}/{name}", progress=progress)
    barrier()
    if rank != 0:
        barrier()
        return None
    merged = merge_parts(parts, qmap, "question_id")
    out = write_results(run, ck, name, merged, cfg, gen_h, model_fp, round(time.time() - t0, 2),
                        {k: counts[k] for k in ("world_size", "owned", "skipped_done", "processed")})
    shutil.rmtree(parts)
    barrier()
    return out


def load_checkpoint_model(ck: Checkpoint, dtype: str, device: str, attn: str | None):
    """A C2 checkpoint (full weights, or a peft adapter applied on the base model) as a `VLM`."""
    from ..models import VLM, load_vlm

    if not (Path(ck.path) / "adapter_config.json").is_file():
        return load_vlm(ck.path, dtype, device, attn)
    try:
        from peft import PeftModel
    except ImportError as exc:
        raise ImportError(f"{ck.path} holds a LoRA adapter: install peft to evaluate it") from exc
    from transformers import AutoProcessor

    base = load_vlm(ck.base_model, dtype, device, attn)
    model = PeftModel.from_pretrained(base.model, ck.path).merge_and_unload().eval()
    proc = AutoProcessor.from_pretrained(ck.path)
    proc.tokenizer.padding_side = "left"
    return VLM(model, proc, base.device)


# ----------------------------------------------------------------------------- runs
def _reuse_base(run: TrainRun, ck: Checkpoint, name: str, gen_h: str, cfg: EvaluateConfig) -> bool:
    """The same base model with the same contract was scored for another subset: copy its log, rescore."""
    if ck.name != "base":
        return False
    for res in sorted(run.eval_dir.glob(f"*/base/{name}.json")):
        if res.parent.parent.name == run.subset or read_json(res).get("generation_hash") != gen_h:
            continue
        if dist_info()[0] == 0:
            logdf = read_parquet(res.with_name(f"{name}.log.parquet"))
            write_results(run, ck, name, logdf, cfg, gen_h, read_json(res)["model_fingerprint"], 0.0)
        log.info("%s/base/%s: same base model and contract as %s: log reused", run.subset, name, res.parent.parent.name)
        return True
    return False


def evaluate_run(params: Params, run: TrainRun, progress: bool = True,
                 questions: dict[str, list[Question]] | None = None, force: bool = False) -> list[dict]:
    """Every checkpoint x benchmark of one run; finished pairs skipped. Returns the results written (rank 0)."""
    cfg = params.evaluate
    rank, _ = dist_info()
    qs = questions or {b: load_questions(params, b) for b in cfg.benchmarks}
    out: list[dict] = []
    keys = {name: eval_key_parts(params, name, [q.media for q in qs[name]]) for name in cfg.benchmarks}
    for ck in run.checkpoints:
        fp = checkpoint_fingerprint(ck)
        todo = []
        for name in cfg.benchmarks:
            d = {**params.evaluate.data[name].model_dump(mode="json"), **loader_options(params, name)}
            gen_h = generation_hash(cfg, name, d, fp, *keys[name])
            res, logp, _ = results_paths(run.eval_dir, run.subset, ck.name, name)
            state = "todo" if force else pair_state(res, gen_h, cfg)
            if state == "done":
                log.info("%s/%s/%s: up to date, skipped", run.subset, ck.name, name)
                continue
            if state == "rescore" or (not force and _reuse_base(run, ck, name, gen_h, cfg)):
                if rank == 0 and state == "rescore":
                    out.append(write_results(run, ck, name, read_parquet(logp), cfg, gen_h, fp, 0.0))
                continue
            todo.append((name, gen_h))
        if not todo:
            continue
        vlm = load_checkpoint_model(ck, params.models.vlm.dtype, params.device, eval_attn(params))
        for name, gen_h in todo:
            r = evaluate_pair(run, ck, name, qs[name], vlm, cfg, gen_h, fp, progress)
            if r is not None:
                out.append(r)
        del vlm
    return out


def write_trajectory(eval_dir: Path) -> pd.DataFrame:
    """Gather every results JSON under eval/ into trajectory.parquet + .csv (+ .md) with C3's columns."""
    rows = []
    for res in sorted(eval_dir.glob("*/*/*.json")):
        if res.name == "manifest.json":
            continue
        r = read_json(res)
        if "benchmark" not in r or "levels" not in r:
            continue
        common = {"subset": r["subset"], "checkpoint": r["checkpoint"], "samples_seen": r["samples_seen"],
                  "benchmark": r["benchmark"], "engine": r.get("engine", "kit"), "contract": r["contract"]}
        rows.append({**common, "level": "overall", "subtask": "", "accuracy": r["accuracy"], "n": r["n"]})
        rows += [{**common, **lv} for lv in r["levels"]]
    df = pd.DataFrame(rows, columns=TRAJECTORY_COLUMNS)
    df = df.astype({"samples_seen": "int64", "n": "int64", "accuracy": "float64"})
    df = df.sort_values(["subset", "samples_seen", "benchmark", "level", "subtask"], kind="mergesort").reset_index(drop=True)
    write_parquet(eval_dir / "trajectory.parquet", df)
    write_text(eval_dir / "trajectory.csv", df.to_csv(index=False))
    return df


def _init_distributed() -> None:
    """Under torchrun / accelerate launch on CPU: a gloo group so ranks can meet at barriers."""
    import os

    import torch.distributed as tdist

    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and tdist.is_available() and not tdist.is_initialized():
        import torch

        tdist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")


def run_stage(params: Params, run_dirs: list[str | Path] | None = None, progress: bool = True,
              force: bool = False) -> dict:
    """Evaluate the given run folders (default: the params' runs; none found: the base model alone)."""
    from ..toyworld import generate_toyworld

    t0 = time.time()
    _init_distributed()
    rank, world = dist_info()
    if params.toyworld.enabled:
        generate_toyworld(params.toyworld, params.toyworld_dir) if rank == 0 else None
        barrier()
    qs = {b: load_questions(params, b) for b in params.evaluate.benchmarks}   # bad benchmark files fail here, first
    if run_dirs:
        runs = [read_run(d, params.evaluate.base_model) for d in run_dirs]
    else:
        runs = discover_runs(params)
    skipped: list[dict] = []
    if params.evaluate.benchmarks:
        runs, skipped = video_runs(runs, explicit=bool(run_dirs or params.evaluate.runs))
    note = None
    if not runs and skipped:
        note = "every training run found is of a model family that cannot take video: nothing to score"
    if not runs and not skipped:
        note = (f"no training run under {params.stage_dir('train')} (run notebook 04 / `gdo-repro train`): "
                f"evaluating the base model {params.models.vlm.path} only")
        log.warning(note)
        runs = [base_only_run(params)]
    written = []
    for run in runs:
        written += evaluate_run(params, run, progress, qs, force)
    report: dict = {"runs": [r.subset for r in runs], "note": note, "world_size": world, "skipped_runs": skipped}
    if rank == 0:
        eval_dirs = sorted({r.eval_dir for r in runs})
        for d in eval_dirs:
            traj = write_trajectory(d)
            write_manifest(d, stage="evaluate", params_hash=params_hash(params, ["evaluate", "models"]),
                           params_file=params.source_file, wall_time_s=time.time() - t0,
                           outputs=[d / "trajectory.parquet", d / "trajectory.csv"],
                           extra={"contract": contract_id(params.evaluate), "runs": report["runs"]})
            report.setdefault("trajectory", []).append(str(d / "trajectory.parquet"))
            report.setdefault("rows", 0)
            report["rows"] += len(traj)
        report["evaluated"] = [{k: r[k] for k in ("subset", "checkpoint", "benchmark", "accuracy", "n", "n_missing")}
                               for r in written]
        report["questions"] = {b: len(v) for b, v in qs.items()}
        report["seconds"] = round(time.time() - t0, 2)
    barrier()
    return report


def load_trajectory(params: Params) -> pd.DataFrame:
    path = params.stage_dir("eval", "trajectory.parquet")
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run `gdo-repro evaluate --params ...` first")
    return read_parquet(path)
