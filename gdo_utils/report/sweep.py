"""`gdo-repro report --sweep`: the OFA selection over a grid of K (clusters) x budget ratio.

Each grid point runs the OFA stage itself (gdo_utils.ofa.fit / score_pool / select_pool, unchanged)
on a copy of the params with `ofa.k` and `ofa.budget_ratio` set, in its own output root
outputs/<run>/report/sweep/k<K>/ that links the run's pools, embeddings, models and toy world, so
nothing upstream is recomputed and the OFA stage's own caching (params-hash manifests) makes a
repeated sweep cheap. Per grid point and pool it records the selection (size, confidence of pool vs
selection, clusters covered, Jaccard overlap with the run's default selection) and copies the
selected ids to selections/k<K>_r<R>/<pool>.txt. Rel per grid point comes from the trajectory when
subsets named `ofa_sweep_k<K>_r<R>_<pool>` were trained and evaluated. With `report.sweep.train_eval`
the sweep does that itself: each point's selection becomes such a training subset (multi-turn, the
training-file contract), the train stage fine-tunes on it with the run's fixed recipe and the image stage
scores it, exactly as for the run's own OFA subset; Rel then compares it with the pool's full-data run.
"""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import Params, params_from_dict, params_hash
from ..io import read_parquet, write_manifest, write_parquet, write_text
from .inputs import OFAPool, ofa_pools
from .names import IMAGE_BENCHMARKS
from .rel import rel
from .trajectory import end_value

log = logging.getLogger(__name__)
LINKED = ("toyworld", "models", "pool", "pools", "embed")  # what the OFA stage reads from the run
SWEEP_FILE = "sweep.parquet"


def sweep_dir(params: Params) -> Path:
    """outputs/<run>/report/sweep/"""
    return params.stage_dir("report", "sweep")


def sweep_subset(pool: str, k: int, ratio: float) -> str:
    """The subset name a trained grid point carries in the trajectory: ofa_sweep_k<K>_r<R>_<pool>."""
    return f"ofa_sweep_k{k}_r{ratio:g}_{pool}"


def grid_params(params: Params, k: int, ratio: float) -> Params:
    """The params of one grid point: same run, ofa.k and ofa.budget_ratio set, output root under sweep/k<K>/."""
    d = params.model_dump(mode="json")
    d["ofa"]["k"], d["ofa"]["budget_ratio"] = int(k), float(ratio)
    d["output_root"] = str(sweep_dir(params) / f"k{k}")
    return params_from_dict(d, source=params.source_file)


def link_inputs(params: Params, point: Params) -> list[str]:
    """Symlink the run's pools, embeddings, models and toy world into the grid point's run dir; returns the names linked."""
    point.run_dir.mkdir(parents=True, exist_ok=True)
    linked = []
    for name in LINKED:
        src, dst = params.run_dir / name, point.run_dir / name
        if src.exists() and not dst.exists():
            os.symlink(src.resolve(), dst, target_is_directory=True)
        if dst.exists():
            linked.append(name)
    return linked


def _ids(path: Path) -> set[str] | None:
    return set(path.read_text(encoding="utf-8").split("\n")[:-1]) if path.is_file() else None


def jaccard(a: set[str] | None, b: set[str]) -> float:
    """|a & b| / |a | b| (NaN when a is unknown)."""
    if a is None:
        return float("nan")
    union = len(a | b)
    return len(a & b) / union if union else float("nan")


def point_rel(traj: pd.DataFrame | None, pool: OFAPool, k: int, ratio: float) -> float:
    """Rel of a trained grid point vs the pool's full-data subset, from the trajectory (NaN when not evaluated)."""
    if traj is None:
        return float("nan")
    name = sweep_subset(pool.pool, k, ratio)
    return rel({b: end_value(traj, name, b) for b in IMAGE_BENCHMARKS}, {b: end_value(traj, pool.full, b) for b in IMAGE_BENCHMARKS})


