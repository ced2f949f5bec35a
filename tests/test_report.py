"""gdo_utils.report: reference tables equal the published files, recomputed numbers reproduce the printed ones,
run mode fills only what a run evaluated, every file is written, and `gdo-repro report` works from any directory.

Expected values are worked out by hand in the comments, never read off the implementation.
"""
from __future__ import annotations

import csv
import io
import math
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from gdo_utils.config import load_params
from gdo_utils.report import build_report, fmt, published, reference, tables_gdo, tables_ofa
from gdo_utils.report.names import subtask_display, subtask_key
from gdo_utils.report.peak import peak_match, quarter_epochs
from gdo_utils.report.render import to_csv
from gdo_utils.report.trajectory import TrajectoryError, load_trajectory

REFERENCE_TABLES = {  # report table name -> published table name
    "gdo_main": tables_gdo.main_table, "gdo_profiles": tables_gdo.profiles_table,
    "gdo_temporal_subtasks": tables_gdo.temporal_table, "gdo_subtask_groups": tables_gdo.groups_table,
    "gdo_ablation": tables_gdo.ablation_table, "gdo_mvbench_heatmap": tables_gdo.heatmap_table,
    "gdo_trajectories": tables_gdo.trajectories_table, "ofa_headline": tables_ofa.headline_table,
    "ofa_baselines_llava665k": lambda: tables_ofa.companion_table("ofa_baselines_llava665k"),
    "ofa_baselines_visionflan": lambda: tables_ofa.companion_table("ofa_baselines_visionflan"),
}


