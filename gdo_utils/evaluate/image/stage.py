"""The image suite stage: OFA training runs' checkpoints on the image benchmarks -> C3 outputs.

Same folders, results JSON shape and trajectory as the video stage (gdo_utils.evaluate.stage):
outputs/<run>/eval/<subset>/<checkpoint>/<benchmark>.{json,log.parquet}. The runs are the OFA
subsets (`ofa_*` training runs, or `evaluate.image.runs`), by default only their final checkpoint
(the OFA tables score the finished model; `evaluate.image.checkpoints: all` scores every one).

Input as the release's lmms-eval chat Qwen3-VL wrapper gives an image: one user turn [image, text],
no system prompt, the image prepared for the model's family (gdo_utils.imageprep: Qwen resized the
qwen-vl-utils way within [image.min_pixels, image.max_pixels]; LLaVA-1.5 padded to a square with its
image mean, then resized to 336 by its processor, LLaVA's `image_aspect_ratio: pad`), greedy, each task's own max_new_tokens (lmms-eval
0.5.0 YAML) unless `evaluate.image.max_new_tokens` caps it. Sharded and resumable at question
granularity through gdo_utils.shards, like the video engine; a finished pair is skipped.
"""
from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path
from typing import Any, Sequence

import pandas as pd
import pyarrow as pa
from PIL import Image

from ...cache import code_version
from ...config import Params, params_hash, resolve_path
from ...imageprep import ImagePrep, image_prep
from ...io import read_json, read_parquet, write_json, write_parquet, write_text
from ...shards import dist_info, merge_parts, run_sharded
from ..stage import (
    Checkpoint,
    TrainRun,
    load_checkpoint_model,
    checkpoint_fingerprint,
    eval_attn,
    eval_key_parts,
    read_run,
    results_paths,
)
from ..generation import barrier, batch_replies, generate_replies, prompt_hash, prepare_parts, token_order
from ..types import UnknownBenchmarkError, refuse_duplicate_ids
from . import IMAGE_BENCHMARKS, ImageBenchmark
from .base import ImageQuestion, MetricRow

log = logging.getLogger(__name__)
LOG_SCHEMA = pa.schema([
    ("question_id", pa.string()), ("benchmark", pa.string()), ("subtask", pa.string()), ("group", pa.string()),
    ("prompt", pa.string()), ("prompt_hash", pa.string()), ("reply", pa.string()), ("gold", pa.string()),
    ("parsed_release", pa.string()), ("parsed_robust", pa.string()),
    ("score_release", pa.float64()), ("score_robust", pa.float64()), ("media_error", pa.string()),
])
LOG_COLUMNS = LOG_SCHEMA.names
OFA_PREFIX = "ofa_"


def gold_text(gold: str | tuple[str, ...]) -> str:
    """The gold answer as one log string (VQA's ten human answers joined by ' | ')."""
    return gold if isinstance(gold, str) else " | ".join(gold)


def contract_id(params: Params) -> str:
    c = params.evaluate.image
    tokens = "task" if c.max_new_tokens is None else str(c.max_new_tokens)
    system = "-system" if params.evaluate.system_prompt is not None else ""
    return f"image-px{c.min_pixels}..{c.max_pixels}-greedy{tokens}-release{system}"


def max_new_tokens(params: Params, bench: ImageBenchmark) -> int:
    cap = params.evaluate.image.max_new_tokens
    return bench.max_new_tokens if cap is None else min(cap, bench.max_new_tokens)


# ----------------------------------------------------------------------------- questions and runs
def load_image_questions(params: Params, name: str) -> list[ImageQuestion]:
    """A benchmark's questions from evaluate.data.<name> (annotations + media_root; toyworld:/run: allowed)."""
    if name not in IMAGE_BENCHMARKS:
        raise UnknownBenchmarkError(f"unknown image benchmark {name!r}; registered: {sorted(IMAGE_BENCHMARKS)}")
    d = params.evaluate.data.get(name)
    if d is None:
        raise FileNotFoundError(f"{params.source_file}: evaluate.data.{name} is not set (annotations + media_root)")
    ann = resolve_path(params, d.annotations, f"evaluate.data.{name}.annotations").resolve()
    media = resolve_path(params, d.media_root, f"evaluate.data.{name}.media_root").resolve()
    qs = IMAGE_BENCHMARKS[name].load(ann, media)
    refuse_duplicate_ids(name, ann, [q.qid for q in qs])
    return qs[: d.limit] if d.limit else qs


