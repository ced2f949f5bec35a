"""Benchmark of the documented release path: release-format files of N pairs -> Temp+ and its uniform baseline.

Writes a LLaVA-OneVision image-QA file, a LLaVA-Video multi-turn file (60% / 40% of the pairs, frame
lists as the release's video rows carry them) and the merged metrics.jsonl gdo/merge_metrics.py writes
(every value at the top level and under `data_quality_metrics`; 10% of the pairs without metrics, 3%
null values, 50 ids outside the pool, one bad line) in a temp dir (not timed), then, each command in a
fresh interpreter so CPU time and peak RSS (wait4) are its own, kit and release interleaved:
- kit: the README's two commands, `gdo-repro import-metrics metrics.jsonl --params params/release.yaml`
  (builds the pool, then imports) and `gdo-repro subsets --params params/release.yaml --profile temp_plus`,
  phases from the stages' manifests;
- release (with --release PATH, a checkout of github.com/rujiewu/GDO; its code is run, never copied):
  gdo/build_pair.py --metrics-jsonl with configs/temp_plus.env's settings and --random-target-multiplier 10.

    python bench/e2e.py --release /path/to/GDO            # 1,000,000 pairs
    python bench/e2e.py --n 100000 --release /path/to/GDO --repeats 2
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(1, str(ROOT))
from common import run_with_rusage, write_results  # noqa: E402

FILES = ("onevision.jsonl", "llava_video.jsonl", "metrics.jsonl")
IMAGE_SOURCES = ["coco_caption(llava_1.5)", "vqav2(cauldron)", "gqa(cauldron)", "ocr_vqa_llava_format_v1_train",
                 "chart_qa_sharegpt4v_train_aug", "ai2d(cauldron,llava_format)", "sharegpt4v(coco)", "textvqa_llava",
                 "geo170k(qa)", "scienceqa(nona_context)", "image_textualization(filtered)", "visual7w(cauldron)",
                 None]
VIDEO_SOURCES = ["llava_video_academic_v0_1_activitynet", "llava_video_academic_v0_1_youcook2", "nextqa_mc_train",
                 "perceptiontest_mc_train", "llava_video_youtube_v0_1_0_30_s", "llava_video_youtube_v0_1_30_60_s", None]
SUBJECTS = ["the man", "the woman", "the dog", "the red car", "the child", "the chef", "two people", "the player"]
VERBS = ["doing", "holding", "looking at", "cutting", "throwing", "opening", "wearing", "pointing at"]
TEMPORAL = ["before", "after", "then", "while", "during", "first", "next", "finally", "later"]
WORDS = ("scene object color left right small large near far bright dark wooden metal open closed round square "
         "table window street kitchen field water light sign text number shape pattern").split()
TEMP_PLUS = {"--auto-min-count": 16000, "--auto-max-count": 110000, "--auto-min-ratio": 0.001, "--auto-max-ratio": 0.018,
             "--auto-effective-strata-mult": 22.0, "--auto-coverage-mass": 0.95, "--auto-tail-target": 16.0,
             "--auto-vds3-target-positive": 9000, "--auto-vds3-threshold": 0.0, "--auto-vds3-max-mult": 3.2,
             "--min-video-ratio": 0.50, "--max-video-ratio": 0.64, "--min-temporal-in-video-ratio": 0.38,
             "--temporal-categories": "Temporal,Mixed", "--oversample-factor": 1.35, "--video-oversample-factor": 2.9,
             "--temporal-oversample-factor": 4.2, "--source-group-floor-topk": 16, "--min-source-group-ratio": 0.0025,
             "--source-group-floor-frac-of-expected": 0.38, "--random-target-multiplier": 10, "--seed": 42,
             "--target-frames": 32, "--max-qa-per-video": 8}
METRIC_KEYS = ["loss_video", "loss_blind", "frame_diversity", "vds", "quality_score", "ppl", "amm", "tnc_score",
               "self_consistency", "cluster_score", "cluster_hardness"]


def _question(rng: random.Random, video: bool) -> str:
    kind = rng.randrange(4)
    extra = " ".join(rng.choices(WORDS, k=rng.randrange(20)))
    if video and kind == 0:
        q = f"What does {rng.choice(SUBJECTS)} do {rng.choice(TEMPORAL)} {rng.choice(SUBJECTS)} starts {rng.choice(VERBS)} it? {extra}"
    elif kind == 1:
        opts = "\n".join(f"{c}. {' '.join(rng.choices(WORDS, k=2))}" for c in "ABCD")
        q = f"Which option describes {rng.choice(SUBJECTS)} {extra}?\n{opts}\nAnswer with the option's letter."
    else:
        q = f"What is {rng.choice(SUBJECTS)} {rng.choice(VERBS)} in the {'video' if video else 'image'}? {extra}"
    return q.strip()


def _answer(rng: random.Random) -> str:
    n = rng.choices([1, 2, 5, 12, 30, 70], weights=[0.3, 0.15, 0.2, 0.2, 0.1, 0.05])[0]
    return " ".join(rng.choices(WORDS, k=n)).capitalize() + "."


def write_metrics(path: Path, uids: list[str], seed: int = 1) -> int:
    """The merged metrics.jsonl of gdo/merge_metrics.py for 90% of `uids` (+ nulls, outsiders, a bad line)."""
    rng = np.random.default_rng(seed)
    n = len(uids)
    keep = rng.random(n) >= 0.10
    lv = rng.normal(1.5, 0.5, n)
    lb = lv + rng.normal(0.2, 0.3, n)
    vals = np.stack([lv, lb, rng.random(n) * 0.2, lb - lv, rng.random(n), rng.lognormal(1.0, 0.4, n), rng.random(n),
                     rng.random(n), np.where(rng.random(n) < 0.1, -1.0, rng.random(n)), rng.random(n), rng.random(n)], 1)
    null = rng.random((n, len(METRIC_KEYS))) < 0.03 / len(METRIC_KEYS) * 3
    written = 0
    with open(path, "w") as fh:
        for i in np.flatnonzero(keep):
            m = {k: (None if null[i, j] else float(vals[i, j])) for j, k in enumerate(METRIC_KEYS)}
            row = {"qa_uid": uids[i], "video_uid": uids[i].split("::")[1], **m,
                   "data_quality_metrics": {**m, "cluster_id": int(i % 4096), "cluster_dist": float(vals[i, 9])}}
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            written += 1
        for k in range(50):                                  # ids the pool does not hold
            fh.write(json.dumps({"qa_uid": f"vv::gone_{k}::t0", "loss_video": 1.0, "loss_blind": 1.5, "vds": 0.5,
                                 "frame_diversity": 0.1, "quality_score": 0.4}) + "\n")
        fh.write("{not json\n")                              # one bad line (the release skips it, the kit reports it)
    return written


def generate(out: Path, n: int, seed: int = 0) -> dict:
    """Write onevision.jsonl (0.6 n pairs) and llava_video.jsonl (0.4 n pairs, 2-6 turns per record)."""
    rng = random.Random(seed)
    n_img, n_vid = int(round(0.6 * n)), n - int(round(0.6 * n))
    t0 = time.perf_counter()
    done = 0
    uids: list[str] = []
    with open(out / "onevision.jsonl", "w") as fh:
        i = 0
        while done < n_img:
            turns = min(rng.choices([1, 2, 3], weights=[0.8, 0.15, 0.05])[0], n_img - done)
            msgs = []
            for t in range(turns):
                q = _question(rng, False)
                msgs += [{"role": "user", "content": f"<image>\n{q}" if t == 0 else q},
                         {"role": "assistant", "content": _answer(rng)}]
            rec = {"id": f"img_{i:08d}", "images": [f"images/{i // 1000:04d}/{i:08d}.jpg"], "messages": msgs}
            src = rng.choice(IMAGE_SOURCES)
            if src:
                rec["data_source"] = src
            fh.write(json.dumps(rec) + "\n")
            uids += [f"ov::{rec['id']}::t{t}" for t in range(turns)]
            done += turns
            i += 1
    img_records = i
    done = 0
    with open(out / "llava_video.jsonl", "w") as fh:
        i = 0
        while done < n_vid:
            vid = f"v_{i // 3:07d}"  # about three records per video
            turns = min(rng.randint(2, 6), n_vid - done)
            msgs = []
            for t in range(turns):
                q = _question(rng, True)
                msgs += [{"from": "human", "value": f"<video>\n{q}" if t == 0 else q}, {"from": "gpt", "value": _answer(rng)}]
            n_frames = rng.randint(16, 96)
            rec = {"id": f"{vid}_r{i % 3}", "video_id": vid,
                   "images": [f"frames/{vid}/frame_{f:04d}.jpg" for f in range(n_frames)], "messages": msgs}
            src = rng.choice(VIDEO_SOURCES)
            if src:
                rec["data_source"] = src
            fh.write(json.dumps(rec) + "\n")
            uids += [f"vv::{rec['id']}::t{t}" for t in range(turns)]
            done += turns
            i += 1
    metrics = write_metrics(out / "metrics.jsonl", uids, seed + 1)
    return {"generate_s": round(time.perf_counter() - t0, 1), "image_records": img_records, "video_records": i,
            "metrics_rows": metrics, "bytes": {f: os.path.getsize(out / f) for f in FILES}}


def kit_env(data: Path) -> dict:
    """params/release.yaml reads the two QA files from the release's environment variables."""
    return {**os.environ, "ONEVISION_PATH": str(data / "onevision.jsonl"), "VIDEO_PATH": str(data / "llava_video.jsonl"),
            "PYTHONPATH": str(ROOT)}


