"""One training run per subset: plan and check, prepare the rows, launch, and write the run folder (C2).

    outputs/<run>/train/<subset>/
      run_info.json            subset, train file, base model, family, global batch, n_train, lora,
                               finished, checkpoints [{name, samples_seen, step}]
      checkpoint-<samples>/    save_pretrained model (or peft adapter) + processor + Trainer state
      train_log.parquet        step, samples seen, tokens, loss, lr, grad norm, eval loss, samples/s, tokens/s
      train_curves.png/.pdf    loss and held-out loss vs samples seen
      data/                    the checked rows (train.jsonl, eval.jsonl), skipped.jsonl, prepare.json
      manifest.json

Everything that can be wrong is checked before any work: the subset file exists and has rows, the base
model's family is known, the launch config fits the devices, GPU-only options are off on CPU. A run whose
manifest matches (same params, same train file, same code inputs) is skipped; an unfinished run
resumes from its last checkpoint.
"""
from __future__ import annotations

import copy
import hashlib
import json
import logging
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from ..cache import code_version, model_fingerprint, portable_sha256, portable_text
from ..config import Params, TrainConfig, canonical_json, params_hash, resolve_path
from ..io import read_json, write_json, write_jsonl, write_manifest, write_parquet
from .callbacks import BrokenCheckpointError, SampleCheckpoints, StepTimer, finalize_staged, has_full_state, state_step
from .collate import Collator
from .data import Prepared, TrainDataset, prepare_rows
from .encode import EncodeSettings, load_media
from .families import Family, apply_freeze, family_of_model_path, lora_target_regex, projector_module_names
from .launch import (AccelerateConfig, check_devices, format_command, global_batch, launch_command,
                     load_accelerate_config, processes_per_node, resolve_config_path)
from .records import EmptySubsetError, TrainRecord, parse_c1_row, read_c1
from .schedule import fraction_steps, samples_seen, total_steps
from .trainer import KitTrainer, check_speed_options, training_arguments

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- plan
@dataclass
class RunPlan:
    """Everything decided before a run starts."""

    params: Params
    subset: str
    cfg: TrainConfig
    train_file: Path
    base_model: str
    family: Family
    accel: AccelerateConfig
    global_batch: int
    on_gpu: bool

    @property
    def run_dir(self) -> Path:
        return self.params.stage_dir("train", self.subset)

    @property
    def settings(self) -> EncodeSettings:
        c = self.cfg
        return EncodeSettings(c.video_input, c.max_pixels, c.min_pixels, c.max_length, c.over_length,
                              c.default_video_fps)

    def run_hash(self) -> str:
        """Params of this run + the train file's bytes + the base model's files + the training code."""
        cfg = self.cfg.model_dump(mode="json")
        for k in ("runs", "run_overrides", "dataloader_workers"):
            cfg.pop(k, None)
        cfg["launch"] = {"procs": processes_per_node(self.accel) * self.cfg.launch.nnodes}
        root = self.params.run_dir  # paths inside the run are named relative to it: the key is portable
        data = {"train": cfg, "subset": self.subset, "file": portable_sha256(self.train_file, root),
                "base_model": portable_text(self.base_model, root),
                "base_model_files": model_fingerprint(str(self.base_model)),
                "code": code_version(["gdo_utils.train"]), "seed": self.params.seed}
        return hashlib.sha256(canonical_json(data).encode()).hexdigest()[:16]


def subset_file(params: Params, subset: str) -> Path:
    return params.stage_dir("subsets", subset, "train.jsonl")


def available_subsets(params: Params) -> list[str]:
    root = params.stage_dir("subsets")
    return sorted(p.parent.name for p in root.glob("*/train.jsonl")) if root.is_dir() else []


def _deep_merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def run_config(params: Params, subset: str) -> TrainConfig:
    """The train section with this subset's `run_overrides` applied (validated)."""
    over = params.train.run_overrides.get(subset)
    if not over:
        return params.train
    return TrainConfig.model_validate(_deep_merge(params.train.model_dump(mode="python"), over))


def base_model_of(params: Params, cfg: TrainConfig) -> str:
    """train.base_model or models.vlm.path; `run:` paths and local dirs become absolute, hub ids stay."""
    path = cfg.base_model or params.models.vlm.path
    if path.startswith(("run:", "toyworld:", "<FILL")) or Path(path).expanduser().exists():
        return str(resolve_path(params, path, "train.base_model").resolve())
    return path


