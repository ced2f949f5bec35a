"""Benchmark of the subsets stage: Temp+ and its uniform baseline, end to end, on a synthetic pool.

Generates a synthetic pool (image + multi-turn video QA, 13 sources, descriptors with gaps) as Parquet in
a temp dir, then times `build_profile(params, "temp_plus")` -- read Parquet, score, budget, quotas, the six
fill stages, the uniform baseline (10x the target), train.jsonl / selected_ids / reports -- in a fresh
subprocess per size so peak RSS (ru_maxrss) belongs to the build alone. Prints a Markdown table and
writes bench/results/subsets.json.

    python bench/subsets.py                 # 1,000,000 QA pairs
    python bench/subsets.py --n 1000000 --n 3000000
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def params_tree(out: str) -> dict:
    """Params of the benchmark run (Temp+ only, no figure)."""
    return {"run_name": "bench", "output_root": out, "seed": 42,
            "subsets": {"profiles": ["temp_plus"], "figures": False}}


def child_generate(out: str, n: int) -> dict:
    """Write the synthetic pool + descriptors (not timed as part of the build)."""
    from gdo_utils.config import params_from_dict
    from gdo_utils.subsets.synthetic import write_synthetic

    t0 = time.perf_counter()
    paths = write_synthetic(params_from_dict(params_tree(out)), n, seed=0)
    return {"generate_s": time.perf_counter() - t0, **{k: os.path.getsize(v) for k, v in paths.items()}}


def child_build(out: str) -> dict:
    """Time the build of temp_plus + its uniform baseline; report peak RSS of this process."""
    t_import = time.perf_counter()
    from gdo_utils.config import params_from_dict
    from gdo_utils.subsets import build_profile

    params = params_from_dict(params_tree(out))
    t0 = time.perf_counter()
    rep = build_profile(params, "temp_plus", force=True)
    wall = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    manifest = json.loads((params.stage_dir("subsets", "temp_plus") / "manifest.json").read_text())
    return {"build_s": wall, "import_s": t0 - t_import, "peak_rss_mb": peak_mb, "pool": rep["pool_size"],
            "selected": rep["size"], "target": rep["target"], "uniform": rep["uniform"]["size"],
            "unmet": len(rep["unmet_constraints"]), "stage_counts": rep["stage_counts"],
            "phases_s": manifest.get("timings_s", {})}


def run_child(mode: str, out: str, n: int) -> dict:
    """Run one phase in a fresh interpreter (so ru_maxrss is that phase's own peak)."""
    cmd = [sys.executable, __file__, "--child", mode, "--out", out, "--n", str(n)]
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if res.returncode != 0:
        raise RuntimeError(f"{mode} failed:\n{res.stderr[-4000:]}")
    data = json.loads(res.stdout.strip().splitlines()[-1])
    data["process_s"] = time.perf_counter() - t0
    return data


def main(argv: list[str] | None = None) -> int:
    """Generate, build and time each pool size; print the table, write the JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, action="append", help="pool sizes (default 1000000)")
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--child", choices=["generate", "build"], help=argparse.SUPPRESS)
    ap.add_argument("--results", default=str(ROOT / "bench" / "results" / "subsets.json"))
    args = ap.parse_args(argv)
    if args.child:
        fn = child_generate if args.child == "generate" else child_build
        print(json.dumps(fn(args.out, args.n[0]) if args.child == "generate" else fn(args.out)))
        return 0
    sizes = args.n or [1_000_000]
    rows = []
    for n in sizes:
        with tempfile.TemporaryDirectory(prefix="gdo_bench_subsets_") as tmp:
            gen = run_child("generate", tmp, n)
            build = run_child("build", tmp, n)
            rows.append({"n": n, **gen, **build})
    print("| pool QA | selected (target) | uniform | build wall (s) | peak RSS (MB) | process incl. imports (s) |")
    print("|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['n']:,} | {r['selected']:,} ({r['target']:,}) | {r['uniform']:,} | {r['build_s']:.2f} | "
              f"{r['peak_rss_mb']:.0f} | {r['process_s']:.2f} |")
    result = {"benchmark": "subsets temp_plus + uniform baseline, end to end", "cpus": os.cpu_count(),
              "platform": platform.platform(), "python": platform.python_version(), "runs": rows}
    Path(args.results).parent.mkdir(parents=True, exist_ok=True)
    Path(args.results).write_text(json.dumps(result, indent=2) + "\n")
    print(f"written {args.results}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
