"""What notebook 04 shows: which subsets are there, the training subprocess's streamed log, the runs table, the curves."""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Callable

import matplotlib.pyplot as plt
import pandas as pd

from ..config import Params
from ..io import read_json, write_text
from .logs import plot_curves


def subsets_table(params: Params) -> pd.DataFrame:
    """Each run named in train.runs: its train.jsonl, rows, whether it exists yet."""
    rows = []
    for s in params.train.runs:
        f = params.stage_dir("subsets", s, "train.jsonl")
        n = sum(1 for line in open(f, encoding="utf-8") if line.strip()) if f.is_file() else None
        rows.append({"subset": s, "rows": n, "present": f.is_file(), "train_file": str(f)})
    return pd.DataFrame(rows)


def train_command(params_file: str, overrides: list[str] | None = None, force: bool = False) -> list[str]:
    """`gdo-repro train` for every run in the params, skipping (with a message) subsets not produced yet."""
    cmd = [sys.executable, "-m", "gdo_utils.cli", "train", "--params", params_file, "--skip-missing"]
    for ov in overrides or []:
        cmd += ["--set", ov]
    return cmd + (["--force"] if force else [])


def stream_training(params_file: str, overrides: list[str] | None = None, force: bool = False,
                    keep: Callable[[str], bool] | None = None) -> None:
    """Run training as a subprocess and print its log as it comes (lines filtered by `keep`)."""
    from .run import run_streamed

    env_keep = keep or (lambda line: not line.startswith(("Loading weights", "Writing model")))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    run_streamed(train_command(params_file, overrides, force),
                 lambda line: print(line, end="", flush=True) if env_keep(line) else None)


def runs_table(params: Params) -> pd.DataFrame:
    """One row per finished run: rows trained / held out / skipped, steps, checkpoints, first and last losses."""
    rows = []
    for s in params.train.runs:
        d = params.stage_dir("train", s)
        if not (d / "run_info.json").is_file():
            continue
        info = read_json(d / "run_info.json")
        log = pd.read_parquet(d / "train_log.parquet") if (d / "train_log.parquet").is_file() else pd.DataFrame()
        ev = log.dropna(subset=["eval_loss"]) if len(log) else log
        tr = log.dropna(subset=["loss"]) if len(log) else log
        prep = info.get("prepare", {})
        rows.append({"subset": s, "n_train": info["n_train"], "n_eval": info.get("n_eval"),
                     "skipped": prep.get("skipped"), "steps": info.get("steps"), "global_batch": info["global_batch"],
                     "checkpoints": " ".join(c["name"].split("-")[1] for c in info["checkpoints"]),
                     "first_loss": tr["loss"].iloc[0] if len(tr) else None,
                     "last_loss": tr["loss"].iloc[-1] if len(tr) else None,
                     "eval_loss_start": ev["eval_loss"].iloc[0] if len(ev) else None,
                     "eval_loss_end": ev["eval_loss"].iloc[-1] if len(ev) else None,
                     "finished": info["finished"]})
    return pd.DataFrame(rows)


def save_table(df: pd.DataFrame, stem: Path) -> list[Path]:
    """CSV + Markdown + LaTeX of a table."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    out = [stem.with_suffix(".csv"), stem.with_suffix(".md"), stem.with_suffix(".tex")]
    write_text(out[0], df.to_csv(index=False))
    write_text(out[1], markdown(df))
    write_text(out[2], df.to_latex(index=False, float_format="%.4g"))
    return out


def markdown(df: pd.DataFrame) -> str:
    """A GitHub Markdown table (floats to 4 significant digits; no tabulate dependency)."""
    fmt = lambda v: f"{v:.4g}" if isinstance(v, float) else ("" if v is None else str(v))  # noqa: E731
    head = "| " + " | ".join(map(str, df.columns)) + " |\n|" + "---|" * len(df.columns) + "\n"
    return head + "".join("| " + " | ".join(fmt(v) for v in r) + " |\n" for r in df.itertuples(index=False))


def curves_figure(params: Params, subsets: list[str] | None = None) -> plt.Figure:
    """Loss and held-out loss vs samples seen for the given runs (default: train.runs), saved under figures/."""
    from ..plots import save_figure
    from .run import load_run_logs

    logs = load_run_logs(params, subsets or params.train.runs)
    fig = plot_curves(logs, title="fixed recipe, only the subset changes")
    save_figure(fig, params.stage_dir("figures", "04_train_curves"))
    return fig