def on_gpu_of(params: Params) -> bool:
    return params.device != "cpu" and torch.cuda.is_available()


def plan_run(params: Params, subset: str, check_launch: bool = True, check_data: bool = True) -> RunPlan:
    """Resolve and check a run before any work (clear errors for the usual mistakes)."""
    cfg = run_config(params, subset)
    train_file = subset_file(params, subset)
    if check_data:
        check_subset_file(params, subset, train_file)
    base = base_model_of(params, cfg)
    family = family_of_model_path(base)
    accel = load_accelerate_config(resolve_config_path(cfg.launch, _kit_root()))
    on_gpu = on_gpu_of(params)
    if check_launch:
        check_devices(accel, on_gpu)
        check_speed_options(cfg, on_gpu)
    if cfg.video_input == "video" and not family.video:
        raise ValueError(f"train.video_input=video: family {family.name} has no video input (use frames)")
    gb = global_batch(cfg.per_device_batch_size, cfg.grad_accum, accel, cfg.launch.nnodes)
    return RunPlan(params, subset, cfg, train_file.resolve(), base, family, accel, gb, on_gpu)


def check_subset_file(params: Params, subset: str, train_file: Path) -> None:
    """The subset's train.jsonl exists and has at least one row."""
    if not train_file.is_file():
        have = available_subsets(params)
        raise FileNotFoundError(f"subset {subset!r}: {train_file} not found (subsets with a train.jsonl: "
                                f"{', '.join(have) or 'none'}; run notebook 03 / gdo-repro subsets)")
    with open(train_file, encoding="utf-8") as fh:
        if not any(line.strip() for line in fh):
            raise EmptySubsetError(f"subset {subset!r}: {train_file} has no rows")


def _kit_root() -> Path | None:
    from ..nb import repo_root

    try:
        return repo_root()
    except FileNotFoundError:   # run from elsewhere: the checkout this package lives in
        here = Path(__file__).resolve().parents[2]
        return here if (here / "params").is_dir() else None


# ----------------------------------------------------------------------------- prepare
def _processor(base: str):
    from transformers import AutoProcessor

    proc = AutoProcessor.from_pretrained(base)
    proc.tokenizer.padding_side = "right"
    return proc


def prepare(plan: RunPlan, processor: Any | None = None) -> dict:
    """Check every row once and write data/{train,eval,skipped}.jsonl + prepare.json (skipped when up to date)."""
    ddir = plan.run_dir / "data"
    h = plan.run_hash()
    info_file = ddir / "prepare.json"
    if info_file.is_file() and read_json(info_file).get("run_hash") == h \
            and read_json(info_file).get("train_file") == str(plan.train_file):  # rows name media by absolute path
        return read_json(info_file)
    t0 = time.time()
    rows = read_c1(plan.train_file)
    processor = processor or _processor(plan.base_model)
    collator = Collator(processor, plan.family, plan.settings)
    settings, family = plan.settings, plan.family

    def encode(rec: TrainRecord) -> dict:
        return collator.encode(rec, load_media(rec, settings, family))

    prep: Prepared = prepare_rows(rows, encode, eval_ratio=plan.cfg.eval_ratio, seed=plan.cfg.data_seed,
                                  strict=plan.cfg.strict, workers=min(plan.cfg.dataloader_workers, 8))
    if not prep.train:
        raise EmptySubsetError(f"subset {plan.subset!r}: no trainable rows in {plan.train_file} "
                               f"({len(rows)} rows, {len(prep.skipped)} skipped: {_reasons(prep.skipped)})")
    for name, part in (("train", prep.train), ("eval", prep.eval)):
        write_jsonl(ddir / f"{name}.jsonl", ({**r.to_json(), "n_tokens": prep.lengths[r.id]} for r in part))
    write_jsonl(ddir / "skipped.jsonl", prep.skipped)
    info = {"run_hash": h, "train_file": str(plan.train_file), "rows": len(rows), "n_train": len(prep.train), "n_eval": len(prep.eval),
            "skipped": len(prep.skipped), "skipped_by_reason": _reasons(prep.skipped),
            "tokens_train": int(sum(prep.lengths[r.id] for r in prep.train)),
            "max_tokens": int(max(prep.lengths.values())), "seconds": round(time.time() - t0, 2)}
    write_json(info_file, info)
    return info


