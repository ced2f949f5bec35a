"""Shared helpers of the benchmark scripts: run a command with its own peak RSS, write the results file."""
from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from pathlib import Path


def run_with_rusage(cmd: list[str], cwd: str | Path | None = None, env: dict | None = None) -> dict:
    """Run a command to completion; its wall time, CPU seconds (user + sys) and peak RSS (MB), from wait4: that
    process and the children it waited for."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, ru = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    err = proc.stderr.read().decode(errors="replace")
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd[:4]))} failed:\n{err[-4000:]}")
    return {"wall_s": round(wall, 2), "cpu_s": round(ru.ru_utime + ru.ru_stime, 2),
            "peak_rss_mb": round(ru.ru_maxrss / 1024)}


def write_results(path: str | Path, result: dict) -> None:
    """The raw numbers as JSON (with the machine and its load at the end of the run)."""
    result = {**result, "cpus": os.cpu_count(), "platform": platform.platform(),
              "python": platform.python_version(), "load_avg_end": os.getloadavg()}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(result, indent=2) + "\n")
    print(f"written {path}")
