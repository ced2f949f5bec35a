"""Image suite: each loader on a hand-written official-layout file, scorers and metrics on hand-checked cases."""
from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from gdo_utils.evaluate.image import (
    IMAGE_BENCHMARKS,
    BenchmarkFormatError,
    gqa,
    judged,
    mmbench,
    mme,
    pope,
    sqa,
    textvqa,
    vqav2,
)
from gdo_utils.evaluate.image.base import ImageQuestion
from gdo_utils.evaluate.image.vqa_metric import normalize_answer, soft_accuracy


def _png(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), (200, 10, 10)).save(path)
    return path


def _b64() -> str:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (0, 0, 200)).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


# ----------------------------------------------------------------------------- loaders
def test_mmbench_tsv_prompt_and_circular_groups(tmp_path):
    cols = "index\tquestion\thint\tA\tB\tC\tD\tanswer\tcategory\timage\tl2-category\tsplit"
    rows = [f"7\tWhat is it?\tA hint.\tcat\tdog\tnan\tnan\tB\tanimal\t{_b64()}\tperception\tdev",
            f"1000007\tWhat is it?\tA hint.\tdog\tcat\tnan\tnan\tA\tanimal\t{_b64()}\tperception\tdev",
            f"8\tColour?\tnan\tred\tblue\tgreen\tpink\tC\tcolour\t{_b64()}\tperception\tdev"]
    f = tmp_path / "MMBench_DEV_EN.tsv"
    f.write_text("\n".join([cols, *rows]) + "\n", encoding="utf-8")
    qs = IMAGE_BENCHMARKS["mmbench_en"].load(f, tmp_path)
    assert [q.qid for q in qs] == ["7", "1000007", "8"]
    assert qs[0].prompt == ("A hint. What is it? There are several options:\nA. cat\nB. dog\n"
                            "Answer with the option's letter from the given choices directly.")
    assert qs[2].prompt.startswith("Colour? There are several options:\nA. red\nB. blue\nC. green\nD. pink\n")
    assert [q.meta["group"] for q in qs] == ["7", "7", "8"] and qs[1].gold == "A"
    assert qs[0].image().size == (8, 8)
    cn = mmbench.load(f, "mmbench_cn")
    assert cn[0].prompt.endswith("\n请直接使用所提供的选项字母作为答案回答。")


def test_mmbench_bad_answer_names_line(tmp_path):
    f = tmp_path / "x.tsv"
    f.write_text("index\tquestion\thint\tA\tB\tanswer\tcategory\timage\n1\tQ\tnan\ta\tb\tC\tc\txx\n", encoding="utf-8")
    with pytest.raises(BenchmarkFormatError, match=r"x.tsv:2: field 'answer'"):
        mmbench.load(f)


def test_sqa_problems_json(tmp_path):
    problems = {"5": {"question": "Which is a mammal?", "choices": ["frog", "whale"], "answer": 1,
                      "hint": "Look closely.", "image": "image.png", "subject": "natural science", "split": "test"},
                "6": {"question": "No image", "choices": ["a", "b"], "answer": 0, "hint": "", "image": None,
                      "split": "test"},
                "7": {"question": "Train one", "choices": ["a", "b"], "answer": 0, "hint": "", "image": "image.png",
                      "split": "train"}}
    (tmp_path / "problems.json").write_text(json.dumps(problems))
    _png(tmp_path / "images/test/5/image.png")
    qs = sqa.load(tmp_path / "problems.json")
    assert len(qs) == 1 and qs[0].gold == "B" and qs[0].subtask == "natural science"
    assert qs[0].prompt == ("Context: Look closely.\nWhich is a mammal?\nA. frog\nB. whale\n"
                            "Answer with the option's letter from the given choices directly.")
    assert [sqa.score_reply(qs[0], r)[1] for r in ("B", "b", "B. whale", "b. whale", "A", "The answer is B")] == \
        [1.0, 1.0, 1.0, 0.0, 0.0, 0.0]