def _reasons(skipped: list[dict]) -> dict[str, int]:
    out: dict[str, int] = {}
    for s in skipped:
        out[s["reason"]] = out.get(s["reason"], 0) + 1
    return dict(sorted(out.items()))


def read_prepared(path: Path) -> tuple[list[TrainRecord], dict[str, int]]:
    rows, lengths = [], {}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            obj = json.loads(line)
            n = obj.pop("n_tokens")
            src, ln = obj.pop("source_file"), obj.pop("line")
            rec = parse_c1_row(obj, src, ln)
            rows.append(rec)
            lengths[rec.id] = n
    return rows, lengths


# ----------------------------------------------------------------------------- run info
def checkpoints_of(run_dir: Path) -> list[dict]:
    """Complete checkpoints (Trainer state readable) with samples seen and step, by step.

    A checkpoint folder whose trainer_state.json is missing or cut is left out with a warning naming the
    file: it is never listed, evaluated or resumed from (a resumed run saves that checkpoint again).
    """
    out = []
    for d in run_dir.glob("checkpoint-*"):
        if not d.is_dir():
            continue
        try:
            step = state_step(d)
        except BrokenCheckpointError as exc:
            log.warning("checkpoint left out: %s", exc)
            continue
        out.append({"name": d.name, "samples_seen": int(d.name.split("-")[1]), "step": step})
    return sorted(out, key=lambda c: c["step"])


def resume_point(run_dir: Path) -> str | None:
    """The checkpoint to resume from: the last one, if it holds the full training state; else None.

    A checkpoint saved with `train.save_only_model: true` has no optimizer, scheduler or RNG state: resuming
    from it would restart the LR schedule and the optimizer moments and end with other weights, so the run
    starts over from scratch instead (with a warning) and ends where an uninterrupted run ends.
    """
    done = checkpoints_of(run_dir)
    if not done:
        return None
    last = run_dir / done[-1]["name"]
    if not has_full_state(last):
        log.warning("%s holds the model only (train.save_only_model: true: no optimizer, scheduler or RNG state); "
                    "resuming from it would not end with the weights of an uninterrupted run: training again "
                    "from scratch", last)
        return None
    return str(last)


def write_run_info(plan: RunPlan, n_train: int, finished: bool, extra: dict | None = None) -> dict:
    info = {"subset": plan.subset, "train_file": str(plan.train_file), "base_model": plan.base_model,
            "family": plan.family.name, "global_batch": plan.global_batch, "n_train": n_train,
            "lora": plan.cfg.lora.enabled, "finished": finished, "checkpoints": checkpoints_of(plan.run_dir),
            "run_hash": plan.run_hash(), **(extra or {})}
    write_json(plan.run_dir / "run_info.json", info)
    return info


# ----------------------------------------------------------------------------- model
def load_model(plan: RunPlan):
    """The base model with the recipe's freezing, or wrapped with LoRA (peft)."""
    from transformers import AutoModelForImageTextToText

    kw: dict[str, Any] = {"dtype": getattr(torch, plan.cfg.load_dtype)}
    if plan.cfg.attn_implementation:
        kw["attn_implementation"] = plan.cfg.attn_implementation
    model = AutoModelForImageTextToText.from_pretrained(plan.base_model, **kw)
    model.config.use_cache = False
    c = plan.cfg
    if c.lora.enabled:
        from peft import LoraConfig, get_peft_model

        lc = LoraConfig(r=c.lora.r, lora_alpha=c.lora.alpha, lora_dropout=c.lora.dropout,
                        target_modules=lora_target_regex(plan.family),
                        modules_to_save=projector_module_names(plan.family))
        if c.gradient_checkpointing:
            model.enable_input_require_grads()
        model = get_peft_model(model, lc)
    else:
        counts = apply_freeze(model, plan.family, c.freeze.vision_tower, c.freeze.projector, c.freeze.llm)
        log.info("trainable parameters by part: %s", counts)
    return model