def _cells(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


# ----------------------------------------------------------------------------- reference mode = published, cell for cell
@pytest.mark.parametrize("name", sorted(REFERENCE_TABLES))
def test_reference_table_equals_published_csv_cell_for_cell(name):
    table = REFERENCE_TABLES[name]()
    published_text = published.load_text(name)
    assert _cells(to_csv(table.csv)) == _cells(published_text)
    assert to_csv(table.csv) == published_text  # byte for byte, CRLF line ends included


def test_reference_cells_as_printed():
    main = tables_gdo.main_table().csv.values.tolist()
    assert main[0] == ["MVBench", "62.27", "63.65", "1.38", "35.4", "14.5"]
    assert main[1] == ["VideoMME", "61.22", "62.89", "1.67", "26.6", "19.2"]
    prof = tables_gdo.profiles_table().csv.values.tolist()
    assert prof[1] == ["MinLoss", "12.9", "VideoMME", "62.3", "1.07"]  # the file prints 62.3, not 62.30
    temporal = tables_gdo.temporal_table().csv.values.tolist()
    assert temporal[1] == ["MinLoss", "MVBench", "Character Order", "67.50", "74.50", "7.00"]  # fixed 2 decimals


def test_reference_display_formats():
    main = tables_gdo.main_table().display.values.tolist()
    assert main[0] == ["MVBench", "62.27", "63.65", "+1.38", "35.4k", "14.5x"]
    assert main[3] == ["LVBench", "40.22", "41.06", "+0.84", "34.7k", "14.8x"]
    prof = tables_gdo.profiles_table().display.values.tolist()
    assert prof[1] == ["MinLoss", "12.9k", "VideoMME", "62.30", "+1.07"]
    assert prof[3][-1] == "-1.36"
    groups = tables_gdo.groups_table().display.values.tolist()
    assert groups[0] == ["MinLoss", "-1.1", "+3.2", "+9.1", "+5.7", "+11.1", "-15.1"]
    head = tables_ofa.headline_table().display.values.tolist()
    # the model is not in the OFA abstract: the display says so
    assert head[0][:3] == ["LLaVA-665K", "LLaVA-v1.5-7B (not in the abstract)", "15%"] and head[0][3] == "98.3"
    abl = tables_gdo.ablation_table().display.values.tolist()
    assert abl[0] == ["Temp+", "63.65", "62.89", "46.89"]
    assert abl[2] == ["Temp+ w/o PPL", "63.30 (-0.35)", "61.81 (-1.07)", "47.00 (+0.11)"]  # -1.07 as printed, not -1.08


# ----------------------------------------------------------------------------- peak match
def test_peak_match_reproduces_printed_values_from_digitised_curves():
    # GDO checkpoints = quarter epochs of the Temp+ 1x subset (53.3k): 13.325, 26.65, 39.975, 53.3.
    # MVBench, R = 62.27 between (26.65, 60.82) and (39.975, 63.03): 26.65 + 1.45/2.21*13.325 = 35.3927
    # VideoMME, R = 61.22 = the curve at 26.65 exactly; MLVU, R = 43.81: 26.65 + 0.13/2.69*13.325 = 27.2940
    peaks = reference.peak_matches("table")
    assert peaks["MVBench"].samples == pytest.approx(35.3927, abs=1e-4)
    assert peaks["VideoMME"].samples == pytest.approx(26.65, abs=1e-12)
    assert peaks["MLVU"].samples == pytest.approx(27.2940, abs=1e-4)
    assert [fmt.kilo(peaks[b].samples) for b in ("MVBench", "VideoMME", "MLVU")] == ["35.4k", "26.6k", "27.3k"]
    # reductions 512 / peak: 14.466 -> 14.5x, 19.212 -> 19.2x, 18.759 -> 18.8x
    assert [fmt.times(512 / peaks[b].samples) for b in ("MVBench", "VideoMME", "MLVU")] == ["14.5x", "19.2x", "18.8x"]


def test_videomme_only_the_tables_R_reproduces_26_6k():
    # The figure's Uni-10x end point 61.64: 26.65 + (61.64-61.22)/(62.56-61.22)*13.325 = 30.8265 -> 30.8k, not 26.6k.
    fig = reference.peak_matches("figure")["VideoMME"]
    assert fig.target == 61.64 and fig.samples == pytest.approx(30.8265, abs=1e-4)
    chk = reference.peak_check().set_index("benchmark")
    assert chk["reproduced"].all()
    # The digitised x positions as printed (26.7) would give 26.7k: the quarter-epoch positions are what reproduces.
    assert fmt.kilo(peak_match([13.3, 26.7, 40.0, 53.3], [59.51, 61.22, 62.56, 62.89], 61.22).samples) == "26.7k"


def test_peak_match_edge_cases():
    assert peak_match([30, 10, 20], [60, 40, 50], 55).samples == 25  # unsorted input, halfway between 20 and 30
    first = peak_match([10, 20], [70, 80], 55)
    assert first.samples == 10 and first.at_first_checkpoint
    never = peak_match([10, 20], [40, 50], 55)
    assert math.isnan(never.samples) and not never.reached
    assert math.isnan(peak_match([], [], 55).samples)
    assert list(quarter_epochs(53.3)) == pytest.approx([13.325, 26.65, 39.975, 53.3])


def test_formatting_rounds_half_to_even_without_float_noise():
    assert fmt.fixed(3.25, 1) == "3.2" and fmt.fixed(3.75, 1) == "3.8"
    assert fmt.kilo(26.650000000000002) == "26.6k"  # float noise must not flip the half-way case
    assert fmt.signed(0.0) == "0.00" and fmt.signed(-0.004) == "0.00" and fmt.signed(1.375) == "+1.38"
    assert fmt.csv_number(47.60, 2) == "47.6" and fmt.csv_number(47.0, 2) == "47.0"
    assert fmt.kilo(0.025) == "25" and fmt.samples(35392) == "35.4k"
    assert fmt.fixed(float("nan")) == fmt.MISSING and fmt.csv_number(None, 2) == ""


# ----------------------------------------------------------------------------- subtask groups and the heatmap
def test_subtask_groups_from_heatmap_reproduce_the_group_table():
    # Temp+ Motion: (-4.5+6.5+2.5-3.5+4.0+3.0-3.5+0.5+6.5-3.5+0.5)/11 = 8.5/11 = 0.77 -> 0.8
    # MinLoss Reasoning: (7.0+5.5+6.5-6.0)/4 = 3.25 -> 3.2 (half to even); Temp+ Reasoning 15/4 = 3.75 -> 3.8
    g = reference.groups_numeric().set_index("profile")
    assert g.loc["Temp+", "mvb_motion"] == pytest.approx(8.5 / 11)
    assert g.loc["MinLoss", "mvb_reasoning"] == 3.25 and g.loc["Temp+", "mvb_reasoning"] == 3.75
    printed = published.load("gdo_subtask_groups").set_index("profile")
    for p in printed.index:
        for col in ("mvb_motion", "mvb_reasoning"):
            assert fmt.rounded(g.loc[p, col], 1) == printed.loc[p, col], (p, col)


def test_heatmap_mean_disagrees_with_table_for_minloss_only_and_is_reported():
    # MinLoss: 11 motion cells sum -12, 4 reasoning +13, 5 others (1+0.5-2+2.5-6) = -4: -3/20 = -0.15 vs +1.35
    chk = reference.heatmap_check().set_index("profile")
    assert chk.loc["MinLoss", "heatmap_mean"] == pytest.approx(-0.15)
    assert not chk.loc["MinLoss", "consistent"]
    assert chk.drop("MinLoss")["consistent"].all()
    found = reference.inconsistencies()
    assert any(x.startswith("MinLoss:") and "-0.15" in x and "+1.35" in x for x in found)
    assert any(x.startswith("VideoMME:") and "61.64" in x and "61.22" in x for x in found)


# ----------------------------------------------------------------------------- OFA Rel
INCONSISTENT_REL = {("ofa_baselines_llava665k", "CLIP-Score"), ("ofa_baselines_llava665k", "CoIDO"),
                    ("ofa_baselines_visionflan", "TypiClust"), ("ofa_baselines_visionflan", "CLIP-Score")}


def test_rel_recomputed_from_companion_rows():
    # LLaVA-665K CLIP-Score by hand: 71.7/79.1 + 56.9/63.0 + 61.3/67.9 + 64.5/68.4 + 53.4/57.9 + 1380.3/1476.9
    #   + 51.0/64.3 + 48.0/58.3 + 84.0/86.4 + 29.9/30.0 = 9.0976 -> Rel 90.98, printed 92.0
    checks = reference.rel_checks()
    clip = checks["ofa_baselines_llava665k"].set_index("method").loc["CLIP-Score"]
    assert clip["rel_recomputed"] == pytest.approx(90.976, abs=0.005)
    for name, chk in checks.items():
        for r in chk.itertuples(index=False):
            if (name, r.method) in INCONSISTENT_REL:
                assert abs(r.rel_recomputed - r.rel_printed) > 0.1 and not r.consistent
            else:
                assert abs(r.rel_recomputed - r.rel_printed) <= 0.1 and r.consistent, (name, r.method)
    listed = [x for x in reference.inconsistencies() if "companion row" in x]
    assert len(listed) == 4 and all("VisNec" in x for x in listed)


def test_names_table_maps_kit_keys_to_display_names():
    assert subtask_display("mvbench", "action_antonym") == "Action Antonym"
    assert subtask_display("videomme", "Temporal Perception") == "Temporal Perception"
    assert [subtask_display("mlvu", k) for k in ("order", "sportsQA", "plotQA", "ego")] == ["Order", "SportsQA", "PlotQA", "Ego"]
    assert subtask_key("MVBench", "Unexpected Action") == "unexpected_action"


# ----------------------------------------------------------------------------- files
def _params(tmp_path: Path, repo_root: Path, *extra: str):
    """The demo params with the release's per-profile Uni-10x (uniform_<profile>), the names the tables below use."""
    return load_params(repo_root / "params" / "demo.yaml", [f"output_root={tmp_path / 'out'}",
                                                            "subsets.uniform={size: null, multiplier: 10}", *extra])


def _assert_files(rep):
    for t in rep.tables.values():
        for ext in ("csv", "md", "tex"):
            f = rep.path.parent / "tables" / rep.mode / f"{t.name}.{ext}"
            assert f.is_file() and f.stat().st_size > 0, f
    for s in rep.figures.values():
        assert {p.suffix for p in s.paths} == {".png", ".pdf"}
        assert all(p.is_file() and p.stat().st_size > 1000 for p in s.paths), s.paths


def test_reference_report_writes_every_table_figure_and_report_md(tmp_path, repo_root):
    rep = build_report(_params(tmp_path, repo_root), mode="reference")
    assert rep.mode == "reference"
    assert set(rep.figures) == {"gdo_convergence", "gdo_frontier", "gdo_mvbench_heatmap", "gdo_schematic", "ofa_rel"}
    _assert_files(rep)
    tex = (rep.path.parent / "tables" / "reference" / "gdo_main.tex").read_text()
    assert "\\toprule" in tex and "\\midrule" in tex and "\\bottomrule" in tex and "35.4k" in tex
    md = rep.path.read_text()
    assert rep.path == tmp_path / "out" / "demo" / "REPORT.md"
    assert "What the papers publish and what the kit can regenerate" in md
    for source in ("GDO paper text", "GDO release README", "OFA abstract", "VisNec"):
        assert source in md, source
    assert "six figures" in md and "digitised" in md
    for text in ("## Provenance", "Paper's claim", "## Inconsistencies in the published material", "VisNec",
                 "| MVBench | 62.27 | 63.65 | +1.38 | 35.4k | 14.5x |", "figures/reference/gdo_convergence.png"):
        assert text in md, text
    assert (rep.path.parent / "tables" / "reference" / "manifest.json").is_file()


# ----------------------------------------------------------------------------- run mode
def _traj_rows() -> list[dict]:
    """A demo-like C3 table: temp_plus and uniform_temp_plus on MVBench and VideoMME only; minloss only on MVBench
    at an early checkpoint; no MLVU, no LVBench, no OFA subsets."""
    rows = []

    def add(subset, samples, bench, acc, level="overall", sub=""):
        rows.append({"subset": subset, "checkpoint": "base" if samples == 0 else f"checkpoint-{samples}",
                     "samples_seen": samples, "benchmark": bench, "level": level, "subtask": sub, "accuracy": acc,
                     "n": 200, "engine": "kit", "contract": "toy"})

    for subset, step, accs in (("temp_plus", 10, (40.0, 50.0, 60.0)), ("uniform_temp_plus", 100, (42.0, 48.0, 55.0))):
        add(subset, 0, "mvbench", 30.0)
        for i, a in enumerate(accs):
            add(subset, step * (i + 1), "mvbench", a)
            add(subset, step * (i + 1), "videomme", a - 5)
        bump = 5.0 if subset == "temp_plus" else 0.0
        add(subset, step * 3, "mvbench", 50.0 + bump, "subtask", "action_antonym")
        add(subset, step * 3, "mvbench", 70.0 + bump, "subtask", "character_order")
        add(subset, step * 3, "videomme", 60.0 + 2 * bump, "task_type", "Temporal Perception")
    add("minloss", 10, "mvbench", 45.0)          # minloss's last checkpoint (20) has no MVBench result
    add("minloss", 20, "videomme", 44.0)
    add("uniform_minloss", 100, "mvbench", 41.0)
    return rows


def _write_traj(params, rows=None) -> Path:
    path = params.run_dir / "eval" / "trajectory.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows or _traj_rows()).to_parquet(path, index=False)
    return path


CHANCE_25 = {"mvbench": {"": 25.0}, "videomme": {"": 25.0}}  # 4-way benchmarks


def _with_chance(monkeypatch, chance=CHANCE_25):
    from gdo_utils.report import chance as chance_mod

    monkeypatch.setattr(chance_mod, "run_chance", lambda params: chance)


def _long(rep, name: str) -> pd.DataFrame:
    """A run table's long display indexed by its key column(s) and Quantity."""
    d = rep.tables[name].display
    keys = [c for c in d.columns if c not in ("Quantity", "This run", "Paper", "Run − paper")]
    return d.set_index(keys + ["Quantity"])


def test_run_mode_fills_only_what_was_evaluated(tmp_path, repo_root, monkeypatch):
    _with_chance(monkeypatch)
    params = _params(tmp_path, repo_root)
    _write_traj(params)
    rep = build_report(params)  # auto: the trajectory exists -> run mode
    assert rep.mode == "run"
    main = pd.read_csv(params.run_dir / "tables" / "run" / "gdo_main.csv", dtype=str, keep_default_na=False)
    main = main.set_index("benchmark")
    # MVBench: Uni-10x end 55 (samples 300, n 200: 95% Wilson 48.1-61.7, above chance 25); GDO curve (10,40) (20,50)
    # (30,60) reaches 55 at 20 + 0.5*10 = 25 samples = 0.025k; reduction 300 / 25 = 12.0; delta 60 - 55 = 5.
    assert main.loc["MVBench", ["uni10x", "gdo", "delta_pp", "peak_match_k", "reduction_x"]].tolist() == \
        ["55.0", "60.0", "5.0", "0.025", "12.0"]
    assert main.loc["MVBench", ["uni10x_n", "gdo_n"]].tolist() == ["200", "200"]
    assert main.loc["MVBench", "uni10x_paper"] == "62.27" and main.loc["MVBench", "uni10x_diff"] == "-7.27"
    # MLVU and LVBench were never evaluated: every run cell and difference is empty, the paper's value stays beside.
    for b in ("MLVU", "LVBench"):
        assert main.loc[b, ["uni10x", "gdo", "delta_pp", "peak_match_k", "reduction_x", "uni10x_diff"]].tolist() == [""] * 6
    assert main.loc["MLVU", "uni10x_paper"] == "43.81"
    disp = _long(rep, "gdo_main")
    assert disp.loc[("MLVU", "Uni-10x"), "This run"] == fmt.MISSING and disp.loc[("MVBench", "Peak match"), "This run"] == "25"
    assert disp.loc[("MVBench", "Uni-10x"), "This run"] == "55.00 (n=200, 95% CI 48.1-61.7)"
    assert list(rep.tables["gdo_main"].display.columns) == ["Benchmark", "Quantity", "This run", "Paper", "Run − paper"]
    # minloss's end is checkpoint-20, where MVBench was not evaluated: missing, not the checkpoint-10 value (45.0).
    prof = pd.read_csv(params.run_dir / "tables" / "run" / "gdo_profiles.csv", dtype=str, keep_default_na=False)
    row = prof[(prof["profile"] == "MinLoss") & (prof["benchmark"] == "MVBench")].iloc[0]
    assert row["accuracy"] == "" and row["accuracy_paper"] == "63.63" and row["samples_1x_k"] == "0.02"
    # groups: Temp+ VideoMME Temporal Perception = 70 - 60 = +10.0; MVB Motion needs 11 subtasks -> missing.
    groups = _long(rep, "gdo_subtask_groups")
    assert groups.loc[("Temp+", "VideoMME Temporal Perception"), "This run"] == "+10.0"
    assert groups.loc[("Temp+", "MVB Motion"), "This run"] == fmt.MISSING
    assert groups.loc[("Temp+", "MVB Motion"), "Paper"] == "+0.8"
    # Diverse and Temp have no subset in this trajectory: their empty cells say so
    assert any("`diverse`" in n and "not trained on the demo" in n for n in rep.tables["gdo_subtask_groups"].notes)
    # heatmap: only Temp+ action_antonym (+5.0) and character_order (+5.0) filled
    heat = rep.tables["gdo_mvbench_heatmap"].csv
    filled = heat[heat["delta_pp"] != ""]
    assert sorted(zip(filled["subtask"], filled["profile"], filled["delta_pp"])) == \
        [("Action Antonym", "Temp+", "5.0"), ("Character Order", "Temp+", "5.0")]
    assert rep.filled["gdo_main"] == (10, 20) and rep.filled["ofa_rel"] == (0, 6)
    acc = rep.tables["gdo_run_accuracies"].csv.set_index(["subset", "benchmark"])
    assert acc.loc[("uniform_temp_plus", "MVBench"), ["accuracy", "n", "ci_low", "ci_high", "chance", "status"]].tolist() \
        == ["55.0", "200", "48.08", "61.74", "25.0", "above chance"]
    assert acc.loc[("diverse", "MVBench"), "status"] == "not trained on the demo"
    _assert_files(rep)
    md = rep.path.read_text()
    assert rep.path.name == "REPORT_run.md"
    assert "(run mode)" in md and "demo number" in md and "The run fills 10 of 20 cells" in md
    assert "What the papers publish and what the kit can regenerate" in md and "six figures" in md


@pytest.mark.parametrize("acc,n,reason", [(20.0, 200, "not above chance"), (30.0, 10, "too small to tell")])
def test_run_mode_states_no_peak_match_from_a_baseline_at_chance(tmp_path, repo_root, monkeypatch, acc, n, reason):
    """Uni-10x ending at (or not distinguishably above) chance: peak match and reduction are undefined, with why."""
    _with_chance(monkeypatch)
    params = _params(tmp_path, repo_root)
    rows = _traj_rows()
    for r in rows:
        if r["subset"] == "uniform_temp_plus" and r["benchmark"] == "mvbench" and r["level"] == "overall":
            r["accuracy"], r["n"] = (acc if r["samples_seen"] == 300 else r["accuracy"]), n
    _write_traj(params, rows)
    rep = build_report(params, mode="run")
    main = rep.tables["gdo_main"]
    csv = main.csv.set_index("benchmark")
    # 30% of 10: Wilson 10.8-60.3 reaches below 25; 20% of 200 is below 25
    assert csv.loc["MVBench", ["peak_match_k", "reduction_x"]].tolist() == ["", ""]
    assert _long(rep, "gdo_main").loc[("MVBench", "Peak match"), "This run"] == "undefined"
    assert any(n_.startswith("MVBench: peak match and reduction undefined") and reason in n_ for n_ in main.notes)
    # VideoMME's Uni-10x ends at 50 of 200: above chance, its peak match stands
    assert csv.loc["VideoMME", "peak_match_k"] != ""
    md = rep.path.read_text()
    assert "| MVBench | Peak match | undefined |" in md


def test_run_mode_without_chance_levels_states_no_peak_match(tmp_path, repo_root, monkeypatch):
    _with_chance(monkeypatch, {})
    params = _params(tmp_path, repo_root)
    _write_traj(params)
    rep = build_report(params, mode="run")
    assert rep.tables["gdo_main"].csv.set_index("benchmark").loc["MVBench", "peak_match_k"] == ""
    assert any("chance level unknown" in n for n in rep.tables["gdo_main"].notes)


def test_reference_and_run_reports_are_separate_files(tmp_path, repo_root, monkeypatch):
    _with_chance(monkeypatch)
    params = _params(tmp_path, repo_root)
    ref = build_report(params, mode="reference")
    text = ref.path.read_text()
    _write_traj(params)
    run = build_report(params, mode="run")
    assert ref.path.name == "REPORT.md" and run.path.name == "REPORT_run.md"
    assert ref.path.read_text() == text


def test_run_mode_without_trajectory_marks_everything_missing(tmp_path, repo_root):
    rep = build_report(_params(tmp_path, repo_root), mode="run")
    assert rep.notes and "No trajectory table" in rep.notes[0]
    assert all(filled == 0 for filled, _ in rep.filled.values())


def test_trajectory_contract_errors_name_file_and_column(tmp_path):
    path = tmp_path / "trajectory.parquet"
    rows = _traj_rows()
    pd.DataFrame(rows).drop(columns=["engine"]).to_parquet(path, index=False)
    with pytest.raises(TrajectoryError, match=r"trajectory.parquet: missing column\(s\) \['engine'\]"):
        load_trajectory(path)
    bad = pd.DataFrame(rows)
    bad.loc[3, "level"] = "per_subtask"
    bad.to_parquet(path, index=False)
    with pytest.raises(TrajectoryError, match="level.*per_subtask"):
        load_trajectory(path)


# ----------------------------------------------------------------------------- CLI, from a directory outside the checkout
@pytest.mark.slow
def test_cli_report_reference_from_outside_the_checkout(tmp_path, repo_root):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(repo_root), os.environ.get("PYTHONPATH", "")])}
    r = subprocess.run([sys.executable, "-m", "gdo_utils.cli", "report", "--params", str(repo_root / "params/demo.yaml"),
                        "--mode", "reference"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "reference mode" in r.stdout
    report = tmp_path / "outputs" / "demo" / "REPORT.md"
    assert report.is_file() and "| VideoMME | 61.22 | 62.89 | +1.67 | 26.6k | 19.2x |" in report.read_text()
    bad = subprocess.run([sys.executable, "-m", "gdo_utils.cli", "report", "--params", str(repo_root / "params/demo.yaml"),
                          "--mode", "reference", "--sweep"], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300)
    assert bad.returncode != 0 and "--sweep" in bad.stderr


# ----------------------------------------------------------------------------- the OFA sweep
def test_sweep_runs_the_ofa_stage_at_every_grid_point(tmp_path, monkeypatch):
    from gdo_utils import ofa
    from gdo_utils.config import ReportSweepConfig
    from gdo_utils.embed import load_embeddings
    from gdo_utils.ofa import pipeline
    from gdo_utils.report.names import IMAGE_BENCHMARKS
    from gdo_utils.report.sweep import run_sweep, sweep_dir
    from tests.test_ofa_pipeline import make_params

    # the embeddings are written by make_params (no CLIP model in this test), as in test_ofa_pipeline
    monkeypatch.setattr(pipeline, "load_pool_embeddings", lambda params, name: load_embeddings(params, name))
    monkeypatch.setattr(pipeline, "ensure_pool_embeddings", lambda params, name: None)
    params = make_params(tmp_path / "out", tmp_path)  # k=4, budget 0.15; src: 200 samples, 192 scorable
    ofa.run_all(params)
    params.report.sweep = ReportSweepConfig(k=[2, 4], budget_ratio=[0.15, 0.3])
    # a trained and evaluated grid point: 0.9 x the full-data score on all ten image benchmarks -> Rel 90.0
    rows = []
    for subset, factor in (("ofa_full_src", 1.0), ("ofa_sweep_k4_r0.15_src", 0.9)):
        for i, b in enumerate(IMAGE_BENCHMARKS):
            rows.append({"subset": subset, "checkpoint": "checkpoint-8", "samples_seen": 8, "benchmark": b,
                         "level": "overall", "subtask": "", "accuracy": factor * (50.0 + i), "n": 10, "engine": "kit",
                         "contract": "toy"})
    from gdo_utils.report.trajectory import validate

    table = run_sweep(params, validate(pd.DataFrame(rows)))
    assert len(table) == 2 * 2 * 2  # K x ratio x pool
    at = table.set_index(["pool", "k", "budget_ratio"])
    # ceil(0.15 * 192) = 29, ceil(0.3 * 192) = 58 selected on the source pool
    assert at.loc[("src", 4, 0.15), "n_selected"] == 29 and at.loc[("src", 4, 0.3), "n_selected"] == 58
    # the grid point equal to the params (K = 4, 15%) reproduces the OFA stage's own selection
    assert at.loc[("src", 4, 0.15), "jaccard_default"] == 1.0 and at.loc[("vf", 4, 0.15), "jaccard_default"] == 1.0
    stage_ids = (params.stage_dir("ofa", "src", "selected_ids.txt")).read_text()
    assert (sweep_dir(params) / "selections" / "k4_r0.15" / "src.txt").read_text() == stage_ids
    assert at.loc[("src", 4, 0.15), "rel"] == pytest.approx(90.0)
    assert at.drop(("src", 4, 0.15))["rel"].isna().all()
    assert (sweep_dir(params) / "k4" / "t" / "embed").is_symlink()  # upstream outputs linked, not recomputed
    again = run_sweep(params, validate(pd.DataFrame(rows)))
    pd.testing.assert_frame_equal(again, table)


def test_sweep_train_eval_writes_trains_and_scores_each_grid_point(tmp_path, monkeypatch):
    """report.sweep.train_eval: each point's selection becomes a C1 training subset of exactly its ids, the train
    and image stages are run on those subsets (and the full-data run), and Rel is read back per point."""
    from gdo_utils import ofa
    from gdo_utils.config import ReportSweepConfig
    from gdo_utils.embed import load_embeddings
    from gdo_utils.evaluate.image import stage as image_stage
    from gdo_utils.ofa import pipeline
    from gdo_utils.report import sweep as sweep_mod
    from gdo_utils.report.names import IMAGE_BENCHMARKS
    from gdo_utils.trainfile import read_rows
    from gdo_utils import train as train_pkg
    from tests.test_ofa_pipeline import make_params

    monkeypatch.setattr(pipeline, "load_pool_embeddings", lambda params, name: load_embeddings(params, name))
    monkeypatch.setattr(pipeline, "ensure_pool_embeddings", lambda params, name: None)
    params = make_params(tmp_path / "out", tmp_path)
    ofa.run_all(params)
    params.report.sweep = ReportSweepConfig(k=[4], budget_ratio=[0.15, 0.3], train_eval=True)
    trained, scored = [], []

    def fake_train(p, names, force=False, params_file=None):  # the real stage has its own tests (test_train_runs)
        trained.extend(names)
        return {}

    def fake_image_stage(p, run_dirs=None, progress=True):  # writes what the image stage writes: the trajectory
        scored.extend(Path(d).name for d in run_dirs)
        rows = [{"subset": s, "checkpoint": "checkpoint-8", "samples_seen": 8, "benchmark": b, "level": "overall",
                 "subtask": "", "accuracy": (0.8 if "r0.3" in s else 1.0 if "full" in s else 0.9) * (50.0 + i),
                 "n": 10, "engine": "kit", "contract": "toy"}
                for s in scored for i, b in enumerate(IMAGE_BENCHMARKS)]
        p.stage_dir("eval").mkdir(parents=True, exist_ok=True)
        pd.DataFrame(rows).to_parquet(p.stage_dir("eval", "trajectory.parquet"))
        return {}

    monkeypatch.setattr(train_pkg, "train_runs", fake_train)
    monkeypatch.setattr(image_stage, "run_image_stage", fake_image_stage)
    table = sweep_mod.run_sweep(params).set_index(["pool", "k", "budget_ratio"])
    points = ["ofa_sweep_k4_r0.15_src", "ofa_sweep_k4_r0.3_src", "ofa_sweep_k4_r0.15_vf", "ofa_sweep_k4_r0.3_vf"]
    assert sorted(trained) == sorted(points + ["ofa_full_src", "ofa_full_vf"]) and sorted(scored) == sorted(trained)
    for name in points:  # exactly the point's selected ids, in pool order, as contract rows
        pool, tag = name.rsplit("_", 1)[1], name.split("_")[3]
        chosen = (sweep_mod.sweep_dir(params) / "selections" / f"k4_{tag}" / f"{pool}.txt").read_text().split()
        rows = list(read_rows(params.stage_dir("subsets", name, "train.jsonl")))
        assert sorted(r["id"] for r in rows) == sorted(chosen) and len(rows) == table.loc[(pool, 4, float(tag[1:])), "n_selected"]
    assert table.loc[("src", 4, 0.15), "rel"] == pytest.approx(90.0)
    assert table.loc[("vf", 4, 0.3), "rel"] == pytest.approx(80.0)


# ----------------------------------------------------------------------------- figures as the release draws them
def test_reference_figures_follow_the_release():
    from gdo_utils.report import figures
    from gdo_utils.report.figures_gdo import delta_label, heatmap_cmap

    conv = figures.convergence().figure
    texts = [t.get_text() for ax in conv.axes for t in ax.texts]
    assert {"~13.2x", "~14.5x", "~14.4x"} <= set(texts)         # the release's labels, drawn as printed
    assert conv.legends and all(ax.get_legend() is None for ax in conv.axes)  # one legend above, none over points
    assert [t.get_text() for t in conv.axes[0].get_xticklabels()] == ["0", "128", "256", "384", "512"]
    assert any("~13.2x" in x and "14.5x" in x for x in reference.inconsistencies())  # and flagged
    # frontier labels: the release writes Diverse MVBench +0.85 as +0.9 and Temp MLVU +1.45 as +1.5 (halves up)
    assert delta_label(0.85) == "+0.9" and delta_label(1.45) == "+1.5" and delta_label(-0.23) == "-0.2"
    front = figures.frontier().figure
    labels = [t.get_text() for t in front.axes[0].texts]
    assert labels == ["+1.4", "+0.9", "-0.2", "+1.4"]             # MinLoss, Diverse, Temp, Temp+ on MVBench
    # heatmap colours: negative orange (red > blue), positive blue (blue > red), as the release; not inverted
    low, high = heatmap_cmap()(0.0), heatmap_cmap()(1.0)
    assert low[0] > low[2] and high[2] > high[0]
    import matplotlib.pyplot as plt

    for f in (conv, front):
        plt.close(f)


def test_the_provenance_says_which_kind_of_toy_model_made_the_numbers(repo_root):
    """The demo's tiny model is random; the miniature's was first trained on the toy world: the report says which."""
    from gdo_utils.config import load_params
    from gdo_utils.report.build import provenance

    demo = provenance(load_params(repo_root / "params" / "demo.yaml"), "run", None)["demo_note"]
    mini = provenance(load_params(repo_root / "params" / "miniature.yaml"), "run", None)["demo_note"]
    assert "randomly initialised" in demo and "miniature number" not in demo
    assert "miniature number" in mini and "first trained on the toy world" in mini and "randomly" not in mini


def test_run_mode_shows_the_image_intervals_only_beside_the_scores_they_were_computed_for(tmp_path, repo_root,
                                                                                           monkeypatch):
    """OFA scores and Rel carry the evaluation's bootstrap intervals; an interval file older than the trajectory
    (its recorded score differs) gives no interval rather than a stale one."""
    _with_chance(monkeypatch)
    params = _params(tmp_path, repo_root)
    rows = _traj_rows()
    for subset, samples, acc in (("ofa_llava665k", 15, 60.0), ("ofa_random_llava665k", 15, 50.0),
                                 ("ofa_full_llava665k", 100, 80.0)):
        rows.append({"subset": subset, "checkpoint": f"checkpoint-{samples}", "samples_seen": samples,
                     "benchmark": "vqav2", "level": "overall", "subtask": "", "accuracy": acc, "n": 100,
                     "engine": "kit", "contract": "toy"})
    _write_traj(params, rows)
    ev = params.run_dir / "eval"
    pd.DataFrame([("ofa_llava665k", "checkpoint-15", "vqav2", 60.0, 51.0, 69.0),
                  ("ofa_random_llava665k", "checkpoint-15", "vqav2", 49.0, 40.0, 58.0)],   # stale: the trajectory says 50
                 columns=["subset", "checkpoint", "benchmark", "score", "ci95_low", "ci95_high"]).to_csv(
        ev / "image_intervals.csv", index=False)
    pd.DataFrame([("ofa_llava665k", 75.0, 62.5, 88.0), ("ofa_random_llava665k", 60.0, 50.0, 71.0)],
                 columns=["subset", "rel", "rel_ci95_low", "rel_ci95_high"]).to_csv(ev / "rel.csv", index=False)
    rep = build_report(params)
    scores = _long(rep, "ofa_scores")
    assert scores.loc[("llava665k", "LLaVA-665K", "OFA 15%", "VQAv2"), "This run"] == "60.0 (n=100, 95% CI 51.0-69.0)"
    assert scores.loc[("llava665k", "LLaVA-665K", "Random 15%", "VQAv2"), "This run"] == "50.0 (n=100)"
    rel = rep.tables["ofa_rel"].display.set_index(["Pool", "Method"])["Rel over evaluated (benchmarks)"]
    assert rel.loc[("llava665k", "OFA 15%")] == "75.0 (1 of 10; 95% CI 62.5-88.0, paired bootstrap)"
    assert rel.loc[("llava665k", "Random 15%")] == "62.5 (1 of 10)"   # rel.csv's 60.0 is another Rel: no interval
