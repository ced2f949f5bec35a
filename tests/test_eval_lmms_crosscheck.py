"""Cross-check: lmms-eval and the kit's engine on the same toy questions give the same prompts, replies, accuracy.

lmms-eval 0.7.x cannot live in the kit's environment (it needs av<16, the kit pins av 18.1.0; README),
so it runs from its own interpreter, named by GDO_LMMS_PYTHON (skipped when unset or when that
interpreter cannot import lmms_eval, as in CI). Everything goes through the CLI users run:
`gdo-repro evaluate --write-lmms-tasks`, the kit engine, and `--engine lmms-eval` (launch + ingest).
lmms-eval 0.7.x's qwen3_vl always sends a system turn (no model option removes it), so both engines run
with `evaluate.system_prompt` = its default; the kit's release default (no system turn) is tested in
tests/test_eval_generation.py, and how many replies it changes is recorded in the README.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gdo_utils.config import load_params
from gdo_utils.evaluate.lmms.run import lmms_available
from gdo_utils.io import read_json, read_parquet
from gdo_utils.models import ensure_models
from gdo_utils.toyworld import generate_toyworld

from .eval_helpers import make_c2_run

LMMS_PY = os.environ.get("GDO_LMMS_PYTHON", "")
SYSTEM = "You are a helpful assistant."     # lmms-eval 0.7.x qwen3_vl's default system_prompt
SMALL = ["toyworld.n_onevision=8", "toyworld.n_llava_video=4", "toyworld.n_llava665k=16", "toyworld.n_visionflan=8",
         "toyworld.image_bench_size=3", "toyworld.bench_questions_per_task=1"]
COMMON = [*SMALL, "evaluate.benchmarks=[mvbench]", "evaluate.image.benchmarks=[pope]", "evaluate.base_model=false",
          "models.vlm.dtype=bfloat16",    # lmms-eval's qwen3_vl always loads bfloat16
          "evaluate.batch_size=1"]        # as the lmms-eval launch (--batch_size 1): no padding differences


def _lmms_python() -> str:
    if not LMMS_PY:
        pytest.skip("GDO_LMMS_PYTHON is not set: no interpreter with lmms-eval (it needs av<16, the kit pins av 18.1)")
    if not lmms_available(LMMS_PY):
        pytest.skip(f"GDO_LMMS_PYTHON={LMMS_PY} cannot import lmms_eval")
    return LMMS_PY


def _cli(root: Path, sets: list[str], *extra: str, env: dict | None = None) -> dict:
    args = [sys.executable, "-m", "gdo_utils.cli", "evaluate", "--params", "params/demo.yaml",
            *[x for kv in [f"output_root={root}", *sets] for x in ("--set", kv)], *extra]
    r = subprocess.run(args, capture_output=True, text=True, timeout=600, env=env,
                       cwd=Path(__file__).resolve().parents[1])
    assert r.returncode == 0, (r.stdout[-3000:], r.stderr[-5000:])
    return json.loads(r.stdout)


@pytest.fixture(scope="module")
def crosscheck(tmp_path_factory):
    py = _lmms_python()
    kit_root, lmms_root = tmp_path_factory.mktemp("kit"), tmp_path_factory.mktemp("lmms")
    p = load_params("params/demo.yaml", [f"output_root={kit_root}", *SMALL])
    generate_toyworld(p.toyworld, p.toyworld_dir)
    run = make_c2_run(ensure_models(p)["vlm"], p.run_dir, "ofa_llava665k", samples=(8,))
    sys_set = [f"evaluate.system_prompt={SYSTEM}"]
    tasks = _cli(kit_root, COMMON, "--write-lmms-tasks", str(kit_root / "lmms_tasks"))
    _cli(kit_root, COMMON + sys_set, "--run-dir", str(run))
    env = {**os.environ, "HF_HOME": str(lmms_root / "hf"), "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
    lm = _cli(lmms_root, COMMON + sys_set + [f"evaluate.lmms_eval.python={py}", "evaluate.lmms_eval.num_processes=1",
                                             f"evaluate.lmms_eval.include_path={kit_root / 'lmms_tasks'}",
                                             "evaluate.lmms_eval.tasks={mvbench: kit_mvbench, pope: kit_pope}"],
              "--engine", "lmms-eval", "--run-dir", str(run), env=env)
    assert lm["ran"] and len(lm["ingested"]) == 2
    ck = "ofa_llava665k/checkpoint-8"
    return {"tasks": tasks, "kit": kit_root / "demo/eval" / ck, "lmms": lmms_root / "demo/eval" / ck}


def _logs(c: dict, bench: str):
    kit, lm = read_parquet(c["kit"] / f"{bench}.log.parquet"), read_parquet(c["lmms"] / f"{bench}.log.parquet")
    kit = kit.set_index("question_id").loc[lm["question_id"]].reset_index()
    return kit, lm.reset_index(drop=True)


def test_written_tasks_cover_the_toy_questions(crosscheck):
    t = crosscheck["tasks"]
    assert "kit_pope" in t["tasks"] and t["groups"] == ["kit_mvbench"]
    # with the default segments input the bound subtasks are the pre-trimmed segment files lmms-eval reads too
    assert t["skipped"]["mvbench"] == {}
    assert {f"kit_mvbench_{s}" for s in ("action_count", "moving_count", "moving_direction", "object_existence",
                                         "state_change")} <= set(t["tasks"])


@pytest.mark.parametrize("bench", ["mvbench", "pope"])
def test_same_prompts_replies_and_scores_question_by_question(crosscheck, bench):
    kit, lm = _logs(crosscheck, bench)
    assert len(lm) == (5 if bench == "mvbench" else 18)
    assert kit["prompt"].tolist() == lm["prompt"].tolist()          # lmms-eval logs doc_to_text as `input`
    assert kit["reply"].tolist() == lm["reply"].tolist()
    if bench == "pope":   # yes / no / "" in both logs
        assert kit["parsed_release"].tolist() == lm["parsed_release"].tolist()
        assert kit["score_release"].tolist() == lm["score_release"].tolist()
    else:                 # lmms-eval logs the reply as pred_answer, not the letter: compare the verdicts
        assert kit["correct_release"].tolist() == lm["correct_release"].tolist()
        assert kit["counted_release"].tolist() == lm["counted_release"].tolist()


def test_same_accuracy(crosscheck):
    kit_m, lm_m = read_json(crosscheck["kit"] / "mvbench.json"), read_json(crosscheck["lmms"] / "mvbench.json")
    assert lm_m["engine"] == "lmms-eval" and kit_m["engine"] == "kit"
    kit_sub = {lv["subtask"]: lv["accuracy"] for lv in kit_m["levels"] if lv["level"] == "subtask"}
    for lv in lm_m["levels"]:
        if lv["level"] == "subtask":
            assert lv["accuracy"] == pytest.approx(kit_sub[lv["subtask"]])
            # and lmms-eval's own aggregate (mvbench_aggregate_results) agrees with both
            rep = lm_m["lmms_eval_reported"][f"kit_mvbench_{lv['subtask']}"]["mvbench_accuracy"]
            assert rep == pytest.approx(lv["accuracy"])
    kit_p, lm_p = read_json(crosscheck["kit"] / "pope.json"), read_json(crosscheck["lmms"] / "pope.json")
    assert lm_p["accuracy"] == pytest.approx(kit_p["accuracy"])     # F1 over all questions
    metric = {lv["subtask"]: lv["accuracy"] for lv in kit_p["levels"] if lv["level"] == "metric"}
    assert 100 * lm_p["lmms_eval_reported"]["pope_accuracy"] == pytest.approx(metric["accuracy"])
    assert 100 * lm_p["lmms_eval_reported"]["pope_f1_score"] == pytest.approx(metric["f1"])
