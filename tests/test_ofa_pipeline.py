"""OFA stage end to end on tiny synthetic pools: fit, score, select, skip, transfer, refusal, determinism.

Embeddings are written in the embed stage's file layout (ids.parquet, image.npy, text.npy,
report.json) by the test itself, so no CLIP model is needed.
"""
from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gdo_utils import ofa
from gdo_utils.config import params_from_dict
from gdo_utils.embed import load_embeddings
from gdo_utils.io import sha256_file, write_bytes, write_json, write_parquet
from gdo_utils.ofa import pipeline
from gdo_utils.plots import save_figure
from gdo_utils.pool import run_pool_stage


def write_pool_file(path: Path, n: int, prefix: str, text_only_every: int = 25) -> list[dict]:
    """A LLaVA-format JSON array; every `text_only_every`-th record has no image."""
    recs = []
    for i in range(n):
        r = {"id": f"{prefix}{i:04d}", "conversations": [
            {"from": "human", "value": f"<image>\nWhat is shown in picture {i}?"},
            {"from": "gpt", "value": f"Answer {i}."}]}
        if i % text_only_every:
            r = {"id": r["id"], "image": f"img/{i}.jpg", "conversations": r["conversations"]}
        recs.append(r)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(recs, indent=1))
    return recs


def write_embeddings(params, name: str, ids: list[str], has_image: np.ndarray, dim: int, seed: int) -> None:
    """Embeddings in gdo_utils.embed's layout: 4 blobs, L2 rows, zeros where the image is missing."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(99).normal(size=(4, 2, dim))
    blob = rng.integers(0, 4, len(ids))
    img = centres[blob, 0] + 0.4 * rng.normal(size=(len(ids), dim))
    txt = centres[blob, 1] + 0.4 * rng.normal(size=(len(ids), dim))
    img /= np.linalg.norm(img, axis=1, keepdims=True)
    txt /= np.linalg.norm(txt, axis=1, keepdims=True)
    img[~has_image] = 0
    d = params.stage_dir("embed", name)
    write_parquet(d / "ids.parquet", pd.DataFrame({"id": ids, "has_image": has_image, "has_text": True,
                                                   "error": [None] * len(ids)}))
    for fname, arr in (("image.npy", img), ("text.npy", txt)):
        buf = io.BytesIO()
        np.save(buf, arr.astype(np.float16))
        write_bytes(d / fname, buf.getvalue())
    write_json(d / "report.json", {"level": "sample", "clip_arch": "tiny-clip", "rows": len(ids)})


def make_params(root: Path, tmp: Path, dims=(16, 16), **ofa_kw):
    src, vf = tmp / "data" / "src.json", tmp / "data" / "vf.json"
    if not src.exists():
        write_pool_file(src, 200, "s")
        write_pool_file(vf, 120, "v", text_only_every=30)
    ofa_cfg = dict(k=4, epochs=3, batch_size=64, lr=1e-3, hidden=32, gate_hidden=16, core_ratio=0.2)
    ofa_cfg.update(ofa_kw)
    params = params_from_dict({
        "run_name": "t", "output_root": str(root), "seed": 42, "device": "cpu",
        "pools": {"ofa_source": {"name": "src", "sources": [{"format": "llava_json", "path": str(src)}]},
                  "ofa_transfer": [{"name": "vf", "sources": [{"format": "visionflan", "path": str(vf)}]}]},
        "pool": {"check_media": False}, "models": {"clip": {"arch": "tiny-clip"}}, "ofa": ofa_cfg})
    run_pool_stage(params)
    for name, n, every, dim, seed in (("src", 200, 25, dims[0], 1), ("vf", 120, 30, dims[1], 2)):
        ids = [f"{name[0]}{i:04d}" for i in range(n)]
        write_embeddings(params, name, ids, np.array([i % every != 0 for i in range(n)]), dim, seed)
    return params


@pytest.fixture(autouse=True)
def embeddings_from_disk(monkeypatch):
    """Read the embeddings the test wrote (the real embed stage would need a CLIP model)."""
    monkeypatch.setattr(pipeline, "load_pool_embeddings", lambda params, name: load_embeddings(params, name))
    monkeypatch.setattr(pipeline, "ensure_pool_embeddings", lambda params, name: None)


def test_run_all_writes_the_file_contract_and_skips_when_up_to_date(tmp_path):
    params = make_params(tmp_path / "out", tmp_path)
    res = ofa.run_all(params)
    sel_dir = ofa.selector_dir(params)
    for f in ("selector.safetensors", "selector.json", "centroids.npy", "history.parquet", "history.csv",
              "manifest.json", "source_clusters.parquet"):
        assert (sel_dir / f).is_file(), f
    assert res["fit"]["k"] == 4 and res["fit"]["n_scorable"] == 192 and res["fit"]["n_unscorable"] == 8

    scores = pd.read_parquet(ofa.pool_dir(params, "src") / "scores.parquet")
    assert len(scores) == 200 and scores["scored"].sum() == 192
    unscored = scores[~scores["scored"]]
    assert set(unscored["reason"]) == {"no_image"} and unscored["conf"].isna().all() and (unscored["cluster"] == -1).all()
    src_clusters = pd.read_parquet(sel_dir / "source_clusters.parquet")
    merged = scores[scores["scored"]].merge(src_clusters, on="sample_id")
    assert (merged["cluster_x"] == merged["cluster_y"]).all()  # source pool: its own k-means labels

    rep = res["pools"]["src"]
    assert rep["n_scored"] == 192 and rep["budget"] == math.ceil(0.15 * 192) == rep["n_selected"]
    assert rep["n_unscored_by_reason"] == {"no_image": 8}
    assert sum(c["taken"] for c in rep["clusters"]) == rep["n_selected"]
    assert all(c["taken"] == c["quota"] <= c["size"] for c in rep["clusters"])
    assert rep["conf"]["selected"]["mean"] < rep["conf"]["pool"]["mean"]  # least confident are kept

    out = ofa.pool_dir(params, "src")
    ids = (out / "selected_ids.txt").read_text().split()
    assert rep["selected_ids_sha256"] == sha256_file(out / "selected_ids.txt")
    original = json.loads(Path(tmp_path / "data" / "src.json").read_text())
    want = [r for r in original if r["id"] in set(ids)]
    selected = json.loads((out / "selected.json").read_text())
    assert selected == want and [r["id"] for r in selected] == ids  # original records, original order
    assert list(selected[0].keys()) == list(want[0].keys())
    chosen = scores.set_index("sample_id").loc[ids]
    assert chosen["scored"].all()

    vf = res["pools"]["vf"]
    assert vf["transfer"] and vf["n_pool"] == 120 and vf["n_scored"] == 116
    assert vf["n_selected"] == math.ceil(0.15 * 116)

    mtime = (sel_dir / "selector.safetensors").stat().st_mtime_ns
    again = ofa.run_all(params)
    assert again["fit"]["skipped"] and (sel_dir / "selector.safetensors").stat().st_mtime_ns == mtime
    assert again["pools"]["src"]["selected_ids_sha256"] == rep["selected_ids_sha256"]

    # a new budget re-selects without refitting or rescoring
    p2 = make_params(tmp_path / "out", tmp_path, budget_ratio=0.3)
    score_mtime = (out / "scores.parquet").stat().st_mtime_ns
    rep2 = ofa.select_pool(p2, "src")
    assert rep2["n_selected"] == math.ceil(0.3 * 192)
    assert (sel_dir / "selector.safetensors").stat().st_mtime_ns == mtime
    assert (out / "scores.parquet").stat().st_mtime_ns == score_mtime


def test_same_seed_gives_byte_identical_selection_and_diversity_runs(tmp_path):
    a = make_params(tmp_path / "a", tmp_path, diversity=True, dpp_block=8)
    b = make_params(tmp_path / "b", tmp_path, diversity=True, dpp_block=8)
    ra, rb = ofa.select_pool(a, "vf"), ofa.select_pool(b, "vf")
    assert ra["diversity"] and ra["n_selected"] == ra["budget"]
    for f in ("selected_ids.txt", "selected.json", "scores.parquet"):
        assert (ofa.pool_dir(a, "vf") / f).read_bytes() == (ofa.pool_dir(b, "vf") / f).read_bytes(), f
    assert rb["selected_ids_sha256"] == ra["selected_ids_sha256"]
    assert (ofa.selector_dir(a) / "selector.safetensors").read_bytes() == \
           (ofa.selector_dir(b) / "selector.safetensors").read_bytes()


def test_transfer_pool_with_other_embedding_dimension_is_refused(tmp_path):
    params = make_params(tmp_path / "out", tmp_path, dims=(16, 24))
    ofa.fit(params)
    with pytest.raises(ofa.SelectorMismatchError, match=r"image embedding dimension: selector 16, vf 24"):
        ofa.score_pool(params, "vf")
    assert not (ofa.pool_dir(params, "vf") / "scores.parquet").exists()


def test_views_and_figures(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from gdo_utils.ofa import plots, views

    params = make_params(tmp_path / "out", tmp_path)
    res = ofa.run_all(params)
    meta, history = views.selector_summary(params)
    assert meta["chosen_epoch"] == res["fit"]["chosen_epoch"] and len(history) == 3
    least = views.examples_by_confidence(params, "src", n=3)
    most = views.examples_by_confidence(params, "src", n=3, least=False)
    assert least["conf"].is_monotonic_increasing and most["conf"].is_monotonic_decreasing
    assert least["conf"].max() <= most["conf"].min() and least["question"].notna().all()
    ids = views.selected_ids(params, "vf")
    assert len(ids) == res["pools"]["vf"]["n_selected"]
    table = views.selection_table(res["pools"])
    assert list(table.index) == ["src", "vf"] and (table["conf_median_selected"] <= table["conf_median_pool"]).all()
    figs = [plots.plot_training_curves(history, meta["chosen_epoch"], 4, 0.6),
            plots.plot_confidence(views.load_scores(params, "vf"), ids, "vf"),
            plots.plot_quotas(views.load_report(params, "vf"))]
    paths = save_figure(figs[0], params.stage_dir("figures", "ofa_training"))
    assert all(p.is_file() and p.stat().st_size > 0 for p in paths)
    assert all(len(f.axes) >= 1 for f in figs)


def test_training_sets_selection_random_and_full_follow_the_contract(tmp_path):
    from gdo_utils.ofa.training import write_all_training_sets
    from gdo_utils.trainfile import read_rows

    params = make_params(tmp_path / "out", tmp_path)
    ofa.run_all(params)
    reps = write_all_training_sets(params)
    for pool, n_pool, n_scored in (("src", 200, 192), ("vf", 120, 116)):
        selected = (ofa.pool_dir(params, pool) / "selected_ids.txt").read_text().split()
        d = {k: params.stage_dir("subsets", f"{k}_{pool}") for k in ("ofa", "ofa_random", "ofa_full")}
        rows = {k: list(read_rows(v / "train.jsonl")) for k, v in d.items()}  # every row passes the contract check
        assert [r["id"] for r in rows["ofa"]] == selected  # the selection, in pool order
        assert len(rows["ofa_random"]) == len(selected) == math.ceil(0.15 * n_scored)
        scores = pd.read_parquet(ofa.pool_dir(params, pool) / "scores.parquet").set_index("sample_id")
        assert scores.loc[[r["id"] for r in rows["ofa_random"]], "scored"].all()
        assert [r["id"] for r in rows["ofa_random"]] != selected
        assert len(rows["ofa_full"]) == n_pool and sum(r["media_kind"] == "text" for r in rows["ofa_full"]) == n_pool - n_scored
        first = rows["ofa_full"][1]  # record 1 has an image (every 25th / 30th record is text only)
        assert first["messages"] == [{"role": "user", "content": "<image>\nWhat is shown in picture 1?"},
                                     {"role": "assistant", "content": "Answer 1."}]
        assert first["images"] == [str(tmp_path / "data" / "img" / "1.jpg")]
        assert reps[pool]["ofa_random"]["overlap_with_ofa"] == len(set(selected) & {r["id"] for r in rows["ofa_random"]})
    mtime = (params.stage_dir("subsets", "ofa_src") / "train.jsonl").stat().st_mtime_ns
    write_all_training_sets(params)  # up to date: skipped
    assert (params.stage_dir("subsets", "ofa_src") / "train.jsonl").stat().st_mtime_ns == mtime
