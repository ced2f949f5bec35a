"""Differential test: the kit's prompts, release extractors and aggregates against lmms-eval 0.5.0's own functions.

lmms-eval 0.5.0's task `utils.py` files are read from its PyPI wheel (tests/lmms_release.py: downloaded
once with pip into a cache, never skipped). Random documents are written in each benchmark's file
layout and read with the kit's loaders, so loader + prompt + extractor + aggregate are compared on
a few thousand documents and replies, question by question and in total.

What the PyPI wheel does not hold is not compared here: the VideoMME `qwen3_vl` prompt profile (the
release's vendored copy, also labelled 0.5.0, adds `videomme_doc_to_text_qwen3vl`; tests/test_eval_loaders.py
pins that text). The end-to-end engine comparison with an installed lmms-eval is
tests/test_eval_lmms_crosscheck.py.
"""
from __future__ import annotations

import json
import random
import string

import pandas as pd
import pytest

from gdo_utils.evaluate import registry
from gdo_utils.evaluate.engine import log_row
from gdo_utils.evaluate.metrics import aggregate
from gdo_utils.evaluate.mvbench import SUBTASKS

from . import lmms_release

SEED = 20260
WORDS = ["the", "a", "man", "ball", "red", "moves", "left", "right", "Because", "Based", "on", "video", "it", "is",
         "I", "think", "answer", "option", "best", "correct", "Dog", "cat", "3.5", "1,000", "none", "E", "F"]
TEMPLATES = ["", " ", "\n", "{L}", "{l}", "({L})", "{L}.", "{L}. {w}", "{l}. {w}", "{L}) {w}", "({l}) {w}", "{L}:{w}",
             "The best answer is {L}", "The best answer is {L}.", "The answer is ({L}).", "The best option is {L}",
             "Best answer: {L}", "Based on the video, {L}", "Answer: {L}", "answer: {l}", "<answer>{L}</answer>",
             "<answer> {w} </answer>", "\\boxed{{{L}}}", "I think it is {L}, not {M}", "{w}", "{w} {w} {w}",
             "{w} {w} {w} {w} {w} {w} {w} {w} {w} {w} {w} {w}", "{L}\n", "\t{L} ", "{L}{L}", "({L}", "{L})",
             ")", "(", "{w}) {L}", "{L} and {M}", "\"{L}\"", "'{l}'", "[{L}]", "{L}/{M}", "{w}, {L}!", "{L}-{w}",
             "1.5 or 2,000 {L}", "{L}.{w}", "{w} ({L}) {w}."]


