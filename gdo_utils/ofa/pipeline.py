"""The OFA stage: fit the selector once on the source pool, then score and select any pool.

    fit(params)                -> outputs/<run>/ofa/selector/   (selector + centroids + history + source clusters)
    score_pool(params, name)   -> outputs/<run>/ofa/<name>/scores.parquet
    select_pool(params, name)  -> outputs/<run>/ofa/<name>/{selected.json, selected_ids.txt, report.json}
    run_all(params)            -> all of the above for the source pool and every transfer pool

Each step skips itself when its manifest carries the same params hash (unless `force`). Hashes cover
only what a step depends on: the fit ignores the selection settings, so changing the budget does not
retrain. The score and select steps share a pool directory and its manifest.json: the select manifest
also records the score hash (`score_params_hash`) so up-to-date scores are not recomputed.
Embeddings come from gdo_utils.embed (sample level: one row per sample id).
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..cache import code_version, log_recompute, upstream_digest
from ..config import NamedPool, Params, params_hash, resolve_path
from ..io import MANIFEST_NAME, manifest_matches, read_json, read_parquet, write_json, write_manifest, write_parquet
from .clustering import pseudo_labels, transfer_labels
from .core import split_core
from .features import (REASON_NO_EMBEDDING, SELECTOR_INPUTS, joint_features, selector_input_of, split_modalities,
                       unscored_reasons)
from .records import write_selected
from .scoring import score, scores_table
from .select import select
from .store import (SELECTOR_FILES, check_feature_spec, feature_spec, load_selector, model_config, save_selector)
from .train import train_selector

log = logging.getLogger(__name__)

FIT_KEYS = ("k", "kmeans_niter", "core_ratio", "core_min", "val_ratio", "hidden", "gate_hidden", "dropout",
            "alpha_init", "fusion", "lr", "weight_decay", "batch_size", "epochs", "checkpoint_policy",
            "target_macro_acc", "selector_input")
SELECT_KEYS = ("budget_ratio", "diversity", "dpp_block")
SOURCE_CLUSTERS = "source_clusters.parquet"
SCORES = "scores.parquet"
SCORE_BATCH = 8192
CODE_MODULES = ("gdo_utils.ofa", "gdo_utils.kmeans", "gdo_utils.vectors")  # cache key: this stage's own code
QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)


# ----------------------------------------------------------------------------- paths and hashes
def selector_dir(params: Params) -> Path:
    """outputs/<run>/ofa/selector/"""
    return params.stage_dir("ofa", "selector")


def pool_dir(params: Params, name: str) -> Path:
    """outputs/<run>/ofa/<pool name>/ (scores and selection of one pool)."""
    if name == "selector":
        raise ValueError("a pool may not be named 'selector' (outputs/<run>/ofa/selector/ holds the selector)")
    return params.stage_dir("ofa", name)


def source_pool(params: Params) -> NamedPool:
    """The pool the selector is fitted on (params.pools.ofa_source)."""
    if params.pools.ofa_source is None:
        raise ValueError(f"{params.source_file}: pools.ofa_source is not set: OFA needs a source pool to fit on")
    return params.pools.ofa_source


def ofa_pools(params: Params) -> list[NamedPool]:
    """The source pool then every transfer pool."""
    return [source_pool(params), *params.pools.ofa_transfer]


def named_pool(params: Params, name: str) -> NamedPool:
    """The OFA pool called `name` (the source or a transfer pool)."""
    for p in ofa_pools(params):
        if p.name == name:
            return p
    raise KeyError(f"{name!r} is not an OFA pool of {params.source_file} (known: {[p.name for p in ofa_pools(params)]})")


def upstream(params: Params, name: str) -> str:
    """Code of the OFA package + what the pool and embed stages of pool `name` wrote (gdo_utils.cache)."""
    from ..embed import embed_dir
    from ..pool import pool_dir as qa_dir

    return params_hash({"code": code_version(CODE_MODULES),
                        "inputs": upstream_digest([qa_dir(params, name), embed_dir(params, name)])})


def fit_hash(params: Params) -> str:
    """Hash of what the selector depends on: seed, device, fit settings, the source pool and its embeddings."""
    d = params.model_dump(mode="json")
    return params_hash({"seed": d["seed"], "device": d["device"], "ofa": {k: d["ofa"][k] for k in FIT_KEYS},
                        "source": d["pools"]["ofa_source"], "pool": d["pool"], "toyworld": d["toyworld"],
                        "clip": d["models"]["clip"], "embed": d["embed"],
                        "upstream": upstream(params, source_pool(params).name)})


def score_hash(params: Params, name: str) -> str:
    """Hash of a pool's scores: the selector's hash plus the pool's own sources."""
    return params_hash({"fit": fit_hash(params), "pool": named_pool(params, name).model_dump(mode="json"),
                        "upstream": upstream(params, name)})


