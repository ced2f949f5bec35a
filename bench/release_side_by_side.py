"""Side by side: the GDO release's gdo/build_pair.py and the kit in release mode, on one synthetic pool.

Writes a synthetic pool in the release's formats (LLaVA-OneVision JSONL, LLaVA-Video JSONL with frame
lists, a merged metrics.jsonl with gaps, ids outside the pool and bad rows), runs the release's script
from a checkout (path given; nothing of it is copied into the kit) with each preset's flags, runs the kit
(`gdo-repro import-metrics` + `gdo-repro subsets`, params/release.yaml) on the same files, and reports
the Jaccard of the selected ids (GDO 1x and Uni-10x) per preset. Goal: 1.0, id for id.

    python bench/release_side_by_side.py /path/to/GDO-checkout [--rows 20000] [--profiles temp_plus,minloss] [--work DIR]
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

import yaml

KIT = Path(__file__).resolve().parents[1]
FLAGS = {  # kit profile key -> release flag
    "min_count": "--auto-min-count", "max_count": "--auto-max-count", "min_ratio": "--auto-min-ratio",
    "max_ratio": "--auto-max-ratio", "strata_mult": "--auto-effective-strata-mult",
    "coverage_mass": "--auto-coverage-mass", "tail_target": "--auto-tail-target",
    "vds3_target_positive": "--auto-vds3-target-positive", "vds3_threshold": "--auto-vds3-threshold",
    "vds3_max_mult": "--auto-vds3-max-mult", "min_video_ratio": "--min-video-ratio",
    "max_video_ratio": "--max-video-ratio", "min_temporal_in_video_ratio": "--min-temporal-in-video-ratio",
    "oversample": "--oversample-factor", "video_oversample": "--video-oversample-factor",
    "temporal_oversample": "--temporal-oversample-factor", "source_group_floor_topk": "--source-group-floor-topk",
    "min_source_group_ratio": "--min-source-group-ratio",
    "floor_frac_of_expected": "--source-group-floor-frac-of-expected",
}
IMG_SOURCES = ["sharegpt4v(coco)", "ai2d(gpt4v)", "chartqa(cauldron,llava_format)", "geo170k(qa)",
               "ureader_kg_processed", "allava_instruct_laion4v", "vision_flan(filtered)"]
VID_SOURCES = ["llava_video_178k_0_30_s_academic_oe", "llava_video_178k_30_60_s_youtube_mc", "nextqa_oe(v1)",
               "perceptiontest_mc(v1)"]
WORDS = "red blue green person car dog ball scene object left right top bottom large small moving".split()
TEMPORAL = ["before", "after", "then", "first", "next", "finally", "while"]


def _question(rng: random.Random, video: bool) -> str:
    n = rng.choice([3, 5, 8, 12, 18, 26, 40])
    words = [rng.choice(WORDS) for _ in range(n)]
    if video and rng.random() < 0.4:
        words.insert(rng.randrange(len(words)), rng.choice(TEMPORAL))
    if rng.random() < 0.2:
        words.append("choices")
    return "What " + " ".join(words) + "?"


def _answer(rng: random.Random) -> str:
    n = rng.choice([1, 2, 4, 7, 12, 20, 35, 70])
    return " ".join(rng.choice(WORDS) for _ in range(n))


def write_pool(d: Path, rows: int, seed: int) -> dict:
    """The two QA files and a metrics.jsonl; returns their paths."""
    rng = random.Random(seed)
    ov, vv, met = d / "onevision.jsonl", d / "video.jsonl", d / "metrics.jsonl"
    uids = []
    n_img = int(rows * 0.55)
    with ov.open("w") as f:
        i = 0
        while i < n_img:
            turns = rng.choice([1, 1, 1, 2, 3])
            msgs = []
            for _ in range(turns):
                q = _question(rng, False) if rng.random() > 0.03 else "What is shown?"   # some repeated texts
                msgs += [{"from": "human", "value": "<image>\n" + q}, {"from": "gpt", "value": _answer(rng)}]
            rec = {"id": f"img{i}", "images": [f"img/{i}.jpg"], "messages": msgs, "data_source": rng.choice(IMG_SOURCES)}
            f.write(json.dumps(rec) + "\n")
            uids += [f"ov::img{i}::t{k}" for k in range(turns)]
            i += turns
    with vv.open("w") as f:
        v = 0
        while len(uids) < rows:
            turns = rng.choice([1, 2, 4, 6, 10])
            n_fr = rng.choice([4, 8, 16, 24, 32, 48])
            msgs = []
            for _ in range(turns):
                msgs += [{"role": "user", "content": "<video>\n" + _question(rng, True)},
                         {"role": "assistant", "content": _answer(rng)}]
            rec = {"id": f"vid{v}", "video_id": f"video{v // 2}", "images": [f"frames/{v}/{k}.jpg" for k in range(n_fr)],
                   "messages": msgs, "data_source": rng.choice(VID_SOURCES)}
            f.write(json.dumps(rec) + "\n")
            uids += [f"vv::vid{v}::t{k}" for k in range(turns)]
            v += 1
    with met.open("w") as f:
        for u in uids:
            if rng.random() < 0.1:
                continue                                    # pool rows without metrics
            lv = rng.gauss(1.5, 0.5)
            lb = lv + rng.gauss(0.2, 0.3)
            vals = {"loss_video": lv, "loss_blind": lb, "vds": lb - lv, "frame_diversity": rng.random() * 0.2,
                    "quality_score": rng.random()}
            if rng.random() < 0.05:
                vals["loss_blind"] = None
            row = {"qa_uid": u, "data_quality_metrics": vals} if rng.random() < 0.5 else {"id": u, **vals}
            f.write(json.dumps(row) + "\n")
        for k in range(50):                                 # ids the pool does not hold
            f.write(json.dumps({"qa_uid": f"vv::gone{k}::t0", "loss_video": 1.0, "loss_blind": 1.5, "vds": 0.5,
                                "frame_diversity": 0.1, "quality_score": 0.4}) + "\n")
        f.write("{not json\n")
    return {"onevision": ov, "video": vv, "metrics": met}


def run_release(checkout: Path, files: dict, profile: dict, out: Path) -> tuple[set, set, float]:
    """build_pair.py with the preset's flags; returns (GDO ids, uniform ids, seconds)."""
    cmd = [sys.executable, str(checkout / "gdo" / "build_pair.py"), "--onevision", str(files["onevision"]),
           "--video", str(files["video"]), "--seed", "42", "--target-frames", "32", "--max-qa-per-video", "8",
           "--random-target-multiplier", "10.0", "--metrics-jsonl", str(files["metrics"]),
           "--temporal-categories", "Temporal,Mixed", "--no-tqdm", "--log-every", "0",
           "--output-random", str(out / "uni.jsonl"), "--output-filtered", str(out / "gdo.jsonl"),
           "--report", str(out / "report.json")]
    for key, flag in FLAGS.items():
        cmd += [flag, str(profile[key])]
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    secs = time.perf_counter() - t
    ids = [{json.loads(x)["qa_uid"] for x in (out / n).open()} for n in ("gdo.jsonl", "uni.jsonl")]
    return ids[0], ids[1], secs


