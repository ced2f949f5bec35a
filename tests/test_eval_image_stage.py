"""The image-suite stage end to end on the tiny model: OFA runs (C2) -> C3 files, trajectory, Rel; resume skips."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from gdo_utils.config import load_params
from gdo_utils.io import read_json, read_parquet
from gdo_utils.models import ensure_models
from gdo_utils.toyworld import generate_toyworld

from .eval_helpers import make_c2_run

SMALL = ["toyworld.n_onevision=8", "toyworld.n_llava_video=4", "toyworld.n_llava665k=16", "toyworld.n_visionflan=8",
         "toyworld.image_bench_size=3", "toyworld.bench_questions_per_task=1"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("img")
    p = load_params("params/demo.yaml", [f"output_root={out}", *SMALL])
    generate_toyworld(p.toyworld, p.toyworld_dir)
    tiny = ensure_models(p)["vlm"]
    for s in ("ofa_full_llava665k", "ofa_llava665k", "ofa_random_llava665k"):
        make_c2_run(tiny, p.run_dir, s, samples=(8,) if s != "ofa_full_llava665k" else (8, 16))
    return p


def test_image_stage_cli_writes_c3_and_rel(demo, tmp_path):
    args = [sys.executable, "-m", "gdo_utils.cli", "evaluate", "--params", str(demo.source_file),
            *[x for kv in [f"output_root={demo.output_root}", *SMALL, "evaluate.benchmarks=[]"] for x in ("--set", kv)]]
    r = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    rep = json.loads(r.stdout)["image_suite"]
    assert sorted(rep["runs"]) == ["ofa_full_llava665k", "ofa_llava665k", "ofa_random_llava665k"]
    assert len(rep["evaluated"]) == 9
    ev = demo.stage_dir("eval")
    res = read_json(ev / "ofa_full_llava665k/checkpoint-16/pope.json")   # final checkpoint only
    assert not (ev / "ofa_full_llava665k/checkpoint-8").exists()
    assert res["engine"] == "kit" and res["suite"] == "image" and res["n"] == 18
    log = read_parquet(ev / "ofa_full_llava665k/checkpoint-16/mmbench_en.log.parquet")
    assert len(log) == 12 and log["prompt"].str.contains("There are several options:").all()
    traj = read_parquet(ev / "trajectory.parquet")
    assert {"mmbench_en", "pope", "vqav2"} <= set(traj["benchmark"])
    vq = read_json(ev / "ofa_full_llava665k/checkpoint-16/vqav2.json")   # toy VQAv2 is val: local accuracy, labelled
    assert vq["split"] == "val" and "val" in vq["headline"] and vq["accuracy"] is not None
    assert not (ev / "ofa_full_llava665k/checkpoint-16/vqav2.submission.json").exists()
    rel = (ev / "rel.csv").read_text()
    assert "ofa_llava665k" in rel and "ofa_random_llava665k" in rel
    # every end score of the real logs gets a bootstrap interval around it (the units reproduce each benchmark's score)
    import pandas as pd

    ci = pd.read_csv(ev / "image_intervals.csv")
    assert sorted(zip(ci["subset"], ci["benchmark"])) == sorted(
        (s, b) for s in rep["runs"] for b in ("mmbench_en", "pope", "vqav2"))
    ends = traj[(traj["level"] == "overall") & traj["benchmark"].isin(["mmbench_en", "pope", "vqav2"])]
    ends = ends.sort_values("samples_seen").groupby(["subset", "benchmark"]).tail(1).set_index(["subset", "benchmark"])
    for r in ci.itertuples():
        assert r.score == pytest.approx(ends.loc[(r.subset, r.benchmark), "accuracy"])
        assert r.ci95_low <= r.score <= r.ci95_high
    rel_df = pd.read_csv(ev / "rel.csv")
    assert {"rel_ci95_low", "rel_ci95_high"} <= set(rel_df.columns)
    again = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and json.loads(again.stdout)["image_suite"]["evaluated"] == []