def run_measured(cmd: list[str], cwd: Path, env: dict | None = None) -> dict:
    """Run through this file's --exec mode, which reports the command's own wall time, CPU time and peak RSS."""
    res = subprocess.run([sys.executable, __file__, "--exec", json.dumps(cmd), "--cwd", str(cwd)],
                         capture_output=True, text=True, env=env)
    if res.returncode != 0:
        raise RuntimeError(res.stderr[-4000:])
    return json.loads(res.stdout.strip().splitlines()[-1])


def exec_child(cmd: list[str], cwd: str) -> dict:
    """The command's own wall time and peak RSS (run from a small parent: children inherit its peak)."""
    return run_with_rusage(cmd, cwd)


def kit_run(data: Path, out: Path) -> dict:
    """The README's two release commands (import-metrics, then subsets --profile temp_plus), fresh processes."""
    sets = ["--params", "params/release.yaml", "--set", f"output_root={out}", "--set", "subsets.figures=false"]
    base = [sys.executable, "-m", "gdo_utils.cli"]
    env = kit_env(data)
    if out.exists():
        shutil.rmtree(out)                                    # every repeat builds the pool again
    imp = run_measured(base + ["import-metrics", str(data / "metrics.jsonl")] + sets, ROOT, env)
    subs = run_measured(base + ["subsets", "--profile", "temp_plus"] + sets, ROOT, env)
    run = out / "release"
    pm = json.loads((run / "pool" / "manifest.json").read_text())
    im = json.loads((run / "descriptors" / "manifest.json").read_text())
    sm = json.loads((run / "subsets" / "temp_plus" / "manifest.json").read_text())
    rep = json.loads((run / "subsets" / "temp_plus" / "report.json").read_text())
    return {"import_metrics": imp, "subsets": subs, "pool_stage_s": pm.get("wall_time_s"),
            "import_stage_s": im.get("wall_time_s"), "import_phases_s": im.get("timings_s", {}), "import_phases_cpu_s": im.get("cpu_s", {}),
            "subset_stage_s": sm.get("wall_time_s"), "subset_phases_s": sm.get("timings_s", {}), "subset_phases_cpu_s": sm.get("cpu_s", {}),
            "selected": rep["size"], "uniform": rep["uniform"]["size"],
            "pool_qa": json.loads((run / "pool" / "report.json").read_text())["qa_rows"],
            "ids": sorted((run / "subsets" / "temp_plus" / "selected_ids.txt").read_text().split()),
            "uniform_ids": sorted((run / "subsets" / "uniform_temp_plus" / "selected_ids.txt").read_text().split()),
            "wall_s": round(imp["wall_s"] + subs["wall_s"], 2), "cpu_s": round(imp["cpu_s"] + subs["cpu_s"], 2),
            "peak_rss_mb": max(imp["peak_rss_mb"], subs["peak_rss_mb"])}


