"""The OFA tables: headline Rel, the companion baseline rows (labelled as VisNec's), Rel on the source and the
transferred pool, the Rel consistency check, and (run mode) the selection and the K x budget sweep.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from . import published, reference
from .columns import Col, reference_frames, run_frames
from .fmt import fixed, percent
from .inputs import OFAPool, RunInputs
from .names import IMAGE_BENCHMARKS, benchmark_display
from .rel import rel, rel_partial
from .render import Table

HEADLINE_COLS = [Col("budget_ratio", "Budget", 2, "num"), Col("relative_performance", "Rel", 1)]
SCORE_COLS = [Col(benchmark_display(b), benchmark_display(b), 1, binomial=False) for b in IMAGE_BENCHMARKS]
REL_COL = Col("Rel", "Rel", 1)
METHODS = (("OFA 15%", "subset"), ("Random 15%", "random"), ("Full data", "full"))


def headline_claim() -> str:
    h = published.load("ofa_headline")
    return ("OFA keeps {:.0f}% of the data: Rel {} on the pool the selector was trained on ({}) and Rel {} when the "
            "selector is transferred unchanged to {}.").format(
        100 * h["budget_ratio"].iloc[0], fixed(h["relative_performance"].iloc[0], 1), h["pool"].iloc[0],
        fixed(h["relative_performance"].iloc[1], 1), h["pool"].iloc[1])


def headline_table() -> Table:
    """OFA's headline numbers (abstract)."""
    csv, disp = reference_frames(published.load("ofa_headline"), [("pool", "Pool"), ("model", "Model"), ("note", "Note")],
                                 HEADLINE_COLS, list(published.load_strings("ofa_headline").columns))
    disp["Budget"] = [percent(x) for x in published.load("ofa_headline")["budget_ratio"]]
    disp["Model"] = [f"{m} (not in the abstract)" for m in disp["Model"]]
    return Table("ofa_headline", "OFA headline: relative performance at 15%", "Published numbers (OFA abstract): the "
                 "pool, the 15% budget and Rel. The model is not stated in the abstract (inferred from VisNec's protocol); "
                 "the note is the kit's.", csv, disp, claim=headline_claim(), source=published.label("ofa_headline"))


def companion_table(name: str) -> Table:
    """A companion baseline table exactly as VisNec printed it, labelled as VisNec's."""
    pool = published.COMPANION_POOL[name]
    cols = SCORE_COLS + [REL_COL]
    csv, disp = reference_frames(published.load(name), [("method", "Method")], cols,
                                 list(published.load_strings(name).columns))
    chk = reference.rel_checks()[name]
    bad = chk[~chk["consistent"]]
    notes = [f"Rows from {published.VISNEC_PAPER}, not from the OFA paper. Whether the OFA paper compares with the "
             "same rows is not known from its abstract (its tables are not available)."]
    notes += [f"{r.method}: printed Rel {r.rel_printed:.1f}, recomputed {r.rel_recomputed:.2f}." for r in bad.itertuples()]
    return Table(name, f"{pool}: full data and 11 selection baselines at 15% (VisNec's rows)",
                 f"Published by VisNec (arXiv 2603.01195), same authors and protocol; LLaVA-v1.5-7B, MME-P raw score.",
                 csv, disp, claim=headline_claim(), source=published.label(name), notes=notes)


