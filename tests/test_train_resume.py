"""Training resumes end where an uninterrupted run ends: kill -9 with the shipped demo's train settings, a
model-only checkpoint (save_only_model) restarts from scratch, and a cut trainer_state.json is never used."""
from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from gdo_utils.train.callbacks import BrokenCheckpointError, finalize_staged, has_full_state, state_step
from gdo_utils.train.run import checkpoints_of, resume_point
from tests.conftest import REPO
from tests.train_helpers import c1_rows, tiny_qwen3vl, write_subset

ENV = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
       "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
CLI = [sys.executable, "-m", "gdo_utils.cli"]


def _demo_train(**over) -> dict:
    """The train section of the shipped params/demo.yaml (its launch config, batch, LR, save_only_model...)."""
    tr = yaml.safe_load((REPO / "params/demo.yaml").read_text())["train"]
    tr.pop("runs")
    tr.update(over)
    return tr


def _params(path: Path, out: Path, model: Path, train: dict) -> Path:
    path.write_text(yaml.safe_dump({"run_name": "t", "output_root": str(out), "device": "cpu",
                                    "models": {"vlm": {"path": str(model), "dtype": "float32"}}, "train": train}))
    return path


def _train(pf: Path, kill_after_first_checkpoint: bool = False) -> subprocess.CompletedProcess | None:
    """`gdo-repro train` on subset s; optionally kill -9 once its first checkpoint is promoted."""
    cmd = [*CLI, "-v", "train", "--params", str(pf), "--subset", "s"]
    if not kill_after_first_checkpoint:
        return subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=600)
    run = yaml.safe_load(pf.read_text())["output_root"]
    run_dir = Path(run) / "t" / "train" / "s"
    proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.time()
    while not list(run_dir.glob("checkpoint-*")):
        assert proc.poll() is None, "training ended before its first checkpoint"
        assert time.time() - t0 < 300
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    info = json.loads((run_dir / "run_info.json").read_text()) if (run_dir / "run_info.json").is_file() else {}
    assert not info.get("finished"), "the run finished before it was killed"
    return None


def _final_weights(out: Path) -> dict[str, torch.Tensor]:
    run = out / "t" / "train" / "s"
    last = max(run.glob("checkpoint-*"), key=lambda d: int(d.name.split("-")[1]))
    return load_file(str(last / "model.safetensors"))


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    model = tiny_qwen3vl(root / "models")
    rows = c1_rows(root / "media", 40, kinds=("image", "text"))
    straight = root / "straight"
    write_subset(straight, "t", "s", rows)
    out = _train(_params(root / "straight.yaml", straight, model, _demo_train()))
    assert out.returncode == 0, out.stderr[-3000:]
    return root, model, rows, _final_weights(straight)


def _equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_kill9_with_the_demo_train_settings_resumes_to_the_uninterrupted_weights(setup):
    """The shipped demo keeps the full training state, so a run killed with kill -9 resumes from its
    checkpoint (not from scratch) and ends with the same weights as an uninterrupted run."""
    root, model, rows, want = setup
    out = root / "killed"
    write_subset(out, "t", "s", rows)
    pf = _params(root / "killed.yaml", out, model, _demo_train())
    _train(pf, kill_after_first_checkpoint=True)
    ck = checkpoints_of(out / "t/train/s")
    assert ck and has_full_state(out / "t/train/s" / ck[-1]["name"])
    res = _train(pf)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "s: resuming from" in res.stderr and "from scratch" not in res.stderr
    assert _equal(_final_weights(out), want)


@pytest.mark.slow
def test_a_model_only_checkpoint_restarts_from_scratch_with_a_warning(setup):
    """save_only_model: true leaves no optimizer / scheduler / RNG state: the killed run is not resumed from
    it silently (that ended with other weights: the LR schedule restarted) but trained again, with a warning."""
    root, model, rows, want = setup
    out = root / "model_only"
    write_subset(out, "t", "s", rows)
    pf = _params(root / "model_only.yaml", out, model, _demo_train(save_only_model=True))
    _train(pf, kill_after_first_checkpoint=True)
    ck = checkpoints_of(out / "t/train/s")
    assert ck and not has_full_state(out / "t/train/s" / ck[-1]["name"])
    res = _train(pf)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "training again from scratch" in res.stderr and "s: resuming from" not in res.stderr
    assert _equal(_final_weights(out), want)


def _ckpt(d: Path, state: str | None, full: bool = True) -> Path:
    d.mkdir(parents=True)
    (d / "model.safetensors").write_bytes(b"w")
    if full:
        for f in ("optimizer.pt", "scheduler.pt", "rng_state.pth"):
            (d / f).write_bytes(b"s")
    if state is not None:
        (d / "trainer_state.json").write_text(state)
    return d


def test_a_staged_checkpoint_with_a_cut_trainer_state_is_never_promoted(tmp_path, caplog):
    run = tmp_path / "run"
    staging = run / ".trainer"
    _ckpt(staging / "checkpoint-2", json.dumps({"global_step": 2}))
    _ckpt(staging / "checkpoint-3", '{"global_step": 3, "log_hist')   # cut mid-write by kill -9
    _ckpt(staging / "checkpoint-4", None)                              # killed before the state was written
    caplog.set_level(logging.WARNING)
    moved = finalize_staged(staging, run, lambda step: f"checkpoint-{step * 4}")
    assert moved == ["checkpoint-8"]
    assert sorted(d.name for d in run.glob("checkpoint-*")) == ["checkpoint-8"]
    assert not list(staging.glob("checkpoint-*"))
    assert str(staging / "checkpoint-3" / "trainer_state.json") in caplog.text


def test_a_promoted_checkpoint_with_a_cut_state_is_left_out_with_a_warning_naming_it(tmp_path, caplog):
    run = tmp_path / "run"
    _ckpt(run / "checkpoint-8", json.dumps({"global_step": 2}))
    _ckpt(run / "checkpoint-12", '{"global_step": 3, "log_hist')
    with pytest.raises(BrokenCheckpointError, match=r"checkpoint-12/trainer_state\.json: not valid JSON"):
        state_step(run / "checkpoint-12")
    caplog.set_level(logging.WARNING)
    assert [c["name"] for c in checkpoints_of(run)] == ["checkpoint-8"]
    assert "checkpoint-12/trainer_state.json" in caplog.text
    assert resume_point(run) == str(run / "checkpoint-8")
    # the last good checkpoint is model-only: no silent resume
    _ckpt(run / "checkpoint-16", json.dumps({"global_step": 4}), full=False)
    assert resume_point(run) is None