def run_sweep(params: Params, traj: pd.DataFrame | None = None, force: bool = False) -> pd.DataFrame:
    """Run the OFA selection at every grid point of params.report.sweep; writes and returns the sweep table."""
    from .. import ofa
    from ..ofa.views import load_scores, selected_ids

    t0 = time.time()
    grid = params.report.sweep
    pools = ofa_pools(params)
    out = sweep_dir(params)
    rows = []
    for k in grid.k:
        for ratio in grid.budget_ratio:
            point = grid_params(params, k, ratio)
            link_inputs(params, point)
            summary = ofa.fit(point, force=force)
            for pool in pools:
                rep = ofa.select_pool(point, pool.pool, force=force)
                chosen = selected_ids(point, pool.pool)
                write_text(out / "selections" / f"k{k}_r{ratio:g}" / f"{pool.pool}.txt", "".join(f"{i}\n" for i in chosen))
                scores = load_scores(point, pool.pool)
                scored = scores[scores["scored"]]
                sel = scored[scored["sample_id"].isin(set(chosen))]
                clusters = pd.DataFrame(rep["clusters"])
                nonempty = clusters[clusters["size"] > 0]
                rows.append({
                    "pool": pool.pool, "transfer": pool.transfer, "k": int(k), "k_effective": int(rep["k"]),
                    "budget_ratio": float(ratio), "chosen_epoch": int(summary["chosen_epoch"]),
                    "val_macro_acc": float(summary["val_macro_acc"]), "n_scored": int(rep["n_scored"]),
                    "n_selected": int(rep["n_selected"]),
                    "conf_pool_median": float(np.median(scored["conf"])) if len(scored) else float("nan"),
                    "conf_selected_median": float(np.median(sel["conf"])) if len(sel) else float("nan"),
                    "clusters_covered_share": float((nonempty["taken"] > 0).mean()) if len(nonempty) else float("nan"),
                    "jaccard_default": jaccard(_ids(params.stage_dir("ofa", pool.pool, "selected_ids.txt")), set(chosen)),
                    "subset": sweep_subset(pool.pool, k, ratio), "rel": point_rel(traj, pool, k, ratio)})
    table = pd.DataFrame(rows)
    if grid.train_eval and len(table):
        table = train_and_evaluate(params, table, pools, force=force)
    f = write_parquet(out / SWEEP_FILE, table)
    write_manifest(out, stage="report:sweep", params_hash=params_hash({"ofa": params.model_dump(mode="json")["ofa"],
                                                                        "sweep": grid.model_dump(mode="json")}),
                   params_file=params.source_file, wall_time_s=time.time() - t0, outputs=[f])
    log.info("OFA sweep: %d grid points x %d pools in %.1fs", len(grid.k) * len(grid.budget_ratio), len(pools), time.time() - t0)
    return table


def write_point_subsets(params: Params, table: pd.DataFrame) -> list[str]:
    """Each grid point's selection as a training subset of the run (ofa_sweep_k<K>_r<R>_<pool>); returns the names."""
    from ..io import sha256_file
    from ..ofa.training import write_set
    from ..pool import load_pool

    names = []
    for pool, rows in table.groupby("pool", sort=False):
        qa = load_pool(params, pool)
        order = qa.drop_duplicates("sample_id")["sample_id"].astype(str).tolist()
        for r in rows.itertuples():
            ids_file = sweep_dir(params) / "selections" / f"k{r.k}_r{r.budget_ratio:g}" / f"{pool}.txt"
            chosen = set(ids_file.read_text(encoding="utf-8").split())
            h = params_hash({"ids": sha256_file(ids_file), "prompt_text": params.subsets.prompt_text, "v": 1})
            write_set(params, qa, r.subset, [s for s in order if s in chosen], h,
                      {"pool": pool, "selection": f"OFA sweep point K={r.k}, budget {r.budget_ratio:g}",
                       "source": str(ids_file)})
            names.append(r.subset)
    return names


def train_and_evaluate(params: Params, table: pd.DataFrame, pools: list[OFAPool], force: bool = False) -> pd.DataFrame:
    """Fine-tune and score every grid point's subset (the run's train + image stages), then fill its Rel."""
    from ..evaluate.image.stage import run_image_stage
    from ..train import train_runs
    from .trajectory import load_trajectory, trajectory_path

    names = write_point_subsets(params, table)
    fulls = [p.full for p in pools]
    train_runs(params, names + fulls, force=force, params_file=params.source_file)
    run_image_stage(params, run_dirs=[params.stage_dir("train", n) for n in names + fulls])
    traj = load_trajectory(trajectory_path(params.run_dir))
    by_pool = {p.pool: p for p in pools}
    table = table.copy()
    table["rel"] = [point_rel(traj, by_pool[r.pool], int(r.k), float(r.budget_ratio)) for r in table.itertuples()]
    return table


def load_sweep(params: Params) -> pd.DataFrame | None:
    """The last sweep table of the run, or None."""
    p = sweep_dir(params) / SWEEP_FILE
    return read_parquet(p) if p.is_file() else None
