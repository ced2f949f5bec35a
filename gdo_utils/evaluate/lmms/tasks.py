"""The kit's benchmark questions as lmms-eval task folders (YAML + utils.py + docs), for `--include_path`.

For a cross-check of the two engines on the same questions: every exported question is one doc
(JSON Lines, media by absolute path) of a task named `kit_<lmms task>`; the YAML uses lmms-eval's
own prompt, process_results and aggregation functions for that benchmark (utils.py imports them),
and the kit's generation settings for these params (max_new_tokens, greedy). Exported:

- `mvbench`: one task `kit_mvbench_<subtask>` per subtask + group `kit_mvbench`. A subtask with a
  `bound` segment or a frame folder is not exported (lmms-eval reads those from its pre-trimmed
  `video` revision, which the kit's files are not); skipped subtasks are listed with the reason.
- `pope`: one task `kit_pope` over all splits (question_id = the kit's `<split>/<id>`).

Doc order is the kit's question order, so doc_id = the row index (MVBench qids `<subtask>/<doc:04d>`).
"""
from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from ...config import Params, params_hash
from ...io import write_manifest, write_text
from ..image.pope import POST_PROMPT as POPE_POST_PROMPT
from ..mvbench import POST_PROMPT as MVBENCH_POST_PROMPT

PREFIX = "kit_"
EXPORTABLE = ("mvbench", "pope")
UTILS_TEMPLATE = Path(__file__).with_name("task_utils.py.txt")
GREEDY = {"temperature": 0, "top_p": 1.0, "num_beams": 1, "do_sample": False}


def _q(x: Any) -> str:
    """A YAML scalar (JSON is valid YAML flow syntax: strings double-quoted with escapes)."""
    return json.dumps(x, ensure_ascii=False)


def task_yaml(task: str, docs_file: Path, visual: str, text: str, results: str, metrics: list[tuple[str, str]],
              max_new_tokens: int, specific: dict[str, str]) -> str:
    """One lmms-eval task YAML over a local JSON Lines file (`dataset_path: json`)."""
    lines = [f"task: {task}", "dataset_path: json",
             f"dataset_kwargs: {{data_files: {{test: {_q(str(docs_file))}}}}}", "test_split: test",
             "output_type: generate_until", f"doc_to_visual: !function utils.{visual}",
             f"doc_to_text: !function utils.{text}", "doc_to_target: answer",
             "generation_kwargs: " + _q({"max_new_tokens": max_new_tokens, **GREEDY}),
             f"process_results: !function utils.{results}", "metric_list:"]
    for metric, agg in metrics:
        lines += [f"  - metric: {metric}", f"    aggregation: !function utils.{agg}", "    higher_is_better: true"]
    lines += ["lmms_eval_specific_kwargs:", "  default:"] + [f"    {k}: {_q(v)}" for k, v in specific.items()]
    lines += ["metadata:", "  - version: 0.0"]
    return "\n".join(lines) + "\n"


def _jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def mvbench_docs(questions: list) -> tuple[dict[str, list[dict]], dict[str, str]]:
    """subtask -> docs in lmms-eval's MVBench fields; and the skipped subtasks with the reason."""
    by_sub: dict[str, list] = defaultdict(list)
    for q in questions:
        by_sub[q.subtask].append(q)
    docs, skipped = {}, {}
    for sub, qs in sorted(by_sub.items()):
        if any(q.start is not None or q.end is not None for q in qs):
            skipped[sub] = "bound segment (lmms-eval reads the pre-trimmed `video` revision)"
        elif any(q.frame_fps is not None or Path(q.media).is_dir() for q in qs):
            skipped[sub] = "frame folder (lmms-eval reads a pre-made segment mp4)"
        elif any(not Path(q.media).is_file() for q in qs):
            skipped[sub] = "a video is missing (lmms-eval would stop)"
        else:
            docs[sub] = [{"kit_qid": q.qid, "video": q.media, "question": q.question, "candidates": list(q.options),
                          "answer": q.options["ABCDEFGHIJ".index(q.gold)]} for q in qs]
    return docs, skipped


