"""One training run per subset: plan and check, prepare the rows, launch, and write the run folder (C2).

    outputs/<run>/train/<subset>/
      run_info.json            subset, train file, base model, family, global batch, n_train, lora, recipe,
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
from ..config import Params, ParamsError, TrainConfig, canonical_json, load_params, params_hash, resolve_path
from ..io import read_json, write_json, write_jsonl, write_manifest, write_parquet
from .callbacks import (BrokenCheckpointError, SampleCheckpoints, StepTimer, finalize_staged,
                        has_full_state, state_step)
from .collate import Collator
from .data import Prepared, TrainDataset, prepare_rows
from .encode import EncodeSettings, load_media
from .families import (Family, UnknownFamilyError, apply_freeze, family_of, family_of_model_path, lora_target_regex,
                       projector_module_names)
from .launch import (AccelerateConfig, check_devices, format_command, global_batch, launch_command,
                     load_accelerate_config, processes_per_node, resolve_config_path)
from .recipes import RecipeError, resolve_run_config
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


def refuse_unknown_subsets(params: Params, names: list[str]) -> None:
    """Before any work: a subset name the params do not produce and with no train.jsonl on disk is a typo."""
    from ..catalog import expected_subsets

    known = expected_subsets(params)
    bad = [s for s in names if s not in known and not subset_file(params, s).is_file()]
    if bad:
        raise ParamsError(f"{params.source_file}: train.runs: unknown subset(s) {bad}; these params produce "
                          f"{sorted(known)}, and a hand-made subset needs its outputs/<run>/subsets/<name>/train.jsonl")


def available_subsets(params: Params) -> list[str]:
    root = params.stage_dir("subsets")
    return sorted(p.parent.name for p in root.glob("*/train.jsonl")) if root.is_dir() else []


def run_config(params: Params, subset: str) -> TrainConfig:
    """This run's settings: its recipe preset, the train section's explicit keys, its run_overrides (validated)."""
    try:
        return resolve_run_config(params.train, subset)
    except RecipeError as err:
        raise RecipeError(f"{params.source_file}: train.recipe / train.run_overrides.{subset}: {err}") from None


def base_model_of(params: Params, cfg: TrainConfig) -> str:
    """train.base_model or models.vlm.path; `run:` paths and local dirs become absolute, hub ids stay."""
    path = cfg.base_model or params.models.vlm.path
    if path.startswith(("run:", "toyworld:", "<FILL")) or Path(path).expanduser().exists():
        return str(resolve_path(params, path, "train.base_model").resolve())
    return path


def on_gpu_of(params: Params) -> bool:
    return params.device != "cpu" and torch.cuda.is_available()


def plan_run(params: Params, subset: str, check_launch: bool = True, check_data: bool = True,
             missing_model_notes: list[str] | None = None) -> RunPlan:
    """Resolve and check a run before any work (clear errors for the usual mistakes).

    With `missing_model_notes` (a list), a base model that is not on this machine is not an error: the family is
    read from its name and the list gets what could not be checked (for printing a launch command anywhere).
    """
    cfg = run_config(params, subset)
    train_file = subset_file(params, subset)
    if check_data:
        check_subset_file(params, subset, train_file)
    try:
        base = base_model_of(params, cfg)
        family = family_of_model_path(base)
    except (OSError, ValueError) as exc:   # not downloaded / not cached (OSError), unfilled path (ParamsError)
        if missing_model_notes is None:
            raise
        base = cfg.base_model or params.models.vlm.path
        family, notes = _family_without_model(base, exc)
        missing_model_notes.extend(notes)
    accel = load_accelerate_config(resolve_config_path(cfg.launch, _kit_root()))
    on_gpu = on_gpu_of(params)
    if check_launch:
        check_devices(accel, on_gpu)
        check_speed_options(cfg, on_gpu)
    if cfg.video_input == "video" and not family.video:
        raise ValueError(f"train.video_input=video: family {family.name} has no video input (use frames)")
    cfg = with_accumulation(cfg, processes_per_node(accel) * cfg.launch.nnodes)
    gb = global_batch(cfg.per_device_batch_size, cfg.grad_accum, accel, cfg.launch.nnodes)
    return RunPlan(params, subset, cfg, train_file.resolve(), base, family, accel, gb, on_gpu)


def with_accumulation(cfg: TrainConfig, procs: int) -> TrainConfig:
    """A recipe with a fixed global batch (LLaVA-1.5: 128) gets the accumulation that reaches it on `procs` processes."""
    if cfg.global_batch is None:
        return cfg
    per_step = cfg.per_device_batch_size * procs
    if cfg.global_batch % per_step:
        raise ValueError(f"train.global_batch {cfg.global_batch} is not a multiple of per-device batch "
                         f"{cfg.per_device_batch_size} x {procs} processes")
    return cfg.model_copy(update={"grad_accum": cfg.global_batch // per_step})


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
            "lora": plan.cfg.lora.enabled, "recipe": plan.cfg.recipe, "finished": finished, "checkpoints": checkpoints_of(plan.run_dir),
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
    process_group(plan)   # before the rows are read and the model is loaded (FSDP cpu_ram_efficient_loading)
    ddir = plan.run_dir / "data"
    train_rows, lengths = read_prepared(ddir / "train.jsonl")
    eval_rows, _ = read_prepared(ddir / "eval.jsonl")
    n, B = len(train_rows), plan.global_batch
    steps = total_steps(n, B, plan.cfg.num_epochs)
    save_steps = fraction_steps(plan.cfg.checkpoint_fractions, n, B, plan.cfg.num_epochs)
    eval_steps = fraction_steps(plan.cfg.eval_fractions or plan.cfg.checkpoint_fractions, n, B, plan.cfg.num_epochs) \
        if eval_rows else []
    set_seed(plan.cfg.seed)
    args = training_arguments(plan.cfg, plan.run_dir / ".trainer", use_cpu=not plan.on_gpu,
                              fsdp_checkpointing=bool(plan.accel.fsdp.get("fsdp_activation_checkpointing")),
                              has_eval=bool(eval_rows))
    processor = _processor(plan.base_model)
    model = load_model(plan)
    settings = plan.settings
    collator = Collator(processor, plan.family, settings, plan.cfg.text_only_batches)
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
        group_by_modality=plan.cfg.group_by_modality,
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


def process_group(plan: RunPlan):
    """accelerate's PartialState (the process group of a launched run) before anything is read or loaded.

    transformers' from_pretrained loads full weights only on each node's local rank 0 when the group exists
    and FSDP's cpu_ram_efficient_loading is on (one CPU copy per node, not one per process); the
    TrainingArguments reuse this state.
    """
    from accelerate import PartialState

    return PartialState(cpu=not plan.on_gpu)


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
    """Plan, prepare (node 0) or wait for node 0, launch (in process or `accelerate launch`), return run_info."""
    plan = plan_run(params, subset)
    status = run_status(plan)
    if status == "done" and not force:
        log.info("%s: up to date, skipped", subset)
        info = read_json(plan.run_dir / "run_info.json")
        where = {"train_file": str(plan.train_file), "base_model": plan.base_model}
        if any(info.get(k) != v for k, v in where.items()):  # the run folder moved (another output_root)
            info.update(where)
            if plan.cfg.launch.node_rank == 0:   # only node 0 writes in the run folder
                write_json(plan.run_dir / "run_info.json", info)
        return info
    info = prepare_shared(plan, status, force=force)
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


def prepare_shared(plan: RunPlan, status: str, *, force: bool = False, node_rank: int | None = None,
                   poll_s: float = 2.0) -> dict:
    """Only node 0 clears (stale or forced) and prepares the run folder; other nodes wait for its marker.

    The marker is data/prepare.json carrying this run's hash (written atomically, last). A node other than
    0 never deletes or writes there. With --force, a node other than 0 may see the previous marker; its
    workers still read the rows only after the process group exists, i.e. after node 0's workers joined,
    which they do once node 0 has prepared.
    """
    node = plan.cfg.launch.node_rank if node_rank is None else node_rank
    if node != 0:
        return wait_for_prepared(plan, plan.cfg.launch.prepare_timeout_s, poll_s)
    if status == "stale" or force:
        shutil.rmtree(plan.run_dir, ignore_errors=True)
    return prepare(plan)


def wait_for_prepared(plan: RunPlan, timeout_s: float, poll_s: float = 2.0) -> dict:
    """Wait until node 0 has written data/prepare.json with this run's hash; a clear error after timeout_s."""
    marker = plan.run_dir / "data" / "prepare.json"
    h, t0 = plan.run_hash(), time.time()
    while True:
        if marker.is_file():
            info = read_json(marker)
            if info.get("run_hash") == h:
                return info
        if time.time() - t0 > timeout_s:
            raise TimeoutError(f"{plan.subset}: node {plan.cfg.launch.node_rank} waited {timeout_s:.0f}s for node 0 "
                               f"to prepare {marker} (run hash {h}); start node 0 with the same params "
                               f"(train.launch.prepare_timeout_s sets the wait)")
        time.sleep(poll_s)


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
    refuse_unknown_subsets(params, names)
    out = {}
    for s in names:
        if skip_missing and not subset_file(params, s).is_file():
            log.warning("subset %s: %s is absent, not trained (produce it first)", s, subset_file(params, s))
            out[s] = {"subset": s, "missing": True}
            continue
        out[s] = train_subset(params, s, force=force, overrides=overrides, params_file=params_file)
    return out


