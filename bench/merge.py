"""Benchmark of the descriptor merge: merge + level-1 score + coverage (K = 4096) for N descriptor rows.

Synthetic rows (not timed): per-candidate descriptors as the extraction writes them (8 rank parts),
CLIP-like unit image/text embeddings (512 + 512, clustered), and the same rows as the release's
`sixd_metrics_rank*.jsonl` shards (its 16 text + 6 vision features and the descriptors). Timed, each
in a fresh interpreter (peak RSS its own):
- kit: the functions `merge_descriptors` runs, phase by phase (merge_parts, coverage features,
  k-means coverage, level-1 quality), for each `--variant` of the coverage options;
- release (with --release PATH, a checkout of github.com/rujiewu/GDO; run, never copied):
  gdo/merge_metrics.py --cluster-k 4096 on the same rows;
- baseline (with --baseline PATH, a checkout of another commit of this kit, e.g. `git worktree add
  /tmp/main main`): the same child with that checkout's gdo_utils, alternating with this code's for
  --repeats rounds on the same rows; each child prints a sha256 of its coverage columns and quality, so
  the table says whether both codes wrote the same bytes.

    python bench/merge.py --release /path/to/GDO                # 200,000 rows
    python bench/merge.py --n 20000 --variant clip --variant standardized
    python bench/merge.py --baseline /tmp/main --repeats 2      # main beside this code, interleaved
"""
from __future__ import annotations

import argparse
import hashlib
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
from common import run_with_rusage, write_results  # noqa: E402
VARIANTS = {  # name -> (coverage_features, DescriptorsConfig coverage options)
    "clip": ("clip", {}),  # the defaults: 1024-d, 256 training rows per centroid (every row at 200k, K = 4096)
    "clip_pca64_ppc8": ("clip", {"pca": 64, "points_per_centroid": 8}),
    "standardized": ("standardized", {}),
    "standardized_ppc8": ("standardized", {"points_per_centroid": 8}),
}


def generate(out: Path, n: int, seed: int = 0, ranks: int = 8) -> dict:
    """Descriptor parts + QA table + embeddings for the kit, metric shards for the release."""
    import pandas as pd
    import pyarrow as pa

    from gdo_utils.descriptors.runner import PART_SCHEMA
    from gdo_utils.io import write_parquet
    from gdo_utils.shards import stable_hash

    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    ids = np.array([f"{'vv' if i % 5 < 2 else 'ov'}::s{i:07d}::t0" for i in range(n)])
    video = np.char.startswith(ids, "vv")
    lv = rng.normal(1.5, 0.5, n)
    lb = lv + rng.normal(0.2, 0.3, n)
    d = {"qa_uid": ids, "amm": np.where(video, rng.gamma(2.0, 1.0, n), 0.0),
         "frame_diversity": np.where(video, rng.uniform(0, 0.3, n), 0.0), "loss_video": lv, "loss_blind": lb,
         "vds": lb - lv, "ppl": np.exp(lv), "tnc": rng.choice([0.0, 0.5, 1.0], n),
         "self_consistency": np.where(rng.random(n) < 0.1, np.nan, rng.uniform(0, 1, n))}
    parts = out / "parts"
    parts.mkdir(parents=True)
    rank = np.array([stable_hash(i) % ranks for i in ids])
    df = pd.DataFrame(d)
    df["tnc_reply"], df["sc_answers"], df["error"] = "Temporal", [["a"] * 5] * n, None
    for r in range(ranks):
        write_parquet(parts / f"rank{r:05d}-part000000.parquet",
                      pa.Table.from_pandas(df[rank == r], schema=PART_SCHEMA, preserve_index=False))
    words = np.array("what is the man doing before after red small left right count video image".split())
    q = [" ".join(rng.choice(words, int(k))) + "?" for k in rng.integers(3, 25, n)]
    a = [" ".join(rng.choice(words, int(k))) for k in rng.integers(1, 12, n)]
    qa = pd.DataFrame({"qa_uid": ids, "question": q, "answer": a, "n_frames": np.where(video, 32, 1),
                       "media_kind": np.where(video, "frames", "image"),
                       "bucket": np.where(video, "short_video", "image_qa")})
    write_parquet(out / "qa.parquet", qa)
    centres = rng.standard_normal((512, 2, 512)).astype(np.float32)
    blob = rng.integers(0, 512, n)
    emb = centres[blob] + 0.5 * rng.standard_normal((n, 2, 512)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=2, keepdims=True)
    np.save(out / "image.npy", emb[:, 0].astype(np.float16))
    np.save(out / "text.npy", emb[:, 1].astype(np.float16))
    shards = out / "release_shards"
    shards.mkdir()
    handles = [open(shards / f"sixd_metrics_rank{r:05d}.jsonl", "w") for r in range(ranks)]
    txt = rng.random((n, 16)).round(4)
    vis = rng.random((n, 6)).round(4)
    for i in range(n):
        m = {"loss_video": float(lv[i]), "loss_blind": float(lb[i]), "vds": float(d["vds"][i]), "ppl": float(d["ppl"][i]),
             "amm": float(d["amm"][i]), "frame_diversity": float(d["frame_diversity"][i]), "tnc_score": float(d["tnc"][i]),
             "text_feat": txt[i].tolist(), "vis_feat": vis[i].tolist()}
        if not np.isnan(d["self_consistency"][i]):
            m["self_consistency"] = float(d["self_consistency"][i])
        handles[rank[i]].write(json.dumps({"qa_uid": str(ids[i]), "video_uid": "", "data_quality_metrics": m}) + "\n")
    for h in handles:
        h.close()
    return {"generate_s": round(time.perf_counter() - t0, 1)}


