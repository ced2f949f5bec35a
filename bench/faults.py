"""Scripted fault run on the shipped demo params: kills and in-place edits end where a clean run ends.

Two runs of `gdo-repro run --params params/demo.yaml`, each in the same working folder (so the paths
written into outputs are the same), one after the other:

- faulted: the chain is killed with SIGKILL (kill -9, the whole process group) during descriptor
  extraction, during training, and during evaluation, each time restarted with the same command; once
  it has finished, three inputs are changed in place: one pool record (a question of the toy world's
  LLaVA-OneVision file), one gold answer (the toy MVBench file), and the tiny backbone's weights
  (swapped at the same path); then the same command runs again to the end.
- clean: notebook 00 only (it generates the toy world and builds the tiny models), the same three
  edits, then one uninterrupted run.

Every file of the two run folders is then compared by content (sha256; checkpoints by their tensors),
except what records when or how long (executed notebooks, run records, manifests, logs of timings,
figures' PDF metadata): the result lists the files that differ. Results: bench/results/faults.json.

    python bench/faults.py                 # about 3 demo runs of CPU time
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from common import write_results  # noqa: E402

# files whose content records time, machine or duration (not results)
VOLATILE_NAMES = {"manifest.json", "report.json", "prepare.json", "run_info.json", "trainer_state.json",
                  "training_args.bin", "train_log.parquet"}
VOLATILE_SUFFIXES = {".ipynb", ".pdf", ".log"}
VOLATILE_PARTS = {"notebooks", "parts", ".trainer"}


def cli() -> list[str]:
    exe = Path(sys.executable).with_name("gdo-repro")
    return [str(exe)] if exe.is_file() else [sys.executable, "-m", "gdo_utils.cli"]


def prepare_workdir(work: Path) -> None:
    """A checkout's layout (notebooks, params, pyproject linked), as the demo test runs it."""
    work.mkdir(parents=True, exist_ok=True)
    for d in ("notebooks", "params"):
        (work / d).symlink_to(ROOT / d, target_is_directory=True)
    (work / "pyproject.toml").symlink_to(ROOT / "pyproject.toml")


def run(work: Path, *extra: str, log: Path) -> float:
    t0 = time.time()
    with open(log, "a") as fh:
        rc = subprocess.run([*cli(), "run", "--params", "params/demo.yaml", *extra], cwd=work, stdout=fh,
                            stderr=subprocess.STDOUT).returncode
    if rc != 0:
        raise RuntimeError(f"gdo-repro run failed (exit {rc}); see {log}")
    return time.time() - t0


def run_and_kill(work: Path, watch: str, log: Path, timeout_s: float = 3600) -> dict:
    """Start the chain; SIGKILL its process group as soon as a file matching `watch` (a glob) exists."""
    run_dir = work / "outputs" / "demo"
    with open(log, "a") as fh:
        proc = subprocess.Popen([*cli(), "run", "--params", "params/demo.yaml"], cwd=work, stdout=fh,
                                stderr=subprocess.STDOUT, start_new_session=True)
        t0 = time.time()
        while not list(run_dir.glob(watch)):
            if proc.poll() is not None:
                raise RuntimeError(f"the chain ended (exit {proc.returncode}) before {watch} appeared; see {log}")
            if time.time() - t0 > timeout_s:
                os.killpg(proc.pid, signal.SIGKILL)
                raise TimeoutError(watch)
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    return {"killed_when": watch, "after_s": round(time.time() - t0, 1),
            "seen": sorted(str(p.relative_to(run_dir)) for p in run_dir.glob(watch))[:3]}


def edit_inputs(run_dir: Path) -> dict:
    """The three in-place edits: a pool record's question, a gold answer, the backbone's weights."""
    import torch
    from safetensors.torch import load_file, save_file

    ov = run_dir / "toyworld" / "onevision.jsonl"
    lines = ov.read_text().splitlines()
    rec = json.loads(lines[0])
    turn = rec["messages"][0]
    key = "value" if "value" in turn else "content"
    turn[key] = turn[key].rstrip() + " Answer in one word."
    lines[0] = json.dumps(rec)
    ov.write_text("\n".join(lines) + "\n")
    mv = sorted((run_dir / "toyworld" / "benchmarks" / "mvbench" / "json").glob("*.json"))[0]
    items = json.loads(mv.read_text())
    old = items[0]["answer"]
    items[0]["answer"] = next(c for c in items[0]["candidates"] if c != old)
    mv.write_text(json.dumps(items, indent=1))
    w = run_dir / "models" / "tiny-qwen3vl" / "model.safetensors"
    t = load_file(str(w))
    g = torch.Generator().manual_seed(0)
    for k in sorted(t):
        if t[k].is_floating_point():
            t[k] = t[k] + 0.01 * torch.randn(t[k].shape, generator=g, dtype=t[k].dtype)
    save_file(t, str(w), metadata={"format": "pt"})
    return {"pool_record": f"{ov.name}[0] question", "gold_answer": f"{mv.name}[0]: {old!r} -> {items[0]['answer']!r}",
            "weights": str(w.relative_to(run_dir))}


TIME_KEYS = {"seconds", "wall_time_s", "created_utc", "merge_seconds", "candidates_per_s", "samples_per_s"}


def _drop_times(x):
    if isinstance(x, dict):
        return {k: _drop_times(v) for k, v in x.items() if k not in TIME_KEYS}
    if isinstance(x, list):
        return [_drop_times(v) for v in x]
    return x


