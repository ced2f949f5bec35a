"""Sharded, resumable extraction of the six GDO descriptors and the deterministic merge.

`run_descriptors` (one rank; single process or under torchrun) computes, per batch of candidates,
motion (AMM, frame diversity) from the decoded frames and, with the backbone, loss_video/loss_blind
(VDS, PPL), TNC and SC; rows go to Parquet parts keyed by qa_uid (gdo_utils.shards: rank by stable
hash, resume by id, any world size). A candidate whose model step fails keeps its cheap descriptors
and gets an `error` string; a CUDA out-of-memory halves the batch and retries down to one row.
`merge_descriptors` checks every qa_uid exactly once, adds coverage (k-means on the CLIP joint
embedding, or the `standardized` features) and the level-1 quality, and writes
outputs/<run>/descriptors/descriptors.parquet + report.json + manifest.json.
"""
from __future__ import annotations

import logging
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import torch

from ..cache import StageCache, code_version, model_fingerprint, portable_text
from ..config import Params, params_hash
from ..embed import embed_dir, ensure_embeddings, load_embeddings
from ..io import read_json, read_parquet, write_json, write_manifest, write_parquet
from ..media import MediaError, load_frames, subsample
from ..models import ensure_models, load_vlm_from_params, vlm_path
from ..pool import GDO_POOL_NAME, load_pool, pool_dir
from ..score import level1_quality
from ..shards import dist_info, list_parts, merge_parts, prepare_parts, run_sharded, wait_for_ranks
from ..vlm_batch import VLMSample, answer_losses, to_pil
from .coverage import clip_joint_features, cluster_coverage, standardized_features
from .model_based import dependence, stability, tnc_llm, vds_ppl
from .motion import motion_descriptors
from .temporal import tnc_regex

log = logging.getLogger(__name__)

PART_SCHEMA = pa.schema([
    ("qa_uid", pa.string()), ("amm", pa.float64()), ("frame_diversity", pa.float64()),
    ("loss_video", pa.float64()), ("loss_blind", pa.float64()), ("vds", pa.float64()), ("ppl", pa.float64()),
    ("tnc", pa.float64()), ("self_consistency", pa.float64()), ("tnc_reply", pa.string()),
    ("sc_answers", pa.list_(pa.string())), ("error", pa.string()),
])
OUTPUT_COLUMNS = ["qa_uid", "amm", "frame_diversity", "loss_video", "loss_blind", "vds", "ppl", "tnc",
                  "self_consistency", "cluster_id", "cluster_dist", "cluster_rep", "cluster_hard", "quality", "error"]


def descriptors_dir(params: Params) -> Path:
    return params.stage_dir("descriptors")


NOT_PER_ROW = ("coverage_features", "coverage_k", "coverage_niter", "coverage_init", "coverage_points_per_centroid",
               "coverage_pca", "batch_size", "part_rows")


def extraction_hash(params: Params) -> str:
    """What the per-row values depend on (not the merge-time coverage settings)."""
    d = params.model_dump(mode="json")
    desc = {k: v for k, v in d["descriptors"].items() if k not in NOT_PER_ROW}
    return params_hash({"vlm": d["models"]["vlm"], "build_tiny": d["models"]["build_tiny"], "desc": desc,
                        "pools": d["pools"]["gdo"], "pool": d["pool"], "toyworld": d["toyworld"], "seed": d["seed"]})


EXTRACTION_MODULES = ("gdo_utils.descriptors.runner", "gdo_utils.descriptors.model_based",
                      "gdo_utils.descriptors.motion", "gdo_utils.descriptors.stability", "gdo_utils.descriptors.temporal",
                      "gdo_utils.vlm_batch", "gdo_utils.media", "gdo_utils.models", "gdo_utils.shards")
MERGE_MODULES = EXTRACTION_MODULES + ("gdo_utils.descriptors.coverage", "gdo_utils.stats",
                                      "gdo_utils.kmeans", "gdo_utils.vectors", "gdo_utils.score")