def print_launch(params: Params, subset: str, params_file: str, overrides: list[str] | None = None) -> str:
    """A comment line (start model, recipe) + the exact `accelerate launch ...` command (no device or data check).

    `overrides` are applied to the params file (the command carries them as `--set`), so a notebook can print
    the 8-GPU command with `["train.launch.config=fsdp_8gpu"]` while running on CPU. When the base model is not
    on this machine (a fresh clone, a hub id not in the cache) the family comes from the model's name and the
    lines after the command (shell comments) say what could not be checked.
    """
    if overrides:
        params = load_params(params_file, overrides)
    notes: list[str] = []
    plan = plan_run(params, subset, check_launch=False, check_data=False, missing_model_notes=notes)
    cmd = format_command(launch_command(plan.accel, plan.cfg.launch, plan.family, params_file, subset, overrides))
    return "\n".join([launch_summary(plan), cmd, *(f"# {n}" for n in notes)])

def start_description(params: Params, base_model: str) -> str:
    """The base model, and its parts when it is the assemble-llava output (read from params, no files needed)."""
    a = params.assemble_llava
    try:
        assembled = str(resolve_path(params, a.out, "assemble_llava.out").resolve()) == base_model
    except ValueError:
        assembled = False
    if not assembled:
        return base_model
    return (f"{base_model} = gdo-repro assemble-llava of language model {a.language_model}, "
            f"vision tower {a.vision_tower}, projector {a.projector}")


