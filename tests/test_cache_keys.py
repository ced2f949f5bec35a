"""Extraction caches keyed on what the rows really depend on: the backbone's files (not its path), each row's
own input (not the whole table), and content that does not depend on where the run lives (output_root)."""
from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from safetensors.torch import load_file, save_file

from gdo_utils.cache import StageCache, model_fingerprint, portable_sha256
from gdo_utils.config import load_params
from gdo_utils.descriptors.runner import descriptors_dir, run_stage, stage_cache
from gdo_utils.embed import ensure_embeddings
from gdo_utils.io import read_json
from gdo_utils.models import ensure_models
from gdo_utils.pool import run_pool_stage
from gdo_utils.toyworld import generate_toyworld

REPO = Path(__file__).resolve().parents[1]
NUM = ["amm", "frame_diversity", "loss_video", "loss_blind", "vds", "ppl", "tnc", "self_consistency"]


def _params(root: Path):
    tree = yaml.safe_load((REPO / "params/demo.yaml").read_text())
    tree.update(run_name="k", output_root=str(root))
    tree["toyworld"].update(n_onevision=4, n_llava_video=3, n_llava665k=2, n_visionflan=2, seed=5)
    tree["descriptors"] = {"batch_size": 4, "part_rows": 4, "coverage_k": 3, "sc_samples": 2, "sc_max_new_tokens": 4,
                           "tnc_mode": "regex", "coverage_features": "standardized"}
    root.mkdir(parents=True, exist_ok=True)
    (root / "k.yaml").write_text(yaml.safe_dump(tree))
    return load_params(root / "k.yaml")


def _stages(p) -> dict:
    """Pool, CLIP embeddings (qa level) and descriptors; rows each extraction really computed."""
    run_pool_stage(p)
    emb = ensure_embeddings(p, "gdo", level="qa")
    desc = run_stage(p, progress=False)
    return {"embedded": emb.get("shard_processed", 0), "extracted": (desc.get("extraction") or {}).get("processed", 0)}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("keys")
    p = _params(root / "a")
    generate_toyworld(p.toyworld, p.toyworld_dir)
    ensure_models(p)
    first = _stages(p)
    n = len(pd.read_parquet(p.run_dir / "pool" / "qa.parquet"))
    assert first == {"embedded": n, "extracted": n}
    return root, p, n


def _copy(world, dest: Path):
    root, p, _ = world
    q = _params(dest)
    shutil.copytree(p.run_dir, q.run_dir)
    return q


def _desc(p) -> pd.DataFrame:
    return pd.read_parquet(descriptors_dir(p) / "descriptors.parquet")


def test_swapped_backbone_weights_at_the_same_path_recompute_the_descriptors(world, tmp_path, caplog):
    """Weights replaced in place (same path, same size): the descriptors' key holds the model's content."""
    q = _copy(world, tmp_path / "swap")
    assert _stages(q) == {"embedded": 0, "extracted": 0}
    before = _desc(q)
    w = q.run_dir / "models" / "tiny-qwen3vl" / "model.safetensors"
    fp = model_fingerprint(str(w.parent))
    tensors = load_file(str(w))
    name = next(k for k in sorted(tensors) if "lm_head" in k or "embed_tokens" in k)
    tensors[name] = tensors[name] + 0.05 * torch.randn_like(tensors[name])
    save_file(tensors, str(w), metadata={"format": "pt"})
    assert model_fingerprint(str(w.parent)) != fp
    assert stage_cache(q).why_stale(["descriptors.parquet"]).startswith("model files changed")
    caplog.set_level(logging.INFO)
    n = len(before)
    assert _stages(q) == {"embedded": 0, "extracted": n}
    after = _desc(q)
    assert not np.allclose(before["loss_blind"], after["loss_blind"])


def test_editing_one_pool_record_reextracts_only_its_rows(world, tmp_path):
    """One question edited in place: one row re-embedded, one row re-extracted, and the outputs equal a clean
    run on the edited pool (the row is recomputed inside the batch a clean run gives it: bit for bit)."""
    q = _copy(world, tmp_path / "edit")
    f = q.toyworld_dir / "onevision.jsonl"
    lines = f.read_text().splitlines()
    rec = json.loads(lines[0])
    turn = rec["messages"][0]
    key = "value" if "value" in turn else "content"
    turn[key] = turn[key].rstrip() + " Answer briefly."
    lines[0] = json.dumps(rec)
    f.write_text("\n".join(lines) + "\n")
    assert _stages(q) == {"embedded": 1, "extracted": 1}
    clean = _params(tmp_path / "clean")
    shutil.copytree(q.toyworld_dir, clean.toyworld_dir)
    shutil.copytree(q.run_dir / "models", clean.run_dir / "models")
    full = _stages(clean)
    assert full["extracted"] == full["embedded"] > 1
    a, b = _desc(q), _desc(clean)
    assert list(a["qa_uid"]) == list(b["qa_uid"])
    edited = a["qa_uid"] == f"ov::{rec['id']}::t0"
    assert edited.sum() == 1
    pd.testing.assert_frame_equal(a.loc[edited, NUM], b.loc[edited, NUM], check_exact=True)  # in its clean-run batch
    # its batch neighbours keep the values computed beside the old question: the batch's padded length can differ
    # (VLM passes pad to the longest row), which may move them by a float ulp
    np.testing.assert_allclose(a[NUM].to_numpy(float), b[NUM].to_numpy(float), rtol=1e-5, atol=1e-6)
    pd.testing.assert_frame_equal(a.drop(columns=NUM), b.drop(columns=NUM))
    # CLIP's text tower pads to a fixed length: every embedding row equals the clean run's bit for bit
    for name in ("image.npy", "text.npy", "ids.parquet"):
        assert (q.run_dir / "embed" / "gdo" / name).read_bytes() == (clean.run_dir / "embed" / "gdo" / name).read_bytes()


