"""Descriptor extraction end to end on a tiny toy pool: correctness, batching, resume, sharding, failures."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import torch
import yaml

from gdo_utils.config import load_params
from gdo_utils.descriptors.runner import (OUTPUT_COLUMNS, descriptors_dir, merge_descriptors, run_descriptors,
                                          run_stage, with_oom_retry)
from gdo_utils.io import sha256_file, write_parquet
from gdo_utils.schema import QA_SCHEMA
from gdo_utils.models import ensure_models, load_vlm_from_params
from gdo_utils.pool import load_pool, run_pool_stage

REPO = Path(__file__).resolve().parents[1]


def _params_file(root: Path, name: str = "t", **desc) -> Path:
    tree = yaml.safe_load((REPO / "params/demo.yaml").read_text())
    tree["run_name"] = name
    tree["output_root"] = str(root)
    tree["toyworld"].update(n_onevision=5, n_llava_video=4, n_llava665k=4, n_visionflan=4, seed=5)
    tree["descriptors"] = {"batch_size": 3, "part_rows": 3, "coverage_k": 4, "sc_max_new_tokens": 6, **desc}
    root.mkdir(parents=True, exist_ok=True)
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(tree))
    return path


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Pool + tiny models built once; each test copies them into its own run dir."""
    root = tmp_path_factory.mktemp("desc")
    pf = _params_file(root, "base")
    p = load_params(pf)
    run_pool_stage(p)
    ensure_models(p)
    return root, p


def _clone(world, tmp_path: Path, name: str, **desc):
    root, base = world
    pf = _params_file(tmp_path, name, **desc)
    p = load_params(pf)
    for sub in ("toyworld", "pool", "models"):
        shutil.copytree(base.run_dir / sub, p.run_dir / sub)
    return pf, p


def test_losses_equal_a_direct_per_sample_computation(world, tmp_path):
    pf, p = _clone(world, tmp_path, "direct")
    run_stage(p)
    desc = pd.read_parquet(descriptors_dir(p) / "descriptors.parquet").set_index("qa_uid")
    assert list(desc.reset_index().columns) == OUTPUT_COLUMNS
    vlm = load_vlm_from_params(p)
    from gdo_utils.media import load_frames
    from gdo_utils.vlm_batch import VLMSample, encode_batch, to_pil

    qa = load_pool(p).set_index("qa_uid")
    for uid in [qa.index[0], qa[qa["bucket"] == "short_video"].index[0]]:
        r = qa.loc[uid]
        s = VLMSample(r["question"], r["answer"], to_pil(load_frames(list(r["media"]), list(r["frame_indices"]))))
        for vis, col in ((True, "loss_video"), (False, "loss_blind")):
            b = encode_batch(vlm.processor, [s] if vis else [VLMSample(s.question, s.answer)], vis, True)
            with torch.no_grad():
                direct = float(vlm.model(**b).loss)  # the model's own mean CE over the labelled tokens
            assert desc.loc[uid, col] == pytest.approx(direct, rel=1e-5, abs=1e-5)
        assert desc.loc[uid, "vds"] == pytest.approx(desc.loc[uid, "loss_blind"] - desc.loc[uid, "loss_video"])
        assert desc.loc[uid, "ppl"] == pytest.approx(np.exp(desc.loc[uid, "loss_video"]))
    assert desc.loc[qa[qa["bucket"] == "image_qa"].index, "amm"].eq(0).all()
    assert desc["tnc"].isin([0.0, 0.5, 1.0]).all() and desc["self_consistency"].between(0, 1).all()
    assert np.allclose(desc["cluster_rep"], np.exp(-desc["cluster_dist"]), atol=1e-6)


def test_batched_equals_unbatched(world, tmp_path):
    _, one = _clone(world, tmp_path / "a", "b1", batch_size=1)
    _, many = _clone(world, tmp_path / "b", "b5", batch_size=5)
    d1 = run_stage(one) and pd.read_parquet(descriptors_dir(one) / "descriptors.parquet")
    d5 = run_stage(many) and pd.read_parquet(descriptors_dir(many) / "descriptors.parquet")
    num = ["amm", "frame_diversity", "loss_video", "loss_blind", "vds", "ppl", "tnc", "self_consistency", "quality"]
    np.testing.assert_allclose(d1[num].to_numpy(float), d5[num].to_numpy(float), rtol=1e-4, atol=1e-4)
    assert (d1["qa_uid"] == d5["qa_uid"]).all()


