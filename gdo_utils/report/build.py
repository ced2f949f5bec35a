"""The report stage: every table and figure of both papers in one mode, written with REPORT.md.

    build_report(params, mode="auto" | "reference" | "run", sweep=False)
      -> outputs/<run>/tables/<mode>/<name>.{csv,md,tex}   (+ manifest.json)
         outputs/<run>/figures/<mode>/<name>.{png,pdf}     (+ manifest.json)
         outputs/<run>/REPORT.md (reference mode) or outputs/<run>/REPORT_run.md (run mode): one file per mode, so a
    run-mode report never overwrites the reference one

auto is run mode when outputs/<run>/eval/trajectory.parquet exists, else reference mode. Run mode
without a trajectory still draws the OFA stage's figures and marks every evaluated cell missing.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from ..config import Params, ParamsError, params_hash
from ..io import git_revision, package_versions, read_json, sha256_file, write_manifest, write_text
from ..plots import save_figure
from . import figures as F
from . import published, reference, tables_gdo, tables_ofa
from .columns import count_filled
from .document import availability_lines, figure_section, report_markdown, table_section
from .inputs import RunInputs, run_inputs
from .render import Table, write_table
from .sweep import load_sweep, run_sweep
from .trajectory import load_trajectory, trajectory_path

log = logging.getLogger(__name__)
VERSIONS = ("gdo-utils", "numpy", "pandas", "matplotlib", "seaborn", "torch", "transformers")


@dataclass
class Report:
    """What build_report wrote: the tables and figures (by name), the inconsistencies and REPORT.md."""

    mode: str
    tables: dict[str, Table]
    figures: dict[str, F.FigureSpec]
    inconsistencies: list[str]
    provenance: dict
    path: Path
    filled: dict[str, tuple[int, int]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def resolve_mode(params: Params, mode: str | None, sweep: bool = False) -> str:
    """reference / run; auto (or None: params.report.mode) picks run when the trajectory (or a sweep) exists."""
    mode = mode or params.report.mode
    if mode == "auto":
        return "run" if sweep or trajectory_path(params.run_dir).is_file() else "reference"
    if sweep and mode == "reference":
        raise ParamsError("--sweep produces run data; use --mode run (reference mode shows published numbers only)")
    return mode


def _demo_note(params: Params, mode: str) -> str:
    if mode == "reference":
        return "none: reference mode shows only the papers' published numbers."
    if params.models.build_tiny and params.models.pretrain.enabled:
        return ("every run number (trajectory, OFA stage, sweep) is a miniature number: toy world, a tiny model first "
                "trained on the toy world's base corpus (its held-out accuracy: pretrain/held_out.json), a few hundred "
                "to a few thousand samples; it can speak to the papers' mechanism at toy scale only where its "
                "intervals clear chance, never to their numbers. Published numbers are the papers'.")
    if params.toyworld.enabled or params.models.build_tiny:
        return ("every run number (trajectory, OFA stage, sweep) is a demo number: toy world, tiny randomly initialised "
                "models, a few samples; it exercises the machinery and says nothing about the papers' claims. "
                "Published numbers are the papers'.")
    return "none: the run numbers come from the params' real pools and models."


def provenance(params: Params, mode: str, traj: pd.DataFrame | None) -> dict:
    """params hash, git revision, versions, trajectory fingerprint, and which numbers are demo numbers."""
    prov = {"mode": mode, "params_file": params.source_file, "params_hash": params_hash(params),
            "git_revision": git_revision(Path(__file__).resolve().parent) or "unknown",
            "versions": package_versions(VERSIONS), "demo_note": _demo_note(params, mode),
            "published_note": "; ".join(f"{p.file}: {p.exactness}" for p in published.REGISTRY.values())}
    path = trajectory_path(params.run_dir)
    if traj is not None and path.is_file():
        prov["trajectory"] = {"path": str(path), "sha256": sha256_file(path), "rows": int(len(traj)),
                              "subsets": sorted(set(traj["subset"])), "engines": sorted(set(traj["engine"])),
                              "contracts": sorted(set(traj["contract"]))}
    return prov


def gdo_tables(inputs: RunInputs | None) -> list[Table]:
    out = [f(inputs) for f in tables_gdo.TABLES] + [f() for f in tables_gdo.CHECKS]
    return out + ([tables_gdo.accuracies_table(inputs)] if inputs is not None else [])


REPORT_FILES = {"reference": "REPORT.md", "run": "REPORT_run.md"}


def report_path(run_dir: Path, mode: str) -> Path:
    """outputs/<run>/REPORT.md (reference) or REPORT_run.md (run)."""
    return Path(run_dir) / REPORT_FILES[mode]


def ofa_tables(params: Params, inputs: RunInputs | None, sweep: pd.DataFrame | None) -> list[Table]:
    out = [tables_ofa.rel_table(inputs), tables_ofa.headline_table(),
           *[tables_ofa.companion_table(n) for n in published.COMPANION_POOL], tables_ofa.rel_check_table()]
    if inputs is None:
        return out
    out.insert(1, tables_ofa.scores_table(inputs))
    reports = _ofa_reports(params)
    if reports:
        meta = params.stage_dir("ofa", "selector", "selector.json")
        out.append(tables_ofa.selection_table(reports, read_json(meta)["chosen_epoch"] if meta.is_file() else None))
    if sweep is not None:
        out.append(tables_ofa.sweep_table(sweep))
    return out


def _ofa_reports(params: Params) -> dict[str, dict]:
    from ..ofa import ofa_pools

    out = {}
    if params.pools.ofa_source is None:
        return out
    for p in ofa_pools(params):
        f = params.stage_dir("ofa", p.name, "report.json")
        if f.is_file():
            out[p.name] = read_json(f)
    return out


def gdo_figures(inputs: RunInputs | None) -> list[F.FigureSpec]:
    return [F.convergence(inputs), F.frontier(inputs), F.heatmap(inputs), F.schematic()]


def ofa_figures(params: Params, inputs: RunInputs | None, sweep: pd.DataFrame | None) -> list[F.FigureSpec]:
    out = [F.rel_figure(inputs)]
    if inputs is not None:
        out += F.selector_figures(params)
        if sweep is not None:
            out.append(F.sensitivity(sweep))
    return out


def empty_trajectory() -> pd.DataFrame:
    """A C3 table with no rows (run mode before any evaluation)."""
    from .trajectory import COLUMNS, validate

    return validate(pd.DataFrame({c: pd.Series(dtype="object") for c in COLUMNS}))


def build_report(params: Params, mode: str | None = None, sweep: bool = False, force: bool = False) -> Report:
    """Write every table (CSV, Markdown, LaTeX) and figure (PNG, PDF) of the mode, then REPORT.md."""
    t0 = time.time()
    mode = resolve_mode(params, mode, sweep)
    notes, traj, inputs = [], None, None
    if mode == "run":
        path = trajectory_path(params.run_dir)
        if path.is_file():
            traj = load_trajectory(path)
        else:
            notes.append(f"No trajectory table at {path}: the evaluation stage has not run, so every evaluated cell "
                         "is missing.")
            traj = empty_trajectory()
        from .chance import run_chance

        inputs = run_inputs(params, traj, run_chance(params))
    sweep_df = run_sweep(params, traj, force=force) if sweep else (load_sweep(params) if mode == "run" else None)
    tables_dir, figures_dir = params.stage_dir("tables", mode), params.stage_dir("figures", mode)
    tables = gdo_tables(inputs) + ofa_tables(params, inputs, sweep_df)
    filled, files = {}, {}
    for t in tables:
        files[t.name] = write_table(t, tables_dir)
    if inputs is not None:
        filled = _filled(inputs)
    specs = gdo_figures(inputs) + ofa_figures(params, inputs, sweep_df)
    for s in specs:
        s.paths = save_figure(s.figure, figures_dir / s.name)
        plt.close(s.figure)
    inconsistencies = reference.inconsistencies()
    prov = provenance(params, mode, traj if mode == "run" else None)
    base = params.run_dir
    by_name = {t.name: t for t in tables}
    sections = []
    for title, prefix in (("GDO tables", "gdo_"), ("OFA tables", "ofa_")):
        body = []
        for t in tables:
            if t.name.startswith(prefix):
                body += table_section(t, base, files[t.name], filled.get(t.name))
        sections.append((title, body))
    sections.append(("Figures", [line for s in specs for line in figure_section(s, base)]))
    sections.insert(0, ("What the papers publish and what the kit can regenerate", availability_lines(tables, specs)))
    path = write_text(report_path(base, mode), report_markdown(params.run_name, prov, sections, inconsistencies, notes))
    wall = time.time() - t0
    h = params_hash({"params": params_hash(params), "mode": mode, "sweep": sweep})
    write_manifest(tables_dir, stage=f"report:tables:{mode}", params_hash=h, params_file=params.source_file,
                   wall_time_s=wall, outputs=[f for fs in files.values() for f in fs])
    write_manifest(figures_dir, stage=f"report:figures:{mode}", params_hash=h, params_file=params.source_file,
                   wall_time_s=wall, outputs=[p for s in specs for p in s.paths])
    log.info("report (%s mode): %d tables, %d figures, %s in %.1fs", mode, len(tables), len(specs), path.name, wall)
    return Report(mode, by_name, {s.name: s for s in specs}, inconsistencies, prov, path, filled, notes)


def _filled(inputs: RunInputs) -> dict[str, tuple[int, int]]:
    """Cells filled by the run per GDO table (value columns only)."""
    runs = {"gdo_main": (tables_gdo.run_main(inputs)[0], tables_gdo.main_cols()),
            "gdo_profiles": (tables_gdo.run_profiles(inputs), tables_gdo.PROFILE_COLS),
            "gdo_temporal_subtasks": (tables_gdo.run_temporal(inputs)[0], tables_gdo.TEMPORAL_COLS),
            "gdo_subtask_groups": (tables_gdo.run_groups(inputs), tables_gdo.GROUP_COLS),
            "gdo_ablation": (tables_gdo.run_ablation(inputs), tables_gdo.ABLATION_COLS),
            "gdo_mvbench_heatmap": (tables_gdo.run_heatmap(inputs), tables_gdo.HEATMAP_COLS)}
    out = {name: count_filled(df, cols) for name, (df, cols) in runs.items()}
    rel, _ = tables_ofa.run_rel(inputs)
    out["ofa_rel"] = count_filled(rel, [tables_ofa.REL_COL])
    return out
