"""lmms-eval video samples -> the kit's per-question video log (gdo_utils.evaluate.engine LOG_COLUMNS).

What lmms-eval only logs is recomputed from these rows by the kit's metrics: MVBench's overall (mean
of the 20 `mvbench_<subtask>` accuracies, empty replies out of the denominator), VideoMME by duration
and task type (from `videomme_perception_score`), MLVU per task type (`mlvu_percetion_score`, sic).
LVBench logs only a boolean, so it has no question-type breakdown here. The robust parse needs the
options, which lmms-eval does not log: ingested logs are scored in `release` mode only.
"""
from __future__ import annotations

import hashlib

import pandas as pd

VIDEO_TASKS = ("mvbench", "videomme", "mlvu_test", "lvbench")
TASK_TO_BENCH = {"videomme": "videomme", "mlvu_test": "mlvu", "lvbench": "lvbench"}
KIT_PREFIX = "kit_"


def base_task(task: str) -> str:
    """The lmms-eval task a kit-exported task mirrors (`kit_mvbench_x` -> `mvbench_x`; gdo_utils.evaluate.lmms.tasks)."""
    return task[len(KIT_PREFIX):] if task.startswith(KIT_PREFIX) else task


def video_bench(task: str) -> str | None:
    """Kit benchmark name of an lmms-eval leaf task (mvbench_<subtask> -> mvbench), or None."""
    task = base_task(task)
    if task.startswith("mvbench_"):
        return "mvbench"
    return TASK_TO_BENCH.get(task)


def _row(bench: str, qid: str, rec: dict, reply: str, parsed: str, gold: str, correct: bool, counted: bool = True,
         **kw) -> dict:
    prompt = str(rec.get("input", ""))
    return {"question_id": qid, "benchmark": bench, "subtask": kw.get("subtask", ""),
            "duration": kw.get("duration", ""), "domain": kw.get("domain", ""), "task_type": kw.get("task_type", ""),
            "question_types": [], "prompt": prompt, "prompt_hash": hashlib.sha256(prompt.encode()).hexdigest()[:16],
            "reply": reply, "parsed_release": parsed, "parsed_robust": "", "gold": gold,
            "correct_release": bool(correct), "correct_robust": False, "counted_release": bool(counted),
            "media_error": None, "n_frames": 0}


def video_rows(task: str, samples: list[dict], reply_of) -> list[dict]:
    """Log rows of one lmms-eval video leaf task."""
    bench = video_bench(task)
    out = []
    for rec in samples:
        reply, doc = reply_of(rec), str(rec["doc_id"])
        if bench == "mvbench":
            sub = base_task(task)[len("mvbench_"):]
            m = rec["mvbench_accuracy"]
            pred = str(m.get("pred_answer", reply))
            out.append(_row(bench, f"{sub}/{int(doc):04d}", rec, reply, pred, str(m["gt_answer"]), m["score"] == 1,
                            counted=pred != "", subtask=sub))
        elif bench == "videomme":
            m = rec["videomme_perception_score"]
            out.append(_row(bench, str(m.get("question_id", doc)), rec, reply, str(m["pred_answer"]), str(m["answer"]),
                            str(m["pred_answer"]) == str(m["answer"]), duration=str(m.get("duration", "")),
                            domain=str(m.get("category", "")), task_type=str(m.get("task_category", ""))))
        elif bench == "mlvu":
            m = rec["mlvu_percetion_score"]
            out.append(_row(bench, doc, rec, reply, str(m["pred_answer"]), str(m["answer"]),
                            str(m["pred_answer"]) == str(m["answer"]), task_type=str(m.get("task_type", ""))))
        elif bench == "lvbench":
            out.append(_row(bench, doc, rec, reply, "", str(rec.get("target", "")), bool(rec["lvbench_score"])))
    return out


def video_logs(samples_by_task: dict[str, list[dict]], reply_of) -> dict[str, pd.DataFrame]:
    """benchmark -> log (MVBench's 20 leaf tasks gathered into one log)."""
    rows: dict[str, list[dict]] = {}
    for task in sorted(samples_by_task):
        bench = video_bench(task)
        if bench is not None:
            rows.setdefault(bench, []).extend(video_rows(task, samples_by_task[task], reply_of))
    return {b: pd.DataFrame(r).sort_values("question_id", kind="mergesort").reset_index(drop=True)
            for b, r in rows.items()}
