"""Every table and figure of the GDO and OFA papers, regenerated: from the published numbers (reference
mode) or from a run's evaluation trajectory beside them (run mode), assembled in outputs/<run>/REPORT.md (reference) or REPORT_run.md (run).

Modules: published (the papers' numbers, package data paper_numbers/), names (kit keys -> display
names), fmt (printed number formats), peak (peak match), groups (subtask groups), rel (OFA's Rel),
reference (what the published numbers recompute, and their inconsistencies), trajectory (contract C3
reader), inputs (params `report:` -> subset names), columns + render (table frames and their CSV /
Markdown / LaTeX), tables_gdo, tables_ofa, figures_gdo, figures_ofa, figures, sweep (OFA K x budget
sweep), document (REPORT.md), build (the stage).
"""
from .build import Report, build_report, resolve_mode
from .sweep import run_sweep

__all__ = ["Report", "build_report", "resolve_mode", "run_sweep"]
