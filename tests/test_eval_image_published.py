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
