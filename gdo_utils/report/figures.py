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
from .peak import peak_match, reduction
from .tables_gdo import heatmap_claim, main_claim, profiles_claim, run_heatmap
from .tables_ofa import headline_claim, reference_rel, run_rel
from .trajectory import curve


@dataclass
class FigureSpec:
    """A figure of the report, what it is evidence for and where its numbers come from; `paths` are filled when saved."""

    name: str
    title: str
    context: str
    claim: str
    figure: plt.Figure
    source: str = ""
    notes: list[str] = field(default_factory=list)
    paths: list[Path] = field(default_factory=list)


# ----------------------------------------------------------------------------- GDO
def _reference_convergence() -> FigureSpec:
    curves = reference.curves()
    chk = reference.speedup_check().set_index("benchmark")
    refs, peaks, notes, labels = {}, {}, {}, {}
    for b, c in curves.items():
        level = float(chk.loc[b, "line_level"])  # the release draws its line at the Uni-10x curve's highest point
        refs[b], peaks[b] = level, peak_match(c["GDO"]["samples_k"], c["GDO"]["accuracy"], level)
        labels[b] = float(chk.loc[b, "label"])
        notes[b] = (f"label as the release prints it; its points give {chk.loc[b, 'line_r_512']:.1f}x "
                    f"(table: {chk.loc[b, 'table_r']:.1f}x)")
    fig = plot_convergence(curves, refs, peaks, "Published, digitised (approximate): GDO Temp+ vs Uni-10x", notes, labels)
    return FigureSpec("gdo_convergence", "Convergence: accuracy vs training samples",
                      "Digitised points of the release's convergence figure (+-0.03 pp, +-0.5k); GDO at the quarter epochs "
                      "of its 53.3k subset; the dashed line at the Uni-10x curve's highest point, as the release draws it.",
                      main_claim(), fig, source=published.label("gdo_trajectories"),
                      notes=["The speed-up labels are the release's (~13.2x, ~14.5x, ~14.4x); they do not follow from the "
                             "figure's own points (listed under inconsistencies)."])


def convergence(inputs: RunInputs | None = None) -> FigureSpec:
    """Accuracy vs samples seen per benchmark, the peak-match line and point (run mode: only where defined)."""
    if inputs is None:
        return _reference_convergence()
    from .tables_gdo import headline_verdict

    gdo_s, uni_s = inputs.main
    curves, refs, peaks, speedups, notes, empty = {}, {}, {}, {}, {}, {}
    for b in VIDEO_BENCHMARKS:
        name = benchmark_display(b)
        cu, cg = curve(inputs.traj, uni_s, b), curve(inputs.traj, gdo_s, b)
        curves[name] = {"Uni-10x": pd.DataFrame({"samples_k": cu["samples_seen"] / 1000.0, "accuracy": cu["accuracy"]}),
                        "GDO": pd.DataFrame({"samples_k": cg["samples_seen"] / 1000.0, "accuracy": cg["accuracy"]})}
        refs[name] = inputs.end_value(uni_s, b)
        defined, why = headline_verdict(inputs, b)
        missing = inputs.not_trained((uni_s, gdo_s))
        empty[name] = f"{', '.join(missing)}: {inputs.not_trained_phrase}" if missing else "not evaluated"
        if defined:
            pm = peak_match(cg["samples_seen"] / 1000.0, cg["accuracy"], refs[name])
            peaks[name] = pm
            speedups[name] = reduction(inputs.end_samples(uni_s) / 1000.0, pm.samples)
        elif why:
            v = inputs.verdict(uni_s, b)
            notes[name] = f"peak match undefined:\nUni-10x ends at {v.accuracy:.1f}% (n = {v.n}),\nchance {v.chance:.1f}%"
    chance = {benchmark_display(b): inputs.chance_of(b) for b in VIDEO_BENCHMARKS}
    fig = plot_convergence(curves, refs, peaks, f"This run: {gdo_s} (GDO) vs {uni_s} (Uni-10x)", notes, speedups, empty,
                           chance)
    return FigureSpec("gdo_convergence", "Convergence: accuracy vs training samples",
                      f"This run's checkpoints of `{gdo_s}` and `{uni_s}`; the peak-match line and star only where the "
                      "Uni-10x end accuracy is above chance.", main_claim(), fig, source="this run")


def frontier_points(inputs: RunInputs | None = None) -> pd.DataFrame:
    """benchmark, profile, uni10x, gdo, delta: the dumbbells of the frontier figure."""
    rows = []
    if inputs is None:
        prof = published.load("gdo_profiles")
        main = published.load("gdo_main").set_index("benchmark")
        for r in prof.itertuples(index=False):
            rows.append({"benchmark": r.benchmark, "profile": r.profile, "uni10x": float(main.loc[r.benchmark, "uni10x"]),
                         "gdo": r.accuracy, "delta": r.delta_pp})
    else:
        for b in VIDEO_BENCHMARKS:
            for name, (subset, uni) in inputs.profiles.items():
                u, g = inputs.end_value(uni, b), inputs.end_value(subset, b)
                rows.append({"benchmark": benchmark_display(b), "profile": name, "uni10x": u, "gdo": g, "delta": g - u})
    return pd.DataFrame(rows, columns=["benchmark", "profile", "uni10x", "gdo", "delta"])


