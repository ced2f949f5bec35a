"""Video benchmarks only for video-capable model families: a LLaVA-1.5 run is skipped with a note, or refused by name."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gdo_utils.config import load_params
from gdo_utils.evaluate.stage import NotAVideoModelError, discover_runs, run_stage, takes_video, video_runs

from .conftest import REPO

SMALL = ["toyworld.n_onevision=8", "toyworld.n_llava_video=4", "toyworld.n_llava665k=16", "toyworld.n_visionflan=8",
         "toyworld.image_bench_size=3", "toyworld.bench_questions_per_task=1", "evaluate.benchmarks=[mvbench]"]


def _llava_run(run_root: Path, subset: str = "ofa_llava665k") -> Path:
    """A C2 run folder of a LLaVA-1.5 model (run_info.json only: the video stage must not load it)."""
    folder = run_root / "train" / subset
    (folder / "checkpoint-8").mkdir(parents=True)
    info = {"subset": subset, "base_model": str(run_root / "no-such-model"), "family": "llava", "global_batch": 8,
            "n_train": 8, "lora": True, "finished": True,
            "checkpoints": [{"name": "checkpoint-8", "samples_seen": 8, "step": 1}]}
    (folder / "run_info.json").write_text(json.dumps(info))
    return folder


def test_families_that_take_video():
    assert takes_video("qwen3_vl") and takes_video("qwen2_5_vl") and not takes_video("llava")


def test_found_llava_run_is_skipped_with_a_note(tmp_path):
    p = load_params("params/demo.yaml", [f"output_root={tmp_path}", *SMALL, "toyworld.enabled=false"])
    _llava_run(p.run_dir)
    runs = discover_runs(p)
    assert [r.family for r in runs] == ["llava"]
    keep, skipped = video_runs(runs, explicit=False)
    assert keep == [] and skipped == [{"subset": "ofa_llava665k", "family": "llava",
                                       "reason": "model family 'llava' cannot take video input"}]
    try:
        video_runs(runs, explicit=True)
        raise AssertionError("a LLaVA run named explicitly must be refused")
    except NotAVideoModelError as exc:
        assert "ofa_llava665k" in str(exc) and "cannot take video" in str(exc)


@pytest.mark.slow
def test_stage_report_and_cli_refusal(tmp_path):
    p = load_params("params/demo.yaml", [f"output_root={tmp_path}", *SMALL])
    run = _llava_run(p.run_dir)
    rep = run_stage(p, progress=False)
    assert rep["runs"] == [] and rep["skipped_runs"][0]["subset"] == "ofa_llava665k"
    assert "cannot take video" in rep["note"]
    r = subprocess.run([sys.executable, "-m", "gdo_utils.cli", "evaluate", "--params", "params/demo.yaml",
                        *[x for kv in [f"output_root={tmp_path}", *SMALL] for x in ("--set", kv)],
                        "--run-dir", str(run)], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert r.returncode == 1 and r.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "cannot take video" in r.stderr and "Traceback" not in r.stderr
