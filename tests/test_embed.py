"""CLIP embeddings: per-candidate and per-sample rows, unit norms, missing media counted, resume by id."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from gdo_utils.config import params_from_dict
from gdo_utils.embed import EmbedItem, items_for, load_embeddings, run_embed
from gdo_utils.models import build_tiny_clip, load_clip
from gdo_utils.schema import QA_COLUMNS
from gdo_utils.shards import list_parts


def _row(qa_uid, sample_id, media, kind, question, turn=0, idx=None):
    r = dict.fromkeys(QA_COLUMNS)
    r.update(qa_uid=qa_uid, sample_id=sample_id, video_uid=sample_id, media=media, media_kind=kind,
             frame_indices=idx if idx is not None else list(range(len(media))), n_frames=len(media),
             question=question, answer="a", turn=turn, bucket="image_qa")
    return r


@pytest.fixture
def setup(tmp_path, media_dir):
    clip_dir = build_tiny_clip(tmp_path / "clip", seed=0)
    p = params_from_dict({"run_name": "e", "output_root": str(tmp_path / "out"), "device": "cpu",
                          "models": {"clip": {"arch": "tiny-clip", "checkpoint": str(clip_dir / "open_clip_model.safetensors"),
                                              "model_config_path": str(clip_dir / "open_clip_config.json")}},
                          "embed": {"batch_size": 2, "part_rows": 2, "frames_per_video": 4}})
    frames = sorted(str(x) for x in (media_dir / "frames" / "v1").iterdir())
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"nope")
    table = pd.DataFrame([
        _row("x::a::t0", "a", [str(media_dir / "a.jpg")], "image", "What colour is it?"),
        _row("x::a::t1", "a", [str(media_dir / "a.jpg")], "image", "Is it red?", turn=1),
        _row("x::v::t0", "v", frames[:8], "frames", "What happens?"),
        _row("x::m::t0", "m", [str(media_dir / "v2.mp4")], "video_file", "Where does it go?", idx=[0, 5, 11]),
        _row("x::bad::t0", "bad", [str(bad)], "image", "Broken?"),
        _row("x::txt::t0", "txt", [], "none", "What is 2 plus 2?"),
    ])
    return p, table


def test_qa_level_rows_norms_and_errors(setup):
    p, table = setup
    out = p.stage_dir("embed", "x")
    rep = run_embed(p, table, out, level="qa", progress=False)
    emb = load_embeddings(p, "x")
    assert list(emb.ids) == sorted(table["qa_uid"]) and emb.level == "qa"
    half = load_embeddings(p, "x", dtype=np.float16)  # the stored values, mapped read-only (not copied)
    assert half.image.dtype == np.float16 and not half.image.flags.writeable and not half.text.flags.writeable
    np.testing.assert_array_equal(half.image.astype(np.float32), emb.image)
    np.testing.assert_array_equal(half.text.astype(np.float32), emb.text)
    assert rep["rows"] == 6 and rep["has_image"] == 4 and rep["has_text"] == 6
    assert rep["errors_by_reason"] == {"no_media": 1, "unreadable_media": 1}
    norms = np.linalg.norm(emb.image, axis=1)
    np.testing.assert_allclose(norms[emb.has_image], 1.0, atol=2e-3)  # fp16 on disk
    assert (norms[~emb.has_image] == 0).all()
    np.testing.assert_allclose(np.linalg.norm(emb.text, axis=1), 1.0, atol=2e-3)
    # the two turns of sample a share an image embedding but not a text embedding
    ia, ib = list(emb.ids).index("x::a::t0"), list(emb.ids).index("x::a::t1")
    np.testing.assert_array_equal(emb.image[ia], emb.image[ib])
    assert not np.allclose(emb.text[ia], emb.text[ib])


def test_sample_level_text_is_the_mean_of_the_turns(setup):
    p, table = setup
    items = items_for(table, "sample")
    assert items["a"].texts == ["What colour is it?", "Is it red?"]
    run_embed(p, table, p.stage_dir("embed", "s"), level="sample", progress=False)
    emb = load_embeddings(p, "s")
    clip = load_clip(p.models.clip, p)
    with torch.no_grad():
        t = clip.model.encode_text(clip.tokenizer(items["a"].texts)).float().numpy()
    t /= np.linalg.norm(t, axis=1, keepdims=True)
    want = t.mean(0) / np.linalg.norm(t.mean(0))
    np.testing.assert_allclose(emb.text[list(emb.ids).index("a")], want, atol=3e-3)


def test_rerun_is_skipped_and_parts_resume_by_id(setup):
    p, table = setup
    out = p.stage_dir("embed", "r")
    run_embed(p, table, out, level="qa", progress=False)
    first = (out / "image.npy").read_bytes()
    n_parts = len(list_parts(out / "parts"))
    # a finished stage is skipped; with the manifest gone the parts are reused (no id recomputed)
    (out / "manifest.json").unlink()
    rep = run_embed(p, table, out, level="qa", progress=False)
    assert rep["shard_skipped_done"] == 6 and rep["shard_processed"] == 0
    assert len(list_parts(out / "parts")) == n_parts and (out / "image.npy").read_bytes() == first


def test_switching_the_clip_checkpoint_recomputes_every_vector(setup, tmp_path):
    """Parts are stamped with the embedding key: another CLIP (another path, or new weights at the same path)
    discards them, and the vectors equal a fresh run with the new model."""
    import shutil

    p, table = setup
    out = p.stage_dir("embed", "sw")
    run_embed(p, table, out, level="qa", progress=False)
    first = load_embeddings(p, "sw").image.copy()
    other = build_tiny_clip(tmp_path / "clip_b", seed=1)
    ckpt = Path(p.models.clip.checkpoint)
    p2 = p.model_copy(deep=True)
    p2.models.clip.checkpoint = str(other / "open_clip_model.safetensors")
    p2.models.clip.model_config_path = str(other / "open_clip_config.json")
    rep = run_embed(p2, table, out, level="qa", progress=False)
    assert rep["shard_skipped_done"] == 0 and rep["shard_processed"] == 6
    switched = load_embeddings(p2, "sw").image
    assert not np.allclose(first[:4], switched[:4], atol=1e-2)
    run_embed(p2, table, p2.stage_dir("embed", "fresh"), level="qa", progress=False)
    np.testing.assert_array_equal(switched, load_embeddings(p2, "fresh").image)
    # same path, new weights: the checkpoint's fingerprint changes, so the stage recomputes
    shutil.copyfile(other / "open_clip_model.safetensors", ckpt)
    rep = run_embed(p, table, out, level="qa", progress=False)
    assert rep["shard_processed"] == 6
    np.testing.assert_array_equal(load_embeddings(p, "sw").image, switched)


def test_the_checkpoint_is_loaded_even_with_a_model_config(setup, tmp_path):
    """models.clip.checkpoint wins over the weights beside model_config_path (same architecture, other weights)."""
    p, _ = setup
    other = build_tiny_clip(tmp_path / "clip_c", seed=3)
    p2 = p.model_copy(deep=True)
    p2.models.clip.checkpoint = str(other / "open_clip_model.safetensors")   # config path unchanged
    a, b = load_clip(p.models.clip, p), load_clip(p2.models.clip, p2)
    ref = load_clip(p2.models.clip.model_copy(update={"model_config_path": str(other / "open_clip_config.json")}), p2)
    wa, wb, wr = (next(iter(c.model.state_dict().values())) for c in (a, b, ref))
    assert not torch.equal(wa, wb) and torch.equal(wb, wr)


def test_each_video_is_decoded_once_and_shared_by_its_qas(setup):
    """QA-level rows of the same media share one image embedding computed from one decode."""
    p, table = setup
    extra = table.iloc[[2, 3]].copy()  # two more QAs on the frame list and on the mp4
    extra["qa_uid"] = ["x::v::t1", "x::m::t1"]
    extra["question"] = ["And then?", "How fast?"]
    extra["turn"] = 1
    t = pd.concat([table, extra], ignore_index=True)
    rep = run_embed(p, t, p.stage_dir("embed", "once"), level="qa", progress=False)
    assert rep["rows"] == 8 and rep["shard_media_decoded"] == 3  # a.jpg, the frames, the mp4: once each
    emb = load_embeddings(p, "once")
    ids = list(emb.ids)
    for a, b in (("x::v::t0", "x::v::t1"), ("x::m::t0", "x::m::t1")):
        np.testing.assert_array_equal(emb.image[ids.index(a)], emb.image[ids.index(b)])
