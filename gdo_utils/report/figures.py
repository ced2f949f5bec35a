"""The report's figures in either mode: the data each figure needs, then the drawing (figures_gdo / figures_ofa).

Each builder returns a `FigureSpec` (name, title, one line of context, the paper's claim, the Figure).
Reference mode draws only published numbers; run mode draws only the run's (trajectory, OFA stage,
sweep), with the published bars beside the run's in the Rel figure.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from . import published, reference
from .figures_gdo import plot_convergence, plot_frontier, plot_heatmap, plot_schematic
from .figures_ofa import plot_confidence, plot_rel, plot_selector_curves, plot_sensitivity
from .inputs import RunInputs
from .names import MVBENCH, VIDEO_BENCHMARKS, benchmark_display
from .peak import PeakMatch, peak_match
from .tables_gdo import heatmap_claim, main_claim, profiles_claim, run_heatmap
from .tables_ofa import headline_claim, reference_rel, run_rel
from .trajectory import curve


@dataclass
class FigureSpec:
    """A figure of the report and what it is evidence for; `paths` are filled when saved."""

    name: str
    title: str
    context: str
    claim: str
    figure: plt.Figure
    paths: list[Path] = field(default_factory=list)


# ----------------------------------------------------------------------------- GDO
def convergence(inputs: RunInputs | None = None) -> FigureSpec:
    """Accuracy vs samples seen per benchmark, the Uni-10x end level and the peak-match point."""
    if inputs is None:
        curves = reference.curves()
        main = published.load("gdo_main").set_index("benchmark")
        refs = {b: float(main.loc[b, "uni10x"]) for b in curves}
        peaks = reference.peak_matches("table")
        notes = {b: f"figure's Uni-10x end {float(c['Uni-10x']['accuracy'].iloc[-1]):.2f} vs table R {refs[b]:.2f}"
                 for b, c in curves.items() if abs(float(c["Uni-10x"]["accuracy"].iloc[-1]) - refs[b]) > 0.03}
        fig = plot_convergence(curves, refs, peaks, "Published (digitised, approximate): GDO Temp+ vs Uni-10x", notes)
        ctx = "Digitised trajectories (+-0.03 pp, +-0.5k); GDO at the quarter epochs of its 53.3k subset; R from the main table."
    else:
        gdo_s, uni_s = inputs.main
        curves, refs, peaks = {}, {}, {}
        for b in VIDEO_BENCHMARKS:
            name = benchmark_display(b)
            cu, cg = curve(inputs.traj, uni_s, b), curve(inputs.traj, gdo_s, b)
            curves[name] = {"Uni-10x": pd.DataFrame({"samples_k": cu["samples_seen"] / 1000.0, "accuracy": cu["accuracy"]}),
                            "GDO": pd.DataFrame({"samples_k": cg["samples_seen"] / 1000.0, "accuracy": cg["accuracy"]})}
            refs[name] = inputs.end_value(uni_s, b)
            pm = peak_match(cg["samples_seen"] / 1000.0, cg["accuracy"], refs[name])
            peaks[name] = pm
        fig = plot_convergence(curves, refs, peaks, f"This run: {gdo_s} (GDO) vs {uni_s} (Uni-10x)")
        ctx = f"This run's checkpoints of `{gdo_s}` and `{uni_s}`; a benchmark not evaluated is an empty panel."
    return FigureSpec("gdo_convergence", "Convergence: accuracy vs samples seen", ctx, main_claim(), fig)


def frontier_points(inputs: RunInputs | None = None) -> pd.DataFrame:
    """benchmark, label, samples_k, accuracy, kind (profile / uniform) for the frontier plot."""
    rows = []
    if inputs is None:
        prof = published.load("gdo_profiles")
        main = published.load("gdo_main").set_index("benchmark")
        for r in prof.itertuples(index=False):
            rows.append({"benchmark": r.benchmark, "label": r.profile, "samples_k": r.samples_1x_k, "accuracy": r.accuracy,
                         "kind": "profile"})
        for b in main.index:
            rows.append({"benchmark": b, "label": "Uni-10x", "samples_k": reference.uniform_size_k(),
                         "accuracy": float(main.loc[b, "uni10x"]), "kind": "uniform"})
        return pd.DataFrame(rows)
    uniforms = dict.fromkeys(u for _, u in inputs.profiles.values())
    for b in VIDEO_BENCHMARKS:
        for name, (subset, _) in inputs.profiles.items():
            rows.append({"benchmark": benchmark_display(b), "label": name, "samples_k": inputs.end_samples(subset) / 1000.0,
                         "accuracy": inputs.end_value(subset, b), "kind": "profile"})
        for u in uniforms:
            rows.append({"benchmark": benchmark_display(b), "label": f"Uni-10x ({u})", "samples_k": inputs.end_samples(u) / 1000.0,
                         "accuracy": inputs.end_value(u, b), "kind": "uniform"})
    return pd.DataFrame(rows, columns=["benchmark", "label", "samples_k", "accuracy", "kind"])


def frontier(inputs: RunInputs | None = None) -> FigureSpec:
    """Each profile's 1x size and accuracy against Uni-10x, per benchmark."""
    src = "Published" if inputs is None else "This run"
    return FigureSpec("gdo_frontier", "Frontier: accuracy vs training-set size", f"{src}: each preset's 1x subset and "
                      "the Uni-10x baseline (dashed: Uni-10x accuracy).", profiles_claim(),
                      plot_frontier(frontier_points(inputs), f"{src}: goal presets vs Uni-10x"))