def run_kit(files: dict, out: Path, name: str, env: dict, behaviour: str = "release") -> tuple[set, set, float]:
    """gdo-repro import-metrics + subsets on params/release.yaml; returns (GDO ids, uniform ids, seconds)."""
    sets = ["--set", f"output_root={out}", "--set", "subsets.figures=false", "--set", f"subsets.profiles=[{name}]",
            "--set", f"subsets.profiles_dir={KIT / 'params' / 'profiles'}", "--set", f"subsets.behaviour={behaviour}"]
    base = [sys.executable, "-m", "gdo_utils.cli"]
    t = time.perf_counter()
    if not (out / "release" / "descriptors" / "descriptors.parquet").is_file():
        subprocess.run(base + ["import-metrics", str(files["metrics"]), "--params", str(KIT / "params" / "release.yaml")]
                       + sets, check=True, env=env, stdout=subprocess.DEVNULL, cwd=KIT)
    subprocess.run(base + ["subsets", "--params", str(KIT / "params" / "release.yaml")] + sets, check=True, env=env,
                   stdout=subprocess.DEVNULL, cwd=KIT)
    secs = time.perf_counter() - t
    d = out / "release" / "subsets"
    return (set((d / name / "selected_ids.txt").read_text().split()),
            set((d / f"uniform_{name}" / "selected_ids.txt").read_text().split()), secs)


def jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a | b else 1.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkout", type=Path, help="a checkout of the GDO release (holds gdo/build_pair.py)")
    ap.add_argument("--rows", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--profiles", default="minloss,diverse,temp,temp_plus")
    ap.add_argument("--behaviour", default="release", choices=["release", "kit"], help="the kit's subsets.behaviour")
    ap.add_argument("--work", type=Path, help="keep the pool and the release's outputs here; a later run with the "
                    "same --work, --rows and --seed reuses them and runs the kit side again (fresh)")
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="gdo_side_"))
    work.mkdir(parents=True, exist_ok=True)
    stamp = work / "pool.json"
    if stamp.is_file() and json.loads(stamp.read_text()) == {"rows": args.rows, "seed": args.seed}:
        files = {"onevision": work / "onevision.jsonl", "video": work / "video.jsonl", "metrics": work / "metrics.jsonl"}
    else:
        files = write_pool(work, args.rows, args.seed)
        stamp.write_text(json.dumps({"rows": args.rows, "seed": args.seed}))
    shutil.rmtree(work / "kit", ignore_errors=True)      # the kit side always runs fresh
    env = {**os.environ, "ONEVISION_PATH": str(files["onevision"]), "VIDEO_PATH": str(files["video"]),
           "PYTHONPATH": str(KIT)}
    print(f"pool: {args.rows} QA pairs under {work}; kit behaviour: {args.behaviour}")
    print("| preset | release size | kit size | Jaccard 1x | Jaccard Uni-10x | release s | kit s |")
    print("|---|---|---|---|---|---|---|")
    for name in args.profiles.split(","):
        prof = yaml.safe_load((KIT / "params" / "profiles" / "_default.yaml").read_text())
        prof.update(yaml.safe_load((KIT / "params" / "profiles" / f"{name}.yaml").read_text()))
        rdir = work / f"release_{name}"
        if (rdir / "done.json").is_file():                 # the release's outputs of an earlier run (--work)
            r_gdo, r_uni = [{json.loads(x)["qa_uid"] for x in (rdir / n).open()} for n in ("gdo.jsonl", "uni.jsonl")]
            r_s = json.loads((rdir / "done.json").read_text())["seconds"]
        else:
            rdir.mkdir(exist_ok=True)
            r_gdo, r_uni, r_s = run_release(args.checkout, files, prof, rdir)
            (rdir / "done.json").write_text(json.dumps({"seconds": r_s}))
        k_gdo, k_uni, k_s = run_kit(files, work / "kit", name, env, args.behaviour)
        print(f"| {name} | {len(r_gdo)} | {len(k_gdo)} | {jaccard(r_gdo, k_gdo):.4f} | {jaccard(r_uni, k_uni):.4f} "
              f"| {r_s:.1f} | {k_s:.1f} |")


if __name__ == "__main__":
    main()