def child_kit(data: Path, variant: str, k: int, seed: int = 42) -> dict:
    """merge + coverage + level-1 quality with the kit's functions, phase by phase."""
    import pandas as pd

    from gdo_utils.descriptors.coverage import clip_joint_features, cluster_coverage, standardized_features
    from gdo_utils.io import read_parquet
    from gdo_utils.score import level1_quality
    from gdo_utils.shards import merge_parts

    feats_kind, opts = VARIANTS[variant]
    phases = {}
    t = time.perf_counter()
    qa = read_parquet(data / "qa.parquet")
    df = merge_parts(data / "parts", qa["qa_uid"], "qa_uid")
    phases["merge_parts"] = time.perf_counter() - t
    t = time.perf_counter()
    if feats_kind == "clip":
        image = np.load(data / "image.npy", mmap_mode="r")  # fp16, mapped; rows picked inside (as the runner)
        text = np.load(data / "text.npy", mmap_mode="r")
        order = pd.Index(qa["qa_uid"]).get_indexer(df["qa_uid"])
        x = clip_joint_features(image, text, rows=order)
    else:
        x = standardized_features(df, qa.set_index("qa_uid").loc[df["qa_uid"]].reset_index())
    phases["features"] = time.perf_counter() - t
    t = time.perf_counter()
    cov = cluster_coverage(x, k, seed, 20, init="faiss", **opts)
    phases["kmeans_coverage"] = time.perf_counter() - t
    t = time.perf_counter()
    for c in cov.columns:
        df[c] = cov[c].to_numpy()
    df["quality"] = np.asarray(level1_quality(df), dtype=np.float64)
    phases["level1_quality"] = time.perf_counter() - t
    import resource

    import faiss

    import gdo_utils

    ru = resource.getrusage(resource.RUSAGE_SELF)
    digest = hashlib.sha256()
    for c in [*cov.columns, "quality"]:
        digest.update(np.ascontiguousarray(df[c].to_numpy()).tobytes())
    return {"phases_s": {p: round(v, 2) for p, v in phases.items()}, "total_s": round(sum(phases.values()), 2),
            "dim": int(x.shape[1]), "clusters_nonempty": int(df["cluster_id"].nunique()),
            "peak_rss_mb": round(ru.ru_maxrss / 1024), "cpu_s": round(ru.ru_utime + ru.ru_stime, 2),
            "faiss_threads": faiss.omp_get_max_threads(), "sha256": digest.hexdigest(),
            "gdo_utils": str(Path(gdo_utils.__file__).parent.parent)}