def image_runs(params: Params, run_dirs: Sequence[str | Path] | None = None) -> list[TrainRun]:
    """OFA training runs (`ofa_*` or named in evaluate.image.runs; of `run_dirs` when given), final checkpoint
    unless `checkpoints: all`."""
    cfg = params.evaluate.image
    train = params.stage_dir("train")
    if run_dirs:   # only the OFA runs among them (a GDO video subset is not scored on the image suite)
        folders = [Path(d) for d in run_dirs if Path(d).name.startswith(OFA_PREFIX) or Path(d).name in cfg.runs]
    elif cfg.runs:
        folders = [train / r for r in cfg.runs]
        missing = [str(f) for f in folders if not (f / "run_info.json").is_file()]
        if missing:
            raise FileNotFoundError(f"evaluate.image.runs: no run_info.json in {missing}")
    else:
        folders = sorted(p.parent for p in train.glob(f"{OFA_PREFIX}*/run_info.json")) if train.is_dir() else []
    runs = []
    for f in folders:
        run = read_run(f, include_base=cfg.checkpoints == "all" and params.evaluate.base_model)
        cks = run.checkpoints if cfg.checkpoints == "all" else [c for c in run.checkpoints if c.name != "base"][-1:]
        if not cks:
            log.warning("%s: no checkpoint on disk: not evaluated on the image suite", f)
            continue
        runs.append(TrainRun(run.subset, run.folder, run.eval_dir, cks))
    return runs


# ----------------------------------------------------------------------------- generation
def eval_image(q: ImageQuestion, prep: ImagePrep) -> Image.Image:
    """The image as the model's family hands it to the processor (gdo_utils.imageprep: Qwen resize, LLaVA pad)."""
    return prep.prepare(q.image())


def model_image_prep(vlm: Any, min_pixels: int, max_pixels: int) -> ImagePrep:
    """The evaluated model's family preparation (from its config's model_type and its processor)."""
    return image_prep(vlm.processor, vlm.model.config.model_type, min_pixels, max_pixels)


def generate_image_replies(vlm: Any, prompts: Sequence[str], images: Sequence[Image.Image], max_new: int,
                          system_prompt: str | None = None, proc_kwargs: dict | None = None) -> list[str]:
    """Greedy replies for a batch of prepared images (`proc_kwargs`: the family's, e.g. Qwen's do_resize=False)."""
    kw = {"do_resize": False} if proc_kwargs is None else proc_kwargs
    return generate_replies(vlm, prompts, "image", {"images": list(images), **kw}, max_new, system_prompt)


def log_row(q: ImageQuestion, bench: ImageBenchmark, reply: str, media_error: str | None) -> dict:
    """One per-question log row: the reply scored under both parse modes."""
    rel = bench.score(q, reply, "release") if media_error is None else ("", 0.0)
    rob = bench.score(q, reply, "robust") if media_error is None else ("", 0.0)
    return {"question_id": q.qid, "benchmark": bench.name, "subtask": q.subtask,
            "group": str(q.meta.get("group", q.qid)), "prompt": q.prompt, "prompt_hash": prompt_hash(q.prompt),
            "reply": reply, "gold": gold_text(q.gold), "parsed_release": rel[0], "parsed_robust": rob[0],
            "score_release": float(rel[1]), "score_robust": float(rob[1]), "media_error": media_error}


