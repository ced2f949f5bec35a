"""The subsets of a run by name (`gdo-repro list subsets`): what the params build, and what is on disk.

Names (the training-file contract): the GDO profiles and their ablations, their uniform baselines
(`uniform_<profile>`, or one `uniform` when `subsets.uniform.size` is fixed), and for every OFA pool
`ofa_<pool>`, `ofa_random_<pool>`, `ofa_full_<pool>`. Folders under outputs/<run>/subsets/ with a
train.jsonl that the params do not name (e.g. a `custom` profile built by hand) are listed as "other".
"""
from __future__ import annotations

from .config import Params
from .ofa.pipeline import ofa_pools
from .ofa.training import KINDS as OFA_KINDS
from .ofa.training import subset_name as ofa_subset_name
from .subsets.build import parse_subset_name, subset_names


def expected_subsets(params: Params) -> dict[str, str]:
    """Subset name -> kind (profile | ablation | uniform | ofa | ofa_random | ofa_full) the params produce."""
    out: dict[str, str] = {}
    for name in subset_names(params):
        out[name] = "ablation" if parse_subset_name(name)[1] else "profile"
    out.update({params.subsets.uniform_name(p): "uniform" for p in params.subsets.profiles})
    if params.pools.ofa_source is not None:
        for pool in ofa_pools(params):
            out.update({ofa_subset_name(k, pool.name): k for k in OFA_KINDS})
    return out


def subset_catalog(params: Params) -> list[dict]:
    """One entry per subset (expected ones first, then other built folders): name, kind, built, rows, path."""
    root = params.stage_dir("subsets")
    names = expected_subsets(params)
    if root.is_dir():
        for d in sorted(root.iterdir()):
            if (d / "train.jsonl").is_file() and d.name not in names:
                names[d.name] = "other"
    out = []
    for name, kind in names.items():
        f = root / name / "train.jsonl"
        built = f.is_file()
        rows = sum(1 for line in f.open(encoding="utf-8") if line.strip()) if built else 0
        out.append({"subset": name, "kind": kind, "built": built, "rows": rows, "path": str(f.resolve())})
    return out