def heatmap_matrix(inputs: RunInputs | None = None) -> pd.DataFrame:
    """Profiles x MVBench subtasks (display names, heatmap order) of deltas vs Uni-10x."""
    long = published.load("gdo_mvbench_heatmap") if inputs is None else run_heatmap(inputs)
    m = long.pivot(index="profile", columns="subtask", values="delta_pp")
    order = [p for p in dict.fromkeys(published.load("gdo_mvbench_heatmap")["profile"])]
    return m.reindex(index=order, columns=[d for _, d in MVBENCH])


def heatmap(inputs: RunInputs | None = None) -> FigureSpec:
    src = "Published (0.5 pp cells)" if inputs is None else "This run"
    return FigureSpec("gdo_mvbench_heatmap", "MVBench per-subtask delta vs Uni-10x",
                      f"{src}: the first 11 columns are MVB Motion, the next 4 MVB Reasoning.", heatmap_claim(),
                      plot_heatmap(heatmap_matrix(inputs), f"{src}: MVBench Δ vs Uni-10x (pp)"))


def schematic() -> FigureSpec:
    return FigureSpec("gdo_schematic", "The GDO method", "Drawn with matplotlib from the method specification.",
                      "GDO changes only the training subset: descriptors -> score -> goal presets -> subsets; the "
                      "backbone, the recipe and the evaluation stay fixed.", plot_schematic())


# ----------------------------------------------------------------------------- OFA
def rel_figure(inputs: RunInputs | None = None) -> FigureSpec:
    """Rel per method and pool: the published rows (labelled by paper) and, in run mode, the run's."""
    df = reference_rel()
    if inputs is not None:
        run, _ = run_rel(inputs)
        run = run[run["published_pool"] != ""]
        extra = pd.DataFrame({"pool": run["published_pool"], "method": run["method"] + " (" + run["pool"] + ")",
                              "paper": "this run", "rel": run["Rel"]})
        df = pd.concat([extra, df], ignore_index=True)
    return FigureSpec("ofa_rel", "OFA: relative performance per method", "Bars coloured by the paper each row comes "
                      "from; the dashed line is full data (100).", headline_claim(), plot_rel(df, "Rel at 15% (full data = 100)"))


def selector_figures(params) -> list[FigureSpec]:
    """Run mode, when the OFA stage ran: selector training curves and confidence of pool vs selection."""
    from ..ofa import ofa_pools, selector_dir
    from ..ofa.views import load_scores, selected_ids, selector_summary

    if not (selector_dir(params) / "selector.json").is_file():
        return []
    meta, history = selector_summary(params)
    k = int(meta["feature_spec"]["k"])
    target = meta["summary"].get("target_macro_acc")
    curves = plot_selector_curves(history, int(meta["chosen_epoch"]), k, target,
                                  f"OFA selector (K = {k}, policy {meta['checkpoint_policy']})")
    pools = {}
    for p in ofa_pools(params):
        try:
            s = load_scores(params, p.name)
            ids = set(selected_ids(params, p.name))
        except FileNotFoundError:
            continue
        s = s[s["scored"]]
        pools[p.name] = (s["conf"].to_numpy(), s.loc[s["sample_id"].isin(ids), "conf"].to_numpy())
    conf = plot_confidence(pools, "Confidence: scored pool vs OFA selection")
    return [FigureSpec("ofa_selector_curves", "OFA selector training", "From outputs/<run>/ofa/selector/history.parquet; "
                       "the dashed line is the epoch the checkpoint policy chose.",
                       "The selector is trained once on the source pool's cluster pseudo-labels; the checkpoint is chosen "
                       "by validation macro accuracy and coverage.", curves),
            FigureSpec("ofa_confidence", "Confidence of the pool vs the selection", "From outputs/<run>/ofa/<pool>/"
                       "scores.parquet and selected_ids.txt.", "OFA keeps the least-confident samples of every cluster, "
                       "on the source pool and on the transferred pool.", conf)]


def sensitivity(sweep: pd.DataFrame) -> FigureSpec:
    return FigureSpec("ofa_sensitivity", "Sensitivity to K and the budget ratio", "gdo-repro report --sweep: one line "
                      "per K; Rel only where grid points were trained and evaluated.",
                      "OFA selects anytime: one selector serves every budget.", plot_sensitivity(sweep, "OFA sweep"))
