"""OFA (Once-For-All) data selection: a weak selector trained once on cluster pseudo-labels of the
source pool scores any pool; the least-confident samples of each cluster are kept (OFA_METHOD.md).

Modules: features (joint CLIP feature), clustering (k-means pseudo-labels, transfer), core (training
core + balanced sampler), model (gated fusion selector), train (training + checkpoint policy),
store (save / load / feature-spec check), scoring, select (+ kdpp), records (original-format output),
pipeline (the stage functions exported here), plots, views (notebook helpers).

ARCHITECTURE.md names a single `ofa.py`; it is a package so that each step stays a small module with
one job (the same reason `gdo_utils.subsets` is a package). The import path `gdo_utils.ofa` is unchanged.
"""
from .pipeline import fit, ofa_pools, pool_dir, run_all, score_pool, select_pool, selector_dir
from .store import SelectorMismatchError, check_feature_spec, load_selector

__all__ = ["fit", "score_pool", "select_pool", "run_all", "selector_dir", "pool_dir", "ofa_pools", "load_selector",
           "check_feature_spec", "SelectorMismatchError"]
