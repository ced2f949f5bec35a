"""Benchmark from the user's files to a subset: release-format JSONL of N pairs -> Temp+ and its uniform baseline.

Writes a LLaVA-OneVision image-QA file and a LLaVA-Video multi-turn file (60% / 40% of the pairs,
frame lists as the release's video rows carry them) in a temp dir (not timed), then, each in a fresh
interpreter so peak RSS (ru_maxrss) is its own:
- kit: `gdo-repro pool` then `gdo-repro subsets --profile temp_plus` (no descriptors, like the release
  run without --metrics-jsonl; pool.check_media off: the generated media paths do not exist, and the
  release never opens media), phases from the stages' manifests;
- release (with --release PATH, a checkout of github.com/rujiewu/GDO; its code is run, never copied):
  gdo/build_pair.py with configs/temp_plus.env's settings and --random-target-multiplier 10.

    python bench/e2e.py --release /path/to/GDO            # 1,000,000 pairs
    python bench/e2e.py --n 100000
"""
from __future__ import annotations

import argparse
import json
import os
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


def _question(rng: np.random.Generator, video: bool) -> str:
    kind = rng.integers(4)
    extra = " ".join(rng.choice(WORDS, int(rng.integers(0, 20))))
    if video and kind == 0:
        q = f"What does {rng.choice(SUBJECTS)} do {rng.choice(TEMPORAL)} {rng.choice(SUBJECTS)} starts {rng.choice(VERBS)} it? {extra}"
    elif kind == 1:
        opts = "\n".join(f"{c}. {' '.join(rng.choice(WORDS, 2))}" for c in "ABCD")
        q = f"Which option describes {rng.choice(SUBJECTS)} {extra}?\n{opts}\nAnswer with the option's letter."
    else:
        q = f"What is {rng.choice(SUBJECTS)} {rng.choice(VERBS)} in the {'video' if video else 'image'}? {extra}"
    return q.strip()


def _answer(rng: np.random.Generator) -> str:
    n = int(rng.choice([1, 2, 5, 12, 30, 70], p=[0.3, 0.15, 0.2, 0.2, 0.1, 0.05]))
    return " ".join(rng.choice(WORDS, n)).capitalize() + "."


def generate(out: Path, n: int, seed: int = 0) -> dict:
    """Write onevision.jsonl (0.6 n pairs) and llava_video.jsonl (0.4 n pairs, 2-6 turns per record)."""
    rng = np.random.default_rng(seed)
    n_img, n_vid = int(round(0.6 * n)), n - int(round(0.6 * n))
    t0 = time.perf_counter()
    done = 0
    with open(out / "onevision.jsonl", "w") as fh:
        i = 0
        while done < n_img:
            turns = min(int(rng.choice([1, 2, 3], p=[0.8, 0.15, 0.05])), n_img - done)
            msgs = []
            for t in range(turns):
                q = _question(rng, False)
                msgs += [{"role": "user", "content": f"<image>\n{q}" if t == 0 else q},
                         {"role": "assistant", "content": _answer(rng)}]
            rec = {"id": f"img_{i:08d}", "images": [f"images/{i // 1000:04d}/{i:08d}.jpg"], "messages": msgs}
            src = IMAGE_SOURCES[int(rng.integers(len(IMAGE_SOURCES)))]
            if src:
                rec["data_source"] = src
            fh.write(json.dumps(rec) + "\n")
            done += turns
            i += 1
    img_records = i
    done = 0
    with open(out / "llava_video.jsonl", "w") as fh:
        i = 0
        while done < n_vid:
            vid = f"v_{i // 3:07d}"  # about three records per video
            turns = min(int(rng.integers(2, 7)), n_vid - done)
            msgs = []
            for t in range(turns):
                q = _question(rng, True)
                msgs += [{"from": "human", "value": f"<video>\n{q}" if t == 0 else q}, {"from": "gpt", "value": _answer(rng)}]
            n_frames = int(rng.integers(16, 97))
            rec = {"id": f"{vid}_r{i % 3}", "video_id": vid,
                   "images": [f"frames/{vid}/frame_{f:04d}.jpg" for f in range(n_frames)], "messages": msgs}
            src = VIDEO_SOURCES[int(rng.integers(len(VIDEO_SOURCES)))]
            if src:
                rec["data_source"] = src
            fh.write(json.dumps(rec) + "\n")
            done += turns
            i += 1
    return {"generate_s": round(time.perf_counter() - t0, 1), "image_records": img_records, "video_records": i,
            "bytes": sum(os.path.getsize(out / f) for f in ("onevision.jsonl", "llava_video.jsonl"))}


def kit_params(data: Path, workers: int = 2) -> Path:
    """The kit's params for the run: the two files, check_media off, Temp+ only, no figure."""
    import yaml

    tree = {"run_name": "bench", "output_root": str(data / "out"), "seed": 42,
            "pools": {"gdo": [{"format": "onevision", "path": str(data / "onevision.jsonl")},
                              {"format": "llava_video", "path": str(data / "llava_video.jsonl")}]},
            "pool": {"check_media": False, "workers": workers}, "subsets": {"profiles": ["temp_plus"], "figures": False}}
    from gdo_utils.config import SubsetsConfig

    if "allow_no_descriptors" in SubsetsConfig.model_fields:  # a run without metrics, like the release's
        tree["subsets"]["allow_no_descriptors"] = True
    path = data / "bench.yaml"
    path.write_text(yaml.safe_dump(tree))
    return path


