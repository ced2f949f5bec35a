"""The GDO paper's tables, each in two modes.

reference (`inputs=None`): from the published numbers; the CSV equals the published file cell for
cell (peak match / reduction and MVB Motion / Reasoning recomputed, gdo_utils.report.reference).
run (`inputs` given): from the run's trajectory, the published value and the difference beside
every cell; whatever the run did not evaluate is missing.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from . import published, reference
from .columns import Col, reference_frames, run_frames
from .fmt import is_missing as fmt_missing
from .inputs import RunInputs
from .names import (ABLATION_BENCHMARKS, MVBENCH, VIDEO_BENCHMARKS, benchmark_display, profile_display,
                    subtask_display, subtask_key)
from .peak import peak_match, reduction
from .render import Table
from .trajectory import curve

GROUP_COLUMNS = ("mvb_motion", "mvb_reasoning", "vmm_temporal_perception", "mlvu_order", "mlvu_sportsqa", "mlvu_ego")
GROUP_LABELS = ("MVB Motion", "MVB Reasoning", "VideoMME Temporal Perception", "MLVU Order", "MLVU SportsQA", "MLVU Ego")


def _table(name: str, title: str, context: str, claim: str, frames, mode: str, notes: list[str],
           recomputed: str = "") -> Table:
    """A GDO table labelled with its published file's source and exactness (and what the kit recomputed)."""
    csv, disp = frames
    src = published.label(name) + (f"; recomputed by the kit: {recomputed}" if recomputed else "")
    return Table(name, title, context, csv, disp, claim=claim, source=src if mode == "reference" else f"this run vs {src}",
                 notes=notes)


def _order(name: str) -> list[str]:
    return list(published.load_strings(name).columns)


# ----------------------------------------------------------------------------- main results
def main_cols(profile: str = "Temp+") -> list[Col]:
    return [Col("uni10x", "Uni-10x"), Col("gdo", f"GDO ({profile})"), Col("delta_pp", "Δ (pp)", kind="delta"),
            Col("peak_match_k", "Peak match", 1, "kilo"), Col("reduction_x", "Reduction", 1, "times")]


def main_claim() -> str:
    m = reference.main_numeric()
    return (f"GDO Temp+ trained on 53.3k samples beats Uni-10x (512k) on all four benchmarks "
            f"({', '.join(f'{b} {d:+.2f}' for b, d in zip(m['benchmark'], m['delta_pp']))} pp) and reaches Uni-10x's final "
            f"accuracy after {', '.join(f'{p:.1f}k' for p in m['peak_match_k'])} samples "
            f"({min(m['reduction_x']):.1f}x-{max(m['reduction_x']):.1f}x fewer).")


def headline_verdict(inputs: RunInputs, benchmark: str) -> tuple[bool, str]:
    """(defined, reason): peak match and reduction are stated only when the Uni-10x end accuracy is above chance
    (its whole 95% Wilson interval) - otherwise "reaching R" is reaching noise."""
    gdo_s, uni_s = inputs.main
    name = benchmark_display(benchmark)
    if not inputs.trained(uni_s) or not inputs.trained(gdo_s):
        missing = " and ".join(f"`{s}`" for s in inputs.not_trained((uni_s, gdo_s)))
        return False, f"Peak match and reduction undefined: {missing} {inputs.not_trained_phrase}."
    v = inputs.verdict(uni_s, benchmark)
    if v.above or np.isnan(v.accuracy):  # not evaluated: the cells are simply missing
        return v.above, ""
    return False, f"{name}: peak match and reduction undefined: the Uni-10x (`{uni_s}`) end accuracy {v.reason}."


