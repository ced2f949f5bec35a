"""The published numbers of both papers, shipped as package data (paper_numbers/*.csv + README.md).

One registry entry per file says what it is, which paper printed it and how exact it is; `load`
returns it as numbers, `load_text` as the exact strings of the file (what the reference-mode tables
are compared with, cell for cell).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from io import StringIO

import pandas as pd

GDO_PAPER = "GDO (arXiv 2603.12478)"
OFA_PAPER = "OFA (arXiv 2605.26761)"
VISNEC_PAPER = "VisNec (arXiv 2603.01195), same authors and protocol"


@dataclass(frozen=True)
class Published:
    """One published file: its name in the registry, file, paper and exactness."""

    name: str
    file: str
    paper: str
    exactness: str


REGISTRY: dict[str, Published] = {p.name: p for p in (
    Published("gdo_main", "gdo_table_main.csv", GDO_PAPER, "exact as printed"),
    Published("gdo_profiles", "gdo_table_profiles.csv", GDO_PAPER, "exact as printed"),
    Published("gdo_temporal_subtasks", "gdo_table_temporal_subtasks.csv", GDO_PAPER, "exact as printed"),
    Published("gdo_subtask_groups", "gdo_table_subtask_groups.csv", GDO_PAPER, "exact as printed"),
    Published("gdo_ablation", "gdo_table_ablation.csv", GDO_PAPER, "exact as printed"),
    Published("gdo_mvbench_heatmap", "gdo_figure_mvbench_heatmap.csv", GDO_PAPER,
              "heatmap cell labels, 0.5 pp resolution"),
    Published("gdo_trajectories", "gdo_figure_trajectories_digitised.csv", GDO_PAPER,
              "digitised from the figure: approximate (+-0.03 pp, +-0.5k), never exact"),
    Published("ofa_headline", "ofa_headline.csv", OFA_PAPER, "exact (abstract)"),
    Published("ofa_baselines_llava665k", "ofa_baselines_llava665k_companion.csv", VISNEC_PAPER,
              "exact as printed in the companion paper"),
    Published("ofa_baselines_visionflan", "ofa_baselines_visionflan_companion.csv", VISNEC_PAPER,
              "exact as printed in the companion paper"),
)}
# The pool name each companion table belongs to (as ofa_headline.csv writes it).
COMPANION_POOL = {"ofa_baselines_llava665k": "LLaVA-665K", "ofa_baselines_visionflan": "Vision-Flan-186K"}


def _data(file: str):
    """A file of the paper_numbers/ package data."""
    return resources.files(__package__).joinpath("paper_numbers").joinpath(file)


def _entry(name: str) -> Published:
    if name not in REGISTRY:
        raise KeyError(f"unknown published table {name!r} (known: {sorted(REGISTRY)})")
    return REGISTRY[name]


@lru_cache(maxsize=None)
def load_text(name: str) -> str:
    """The file's exact text, line ends included (package data)."""
    return _data(_entry(name).file).read_bytes().decode("utf-8")


def load_strings(name: str) -> pd.DataFrame:
    """The table as printed: every cell the file's exact string."""
    return pd.read_csv(StringIO(load_text(name)), dtype=str, keep_default_na=False)


def load(name: str) -> pd.DataFrame:
    """The table with numeric columns as float64."""
    return pd.read_csv(StringIO(load_text(name)))


def readme() -> str:
    """paper_numbers/README.md: what each file is, the group definitions and the known inconsistencies."""
    return _data("README.md").read_bytes().decode("utf-8")


def companion_for_pool(pool: str) -> str | None:
    """The companion-table name for a published pool name ("LLaVA-665K" -> "ofa_baselines_llava665k")."""
    for name, p in COMPANION_POOL.items():
        if p == pool:
            return name
    return None