def frontier(inputs: RunInputs | None = None) -> FigureSpec:
    """Each profile's GDO accuracy against its Uni-10x, per benchmark, as the release's dumbbell chart."""
    if inputs is None:
        return FigureSpec("gdo_frontier", "Frontier shifts by goal: GDO vs Uni-10x per profile",
                          "Published profiles table drawn as the release's frontier chart; the labels are the printed "
                          "deltas to one decimal.", profiles_claim(),
                          plot_frontier(frontier_points(None), "Published: goal presets vs Uni-10x"),
                          source=f"{published.label('gdo_profiles')} (the release's frontier figure re-drawn from it)")
    empty = {name: (inputs.not_trained_phrase if inputs.not_trained(pair) else "not evaluated")
             for name, pair in inputs.profiles.items()}
    return FigureSpec("gdo_frontier", "Frontier shifts by goal: GDO vs Uni-10x per profile",
                      "This run: each profile's last checkpoint and its Uni-10x.", profiles_claim(),
                      plot_frontier(frontier_points(inputs), "This run: goal presets vs Uni-10x", empty), source="this run")


def heatmap_matrix(inputs: RunInputs | None = None) -> pd.DataFrame:
    """Profiles x MVBench subtasks (display names, heatmap order) of deltas vs Uni-10x."""
    long = published.load("gdo_mvbench_heatmap") if inputs is None else run_heatmap(inputs)
    m = long.pivot(index="profile", columns="subtask", values="delta_pp")
    order = [p for p in dict.fromkeys(published.load("gdo_mvbench_heatmap")["profile"])]
    m = m.reindex(index=order, columns=[d for _, d in MVBENCH])
    if inputs is not None:  # a row left blank because its subsets were not trained says so
        m.index = [f"{p} ({inputs.not_trained_phrase})" if p in inputs.profiles and inputs.not_trained(inputs.profiles[p])
                   else p for p in m.index]
    return m


def heatmap(inputs: RunInputs | None = None) -> FigureSpec:
    src = "Published (cell labels, 0.5 pp)" if inputs is None else "This run"
    return FigureSpec("gdo_mvbench_heatmap", "MVBench per-subtask delta vs Uni-10x",
                      f"{src}: the first 11 columns are MVB Motion, the next 4 MVB Reasoning; orange = below Uni-10x, "
                      "blue = above (the release's colours).", heatmap_claim(),
                      plot_heatmap(heatmap_matrix(inputs), f"{src}: MVBench Δ vs Uni-10x (pp)"),
                      source=published.label("gdo_mvbench_heatmap") if inputs is None else "this run")


def schematic() -> FigureSpec:
    return FigureSpec("gdo_schematic", "The GDO method", "The release's method figure (assets/method.png) as its five "
                      "panels, redrawn with matplotlib.",
                      "GDO changes only the training subset: shared pool -> six descriptors -> shared scorer -> goal "
                      "controls -> output subsets; the backbone, the recipe and the evaluation stay fixed.", plot_schematic(),
                      source="GDO release README, method figure (redrawn: panels and labels, not the artwork)")


# ----------------------------------------------------------------------------- OFA
def rel_figure(inputs: RunInputs | None = None) -> FigureSpec:
    """Rel per method and pool: the published rows (labelled by paper) and, in run mode, the run's."""
    df = reference_rel()
    src = f"{published.label('ofa_headline')}; {published.label('ofa_baselines_llava665k')}"
    context = "Bars coloured by the paper each row comes from; the dashed line is full data (100)."
    if inputs is not None:
        run, _ = run_rel(inputs)
        full = run["Rel"].notna()
        tag = [f" ({r.pool})" if full_ else f" ({r.pool}, over {r.n_benchmarks} of 10 benchmarks)"
               for r, full_ in zip(run.itertuples(index=False), full)]
        extra = pd.DataFrame({"pool": run["published_pool"].where(run["published_pool"] != "", run["pool"]),
                              "method": run["method"] + pd.Series(tag, index=run.index),
                              "paper": ["this run" if f else "this run: Rel over the evaluated benchmarks (not comparable)"
                                        for f in full],
                              "rel": run["Rel"].where(full, run["rel_partial"])})
        df = pd.concat([extra.dropna(subset=["rel"]), df], ignore_index=True)
        src = f"this run vs {src}"
        context += (" The run's bars come first in each panel; a run that evaluated fewer than the ten benchmarks shows "
                    "Rel over those it has, marked as not comparable with the papers' Rel.")
    return FigureSpec("ofa_rel", "OFA: relative performance per method", context, headline_claim(),
                      plot_rel(df, "Rel at 15% (full data = 100)"), source=src)


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
                       "by validation macro accuracy and coverage.", curves,
                       source="this run's OFA stage (the OFA paper's own figures are not available)"),
            FigureSpec("ofa_confidence", "Confidence of the pool vs the selection", "From outputs/<run>/ofa/<pool>/"
                       "scores.parquet and selected_ids.txt.", "OFA keeps the least-confident samples of every cluster, "
                       "on the source pool and on the transferred pool.", conf,
                       source="this run's OFA stage (the OFA paper's own figures are not available)")]


def sensitivity(sweep: pd.DataFrame) -> FigureSpec:
    return FigureSpec("ofa_sensitivity", "Sensitivity to K and the budget ratio", "gdo-repro report --sweep: one line "
                      "per K; Rel only where grid points were trained and evaluated.",
                      "OFA selects anytime: one selector serves every budget.", plot_sensitivity(sweep, "OFA sweep"),
                      source="this run's sweep (no published counterpart is available)")
