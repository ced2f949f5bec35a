"""Tiny offline models: build, save, reload; Qwen3-VL forward on a toy image and a toy video; CLIP."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from gdo_utils.config import ClipConfig, ToyWorldConfig
from gdo_utils.models import build_tiny_clip, build_tiny_vlm, load_clip, load_vlm
from gdo_utils.toyworld import render_image, render_video, text_corpus
from gdo_utils.toyworld.scenes import sample_image_scene, sample_video_scene
from gdo_utils.vlm_batch import VLMSample, answer_losses, encode_batch, generate, per_sample_loss, to_pil


@pytest.fixture(scope="module")
def tiny_vlm(tmp_path_factory):
    d = build_tiny_vlm(tmp_path_factory.mktemp("vlm") / "tiny", text_corpus(ToyWorldConfig(), n=40), seed=0)
    return load_vlm(d, dtype="float32", device="cpu")


def _image_sample():
    scene = sample_image_scene(np.random.default_rng(0), 96)
    return VLMSample("How many shapes are in the image?", str(len(scene.shapes)), to_pil([render_image(scene)]))


def _video_sample(n=8):
    scene = sample_video_scene(np.random.default_rng(1), 64, n, "move")
    return VLMSample(f"Which direction does the {scene.shapes[0].name} move?", scene.direction,
                     to_pil(render_video(scene)))


def test_forward_on_image_and_video(tiny_vlm):
    for s in (_image_sample(), _video_sample()):
        batch = encode_batch(tiny_vlm.processor, [s], with_visuals=True, with_answer=True)
        labels = batch.pop("labels")
        assert "pixel_values" in batch and "mm_token_type_ids" in batch
        n_img_tokens = int((batch["input_ids"] == tiny_vlm.model.config.image_token_id).sum())
        assert n_img_tokens > 0
        out = tiny_vlm.model(**batch, labels=labels)
        assert torch.isfinite(out.loss)
        # labels cover exactly the answer and the end-of-turn token
        n_ans = len(tiny_vlm.tokenizer(s.answer + tiny_vlm.tokenizer.eos_token, add_special_tokens=False)["input_ids"])
        assert int((labels != -100).sum()) == n_ans
        # the model's own mean loss equals our per-sample loss for a batch of one
        ours = per_sample_loss(out.logits, labels)
        assert torch.allclose(ours, out.loss.float().reshape(1), atol=1e-5)


def test_video_frames_count_as_an_image_sequence(tiny_vlm):
    short, long = _video_sample(4), _video_sample(8)
    n = [int((encode_batch(tiny_vlm.processor, [s], True, False)["input_ids"] == tiny_vlm.model.config.image_token_id).sum())
         for s in (short, long)]
    assert n[1] == 2 * n[0]


def test_batched_losses_equal_one_at_a_time(tiny_vlm):
    samples = [_image_sample(), _video_sample(), _video_sample(4), _image_sample()]
    samples[3].answer = "a much longer answer than the others here"
    for vis in (True, False):
        batched = answer_losses(tiny_vlm, samples, vis)
        single = np.array([answer_losses(tiny_vlm, [s], vis)[0] for s in samples])
        np.testing.assert_allclose(batched, single, rtol=1e-5, atol=1e-5)


def test_generate_and_reload(tiny_vlm, tmp_path):
    out = generate(tiny_vlm, [_image_sample()], True, max_new_tokens=3)
    assert len(out) == 1 and isinstance(out[0][0], str)
    tiny_vlm.model.save_pretrained(tmp_path)
    tiny_vlm.processor.save_pretrained(tmp_path)
    again = load_vlm(tmp_path, dtype="float32", device="cpu")
    s = [_image_sample()]
    np.testing.assert_allclose(answer_losses(again, s, True), answer_losses(tiny_vlm, s, True), rtol=1e-6)


def test_tiny_clip_local_dir_roundtrip(tmp_path):
    d = build_tiny_clip(tmp_path / "clip", seed=0)
    cfg = ClipConfig(arch="tiny-clip", checkpoint=str(d / "open_clip_model.safetensors"),
                     model_config_path=str(d / "open_clip_config.json"))
    a, b = load_clip(cfg), load_clip(cfg)
    img = to_pil([render_image(sample_image_scene(np.random.default_rng(0), 96))])[0]
    with torch.no_grad():
        ea = a.model.encode_image(a.preprocess(img)[None])
        eb = b.model.encode_image(b.preprocess(img)[None])
        t = a.model.encode_text(a.tokenizer(["a red circle", "a blue square"]))
    assert torch.equal(ea, eb) and ea.shape == (1, a.embed_dim) and t.shape == (2, a.embed_dim)


def test_missing_clip_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="models.clip"):
        load_clip(ClipConfig(arch="ViT-B-32", checkpoint=str(tmp_path / "nope.safetensors")))


def test_models_module_does_not_import_the_toy_world():
    """The toy world is a data source: the model loader reads its corpus file, never its code."""
    import ast
    import subprocess
    import sys
    from pathlib import Path

    import gdo_utils.models as m

    tree = ast.parse(Path(m.__file__).read_text())
    imported = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert not [x for x in imported if "toyworld" in x]
    code = ("import sys, gdo_utils.models; "
            "print(sorted(k for k in sys.modules if k.startswith('gdo_utils.toyworld')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_ensure_models_builds_from_the_corpus_file(tmp_path):
    import json

    from gdo_utils.config import params_from_dict
    from gdo_utils.models import ensure_models

    p = params_from_dict({"run_name": "m", "output_root": str(tmp_path), "toyworld": {"enabled": True},
                          "models": {"build_tiny": True, "vlm": {"path": "run:models/vlm", "dtype": "float32"},
                                     "clip": {"arch": "tiny-clip", "checkpoint": "run:models/clip/open_clip_model.safetensors"}}})
    with pytest.raises(FileNotFoundError, match="models.tiny_corpus"):
        ensure_models(p)
    corpus = p.toyworld_dir / "tokenizer_corpus.json"
    corpus.parent.mkdir(parents=True)
    corpus.write_text(json.dumps(text_corpus(ToyWorldConfig(), n=10)))
    info = ensure_models(p)
    assert info["built_tiny"] and (p.run_dir / "models" / "vlm" / "config.json").is_file()
