"""lmms-eval engine: ingestion of written output folders (0.5.0 and 0.7.x layouts) and the launch command.

lmms-eval 0.7.x does not install beside the pinned set (it needs av<16, the kit pins av 18.1.0; README),
so these tests run on output folders written in its documented format (notes section 2.4)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from gdo_utils.config import load_params
from gdo_utils.evaluate.lmms.command import command_text, launch_command
from gdo_utils.evaluate.lmms.folder import read_output_folder
from gdo_utils.evaluate.lmms.ingest import ingest_folder
from gdo_utils.io import read_json, read_parquet

TS = "20260101_120000"


def _wrap(resp: str, layout: str):
    return [resp] if layout == "0.5" else resp


def _sample(doc_id: int, resp: str, layout: str, **metric) -> dict:
    rec = {"doc_id": doc_id, "target": "x", "filtered_resps": _wrap(resp, layout), "doc_hash": "h", "input": f"q{doc_id}"}
    if layout == "0.7":
        rec["token_counts"] = {"output_tokens": 1}
    rec.update(metric)
    return rec


def write_folder(root: Path, layout: str) -> Path:
    """An lmms-eval output folder as notes section 2.4 documents it (hand-made samples)."""
    d = root / "v0-20260101-000000__checkpoint-16"
    d.mkdir(parents=True)
    samples = {
        # MVBench: action_count 1/2 right + one empty reply (out of the denominator) -> 50; object_shuffle 2/2 -> 100
        "mvbench_action_count": [
            _sample(0, "A", layout, mvbench_accuracy={"pred_answer": "A", "gt_answer": "A", "score": 1}),
            _sample(1, "B", layout, mvbench_accuracy={"pred_answer": "B", "gt_answer": "C", "score": 0}),
            _sample(2, "", layout, mvbench_accuracy={"pred_answer": "", "gt_answer": "C", "score": 0})],
        "mvbench_object_shuffle": [
            _sample(1, "B", layout, mvbench_accuracy={"pred_answer": "B", "gt_answer": "B", "score": 1}),
            _sample(0, "A", layout, mvbench_accuracy={"pred_answer": "A", "gt_answer": "A", "score": 1})],
        # VideoMME: short 2/2, long 0/1 -> overall 2/3; task types
        "videomme": [
            _sample(i, p, layout, videomme_perception_score={
                "question_id": f"00{i}-1", "duration": dur, "category": "Knowledge", "sub_category": "x",
                "task_category": tt, "pred_answer": p, "answer": a})
            for i, (p, a, dur, tt) in enumerate([("A", "A", "short", "Temporal Perception"),
                                                 ("B", "B", "short", "Counting Problem"),
                                                 ("C", "D", "long", "Temporal Perception")])],
        # MLVU: order 1/1 = 100, count 1/3 -> mean of tasks (100 + 33.33) / 2 = 66.67, pooled would be 2/4 = 50
        "mlvu_test": [
            _sample(i, p, layout, mlvu_percetion_score={"question_id": f"q{i}", "task_type": t, "pred_answer": p,
                                                         "answer": a})
            for i, (p, a, t) in enumerate([("A", "A", "order"), ("A", "A", "count"), ("B", "A", "count"),
                                           ("C", "A", "count")])],
        "pope": [_sample(i, p, layout, pope_accuracy={"question_id": i, "score": float(p == g), "prediction": p,
                                                        "ground_truth": g})
                 for i, (p, g) in enumerate([("yes", "yes"), ("no", "yes"), ("yes", "no"), ("no", "no")])],
        # MMBench: question 3 right in its original and wrong in its circular copy -> circular 0, single pass 100
        "mmbench_en_dev": [
            _sample(0, "A", layout, gpt_eval_score={"index": 3, "answer": "A", "prediction": "A", "category": "c",
                                                    "A": "cat", "B": "dog", "C": "nan", "D": "nan"}),
            _sample(1, "A", layout, gpt_eval_score={"index": 1000003, "answer": "B", "prediction": "A",
                                                    "category": "c", "A": "dog", "B": "cat", "C": "nan", "D": "nan"})],
        "mme": [_sample(i, "Yes", layout, mme_perception_score={"question_id": "existence/1.jpg", "category": "existence",
                                                                 "score": s}) for i, s in enumerate([1.0, 1.0])],
        "vqav2_val": [_sample(0, "2", layout, exact_match=0.6), _sample(1, "red", layout, exact_match=1.0)],
        "mmvet": [_sample(0, "it is 3", layout, gpt_eval_score={"question_id": "v1_0", "score": 0.5})],
    }
    for task, rows in samples.items():
        (d / f"{TS}_samples_{task}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    results = {"results": {"mvbench": {" ": " ", "alias": "mvbench"},
                           "mvbench_action_count": {"alias": " - mvbench_action_count", "mvbench_accuracy,none": 50.0},
                           "videomme": {"alias": "videomme", "videomme_perception_score,none": 66.67},
                           "mmvet": {"alias": "mmvet", "gpt_eval_score,none": 50.0, "gpt_eval_score_stderr,none": "N/A"},
                           "mmbench_en_dev": {"alias": "mmbench_en_dev", "gpt_eval_score,none": 50.0}},
               "config": {"model": "qwen3_vl", "model_args": "pretrained=/x/checkpoint-16"},
               "model_name_sanitized": d.name, "git_hash": "abc"}
    (d / f"{TS}_results.json").write_text(json.dumps(results))
    return root


@pytest.mark.parametrize("layout", ["0.5", "0.7"])
def test_ingest_output_folder(tmp_path, layout):
    folder = write_folder(tmp_path / "lmms_out", layout)
    runs = read_output_folder(folder)
    assert len(runs) == 1 and runs[0].layout == layout
    assert [r["doc_id"] for r in runs[0].samples["mvbench_object_shuffle"]] == [0, 1]   # sorted by doc_id
    p = load_params("params/demo.yaml", [f"output_root={tmp_path / 'out'}"])
    rep = ingest_folder(p, folder, subset="ofa_full_llava665k", global_batch=8)
    res = {r["benchmark"]: r for r in rep["written"]}
    assert res["mvbench"]["checkpoint"] == "checkpoint-16"
    assert res["mvbench"]["samples_seen"] == 16 * 8                      # optimizer step x global batch
    assert res["mvbench"]["accuracy"] == pytest.approx(75.0)            # mean of 50 and 100 (empty reply not counted)
    assert res["videomme"]["accuracy"] == pytest.approx(200 / 3)
    assert res["mlvu"]["accuracy"] == pytest.approx((100 + 100 / 3) / 2)  # mean of tasks, not pooled 50
    assert res["mmbench_en"]["accuracy"] == 0.0 and res["pope"]["accuracy"] == pytest.approx(50.0)
    assert res["mme"]["accuracy"] == 200.0 and res["vqav2"]["accuracy"] == pytest.approx(80.0)
    assert res["mmvet"]["accuracy"] == 50.0
    eval_dir = tmp_path / "out" / "demo" / "eval"
    vm = read_json(eval_dir / "ofa_full_llava665k/checkpoint-16/videomme.json")
    levels = {(lv["level"], lv["subtask"]): lv["accuracy"] for lv in vm["levels"]}
    assert levels[("duration", "short")] == 100.0 and levels[("duration", "long")] == 0.0
    assert levels[("task_type", "Temporal Perception")] == 50.0
    assert vm["engine"] == "lmms-eval" and vm["lmms_eval_layout"] == layout
    mm = read_json(eval_dir / "ofa_full_llava665k/checkpoint-16/mmbench_en.json")
    assert {(lv["level"], lv["subtask"]): lv["accuracy"] for lv in mm["levels"]}[("metric", "single_pass")] == 100.0
    assert mm["lmms_eval_reported"] == {"gpt_eval_score": 50.0}
    log = read_parquet(eval_dir / "ofa_full_llava665k/checkpoint-16/mvbench.log.parquet")
    assert len(log) == 5 and set(log["subtask"]) == {"action_count", "object_shuffle"}
    traj = read_parquet(eval_dir / "trajectory.parquet")
    assert set(traj["engine"]) == {"lmms-eval"} and traj["samples_seen"].dtype == "int64"
    assert {"mvbench", "videomme", "mlvu", "pope", "mmbench_en", "mme", "vqav2", "mmvet"} <= set(traj["benchmark"])


def test_launch_command_matches_contract(tmp_path):
    p = load_params("params/demo.yaml", ["evaluate.lmms_eval.num_processes=2"])
    ck = tmp_path / "checkpoint-16"
    cmd = launch_command(p, ck, ["mvbench", "videomme"], tmp_path / "o")
    text = command_text(cmd)
    assert text.startswith("accelerate launch --num_processes 2 -m lmms_eval --model qwen3_vl --model_args ")
    assert f"pretrained={ck.resolve()},max_pixels=4096,min_pixels=4096,interleave_visuals=False,max_num_frames=32,fps=1" in text
    assert "--tasks mvbench,videomme --batch_size 1" in text and text.endswith("--log_samples")
    img = command_text(launch_command(p, ck, ["mmbench_en", "pope", "vqav2"], tmp_path / "o", image=True))
    assert "max_pixels=9216,min_pixels=9216" in img and "--tasks mmbench_en_dev,pope,vqav2_val" in img
    # a CPU run names the device (lmms-eval's qwen3_vl defaults to cuda); no system_prompt unless the kit sends one
    assert "device=cpu,device_map=cpu" in text and "system_prompt" not in text
    p2 = load_params("params/demo.yaml", ["evaluate.system_prompt=You are a helpful assistant.",
                                          "evaluate.lmms_eval.tasks={mvbench: kit_mvbench, pope: kit_pope}"])
    text2 = command_text(launch_command(p2, ck, ["mvbench"], tmp_path / "o"))
    assert "system_prompt=You are a helpful assistant.," in text2 and "--tasks kit_mvbench " in text2
    assert "--tasks kit_pope " in command_text(launch_command(p2, ck, ["pope"], tmp_path / "o", image=True))


def test_reply_is_the_raw_generation():
    """0.7.x logs the raw reply in `resps` and a whitespace-stripped one in `filtered_resps`; 0.5.0 only the latter."""
    from gdo_utils.evaluate.lmms.folder import reply_of

    assert reply_of({"resps": [" B. x"], "filtered_resps": "B. x"}) == " B. x"
    assert reply_of({"resps": [[" B"]], "filtered_resps": ["B"]}) == " B"
    assert reply_of({"filtered_resps": ["B"]}) == "B" and reply_of({"filtered_resps": "B"}) == "B"


def test_kit_exported_tasks_ingest_under_their_benchmark(tmp_path):
    """Tasks written by --write-lmms-tasks (kit_<task>) ingest as the benchmark they mirror, with the kit's qids."""
    d = tmp_path / "lmms_out" / "models__ck"
    d.mkdir(parents=True)
    rows = {"kit_mvbench_action_count": [_sample(i, p, "0.7", mvbench_accuracy={"pred_answer": p, "gt_answer": "A",
                                                                                  "score": int(p == "A")})
                                         for i, p in enumerate(["A", "B", "A", "C"])],
            "kit_pope": [_sample(i, p, "0.7", pope_accuracy={"question_id": f"random/{i}", "score": float(p == "yes"),
                                                               "prediction": p, "ground_truth": "yes"})
                         for i, p in enumerate(["yes", "no"])]}
    for task, recs in rows.items():
        (d / f"{TS}_samples_{task}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    (d / f"{TS}_results.json").write_text(json.dumps({"results": {}, "config": {}}))
    p = load_params("params/demo.yaml", [f"output_root={tmp_path / 'out'}"])
    res = {r["benchmark"]: r for r in ingest_folder(p, tmp_path / "lmms_out", subset="s")["written"]}
    assert res["mvbench"]["accuracy"] == pytest.approx(50.0) and res["pope"]["n"] == 2
    log = read_parquet(tmp_path / "out/demo/eval/s/base/mvbench.log.parquet")
    assert log["question_id"].tolist() == [f"action_count/{i:04d}" for i in range(4)]   # the kit's MVBench qids
    assert set(read_parquet(tmp_path / "out/demo/eval/s/base/pope.log.parquet")["question_id"]) == {"random/0", "random/1"}


def test_write_lmms_tasks_cli(tmp_path):
    """`gdo-repro evaluate --write-lmms-tasks` (no lmms-eval needed): YAMLs with the kit's settings, docs, utils.py."""
    import subprocess
    import sys

    import yaml

    from gdo_utils.toyworld import generate_toyworld

    small = ["toyworld.n_onevision=8", "toyworld.n_llava_video=4", "toyworld.n_llava665k=16",
             "toyworld.n_visionflan=8", "toyworld.image_bench_size=3", "toyworld.bench_questions_per_task=1"]
    p = load_params("params/demo.yaml", [f"output_root={tmp_path}", *small])
    generate_toyworld(p.toyworld, p.toyworld_dir)
    args = [sys.executable, "-m", "gdo_utils.cli", "evaluate", "--params", "params/demo.yaml",
            *[x for kv in [f"output_root={tmp_path}", *small] for x in ("--set", kv)],
            "--write-lmms-tasks", str(tmp_path / "tasks")]
    r = subprocess.run(args, capture_output=True, text=True, timeout=300, cwd=Path(__file__).resolve().parents[1])
    assert r.returncode == 0, r.stderr[-2000:]
    rep = json.loads(r.stdout)
    assert rep["groups"] == ["kit_mvbench"] and "kit_pope" in rep["tasks"]
    assert rep["skipped"]["mvbench"] == {}          # segments (the default input): every toy subtask exports
    assert {"videomme", "mlvu", "lvbench", "mmbench_en", "vqav2"} == set(rep["not_exported"])

    class Loader(yaml.SafeLoader):
        pass
    Loader.add_constructor("!function", lambda loader, node: f"fn:{loader.construct_scalar(node)}")
    pope = yaml.load((tmp_path / "tasks/kit_pope/kit_pope.yaml").read_text(), Loader=Loader)
    assert pope["generation_kwargs"] == {"max_new_tokens": 8, "temperature": 0, "top_p": 1.0, "num_beams": 1,
                                         "do_sample": False}                     # demo: evaluate.image.max_new_tokens 8
    assert pope["lmms_eval_specific_kwargs"]["default"]["post_prompt"] == "\nAnswer the question using a single word or phrase."
    assert pope["doc_to_text"] == "fn:utils.pope_doc_to_text" and pope["doc_to_visual"] == "fn:utils.kit_image"
    docs = [json.loads(x) for x in (tmp_path / "tasks/kit_pope/kit_pope.jsonl").read_text().splitlines()]
    assert len(docs) == 18 and {d["answer"] for d in docs} == {"yes", "no"} and all(Path(d["image"]).is_file() for d in docs)
    mv = yaml.load((tmp_path / "tasks/kit_mvbench/kit_mvbench_action_count.yaml").read_text(), Loader=Loader)
    assert mv["generation_kwargs"]["max_new_tokens"] == 16 and mv["lmms_eval_specific_kwargs"]["default"] == {
        "sub_task": "action_count", "post_prompt": "Only give the best option.\n"}
    doc = json.loads((tmp_path / "tasks/kit_mvbench/kit_mvbench_action_count.jsonl").read_text().splitlines()[0])
    assert doc["answer"] in doc["candidates"] and Path(doc["video"]).is_file() and doc["kit_qid"] == "action_count/0000"
    utils = (tmp_path / "tasks/kit_mvbench/utils.py").read_text()
    assert "from lmms_eval.tasks.mvbench.utils import" in utils and "gdo_utils" not in utils.split('"""')[2]


def _release_folder(root: Path, task_root: Path, run: str, step: int, pretrained: Path, acc: int) -> None:
    """scripts/eval_lmms.sh's layout: OUTPUT_ROOT/<task>/<run>__checkpoint-N/<model_name_sanitized>/..."""
    d = task_root / f"{run}__checkpoint-{step}" / f"v0-20260101-000000__checkpoint-{step}"
    d.mkdir(parents=True)
    rows = [_sample(i, "A", "0.5", mvbench_accuracy={"pred_answer": "A", "gt_answer": "A" if i < acc else "B",
                                                      "score": int(i < acc)}) for i in range(4)]
    (d / f"{TS}_samples_mvbench_action_count.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (d / f"{TS}_results.json").write_text(json.dumps({"results": {}, "config": {
        "model": "qwen3_vl", "model_args": f"pretrained={pretrained},max_pixels=602112,fps=1"}}))


