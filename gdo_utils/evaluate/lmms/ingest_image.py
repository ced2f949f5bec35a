"""lmms-eval image-suite samples -> the kit's per-question image log (gdo_utils.evaluate.image.stage schema).

Per task, what its per-sample metric dict carries (lmms-eval 0.5.0 `process_results`) is turned into
log rows; the kit then aggregates them with the benchmark's own metric, so MMBench gets its
circular score (lmms-eval's `gpt_eval_score` is GPT matching, kept as `lmms_eval_reported`), POPE
its per-metric rows and MME its acc / acc+ per subtask. LLaVA-Wild and MM-Vet keep lmms-eval's
GPT-judged aggregate (the kit has no judge).
"""
from __future__ import annotations

import hashlib
from typing import Any

import pandas as pd

from ..image import mmbench
from ..image.base import ImageQuestion
from .ingest_video import base_task

TASK_TO_BENCH = {"mmbench_en_dev": "mmbench_en", "mmbench_cn_dev": "mmbench_cn", "scienceqa_img": "sqa_img",
                 "pope": "pope", "mme": "mme", "gqa": "gqa", "vqav2_val": "vqav2", "textvqa_val": "textvqa",
                 "llava_in_the_wild": "llava_wild", "mmvet": "mmvet"}
JUDGE_METRICS = {"llava_in_the_wild": ("gpt_eval_llava_all", ("gpt_eval_llava_conv", "gpt_eval_llava_detail",
                                                               "gpt_eval_llava_complex")),
                 "mmvet": ("gpt_eval_score", ())}


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _row(bench: str, qid: str, rec: dict, reply: str, gold: str, parsed: str, score: float, subtask: str = "",
         group: str | None = None) -> dict:
    prompt = str(rec.get("input", ""))
    return {"question_id": qid, "benchmark": bench, "subtask": subtask, "group": group or qid, "prompt": prompt,
            "prompt_hash": _hash(prompt), "reply": reply, "gold": gold, "parsed_release": parsed,
            "parsed_robust": parsed, "score_release": float(score), "score_robust": float(score), "media_error": None}


def _metric(rec: dict, key: str, task: str) -> Any:
    if key not in rec:
        raise ValueError(f"lmms-eval task {task}: sample doc_id {rec.get('doc_id')} has no {key!r} field")
    return rec[key]


def image_bench(task: str) -> str | None:
    """Kit benchmark name of an lmms-eval image task (a kit-exported `kit_<task>` too), or None."""
    return TASK_TO_BENCH.get(base_task(task))


def image_log(task: str, samples: list[dict], reply_of) -> pd.DataFrame:
    """Log rows for one lmms-eval image task (sorted by doc_id, as read)."""
    bench = image_bench(task)
    task = base_task(task)
    rows = []
    for rec in samples:
        reply = reply_of(rec)
        doc = str(rec["doc_id"])
        if task.startswith("mmbench"):
            m = _metric(rec, "gpt_eval_score", task)
            opts = {c: str(m[c]) for c in "ABCDE" if mmbench._present(m.get(c))}
            q = ImageQuestion(bench, str(int(m["index"])), "", str(m["answer"]), meta={"options": opts})
            parsed, score = mmbench.score_reply(q, str(m.get("prediction", reply)))
            rows.append(_row(bench, q.qid, rec, reply, q.gold, parsed, score, str(m.get("category", "")),
                             str(int(m["index"]) % mmbench.CIRCULAR_STRIDE)))
        elif task == "pope":
            m = _metric(rec, "pope_accuracy", task)
            pred = str(m["prediction"])
            qid = str(m["question_id"])   # kit-exported tasks: "<split>/<id>"; lmms-eval's own: no split logged
            rows.append(_row(bench, qid, rec, reply, str(m["ground_truth"]), pred if pred in ("yes", "no") else "",
                             float(m["score"]), qid.split("/")[0] if "/" in qid else ""))
        elif task == "mme":
            m = rec.get("mme_perception_score") or _metric(rec, "mme_cognition_score", task)
            rows.append(_row(bench, f"{m['question_id']}#{doc}", rec, reply, str(rec.get("target", "")), "",
                             float(m["score"]), str(m["category"]), str(m["question_id"])))
        elif task in JUDGE_METRICS:
            rows.append(_row(bench, doc, rec, reply, str(rec.get("target", "")), "", float("nan")))
        else:  # exact_match tasks: sqa, gqa, vqav2, textvqa
            rows.append(_row(bench, doc, rec, reply, str(rec.get("target", "")), "",
                             float(_metric(rec, "exact_match", task))))
    return pd.DataFrame(rows)


def judged_levels(task: str, task_result: dict) -> tuple[float | None, list[dict]]:
    """(overall score, extra level rows) of a GPT-judged task from the aggregated results."""
    main, parts = JUDGE_METRICS[task]
    val = task_result.get(f"{main},none")
    rows = [{"level": "subtask", "subtask": p.replace("gpt_eval_llava_", ""), "accuracy": float(task_result[f"{p},none"]),
             "n": 0} for p in parts if isinstance(task_result.get(f"{p},none"), (int, float))]
    return (float(val) if isinstance(val, (int, float)) else None), rows