def run_measured(cmd: list[str], cwd: Path) -> dict:
    """Run through this file's --exec mode, which reports the command's own wall time and peak RSS."""
    res = subprocess.run([sys.executable, __file__, "--exec", json.dumps(cmd), "--cwd", str(cwd)],
                         capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(res.stderr[-4000:])
    return json.loads(res.stdout.strip().splitlines()[-1])


def exec_child(cmd: list[str], cwd: str) -> dict:
    """The command's own wall time and peak RSS (run from a small parent: children inherit its peak)."""
    return run_with_rusage(cmd, cwd)


def kit_run(data: Path, workers: int = 2) -> dict:
    """gdo-repro pool, then gdo-repro subsets --profile temp_plus (each a fresh process)."""
    pf = kit_params(data, workers)
    base = [sys.executable, "-m", "gdo_utils.cli"]
    pool = run_measured(base + ["pool", "--params", str(pf), "--force"], ROOT)
    subs = run_measured(base + ["subsets", "--params", str(pf), "--profile", "temp_plus", "--force"], ROOT)
    run = data / "out" / "bench"
    pm = json.loads((run / "pool" / "manifest.json").read_text())
    sm = json.loads((run / "subsets" / "temp_plus" / "manifest.json").read_text())
    rep = json.loads((run / "subsets" / "temp_plus" / "report.json").read_text())
    return {"pool": pool, "subsets": subs, "pool_stage_s": pm.get("wall_time_s"), "subset_stage_s": sm.get("wall_time_s"),
            "subset_phases_s": sm.get("timings_s", {}), "selected": rep["size"], "uniform": rep["uniform"]["size"],
            "pool_qa": json.loads((run / "pool" / "report.json").read_text())["qa_rows"],
            "total_s": round(pool["wall_s"] + subs["wall_s"], 2),
            "peak_rss_mb": max(pool["peak_rss_mb"], subs["peak_rss_mb"])}


def release_run(data: Path, checkout: Path) -> dict:
    """The release's build_pair.py with the Temp+ preset (no metrics)."""
    script = checkout / "gdo" / "build_pair.py"
    if not script.is_file():
        raise FileNotFoundError(f"{script} not found: --release must point at a checkout of rujiewu/GDO")
    out = data / "release"
    out.mkdir(exist_ok=True)
    cmd = [sys.executable, str(script), "--onevision", str(data / "onevision.jsonl"), "--video",
           str(data / "llava_video.jsonl"), "--output-random", str(out / "uni_10x_raw.jsonl"),
           "--output-filtered", str(out / "gdo_1x_raw.jsonl"), "--report", str(out / "report.json"), "--no-tqdm"]
    for k, v in TEMP_PLUS.items():
        cmd += [k, str(v)]
    res = run_measured(cmd, checkout)

    def lines(p: Path) -> int:
        with open(p, "rb") as fh:
            return sum(1 for _ in fh)
    return {**res, "selected": lines(out / "gdo_1x_raw.jsonl"), "uniform": lines(out / "uni_10x_raw.jsonl")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="QA pairs in the two files")
    ap.add_argument("--release", type=Path, help="checkout of rujiewu/GDO to run its build_pair.py beside the kit")
    ap.add_argument("--workers", type=int, default=2, help="pool.workers of the kit's run")
    ap.add_argument("--keep", type=Path, help="write the files here and keep them (reused when present)")
    ap.add_argument("--exec", help=argparse.SUPPRESS)
    ap.add_argument("--cwd", help=argparse.SUPPRESS)
    ap.add_argument("--results", default=str(ROOT / "bench" / "results" / "e2e.json"))
    args = ap.parse_args(argv)
    if args.exec:
        print(json.dumps(exec_child(json.loads(args.exec), args.cwd)))
        return 0
    with tempfile.TemporaryDirectory(prefix="gdo_bench_e2e_") as tmp:
        data = args.keep or Path(tmp)
        data.mkdir(parents=True, exist_ok=True)
        have = [data / f for f in ("onevision.jsonl", "llava_video.jsonl")]
        gen = {"reused": str(data)} if args.keep and all(f.is_file() for f in have) else generate(data, args.n)
        kit = kit_run(data, args.workers)
        rel = release_run(data, args.release) if args.release else None
    print(f"| pipeline ({args.n:,} pairs: 60% image, 40% multi-turn video) | wall (s) | peak RSS (MB) | selected | uniform |")
    print("|---|---:|---:|---:|---:|")
    print(f"| kit: pool stage (process) | {kit['pool']['wall_s']:.1f} | {kit['pool']['peak_rss_mb']} | | |")
    print(f"| kit: subsets temp_plus + uniform (process) | {kit['subsets']['wall_s']:.1f} | {kit['subsets']['peak_rss_mb']} | "
          f"{kit['selected']:,} | {kit['uniform']:,} |")
    print(f"| **kit end to end** | **{kit['total_s']:.1f}** | **{kit['peak_rss_mb']}** | {kit['selected']:,} | {kit['uniform']:,} |")
    if rel:
        print(f"| release build_pair.py (Temp+) | {rel['wall_s']:.1f} | {rel['peak_rss_mb']} | {rel['selected']:,} | "
              f"{rel['uniform']:,} |")
    write_results(args.results, {"benchmark": "files -> Temp+ + uniform baseline", "n": args.n, "generate": gen,
                                 "kit": kit, "release": rel})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
