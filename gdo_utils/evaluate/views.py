"""Views of the evaluation outputs for notebook 05: accuracy tables, the trajectory plot, example questions."""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from ..config import Params
from ..io import read_parquet
from . import registry
from .stage import load_questions
from .video import load_eval_video


def overall_table(traj: pd.DataFrame) -> pd.DataFrame:
    """One row per (subset, checkpoint, samples seen), one column per benchmark: the overall accuracy."""
    o = traj[traj["level"] == "overall"]
    return o.pivot_table(index=["subset", "samples_seen", "checkpoint"], columns="benchmark", values="accuracy").round(2)


def breakdown_table(traj: pd.DataFrame, benchmark: str = "mvbench", level: str = "subtask") -> pd.DataFrame:
    """Accuracy per subtask (rows) and (subset, samples seen) (columns) for one benchmark and level."""
    d = traj[(traj["benchmark"] == benchmark) & (traj["level"] == level)]
    return d.pivot_table(index="subtask", columns=["subset", "samples_seen"], values="accuracy").round(1)


def plot_trajectory(traj: pd.DataFrame) -> plt.Figure:
    """Overall accuracy against samples seen, one panel per benchmark, one line per subset."""
    import seaborn as sns

    o = traj[traj["level"] == "overall"]
    names = sorted(o["benchmark"].unique())
    fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 2.8), squeeze=False)
    pal = sns.color_palette("colorblind")
    for ax, b in zip(axes[0], names):
        for i, (s, g) in enumerate(o[o["benchmark"] == b].groupby("subset")):
            g = g.sort_values("samples_seen")
            ax.plot(g["samples_seen"], g["accuracy"], marker="o", color=pal[i % len(pal)], label=s)
        ax.set_title(b)
        ax.set_xlabel("samples seen")
        ax.set_ylabel("accuracy (%)")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def example_questions(params: Params, subset: str, checkpoint: str, benchmark: str = "mvbench", n: int = 3,
                      eval_dir: str | Path | None = None) -> plt.Figure:
    """A few questions: the frames the model saw (with timestamps), the prompt, the reply and whether it was right."""
    ev = Path(eval_dir or params.stage_dir("eval"))
    log = read_parquet(ev / subset / checkpoint / f"{benchmark}.log.parquet")
    log = log[log["media_error"].isna()].groupby("subtask" if benchmark == "mvbench" else "task_type").head(1).head(n)
    qs = {q.qid: q for q in load_questions(params, benchmark)}
    col = "correct_" + params.evaluate.extraction
    cfg = params.evaluate.model_copy(update={"min_pixels": 1024, "max_pixels": 16384})  # display size only
    fig, axes = plt.subplots(len(log), 1, figsize=(9, 2.6 * len(log)), squeeze=False)
    for ax, (_, r) in zip(axes[:, 0], log.iterrows()):
        v = load_eval_video(qs[r["question_id"]], cfg)
        strip = v.frames.clamp(0, 255).byte().permute(2, 0, 3, 1).reshape(v.frames.shape[2], -1, 3).numpy()
        ax.imshow(strip)
        ax.set_xticks([(i + 0.5) * v.frames.shape[3] for i in range(len(v.indices))])
        ax.set_xticklabels([f"{i / v.fps:.1f}s" for i in v.indices], fontsize=7)
        ax.set_yticks([])
        prompt = r["prompt"].replace("\n", " | ")
        verdict = "right" if r[col] else "wrong"
        ax.set_title(f"{r['question_id']}: {prompt[:110]}\nreply: {r['reply'][:60].encode('ascii', 'replace').decode()!r} -> parsed "
                     f"{r['parsed_' + params.evaluate.extraction]!r}, gold {r['gold']} ({verdict})", fontsize=8, loc="left")
    fig.tight_layout()
    return fig


def registered() -> pd.DataFrame:
    """The benchmark registry: name, breakdown levels, overall rule, options."""
    return pd.DataFrame([{"benchmark": b.name, "levels": ", ".join(b.levels), "overall": b.overall,
                          "max_options": b.max_options} for b in map(registry.get, registry.names())])