def release_run(data: Path, checkout: Path, k: int) -> dict:
    """The release's merge_metrics.py on the same rows; wall time and peak RSS of that process."""
    script = checkout / "gdo" / "merge_metrics.py"
    if not script.is_file():
        raise FileNotFoundError(f"{script} not found: --release must point at a checkout of rujiewu/GDO")
    cmd = [sys.executable, str(script), "--input-dir", str(data / "release_shards"), "--output-jsonl",
           str(data / "release_merged.jsonl"), "--output-report", str(data / "release_report.json"),
           "--cluster-k", str(k), "--no-tqdm"]
    res = run_with_rusage(cmd, checkout)
    return {"total_s": res["wall_s"], "peak_rss_mb": res["peak_rss_mb"]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--k", type=int, default=4096)
    ap.add_argument("--variant", action="append", choices=sorted(VARIANTS), help="kit coverage options (repeatable)")
    ap.add_argument("--release", type=Path, help="checkout of rujiewu/GDO to run its merge_metrics.py beside the kit")
    ap.add_argument("--baseline", type=Path, help="checkout of another commit of the kit to run beside this code")
    ap.add_argument("--repeats", type=int, default=1, help="rounds per variant (with --baseline: alternating)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--results", default=str(ROOT / "bench" / "results" / "merge.json"))
    args = ap.parse_args(argv)
    if args.child == "generate":  # in a child, so the parent stays small (children inherit its peak RSS)
        print(json.dumps(generate(args.data, args.n)))
        return 0
    if args.child:
        print(json.dumps(child_kit(args.data, args.child, args.k)))
        return 0
    variants = args.variant or ["clip_pca64_ppc8", "standardized_ppc8"]
    rows = {}
    with tempfile.TemporaryDirectory(prefix="gdo_bench_merge_") as tmp:
        data = Path(tmp)
        codes = {"this": ROOT} if args.baseline is None else {"baseline": args.baseline.resolve(), "this": ROOT}

        def child(mode: str, code: Path = ROOT) -> dict:
            env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(code), os.environ.get("PYTHONPATH", "")])}
            load = os.getloadavg()[0]
            res = subprocess.run([sys.executable, __file__, "--child", mode, "--data", str(data), "--k", str(args.k),
                                  "--n", str(args.n)], capture_output=True, text=True, env=env)
            if res.returncode != 0:
                raise RuntimeError(res.stderr[-4000:])
            return {**json.loads(res.stdout.strip().splitlines()[-1]), "load_1min": round(load, 1)}
        gen = child("generate")
        for v in variants:
            for r in range(args.repeats):
                order = list(codes) if r % 2 == 0 else list(codes)[::-1]  # who goes first alternates
                for name in order:
                    rows[f"{v}, {name}, round {r + 1}"] = {"variant": v, "code": name, "round": r + 1,
                                                           **child(v, codes[name])}
        rel = release_run(data, args.release, args.k) if args.release else None
    print(f"| merge + level-1 score + coverage, {args.n:,} rows, K = {args.k} | feature dim | load | faiss threads | "
          f"CPU (s), process | merge | features | k-means | quality | total (s) | peak RSS (MB) | sha256 |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for name, r in rows.items():
        p = r["phases_s"]
        print(f"| kit, {name} | {r['dim']} | {r['load_1min']} | {r['faiss_threads']} | {r['cpu_s']} | "
              f"{p['merge_parts']} | {p['features']} | {p['kmeans_coverage']} | {p['level1_quality']} | "
              f"**{r['total_s']}** | {r['peak_rss_mb']} | {r['sha256'][:12]} |")
    for v in variants:
        digests = {r["sha256"] for r in rows.values() if r["variant"] == v}
        print(f"{v}: {'the same bytes in every run' if len(digests) == 1 else 'OUTPUTS DIFFER between runs'}")
    if rel:
        print(f"| release merge_metrics.py (MiniBatchKMeans, one pass) | 27 | | | | | **{rel['total_s']}** | "
              f"{rel['peak_rss_mb']} |")
    write_results(args.results, {"benchmark": "descriptor merge + score + coverage", "n": args.n, "k": args.k,
                                 "generate": gen, "kit": rows, "release": rel})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