def test_pope_files_and_split(tmp_path):
    _png(tmp_path / "val2014/COCO_val2014_000000000001.jpg")
    lines = [{"question_id": 1, "image": "COCO_val2014_000000000001.jpg", "text": "Is there a dog in the image?",
              "label": "yes"},
             {"question_id": 2, "image": "COCO_val2014_000000000001.jpg", "text": "Is there a cat in the image?",
              "label": "no"}]
    (tmp_path / "coco_pope_adversarial.json").write_text("".join(json.dumps(x) + "\n" for x in lines))
    qs = pope.load(tmp_path, tmp_path / "val2014")
    assert [(q.qid, q.subtask, q.gold) for q in qs] == [("adversarial/1", "adversarial", "yes"),
                                                         ("adversarial/2", "adversarial", "no")]
    assert qs[0].prompt == "Is there a dog in the image?\nAnswer the question using a single word or phrase."
    (tmp_path / "coco_pope_random.json").write_text(json.dumps({**lines[0], "label": "maybe"}) + "\n")
    with pytest.raises(BenchmarkFormatError, match=r"coco_pope_random.json:1: field 'label'"):
        pope.load(tmp_path / "coco_pope_random.json", tmp_path / "val2014")


def test_mme_release_folder(tmp_path):
    root = tmp_path / "MME_Benchmark_release_version"
    _png(root / "existence/000000006040.jpg")
    (root / "existence/000000006040.txt").write_text(
        "Is there a train in this image? Please answer yes or no.\tYes\n"
        "Is there a bed in this image? Please answer yes or no.\tNo\n")
    _png(root / "artwork/images/10002.jpg")
    (root / "artwork/questions_answers_YN").mkdir(parents=True)
    (root / "artwork/questions_answers_YN/10002.txt").write_text("Is this by Monet? Please answer yes or no.\tNo\n"
                                                                "Is this by Goya? Please answer yes or no.\tYes\n")
    qs = mme.load(root)
    assert [(q.subtask, q.gold) for q in qs] == [("existence", "yes"), ("existence", "no"), ("artwork", "no"),
                                                  ("artwork", "yes")]
    assert qs[0].prompt == "Is there a train in this image?\nAnswer the question using a single word or phrase."
    assert qs[0].meta["group"] == qs[1].meta["group"] == "existence/000000006040.jpg"


