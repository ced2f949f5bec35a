"""Training runs end to end on CPU: checkpoints by samples seen, kill-and-resume, LoRA, 2 processes, launch, errors."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from gdo_utils.config import load_params
from gdo_utils.io import read_json, read_parquet
from gdo_utils.train import run as train_run
from gdo_utils.train.launch import LaunchError, load_accelerate_config
from tests.conftest import REPO
from tests.train_helpers import c1_rows, tiny_qwen3vl, write_params, write_subset

ENV = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
       "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
CLI = [sys.executable, "-m", "gdo_utils.cli"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return tiny_qwen3vl(tmp_path_factory.mktemp("models"))


def _weights(ckpt: Path) -> dict[str, torch.Tensor]:
    return load_file(str(ckpt / "model.safetensors"))


def test_checkpoints_at_requested_sample_counts_37_rows(tmp_path, model_dir):
    out = tmp_path / "out"
    write_subset(out, "t", "s37", c1_rows(tmp_path / "media", 37, kinds=("image", "text")))
    p = load_params(write_params(tmp_path / "p.yaml", out, model_dir))
    info = train_run.train_subset(p, "s37")
    run = out / "t" / "train" / "s37"
    # 37 rows, global batch 4 -> 10 steps; quarters at steps 3, 5, 7, 10 = 12, 20, 28, 37 samples (by hand).
    assert [(c["name"], c["step"]) for c in info["checkpoints"]] == [
        ("checkpoint-12", 3), ("checkpoint-20", 5), ("checkpoint-28", 7), ("checkpoint-37", 10)]
    assert sorted(d.name for d in run.glob("checkpoint-*")) == ["checkpoint-12", "checkpoint-20", "checkpoint-28",
                                                                 "checkpoint-37"]
    assert info["finished"] and info["n_train"] == 37 and info["global_batch"] == 4 and info["family"] == "qwen3_vl"
    assert not list((run / ".trainer").glob("checkpoint-*"))
    from transformers import AutoModelForImageTextToText, AutoProcessor
    AutoModelForImageTextToText.from_pretrained(run / "checkpoint-20")
    AutoProcessor.from_pretrained(run / "checkpoint-20")
    log = read_parquet(run / "train_log.parquet")
    assert log["step"].max() == 10 and log["samples_seen"].max() == 37
    assert log.loc[log["step"] == 3, "samples_seen"].item() == 12
    assert (log["tokens"].diff().dropna() >= 0).all() and log["samples_per_s"].dropna().gt(0).all()
    assert (run / "manifest.json").is_file() and (run / "train_curves.png").is_file()
    # up to date: a second call trains nothing
    again = train_run.train_subset(p, "s37")
    assert again["checkpoints"] == info["checkpoints"]


class _Killed(Exception):
    pass


class _DieAfterSave:
    """A callback that 'kills' the run right after the Trainer saved the checkpoint of `step`."""

    def __init__(self, step: int) -> None:
        self.step = step

    def __getattr__(self, name):
        return lambda *a, **k: None

    def on_save(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise _Killed()


def test_kill_and_resume_gives_identical_weights(tmp_path, model_dir):
    rows = c1_rows(tmp_path / "media", 20, kinds=("image", "frames", "text"))
    outs = {}
    for name in ("straight", "killed"):
        out = tmp_path / name
        write_subset(out, "t", "s", rows)
        p = load_params(write_params(tmp_path / f"{name}.yaml", out, model_dir, eval_ratio=0.1,
                                     checkpoint_fractions=[0.4, 0.6, 1.0]))
        if name == "killed":
            train_run.prepare(train_run.plan_run(p, "s"))
            with pytest.raises(_Killed):
                train_run.run_worker(p, "s", extra_callbacks=[_DieAfterSave(step=3)])
            assert not read_json(out / "t/train/s/run_info.json")["finished"]
        outs[name] = train_run.train_subset(p, "s")
        outs[name]["dir"] = out / "t/train/s"
    a, b = outs["straight"], outs["killed"]
    assert [c["name"] for c in a["checkpoints"]] == [c["name"] for c in b["checkpoints"]] == [
        "checkpoint-8", "checkpoint-12", "checkpoint-18"]   # 18 train rows, B=4: steps 2, 3, 5
    wa, wb = _weights(a["dir"] / "checkpoint-18"), _weights(b["dir"] / "checkpoint-18")
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    la, lb = read_parquet(a["dir"] / "train_log.parquet"), read_parquet(b["dir"] / "train_log.parquet")
    assert np.allclose(la["loss"].to_numpy(), lb["loss"].to_numpy(), equal_nan=True, rtol=0, atol=0)
    assert la["eval_loss"].notna().sum() == 4   # at the start and at the 3 checkpoints


def test_lora_run_saves_an_adapter_that_loads(tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForImageTextToText

    from gdo_utils.train.tiny import build_tiny_llava

    base = build_tiny_llava(tmp_path / "llava")
    out = tmp_path / "out"
    write_subset(out, "t", "ofa", c1_rows(tmp_path / "media", 8, kinds=("image", "text")))
    # LLaVA-1.5's recipe (modality-grouped batches, projector lr, global batch) at tiny sizes, fp32 weights on CPU.
    p = load_params(write_params(tmp_path / "p.yaml", out, base, checkpoint_fractions=[1.0], recipe="llava15_lora",
                                 learning_rate=2e-4, global_batch=4, load_dtype="float32",
                                 lora={"enabled": True, "r": 8, "alpha": 16}))
    info = train_run.train_subset(p, "ofa")
    ck = out / "t/train/ofa" / info["checkpoints"][-1]["name"]
    assert info["lora"] and info["family"] == "llava" and (ck / "adapter_config.json").is_file()
    assert info["recipe"] == "llava15_lora" and info["global_batch"] == 4 and info["n_train"] == 8
    model = PeftModel.from_pretrained(AutoModelForImageTextToText.from_pretrained(base), ck)
    names = [n for n, _ in model.named_parameters()]
    assert any("lora_A" in n for n in names) and any("modules_to_save" in n and "multi_modal_projector" in n
                                                     for n in names)
    base_w = AutoModelForImageTextToText.from_pretrained(base).state_dict()
    merged = model.merge_and_unload().state_dict()
    changed = [k for k in merged if "language_model" in k and "proj" in k and not torch.equal(merged[k], base_w[k])]
    assert changed   # the adapter moved the LLM's projections


def test_bad_media_skipped_and_counted_or_strict(tmp_path, model_dir):
    out = tmp_path / "out"
    rows = c1_rows(tmp_path / "media", 8, kinds=("image",))
    Path(rows[2]["images"][0]).unlink()
    Path(rows[5]["images"][0]).write_bytes(b"not a jpeg")
    write_subset(out, "t", "s", rows)
    p = load_params(write_params(tmp_path / "p.yaml", out, model_dir, checkpoint_fractions=[1.0]))
    info = train_run.train_subset(p, "s")
    prep = info["prepare"]
    assert prep["skipped_by_reason"] == {"missing_media": 1, "unreadable_media": 1} and info["n_train"] == 6
    strict = load_params(write_params(tmp_path / "q.yaml", out, model_dir, strict=True, checkpoint_fractions=[1.0]))
    with pytest.raises(Exception, match=r"train.jsonl:3: row 'r002'"):
        train_run.train_subset(strict, "s", force=True)


def test_clear_errors_before_any_work(tmp_path, model_dir):
    out = tmp_path / "out"
    write_subset(out, "t", "empty", [])
    p = load_params(write_params(tmp_path / "p.yaml", out, model_dir))
    with pytest.raises(train_run.EmptySubsetError, match="has no rows"):
        train_run.train_subset(p, "empty")
    with pytest.raises(FileNotFoundError, match="subsets with a train.jsonl: empty"):
        train_run.train_subset(p, "nope")
    write_subset(out, "t", "ok", c1_rows(tmp_path / "media", 2, kinds=("text",)))
    cfg = model_dir.parent / "weird"
    cfg.mkdir()
    (cfg / "config.json").write_text('{"model_type": "bert"}')
    bad = load_params(write_params(tmp_path / "b.yaml", out, cfg))
    with pytest.raises(Exception, match="not a supported family"):
        train_run.train_subset(bad, "ok")
    big = load_params(write_params(tmp_path / "g.yaml", out, model_dir, launch={"config": "fsdp_8gpu",
                                                                               "configs_dir": str(REPO / "params/accelerate")}))
    with pytest.raises(LaunchError, match="GPU config"):
        train_run.train_subset(big, "ok")
    many = tmp_path / "many.yaml"
    many.write_text((REPO / "params/accelerate/cpu_2proc.yaml").read_text().replace("num_processes: 2",
                                                                                 "num_processes: 4096"))
    lots = load_params(write_params(tmp_path / "m.yaml", out, model_dir, launch={"config": str(many)}))
    with pytest.raises(LaunchError, match="4096 processes per node but this node has"):
        train_run.train_subset(lots, "ok")
    assert not (out / "t/train/ok").exists()   # nothing was prepared or trained


def test_every_accelerate_config_parses():
    from accelerate.commands.config.config_args import ClusterConfig

    files = sorted((REPO / "params/accelerate").glob("*.yaml"))
    assert {f.stem for f in files} >= {"cpu_1proc", "cpu_2proc", "fsdp_8gpu", "deepspeed_zero2_8gpu"}
    for f in files:
        cfg = load_accelerate_config(f)
        assert isinstance(ClusterConfig.from_yaml_file(str(f)), ClusterConfig) and cfg.num_processes >= 1
    fsdp = load_accelerate_config(REPO / "params/accelerate/fsdp_8gpu.yaml").fsdp
    assert fsdp["fsdp_version"] == 2 and fsdp["fsdp_activation_checkpointing"] is True
    assert (REPO / "params/accelerate/deepspeed_zero2.json").is_file()


def test_print_launch_snapshot(tmp_path, model_dir):
    out = tmp_path / "out"
    params = write_params(tmp_path / "p.yaml", out, model_dir, launch={"nnodes": 4, "node_rank": 2,
                                                                      "master_addr": "10.0.0.1"})
    r = subprocess.run(CLI + ["train", "--params", str(params), "--subset", "temp_plus", "--launch-config",
                              "fsdp_8gpu", "--print-launch"], capture_output=True, text=True, env=ENV,
                       cwd=tmp_path)   # from outside the checkout
    assert r.returncode == 0, r.stderr
    head, got = r.stdout.strip().replace(str(REPO), "<KIT>").replace(str(params), "<PARAMS>").splitlines()
    assert head.startswith(f"# temp_plus: start {model_dir}; recipe gdo_msswift: lr 0.001, full, AdamW betas "
                           "(0.9, 0.95), weight decay 0.01, warmup 0.1, cosine, grad clip 1, 1 epoch(s), max length "
                           "8192, global batch 128 = 4 x 32 processes x 1 accumulation")
    assert got == ("accelerate launch --config_file <KIT>/params/accelerate/fsdp_8gpu.yaml --num_machines 4 "
                   "--num_processes 32 --machine_rank 2 --main_process_ip 10.0.0.1 --main_process_port 29500 "
                   "--fsdp_transformer_layer_cls_to_wrap Qwen3VLTextDecoderLayer,Qwen3VLVisionBlock "
                   "-m gdo_utils.train.worker --params <PARAMS> --subset temp_plus "
                   "--set train.launch.config=fsdp_8gpu")
    r = subprocess.run(CLI + ["train", "--params", str(params), "--subset", "s", "--launch-config",
                              "deepspeed_zero2_8gpu", "--print-launch"], capture_output=True, text=True, env=ENV)
    assert f"--deepspeed_config_file {REPO}/params/accelerate/deepspeed_zero2.json" in r.stdout


def test_two_cpu_processes_match_one_process(tmp_path, model_dir):
    """accelerate launch, 2 processes (gloo) x per-device 2 vs 1 process x 4: same global batch, same samples.

    Tolerance: both runs see the same 4 rows per step (one seeded permutation, split across ranks) and the
    Trainer normalises the loss by the label tokens of the whole global batch, so the maths is identical;
    only the order of float32 additions differs (an all-reduce of two partial gradient sums). That gives
    ~1e-7 relative differences that Adam can amplify over 4 steps to ~1e-5; 1e-4 relative bounds it with margin
    while a real difference (other samples, other normalisation) moves the loss by > 1e-2.
    """
    rows = c1_rows(tmp_path / "media", 16, kinds=("image", "text"))
    logs = {}
    for name, launch, bs in (("one", "cpu_1proc", 4), ("two", "cpu_2proc", 2)):
        out = tmp_path / name
        write_subset(out, "t", "s", rows)
        params = write_params(tmp_path / f"{name}.yaml", out, model_dir, per_device_batch_size=bs,
                              checkpoint_fractions=[1.0], launch={"config": launch, "in_process": False,
                                                                  "configs_dir": str(REPO / "params/accelerate")})
        r = subprocess.run(CLI + ["train", "--params", str(params)] + ["--subset", "s"], capture_output=True,
                           text=True, env=ENV, cwd=tmp_path, timeout=400)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        if name == "two":
            assert "--num_processes 2" in r.stdout + r.stderr
        info = read_json(out / "t/train/s/run_info.json")
        assert info["global_batch"] == 4 and info["finished"]
        logs[name] = read_parquet(out / "t/train/s/train_log.parquet").dropna(subset=["loss"])
    a, b = logs["one"], logs["two"]
    assert a["step"].tolist() == b["step"].tolist() == [1, 2, 3, 4]
    assert a["samples_seen"].tolist() == b["samples_seen"].tolist() == [4, 8, 12, 16]
    np.testing.assert_allclose(a["loss"], b["loss"], rtol=1e-4)
    assert a["loss"].iloc[0] != pytest.approx(a["loss"].iloc[-1], rel=1e-3)   # it trained


@pytest.mark.slow
def test_multi_node_only_node0_prepares_and_the_model_loads_after_the_process_group(tmp_path, model_dir):
    """torchrun, 2 CPU processes (gloo), each one 'node': node 1 waits for node 0's marker and deletes nothing; a
    stale folder is cleared by node 0 only; both load the model once the process group exists."""
    out = tmp_path / "out"
    write_subset(out, "t", "s", c1_rows(tmp_path / "media", 8, kinds=("image", "text")))
    stale = out / "t/train/s"
    stale.mkdir(parents=True)
    (stale / "run_info.json").write_text('{"run_hash": "other"}')
    (stale / "sentinel.txt").write_text("written by an older run")
    params = write_params(tmp_path / "p.yaml", out, model_dir, per_device_batch_size=2, checkpoint_fractions=[1.0],
                          launch={"config": "cpu_2proc", "configs_dir": str(REPO / "params/accelerate")})
    reports = tmp_path / "reports"
    reports.mkdir()
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(REPO / "tests/multinode_probe.py"), str(params), "s", str(reports)]
    r = subprocess.run(cmd, capture_output=True, text=True, env=ENV, cwd=tmp_path, timeout=400)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    seen = [json.loads((reports / f"rank{k}.json").read_text()) for k in (0, 1)]
    assert all(s["group_at_load"] and s["world_at_load"] == 2 for s in seen)
    assert seen[1]["waited_s"] > 2 and seen[0]["n_train"] == seen[1]["n_train"] == 8
    assert not (stale / "sentinel.txt").exists()
    info = read_json(stale / "run_info.json")
    assert info["finished"] and info["global_batch"] == 4 and [c["name"] for c in info["checkpoints"]] == ["checkpoint-8"]