def rel_check_table() -> Table:
    """Rel recomputed from each companion row's ten scores vs its printed Rel."""
    frames = []
    for name, chk in reference.rel_checks().items():
        frames.append(chk.assign(pool=published.COMPANION_POOL[name]))
    df = pd.concat(frames, ignore_index=True)
    df["consistent"] = df["consistent"].map({True: "yes", False: "no"})
    cols = [Col("rel_printed", "Rel printed", 1), Col("rel_recomputed", "Rel recomputed", 2),
            Col("difference", "difference", 2, "delta")]
    csv, disp = reference_frames(df, [("pool", "Pool"), ("method", "Method"), ("consistent", "Within 0.1")], cols,
                                 ["pool", "method", "rel_printed", "rel_recomputed", "difference", "consistent"])
    return Table("ofa_rel_check", "Rel recomputed from the companion rows",
                 "Rel = (100/10) * sum_b score_b / full_b from each row's ten printed scores.", csv, disp,
                 source=f"recomputed by the kit from {published.VISNEC_ROWS}",
                 notes=["A row is consistent when the recomputed Rel is within 0.1 of the printed one (one decimal)."])


def reference_rel() -> pd.DataFrame:
    """pool, method, paper, rel: OFA's headline row then the companion rows, per published pool."""
    h = published.load("ofa_headline")
    rows = []
    for r in h.itertuples(index=False):
        rows.append({"pool": r.pool, "method": "OFA (15%)", "paper": published.OFA_ABSTRACT, "rel": r.relative_performance})
        name = published.companion_for_pool(r.pool)
        for c in published.load(name).itertuples(index=False):
            rows.append({"pool": r.pool, "method": c.method, "paper": "VisNec's rows (arXiv 2603.01195), not the OFA paper", "rel": c.Rel})
    return pd.DataFrame(rows)


def run_rel(inputs: RunInputs) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(Rel rows, score rows) of the run: OFA 15%, Random 15% and full data per OFA pool."""
    rel_rows, score_rows = [], []
    for pool in inputs.ofa_pools:
        full = {b: inputs.end_value(pool.full, b) for b in IMAGE_BENCHMARKS}
        for method, attr in METHODS:
            subset = getattr(pool, attr)
            scores = {b: inputs.end_value(subset, b) for b in IMAGE_BENCHMARKS}
            partial, n = rel_partial(scores, full)
            rel_rows.append({"pool": pool.pool, "published_pool": pool.published or "", "method": method, "subset": subset,
                             "Rel": rel(scores, full), "rel_partial": partial, "n_benchmarks": n})
            ci = {b: inputs.score_interval(subset, b) for b in IMAGE_BENCHMARKS}
            rel_rows[-1].update(zip(("rel_ci95_low", "rel_ci95_high"), inputs.rel_interval(subset, partial)))
            score_rows.append({"pool": pool.pool, "published_pool": pool.published or "", "method": method,
                               **{benchmark_display(b): v for b, v in scores.items()},
                               **{f"n_{benchmark_display(b)}": inputs.end_n(subset, b) for b in IMAGE_BENCHMARKS},
                               **{f"lo_{benchmark_display(b)}": ci[b][0] for b in IMAGE_BENCHMARKS},
                               **{f"hi_{benchmark_display(b)}": ci[b][1] for b in IMAGE_BENCHMARKS},
                               "missing_why": inputs.not_trained_phrase if inputs.not_trained([subset]) else ""})
    return pd.DataFrame(rel_rows), pd.DataFrame(score_rows)


def published_rows(pools: list[OFAPool]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The published counterparts of the run's rows: OFA's headline Rel, VisNec's Random and Full-Data rows."""
    h = published.load("ofa_headline").set_index("pool")
    rel_rows, score_rows = [], []
    for pool in pools:
        if not pool.published:
            continue
        comp = published.load(published.companion_for_pool(pool.published))
        rows = {"OFA 15%": None, "Random 15%": comp[comp["method"] == "Random"].iloc[0], "Full data": comp.iloc[0]}
        for method, row in rows.items():
            rel_rows.append({"published_pool": pool.published, "method": method,
                             "Rel": float(h.loc[pool.published, "relative_performance"]) if row is None else float(row["Rel"])})
            score_rows.append({"published_pool": pool.published, "method": method,
                               **{c.name: (np.nan if row is None else float(row[c.name])) for c in SCORE_COLS}})
    cols = ["published_pool", "method"]
    return (pd.DataFrame(rel_rows, columns=cols + ["Rel"]),
            pd.DataFrame(score_rows, columns=cols + [c.name for c in SCORE_COLS]))