OUTPUT_FILES = ["descriptors.parquet", "report.json"]


def pool_file(params: Params) -> Path:
    return pool_dir(params) / "qa.parquet"


def extraction_models(params: Params) -> list[str]:
    """The models the per-row values depend on (none when the model step is skipped)."""
    return [] if params.descriptors.skip_model else [vlm_path(params)]


def parts_key(params: Params) -> str:
    """What every part's rows depend on: extraction settings, extraction code, the backbone's files.

    The pool's content is not in it: each row carries its own input digest (`row_keys`), so an edited
    record recomputes that record's rows only. Model files enter by content, not path (portable).
    """
    d = params.model_dump(mode="json")
    desc = {k: v for k, v in d["descriptors"].items() if k not in NOT_PER_ROW}
    return params_hash({"vlm": {k: v for k, v in d["models"]["vlm"].items() if k != "path"}, "desc": desc,
                        "seed": d["seed"], "code": code_version(EXTRACTION_MODULES),
                        "models": [model_fingerprint(m) for m in extraction_models(params)]})


ROW_COLUMNS = ("media", "frame_indices", "media_kind", "question", "answer")


def row_keys(params: Params, table: pd.DataFrame) -> dict[str, str]:
    """qa_uid -> digest of what DescriptorWorker reads of that row (media named relative to the run folder)."""
    import hashlib
    import json

    root = params.run_dir
    out = {}
    for rec in table[["qa_uid", *ROW_COLUMNS]].itertuples(index=False):
        blob = json.dumps([[portable_text(str(m), root) for m in rec.media], [int(i) for i in rec.frame_indices],
                           rec.media_kind, rec.question, rec.answer], ensure_ascii=False)
        out[rec.qa_uid] = hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return out


def stage_cache(params: Params) -> StageCache:
    """Cache key of descriptors.parquet: params, extraction + merge code, the pool, (clip) embeddings, backbone."""
    inputs = [pool_file(params)]
    if params.descriptors.coverage_features == "clip":
        inputs += [embed_dir(params, GDO_POOL_NAME) / f for f in ("ids.parquet", "image.npy", "text.npy")]
    return StageCache("descriptors", descriptors_dir(params), stage_hash(params), MERGE_MODULES, inputs,
                      root=params.run_dir, models=extraction_models(params))


def stage_hash(params: Params) -> str:
    d = params.model_dump(mode="json")
    return params_hash({"extraction": extraction_hash(params), "descriptors": d["descriptors"],
                        "clip": d["models"]["clip"], "embed": d["embed"]})


# ----------------------------------------------------------------------------- one batch
OOM_MESSAGES = ("out of memory", "not enough memory", "can't allocate memory")  # CUDA, CPU allocator (2 forms)


def is_oom(exc: BaseException) -> bool:
    """CUDA's OutOfMemoryError, Python's MemoryError or an allocator message (CUDA, or PyTorch's DefaultCPUAllocator)."""
    if isinstance(exc, (torch.OutOfMemoryError, MemoryError)):
        return True
    msg = str(exc).lower()
    return any(m in msg for m in OOM_MESSAGES)


def with_oom_retry(fn: Callable[[Sequence[int]], dict[int, dict]], idx: Sequence[int]) -> tuple[dict[int, dict], dict[int, str]]:
    """Run fn on a batch of positions; on OOM split the batch in halves and retry, down to single rows.

    Returns (results by position, errors by position) — a row that fails alone is an error, not a crash.
    """
    try:
        return fn(idx), {}
    except Exception as exc:  # noqa: BLE001 - OOM is detected by type or message across backends
        if not is_oom(exc):
            raise
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        if len(idx) == 1:
            return {}, {idx[0]: "oom"}
        mid = len(idx) // 2
        log.warning("out of memory on a batch of %d: retrying as %d + %d", len(idx), mid, len(idx) - mid)
        r1, e1 = with_oom_retry(fn, idx[:mid])
        r2, e2 = with_oom_retry(fn, idx[mid:])
        return {**r1, **r2}, {**e1, **e2}