def _reply(rng: random.Random) -> str:
    t = rng.choice(TEMPLATES)
    letters = "ABCDEFGH"
    return t.format(L=rng.choice(letters), l=rng.choice(letters).lower(), M=rng.choice(letters),
                    w=" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 3))))


def _text(rng: random.Random, n: int = 6) -> str:
    return " ".join(rng.choice(WORDS[:20]) for _ in range(rng.randint(1, n))) + rng.choice(["", "?", ".", " (x)"])


def _options(rng: random.Random, k: int) -> list[str]:
    out: list[str] = []
    while len(out) < k:
        o = _text(rng, 3) + f" {len(out)}{rng.choice(string.ascii_lowercase)}"
        if o not in out:
            out.append(o)
    return out


@pytest.fixture(scope="module")
def lm():
    return {t: lmms_release.task_utils(t) for t in lmms_release.TASKS} | {"reasoning": lmms_release.reasoning_utils()}


def _kit_rows(questions, replies, name):
    bench = registry.get(name)
    return bench, pd.DataFrame([log_row(q, bench, r, None, 0) for q, r in zip(questions, replies)])


# ----------------------------------------------------------------------------- MVBench
def test_mvbench_prompt_extractor_and_empty_reply_denominator(tmp_path, lm):
    rng = random.Random(SEED)
    U, parse_wrapper = lm["mvbench"], lm["reasoning"].parse_reasoning_model_answer
    (tmp_path / "json").mkdir()
    docs: dict[str, list[dict]] = {}
    for sub in sorted(SUBTASKS):
        rows = []
        for _ in range(60):
            cands = _options(rng, rng.randint(2, 5))
            row = {"video": f"v{rng.randint(0, 999)}.mp4", "question": _text(rng), "candidates": cands,
                   "answer": rng.choice(cands)}
            if SUBTASKS[sub][2]:
                row |= {"start": 1.0, "end": 5.0}
            rows.append(row)
        docs[sub] = rows
        (tmp_path / "json" / f"{sub}.json").write_text(json.dumps(rows), encoding="utf-8")
    qs = registry.get("mvbench").load(tmp_path, tmp_path / "media")
    assert len(qs) == 20 * 60
    replies = [_reply(rng) for _ in qs]
    bench, kit = _kit_rows(qs, replies, "mvbench")
    results: dict[str, list[dict]] = {}
    for q, reply, row in zip(qs, replies, kit.to_dict("records")):
        sub, i = q.subtask, int(q.qid.split("/")[1])
        doc = docs[sub][i]
        kw = lmms_release.task_yaml_kwargs("mvbench", f"mvbench_{sub}.yaml")
        assert bench.prompt(q) == U.mvbench_doc_to_text(doc, kw), q.qid
        m = U.mvbench_process_results(doc, [parse_wrapper(reply)])["mvbench_accuracy"]
        assert row["correct_release"] == (m["score"] == 1), (q.qid, reply)
        assert row["counted_release"] == (m["pred_answer"] != ""), (q.qid, reply)
        results.setdefault(sub, []).append(m)
    assert sum(r == "" for r in replies) > 20          # the denominator rule is exercised
    agg = aggregate(kit, bench, "release", "wrong")
    per_sub = {lv["subtask"]: lv["accuracy"] for lv in agg["levels"] if lv["level"] == "subtask"}
    for sub, ms in results.items():
        assert per_sub[sub] == pytest.approx(U.mvbench_aggregate_results(ms)), sub
    want = sum(U.mvbench_aggregate_results(ms) for ms in results.values()) / len(results)
    assert agg["overall"]["accuracy"] == pytest.approx(want)   # lmms-eval has no group score: mean of subtasks


def test_mvbench_extractor_on_many_replies(lm):
    """mcq_acc against the kit's release parse on 20k random replies and gold letters."""
    rng = random.Random(SEED + 1)
    bench = registry.get("mvbench")
    from gdo_utils.evaluate.types import Question

    for _ in range(20000):
        k = rng.randint(2, 5)
        gold = "ABCDE"[rng.randrange(k)]
        q = Question("mvbench", "x/0000", "q", tuple("o" * (i + 1) for i in range(k)), (), gold, "v.mp4")
        reply = _reply(rng)
        pred = lm["reasoning"].parse_reasoning_model_answer(reply)
        assert bench.release_parse(reply, q).correct == (lm["mvbench"].mcq_acc(gold, pred) == 1), (reply, gold)


# ----------------------------------------------------------------------------- VideoMME
def test_videomme_extractor_and_accuracy(tmp_path, lm):
    rng = random.Random(SEED + 2)
    U = lm["videomme"]
    rows = []
    for i in range(1500):
        opts = [f"{L}. {o}" for L, o in zip("ABCD", _options(rng, 4))]
        rows.append({"question_id": f"{i // 3:03d}-{i % 3 + 1}", "videoID": f"vid{i // 3}",
                     "duration": rng.choice(U.VIDEO_TYPE), "domain": rng.choice(U.CATEGORIES),
                     "sub_category": rng.choice(U.SUB_CATEGORIES), "task_type": rng.choice(U.TASK_CATEGORIES),
                     "question": _text(rng), "options": opts, "answer": rng.choice("ABCD")})
    (tmp_path / "videomme").mkdir()
    pd.DataFrame(rows).to_parquet(tmp_path / "videomme" / "test-00000-of-00001.parquet")
    qs = registry.get("videomme").load(tmp_path / "videomme", tmp_path / "media")
    replies = [_reply(rng) for _ in qs]
    bench, kit = _kit_rows(qs, replies, "videomme")
    ms = []
    for doc, reply, row in zip(rows, replies, kit.to_dict("records")):
        m = U.videomme_process_results(doc, [lm["reasoning"].parse_reasoning_model_answer(reply)])
        m = m["videomme_perception_score"]
        assert row["parsed_release"] == m["pred_answer"], reply
        assert row["correct_release"] == (m["pred_answer"] == m["answer"])
        assert (row["duration"], row["domain"], row["task_type"]) == (m["duration"], m["category"], m["task_category"])
        ms.append(m)
    assert aggregate(kit, bench, "release", "wrong")["overall"]["accuracy"] == pytest.approx(
        U.videomme_aggregate_results(ms))


# ----------------------------------------------------------------------------- MLVU test
def test_mlvu_prompt_extractor_and_mean_of_task_types(tmp_path, lm):
    rng = random.Random(SEED + 3)
    U = lm["mlvu"]
    types_ = ("anomaly_reco", "count", "ego", "needleQA", "order", "plotQA", "sportsQA", "topic_reasoning",
              "tutorialQA")
    rows = []
    for i in range(1500):
        k = rng.randint(2, 6)
        q = _text(rng) + "".join(f"\n({L}) {o}" for L, o in zip("ABCDEF", _options(rng, k)))
        rows.append({"video_name": f"v{i}.mp4", "question": q, "answer": "ABCDEF"[rng.randrange(k)],
                     "task_type": types_[i % len(types_)], "question_id": f"q{i}"})
    (tmp_path / "mlvu").mkdir()
    pd.DataFrame(rows).to_parquet(tmp_path / "mlvu" / "test-00000-of-00001.parquet")
    qs = registry.get("mlvu").load(tmp_path / "mlvu", tmp_path / "media")
    replies = [_reply(rng) for _ in qs]
    bench, kit = _kit_rows(qs, replies, "mlvu")
    kw = lmms_release.task_yaml_kwargs("mlvu", "mlvu_test.yaml")
    ms = []
    for doc, q, reply, row in zip(rows, qs, replies, kit.to_dict("records")):
        assert bench.prompt(q) == U.mlvu_doc_to_text(doc, kw)
        m = U.mlvu_process_results(doc, [lm["reasoning"].parse_reasoning_model_answer(reply)])["mlvu_percetion_score"]
        assert row["parsed_release"] == m["pred_answer"], reply
        assert row["correct_release"] == (m["pred_answer"] == m["answer"])
        ms.append(m)
    assert aggregate(kit, bench, "release", "wrong")["overall"]["accuracy"] == pytest.approx(
        U.mlvu_aggregate_results_test(ms))


# ----------------------------------------------------------------------------- LVBench
def test_lvbench_prompt_extractor_and_accuracy(tmp_path, lm):
    rng = random.Random(SEED + 4)
    U = lm["lvbench"]
    lines, docs = [], []
    for v in range(150):
        qa = []
        for j in range(10):
            q = _text(rng) + "".join(f"\n({L}) {o}" for L, o in zip("ABCD", _options(rng, 4)))
            a = rng.choice("ABCD")
            qa.append({"uid": f"{v}-{j}", "question": q, "answer": a, "question_type": ["reasoning"]})
            docs.append({"question": q, "answer": a})
        lines.append(json.dumps({"key": f"k{v}", "type": "x", "qa": qa}))
    (tmp_path / "video_info.meta.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    qs = registry.get("lvbench").load(tmp_path, tmp_path / "media")
    replies = [_reply(rng) for _ in qs]
    bench, kit = _kit_rows(qs, replies, "lvbench")
    kw = lmms_release.task_yaml_kwargs("lvbench", "lvbench.yaml")
    scores = []
    for doc, q, reply, row in zip(docs, qs, replies, kit.to_dict("records")):
        assert bench.prompt(q) == U.lvbench_doc_to_text(doc, dict(kw))
        s = U.lvbench_process_results(doc, [lm["reasoning"].parse_reasoning_model_answer(reply)])["lvbench_score"]
        assert row["correct_release"] == s, reply
        scores.append(s)
    assert aggregate(kit, bench, "release", "wrong")["overall"]["accuracy"] == pytest.approx(
        100 * sum(scores) / len(scores))
