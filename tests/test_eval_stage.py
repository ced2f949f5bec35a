"""The evaluation stage end to end on the toy benchmarks with the tiny model and fabricated C2 run folders."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from gdo_utils.config import load_params
from gdo_utils.evaluate import registry
from gdo_utils.evaluate.engine import EvalWorker
from gdo_utils.evaluate.stage import TRAJECTORY_COLUMNS, load_questions, run_stage
from gdo_utils.io import read_json
from gdo_utils.models import ensure_models, load_vlm
from gdo_utils.toyworld import generate_toyworld

from .conftest import REPO
from .eval_helpers import make_c2_run

BENCHES = ["mvbench", "videomme"]


def _params_file(root: Path, name: str, **evaluate) -> Path:
    tree = yaml.safe_load((REPO / "params" / "demo.yaml").read_text())
    tree["output_root"] = str(root / "outputs")
    tree["evaluate"].update({"benchmarks": BENCHES, "batch_size": 4, "part_rows": 4, **evaluate})
    f = root / f"{name}.yaml"
    f.write_text(yaml.safe_dump(tree))
    return f


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A toy world + tiny model + one C2 run (base + checkpoint-8) under a shared output root."""
    root = tmp_path_factory.mktemp("eval")
    pf = _params_file(root, "params")
    p = load_params(pf)
    generate_toyworld(p.toyworld, p.toyworld_dir)
    info = ensure_models(p)
    run = make_c2_run(Path(info["vlm"]), p.run_dir, "minloss", samples=(8,))
    return {"root": root, "params_file": pf, "params": p, "run": run, "tiny": Path(info["vlm"])}


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}


