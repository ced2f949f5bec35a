"""`gdo-repro run` decides staleness from the keys the stages use: an in-place edit of a toy-world pool file
re-executes the pool notebook (and what follows), weights swapped at the backbone's path re-execute the
descriptor notebook, and with nothing changed nothing runs."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from gdo_utils.chain import manifest_digest, own_stale, run_chain
from tests.test_chain import _notebook

pytestmark = pytest.mark.slow

SMALL = ["toyworld.n_onevision=3", "toyworld.n_llava_video=2", "toyworld.n_llava665k=2", "toyworld.n_visionflan=2",
         "descriptors.batch_size=4", "descriptors.sc_samples=2", "descriptors.sc_max_new_tokens=4",
         "descriptors.tnc_mode=regex", "descriptors.coverage_features=standardized", "descriptors.coverage_k=2"]
POOL = ("from gdo_utils import nb\nfrom gdo_utils.toyworld import generate_toyworld\n"
        "from gdo_utils.models import ensure_models\nfrom gdo_utils.pool import run_pool_stage\n"
        "params = nb.start(params_file, overrides)\n"
        "generate_toyworld(params.toyworld, params.toyworld_dir, force=force)\n"
        "ensure_models(params)\nrun_pool_stage(params, force=force)\n")
DESC = ("from gdo_utils import nb\nfrom gdo_utils.descriptors.runner import run_stage\n"
        "params = nb.start(params_file, overrides)\nrun_stage(params, force=force, progress=False)\n")


def test_run_sees_toy_world_edits_and_swapped_weights_and_skips_when_nothing_changed(repo_root, tmp_path, caplog):
    d = tmp_path / "nbs"
    d.mkdir()
    _notebook(d / "00_pool.ipynb", POOL)
    _notebook(d / "01_descriptors.ipynb", DESC)
    out = tmp_path / "out"
    kw = dict(overrides=[f"output_root={out}", *SMALL], notebooks_dir=d, cwd=repo_root)
    ran = lambda: [not r["skipped"] for r in run_chain(repo_root / "params/demo.yaml", **kw)]  # noqa: E731
    assert ran() == [True, True]
    assert ran() == [False, False]          # nothing changed: nothing executes
    run = out / "demo"
    # a toy-world pool file edited in place: the pool stage would recompute, so `run` re-executes 00 (and 01)
    f = run / "toyworld" / "onevision.jsonl"
    rec = json.loads(f.read_text().splitlines()[0])
    turn = rec["messages"][-1]
    turn["value" if "value" in turn else "content"] = "an edited answer"
    f.write_text("\n".join([json.dumps(rec), *f.read_text().splitlines()[1:]]) + "\n")
    caplog.set_level("INFO")
    assert ran() == [True, True]
    assert f"00_pool: running again: pool: input file changed: {f}" in caplog.text
    assert ran() == [False, False]
    # the backbone's weights swapped at the same path: descriptors would recompute, so `run` re-executes 01
    w = run / "models" / "tiny-qwen3vl" / "model.safetensors"
    t = load_file(str(w))
    k = sorted(t)[0]
    t[k] = t[k] + 0.1
    save_file(t, str(w), metadata={"format": "pt"})
    assert ran() == [False, True]
    assert "01_descriptors: running again: descriptors: model files changed" in caplog.text
    assert ran() == [False, False]


def test_a_stage_rewriting_the_same_outputs_does_not_retrigger_later_notebooks(tmp_path):
    """The upstream digest holds what a manifest says was written, not when (a no-op rerun rewrites the time)."""
    from gdo_utils.io import write_manifest

    out = tmp_path / "s"
    out.mkdir()
    (out / "r.json").write_text("{}")
    a = manifest_digest(write_manifest(out, stage="s", params_hash="h", wall_time_s=1.0, outputs=[out / "r.json"]))
    b = manifest_digest(write_manifest(out, stage="s", params_hash="h", wall_time_s=2.0, outputs=[out / "r.json"]))
    assert a == b
    (out / "r.json").write_text('{"acc": 1}')
    assert manifest_digest(write_manifest(out, stage="s", params_hash="h", outputs=[out / "r.json"])) != a
    assert own_stale(tmp_path, ["s/manifest.json"]) is None
    assert own_stale(tmp_path, ["gone/manifest.json"]) == "a stage output is gone: gone/manifest.json"


def test_tiny_models_are_built_once_under_a_relative_output_root(repo_root, tmp_path, monkeypatch):
    """The demo's `output_root: outputs` is relative: the models' manifest check must still find the built files
    (it looked for outputs/demo/models/outputs/demo/models/..., so notebook 01 rebuilt what 00 built)."""
    from gdo_utils.config import load_params
    from gdo_utils.models import ensure_models

    monkeypatch.chdir(tmp_path)
    p = load_params(repo_root / "params/demo.yaml", ["output_root=outputs", "models.tiny_corpus=run:corpus.json"])
    p.run_dir.mkdir(parents=True)
    (p.run_dir / "corpus.json").write_text(json.dumps(["What colour is the square?", "The square is red."] * 20))
    ensure_models(p)
    mf = p.stage_dir("models") / "manifest.json"
    first, w = mf.read_bytes(), p.run_dir / "models" / "tiny-qwen3vl" / "model.safetensors"
    t = w.stat().st_mtime_ns
    ensure_models(p)
    assert mf.read_bytes() == first and w.stat().st_mtime_ns == t


def test_models_tiny_layers_and_hidden_set_the_built_language_model_and_its_key(repo_root, tmp_path, monkeypatch):
    """models.tiny_layers / tiny_hidden build that LLM depth and width, and changing either rebuilds the models
    (both are in their key)."""
    from gdo_utils.config import load_params
    from gdo_utils.models import ensure_models

    monkeypatch.chdir(tmp_path)
    (tmp_path / "corpus.json").write_text(json.dumps(["What colour is the square?", "The square is red."] * 20))
    built = {}
    for layers, hidden in ((4, 64), (2, 64), (2, 96)):
        p = load_params(repo_root / "params/demo.yaml", [f"output_root={tmp_path}", "models.tiny_corpus=corpus.json",
                                                          f"models.tiny_layers={layers}", f"models.tiny_hidden={hidden}"])
        ensure_models(p)
        cfg = json.loads((p.run_dir / "models" / "tiny-qwen3vl" / "config.json").read_text())
        weights = load_file(p.run_dir / "models" / "tiny-qwen3vl" / "model.safetensors")
        built[(layers, hidden)] = (cfg["text_config"]["num_hidden_layers"], cfg["text_config"]["hidden_size"],
                                   len({k.split(".layers.")[1].split(".")[0] for k in weights
                                        if "language_model.layers." in k}),
                                   weights["model.language_model.embed_tokens.weight"].shape[1])
    assert built == {(4, 64): (4, 64, 4, 64), (2, 64): (2, 64, 2, 64), (2, 96): (2, 96, 2, 96)}