def test_ingest_release_outputs_steps_to_samples_and_one_subset_per_run(tmp_path):
    """ms-swift checkpoint-N is a step: x the run's saved global batch; two runs at checkpoint-100 stay apart."""
    from gdo_utils.evaluate.lmms.ingest import IngestError

    ck_a = tmp_path / "train" / "minloss" / "v0-20260101-000000" / "checkpoint-100"
    ck_a.mkdir(parents=True)
    (ck_a.parent / "args.json").write_text(json.dumps({"per_device_train_batch_size": 1,
                                                       "gradient_accumulation_steps": 1, "global_world_size": 8}))
    ck_b = tmp_path / "train" / "temp_plus" / "v0-20260101-000000" / "checkpoint-100"   # no args.json
    out = tmp_path / "lmms" / "mvbench"
    _release_folder(tmp_path, out, "minloss", 100, ck_a, acc=1)
    _release_folder(tmp_path, out, "temp_plus", 100, ck_b, acc=3)
    p = load_params("params/demo.yaml", [f"output_root={tmp_path / 'out'}"])
    with pytest.raises(IngestError, match="optimizer step.*--global-batch"):
        ingest_folder(p, out)                        # temp_plus has no saved args and no --global-batch
    with pytest.raises(IngestError, match="two models"):
        ingest_folder(p, out, subset="merged", global_batch=8)   # both runs onto one subset/checkpoint-100
    with pytest.raises(IngestError, match="differs from the run's saved args"):
        ingest_folder(p, out, global_batch=32)       # minloss saved 8 x 1 x 1
    rep = ingest_folder(p, out, global_batch=8)
    got = {(r["subset"], r["checkpoint"], r["samples_seen"], r["accuracy"]) for r in rep["written"]}
    assert got == {("minloss", "checkpoint-100", 800, 25.0), ("temp_plus", "checkpoint-100", 800, 75.0)}
    ingest_folder(p, out, global_batch=8)            # the same folder again: same models, no conflict
    other = tmp_path / "lmms2" / "mvbench"
    _release_folder(tmp_path, other, "minloss", 100, tmp_path / "elsewhere" / "checkpoint-100", acc=2)
    with pytest.raises(IngestError, match="would overwrite"):
        ingest_folder(p, other, global_batch=8)      # another model onto minloss/checkpoint-100 on disk


def test_ingest_cli_needs_the_global_batch(tmp_path):
    import subprocess
    import sys

    out = tmp_path / "lmms" / "mvbench"
    _release_folder(tmp_path, out, "minloss", 100, tmp_path / "nowhere" / "checkpoint-100", acc=1)
    args = [sys.executable, "-m", "gdo_utils.cli", "evaluate", "--params", "params/demo.yaml", "--set",
            f"output_root={tmp_path / 'out'}", "--ingest", str(out)]
    r = subprocess.run(args, capture_output=True, text=True, timeout=300, cwd=Path(__file__).resolve().parents[1])
    assert r.returncode == 1 and "--global-batch" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run(args + ["--global-batch", "32"], capture_output=True, text=True, timeout=300,
                       cwd=Path(__file__).resolve().parents[1])
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads(r.stdout)["written"][0]["samples_seen"] == 3200