# ----------------------------------------------------------------------------- worker
def run_worker(params: Params, subset: str, extra_callbacks: list | None = None) -> dict:
    """Train one subset inside the current process (one rank of an accelerate launch, or alone)."""
    from transformers import set_seed

    plan = plan_run(params, subset, check_launch=False)
    ddir = plan.run_dir / "data"
    train_rows, lengths = read_prepared(ddir / "train.jsonl")
    eval_rows, _ = read_prepared(ddir / "eval.jsonl")
    n, B = len(train_rows), plan.global_batch
    steps = total_steps(n, B, plan.cfg.num_epochs)
    save_steps = fraction_steps(plan.cfg.checkpoint_fractions, n, B, plan.cfg.num_epochs)
    eval_steps = fraction_steps(plan.cfg.eval_fractions or plan.cfg.checkpoint_fractions, n, B, plan.cfg.num_epochs) \
        if eval_rows else []
    set_seed(plan.cfg.seed)
    processor = _processor(plan.base_model)
    model = load_model(plan)
    settings = plan.settings
    collator = Collator(processor, plan.family, settings, plan.cfg.text_only_batches)
    args = training_arguments(plan.cfg, plan.run_dir / ".trainer", use_cpu=not plan.on_gpu,
                              fsdp_checkpointing=bool(plan.accel.fsdp.get("fsdp_activation_checkpointing")),
                              has_eval=bool(eval_rows))
    is_main = args.process_index == 0
    finalize = lambda step: f"checkpoint-{samples_seen(step, n, B)}"  # noqa: E731
    if is_main:
        finalize_staged(plan.run_dir / ".trainer", plan.run_dir, finalize)
    args_barrier(args)
    on_saved: Callable[[int, str], None] = lambda step, name: write_run_info(plan, n, False)  # noqa: E731
    trainer = KitTrainer(
        model=model, args=args, train_dataset=TrainDataset(train_rows, settings, plan.family, lengths),
        eval_dataset=TrainDataset(eval_rows, settings, plan.family) if eval_rows else None,
        data_collator=collator, processing_class=processor, family=plan.family,
        projector_lr=plan.cfg.projector_lr, group_by_length=plan.cfg.group_by_length,
        callbacks=[SampleCheckpoints(plan.run_dir, save_steps, eval_steps, n, B, steps, on_saved), StepTimer(n, B),
                   *(extra_callbacks or [])],
    )
    resume = resume_point(plan.run_dir)
    if resume:
        log.info("%s: resuming from %s", subset, resume)
    t0 = time.time()
    trainer.train(resume_from_checkpoint=resume)
    if not is_main:
        return {}
    from .logs import log_table, plot_curves
    from ..plots import save_figure

    table = log_table(trainer.state.log_history)
    write_parquet(plan.run_dir / "train_log.parquet", table)
    import matplotlib.pyplot as plt

    fig = plot_curves({subset: table}, title=subset)
    figs = save_figure(fig, plan.run_dir / "train_curves")
    plt.close(fig)
    info = write_run_info(plan, n, True, {"steps": steps, "n_eval": len(eval_rows),
                                          "prepare": read_json(ddir / "prepare.json")})
    write_manifest(plan.run_dir, stage="train", params_hash=plan.run_hash(), params_file=params.source_file,
                   wall_time_s=time.time() - t0, outputs=[plan.run_dir / "train_log.parquet",
                                                          plan.run_dir / "run_info.json", *figs],
                   extra={"subset": subset, "global_batch": B, "n_train": n})
    return info


def args_barrier(args: Any) -> None:
    import torch.distributed as dist

    if args.world_size > 1 and dist.is_available() and dist.is_initialized():
        dist.barrier()


# ----------------------------------------------------------------------------- parent
def run_status(plan: RunPlan) -> str:
    """'done' (finished, same hash), 'resume' (same hash, unfinished), 'stale' (other params) or 'new'."""
    f = plan.run_dir / "run_info.json"
    if not f.is_file():
        return "new" if not plan.run_dir.exists() else ("resume" if _prep_hash(plan) == plan.run_hash() else "stale")
    info = read_json(f)
    if info.get("run_hash") != plan.run_hash():
        return "stale"
    return "done" if info.get("finished") else "resume"