def select_hash(params: Params, name: str) -> str:
    """Hash of a pool's selection: its scores' hash plus the selection settings."""
    d = params.model_dump(mode="json")
    return params_hash({"score": score_hash(params, name), "seed": d["seed"],
                        "select": {k: d["ofa"][k] for k in SELECT_KEYS}})


def device_of(params: Params) -> str:
    """cuda when asked for (or 'auto' with a GPU present), else cpu."""
    if params.device == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return params.device


def ensure_pool_embeddings(params: Params, name: str) -> None:
    """Bring the pool's sample-level embeddings up to date (before hashing what OFA depends on)."""
    from ..embed import ensure_embeddings

    ensure_embeddings(params, name, level="sample")


def load_pool_embeddings(params: Params, name: str):
    """Ensure and load the sample-level CLIP embeddings of a pool (gdo_utils.embed)."""
    from ..embed import ensure_embeddings, load_embeddings

    ensure_embeddings(params, name, level="sample")
    return load_embeddings(params, name)


def pool_samples(params: Params, name: str) -> pd.DataFrame:
    """One row per sample of a built pool, in pool (file) order: sample_id, source_file, record_index."""
    from ..pool import load_pool

    qa = load_pool(params, name)
    return qa.drop_duplicates("sample_id", keep="first")[["sample_id", "source_file", "record_index"]].reset_index(drop=True)


# ----------------------------------------------------------------------------- rows: pool <-> embeddings
def align(sample_ids: np.ndarray, emb) -> tuple[np.ndarray, np.ndarray]:
    """Row of each sample in the embeddings (-1 when absent) and the unscored reason per sample."""
    rows = pd.Index(emb.ids).get_indexer(sample_ids)
    found = rows >= 0
    reasons = np.full(len(sample_ids), REASON_NO_EMBEDDING, dtype=object)
    reasons[found] = unscored_reasons(emb.has_image[rows[found]], emb.has_text[rows[found]])
    return rows, reasons


def features_of(emb, rows: np.ndarray) -> np.ndarray:
    """Joint features x of the given embedding rows."""
    return joint_features(emb.image[rows], emb.text[rows])


# ----------------------------------------------------------------------------- fit
def fit(params: Params, force: bool = False) -> dict[str, Any]:
    """Cluster the source pool, train the selector, keep the policy's epoch; writes ofa/selector/."""
    src = source_pool(params)
    out = selector_dir(params)
    ensure_pool_embeddings(params, src.name)
    h = fit_hash(params)
    if not force and manifest_matches(out, h, [*SELECTOR_FILES, SOURCE_CLUSTERS]):
        log.info("OFA selector up to date (%s), skipped", out)
        return {**read_json(out / "selector.json")["summary"], "skipped": True}
    log_recompute("OFA fit", out, h)
    t0 = time.time()
    cfg, seed = params.ofa, params.seed
    samples = pool_samples(params, src.name)
    emb = load_pool_embeddings(params, src.name)
    ids = samples["sample_id"].to_numpy(dtype=str)
    rows, reasons = align(ids, emb)
    mask = reasons == ""
    if mask.sum() < 2:
        raise ValueError(f"source pool {src.name}: {int(mask.sum())} scorable sample(s); OFA needs image+text samples")
    x = features_of(emb, rows[mask])
    km = pseudo_labels(x, cfg.k, seed=seed, niter=cfg.kmeans_niter)
    k = len(km.centroids)
    if k < cfg.k:
        log.warning("source pool %s has %d scorable samples: K reduced from %d to %d", src.name, len(x), cfg.k, k)
    split = split_core(km.labels, km.distances, k, cfg.core_ratio, cfg.core_min, cfg.val_ratio, seed)
    d_img = emb.image.shape[1]
    v_img, v_txt = split_modalities(x, d_img, cfg.selector_input)
    res = train_selector(v_img, v_txt, km.labels, split, cfg, k, seed, device=device_of(params))
    chosen = res.history.iloc[res.chosen_epoch - 1]
    summary = {
        "source_pool": src.name, "n_samples": int(len(ids)), "n_scorable": int(mask.sum()),
        "n_unscorable": int((~mask).sum()), "k": k, "k_requested": cfg.k,
        "n_core": int(len(split.train) + len(split.val)), "n_core_train": int(len(split.train)),
        "n_core_val": int(len(split.val)), "epochs": cfg.epochs, "checkpoint_policy": cfg.checkpoint_policy,
        "target_macro_acc": cfg.target_macro_acc, "chosen_epoch": res.chosen_epoch,
        "val_macro_acc": float(chosen["val_macro_acc"]), "val_coverage": int(chosen["val_coverage"]),
        "conf_q50": float(chosen["conf_q50"]), "selector_dir": str(out), "skipped": False,
    }
    spec = feature_spec(d_img, emb.text.shape[1], k, getattr(emb, "arch", "") or params.models.clip.arch,
                        SELECTOR_INPUTS[cfg.selector_input])
    meta = {"feature_spec": spec, "model": model_config(cfg), "config": cfg.model_dump(mode="json"), "seed": seed,
            "chosen_epoch": res.chosen_epoch, "checkpoint_policy": cfg.checkpoint_policy,
            "source_pool": src.name, "summary": summary}
    files = save_selector(out, res.model, meta, km.centroids, res.history)
    core = np.full(len(x), "", dtype=object)
    core[split.train], core[split.val] = "train", "val"
    files.append(write_parquet(out / SOURCE_CLUSTERS, pd.DataFrame({
        "sample_id": ids[mask], "cluster": km.labels, "distance": km.distances, "core": core.astype(str)})))
    write_manifest(out, stage="ofa:fit", params_hash=h, params_file=params.source_file, wall_time_s=time.time() - t0,
                   outputs=files, extra={"epoch_seconds": [round(s, 4) for s in res.epoch_seconds]})
    log.info("OFA selector: K=%d, core %d (+%d val), epoch %d (macro acc %.3f, coverage %d/%d)", k,
             summary["n_core_train"], summary["n_core_val"], res.chosen_epoch, summary["val_macro_acc"],
             summary["val_coverage"], k)
    return summary