def pixel_budget(size: dict | None, max_pixels: int | None) -> dict | None:
    """Processor `size` kwargs for the descriptor forward passes.

    None (release): the processor's own pixel range. An int caps the pixels of each image or frame,
    and the processor's minimum is clamped to it: Qwen3-VL's shortest_edge (a minimum of 65536
    pixels) above a cap of 50176 would otherwise enlarge small frames past the cap.
    """
    if max_pixels is None:
        return None
    size = dict(size or {})
    if "shortest_edge" not in size:
        return None
    return {"size": {"shortest_edge": min(int(size["shortest_edge"]), int(max_pixels)), "longest_edge": int(max_pixels)}}


class DescriptorWorker:
    """Computes one batch of descriptor rows (the `work` function handed to run_sharded)."""

    def __init__(self, params: Params, table: pd.DataFrame, vlm: Any | None) -> None:
        self.p, self.cfg, self.vlm = params, params.descriptors, vlm
        self.rows = table.set_index("qa_uid", drop=False)
        self.image_kwargs = None
        if vlm is not None and hasattr(vlm.processor, "image_processor"):
            self.image_kwargs = pixel_budget(getattr(vlm.processor.image_processor, "size", None),
                                             self.cfg.max_pixels)

    def __call__(self, batch_ids: Sequence[str]) -> list[dict]:
        out: list[dict] = []
        frames: list[np.ndarray | None] = []
        for qid in batch_ids:
            r = self.rows.loc[qid]
            row: dict[str, Any] = {"qa_uid": qid, "amm": None, "frame_diversity": None, "loss_video": None,
                                   "loss_blind": None, "vds": None, "ppl": None, "tnc": None,
                                   "self_consistency": None, "tnc_reply": None, "sc_answers": None, "error": None}
            f = None
            try:
                f = load_frames(list(r["media"]), list(r["frame_indices"]))
                if r["media_kind"] in ("frames", "video_file"):
                    row["amm"], row["frame_diversity"] = motion_descriptors(f, self.cfg.motion_frames, self.cfg.motion_size)
                else:
                    row["amm"], row["frame_diversity"] = 0.0, 0.0
            except MediaError as exc:
                row["error"] = f"{exc.reason}: {exc.path}"
            frames.append(f)
            if self.cfg.tnc_mode == "regex":
                row["tnc"] = tnc_regex(r["question"])
            out.append(row)
        if self.vlm is not None and not self.cfg.skip_model:
            self._model_step(batch_ids, out, frames)
        return out

    def _model_step(self, ids: Sequence[str], out: list[dict], frames: list[np.ndarray | None]) -> None:
        q = [self.rows.loc[i, "question"] for i in ids]
        a = [self.rows.loc[i, "answer"] for i in ids]
        visual = [j for j, f in enumerate(frames) if f is not None]

        def blind_and_tnc(pos: Sequence[int]) -> dict[int, dict]:
            lb = answer_losses(self.vlm, [VLMSample(q[j], a[j]) for j in pos], with_visuals=False)
            res = {j: {"loss_blind": float(x)} for j, x in zip(pos, lb)}
            if self.cfg.tnc_mode == "llm":
                tnc, replies = tnc_llm(self.vlm, [q[j] for j in pos], rule=self.cfg.tnc_reply_rule)
                for j, t, rep in zip(pos, tnc, replies):
                    res[j].update(tnc=float(t), tnc_reply=rep)
            return res

        def with_visuals(pos: Sequence[int]) -> dict[int, dict]:
            samples = [VLMSample(q[j], a[j], to_pil(subsample(frames[j], self.cfg.max_frames_model))) for j in pos]
            dep = dependence(self.vlm, samples, self.image_kwargs)
            sc, answers = stability(self.vlm, samples, [ids[j] for j in pos], n=self.cfg.sc_samples,
                                    top_p=self.cfg.sc_top_p, temperature=self.cfg.sc_temperature,
                                    max_new_tokens=self.cfg.sc_max_new_tokens, seed=self.p.seed,
                                    image_kwargs=self.image_kwargs)
            return {j: {"loss_video": float(dep["loss_video"][k]), "self_consistency": float(sc[k]),
                        "sc_answers": answers[k]} for k, j in enumerate(pos)}

        res_b, err_b = with_oom_retry(blind_and_tnc, list(range(len(ids))))
        res_v, err_v = with_oom_retry(with_visuals, visual) if visual else ({}, {})
        for j, row in enumerate(out):
            row.update(res_b.get(j, {}))
            row.update(res_v.get(j, {}))
            if row["loss_video"] is not None and row["loss_blind"] is not None:
                v, p = vds_ppl(np.array([row["loss_video"]]), np.array([row["loss_blind"]]))
                row["vds"], row["ppl"] = float(v[0]), float(p[0])
            errs = [e for e in (row["error"], err_b.get(j) and f"blind: {err_b[j]}", err_v.get(j) and f"visual: {err_v[j]}") if e]
            row["error"] = "; ".join(errs) if errs else None