def run_main(inputs: RunInputs) -> tuple[pd.DataFrame, list[str]]:
    """Numeric main table of a run, and notes (undefined headlines, peak matches that are upper bounds or not reached)."""
    gdo_s, uni_s = inputs.main
    t, rows, notes = inputs.traj, [], []
    for b in VIDEO_BENCHMARKS:
        uni, gdo = inputs.end_value(uni_s, b), inputs.end_value(gdo_s, b)
        c = curve(t, gdo_s, b)
        defined, why = headline_verdict(inputs, b)
        pm = peak_match(c["samples_seen"], c["accuracy"], uni)
        if not defined:
            notes += [why] if why else []
            why = why if not np.isnan(uni) else ""  # a value that exists but says nothing: "undefined", not "—"
            peak, red = float("nan"), float("nan")
        else:
            if len(c) and not pm.reached:
                notes.append(f"{benchmark_display(b)}: the {gdo_s} curve never reaches the {uni_s} end accuracy {uni:.2f}.")
            if pm.at_first_checkpoint:
                notes.append(f"{benchmark_display(b)}: {gdo_s} is already at or above R at its first checkpoint; the peak "
                             f"match is that checkpoint (an upper bound).")
            peak, red = pm.samples / 1000.0, reduction(inputs.end_samples(uni_s), pm.samples)
        rows.append({"benchmark": benchmark_display(b), "uni10x": uni, "gdo": gdo, "delta_pp": gdo - uni,
                     "peak_match_k": peak, "reduction_x": red, "n_uni10x": inputs.end_n(uni_s, b),
                     "n_gdo": inputs.end_n(gdo_s, b), "why_peak_match_k": why, "why_reduction_x": why})
    return pd.DataFrame(rows), list(dict.fromkeys(notes))


def missing_why(inputs: RunInputs, *subsets: str) -> str:
    """'not trained on the demo' when any of the row's subsets has no trained checkpoint, else ''."""
    return inputs.not_trained_phrase if inputs.not_trained(subsets) else ""


def untrained_note(inputs: RunInputs, subsets) -> list[str]:
    """One note naming the table's subsets that have no trained checkpoint (their cells are empty)."""
    missing = inputs.not_trained(subsets)
    if not missing:
        return []
    return [f"Empty cells of {', '.join(f'`{s}`' for s in missing)}: {inputs.not_trained_phrase} (no checkpoint in the "
            "trajectory), not a missing evaluation."]


def chance_note(inputs: RunInputs) -> str:
    """The chance levels the verdicts use, and the interval method."""
    from ..binomial import INTERVAL_METHOD

    known = [f"{benchmark_display(b)} {inputs.chance_of(b):.1f}%" for b in VIDEO_BENCHMARKS if b in inputs.chance]
    return (f"Accuracies carry n (questions) and a {INTERVAL_METHOD}. Chance levels from the benchmark files' option "
            f"counts: {', '.join(known) if known else 'none readable'}. Peak match and reduction are stated only when "
            "the Uni-10x end accuracy's interval lies above chance.")


def main_table(inputs: RunInputs | None = None) -> Table:
    """GDO (Temp+) vs Uni-10x, delta, peak match (interpolated), reduction."""
    title = "Main results: GDO vs Uni-10x"
    if inputs is None:
        m = reference.main_numeric()
        notes = [f"Peak match recomputed by linear interpolation on the digitised GDO curve "
                 f"with R = the Uni-10x column; reduction = 512k / peak match. {b}: {s}."
                 for b, s in zip(m["benchmark"], m["peak_source"]) if s != "recomputed"]
        return _table("gdo_main", title, "Published numbers; peak match and reduction recomputed, not copied.",
                      main_claim(), reference_frames(m, [("benchmark", "Benchmark")], main_cols(), _order("gdo_main")),
                      "reference", notes, recomputed="peak match and reduction of MVBench, VideoMME and MLVU from the "
                      "digitised curves (they equal the printed values)")
    run, notes = run_main(inputs)
    gdo_s, uni_s = inputs.main
    notes = notes + untrained_note(inputs, inputs.main[::-1]) + [chance_note(inputs)]
    return _table("gdo_main", title, f"This run: GDO = `{gdo_s}`, Uni-10x = `{uni_s}` (last checkpoints), "
                  "peak match interpolated on the run's GDO checkpoints.", main_claim(),
                  run_frames(run, published.load("gdo_main"), [("benchmark", "Benchmark")], main_cols(inputs.main_profile)),
                  "run", notes)


# ----------------------------------------------------------------------------- four profiles
PROFILE_COLS = [Col("samples_1x_k", "1x size", 1, "kilo"), Col("accuracy", "Accuracy"), Col("delta_pp", "Δ vs Uni-10x", kind="delta")]


