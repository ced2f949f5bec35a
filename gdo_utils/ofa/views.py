"""Read-only views of the OFA outputs for the notebook: scores, reports, history, examples."""
from __future__ import annotations

import pandas as pd

from ..config import Params
from ..io import read_json, read_parquet
from .pipeline import SCORES, pool_dir, selector_dir
from .store import load_history


def load_scores(params: Params, name: str) -> pd.DataFrame:
    """outputs/<run>/ofa/<name>/scores.parquet"""
    return read_parquet(pool_dir(params, name) / SCORES)


def load_report(params: Params, name: str) -> dict:
    """outputs/<run>/ofa/<name>/report.json"""
    return read_json(pool_dir(params, name) / "report.json")


def selected_ids(params: Params, name: str) -> list[str]:
    """The selected sample ids of a pool, in original order."""
    return (pool_dir(params, name) / "selected_ids.txt").read_text(encoding="utf-8").split("\n")[:-1]


def selector_summary(params: Params) -> tuple[dict, pd.DataFrame]:
    """The saved selector's metadata and its per-epoch history."""
    return read_json(selector_dir(params) / "selector.json"), load_history(selector_dir(params))


def examples_by_confidence(params: Params, name: str, n: int = 4, least: bool = True) -> pd.DataFrame:
    """The first QA row of the n least (or most) confident scored samples, with conf and cluster."""
    from ..pool import load_pool

    s = load_scores(params, name)
    s = s[s["scored"]].sort_values(["conf", "sample_id"], ascending=[least, True], kind="stable").head(n)
    qa = load_pool(params, name).drop_duplicates("sample_id")
    return s[["sample_id", "conf", "cluster"]].merge(qa, on="sample_id", how="left")


def selection_table(reports: dict[str, dict]) -> pd.DataFrame:
    """One row per pool: counts, budget, selected, median confidence of pool vs subset, ids checksum."""
    rows = []
    for name, r in reports.items():
        rows.append({"pool": name, "transfer": r["transfer"], "n_pool": r["n_pool"], "n_scored": r["n_scored"],
                     "n_unscored": r["n_unscored"], "budget": r["budget"], "n_selected": r["n_selected"],
                     "conf_median_pool": r["conf"]["pool"]["q50"], "conf_median_selected": r["conf"]["selected"]["q50"],
                     "selected_ids_sha256": r["selected_ids_sha256"][:16]})
    return pd.DataFrame(rows).set_index("pool")


def policy_table(history: pd.DataFrame, k: int, target: float, chosen: int) -> pd.DataFrame:
    """The epochs the `target` policy chose among (coverage == K), their distance to the target, the pick."""
    full = history[history["val_coverage"] == k]
    cand = full if len(full) else history
    out = cand[["epoch", "val_macro_acc", "val_coverage", "conf_q50"]].copy()
    out["distance_to_target"] = (out["val_macro_acc"] - target).abs()
    out["chosen"] = out["epoch"] == chosen
    out.attrs["full_coverage_epochs"] = int(len(full))
    return out.set_index("epoch")
