"""Image-suite metrics as the papers publish them: POPE mean of per-split F1; VQAv2 test-dev as an EvalAI submission."""
from __future__ import annotations

import json

import pandas as pd
import pytest
from PIL import Image

from gdo_utils.evaluate.image import IMAGE_BENCHMARKS, pope, vqav2


def test_pope_overall_is_the_mean_of_split_f1_pooled_is_extra():
    # adversarial: 4 questions, F1 = 1; random: 4 questions, every reply "yes" -> P = 1/2, R = 1, F1 = 2/3
    rows = [("adversarial", g, g) for g in ("yes", "yes", "no", "no")]
    rows += [("random", g, "yes") for g in ("yes", "yes", "no", "no")]
    log = pd.DataFrame([{"subtask": s, "gold": g, "parsed": p} for s, g, p in rows])
    out = {(r.level, r.subtask): r.accuracy for r in pope.aggregate(log)}
    assert out[("split", "adversarial")] == pytest.approx(100.0)
    assert out[("split", "random")] == pytest.approx(200 / 3)
    assert out[("overall", "")] == pytest.approx((100 + 200 / 3) / 2)          # what the LLaVA-1.5 tables print
    assert out[("metric", "pooled_f1")] == pytest.approx(100 * 2 * (4 / 6) * 1 / (4 / 6 + 1))   # P 4/6, R 1
    assert out[("metric", "pooled_f1")] != pytest.approx(out[("overall", "")])
    nosplit = log.assign(subtask="")                                          # an lmms-eval log names no split
    assert {(r.level, r.subtask): r.accuracy for r in pope.aggregate(nosplit)}[("overall", "")] == pytest.approx(
        out[("metric", "pooled_f1")])


def test_vqav2_test_dev_questions_give_a_submission_file_and_no_local_accuracy(tmp_path):
    qs = [{"image_id": 7, "question": "What is it?", "question_id": 70001},
          {"image_id": 8, "question": "How many?", "question_id": 80002}]
    (tmp_path / "v2_OpenEnded_mscoco_test-dev2015_questions.json").write_text(json.dumps({"questions": qs}))
    imgs = tmp_path / "test2015"
    imgs.mkdir()
    for i in (7, 8):
        Image.new("RGB", (8, 8)).save(imgs / f"COCO_test2015_{i:012d}.jpg")
    bench = IMAGE_BENCHMARKS["vqav2"]
    loaded = bench.load(tmp_path, imgs)
    assert [(q.qid, q.gold, q.subtask) for q in loaded] == [("70001", (), "test-dev"), ("80002", (), "test-dev")]
    replies = ["A dog.", "2"]
    log = pd.DataFrame([{"question_id": q.qid, "subtask": q.subtask, "reply": r, "score": bench.score(q, r)[1]}
                        for q, r in zip(loaded, replies)])
    assert bench.submission(log) == [{"question_id": 70001, "answer": "A dog."}, {"question_id": 80002, "answer": "2"}]
    assert bench.aggregate(log) == []                                         # the server scores test-dev
    assert "val" in bench.headline and "test-dev" in bench.headline


def test_vqav2_val_scores_locally_and_writes_no_submission():
    log = pd.DataFrame([{"question_id": "1", "subtask": "yes/no", "reply": "yes", "score": 1.0},
                        {"question_id": "2", "subtask": "number", "reply": "3", "score": 0.0}])
    assert vqav2.submission(log) is None
    assert {(r.level, r.subtask): r.accuracy for r in vqav2.aggregate(log)}[("overall", "")] == 50.0


@pytest.mark.slow
def test_image_suite_writes_the_vqav2_test_dev_submission(tmp_path):
    """The toy VQAv2 questions as a test-dev file (COCO_test2015 images, no annotations) through the image suite."""
    import shutil

    from gdo_utils.config import load_params, resolve_path
    from gdo_utils.evaluate.image.stage import run_image_suite
    from gdo_utils.io import read_json
    from gdo_utils.models import ensure_models
    from gdo_utils.toyworld import generate_toyworld

    from .eval_helpers import make_c2_run

    small = ["toyworld.n_onevision=8", "toyworld.n_llava_video=4", "toyworld.n_llava665k=16",
             "toyworld.n_visionflan=8", "toyworld.image_bench_size=3", "toyworld.bench_questions_per_task=1"]
    p0 = load_params("params/demo.yaml", [f"output_root={tmp_path / 'out'}", *small])
    generate_toyworld(p0.toyworld, p0.toyworld_dir)
    d = p0.evaluate.data["vqav2"]
    val_q = json.loads(resolve_path(p0, d.annotations, "a").read_text())["questions"]
    imgs = tmp_path / "test2015"
    imgs.mkdir()
    for q in val_q:
        shutil.copy(resolve_path(p0, d.media_root, "m") / f"COCO_val2014_{int(q['image_id']):012d}.jpg",
                    imgs / f"COCO_test2015_{int(q['image_id']):012d}.jpg")
    test_file = tmp_path / "v2_OpenEnded_mscoco_test-dev2015_questions.json"
    test_file.write_text(json.dumps({"questions": val_q}))
    p = load_params("params/demo.yaml", [f"output_root={tmp_path / 'out'}", *small, "evaluate.image.benchmarks=[vqav2]",
                                         f"evaluate.data.vqav2.annotations={test_file}",
                                         f"evaluate.data.vqav2.media_root={imgs}"])
    make_c2_run(ensure_models(p)["vlm"], p.run_dir, "ofa_llava665k", samples=(8,))
    run_image_suite(p, progress=False)
    ck = p.run_dir / "eval" / "ofa_llava665k" / "checkpoint-8"
    res, sub = read_json(ck / "vqav2.json"), json.loads((ck / "vqav2.submission.json").read_text())
    assert res["split"] == "test-dev" and res["accuracy"] is None and res["submission_file"].endswith(".json")
    assert sorted(x["question_id"] for x in sub) == sorted(int(q["question_id"]) for q in val_q)
    assert all(set(x) == {"question_id", "answer"} and isinstance(x["answer"], str) for x in sub)
