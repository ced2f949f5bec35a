"""Read an lmms-eval `--output_path ... --log_samples` folder (0.5.0 and 0.7.x layouts, notes section 2.4).

`<model_name_sanitized>/<YYYYMMDD_HHMMSS>_results.json` + one `<ts>_samples_<task>.jsonl` per leaf
task. 0.5.0 logs `filtered_resps` as a one-element list, 0.7.x as a plain string (and adds
`token_counts`); samples gathered from several ranks are re-sorted by `doc_id`. Pure reading: no
scoring here.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RESULTS_RE = re.compile(r"^(?P<ts>.+)_results\.json$")


class LmmsFolderError(ValueError):
    """The folder does not hold an lmms-eval output in a known layout; names file, line and field."""


@dataclass
class LmmsRun:
    """One `*_results.json` with its per-task samples (sorted by doc_id)."""

    results_file: Path
    results: dict[str, Any]
    samples: dict[str, list[dict]] = field(default_factory=dict)
    layout: str = "0.5"

    @property
    def model_name(self) -> str:
        return str(self.results.get("model_name_sanitized") or self.results_file.parent.name)

    def task_result(self, task: str) -> dict:
        return dict(self.results.get("results", {}).get(task, {}))


def reply_of(rec: dict) -> str:
    """The model's raw reply: `resps` when logged, else `filtered_resps` (0.5.0: ["x"], 0.7.x: "x"; lists unwrapped).

    0.5.0 drops `resps` when it equals `filtered_resps`; 0.7.x logs both, and its `filtered_resps` is
    the reply after `--reasoning_tags` stripping, which also strips surrounding whitespace (what its
    extractors score), so the raw generation is `resps`.
    """
    x = rec["resps"] if "resps" in rec else rec.get("filtered_resps")
    while isinstance(x, list):
        x = x[0] if x else ""
    return "" if x is None else str(x)


def _read_samples(path: Path) -> list[dict]:
    rows = []
    for line, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not text.strip():
            continue
        try:
            rec = json.loads(text)
        except json.JSONDecodeError as exc:
            raise LmmsFolderError(f"{path}:{line}: not valid JSON: {exc.msg}") from None
        if "doc_id" not in rec:
            raise LmmsFolderError(f"{path}:{line}: field 'doc_id' missing")
        rows.append(rec)
    return sorted(rows, key=lambda r: int(r["doc_id"]))


def read_output_folder(path: str | Path) -> list[LmmsRun]:
    """Every results file under `path` (any depth) with its samples; layout detected from filtered_resps."""
    root = Path(path)
    files = sorted(p for p in root.rglob("*_results.json") if RESULTS_RE.match(p.name))
    if not files:
        raise LmmsFolderError(f"{root}: no <timestamp>_results.json found (run lmms-eval with --output_path and --log_samples)")
    runs = []
    for f in files:
        try:
            results = json.loads(f.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise LmmsFolderError(f"{f}:{exc.lineno}: not valid JSON: {exc.msg}") from None
        if "results" not in results:
            raise LmmsFolderError(f"{f}: field 'results' missing")
        ts = RESULTS_RE.match(f.name).group("ts")
        run = LmmsRun(f, results)
        for s in sorted(f.parent.glob(f"{ts}_samples_*.jsonl")):
            task = s.name[len(ts) + len("_samples_"):-len(".jsonl")]
            run.samples[task] = _read_samples(s)
        first = next((r for rows in run.samples.values() for r in rows), None)
        if first is not None:
            run.layout = "0.5" if isinstance(first.get("filtered_resps"), list) else "0.7"
        runs.append(run)
    return runs
