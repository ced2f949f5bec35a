"""OFA relative performance on a hand-made trajectory (values worked out by hand)."""
from __future__ import annotations

import pandas as pd
import pytest

from gdo_utils.evaluate.rel import relative_performance, write_rel_tables


def _traj() -> pd.DataFrame:
    rows = []

    def add(subset, ck, seen, bench, acc):
        rows.append({"subset": subset, "checkpoint": ck, "samples_seen": seen, "benchmark": bench, "level": "overall",
                     "subtask": "", "accuracy": acc, "n": 10, "engine": "kit", "contract": "c"})
    for b, acc in (("vqav2", 60.0), ("mme", 1200.0), ("pope", 80.0), ("gqa", 0.0)):
        add("ofa_full_p", "checkpoint-100", 100, b, acc)
    for b, acc in (("vqav2", 10.0), ("mme", 10.0), ("pope", 10.0)):   # an earlier checkpoint: must be ignored
        add("ofa_p", "checkpoint-8", 8, b, acc)
    for b, acc in (("vqav2", 54.0), ("mme", 1320.0), ("pope", 80.0), ("gqa", 5.0)):
        add("ofa_p", "checkpoint-15", 15, b, acc)
    for b, acc in (("vqav2", 30.0), ("mme", 600.0), ("pope", 40.0)):
        add("ofa_random_p", "checkpoint-15", 15, b, acc)
    add("ofa_p", "checkpoint-15", 15, "vqav2", 54.0)  # duplicate row of the same final score is harmless
    rows.append({**rows[-1], "level": "subtask", "subtask": "number", "accuracy": 1.0})  # non-overall rows ignored
    add("ofa_q", "checkpoint-15", 15, "vqav2", 50.0)  # pool q has no full-data run: skipped
    return pd.DataFrame(rows)


def test_rel_by_hand(tmp_path):
    rel, ratios = relative_performance(_traj(), ["p", "q"])
    r = rel.set_index("subset")
    # ofa: (54/60 + 1320/1200 + 80/80) / 3 = (0.9 + 1.1 + 1.0) / 3 = 1.0 -> 100; gqa excluded (full score 0)
    assert r.loc["ofa_p", "rel"] == pytest.approx(100.0) and r.loc["ofa_p", "B"] == 3
    assert r.loc["ofa_p", "excluded"] == "gqa" and r.loc["ofa_p", "checkpoint"] == "checkpoint-15"
    # random: 0.5 on each of the three -> 50
    assert r.loc["ofa_random_p", "rel"] == pytest.approx(50.0)
    assert r.loc["ofa_full_p", "rel"] == pytest.approx(100.0)
    assert set(rel["pool"]) == {"p"}
    mme = ratios[(ratios["subset"] == "ofa_p") & (ratios["benchmark"] == "mme")].iloc[0]
    assert (mme["score"], mme["full_score"], mme["ratio"]) == (1320.0, 1200.0, pytest.approx(1.1))
    paths = write_rel_tables(rel, ratios, tmp_path)
    assert all(p.is_file() for p in paths) and "| pool | subset |" in (tmp_path / "rel.md").read_text()


def test_rel_restricted_benchmarks():
    rel, _ = relative_performance(_traj(), ["p"], benchmarks=["vqav2"])
    assert rel.set_index("subset").loc["ofa_p", "rel"] == pytest.approx(90.0)


def test_rel_undefined_when_full_data_scores_zero_everywhere(tmp_path):
    """The demo's tiny model can score 0 on every benchmark: Rel is NaN with the reason, never a crash."""
    rows = [{"subset": s, "checkpoint": "checkpoint-8", "samples_seen": 8, "benchmark": b, "level": "overall",
             "subtask": "", "accuracy": 0.0, "n": 4, "engine": "kit", "contract": "c"}
            for s in ("ofa_full_p", "ofa_p", "ofa_random_p") for b in ("pope", "vqav2")]
    rel, ratios = relative_performance(pd.DataFrame(rows), ["p"])
    assert len(rel) == 3 and rel["rel"].isna().all() and (rel["B"] == 0).all() and ratios.empty
    assert (rel["excluded"] == "pope,vqav2").all()
    assert rel["note"].str.startswith("Rel undefined: the full-data run scores 0 on every shared benchmark").all()
    write_rel_tables(rel, ratios, tmp_path)
    assert "nan" in (tmp_path / "rel.md").read_text() and "Rel undefined" in (tmp_path / "rel.md").read_text()
    # one benchmark left out: the note says so and Rel rests on the others
    rows[0]["accuracy"] = 50.0   # ofa_full_p pope
    rows[2]["accuracy"] = 25.0   # ofa_p pope -> ratio 0.5 -> Rel 50 over B = 1
    rel, _ = relative_performance(pd.DataFrame(rows), ["p"])
    r = rel.set_index("subset").loc["ofa_p"]
    assert r["rel"] == pytest.approx(50.0) and r["B"] == 1 and r["note"] == "full-data score 0 on vqav2: left out, Rel over the other 1"
