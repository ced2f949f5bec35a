"""The evaluation cache key covers what changes replies: annotation content, the media listing and the runtime."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from gdo_utils.config import load_params, resolve_path
from gdo_utils.evaluate.contract import annotations_digest, inputs_key, media_digest, runtime_key
from gdo_utils.evaluate.stage import run_stage
from gdo_utils.io import read_json
from gdo_utils.models import ensure_models
from gdo_utils.toyworld import generate_toyworld

from .eval_helpers import make_c2_run

SMALL = ["toyworld.n_onevision=8", "toyworld.n_llava_video=4", "toyworld.n_llava665k=16", "toyworld.n_visionflan=8",
         "toyworld.image_bench_size=3", "toyworld.bench_questions_per_task=1", "evaluate.benchmarks=[mvbench]",
         "evaluate.image.benchmarks=[]"]


def test_annotation_content_and_media_listing_digests(tmp_path):
    ann = tmp_path / "json"
    ann.mkdir()
    (ann / "a.json").write_text('[{"answer": "x"}]')
    d0 = annotations_digest(ann)
    (ann / "a.json").write_text('[{"answer": "y"}]')
    assert annotations_digest(ann) != d0                         # one answer changed
    moved = tmp_path / "elsewhere" / "json"
    shutil.copytree(ann, moved)
    assert annotations_digest(moved) == annotations_digest(ann)  # content, not location
    media = tmp_path / "media"
    (media / "frames").mkdir(parents=True)
    (media / "v.mp4").write_bytes(b"0" * 10)
    (media / "frames" / "00001.jpg").write_bytes(b"1")
    m0 = media_digest([media / "v.mp4", media / "frames"], media)
    (media / "v.mp4").write_bytes(b"0" * 11)                     # a replaced video
    assert media_digest([media / "v.mp4", media / "frames"], media) != m0
    m1 = media_digest([media / "v.mp4", media / "frames"], media)
    (media / "frames" / "00002.jpg").write_bytes(b"2")           # a frame added to a frame folder
    assert media_digest([media / "v.mp4", media / "frames"], media) != m1
    assert inputs_key(ann, media, [media / "gone.mp4"])["media"] != inputs_key(ann, media, [])["media"]


def test_media_digest_is_content_not_time(tmp_path):
    """Same bytes at another time (a copy, a regenerated toy world) give the same key; other bytes of the same
    size and time stamp do not, at either end of a large video or anywhere in a small file."""
    media = tmp_path / "media"
    media.mkdir()
    big = bytes(range(256)) * 2048                                      # 512 KiB, larger than both samples
    (media / "v.mp4").write_bytes(big)
    (media / "f.jpg").write_bytes(b"jpeg" * 100)
    files = [media / "v.mp4", media / "f.jpg"]
    d0 = media_digest(files, media)
    copy = tmp_path / "copy"
    shutil.copytree(media, copy, copy_function=shutil.copyfile)        # new mtimes
    os.utime(copy / "v.mp4", ns=(1, 1))
    assert media_digest([copy / "v.mp4", copy / "f.jpg"], copy) == d0
    for name, data in [("v.mp4", b"X" + big[1:]), ("v.mp4", big[:-1] + b"X"), ("f.jpg", b"jpeg" * 50 + b"JPEG" * 50)]:
        f = media / name
        old, st = f.read_bytes(), f.stat()
        f.write_bytes(data)
        os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))                 # same size and time stamp
        assert media_digest(files, media) != d0, name
        f.write_bytes(old)
        assert media_digest(files, media) == d0


def test_runtime_key_names_dtype_attention_batching_and_versions():
    a = runtime_key("bfloat16", "flash_attention_2", 1)
    assert {"dtype", "attn_implementation", "batch_size", "padding_side", "transformers", "torch"} <= set(a)
    assert a != runtime_key("float32", "flash_attention_2", 1) != runtime_key("bfloat16", "sdpa", 1)
    assert a != runtime_key("bfloat16", "flash_attention_2", 4)


@pytest.mark.slow
def test_edited_gold_answer_makes_the_pair_stale(tmp_path):
    """Edit one MVBench answer: both checkpoints' MVBench pairs are regenerated; a rerun after that skips."""
    p0 = load_params("params/demo.yaml", [f"output_root={tmp_path / 'out'}", *SMALL])
    generate_toyworld(p0.toyworld, p0.toyworld_dir)
    src = resolve_path(p0, p0.evaluate.data["mvbench"].annotations, "mvbench")
    ann = tmp_path / "mvbench_json"
    shutil.copytree(src, ann)            # a copy outside the toy world, edited below
    p = load_params("params/demo.yaml", [f"output_root={tmp_path / 'out'}", *SMALL,
                                         f"evaluate.data.mvbench.annotations={ann}"])
    run = make_c2_run(Path(ensure_models(p)["vlm"]), p.run_dir, "minloss", samples=(8,))
    first = run_stage(p, [run], progress=False)
    assert {(r["checkpoint"], r["benchmark"]) for r in first["evaluated"]} == {("base", "mvbench"),
                                                                              ("checkpoint-8", "mvbench")}
    assert run_stage(p, [run], progress=False)["evaluated"] == []          # up to date
    f = sorted(ann.glob("*.json"))[0]
    rows = json.loads(f.read_text())
    rows[0]["answer"] = next(c for c in rows[0]["candidates"] if c != rows[0]["answer"])
    st = f.stat()
    f.write_text(json.dumps(rows))
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))                     # same mtime: content decides
    again = run_stage(p, [run], progress=False)
    assert {(r["checkpoint"], r["benchmark"]) for r in again["evaluated"]} == {("base", "mvbench"),
                                                                              ("checkpoint-8", "mvbench")}
    res = read_json(p.run_dir / "eval" / "minloss" / "checkpoint-8" / "mvbench.json")
    assert res["seconds"] > 0.0                                            # generated, not re-scored


def test_paper_params_evaluate_as_the_release():
    """lmms-eval --batch_size 1, bf16 weights, flash attention (scripts/eval_lmms.sh)."""
    p = load_params("params/paper.yaml")
    assert (p.evaluate.batch_size, p.models.vlm.dtype, p.evaluate.attn_implementation) == (
        1, "bfloat16", "flash_attention_2")