class ImageWorker:
    """Turns a batch of question ids into log rows (an unreadable image: a row with media_error, no model call)."""

    def __init__(self, vlm: Any, bench: ImageBenchmark, questions: dict[str, ImageQuestion], params: Params) -> None:
        self.vlm, self.bench, self.q = vlm, bench, questions
        c = params.evaluate.image
        self.prep, self.max_new = model_image_prep(vlm, c.min_pixels, c.max_pixels), max_new_tokens(params, bench)
        self.system_prompt = params.evaluate.system_prompt

    def __call__(self, batch_ids: Sequence[str]) -> list[dict]:
        rows: dict[str, dict] = {}
        ok: list[tuple[ImageQuestion, Image.Image]] = []
        for qid in batch_ids:
            q = self.q[qid]
            try:
                ok.append((q, eval_image(q, self.prep)))
            except (OSError, ValueError) as exc:
                rows[qid] = log_row(q, self.bench, "", f"unreadable_media: {exc}")

        def run(pos: Sequence[int]) -> dict[int, str]:
            replies = generate_image_replies(self.vlm, [ok[j][0].prompt for j in pos], [ok[j][1] for j in pos],
                                             self.max_new, self.system_prompt, self.prep.processor_kwargs)
            return dict(zip(pos, replies))

        replies, errors = batch_replies(run, range(len(ok)))
        for j, (q, _) in enumerate(ok):
            rows[q.qid] = log_row(q, self.bench, "", errors[j]) if j in errors \
                else log_row(q, self.bench, replies[j], None)
        return [rows[i] for i in batch_ids]


# ----------------------------------------------------------------------------- scoring a log
def scored_view(logdf: pd.DataFrame, mode: str) -> pd.DataFrame:
    """The log with the `parsed` / `score` columns of one parse mode (what each benchmark's aggregate reads)."""
    return logdf.assign(parsed=logdf[f"parsed_{mode}"], score=logdf[f"score_{mode}"])


def metric_rows(logdf: pd.DataFrame, bench: ImageBenchmark, mode: str) -> list[MetricRow]:
    return bench.aggregate(scored_view(logdf, mode)) if len(logdf) else []


def results_dict(run: TrainRun, ck: Checkpoint, bench: ImageBenchmark, logdf: pd.DataFrame, mode: str,
                 contract: str, engine: str = "kit", extra: dict | None = None) -> dict:
    """The results JSON (the video stage's shape: accuracy, n, levels) for one (checkpoint, benchmark)."""
    rows = metric_rows(logdf, bench, mode)
    overall = next((r for r in rows if r.level == "overall"), None)
    other = {m: next((r.accuracy for r in metric_rows(logdf, bench, m) if r.level == "overall"), None)
             for m in ("release", "robust")}
    return {"benchmark": bench.name, "subset": run.subset, "checkpoint": ck.name, "samples_seen": ck.samples_seen,
            "model": ck.path, "base_model": ck.base_model, "engine": engine, "contract": contract,
            "suite": "image", "lmms_task": bench.lmms_task, "headline": bench.headline,
            "needs_judge": bench.needs_judge, "extraction": mode, "n_questions": int(len(logdf)),
            "n_missing": int(logdf["media_error"].notna().sum()) if "media_error" in logdf else 0,
            "accuracy": None if overall is None else overall.accuracy,
            "n": 0 if overall is None else overall.n,
            "levels": [{"level": r.level, "subtask": r.subtask, "accuracy": r.accuracy, "n": r.n}
                       for r in rows if r.level != "overall"],
            "overall_by_extraction": other, **(extra or {})}


# ----------------------------------------------------------------------------- one (checkpoint, benchmark)
def generation_hash(params: Params, bench: ImageBenchmark, model_fp: str, keys: tuple[dict, dict] | None = None) -> str:
    """What the replies depend on: pixels, tokens, the data (paths, annotation content, image listing), the model's
    files, the runtime (eval_key_parts) and the code."""
    c = params.evaluate.image
    inputs, runtime = keys if keys is not None else (None, None)
    h = {"inputs": inputs, "runtime": runtime, "px": [c.min_pixels, c.max_pixels], "max_new": max_new_tokens(params, bench), "bench": bench.name,
         "data": params.evaluate.data[bench.name].model_dump(mode="json"), "model": model_fp,
         "code": code_version(["gdo_utils.evaluate.image.stage", bench.aggregate.__module__])}
    if params.evaluate.system_prompt is not None:   # only when set: earlier results keep their hash
        h["system_prompt"] = params.evaluate.system_prompt
    return params_hash(h)


