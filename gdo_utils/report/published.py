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
GDO_TEXT = "GDO paper text (arXiv 2603.12478), its only table"
GDO_RELEASE = "GDO release README (github.com/rujiewu/GDO), not the paper text"
OFA_ABSTRACT = "OFA abstract (arXiv 2605.26761)"
VISNEC_ROWS = "VisNec's tables (arXiv 2603.01195; same authors and protocol), not the OFA paper"
# The speed-up labels the release's convergence figure (assets/teaser.png) writes over its peak-match lines.
RELEASE_SPEEDUP_LABELS = {"MVBench": 13.2, "VideoMME": 14.5, "MLVU": 14.4}
# What the papers are known to print that the kit cannot show (only the OFA abstract is available).
UNAVAILABLE = (
    "the OFA paper's six figures and its tables (only its abstract is available; the OFA tables here are the "
    "abstract's two numbers and VisNec's rows)",
    "the GDO paper's figures as typeset in the paper (the release README's figures are used instead)",
    "an LVBench convergence curve (the release figure has three panels; LVBench's peak match is printed only)",
)


@dataclass(frozen=True)
class Published:
    """One published file: its name in the registry, file, paper, where it is printed and how exact it is."""

    name: str
    file: str
    paper: str
    source: str
    exactness: str

    def label(self) -> str:
        """'source; exactness' - the line every table and figure built on this file carries."""
        return f"{self.source}; {self.exactness}"


REGISTRY: dict[str, Published] = {p.name: p for p in (
    Published("gdo_main", "gdo_table_main.csv", GDO_PAPER, GDO_TEXT + " (also in the release README)",
              "exact as printed"),
    Published("gdo_profiles", "gdo_table_profiles.csv", GDO_PAPER, GDO_RELEASE, "exact as printed"),
    Published("gdo_temporal_subtasks", "gdo_table_temporal_subtasks.csv", GDO_PAPER, GDO_RELEASE, "exact as printed"),
    Published("gdo_subtask_groups", "gdo_table_subtask_groups.csv", GDO_PAPER, GDO_RELEASE, "exact as printed"),
    Published("gdo_ablation", "gdo_table_ablation.csv", GDO_PAPER, GDO_RELEASE, "exact as printed"),
    Published("gdo_mvbench_heatmap", "gdo_figure_mvbench_heatmap.csv", GDO_PAPER,
              "GDO release README (github.com/rujiewu/GDO), its heatmap figure assets/mvbench_heatmap.png; not the paper text",
              "exact cell labels (the labels have 0.5 pp resolution)"),
    Published("gdo_trajectories", "gdo_figure_trajectories_digitised.csv", GDO_PAPER,
              "GDO release README (github.com/rujiewu/GDO), its convergence figure assets/teaser.png; not the paper text",
              "digitised from the figure: approximate (+-0.03 pp, +-0.5k), never exact"),
    Published("ofa_headline", "ofa_headline.csv", OFA_PAPER, OFA_ABSTRACT,
              "exact (pool, 15%, Rel); the model column is not in the abstract (inferred from VisNec's protocol)"),
    Published("ofa_baselines_llava665k", "ofa_baselines_llava665k_companion.csv", VISNEC_PAPER, VISNEC_ROWS,
              "exact as printed in VisNec"),
    Published("ofa_baselines_visionflan", "ofa_baselines_visionflan_companion.csv", VISNEC_PAPER, VISNEC_ROWS,
              "exact as printed in VisNec"),
)}


def label(name: str) -> str:
    """The source-and-exactness line of a published file."""
    return _entry(name).label()


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