def digest(path: Path) -> str:
    """Content digest: tensors for safetensors, JSON without timing keys, bytes otherwise."""
    if path.suffix == ".safetensors":  # tensors, not the header's byte layout
        import torch
        from safetensors.torch import load_file

        h = hashlib.sha256()
        for k, v in sorted(load_file(str(path)).items()):
            h.update(k.encode())
            h.update(v.contiguous().view(-1).view(torch.uint8).numpy().tobytes())
        return h.hexdigest()
    if path.suffix == ".json":
        try:
            data = json.loads(path.read_text())
        except ValueError:
            pass
        else:
            return hashlib.sha256(json.dumps(_drop_times(data), sort_keys=True).encode()).hexdigest()
    return hashlib.sha256(path.read_bytes()).hexdigest()


def content(run_dir: Path) -> dict[str, str]:
    out = {}
    for p in sorted(run_dir.rglob("*")):
        rel = p.relative_to(run_dir)
        if not p.is_file() or p.name in VOLATILE_NAMES or p.suffix in VOLATILE_SUFFIXES or p.name.startswith(".") \
                or VOLATILE_PARTS & set(rel.parts) or p.name.endswith(".run.json") or p.name.startswith("rng_state"):
            continue
        out[str(rel)] = digest(p)
    return out


def explain(a: Path, b: Path) -> str:
    """What differs in one file: JSON keys, Parquet columns, or the largest difference of an array."""
    import numpy as np
    import pandas as pd

    if not (a.is_file() and b.is_file()):
        return "only in one run"
    if a.suffix == ".npy":
        x, y = np.load(a).astype(np.float64), np.load(b).astype(np.float64)
        rows = int((np.abs(x - y).max(axis=-1) > 0).sum()) if x.shape == y.shape and x.ndim > 1 else -1
        return f"max |diff| {np.abs(x - y).max():.3g} in {rows} row(s)" if x.shape == y.shape else "shapes differ"
    if a.suffix == ".parquet":
        x, y = pd.read_parquet(a), pd.read_parquet(b)
        cols = [c for c in x.columns if c not in y.columns or not x[c].equals(y[c])]
        return f"columns {cols}"
    if a.suffix == ".json":
        x, y = _drop_times(json.loads(a.read_text())), _drop_times(json.loads(b.read_text()))
        keys = sorted(k for k in set(x) | set(y) if x.get(k) != y.get(k)) if isinstance(x, dict) else ["(list)"]
        return f"keys {keys}"
    return "bytes"


FRAME_REF = re.compile(r"/frames/([0-9a-f]{16})/")


def referenced_frames(run_dir: Path) -> set[str]:
    """Frame folders (outputs/<run>/frames/<sha1 of the video path>) that some exported training file names."""
    refs: set[str] = set()
    for f in (run_dir / "subsets").rglob("train*.json*"):
        refs |= set(FRAME_REF.findall(f.read_text(encoding="utf-8")))
    return refs


def compare(faulted: Path, clean: Path) -> dict:
    """Files that differ; frame folders that no export of their run names are listed apart (see below)."""
    fa, cl = content(faulted), content(clean)
    differ = sorted(k for k in set(fa) | set(cl) if fa.get(k) != cl.get(k))
    # `--extract-frames` keeps a video's PNG frames under frames/<hash>/ for every export that needs them; an
    # export made before the edits (another subset) leaves folders that the final exports no longer name: a
    # cache of decoded frames, not an output of the final run. Every folder an export names is compared.
    refs = {"faulted": referenced_frames(faulted), "clean": referenced_frames(clean)}
    stale = [k for k in differ if k.startswith("frames/") and (k in fa) != (k in cl)
             and k.split("/")[1] not in refs["faulted" if k in fa else "clean"]]
    differ = [k for k in differ if k not in set(stale)]
    return {"files_compared": len(set(fa) | set(cl)), "equal": not differ,
            "files_differing": {k: explain(faulted / k, clean / k) for k in differ},
            "unreferenced_frame_files": {"faulted": sum(k in fa for k in stale), "clean": sum(k in cl for k in stale),
                                         "folders": sorted({k.split("/")[1] for k in stale})}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", default="/tmp/gdo_faults", help="scratch folder (emptied first)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "faults.json"))
    ap.add_argument("--compare-only", action="store_true", help="only compare the two run folders left in --work")
    args = ap.parse_args()
    base = Path(args.work)
    work, log = base / "work", base / "log.txt"
    run_dir = work / "outputs" / "demo"
    res: dict = {"faults": [], "seconds": {}}
    if args.compare_only:
        res = {**json.loads(Path(args.out).read_text()), **compare(base / "faulted_outputs" / "demo", run_dir)}
        write_results(args.out, res)
        print(json.dumps({k: res[k] for k in ("files_compared", "equal", "files_differing")}, indent=1))
        return
    shutil.rmtree(base, ignore_errors=True)
    prepare_workdir(work)
    t0 = time.time()
    for watch in ("descriptors/parts/*.parquet", "train/*/checkpoint-*", "eval/*/*/*.parts/*.parquet"):
        res["faults"].append(run_and_kill(work, watch, log))
    res["seconds"]["faulted_to_end"] = round(run(work, log=log), 1)
    res["edits"] = edit_inputs(run_dir)
    res["seconds"]["after_edits"] = round(run(work, log=log), 1)
    res["seconds"]["faulted_total"] = round(time.time() - t0, 1)
    shutil.move(str(work / "outputs"), str(base / "faulted_outputs"))
    t0 = time.time()
    run(work, "--only", "00", log=log)
    edit_inputs(run_dir)
    res["seconds"]["clean"] = round(run(work, log=log) + time.time() - t0, 1)
    res.update(compare(base / "faulted_outputs" / "demo", run_dir))
    write_results(args.out, res)
    print(json.dumps({k: res[k] for k in ("files_compared", "equal", "files_differing")}, indent=1))


if __name__ == "__main__":
    main()
