"""Benchmark the OFA stage on CPU at LLaVA-665K scale with random features (no CLIP model).

Times k-means (K=128), the core split, selector training (per epoch), scoring every row and the
selection (least confidence, and the k-DPP diversity stage). Prints a Markdown table and writes
bench/results/ofa.json.

    python bench/ofa.py                 # 665,000 x 1024, 3 epochs
    python bench/ofa.py --n 20000 --epochs 2   # smoke test
"""
from __future__ import annotations

import argparse
import logging
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from gdo_utils.config import OFAConfig
from gdo_utils.ofa.clustering import pseudo_labels
from gdo_utils.ofa.core import split_core
from gdo_utils.ofa.features import joint_features, split_modalities
from gdo_utils.ofa.scoring import score
from gdo_utils.ofa.select import select
from gdo_utils.ofa.train import train_selector

log = logging.getLogger("bench.ofa")
RESULTS = Path(__file__).resolve().parent / "results" / "ofa.json"


def random_features(n: int, dim: int, seed: int, chunk: int = 65_536) -> np.ndarray:
    """Joint features of n random unit image/text vectors (dim each), built in chunks to bound memory."""
    rng = np.random.default_rng(seed)
    x = np.empty((n, 2 * dim), dtype=np.float32)
    for s in range(0, n, chunk):
        m = min(chunk, n - s)
        x[s:s + m] = joint_features(rng.standard_normal((m, dim), dtype=np.float32),
                                    rng.standard_normal((m, dim), dtype=np.float32))
    return x


def timed(fn, *args, **kw):
    """(result, seconds) of one call."""
    t0 = time.perf_counter()
    out = fn(*args, **kw)
    return out, time.perf_counter() - t0


def clip_embedding_rate(n_images: int, arch: str = "ViT-B-32", batch: int = 32) -> dict:
    """Images and texts per second of an open_clip model (random init, offline) on this CPU.

    Weights do not change the cost, so a randomly initialised ViT-B/32 times the real embedding step;
    the 665K figure is extrapolated from `n_images` synthetic 224x224 images and their questions.
    """
    import open_clip
    from PIL import Image

    model, _, preprocess = open_clip.create_model_and_transforms(arch, pretrained=None)
    tokenizer = open_clip.get_tokenizer(arch)
    model.eval()
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 255, (224, 224, 3), dtype=np.uint8)) for _ in range(n_images)]
    texts = [f"What colour is object {i} in the image? Describe it." for i in range(n_images)]
    with torch.no_grad():
        model.encode_image(torch.stack([preprocess(im) for im in images[:2]]))  # warm-up
        t0 = time.perf_counter()
        for s in range(0, n_images, batch):
            model.encode_image(torch.stack([preprocess(im) for im in images[s:s + batch]]))
        t_img = time.perf_counter() - t0
        t0 = time.perf_counter()
        for s in range(0, n_images, batch):
            model.encode_text(tokenizer(texts[s:s + batch]))
        t_txt = time.perf_counter() - t0
    return {"arch": arch, "n_images": n_images, "images_per_s": n_images / t_img, "texts_per_s": n_images / t_txt}


def run(n: int, dim: int, k: int, epochs: int, seed: int, diversity: bool) -> dict:
    """Run every timed step once and return the measurements."""
    cfg = OFAConfig(k=k, epochs=epochs, checkpoint_policy="last")
    x, t_feat = timed(random_features, n, dim, seed)
    km, t_km = timed(pseudo_labels, x, k, seed, cfg.kmeans_niter)
    split, t_core = timed(split_core, km.labels, km.distances, k, cfg.core_ratio, cfg.core_min, cfg.val_ratio, seed)
    v_img, v_txt = split_modalities(x, dim)
    res, t_train = timed(train_selector, v_img, v_txt, km.labels, split, cfg, k, seed, "cpu", False)
    s, t_score = timed(score, res.model, v_img, v_txt, 8192, "cpu")
    sel, t_sel = timed(select, s.conf, km.labels, k, cfg.budget_ratio, progress=False)
    out = {
        "n": n, "dim_per_modality": dim, "k": k, "epochs": epochs, "seed": seed,
        "n_core_train": int(len(split.train)), "n_core_val": int(len(split.val)), "n_selected": int(len(sel.indices)),
        "seconds": {"features": t_feat, "kmeans": t_km, "core_split": t_core, "train_total": t_train,
                    "train_per_epoch": res.epoch_seconds, "score": t_score, "select_least_confident": t_sel},
        "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "platform": platform.platform(),
                    "processor": platform.processor(), "torch": torch.__version__},
    }
    if diversity:
        sel_d, t_div = timed(select, s.conf, km.labels, k, cfg.budget_ratio, x=x, diversity=True,
                             block=cfg.dpp_block, seed=seed, progress=False)
        out["seconds"]["select_kdpp"] = t_div
        out["n_selected_kdpp"] = int(len(sel_d.indices))
    return out


def markdown(r: dict) -> str:
    """The measurements as a Markdown table."""
    s = r["seconds"]
    per_epoch = np.asarray(s["train_per_epoch"])
    rows = [("random features", s["features"]), (f"k-means (K={r['k']})", s["kmeans"]), ("core split", s["core_split"]),
            (f"training, {r['epochs']} epochs (core {r['n_core_train']})", s["train_total"]),
            ("training, mean per epoch", float(per_epoch.mean())), (f"scoring {r['n']:,} rows", s["score"]),
            (f"selection, least confidence ({r['n_selected']:,})", s["select_least_confident"])]
    if "select_kdpp" in s:
        rows.append(("selection, k-DPP diversity", s["select_kdpp"]))
    if "clip" in r:
        c = r["clip"]
        rows.insert(0, (f"CLIP {c['arch']} embedding of {r['n']:,} images + texts (extrapolated from "
                        f"{c['n_images']}: {c['images_per_s']:.1f} img/s, {c['texts_per_s']:.1f} txt/s)",
                        r["n"] / c["images_per_s"] + r["n"] / c["texts_per_s"]))
    head = f"OFA on CPU: n = {r['n']:,}, {2 * r['dim_per_modality']}-d joint features, {r['machine']['cpus']} CPUs\n\n"
    return head + "| step | seconds |\n|---|---:|\n" + "\n".join(f"| {a} | {b:.2f} |" for a, b in rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=665_000, help="rows (default: LLaVA-665K scale)")
    ap.add_argument("--dim", type=int, default=512, help="dimension per modality (joint = 2x)")
    ap.add_argument("--k", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--no-diversity", action="store_true", help="skip timing the k-DPP stage")
    ap.add_argument("--embed-sample", type=int, default=128,
                    help="images timed through a random-init CLIP ViT-B/32 to extrapolate the embedding step (0: skip)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    r = run(args.n, args.dim, args.k, args.epochs, args.seed, not args.no_diversity)
    if args.embed_sample:
        r["clip"] = clip_embedding_rate(args.embed_sample)
    from gdo_utils.io import write_json

    write_json(args.out, r)
    log.info("wrote %s", args.out)
    print(markdown(r))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
