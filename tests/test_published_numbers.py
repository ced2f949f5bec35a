"""Every shipped published number (gdo_utils/report/paper_numbers/*.csv) against an independent transcription of
its source (tests/published_transcription.py), so that a single wrong number in the package data fails here.

The comparison is per cell and per row set: a changed, added, dropped or reordered row fails, as does a value
that differs in any digit. The recomputations in test_report.py (peak match from the curves, the subtask
groups from the heatmap, Rel from the companion rows) check the same data a second way.
"""
from __future__ import annotations

import re

import pandas as pd
import pytest

from gdo_utils.report import published
from tests import published_transcription as T

SCORES = ("VQAv2", "GQA", "LLaVA-Wild", "SQA-I", "TextVQA", "MME-P", "MMBench-en", "MMBench-cn", "POPE", "MM-Vet")
BENCH4 = ("MVBench", "VideoMME", "MLVU", "LVBench")


def _rows(block: str) -> list[list[str]]:
    """Markdown-ish '| a | b |' lines -> cells."""
    return [[c.strip() for c in line.strip().strip("|").split("|")] for line in block.strip().splitlines()]


def _num(cell: str) -> float:
    """'+1.38' / '35.4k' / '14.5x' -> float."""
    return float(cell.rstrip("kx"))


def _value_delta(cell: str) -> tuple[float, float | None]:
    """'63.63 (+1.35)' -> (63.63, 1.35); '63.65' -> (63.65, None)."""
    m = re.fullmatch(r"([-+]?[\d.]+)(?: \(([-+][\d.]+)\))?", cell)
    assert m, cell
    return float(m.group(1)), (float(m.group(2)) if m.group(2) else None)


def _shipped(name: str) -> list[list]:
    """The package file's rows: strings as strings, numbers as floats."""
    df = published.load(name)
    return [[v if isinstance(v, str) else float(v) for v in row] for row in df.itertuples(index=False)]


def expected_main() -> list[list]:
    return [[r[0], *map(_num, r[1:])] for r in _rows(T.GDO_MAIN)]


def expected_profiles() -> list[list]:
    out = []
    for r in _rows(T.GDO_PROFILES):
        for b, cell in zip(BENCH4, r[2:]):
            acc, delta = _value_delta(cell)
            out.append([r[0], _num(r[1]), b, acc, delta])
    return out


def expected_temporal() -> list[list]:
    return [[*r[:3], *map(_num, r[3:])] for r in _rows(T.GDO_TEMPORAL)]


def expected_groups() -> list[list]:
    return [[r[0], *map(_num, r[1:])] for r in _rows(T.GDO_GROUPS)]


def expected_ablation() -> list[list]:
    """setting, the three scores, then the three printed deltas (none on the Temp+ row)."""
    out = []
    for r in _rows(T.GDO_ABLATION):
        pairs = [_value_delta(c) for c in r[1:]]
        out.append([r[0], *(v for v, _ in pairs), *(float("nan") if d is None else d for _, d in pairs)])
    return out


def ablation_printed_deltas() -> dict[tuple[str, int], float]:
    """(setting, column index) -> the delta printed in brackets."""
    return {(r[0], i): _value_delta(c)[1] for r in _rows(T.GDO_ABLATION) for i, c in enumerate(r[1:])
            if _value_delta(c)[1] is not None}


def expected_heatmap() -> list[list]:
    by_profile = {}
    for line in T.GDO_HEATMAP.strip().splitlines():
        name, *vals = line.split()
        assert len(vals) == 20, name
        by_profile[name] = [float(v) for v in vals]
    # the package file is long: subtask by subtask, the profiles in the figure's row order
    return [[s, p, by_profile[p][i]] for i, s in enumerate(T.HEATMAP_SUBTASKS) for p in by_profile]


def expected_trajectories() -> list[list]:
    out = []
    for line in T.GDO_TRAJECTORIES.strip().splitlines():
        bench, series, rest = line.split(None, 2)
        for point in rest.split("|"):
            x, y = point.split()
            out.append([bench, series, float(x), float(y)])
    return out


def expected_companion(block: str) -> list[list]:
    out = []
    for line in block.strip().splitlines():
        method, scores, rel = (c.strip() for c in line.split("|"))
        values = [float(v) for v in scores.split()]
        assert len(values) == len(SCORES), method
        out.append([method, *values, float(rel)])
    return out