def profiles_claim() -> str:
    p = published.load("gdo_profiles")
    ahead = [name for name, g in p.groupby("profile", sort=False) if (g["delta_pp"] > 0).all()]
    return (f"Each goal preset trains on its own 1x subset ({', '.join(f'{n} {s:.1f}k' for n, s in p.groupby('profile', sort=False)['samples_1x_k'].first().items())}); "
            f"only {', '.join(ahead)} is ahead of Uni-10x on all four benchmarks.")


def run_profiles(inputs: RunInputs) -> pd.DataFrame:
    rows = []
    for name, (subset, uni) in inputs.profiles.items():
        size = inputs.end_samples(subset) / 1000.0
        for b in VIDEO_BENCHMARKS:
            acc = inputs.end_value(subset, b)
            rows.append({"profile": name, "benchmark": benchmark_display(b), "samples_1x_k": size, "accuracy": acc,
                         "delta_pp": acc - inputs.end_value(uni, b), "n_accuracy": inputs.end_n(subset, b),
                         "missing_why": missing_why(inputs, subset, uni)})
    return pd.DataFrame(rows)


def profiles_table(inputs: RunInputs | None = None) -> Table:
    """MinLoss / Diverse / Temp / Temp+: 1x size, accuracy and delta vs Uni-10x per benchmark."""
    title = "Goal presets: 1x size, accuracy and delta vs Uni-10x"
    keys = [("profile", "Profile"), ("benchmark", "Benchmark")]
    if inputs is None:
        return _table("gdo_profiles", title, "Published numbers (deltas were computed from unrounded scores).",
                      profiles_claim(), reference_frames(published.load("gdo_profiles"), keys, PROFILE_COLS,
                                                         _order("gdo_profiles")), "reference", [])
    return _table("gdo_profiles", title, "This run: each profile's last checkpoint vs its own Uni-10x subset; 1x size = "
                  "samples seen at that checkpoint.", profiles_claim(),
                  run_frames(run_profiles(inputs), published.load("gdo_profiles"), keys, PROFILE_COLS), "run",
                  untrained_note(inputs, [s for pair in inputs.profiles.values() for s in pair]))


# ----------------------------------------------------------------------------- temporal subtask gains
TEMPORAL_COLS = [Col("uni10x", "Uni-10x", csv_fixed=True), Col("gdo", "Preset", csv_fixed=True),
                 Col("delta_pp", "Δ (pp)", kind="delta", csv_fixed=True)]


def temporal_claim() -> str:
    t = published.load("gdo_temporal_subtasks")
    best = t.loc[t["delta_pp"].idxmax()]
    return (f"Each preset's largest gains over Uni-10x on temporal subtasks reach {t['delta_pp'].min():+.2f} to "
            f"{t['delta_pp'].max():+.2f} pp; the largest is {best.profile} on {best.benchmark} {best.subtask}.")


def run_temporal(inputs: RunInputs, top: int = 5) -> tuple[pd.DataFrame, list[str]]:
    """Per profile the `top` largest deltas among the configured temporal subtasks, ascending like the paper."""
    rows, notes = [], []
    pub = published.load("gdo_temporal_subtasks")
    for name, (subset, uni) in inputs.profiles.items():
        found = []
        for b, k in inputs.temporal:
            u, g = inputs.end_value(uni, b, k), inputs.end_value(subset, b, k)
            if not (np.isnan(u) or np.isnan(g)):
                found.append({"profile": name, "benchmark": benchmark_display(b), "subtask": subtask_display(b, k),
                              "uni10x": u, "gdo": g, "delta_pp": g - u, "n_uni10x": inputs.end_n(uni, b, k),
                              "n_gdo": inputs.end_n(subset, b, k)})
        if found:
            best = sorted(found, key=lambda r: (-r["delta_pp"], r["benchmark"], r["subtask"]))[:top]
            rows += sorted(best, key=lambda r: (r["delta_pp"], r["benchmark"], r["subtask"]))
        else:
            why = (inputs.not_trained_phrase if inputs.not_trained((subset, uni)) else "not evaluated")
            notes.append(f"{name}: no temporal subtask on both `{subset}` and `{uni}` ({why}); the paper's rows are "
                         "shown with the run's cells missing.")
            for r in pub[pub["profile"] == name].itertuples(index=False):
                rows.append({"profile": name, "benchmark": r.benchmark, "subtask": r.subtask, "uni10x": np.nan,
                             "gdo": np.nan, "delta_pp": np.nan, "missing_why": missing_why(inputs, subset, uni)})
    cols = ["profile", "benchmark", "subtask", "uni10x", "gdo", "delta_pp", "n_uni10x", "n_gdo", "missing_why"]
    return pd.DataFrame(rows, columns=cols), notes