def release_run(data: Path, checkout: Path) -> dict:
    """The release's build_pair.py with the Temp+ preset and the metrics."""
    script = checkout / "gdo" / "build_pair.py"
    if not script.is_file():
        raise FileNotFoundError(f"{script} not found: --release must point at a checkout of rujiewu/GDO")
    out = data / "release"
    out.mkdir(exist_ok=True)
    cmd = [sys.executable, str(script), "--onevision", str(data / "onevision.jsonl"), "--video",
           str(data / "llava_video.jsonl"), "--metrics-jsonl", str(data / "metrics.jsonl"),
           "--output-random", str(out / "uni_10x_raw.jsonl"),
           "--output-filtered", str(out / "gdo_1x_raw.jsonl"), "--report", str(out / "report.json"), "--no-tqdm"]
    for k, v in TEMP_PLUS.items():
        cmd += [k, str(v)]
    res = run_measured(cmd, checkout)

    def ids(p: Path) -> list[str]:
        with open(p, "rb") as fh:
            return sorted(json.loads(x)["qa_uid"] for x in fh)
    gdo, uni = ids(out / "gdo_1x_raw.jsonl"), ids(out / "uni_10x_raw.jsonl")
    return {**res, "selected": len(gdo), "uniform": len(uni), "ids": gdo, "uniform_ids": uni}


