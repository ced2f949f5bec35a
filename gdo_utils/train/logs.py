"""The training log table (from the Trainer's log_history) and the loss curves figure."""
from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

LOG_COLUMNS = ["step", "samples_seen", "tokens", "loss", "lr", "grad_norm", "eval_loss", "samples_per_s", "tokens_per_s"]


def log_table(log_history: list[dict]) -> pd.DataFrame:
    """One row per logged step: training loss / lr / grad norm, held-out loss, throughput.

    Throughput is the samples (tokens) of the steps since the previous log divided by the compute
    seconds of those steps (`step_seconds`, measured by the StepTimer callback), so time spent
    evaluating, saving or waiting for a resume does not count.
    """
    rows: dict[int, dict] = {}
    for e in log_history:
        step = int(e.get("step", 0))
        r = rows.setdefault(step, {"step": step})
        if "samples_seen" in e:
            r["samples_seen"] = int(e["samples_seen"])
        if "loss" in e:
            r.update(loss=e["loss"], lr=e.get("learning_rate"), grad_norm=e.get("grad_norm"),
                     tokens=e.get("num_input_tokens_seen"), _secs=e.get("step_seconds"))
        if "eval_loss" in e:
            r["eval_loss"] = e["eval_loss"]
    df = pd.DataFrame(sorted(rows.values(), key=lambda r: r["step"]))
    for c in LOG_COLUMNS + ["_secs"]:
        if c not in df:
            df[c] = np.nan
    df["samples_seen"] = df["samples_seen"].fillna(0).astype("int64")
    df["tokens"] = df["tokens"].ffill().fillna(0).astype("int64")
    prev_s, prev_t, sps, tps = 0, 0, [], []
    for s, t, secs, loss in zip(df["samples_seen"], df["tokens"], df["_secs"], df["loss"]):
        if pd.isna(loss):
            sps.append(math.nan)
            tps.append(math.nan)
            continue
        ok = secs is not None and not pd.isna(secs) and secs > 0
        sps.append((s - prev_s) / secs if ok else math.nan)
        tps.append((t - prev_t) / secs if ok else math.nan)
        prev_s, prev_t = s, t
    df["samples_per_s"], df["tokens_per_s"] = sps, tps
    out = df[LOG_COLUMNS].copy()
    for c in ("loss", "lr", "grad_norm", "eval_loss", "samples_per_s", "tokens_per_s"):
        out[c] = out[c].astype("float64")
    out["step"] = out["step"].astype("int64")
    return out


def plot_curves(logs: dict[str, pd.DataFrame], title: str = "") -> plt.Figure:
    """Training loss (thin) and held-out loss (markers) vs samples seen, one colour per run."""
    import seaborn as sns

    colours = sns.color_palette("colorblind", max(3, len(logs)))
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), sharex=False)
    for (name, df), c in zip(logs.items(), colours):
        tr = df.dropna(subset=["loss"])
        axes[0].plot(tr["samples_seen"], tr["loss"], color=c, lw=1.2, label=name)
        ev = df.dropna(subset=["eval_loss"])
        axes[1].plot(ev["samples_seen"], ev["eval_loss"], color=c, marker="o", lw=1.5, label=name)
    axes[0].set(xlabel="samples seen", ylabel="training loss (per step)", title="training loss")
    axes[1].set(xlabel="samples seen", ylabel="held-out loss", title="held-out loss")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