def temporal_table(inputs: RunInputs | None = None) -> Table:
    """Top-5 temporal subtask gains per profile."""
    title = "Temporal subtask gains (top 5 per profile)"
    keys = [("profile", "Profile"), ("benchmark", "Benchmark"), ("subtask", "Subtask")]
    if inputs is None:
        return _table("gdo_temporal_subtasks", title, "Published numbers, ascending by gain within each profile.",
                      temporal_claim(), reference_frames(published.load("gdo_temporal_subtasks"), keys, TEMPORAL_COLS,
                                                         _order("gdo_temporal_subtasks")), "reference", [])
    run, notes = run_temporal(inputs)
    notes.append("Ranked among report.temporal_subtasks: " + ", ".join(f"{b}:{k}" for b, k in inputs.temporal) + ".")
    return _table("gdo_temporal_subtasks", title, "This run's top 5 per profile; the paper's value where the paper's "
                  "top 5 has the same subtask.", temporal_claim(),
                  run_frames(run, published.load("gdo_temporal_subtasks"), keys, TEMPORAL_COLS), "run", notes)


# ----------------------------------------------------------------------------- subtask groups
GROUP_COLS = [Col(c, label, 1, "delta") for c, label in zip(GROUP_COLUMNS, GROUP_LABELS)]


def groups_claim() -> str:
    g = published.load("gdo_subtask_groups").set_index("profile")
    return (f"Temp+ gains most where time matters: VideoMME Temporal Perception {g.loc['Temp+', 'vmm_temporal_perception']:+.1f}, "
            f"MVB Reasoning {g.loc['Temp+', 'mvb_reasoning']:+.1f}, MLVU SportsQA {g.loc['Temp+', 'mlvu_sportsqa']:+.1f} pp.")


def _delta(inputs: RunInputs, subset: str, uni: str, b: str, k: str) -> float:
    return inputs.end_value(subset, b, k) - inputs.end_value(uni, b, k)


def run_groups(inputs: RunInputs) -> pd.DataFrame:
    from .groups import mvbench_groups

    rows = []
    for name, (subset, uni) in inputs.profiles.items():
        mvb = mvbench_groups({k: _delta(inputs, subset, uni, "mvbench", k) for k, _ in MVBENCH})
        rows.append({"profile": name, "mvb_motion": mvb["mvb_motion"], "mvb_reasoning": mvb["mvb_reasoning"],
                     "vmm_temporal_perception": _delta(inputs, subset, uni, "videomme", "Temporal Perception"),
                     "mlvu_order": _delta(inputs, subset, uni, "mlvu", "order"),
                     "mlvu_sportsqa": _delta(inputs, subset, uni, "mlvu", "sportsQA"),
                     "mlvu_ego": _delta(inputs, subset, uni, "mlvu", "ego"), "missing_why": missing_why(inputs, subset, uni)})
    return pd.DataFrame(rows)


def groups_table(inputs: RunInputs | None = None) -> Table:
    """Subtask-group deltas (MVB Motion / Reasoning as the README defines them)."""
    title = "Subtask-group deltas vs Uni-10x (pp)"
    keys = [("profile", "Profile")]
    if inputs is None:
        return _table("gdo_subtask_groups", title, "MVB Motion / Reasoning recomputed from the heatmap (mean of 11 / 4 "
                      "subtasks, half-to-even to 0.1); the other columns as published.", groups_claim(),
                      reference_frames(reference.groups_numeric(), keys, GROUP_COLS, _order("gdo_subtask_groups")),
                      "reference", [], recomputed="MVB Motion and MVB Reasoning from the heatmap's cell labels (they "
                      "equal the printed values)")
    return _table("gdo_subtask_groups", title, "This run: per-subtask deltas (profile vs its Uni-10x); a group with a "
                  "member not evaluated is missing.", groups_claim(),
                  run_frames(run_groups(inputs), published.load("gdo_subtask_groups"), keys, GROUP_COLS), "run",
                  untrained_note(inputs, [s for pair in inputs.profiles.values() for s in pair]))