def rel_table(inputs: RunInputs | None = None) -> Table:
    """Rel on the source pool and on the transferred pool, each row labelled with its paper."""
    title = "Relative performance (Rel) on the source and the transferred pool"
    claim = headline_claim()
    if inputs is None:
        df = reference_rel()
        csv, disp = reference_frames(df, [("pool", "Pool"), ("method", "Method"), ("paper", "Paper")], [Col("rel", "Rel", 1)])
        return Table("ofa_rel", title, "The OFA rows from the OFA abstract; every other row is VisNec's (arXiv "
                     "2603.01195, same authors and protocol), not the OFA paper's.", csv, disp, claim=claim,
                     source=f"{published.label('ofa_headline')}; {published.label('ofa_baselines_llava665k')}")
    run, _ = run_rel(inputs)
    pub, _ = published_rows(inputs.ofa_pools)
    keys = [("pool", "Pool"), ("published_pool", "Published pool"), ("method", "Method")]
    run = run.assign(missing_why=[inputs.not_trained_phrase if inputs.not_trained([s]) else "" for s in run["subset"]])
    csv, disp = run_frames(run, pub, keys, [REL_COL], match=["published_pool", "method"])
    csv["rel_partial"] = [fixed(x, 1, missing="") for x in run["rel_partial"]]
    csv["n_benchmarks"] = run["n_benchmarks"].astype(str).to_numpy()
    csv["rel_partial_ci95_low"] = [fixed(x, 1, missing="") for x in run["rel_ci95_low"]]
    csv["rel_partial_ci95_high"] = [fixed(x, 1, missing="") for x in run["rel_ci95_high"]]
    disp["Rel over evaluated (benchmarks)"] = [
        f"{fixed(x, 1)} ({n} of 10" + (f"; 95% CI {fixed(lo, 1)}-{fixed(hi, 1)}, paired bootstrap)" if lo == lo else ")")
        for x, n, lo, hi in zip(run["rel_partial"], run["n_benchmarks"], run["rel_ci95_low"], run["rel_ci95_high"])]
    notes = untrained_rows(inputs) + [
             "Paper beside OFA 15%: the OFA abstract; beside Random 15% and Full data: VisNec's rows (arXiv 2603.01195).",
             "Rel needs all ten image benchmarks of the subset and of its full-data run; 'Rel over evaluated' averages the "
             "benchmarks both have (not comparable with the paper's Rel).",
             "Rel's 95% interval: the questions of every benchmark drawn with replacement (within each subtask), the same "
             "draw for the subset's run and the full-data run, Rel recomputed per draw (2.5 / 97.5 percentiles)."]
    return Table("ofa_rel", title, "This run: each OFA subset's last checkpoint against the same pool's full-data run.",
                 csv, disp, claim=claim, notes=notes,
                 source=f"this run vs {published.OFA_ABSTRACT} (OFA 15%) and {published.VISNEC_ROWS} (Random, Full data)")


def untrained_rows(inputs: RunInputs) -> list[str]:
    """A note naming the OFA subsets without a trained checkpoint."""
    missing = inputs.not_trained([getattr(p, a) for p in inputs.ofa_pools for _, a in METHODS])
    return [f"Empty rows of {', '.join(f'`{s}`' for s in missing)}: {inputs.not_trained_phrase}."] if missing else []


