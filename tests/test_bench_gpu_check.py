"""bench/gpu_check.sh's pieces on CPU: one FSDP2 training step of the tiny Qwen3-VL, and the table it prints."""
from __future__ import annotations

import subprocess
import sys

from .conftest import REPO


def test_fsdp_step_and_gpu_table(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    r = subprocess.run([sys.executable, "bench/train.py", "--tiny", "--fsdp", "--steps", "1", "--warmup", "0",
                        "--frames", "2", "--side", "64", "--out", str(tmp_path / "train_tiny.jsonl")],
                       cwd=REPO, capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    t = subprocess.run([sys.executable, "bench/gpu_table.py", str(tmp_path)], cwd=REPO, capture_output=True,
                       text=True, timeout=60, env=env)
    assert t.returncode == 0, t.stderr
    lines = t.stdout.splitlines()
    assert lines[0] == "| measurement | setting | value | note |"
    assert lines[2].startswith("| FSDP training step | tiny (2 LLM layers), sdpa | ") and "tokens/s" in lines[2]