def evaluate_pair(params: Params, run: TrainRun, ck: Checkpoint, bench: ImageBenchmark,
                  questions: list[ImageQuestion], vlm: Any, gen_h: str, progress: bool = True) -> dict | None:
    """Generate this rank's share of one (checkpoint, benchmark); rank 0 merges, scores and writes."""
    rank, _ = dist_info()
    res, logp, parts = results_paths(run.eval_dir, run.subset, ck.name, bench.name)
    prepare_parts(parts, gen_h)
    qmap = {q.qid: q for q in questions}
    order = token_order({q.qid: q.prompt for q in questions}, vlm.processor.tokenizer)
    t0 = time.time()
    run_sharded(order, ImageWorker(vlm, bench, qmap, params), parts, id_col="question_id",
                batch_size=params.evaluate.batch_size, part_rows=params.evaluate.part_rows, schema=LOG_SCHEMA,
                desc=f"{run.subset}/{ck.name}/{bench.name}", progress=progress)
    barrier()
    if rank != 0:
        barrier()
        return None
    merged = merge_parts(parts, qmap, "question_id")[LOG_COLUMNS]
    out = results_dict(run, ck, bench, merged, params.evaluate.extraction, contract_id(params),
                       extra={"generation_hash": gen_h, "seconds": round(time.time() - t0, 2)})
    sub = bench.submission(merged) if bench.submission else None
    if bench.submission:
        out["split"] = "val" if sub is None else "test-dev"
    if sub is not None:   # VQAv2 test-dev: the file to upload to the EvalAI server
        out["submission_file"] = str(res.with_name(f"{bench.name}.submission.json"))
        write_json(res.with_name(f"{bench.name}.submission.json"), sub)
    write_parquet(logp, merged)
    write_json(res, out)
    shutil.rmtree(parts)
    barrier()
    return out


def run_image_suite(params: Params, run_dirs: Sequence[str | Path] | None = None, progress: bool = True) -> dict:
    """Evaluate the OFA runs on evaluate.image.benchmarks; returns what was evaluated (rank 0)."""
    cfg = params.evaluate.image
    names = list(cfg.benchmarks)
    runs = image_runs(params, run_dirs) if names else []
    if not runs:
        return {"runs": [], "evaluated": [], "note": "no image benchmark or no OFA training run"}
    qs = {n: load_image_questions(params, n) for n in names}
    keys = {n: eval_key_parts(params, n, [q.image_path for q in qs[n] if q.image_path]) for n in names}
    written: list[dict] = []
    t0 = time.time()
    for run in runs:
        for ck in run.checkpoints:
            fp = checkpoint_fingerprint(ck)
            todo = []
            for n in names:
                bench = IMAGE_BENCHMARKS[n]
                gen_h = generation_hash(params, bench, fp, keys[n])
                res, logp, _ = results_paths(run.eval_dir, run.subset, ck.name, n)
                if res.is_file() and logp.is_file() and read_json(res).get("generation_hash") == gen_h:
                    r = read_json(res)
                    if r.get("extraction") != params.evaluate.extraction and dist_info()[0] == 0:
                        r2 = results_dict(run, ck, bench, read_parquet(logp), params.evaluate.extraction,
                                          r["contract"], extra={"generation_hash": gen_h, "seconds": 0.0})
                        write_json(res, r2)
                        written.append(r2)
                    continue
                todo.append((bench, gen_h))
            if not todo:
                continue
            vlm = load_checkpoint_model(ck, params.models.vlm.dtype, params.device, eval_attn(params))
            for bench, gen_h in todo:
                r = evaluate_pair(params, run, ck, bench, qs[bench.name], vlm, gen_h, progress)
                if r is not None:
                    written.append(r)
            del vlm
    return {"runs": [r.subset for r in runs], "questions": {n: len(v) for n, v in qs.items()},
            "evaluated": [{k: r[k] for k in ("subset", "checkpoint", "benchmark", "accuracy", "n")} for r in written],
            "seconds": round(time.time() - t0, 2), "eval_dirs": sorted({str(r.eval_dir) for r in runs})}


# ----------------------------------------------------------------------------- intervals of the end scores
INTERVALS_FILE = "image_intervals.csv"   # eval/: each image subset's last-checkpoint score with a bootstrap interval
INTERVAL_COLUMNS = ["subset", "checkpoint", "benchmark", "score", "ci95_low", "ci95_high", "units", "method"]