def _row(name: str, r: dict) -> str:
    return (f"| {name} | {r['cpu_s']:.1f} | {r['wall_s']:.1f} | {r['peak_rss_mb']:,} | "
            f"{r.get('selected', ''):,} | {r.get('uniform', ''):,} |" if "selected" in r else
            f"| {name} | {r['cpu_s']:.1f} | {r['wall_s']:.1f} | {r['peak_rss_mb']:,} | | |")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="QA pairs in the two files")
    ap.add_argument("--release", type=Path, help="checkout of rujiewu/GDO to run its build_pair.py beside the kit")
    ap.add_argument("--repeats", type=int, default=1, help="kit / release pairs, interleaved")
    ap.add_argument("--keep", type=Path, help="write the files here and keep them (reused when present)")
    ap.add_argument("--exec", help=argparse.SUPPRESS)
    ap.add_argument("--cwd", help=argparse.SUPPRESS)
    ap.add_argument("--results", default=str(ROOT / "bench" / "results" / "e2e.json"))
    args = ap.parse_args(argv)
    if args.exec:
        print(json.dumps(exec_child(json.loads(args.exec), args.cwd)))
        return 0
    runs: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="gdo_bench_e2e_") as tmp:
        data = args.keep or Path(tmp)
        data.mkdir(parents=True, exist_ok=True)
        have = all((data / f).is_file() for f in FILES)
        gen = {"reused": str(data)} if args.keep and have else generate(data, args.n)
        for rep in range(args.repeats):
            load = os.getloadavg()[0]
            kit = kit_run(data, data / "out")
            rel = release_run(data, args.release) if args.release else None
            same = (kit["ids"] == rel["ids"] and kit["uniform_ids"] == rel["uniform_ids"]) if rel else None
            runs.append({"repeat": rep, "load_avg_1m_start": load, "load_avg_1m_end": os.getloadavg()[0],
                         "same_ids": same, "kit": kit, "release": rel})
    print(f"| documented release path, {args.n:,} pairs (60% image, 40% multi-turn video) + metrics | CPU (s) "
          f"| wall (s) | peak RSS (MB) | Temp+ | Uni-10x |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in runs:
        kit, rel = r["kit"], r["release"]
        tag = f" (repeat {r['repeat'] + 1}, load {r['load_avg_1m_start']:.1f})"
        print(_row(f"kit: import-metrics (pool {kit['pool_stage_s']:.1f} s + import {kit['import_stage_s']:.1f} s)",
                   kit["import_metrics"]))
        print(_row("kit: subsets --profile temp_plus", kit["subsets"]))
        print(_row(f"**kit, documented path**{tag}", kit))
        if rel:
            print(_row(f"release build_pair.py{tag}; same ids: {r['same_ids']}", rel))
            print(f"| ratio release / kit | {rel['cpu_s'] / kit['cpu_s']:.1f}x | {rel['wall_s'] / kit['wall_s']:.1f}x "
                  f"| {rel['peak_rss_mb'] / kit['peak_rss_mb']:.2f}x | | |")
        print(f"kit phases, CPU s: import {kit['import_phases_cpu_s']}; subsets {kit['subset_phases_cpu_s']}")
    for r in runs:
        for side in ("kit", "release"):
            if r[side]:
                r[side].pop("ids"), r[side].pop("uniform_ids")
    write_results(args.results, {"benchmark": "documented release path -> Temp+ + Uni-10x", "n": args.n,
                                 "generate": gen, "runs": runs})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