# ----------------------------------------------------------------------------- score
def _scores_up_to_date(out: Path, h: str) -> bool:
    """The pool dir's manifest was written by this score hash (score or select stage) and scores exist."""
    mf = out / MANIFEST_NAME
    if not (mf.is_file() and (out / SCORES).is_file()):
        return False
    m = read_json(mf)
    return h in (m.get("params_hash"), m.get("score_params_hash"))


def score_pool(params: Params, name: str, force: bool = False) -> pd.DataFrame:
    """Score every sample of a pool with the frozen selector (cluster: k-means label or nearest centroid)."""
    out = pool_dir(params, name)
    ensure_pool_embeddings(params, name)
    h = score_hash(params, name)
    if not force and _scores_up_to_date(out, h):
        log.info("OFA scores of %s up to date, skipped", name)
        return read_parquet(out / SCORES)
    log_recompute(f"OFA score {name}", out, h)
    t0 = time.time()
    fit(params)
    dev = device_of(params)
    sel = load_selector(selector_dir(params), device=dev)
    samples = pool_samples(params, name)
    emb = load_pool_embeddings(params, name)
    check_feature_spec(sel.feature_spec, emb.image.shape[1], emb.text.shape[1], getattr(emb, "arch", None) or None,
                       len(sel.centroids), pool=name)
    ids = samples["sample_id"].to_numpy(dtype=str)
    rows, reasons = align(ids, emb)
    mask = reasons == ""
    x = features_of(emb, rows[mask])
    if name == sel.meta["source_pool"]:
        src = read_parquet(selector_dir(params) / SOURCE_CLUSTERS)
        at = pd.Index(src["sample_id"]).get_indexer(ids[mask])
        if (at < 0).any():
            raise RuntimeError(f"{name}: {int((at < 0).sum())} scorable sample(s) have no k-means label; refit (force=True)")
        clusters, dist = src["cluster"].to_numpy()[at], src["distance"].to_numpy()[at]
    else:
        clusters, dist = transfer_labels(x, sel.centroids)
    v_img, v_txt = split_modalities(x, sel.feature_spec["image_dim"], selector_input_of(sel.meta))
    table = scores_table(ids, reasons, clusters, dist, score(sel.model, v_img, v_txt, batch=SCORE_BATCH, device=dev))
    n_un = int((~mask).sum())
    if n_un:
        log.warning("OFA %s: %d of %d samples not scored %s", name, n_un, len(ids),
                    table.loc[~table["scored"], "reason"].value_counts().to_dict())
    extra_emb = len(set(emb.ids) - set(ids))
    if extra_emb:
        log.warning("OFA %s: %d embedded ids are not in the pool table (ignored)", name, extra_emb)
    f = write_parquet(out / SCORES, table)
    write_manifest(out, stage=f"ofa:score:{name}", params_hash=h, params_file=params.source_file,
                   wall_time_s=time.time() - t0, outputs=[f], extra={"score_params_hash": h})
    return table


