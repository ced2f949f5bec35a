"""`gdo-repro evaluate --engine lmms-eval`: per checkpoint, write the launch commands, run them when
lmms-eval is installed (in `evaluate.lmms_eval.python`'s environment), then ingest the output folder."""
from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Sequence

from ...config import Params
from ...io import write_text
from ..stage import discover_runs, read_run, takes_video
from .command import command_text, launch_command
from .ingest import ingest_folder


def lmms_available(python: str) -> bool:
    """Whether `python` can import lmms_eval (checked in a subprocess: it may be another environment)."""
    try:
        return subprocess.run([python, "-c", "import lmms_eval"], capture_output=True, timeout=120).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _run_logged(cmd: list[str], log_file: Path) -> None:
    """Run lmms-eval with its output in `log_file` (the CLI's stdout stays the JSON report); fail with the tail."""
    with open(log_file, "w", encoding="utf-8") as fh:
        r = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT)
    if r.returncode != 0:
        tail = log_file.read_text(encoding="utf-8", errors="replace")[-3000:]
        raise RuntimeError(f"lmms-eval failed (exit {r.returncode}); log {log_file}:\n{tail}")


def run_lmms_engine(params: Params, run_dirs: Sequence[str | Path] | None = None, dry_run: bool = False) -> dict:
    """Commands for every checkpoint of the runs (video benchmarks, then the image suite) under eval/lmms/."""
    e = params.evaluate
    runs = [read_run(d, e.base_model) for d in run_dirs] if run_dirs else discover_runs(params)
    groups = [(list(e.benchmarks), False), (list(e.image.benchmarks), True)]
    available = not dry_run and lmms_available(e.lmms_eval.python)
    out: dict = {"commands": [], "ran": available, "ingested": []}
    for run in runs:
        for ck in run.checkpoints:
            for names, image in groups:
                if not names or (not image and not takes_video(run.family)):   # LLaVA-1.5: image suite only
                    continue
                kind = "image" if image else "video"
                dest = params.stage_dir("eval", "lmms", run.subset, ck.name, kind)
                cmd = launch_command(params, ck.path, names, dest, image=image)
                write_text(dest / "command.sh", "#!/bin/sh\n" + command_text(cmd) + "\n")
                out["commands"].append(command_text(cmd))
                if available:
                    _run_logged(cmd, dest / "lmms_eval.log")
                    out["ingested"].append(ingest_folder(params, dest, run.subset, ck.name, ck.samples_seen))
    if not available and not dry_run:
        out["note"] = (f"lmms_eval is not importable by {e.lmms_eval.python!r}: commands written, not run "
                       "(set evaluate.lmms_eval.python to an environment with lmms-eval; docs/stages.md section 6)")
    return out
