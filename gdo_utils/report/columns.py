"""Numeric frames -> the CSV and display frames of a Table, in reference mode and in run mode.

A `Col` says how one value column is written: in the CSV (the published files' style: the rounded
value's shortest text, or fixed decimals) and on display (two decimals, signed delta, 35.4k, 14.5x).
Run mode puts the published value and the difference (run - paper) beside every run value; a value
the run cannot fill is missing, whatever the paper printed.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..binomial import format_accuracy
from . import fmt

RUN_EXTRA_DECIMALS = 3  # a run's CSV keeps 3 more decimals than the paper printed (toy runs count samples in tens)
SHOW = {"num": fmt.fixed, "delta": fmt.signed, "kilo": fmt.kilo, "times": fmt.times}


@dataclass(frozen=True)
class Col:
    """A value column: CSV name, display label, decimals, display kind (num/delta/kilo/times), CSV fixed or shortest."""

    name: str
    label: str
    decimals: int = 2
    kind: str = "num"
    csv_fixed: bool = False
    binomial: bool = True  # run mode: an accuracy with n gets a Wilson interval (False: n only - F1, VQA scores)

    def to_csv(self, x) -> str:
        return fmt.fixed(x, self.decimals, missing=fmt.CSV_MISSING) if self.csv_fixed else fmt.csv_number(x, self.decimals)

    def show(self, x) -> str:
        return SHOW[self.kind](x, self.decimals)


def reference_frames(df: pd.DataFrame, keys: list[tuple[str, str]], cols: list[Col],
                     order: list[str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(csv, display) frames: key columns copied as text, value columns formatted, columns in `order` (CSV names)."""
    csv = pd.DataFrame({k: df[k].astype(str).to_numpy() for k, _ in keys})
    disp = pd.DataFrame({label: df[k].astype(str).to_numpy() for k, label in keys})
    for c in cols:
        csv[c.name] = [c.to_csv(x) for x in df[c.name]]
        disp[c.label] = [c.show(x) for x in df[c.name]]
    if order is not None:
        labels = {**dict(keys), **{c.name: c.label for c in cols}}
        csv, disp = csv[order], disp[[labels[o] for o in order]]
    return csv, disp


def beside(run: pd.DataFrame, paper: pd.DataFrame, keys: list[str], cols: list[Col]) -> pd.DataFrame:
    """The run's rows with <col>_paper (published, matched on the key columns; NaN where the paper has none)."""
    p = paper[keys + [c.name for c in cols]].rename(columns={c.name: f"{c.name}_paper" for c in cols})
    out = run.merge(p.drop_duplicates(keys), on=keys, how="left", sort=False)
    return out


def run_frames(run: pd.DataFrame, paper: pd.DataFrame, keys: list[tuple[str, str]], cols: list[Col],
               match: list[str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(csv, display) frames of a run table: every value, the published value beside it (rows matched on
    `match`, default all key columns), and run - paper.

    The CSV is wide (<col>, <col>_paper, <col>_diff, and <col>_n where the run frame has n_<col>). The display is
    long - one line per row and quantity: This run, Paper, run - paper - so that it reads on a page whatever the
    number of columns. An accuracy with n_<col> shows its n and 95% Wilson interval (a score that is not a proportion:
    its n, and the bootstrap interval of lo_<col> / hi_<col> when the frame has them); a value with a non-empty
    why_<col> shows "undefined" (the reason goes in the table's notes); a missing value of a row with a non-empty
    missing_why shows that text (e.g. "not trained on the demo") instead of "—".
    """
    key_names = [k for k, _ in keys]
    m = beside(run, paper, match or key_names, cols)
    csv = pd.DataFrame({k: m[k].astype(str).to_numpy() for k in key_names})
    lines = []
    for c in cols:
        mine = m[c.name].astype(float).to_numpy()
        theirs = m[f"{c.name}_paper"].astype(float).to_numpy()
        diff = mine - theirs
        csv[c.name] = [fmt.csv_number(x, c.decimals + RUN_EXTRA_DECIMALS) for x in mine]
        csv[f"{c.name}_paper"] = [c.to_csv(x) for x in theirs]
        csv[f"{c.name}_diff"] = [fmt.csv_number(x, c.decimals + RUN_EXTRA_DECIMALS) for x in diff]
        ns = m[f"n_{c.name}"].to_numpy() if f"n_{c.name}" in m else None
        why = m[f"why_{c.name}"].fillna("").astype(str).to_numpy() if f"why_{c.name}" in m else None
        absent = m["missing_why"].fillna("").astype(str).to_numpy() if "missing_why" in m else None
        if ns is not None:
            csv[f"{c.name}_n"] = [str(int(n)) if not fmt.is_missing(x) else "" for x, n in zip(mine, ns)]
        lo = m[f"lo_{c.name}"].astype(float).to_numpy() if f"lo_{c.name}" in m else None
        hi = m[f"hi_{c.name}"].astype(float).to_numpy() if f"hi_{c.name}" in m else None
        if lo is not None and hi is not None:
            csv[f"{c.name}_ci95_low"] = [fmt.csv_number(x, c.decimals + RUN_EXTRA_DECIMALS) for x in lo]
            csv[f"{c.name}_ci95_high"] = [fmt.csv_number(x, c.decimals + RUN_EXTRA_DECIMALS) for x in hi]
        unit = "k" if c.kind == "kilo" else "x" if c.kind == "times" else ""
        for i in range(len(m)):
            if why is not None and why[i]:
                shown = "undefined"
            elif absent is not None and absent[i] and fmt.is_missing(mine[i]):
                shown = absent[i]
            elif ns is not None and not fmt.is_missing(mine[i]):
                ci = ("" if lo is None or hi is None or fmt.is_missing(lo[i]) else
                      f", 95% CI {c.show(lo[i])}-{c.show(hi[i])}")
                shown = (format_accuracy(mine[i], int(ns[i]), c.decimals) if c.binomial
                         else f"{c.show(mine[i])} (n={int(ns[i])}{ci})")
            else:
                shown = c.show(mine[i])
            lines.append((i, {**{label: str(m[k].iloc[i]) for k, label in keys}, "Quantity": c.label,
                              "This run": shown, "Paper": c.show(theirs[i]),
                              "Run − paper": fmt.signed(diff[i], c.decimals) + (unit if not fmt.is_missing(diff[i]) else "")}))
    lines.sort(key=lambda t: t[0])  # row by row, the quantities in column order
    disp = pd.DataFrame([d for _, d in lines], columns=[label for _, label in keys] + ["Quantity", "This run", "Paper",
                                                                                       "Run − paper"])
    return csv, disp


def count_filled(run: pd.DataFrame, cols: list[Col]) -> tuple[int, int]:
    """(cells the run filled, cells in all) over the value columns."""
    values = run[[c.name for c in cols]].astype(float).to_numpy()
    return int((~np.isnan(values)).sum()), int(values.size)