def scores_table(inputs: RunInputs) -> Table:
    """Run mode: the ten image-benchmark scores of each OFA row, the published row beside."""
    _, run = run_rel(inputs)
    _, pub = published_rows(inputs.ofa_pools)
    keys = [("pool", "Pool"), ("published_pool", "Published pool"), ("method", "Method")]
    csv, disp = run_frames(run, pub, keys, SCORE_COLS, match=["published_pool", "method"])
    shown = [c for c in SCORE_COLS if run[c.name].notna().any()]
    notes = []
    if len(shown) < len(SCORE_COLS):  # the display leaves out the benchmarks no row was evaluated on (the CSV has all)
        _, disp = run_frames(run, pub, keys, shown, match=["published_pool", "method"])
        notes.append("Not evaluated in this run (left out here, empty in the CSV): "
                     + ", ".join(c.label for c in SCORE_COLS if c not in shown) + ".")
    notes += untrained_rows(inputs)
    notes.append("VQAv2: a run's local score is VQA soft accuracy on val; the papers print test-dev, scored by the EvalAI "
                 "server (a test-dev run leaves the cell empty and writes the submission file). POPE: the mean of the "
                 "per-split F1, as the papers print it. MME-P: the raw perception score.")
    notes.append("Intervals: F1, soft accuracy and circular accuracy are not proportions of independent trials, so each "
                 "95% interval is a bootstrap over the questions (MMBench: its circular groups), drawn within subtasks.")
    return Table("ofa_scores", "Image-benchmark scores of the OFA rows", "This run's last checkpoints (n = questions "
                 "scored); the paper's Random / Full-Data rows are VisNec's (arXiv 2603.01195).", csv, disp,
                 notes=notes, claim=headline_claim(),
                 source=f"this run vs {published.VISNEC_ROWS}")


def selection_table(reports: dict[str, dict], chosen_epoch: int | None) -> Table:
    """Run mode: the OFA stage's selection per pool (no published counterpart)."""
    from ..ofa.views import selection_table as view

    df = view(reports).reset_index()
    csv = df.astype(str)
    disp = df.assign(conf_median_pool=[fixed(x, 3) for x in df["conf_median_pool"]],
                     conf_median_selected=[fixed(x, 3) for x in df["conf_median_selected"]]).astype(str)
    return Table("ofa_selection", "OFA selection per pool", f"This run's OFA stage (selector epoch {chosen_epoch}); the "
                 "papers print no counterpart.", csv, disp,
                 claim="The selection keeps the least-confident samples of every cluster (median confidence of the "
                       "selection below the pool's).", source="this run")


def sweep_table(sweep: pd.DataFrame) -> Table:
    """Run mode: the K x budget sweep (selection statistics; Rel where the grid point was trained and evaluated)."""
    cols = ["pool", "k", "budget_ratio", "chosen_epoch", "val_macro_acc", "n_selected", "conf_pool_median",
            "conf_selected_median", "clusters_covered_share", "jaccard_default", "rel"]
    df = sweep[cols]
    csv = pd.DataFrame({c: [fixed(x, 4, missing="") if isinstance(x, float) else str(x) for x in df[c]] for c in cols})
    disp = pd.DataFrame({
        "Pool": df["pool"].astype(str), "K": df["k"].astype(str), "Budget": [percent(x) for x in df["budget_ratio"]],
        "Epoch": df["chosen_epoch"].astype(str), "Macro acc": [fixed(x, 3) for x in df["val_macro_acc"]],
        "Selected": df["n_selected"].astype(str), "Conf pool": [fixed(x, 3) for x in df["conf_pool_median"]],
        "Conf selected": [fixed(x, 3) for x in df["conf_selected_median"]],
        "Clusters covered": [percent(x) for x in df["clusters_covered_share"]],
        "Jaccard vs default": [fixed(x, 2) for x in df["jaccard_default"]], "Rel": [fixed(x, 1) for x in df["rel"]]})
    return Table("ofa_sweep", "Sensitivity of the OFA selection to K and the budget ratio",
                 "gdo-repro report --sweep: the OFA stage at every grid point of report.sweep; Rel only where the grid "
                 "point's subset was trained and evaluated.", csv, disp,
                 claim="OFA trains the selector once and selects at any budget (select anytime).", source="this run")