def _cli(args: list[str], cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    out = subprocess.run([sys.executable, "-m", "gdo_utils.cli", *args], cwd=cwd, env=_env(), capture_output=True,
                         text=True, timeout=timeout)
    assert out.returncode == 0, out.stderr[-3000:]
    return out


def _clone_run(world, root: Path) -> Path:
    """The same run folder in a fresh output root (so its eval/ starts empty)."""
    dst = root / "outputs" / "demo" / "train" / "minloss"
    shutil.copytree(world["run"], dst)
    shutil.copytree(world["params"].toyworld_dir, root / "outputs" / "demo" / "toyworld")  # up to date: not redrawn
    return dst


@pytest.fixture(scope="module")
def reference(world):
    """The CLI from a working directory outside the checkout, one process: gdo-repro evaluate --run-dir."""
    out = world["root"] / "elsewhere"
    out.mkdir()
    _cli(["evaluate", "--params", str(world["params_file"]), "--run-dir", str(world["run"])], cwd=out)
    return world["params"].run_dir / "eval"


def test_toy_benchmarks_load_with_the_official_loaders(world):
    p = world["params"]
    rep = read_json(p.toyworld_dir / "report.json")["benchmarks"]
    n = p.toyworld.bench_questions_per_task
    for name in registry.names():
        qs = load_questions(p, name)
        assert qs and all(q.gold in q.letters for q in qs)
        assert all(registry.get(name).prompt(q) for q in qs)
    mv = load_questions(p, "mvbench")
    assert {q.subtask for q in mv} == set(rep["mvbench"]["questions"]) and len(mv) == 7 * n
    bound = [q for q in mv if q.subtask == "action_sequence"]
    assert all(q.start is None and "Charades_segment/" in q.media and Path(q.media).is_file() for q in bound)
    assert all(q.media.endswith(".mp4") and Path(q.media).is_file() for q in mv if q.subtask == "episodic_reasoning")
    main = load_questions(load_params(world["params_file"], ["evaluate.mvbench_input=main_bound"]), "mvbench")
    assert all((q.start, q.end) == (2.0, 8.0) for q in main if q.subtask == "action_sequence")
    assert all(q.frame_fps == 3.0 for q in main if q.subtask == "episodic_reasoning")
    vm = load_questions(p, "videomme")
    assert {q.duration for q in vm} == {"short", "medium", "long"} and len(vm) == rep["videomme"]["questions"]
    assert max(len(q.option_texts) for q in load_questions(p, "mlvu")) == 6
    assert len(load_questions(p, "lvbench")) == rep["lvbench"]["questions"]


def test_cli_outputs_trajectory_skip_and_missing_policies(world, reference):
    ev = reference
    for ck in ("base", "checkpoint-8"):
        for b in BENCHES:
            r = read_json(ev / "minloss" / ck / f"{b}.json")
            log = pd.read_parquet(ev / "minloss" / ck / f"{b}.log.parquet")
            assert r["n_questions"] == len(log) and r["contract"] == "fps1-f4..32-px4096..4096-greedy16-release"
            assert r["samples_seen"] == (0 if ck == "base" else 8)
    vm = read_json(ev / "minloss" / "base" / "videomme.json")
    assert vm["n_missing"] == 3 and vm["by_reason"] == {"missing_media": 3}
    assert vm["overall_by_missing_video"]["wrong"]["n"] == 15 and vm["overall_by_missing_video"]["exclude"]["n"] == 12
    traj = pd.read_parquet(ev / "trajectory.parquet")
    assert list(traj.columns) == TRAJECTORY_COLUMNS
    assert str(traj["samples_seen"].dtype) == "int64" and str(traj["accuracy"].dtype) == "float64"
    assert set(traj["level"]) == {"overall", "subtask", "duration", "task_type", "domain"}
    overall = traj[traj["level"] == "overall"]
    assert len(overall) == 4 and set(overall["engine"]) == {"kit"}
    # MVBench overall = mean of its subtask rows
    for ck, g in traj[traj["benchmark"] == "mvbench"].groupby("checkpoint"):
        assert g[g["level"] == "overall"]["accuracy"].iloc[0] == pytest.approx(g[g["level"] == "subtask"]["accuracy"].mean())
    # finished pairs are skipped
    out = _cli(["evaluate", "--params", str(world["params_file"]), "--run-dir", str(world["run"])], cwd=world["root"])
    assert '"evaluated": []' in out.stdout
    # another missing-video policy re-scores the same log, nothing generated again
    p2 = load_params(world["params_file"], ["evaluate.missing_video=exclude"])
    rep = run_stage(p2, [world["run"]], progress=False)
    again = read_json(ev / "minloss" / "base" / "videomme.json")
    assert again["missing_video"] == "exclude" and again["n"] == 12 and again["seconds"] == 0.0
    assert again["accuracy"] == vm["overall_by_missing_video"]["exclude"]["accuracy"]
    assert len(rep["evaluated"]) == 4
    run_stage(world["params"], [world["run"]], progress=False)   # back to the default policy for the other tests


def test_batched_replies_equal_one_at_a_time(world):
    p = world["params"]
    vlm = load_vlm(world["tiny"], "float32", "cpu")
    for name in BENCHES:
        qs = load_questions(p, name)[:8]
        qmap = {q.qid: q for q in qs}
        ids = list(qmap)
        batched = EvalWorker(vlm, registry.get(name), qmap, p.evaluate)(ids)
        single = [EvalWorker(vlm, registry.get(name), qmap, p.evaluate)([i])[0] for i in ids]
        assert [r["reply"] for r in batched] == [r["reply"] for r in single]
        assert any(r["reply"] for r in batched)


def _logs(ev: Path) -> dict[str, pd.DataFrame]:
    """Per-question logs by relative path; media_error paths made relative to the output root."""
    out = {}
    for f in sorted(ev.glob("*/*/*.log.parquet")):
        df = pd.read_parquet(f)
        df["media_error"] = df["media_error"].str.replace(str(ev.parent.parent), "<root>", regex=False)
        out[str(f.relative_to(ev))] = df
    return out


def test_torchrun_two_processes_merge_to_the_one_process_result(world, reference, tmp_path):
    pf = _params_file(tmp_path, "p2", benchmarks=["videomme"])
    run = _clone_run(world, tmp_path)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "gdo_utils.cli", "evaluate", "--params", str(pf), "--run-dir", str(run)]
    out = subprocess.run(cmd, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    ev2 = tmp_path / "outputs" / "demo" / "eval"
    one, two = _logs(reference), _logs(ev2)
    assert sorted(two) == ["minloss/base/videomme.log.parquet", "minloss/checkpoint-8/videomme.log.parquet"]
    for k in two:
        pd.testing.assert_frame_equal(one[k], two[k])
    r = read_json(ev2 / "minloss" / "checkpoint-8" / "videomme.json")
    assert r["generation"]["world_size"] == 2 and 0 < r["generation"]["owned"] < r["n_questions"]


def test_killed_evaluation_resumes_without_redoing_or_losing(world, reference, tmp_path):
    pf = _params_file(tmp_path, "pk", batch_size=2, part_rows=2)
    run = _clone_run(world, tmp_path)
    ev = tmp_path / "outputs" / "demo" / "eval"
    proc = subprocess.Popen([sys.executable, "-m", "gdo_utils.cli", "evaluate", "--params", str(pf), "--run-dir", str(run)],
                            cwd=REPO, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    parts = ev / "minloss" / "base" / "mvbench.parts"
    deadline = time.time() + 180
    while time.time() < deadline and len(list(parts.glob("rank*.parquet"))) < 2 and proc.poll() is None:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = sum(len(pd.read_parquet(f)) for f in parts.glob("rank*.parquet"))
    n = len(load_questions(world["params"], "mvbench"))
    assert 2 <= done < n, "the run was killed part-way through the first benchmark"
    run_stage(load_params(pf), [run], progress=False)
    r = read_json(ev / "minloss" / "base" / "mvbench.json")
    assert r["generation"]["skipped_done"] == done and r["generation"]["processed"] == n - done
    one, resumed = _logs(reference), _logs(ev)
    for k in one:
        pd.testing.assert_frame_equal(one[k], resumed[k])


def test_no_training_run_evaluates_the_base_model(world, tmp_path):
    pf = _params_file(tmp_path, "pb", benchmarks=["lvbench"])
    tree = yaml.safe_load(pf.read_text())
    shutil.copytree(world["params"].toyworld_dir, tmp_path / "outputs" / "demo" / "toyworld")
    shutil.copytree(world["params"].run_dir / "models", tmp_path / "outputs" / "demo" / "models")
    rep = run_stage(load_params(pf), progress=False)
    assert "no training run" in rep["note"] and rep["runs"] == ["base_model"]
    r = read_json(tmp_path / "outputs" / "demo" / "eval" / "base_model" / "base" / "lvbench.json")
    assert r["samples_seen"] == 0 and r["n_questions"] == rep["questions"]["lvbench"]
    assert tree["evaluate"]["benchmarks"] == ["lvbench"]


def test_mvbench_segments_and_main_bound_give_the_same_frames_and_timestamps(world):
    """The release's pre-trimmed segment and the main-branch video cut by its bound: same indices/fps (timestamps
    from the segment's start), same pictures up to re-encoding."""
    from gdo_utils.evaluate.video import load_eval_video

    p = world["params"]
    seg = {q.qid: q for q in load_questions(p, "mvbench")}
    main = {q.qid: q for q in load_questions(load_params(world["params_file"], ["evaluate.mvbench_input=main_bound"]),
                                             "mvbench")}
    for sub in ("action_sequence", "episodic_reasoning"):
        qid = next(k for k in seg if k.startswith(sub))
        a, b = load_eval_video(seg[qid], p.evaluate), load_eval_video(main[qid], p.evaluate)
        assert a.metadata == b.metadata and a.indices[0] == 0, (sub, a.metadata, b.metadata)
        assert (a.frames - b.frames).abs().mean() < 12.0, sub      # 0-255 scale: lossy x264 vs the source frames