def _last_logs(eval_dir: Path, traj: pd.DataFrame, subset: str, params: Params) -> tuple[str | None, dict]:
    """(last checkpoint, benchmark -> scored log) of one subset's image benchmarks (the Rel stage's checkpoint)."""
    from ..rel import final_scores

    fin = final_scores(traj, subset, params.evaluate.image.benchmarks)
    if fin.empty:
        return None, {}
    logs = {}
    for r in fin.itertuples():
        f = eval_dir / subset / str(r.checkpoint) / f"{r.benchmark}.log.parquet"
        if f.is_file():
            logs[r.benchmark] = scored_view(pd.read_parquet(f), params.evaluate.extraction)
    return str(fin["checkpoint"].iloc[-1]), logs


def last_logs(eval_dir: Path, traj: pd.DataFrame, params: Params) -> dict[str, tuple[str | None, dict]]:
    """Every image subset's (last checkpoint, benchmark -> scored log), read once for both interval tables."""
    image = traj[traj["benchmark"].isin(list(params.evaluate.image.benchmarks))] if len(traj) else traj
    return {s: _last_logs(eval_dir, traj, s, params) for s in (sorted(set(image["subset"])) if len(image) else [])}


def score_intervals(logs_by_subset: dict[str, tuple[str | None, dict]], params: Params) -> pd.DataFrame:
    """95% bootstrap intervals of every subset's last image-benchmark scores (gdo_utils.evaluate.bootstrap)."""
    from ..bootstrap import checked_units, observed_score, score_interval

    rows = []
    for subset, (ck, logs) in logs_by_subset.items():
        for b, log in sorted(logs.items()):
            units = checked_units(log, b, IMAGE_BENCHMARKS[b].aggregate)
            if units is None:
                continue  # a score the units cannot reproduce gets no interval rather than a wrong one
            score = observed_score(units)
            lo, hi = score_interval(units, seed=params.seed)
            rows.append({"subset": subset, "checkpoint": ck, "benchmark": b, "score": score, "ci95_low": lo,
                         "ci95_high": hi, "units": len(units.keys), "method": "bootstrap over questions"})
    return pd.DataFrame(rows, columns=INTERVAL_COLUMNS)


def with_rel_intervals(rel: pd.DataFrame, logs_by_subset: dict[str, tuple[str | None, dict]],
                       params: Params) -> pd.DataFrame:
    """Rel's 95% paired bootstrap interval (the subset's and the full-data run's questions drawn together)."""
    from ..bootstrap import paired_units, rel_interval
    from ..rel import subset_names

    lo, hi = [], []
    aggregates = {b: IMAGE_BENCHMARKS[b].aggregate for b in params.evaluate.image.benchmarks}
    for r in rel.itertuples():
        logs = logs_by_subset.get(r.subset, (None, {}))[1]
        full = logs_by_subset.get(subset_names(r.pool)["full"], (None, {}))[1]
        pairs = paired_units(logs, full, aggregates) if r.role != "full" else []
        try:
            a, b = rel_interval(pairs, seed=params.seed) if pairs else (float("nan"), float("nan"))
        except ValueError as exc:  # the two runs' logs hold different questions: no paired interval, said so
            log.warning("%s: no Rel interval: %s", r.subset, exc)
            a, b = float("nan"), float("nan")
        lo.append(a)
        hi.append(b)
    return rel.assign(rel_ci95_low=lo, rel_ci95_high=hi)


def ofa_pools(params: Params) -> list[str]:
    """The source pool and each transfer pool (Rel is computed per pool against its own full-data run)."""
    src = [params.pools.ofa_source.name] if params.pools.ofa_source else []
    return src + [t.name for t in params.pools.ofa_transfer]


def run_image_stage(params: Params, run_dirs: Sequence[str | Path] | None = None, progress: bool = True) -> dict:
    """The image suite, then the trajectory (video + image rows) and Rel tables of each eval folder."""
    from ..rel import relative_performance, write_rel_tables
    from ..stage import write_trajectory

    report = run_image_suite(params, run_dirs, progress)
    if dist_info()[0] != 0:
        return report
    for d in report.get("eval_dirs", []):
        traj = write_trajectory(Path(d))
        rel, ratios = relative_performance(traj, ofa_pools(params), params.evaluate.image.benchmarks)
        logs = last_logs(Path(d), traj, params)
        write_text(Path(d) / INTERVALS_FILE, score_intervals(logs, params).to_csv(index=False))
        rel = with_rel_intervals(rel, logs, params)
        write_rel_tables(rel, ratios, d)
        report.setdefault("rel", []).extend(rel.to_dict("records"))
    return report