# ----------------------------------------------------------------------------- stage entry points
def run_descriptors(params: Params, force: bool = False, progress: bool = True) -> dict:
    """This rank's extraction into descriptors/parts (skips qa_uids already written).

    Parts made with other extraction settings, extraction code or backbone files are discarded by rank 0,
    and rows whose pool record changed are dropped from their parts (only they are recomputed); rank 0
    then stamps the folder (gdo_utils.shards.prepare_parts); other ranks wait for that stamp before
    writing. Under torchrun, `force` is honoured by rank 0 only (clear the parts yourself if several
    ranks must restart at once).
    """
    parts = descriptors_dir(params) / "parts"
    if not params.descriptors.skip_model:
        ensure_models(params)
    table = load_pool(params)
    keys = row_keys(params, table)
    prepare_parts(parts, parts_key(params), force=force, row_keys=keys, id_col="qa_uid")
    vlm = None
    if not params.descriptors.skip_model:
        vlm = load_vlm_from_params(params)
        torch.manual_seed(params.seed)
    worker = DescriptorWorker(params, table, vlm)
    t0 = time.time()
    counts = run_sharded(sorted(table["qa_uid"]), worker, parts, id_col="qa_uid",
                         batch_size=params.descriptors.batch_size, part_rows=params.descriptors.part_rows,
                         schema=PART_SCHEMA, desc="descriptors", progress=progress, row_keys=keys)
    counts["seconds"] = round(time.time() - t0, 2)
    counts["candidates_per_s"] = round(counts["processed"] / max(counts["seconds"], 1e-9), 3)
    return counts


def coverage_features(params: Params, desc: pd.DataFrame, qa: pd.DataFrame) -> np.ndarray:
    """Features for coverage clustering, rows aligned with `desc` (sorted by qa_uid); `qa`: the pool, any order."""
    if params.descriptors.coverage_features == "standardized":  # the pool's rows put in `desc`'s order first
        return standardized_features(desc, qa.set_index("qa_uid").loc[desc["qa_uid"]].reset_index())
    ensure_embeddings(params, GDO_POOL_NAME, level="qa")
    emb = load_embeddings(params, GDO_POOL_NAME, dtype=np.float16)  # rows picked before the float32 features
    pos = pd.Series(np.arange(len(emb.ids)), index=emb.ids)
    take = pos.reindex(desc["qa_uid"]).to_numpy()
    if np.isnan(take.astype(float)).any():
        raise RuntimeError("embeddings do not cover every qa_uid of the descriptors (rebuild the embed stage)")
    take = take.astype(int)
    return clip_joint_features(emb.image, emb.text, emb.has_image, emb.has_text, rows=take)