# ----------------------------------------------------------------------------- select
def quantiles(values: np.ndarray) -> dict[str, float]:
    """q10..q90 and the mean of a vector (empty -> NaN)."""
    v = np.asarray(values, dtype=np.float64)
    if not len(v):
        return {**{f"q{int(q * 100)}": float("nan") for q in QUANTILES}, "mean": float("nan")}
    return {**{f"q{int(q * 100)}": float(x) for q, x in zip(QUANTILES, np.quantile(v, QUANTILES))}, "mean": float(v.mean())}


def select_pool(params: Params, name: str, force: bool = False) -> dict[str, Any]:
    """Select budget_ratio of a pool's scored samples (per-cluster least confidence, optional k-DPP)."""
    out = pool_dir(params, name)
    ensure_pool_embeddings(params, name)
    h = select_hash(params, name)
    if not force and manifest_matches(out, h, ["report.json", "selected_ids.txt", SCORES]):
        rep = read_json(out / "report.json")
        if (out / rep["selected_file"]).is_file():
            log.info("OFA selection of %s up to date, skipped", name)
            return rep
    t0 = time.time()
    cfg = params.ofa
    s_hash = score_hash(params, name)
    scores = score_pool(params, name)
    sel_meta = read_json(selector_dir(params) / "selector.json")
    k = int(sel_meta["feature_spec"]["k"])
    scored = scores[scores["scored"]].reset_index(drop=True)
    x = None
    if cfg.diversity:
        emb = load_pool_embeddings(params, name)
        rows, _ = align(scored["sample_id"].to_numpy(dtype=str), emb)
        x = features_of(emb, rows)
    s = select(scored["conf"].to_numpy(), scored["cluster"].to_numpy(), k, cfg.budget_ratio, x=x,
               diversity=cfg.diversity, block=cfg.dpp_block, seed=params.seed)
    chosen = scored["sample_id"].to_numpy(dtype=str)[s.indices]
    fmts = source_formats(params, name)
    written = write_selected(out, pool_samples(params, name), chosen, fmts)
    unscored = scores.loc[~scores["scored"], "reason"].value_counts().sort_index()
    report = {
        "pool": name, "source_pool": name == sel_meta["source_pool"], "transfer": name != sel_meta["source_pool"],
        "n_pool": int(len(scores)), "n_scored": int(len(scored)), "n_unscored": int((~scores["scored"]).sum()),
        "n_unscored_by_reason": {str(r): int(c) for r, c in unscored.items()},
        "budget_ratio": cfg.budget_ratio, "budget": int(s.n_sel), "n_selected": int(len(chosen)),
        "diversity": cfg.diversity, "dpp_block": cfg.dpp_block, "seed": params.seed, "k": k,
        "selector_chosen_epoch": sel_meta["chosen_epoch"],
        "clusters": [{"cluster": c, "size": int(s.sizes[c]), "quota": int(s.quotas[c]), "taken": int(s.taken[c])}
                     for c in range(k)],
        "conf": {"pool": quantiles(scored["conf"]), "selected": quantiles(scored["conf"].to_numpy()[s.indices])},
        "entropy": {"pool": quantiles(scored["entropy"]), "selected": quantiles(scored["entropy"].to_numpy()[s.indices])},
        **written,
    }
    rep_path = write_json(out / "report.json", report)
    write_manifest(out, stage=f"ofa:select:{name}", params_hash=h, params_file=params.source_file,
                   wall_time_s=time.time() - t0,
                   outputs=[out / SCORES, out / written["selected_file"], out / "selected_ids.txt", rep_path],
                   extra={"score_params_hash": s_hash})
    log.info("OFA %s: selected %d of %d scored samples (budget %d), ids sha256 %s", name, len(chosen), len(scored),
             s.n_sel, written["selected_ids_sha256"][:12])
    return report


def source_formats(params: Params, name: str) -> dict[str, str]:
    """Resolved annotation file path -> its format, for every source of a pool."""
    p = named_pool(params, name)
    prefix = "pools.ofa_source.sources"
    for j, t in enumerate(params.pools.ofa_transfer):
        if t.name == name:
            prefix = f"pools.ofa_transfer[{j}].sources"
    return {str(resolve_path(params, s.path, f"{prefix}[{i}].path").resolve()): s.format
            for i, s in enumerate(p.sources)}


def run_all(params: Params, force: bool = False) -> dict[str, Any]:
    """Fit (once), then score and select the source pool and every transfer pool."""
    summary = fit(params, force=force)
    reports = {}
    for p in ofa_pools(params):
        score_pool(params, p.name, force=force)
        reports[p.name] = select_pool(params, p.name, force=force)
    return {"fit": summary, "pools": reports}