def launch_summary(plan: RunPlan) -> str:
    """One comment line: the run's starting model and the recipe values it trains with."""
    c = plan.cfg
    procs = processes_per_node(plan.accel) * c.launch.nnodes
    tuned = f"LoRA r {c.lora.r} / alpha {c.lora.alpha} / dropout {c.lora.dropout:g}" if c.lora.enabled else "full"
    frozen = [k for k, v in c.freeze.model_dump().items() if v]
    return (f"# {plan.subset}: start {start_description(plan.params, plan.base_model)}; recipe {c.recipe}: "
            f"lr {c.learning_rate:g}" + (f", projector lr {c.projector_lr:g}" if c.projector_lr else "")
            + f", {tuned}" + (f", frozen {'/'.join(frozen)}" if frozen else "")
            + f", AdamW betas ({c.adam_beta1:g}, {c.adam_beta2:g}), weight decay {c.weight_decay:g}, "
            f"warmup {c.warmup_ratio:g}, {c.lr_scheduler}, grad clip {c.max_grad_norm:g}, {c.num_epochs} epoch(s), "
            f"max length {c.max_length}, global batch {plan.global_batch} = {c.per_device_batch_size} x {procs} "
            f"processes x {c.grad_accum} accumulation" + (", batches grouped by modality" if c.group_by_modality else ""))


def _family_without_model(base: str, exc: Exception) -> tuple[Family, list[str]]:
    """The family a model id names, and the notes saying what was not checked (UnknownFamilyError if none)."""
    from ..export_recipes import family_from_name

    name = family_from_name(base)
    reason = str(exc).splitlines()[0]
    if name is None:
        raise UnknownFamilyError(f"{base}: not on this machine ({reason}) and its name names no known family "
                                 f"(qwen3_vl, qwen2_5_vl, llava); download it or point train.base_model at a local copy")
    fam = family_of(name)
    return fam, [f"not checked: the base model {base} is not on this machine ({reason})",
                 f"its family ({fam.name}, FSDP wraps {', '.join(fam.layer_classes)}) was read from its name, not "
                 f"its config.json; the subset file and the devices were not checked either"]


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