def test_kill_and_resume_gives_identical_output(world, tmp_path):
    pf_ref, ref = _clone(world, tmp_path / "ref", "ref")
    run_stage(ref)
    pf, p = _clone(world, tmp_path / "kill", "kill")
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    cmd = [sys.executable, "-m", "gdo_utils.cli", "descriptors", "--params", str(pf), "--extract-only"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    parts = descriptors_dir(p) / "parts"
    deadline = time.time() + 120
    while time.time() < deadline and len(list(parts.glob("*.parquet"))) < 1 and proc.poll() is None:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    n_parts = len(list(parts.glob("*.parquet")))
    n_rows = len(load_pool(p))
    assert 1 <= n_parts < -(-n_rows // 3), "the run was killed part-way"
    counts = run_descriptors(p, progress=False)
    assert counts["skipped_done"] >= 3 and counts["skipped_done"] + counts["processed"] == n_rows
    merge_descriptors(p)
    a = descriptors_dir(ref) / "descriptors.parquet"
    b = descriptors_dir(p) / "descriptors.parquet"
    pd.testing.assert_frame_equal(pd.read_parquet(a), pd.read_parquet(b))
    assert sha256_file(a) == sha256_file(b)


def test_world_size_two_then_merge_equals_world_size_one(world, tmp_path, monkeypatch):
    _, ref = _clone(world, tmp_path / "w1", "w1")
    run_stage(ref)
    _, p = _clone(world, tmp_path / "w2", "w2")
    owned = []
    for rank in (0, 1):
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", "2")
        c = run_descriptors(p, progress=False)
        owned.append(c["owned"])
    monkeypatch.delenv("RANK")
    monkeypatch.delenv("WORLD_SIZE")
    assert min(owned) > 0 and sum(owned) == len(load_pool(p))
    merge_descriptors(p)
    d1 = pd.read_parquet(descriptors_dir(ref) / "descriptors.parquet")
    d2 = pd.read_parquet(descriptors_dir(p) / "descriptors.parquet")
    num = ["amm", "loss_video", "loss_blind", "tnc", "self_consistency", "cluster_id"]
    np.testing.assert_allclose(d1[num].to_numpy(float), d2[num].to_numpy(float), rtol=1e-4, atol=1e-4)


def test_unreadable_media_keeps_cheap_descriptors_and_counts_the_error(world, tmp_path):
    _, p = _clone(world, tmp_path, "broken")
    qa = load_pool(p)
    pos = int(np.flatnonzero(qa["bucket"] == "image_qa")[0])
    bad = tmp_path / "corrupt.jpg"
    bad.write_bytes(b"not a jpeg")  # a file that became corrupt after the pool was built
    qa.at[pos, "media"] = [str(bad)]
    write_parquet(p.stage_dir("pool", "qa.parquet"), pa.Table.from_pandas(qa, schema=QA_SCHEMA, preserve_index=False))
    victim = qa.iloc[pos]
    report = run_stage(p)
    desc = pd.read_parquet(descriptors_dir(p) / "descriptors.parquet").set_index("qa_uid")
    row = desc.loc[victim["qa_uid"]]
    assert row["error"].startswith("unreadable_media")
    assert np.isnan(row["loss_video"]) and np.isfinite(row["loss_blind"]) and np.isfinite(row["tnc"])
    assert np.isfinite(row["quality"])  # the level-1 score uses neutral values for missing descriptors
    assert report["errors_by_reason"] == {"unreadable_media": int(desc["error"].notna().sum())}


def test_oom_halves_the_batch_and_gives_up_on_single_rows():
    calls = []

    def fn(idx):
        calls.append(len(idx))
        if len(idx) > 2 or 7 in idx:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return {i: {"ok": True} for i in idx}

    res, err = with_oom_retry(fn, list(range(8)))
    assert sorted(res) == [0, 1, 2, 3, 4, 5, 6] and err == {7: "oom"}
    assert calls[0] == 8 and 4 in calls and 2 in calls

    def other(idx):
        raise ValueError("not an OOM")

    with pytest.raises(ValueError):
        with_oom_retry(other, [0, 1])


def test_skip_model_with_regex_tnc_gives_cheap_descriptors_only(world, tmp_path):
    _, p = _clone(world, tmp_path, "cheap", skip_model=True, tnc_mode="regex", coverage_features="standardized")
    report = run_stage(p)
    desc = pd.read_parquet(descriptors_dir(p) / "descriptors.parquet")
    qa = load_pool(p).set_index("qa_uid").loc[desc["qa_uid"]]
    assert desc[["loss_video", "loss_blind", "vds", "ppl", "self_consistency"]].isna().all().all()
    from gdo_utils.descriptors.temporal import tnc_regex_series

    np.testing.assert_array_equal(desc["tnc"].to_numpy(), tnc_regex_series(qa["question"]))
    assert desc["amm"].notna().all() and desc["quality"].notna().all() and desc["cluster_id"].notna().all()
    assert report["missing"]["loss_video"] == len(desc) and report["coverage"]["features"] == "standardized"


# ----------------------------------------------------------------------------- pixel budget (Qwen3-VL-8B values)
QWEN3_VL_8B_PREPROCESSOR = {  # preprocessor_config.json of Qwen/Qwen3-VL-8B-Instruct
    "image_processor_type": "Qwen2VLImageProcessorFast", "processor_class": "Qwen3VLProcessor",
    "size": {"longest_edge": 16777216, "shortest_edge": 65536}, "patch_size": 16, "temporal_patch_size": 2,
    "merge_size": 2, "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5],
}


@pytest.mark.parametrize("max_pixels,want_side", [(None, 256), (50176, 224)])
def test_descriptor_pixel_budget_with_the_real_qwen3_vl_processor(tmp_path, max_pixels, want_side):
    """A 64x64 frame: the release keeps the processor's range (min 65536 px -> 256x256); the kit's cap of 50176
    clamps the minimum too (-> 224x224 = 50176 px), never enlarging past the cap."""
    import json
    from types import SimpleNamespace

    from PIL import Image
    from transformers import AutoImageProcessor

    from gdo_utils.config import params_from_dict
    from gdo_utils.descriptors.runner import DescriptorWorker

    (tmp_path / "preprocessor_config.json").write_text(json.dumps(QWEN3_VL_8B_PREPROCESSOR))
    ip = AutoImageProcessor.from_pretrained(tmp_path)
    p = params_from_dict({"run_name": "px", "descriptors": {"max_pixels": max_pixels}})
    worker = DescriptorWorker(p, pd.DataFrame({"qa_uid": []}), SimpleNamespace(processor=SimpleNamespace(image_processor=ip)))
    out = ip(images=[Image.new("RGB", (64, 64))], return_tensors="pt", **(worker.image_kwargs or {}))
    t, h, w = out["image_grid_thw"][0].tolist()
    assert (h * 16, w * 16) == (want_side, want_side)
    if max_pixels is not None:
        assert h * w * 16 * 16 <= max_pixels


# ----------------------------------------------------------------------------- the README's torchrun commands
def _torchrun(args: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    """`torchrun --standalone --nproc_per_node 2 -m gdo_utils.cli ...` on CPU; a hang fails the test."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "gdo_utils.cli",
           *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return out


def test_descriptors_cli_under_torchrun_two_processes_equals_one(world, tmp_path):
    """The README's command: every rank embeds its share and extracts, rank 0 merges; nothing waits for ever."""
    _, ref = _clone(world, tmp_path / "one", "one")
    run_stage(ref, progress=False)
    pf, p = _clone(world, tmp_path / "two", "two")
    _torchrun(["descriptors", "--params", str(pf)])
    emb = json.loads((p.stage_dir("embed", "gdo") / "report.json").read_text())
    assert emb["shard_world_size"] == 2
    d1 = pd.read_parquet(descriptors_dir(ref) / "descriptors.parquet")
    d2 = pd.read_parquet(descriptors_dir(p) / "descriptors.parquet")
    assert (d1["qa_uid"] == d2["qa_uid"]).all()
    num = ["amm", "loss_video", "loss_blind", "tnc", "self_consistency", "cluster_id", "cluster_dist", "quality"]
    np.testing.assert_allclose(d1[num].to_numpy(float), d2[num].to_numpy(float), rtol=1e-4, atol=1e-4)


def test_embed_cli_under_torchrun_two_processes_equals_one(world, tmp_path):
    from gdo_utils.embed import ensure_embeddings, load_embeddings

    _, ref = _clone(world, tmp_path / "one", "one")
    ensure_embeddings(ref, "gdo", level="qa")
    pf, p = _clone(world, tmp_path / "two", "two")
    _torchrun(["embed", "--params", str(pf)])
    a, b = load_embeddings(ref, "gdo"), load_embeddings(p, "gdo")
    assert list(a.ids) == list(b.ids) and (a.has_image == b.has_image).all()
    np.testing.assert_allclose(a.image, b.image, atol=2e-3)
    np.testing.assert_allclose(a.text, b.text, atol=2e-3)