# ----------------------------------------------------------------------------- ablation
ABLATION_COLS = [Col(b, benchmark_display(b)) for b in ABLATION_BENCHMARKS]
ABLATION_DELTAS = [Col(f"{b}_delta", f"{benchmark_display(b)} Δ", kind="delta") for b in ABLATION_BENCHMARKS]


def ablation_claim() -> str:
    a = published.load("gdo_ablation").set_index("setting")
    full = a.loc["Temp+"]
    lower = {b: [s for s in a.index[1:] if a.loc[s, b] < full[b]] for b in ABLATION_BENCHMARKS}
    parts = [f"{benchmark_display(b)}: {len(lower[b])} of {len(a) - 1} ablations lower" for b in ABLATION_BENCHMARKS]
    return "Removing score terms from Temp+ costs accuracy on MVBench and VideoMME; on MLVU only w/o SC is clearly lower (" + \
        "; ".join(parts) + ")."


def run_ablation(inputs: RunInputs) -> pd.DataFrame:
    """Each ablation's end accuracy (with n) and its delta vs the run's Temp+ row."""
    rows = []
    base = inputs.ablations.get("Temp+")
    for s, subset in inputs.ablations.items():
        row = {"setting": s, "missing_why": missing_why(inputs, subset)}
        for b in ABLATION_BENCHMARKS:
            v = inputs.end_value(subset, b)
            row[b], row[f"n_{b}"] = v, inputs.end_n(subset, b)
            row[f"{b}_delta"] = v - inputs.end_value(base, b) if base and s != "Temp+" else float("nan")
        rows.append(row)
    return pd.DataFrame(rows)


def with_printed_deltas(disp: pd.DataFrame, df: pd.DataFrame) -> pd.DataFrame:
    """The release's layout: '63.12 (-0.53)' - each score with its printed delta in brackets (none on Temp+)."""
    out = disp.drop(columns=[c.label for c in ABLATION_DELTAS])
    for c, d in zip(ABLATION_COLS, ABLATION_DELTAS):
        out[c.label] = [v if fmt_missing(x) else f"{v} ({d.show(x)})" for v, x in zip(out[c.label], df[d.name])]
    return out


def ablation_table(inputs: RunInputs | None = None) -> Table:
    """Temp+ score-term ablation (MVBench, VideoMME, MLVU), with the printed deltas vs Temp+."""
    title = "Temp+ score-term ablation"
    keys = [("setting", "Setting")]
    if inputs is None:
        df = published.load("gdo_ablation")
        csv, disp = reference_frames(df, keys, ABLATION_COLS + ABLATION_DELTAS, _order("gdo_ablation"))
        return _table("gdo_ablation", title, "Published numbers with the deltas vs Temp+ as printed (computed by the "
                      "authors from unrounded scores; the paper has no LVBench column here).", ablation_claim(),
                      (csv, with_printed_deltas(disp, df)), "reference", [])
    return _table("gdo_ablation", title, "This run: last checkpoint of each ablation subset (report.ablations); Δ = the "
                  "row minus the run's Temp+ row.", ablation_claim(),
                  run_frames(run_ablation(inputs), published.load("gdo_ablation"), keys, ABLATION_COLS + ABLATION_DELTAS),
                  "run", untrained_note(inputs, inputs.ablations.values()))


# ----------------------------------------------------------------------------- heatmap (as a table)
HEATMAP_COLS = [Col("delta_pp", "Δ (pp)", 1, "delta")]


def heatmap_claim() -> str:
    chk = reference.heatmap_check()
    return ("Per-subtask MVBench deltas vs Uni-10x: the presets move different subtasks (" +
            ", ".join(f"{r.profile} mean {r.heatmap_mean:+.2f}" for r in chk.itertuples(index=False)) + ").")


def run_heatmap(inputs: RunInputs) -> pd.DataFrame:
    pub = published.load("gdo_mvbench_heatmap")
    rows = []
    for r in pub.itertuples(index=False):
        subset, uni = inputs.profiles.get(r.profile, (None, None))
        k = subtask_key("MVBench", r.subtask)
        rows.append({"subtask": r.subtask, "profile": r.profile,
                     "delta_pp": _delta(inputs, subset, uni, "mvbench", k) if subset else np.nan,
                     "missing_why": missing_why(inputs, subset, uni) if subset else "not in report.profiles"})
    return pd.DataFrame(rows)