def test_gqa_textvqa_vqav2_judged_loaders(tmp_path):
    _png(tmp_path / "images/n1.jpg")
    (tmp_path / "testdev_balanced_questions.json").write_text(json.dumps(
        {"20968": {"imageId": "n1", "question": "Is the sky blue?", "answer": "yes", "types": {"structural": "verify"}}}))
    q = gqa.load(tmp_path / "testdev_balanced_questions.json")[0]
    assert (q.qid, q.gold, q.subtask) == ("20968", "yes", "verify")
    assert gqa.score_reply(q, "Yes.") == ("yes", 1.0) and gqa.score_reply(q, "yes, it is")[1] == 0.0

    _png(tmp_path / "train_images/abc.jpg")
    (tmp_path / "TextVQA_0.5.1_val.json").write_text(json.dumps(
        {"dataset_type": "val", "data": [{"question_id": 34602, "question": "what brand is this?", "image_id": "abc",
                                          "answers": ["nokia"] * 9 + ["NOKIA phone"]}]}))
    t = textvqa.load(tmp_path / "TextVQA_0.5.1_val.json")[0]
    assert t.prompt == "What brand is this?\nAnswer the question using a single word or phrase."
    assert textvqa.score_reply(t, "Nokia")[1] == pytest.approx(1.0)

    vq = tmp_path / "vqa"
    _png(vq / "val2014/COCO_val2014_000000000042.jpg")
    (vq / "v2_OpenEnded_mscoco_val2014_questions.json").write_text(json.dumps(
        {"questions": [{"image_id": 42, "question": "How many dogs?", "question_id": 420}]}))
    (vq / "v2_mscoco_val2014_annotations.json").write_text(json.dumps(
        {"annotations": [{"question_id": 420, "image_id": 42, "answer_type": "number",
                          "answers": [{"answer": a, "answer_id": i + 1} for i, a in enumerate(["2"] * 8 + ["3"] * 2)]}]}))
    v = IMAGE_BENCHMARKS["vqav2"].load(vq / "v2_OpenEnded_mscoco_val2014_questions.json", vq / "val2014")[0]
    assert (v.qid, v.subtask, len(v.gold)) == ("420", "number", 10)
    assert vqav2.score_reply(v, "two")[1] == pytest.approx(1.0)
    assert vqav2.score_reply(v, "3")[1] == pytest.approx(0.6)
    (vq / "v2_mscoco_val2014_annotations.json").write_text(json.dumps({"annotations": []}))
    with pytest.raises(BenchmarkFormatError, match="no annotation for question_id 420"):
        vqav2.load(vq, vq / "val2014")

    _png(tmp_path / "wild/images/001.jpg")
    (tmp_path / "wild/questions.jsonl").write_text(json.dumps(
        {"question_id": 0, "image": "001.jpg", "text": "Describe this.", "category": "detail"}) + "\n")
    w = judged.load_llava_wild(tmp_path / "wild/questions.jsonl")[0]
    assert (w.prompt, w.subtask) == ("Describe this.", "detail")
    _png(tmp_path / "mmvet/images/v1_0.png")
    (tmp_path / "mmvet/mm-vet.json").write_text(json.dumps(
        {"v1_0": {"imagename": "v1_0.png", "question": "What is x?", "answer": "3", "capability": ["ocr", "math"]}}))
    m = judged.load_mmvet(tmp_path / "mmvet/mm-vet.json")[0]
    assert m.prompt.endswith("following question: \n\nWhat is x?") and m.subtask == "ocr,math"
    assert IMAGE_BENCHMARKS["mmvet"].needs_judge and judged.aggregate(pd.DataFrame()) == []


def test_missing_image_names_field(tmp_path):
    (tmp_path / "q.json").write_text(json.dumps({"1": {"imageId": "nope", "question": "Q", "answer": "a"}}))
    with pytest.raises(BenchmarkFormatError, match=r"field '1.imageId': image not found"):
        gqa.load(tmp_path / "q.json")


# ----------------------------------------------------------------------------- VQA soft accuracy
TEN = 10
VQA_CASES = [  # reply, human answers, expected (worked out by hand: k of 10 humans match -> (k*min(1,(k-1)/3) + (10-k)*min(1,k/3))/10)
    ("2", ["2"] * TEN, 1.0),
    ("two", ["2"] * TEN, 1.0),                               # number word -> digit
    ("Two.", ["2"] * TEN, 1.0),                              # trailing period stripped, lower case
    ("a dog", ["dog"] * 3 + ["cat"] * 7, 0.9),                # article dropped; k = 3
    ("dont", ["don't"] + ["no"] * 9, 0.3),                   # contraction restored; k = 1
    ("red", ["red"] * 2 + ["blue"] * 8, 0.6),                # k = 2
    ("yes", ["yes"] * 4 + ["no"] * 6, 1.0),                  # k = 4 -> every subset has >= 3
    ("left-side", ["left side"] * TEN, 1.0),                 # '-' without spaces becomes a space
    ("3.5", ["3.5"] * TEN, 1.0),                             # a period before a digit is kept
    ("1,000", ["1000"] * TEN, 1.0),                          # comma inside a number: punctuation removed
    ("the cat", ["cat"] + ["dog"] * 9, 0.3),
    ("Cat", ["cats"] * TEN, 0.0),
    ("", ["b"] * TEN, 0.0),
    ("the", ["a"] * TEN, 1.0),                               # articles vanish: both sides normalise to ""
]


@pytest.mark.parametrize("reply,answers,expected", VQA_CASES)
def test_vqa_soft_accuracy_cases(reply, answers, expected):
    assert soft_accuracy(reply, answers) == pytest.approx(expected)