def pope_docs(questions: list) -> list[dict]:
    """Docs in lmms-eval's POPE fields (question without the post-prompt, answer yes/no, image path)."""
    out = []
    for q in questions:
        if not q.prompt.endswith(POPE_POST_PROMPT):
            raise ValueError(f"pope question {q.qid}: prompt does not end with the post-prompt")
        out.append({"question_id": q.qid, "question": q.prompt[: -len(POPE_POST_PROMPT)], "answer": q.gold,
                    "image": q.image_path, "category": q.subtask})
    return out


def write_lmms_tasks(params: Params, out_dir: str | Path, benchmarks: list[str] | None = None) -> dict:
    """Write the task folders of `benchmarks` (default: the exportable ones the params evaluate) under out_dir."""
    from ..image.stage import load_image_questions, max_new_tokens
    from ..image import IMAGE_BENCHMARKS
    from ..stage import load_questions

    e = params.evaluate
    configured = list(e.benchmarks) + list(e.image.benchmarks)
    names = benchmarks if benchmarks is not None else [b for b in configured if b in EXPORTABLE]
    bad = [b for b in names if b not in EXPORTABLE]
    if bad:
        raise ValueError(f"no lmms-eval task export for {bad}; exportable: {list(EXPORTABLE)}")
    out = Path(out_dir).resolve()
    utils = UTILS_TEMPLATE.read_text(encoding="utf-8")
    report: dict = {"folder": str(out), "tasks": [], "groups": [], "skipped": {},
                    "not_exported": sorted(set(configured) - set(EXPORTABLE))}
    written: list[Path] = []

    def put(path: Path, text: str) -> None:
        write_text(path, text)
        written.append(path)

    if "mvbench" in names:
        d = out / "kit_mvbench"
        docs, skipped = mvbench_docs(load_questions(params, "mvbench"))
        report["skipped"]["mvbench"] = skipped
        put(d / "utils.py", utils)
        tasks = []
        for sub, rows in docs.items():
            task = f"{PREFIX}mvbench_{sub}"
            put(d / f"{task}.jsonl", _jsonl(rows))
            put(d / f"{task}.yaml", task_yaml(task, d / f"{task}.jsonl", "kit_video", "mvbench_doc_to_text",
                                             "mvbench_process_results",
                                             [("mvbench_accuracy", "mvbench_aggregate_results")], e.max_new_tokens,
                                             {"sub_task": sub, "post_prompt": MVBENCH_POST_PROMPT}))
            tasks.append(task)
        put(d / f"{PREFIX}mvbench.yaml", f"group: {PREFIX}mvbench\ntask:\n" + "".join(f"  - {t}\n" for t in tasks))
        report["tasks"] += tasks
        report["groups"].append(f"{PREFIX}mvbench")
    if "pope" in names:
        d = out / "kit_pope"
        task = f"{PREFIX}pope"
        put(d / "utils.py", utils)
        put(d / f"{task}.jsonl", _jsonl(pope_docs(load_image_questions(params, "pope"))))
        metrics = [(f"pope_{m}", f"pope_aggregate_{m}") for m in ("accuracy", "precision", "recall", "f1_score",
                                                                  "yes_ratio")]
        put(d / f"{task}.yaml", task_yaml(task, d / f"{task}.jsonl", "kit_image", "pope_doc_to_text",
                                         "pope_process_results", metrics,
                                         max_new_tokens(params, IMAGE_BENCHMARKS["pope"]),
                                         {"pre_prompt": "", "post_prompt": POPE_POST_PROMPT}))
        report["tasks"].append(task)
    write_manifest(out, stage="lmms_tasks", params_hash=params_hash(params, ["evaluate"]), params_file=params.source_file, outputs=written,
                   extra={"tasks": report["tasks"], "skipped": report["skipped"]})
    return report