def heatmap_table(inputs: RunInputs | None = None) -> Table:
    """MVBench per-subtask delta per profile (the heatmap's cells)."""
    title = "MVBench per-subtask delta vs Uni-10x"
    keys = [("subtask", "Subtask"), ("profile", "Profile")]
    if inputs is None:
        return _table("gdo_mvbench_heatmap", title, "Published heatmap cell labels (0.5 pp resolution).", heatmap_claim(),
                      reference_frames(published.load("gdo_mvbench_heatmap"), keys, HEATMAP_COLS,
                                       _order("gdo_mvbench_heatmap")), "reference", [])
    return _table("gdo_mvbench_heatmap", title, "This run: per-subtask delta of each profile vs its Uni-10x.",
                  heatmap_claim(), run_frames(run_heatmap(inputs), published.load("gdo_mvbench_heatmap"), keys,
                                              HEATMAP_COLS), "run",
                  untrained_note(inputs, [s for pair in inputs.profiles.values() for s in pair]))


# ----------------------------------------------------------------------------- trajectories (figure data)
def _ranked(df: pd.DataFrame) -> pd.DataFrame:
    return df.assign(checkpoint=df.groupby(["benchmark", "series"], sort=False).cumcount().add(1).astype(str))


def run_trajectories(inputs: RunInputs) -> pd.DataFrame:
    gdo_s, uni_s = inputs.main
    rows = []
    for b in VIDEO_BENCHMARKS:
        for series, subset in (("Uni-10x", uni_s), ("GDO", gdo_s)):
            for r in curve(inputs.traj, subset, b).itertuples(index=False):
                rows.append({"benchmark": benchmark_display(b), "series": series, "samples_k": r.samples_seen / 1000.0,
                             "accuracy": r.accuracy, "n_accuracy": r.n})
    return _ranked(pd.DataFrame(rows, columns=["benchmark", "series", "samples_k", "accuracy", "n_accuracy"]))


def trajectories_table(inputs: RunInputs | None = None) -> Table:
    """Accuracy vs samples seen per checkpoint (the convergence figure's data)."""
    title = "Convergence trajectories (figure data)"
    if inputs is None:
        s = published.load_strings("gdo_trajectories")
        df = s.assign(accuracy=published.load("gdo_trajectories")["accuracy"])
        return _table("gdo_trajectories", title, "Digitised from the release README's convergence figure: "
                      "approximate (+-0.03 pp, +-0.5k), never exact.", main_claim(),
                      reference_frames(df, [("benchmark", "Benchmark"), ("series", "Series"), ("samples_k", "Samples (k)")],
                                       [Col("accuracy", "Accuracy")], _order("gdo_trajectories")), "reference", [])
    cols = [Col("samples_k", "Samples", 1, "kilo"), Col("accuracy", "Accuracy")]
    keys = [("benchmark", "Benchmark"), ("series", "Series"), ("checkpoint", "Checkpoint")]
    return _table("gdo_trajectories", title, "This run's checkpoints beside the paper's digitised points of the same rank.",
                  main_claim(), run_frames(run_trajectories(inputs), _ranked(published.load("gdo_trajectories")), keys, cols),
                  "run", [])


def profile_order() -> list[str]:
    """MinLoss, Diverse, Temp, Temp+ (display names)."""
    return [profile_display(p) for p in ("minloss", "diverse", "temp", "temp_plus")]


TABLES = (main_table, profiles_table, temporal_table, groups_table, ablation_table, heatmap_table, trajectories_table)