def test_vqa_normalisation_cases():
    assert normalize_answer("Two dogs!") == "2 dogs"
    assert normalize_answer("hello , world") == "hello world"   # punctuation next to a space is dropped
    assert normalize_answer("an apple") == "apple"
    assert normalize_answer("isnt") == "isn't"
    assert normalize_answer("it's", "textvqa") == normalize_answer("its", "textvqa").replace("its", "it 's") == "it 's"
    assert soft_accuracy("STOP", ["stop"] * TEN, "textvqa") == 1.0


# ----------------------------------------------------------------------------- metrics on hand-made logs
def _log(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows)


def test_mmbench_circular_differs_from_single_pass():
    # group 7: original right, its circular copy wrong -> circular miss; group 8: both right.
    log = _log([{"question_id": "7", "subtask": "animal", "score": 1.0},
                {"question_id": "1000007", "subtask": "animal", "score": 0.0},
                {"question_id": "8", "subtask": "colour", "score": 1.0},
                {"question_id": "1000008", "subtask": "colour", "score": 1.0}])
    rows = {(r.level, r.subtask): r for r in mmbench.aggregate(log)}
    assert rows[("overall", "")].accuracy == 50.0 and rows[("overall", "")].n == 2
    assert rows[("metric", "single_pass")].accuracy == 100.0
    assert rows[("subtask", "animal")].accuracy == 0.0 and rows[("subtask", "colour")].accuracy == 100.0


def test_mmbench_matcher_cases():
    opts = {"A": "cat", "B": "dog", "C": "red fox"}
    assert [mmbench.match_letter(r, opts) for r in ("B", "(B)", "B.", "The answer is C.", "dog", "a cat and a dog",
                                                    "A red fox in the snow", "I am not sure")] == \
        ["B", "B", "B", "C", "B", None, "C", None]


def test_pope_metrics_hand_made():
    log = _log({"gold": g, "parsed": p, "subtask": "random"} for g, p in
               zip(["yes", "yes", "no", "no", "yes", "no"], ["yes", "no", "yes", "no", "yes", ""]))
    m = pope.binary_metrics(log["parsed"], log["gold"])
    assert m == pytest.approx({"accuracy": 0.5, "precision": 2 / 3, "recall": 2 / 3, "f1": 2 / 3, "yes_ratio": 0.5})
    rows = {(r.level, r.subtask): r.accuracy for r in pope.aggregate(log)}
    assert rows[("overall", "")] == pytest.approx(200 / 3) and rows[("metric", "random:yes_ratio")] == 50.0
    q = ImageQuestion("pope", "x", "p", "yes")
    assert pope.score_reply(q, "Yes.", "release") == ("", 0.0)
    assert pope.score_reply(q, "Yes.", "robust") == ("yes", 1.0)
    assert pope.parse_yes_no("There is not a dog.", "robust") == "no"


def test_mme_scores_hand_made():
    def r(sub, img, s):
        return {"subtask": sub, "group": f"{sub}/{img}", "score": s}
    log = _log([r("existence", 1, 1.0), r("existence", 1, 1.0), r("existence", 2, 1.0), r("existence", 2, 0.0),
                r("count", 3, 0.0), r("count", 3, 0.0),
                r("code_reasoning", 4, 1.0), r("code_reasoning", 4, 1.0)])
    rows = {(x.level, x.subtask): x.accuracy for x in mme.aggregate(log)}
    assert rows[("subtask", "existence")] == 125.0          # acc 75 + acc+ 50
    assert rows[("metric", "existence:acc")] == 75.0 and rows[("metric", "existence:acc_plus")] == 50.0
    assert rows[("subtask", "count")] == 0.0
    assert rows[("overall", "")] == 125.0                   # perception only
    assert rows[("metric", "cognition_score")] == 200.0
    assert [mme.parse_pred_ans(x) for x in ("Yes.", "no", "y", "Nope", "Yes, it is", "maybe")] == \
        ["yes", "no", "yes", "no", "yes", "other"]