def merge_descriptors(params: Params, extraction: dict | None = None) -> dict:
    """Merge all ranks' parts, add coverage and the level-1 quality, write descriptors.parquet + report."""
    t0 = time.time()
    out = descriptors_dir(params)
    qa = load_pool(params)
    df = merge_parts(out / "parts", qa["qa_uid"], "qa_uid")
    feats = coverage_features(params, df, qa)
    cache = stage_cache(params).snapshot()  # the inputs as read (pool, and the embeddings just ensured)
    c = params.descriptors
    cov = cluster_coverage(feats, c.coverage_k, params.seed, c.coverage_niter, init=c.coverage_init,
                           points_per_centroid=c.coverage_points_per_centroid, pca=c.coverage_pca)
    for c in ("cluster_id", "cluster_dist", "cluster_rep", "cluster_hard"):
        df[c] = cov[c].to_numpy()
    df["quality"] = np.asarray(level1_quality(df), dtype=np.float64)
    final = df[OUTPUT_COLUMNS]
    debug = df[["qa_uid", "tnc_reply", "sc_answers"]]
    outs = [write_parquet(out / "descriptors.parquet", final), write_parquet(out / "samples.parquet", debug)]
    errors = df["error"].dropna()
    reasons = Counter(e.split(":")[0].split(";")[0].strip() for e in errors)
    n = len(df)
    missing = {c: int(df[c].isna().sum()) for c in ("amm", "loss_video", "loss_blind", "tnc", "self_consistency")}
    report = {
        "rows": n, "parts": len(list_parts(out / "parts")), "errors": int(len(errors)),
        "errors_by_reason": dict(sorted(reasons.items())),
        "missing": missing, "sc_fallback_rows": missing["self_consistency"], "tnc_mode": params.descriptors.tnc_mode,
        "coverage": {"features": params.descriptors.coverage_features, "k_requested": params.descriptors.coverage_k,
                     "k_used": int(cov.attrs.get("k", df["cluster_id"].nunique())),
                     "clusters_nonempty": int(df["cluster_id"].nunique())},
        "merge_seconds": round(time.time() - t0, 2),
        "extraction": extraction,
    }
    outs.append(write_json(out / "report.json", report))
    write_manifest(out, stage="descriptors", params_hash=stage_hash(params), params_file=params.source_file,
                   wall_time_s=time.time() - t0, outputs=outs,
                   extra={"extraction_hash": extraction_hash(params), **cache.record()})
    if report["errors"]:
        log.warning("descriptors: %d of %d candidates with errors %s", report["errors"], n, report["errors_by_reason"])
    return report


def run_stage(params: Params, force: bool = False, progress: bool = True) -> dict:
    """Extract and merge (rank 0 merges under torchrun); skipped when the outputs match the params hash."""
    out = descriptors_dir(params)
    if stage_cache(params).fresh(OUTPUT_FILES, force=force):
        return read_json(out / "report.json")
    if params.descriptors.coverage_features == "clip":  # every rank embeds its share before extraction
        ensure_embeddings(params, GDO_POOL_NAME, level="qa")
    counts = run_descriptors(params, force=force, progress=progress)
    rank, world = dist_info()
    if world > 1:  # under torchrun: rank 0 merges once every rank's parts are written
        if rank != 0:
            return counts
        wait_for_ranks(descriptors_dir(params) / "parts", load_pool(params)["qa_uid"], "qa_uid")
    return merge_descriptors(params, extraction=counts)


def load_descriptors(params: Params) -> pd.DataFrame:
    path = descriptors_dir(params) / "descriptors.parquet"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run `gdo-repro descriptors --params ...` first")
    return read_parquet(path)