def test_the_same_run_under_another_output_root_reuses_every_extracted_row(world, tmp_path):
    """The run folder moved to another output_root: the pool is re-read (its rows name media by absolute path)
    but no row is re-embedded or re-extracted, and the descriptors equal the original's."""
    root, p, n = world
    q = _copy(world, tmp_path / "moved")
    assert model_fingerprint(str(q.run_dir / "models" / "tiny-qwen3vl")) == \
        model_fingerprint(str(p.run_dir / "models" / "tiny-qwen3vl"))
    assert _stages(q) == {"embedded": 0, "extracted": 0}
    pd.testing.assert_frame_equal(_desc(p), _desc(q))
    media = pd.read_parquet(q.run_dir / "pool" / "qa.parquet")["media"].explode().dropna()
    assert media.str.startswith(str(q.run_dir)).all()  # the moved pool names the moved media


def test_stage_records_name_files_relative_to_the_run_and_models_by_content(tmp_path):
    a, b = tmp_path / "a" / "run", tmp_path / "b" / "run"
    for r in (a, b):
        (r / "in").mkdir(parents=True)
        (r / "in" / "x.jsonl").write_text('{"media": "%s/media/v.mp4"}\n' % r)
        (r / "m").mkdir()
        (r / "m" / "config.json").write_text("{}")
    assert portable_sha256(a / "in" / "x.jsonl", a) == portable_sha256(b / "in" / "x.jsonl", b)
    assert portable_sha256(a / "in" / "x.jsonl", a) != portable_sha256(b / "in" / "x.jsonl", a)
    from gdo_utils.io import write_manifest

    ca = StageCache("s", a / "out", "h", ["gdo_utils.cache"], [a / "in" / "x.jsonl"], root=a, models=[str(a / "m")])
    write_manifest(a / "out", stage="s", params_hash="h", extra=ca.record())
    assert list(read_json(a / "out" / "manifest.json")["cache"]["inputs"]) == ["in/x.jsonl"]
    shutil.copytree(a / "out", b / "out")
    (b / "in" / "x.jsonl").write_text('{"media": "%s/media/v.mp4"}\n' % a)  # the same bytes as under a
    cb = StageCache("s", b / "out", "h", ["gdo_utils.cache"], [b / "in" / "x.jsonl"], root=b, models=[str(b / "m")])
    assert cb.why_stale() is None
    (b / "m" / "config.json").write_text('{"hidden": 2}')
    assert cb.why_stale().startswith("model files changed")


def test_model_fingerprint_is_the_content_wherever_and_whenever_the_files_were_written(tmp_path):
    """A model copied elsewhere with new mtimes is the same model; one byte changed at the same size is not.
    The content hashes are remembered beside the files (size + mtime), so a later process does not re-read them."""
    a = tmp_path / "a" / "m"
    a.mkdir(parents=True)
    (a / "config.json").write_text('{"hidden": 4}')
    (a / "model.safetensors").write_bytes(b"w" * 4096)
    fp = model_fingerprint(str(a))
    memo = json.loads((a / ".gdo_sha256.json").read_text())
    assert sorted(memo) == ["config.json", "model.safetensors"]
    b = tmp_path / "b" / "m"
    shutil.copytree(a, b, copy_function=shutil.copy)  # new mtimes, the memo copied along but not trusted
    assert model_fingerprint(str(b)) == fp
    (b / "model.safetensors").write_bytes(b"w" * 4095 + b"x")
    assert model_fingerprint(str(b)) != fp


def test_a_hub_model_is_keyed_on_the_revision_in_the_local_cache(tmp_path, monkeypatch):
    """A hub id in the params: a revision update in the Hugging Face cache (refs/main moves) is a new model."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    repo = tmp_path / "models--org--tiny-vlm"
    assert model_fingerprint("org/tiny-vlm") == "org/tiny-vlm"  # not cached: the id alone
    for rev in ("a" * 40, "b" * 40):
        (repo / "snapshots" / rev).mkdir(parents=True)
        (repo / "snapshots" / rev / "config.json").write_text("{}")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("a" * 40)
    first = model_fingerprint("org/tiny-vlm")
    assert first == "org/tiny-vlm@" + "a" * 40
    (repo / "refs" / "main").write_text("b" * 40)
    assert model_fingerprint("org/tiny-vlm") == "org/tiny-vlm@" + "b" * 40


def test_model_fingerprint_leaves_out_the_trainers_resume_state(tmp_path):
    """Two training runs ending with the same weights are the same model (their trainer_state.json timings
    differ); other weights are another model."""
    d = tmp_path / "checkpoint-8"
    d.mkdir()
    (d / "config.json").write_text("{}")
    (d / "model.safetensors").write_bytes(b"w" * 64)
    (d / "trainer_state.json").write_text('{"global_step": 2, "log_history": [{"step_seconds": 0.5}]}')
    fp = model_fingerprint(str(d))
    (d / "trainer_state.json").write_text('{"global_step": 2, "log_history": [{"step_seconds": 0.7}]}')
    (d / "training_args.bin").write_bytes(b"args")
    assert model_fingerprint(str(d)) == fp
    (d / "model.safetensors").write_bytes(b"v" * 64)
    assert model_fingerprint(str(d)) != fp