def _prep_hash(plan: RunPlan) -> str | None:
    p = plan.run_dir / "data" / "prepare.json"
    return read_json(p).get("run_hash") if p.is_file() else None


def train_subset(params: Params, subset: str, *, force: bool = False, overrides: list[str] | None = None,
                 params_file: str | None = None, stream: Callable[[str], None] | None = None) -> dict:
    """Plan, prepare, launch (in process or `accelerate launch`) and return the run's run_info."""
    plan = plan_run(params, subset)
    status = run_status(plan)
    if status == "done" and not force:
        log.info("%s: up to date, skipped", subset)
        info = read_json(plan.run_dir / "run_info.json")
        where = {"train_file": str(plan.train_file), "base_model": plan.base_model}
        if any(info.get(k) != v for k, v in where.items()):  # the run folder moved (another output_root)
            info.update(where)
            write_json(plan.run_dir / "run_info.json", info)
        return info
    if status == "stale" or force:
        shutil.rmtree(plan.run_dir, ignore_errors=True)
    info = prepare(plan)
    log.info("%s: %d train / %d held-out rows, %d skipped %s; global batch %d -> %d steps", subset, info["n_train"],
             info["n_eval"], info["skipped"], info["skipped_by_reason"], plan.global_batch,
             total_steps(info["n_train"], plan.global_batch, plan.cfg.num_epochs))
    procs = processes_per_node(plan.accel) * plan.cfg.launch.nnodes
    if plan.cfg.launch.in_process and procs == 1:
        return run_worker(params, subset)
    if params_file is None:
        raise ValueError("a multi-process launch needs the params file path")
    cmd = launch_command(plan.accel, plan.cfg.launch, plan.family, str(Path(params_file).resolve()), subset,
                         overrides, python=_accelerate_bin())
    log.info("launching: %s", format_command(cmd))
    run_streamed(cmd, stream)
    return read_json(plan.run_dir / "run_info.json")


def _accelerate_bin() -> str:
    cand = Path(sys.executable).with_name("accelerate")
    return str(cand) if cand.is_file() else "accelerate"


def run_streamed(cmd: list[str], stream: Callable[[str], None] | None = None) -> None:
    """Run a command, passing each output line to `stream` (default: print); raise on failure."""
    emit = stream or (lambda s: print(s, end="", flush=True))
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    assert proc.stdout is not None
    tail: list[str] = []
    for line in proc.stdout:
        emit(line)
        tail = (tail + [line])[-20:]
    if proc.wait() != 0:
        raise RuntimeError(f"training command failed (exit {proc.returncode}): {format_command(cmd)}\n" + "".join(tail))


def train_runs(params: Params, subsets: list[str] | None = None, *, force: bool = False,
               overrides: list[str] | None = None, params_file: str | None = None,
               skip_missing: bool = False) -> dict[str, dict]:
    """Train every subset in `train.runs` (or the given ones); optionally skip subsets whose file is absent."""
    names = subsets or params.train.runs
    if not names:
        raise ValueError(f"{params.source_file}: train.runs is empty (name the subsets to train)")
    out = {}
    for s in names:
        if skip_missing and not subset_file(params, s).is_file():
            log.warning("subset %s: %s is absent, not trained (produce it first)", s, subset_file(params, s))
            out[s] = {"subset": s, "missing": True}
            continue
        out[s] = train_subset(params, s, force=force, overrides=overrides, params_file=params_file)
    return out


def print_launch(params: Params, subset: str, params_file: str, overrides: list[str] | None = None) -> str:
    """The exact `accelerate launch ...` command for a subset (no device check: printable anywhere)."""
    plan = plan_run(params, subset, check_launch=False, check_data=False)
    return format_command(launch_command(plan.accel, plan.cfg.launch, plan.family, params_file, subset, overrides))


def load_run_logs(params: Params, subsets: list[str]) -> dict:
    """train_log.parquet of each finished run among `subsets` (name -> DataFrame)."""
    from ..io import read_parquet

    out = {}
    for s in subsets:
        f = params.stage_dir("train", s, "train_log.parquet")
        if f.is_file():
            out[s] = read_parquet(f)
    return out


__all__ = ["train_subset", "train_runs", "run_worker", "print_launch", "plan_run", "prepare", "RunPlan",
           "EmptySubsetError", "load_run_logs", "params_hash"]