# ----------------------------------------------------------------------------- consistency of the published numbers
def peak_check_table() -> Table:
    """Peak match recomputed from the digitised curves with the table's R and with the figure's R."""
    df = reference.peak_check()
    df["reproduced"] = df["reproduced"].map({True: "yes", False: "no"})
    cols = [Col("r_table", "R (table)"), Col("r_figure", "R (figure)"), Col("peak_k_table_r", "Peak (table R)", 2, "kilo"),
            Col("peak_k_figure_r", "Peak (figure R)", 2, "kilo"), Col("peak_k_printed", "Printed", 1, "kilo")]
    frames = reference_frames(df, [("benchmark", "Benchmark"), ("reproduced", "Reproduced")], cols,
                              ["benchmark", "r_table", "r_figure", "peak_k_table_r", "peak_k_figure_r", "peak_k_printed",
                               "reproduced"])
    return Table("gdo_peak_match_check", "Peak match recomputed from the published curves",
                 "GDO checkpoints at the quarter epochs of 53.3k; R = Uni-10x end accuracy from the main table or from "
                 "the trajectory figure.", *frames, claim="",
                 source=f"recomputed by the kit from {published.label('gdo_trajectories')} and {published.label('gdo_main')}",
                 notes=["VideoMME: only the table's R (61.22) reproduces the printed 26.6k (the GDO curve reaches it at "
                        "its half-epoch checkpoint, 26.65k, half-to-even 26.6k); the figure's 61.64 gives 30.8k."])


def heatmap_check_table() -> Table:
    """The heatmap's mean over the 20 MVBench subtasks vs the profiles table's MVBench delta."""
    df = reference.heatmap_check()
    df["consistent"] = df["consistent"].map({True: "yes", False: "no"})
    cols = [Col("heatmap_mean", "Heatmap mean", 2, "delta"), Col("table_delta", "Table Δ", 2, "delta"),
            Col("difference", "Difference", 2, "delta")]
    frames = reference_frames(df, [("profile", "Profile"), ("consistent", "Within 0.25")], cols,
                              ["profile", "heatmap_mean", "table_delta", "difference", "consistent"])
    return Table("gdo_heatmap_check", "MVBench heatmap vs the profiles table",
                 "The mean of a profile's 20 heatmap cells (0.5 pp each) should match its MVBench delta within 0.25.",
                 *frames, claim="", source=f"recomputed by the kit from {published.label('gdo_mvbench_heatmap')} and "
                 f"{published.label('gdo_profiles')}")


CHECKS = (peak_check_table, heatmap_check_table)


# ----------------------------------------------------------------------------- run mode: every accuracy with n
def run_accuracies(inputs: RunInputs) -> pd.DataFrame:
    """Every video-benchmark end accuracy the GDO tables use: n, 95% Wilson interval, chance, above-chance verdict."""
    from ..binomial import chance_verdict

    subsets = [s for pair in inputs.profiles.values() for s in pair] + list(inputs.ablations.values())
    rows = []
    for subset in dict.fromkeys(subsets):
        for b in VIDEO_BENCHMARKS:
            v = chance_verdict(inputs.end_value(subset, b), inputs.end_n(subset, b), inputs.chance_of(b))
            status = (inputs.not_trained_phrase if not inputs.trained(subset) else "not evaluated" if not v.n
                      else "above chance" if v.above else v.reason)
            rows.append({"subset": subset, "benchmark": benchmark_display(b), "accuracy": v.accuracy, "n": v.n,
                         "ci_low": v.low, "ci_high": v.high, "chance": v.chance, "status": status})
    return pd.DataFrame(rows, columns=["subset", "benchmark", "accuracy", "n", "ci_low", "ci_high", "chance", "status"])


def accuracies_table(inputs: RunInputs) -> Table:
    """Run mode: the accuracies behind the GDO tables, each with n, its interval and the benchmark's chance level."""
    from ..binomial import INTERVAL_METHOD

    df = run_accuracies(inputs)
    cols = [Col("accuracy", "Accuracy"), Col("ci_low", "95% low"), Col("ci_high", "95% high"),
            Col("chance", "Chance", 1)]
    csv, disp = reference_frames(df.assign(n=df["n"].astype(str)), [("subset", "Subset"), ("benchmark", "Benchmark"),
                                                                     ("n", "n"), ("status", "Status")], cols,
                                 ["subset", "benchmark", "accuracy", "n", "ci_low", "ci_high", "chance", "status"])
    return Table("gdo_run_accuracies", "Every accuracy of this run with n, its interval and chance",
                 f"This run's last checkpoints; n = questions scored; {INTERVAL_METHOD}; chance = mean of 1/k over the "
                 "benchmark's questions (k = option count; MVBench and MLVU average their subtasks' chances, as their "
                 "overall accuracy averages the subtasks).", csv, disp,
                 claim="", source="this run (no published counterpart)",
                 notes=["MVBench's and MLVU's overall accuracies are means of per-subtask accuracies: the binomial interval "
                        "over all n questions is an approximation for them."])