def _nan_free(v):
    """NaN (an empty cell) as a marker that compares equal to itself."""
    return "<empty>" if isinstance(v, float) and v != v else v


EXPECTED = {
    "gdo_main": expected_main, "gdo_profiles": expected_profiles, "gdo_temporal_subtasks": expected_temporal,
    "gdo_subtask_groups": expected_groups, "gdo_ablation": expected_ablation, "gdo_mvbench_heatmap": expected_heatmap,
    "gdo_trajectories": expected_trajectories,
    "ofa_baselines_llava665k": lambda: expected_companion(T.VISNEC_LLAVA665K),
    "ofa_baselines_visionflan": lambda: expected_companion(T.VISNEC_VISIONFLAN),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_shipped_numbers_equal_the_independent_transcription(name):
    shipped, expected = _shipped(name), EXPECTED[name]()
    assert len(shipped) == len(expected), (name, len(shipped), len(expected))
    for i, (got, want) in enumerate(zip(shipped, expected)):
        got, want = [_nan_free(v) for v in got], [_nan_free(v) for v in want]
        assert got == want, f"{published.REGISTRY[name].file} data row {i + 1}: shipped {got}, source {want}"


def test_companion_columns_are_the_ten_benchmarks_and_rel():
    for name in published.COMPANION_POOL:
        assert list(published.load(name).columns) == ["method", *SCORES, "Rel"]


def test_ofa_headline_equals_the_abstract():
    h = published.load("ofa_headline").set_index("pool")
    assert set(h.index) == set(T.OFA_HEADLINE)
    for pool, (budget, rel) in T.OFA_HEADLINE.items():
        assert (float(h.loc[pool, "budget_ratio"]), float(h.loc[pool, "relative_performance"])) == (budget, rel), pool


def test_ablation_deltas_follow_from_the_scores_within_rounding():
    """The printed deltas are (row - Temp+) from unrounded scores: within 0.01 of the printed scores' difference
    (w/o PPL VideoMME: 61.81 - 62.89 = -1.08, printed -1.07, so the deltas are shipped as printed)."""
    a = published.load("gdo_ablation").set_index("setting")
    printed = ablation_printed_deltas()
    assert len(printed) == 12
    for (setting, i), delta in printed.items():
        col = ("mvbench", "videomme", "mlvu")[i]
        assert a.loc[setting, f"{col}_delta"] == delta
        assert abs(a.loc[setting, col] - a.loc["Temp+", col] - delta) <= 0.01 + 1e-9, (setting, col)


def test_profile_deltas_follow_from_the_main_tables_uni10x():
    """accuracy - Uni-10x (main table) equals the printed delta within 0.01 (deltas come from unrounded scores)."""
    prof = published.load("gdo_profiles")
    uni = published.load("gdo_main").set_index("benchmark")["uni10x"]
    diff = prof["accuracy"] - prof["benchmark"].map(uni) - prof["delta_pp"]
    assert (diff.abs() <= 0.01 + 1e-9).all(), prof[diff.abs() > 0.01 + 1e-9]


def test_temporal_deltas_follow_from_their_scores():
    t = published.load("gdo_temporal_subtasks")
    assert ((t["gdo"] - t["uni10x"] - t["delta_pp"]).abs() <= 0.01 + 1e-9).all()


def test_main_table_agrees_with_the_temp_plus_profile_rows():
    main = published.load("gdo_main").set_index("benchmark")
    prof = published.load("gdo_profiles")
    tp = prof[prof["profile"] == "Temp+"].set_index("benchmark")
    pd.testing.assert_series_equal(main["gdo"], tp["accuracy"], check_names=False)
    pd.testing.assert_series_equal(main["delta_pp"], tp["delta_pp"], check_names=False)
    assert ((main["gdo"] - main["uni10x"] - main["delta_pp"]).abs() <= 0.01 + 1e-9).all()


def test_release_speedup_labels_equal_the_figure():
    assert {b: f"~{x:.1f}x" for b, x in published.RELEASE_SPEEDUP_LABELS.items()} == T.TEASER_SPEEDUP_LABELS
