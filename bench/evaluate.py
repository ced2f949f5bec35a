"""Benchmark the evaluation engine: questions/s with batched generation vs one question at a time.

  python bench/evaluate.py --params params/demo.yaml --set output_root=/tmp/bench_eval    # CPU, tiny model
  python bench/evaluate.py --model qwen3vl-2b-random --device cuda --paper-pixels           # GPU: Qwen3-VL-2B config

Questions are the toy MVBench + VideoMME (generated on first use). The tiny model is the demo's; the GPU
mode builds Qwen3-VL-2B-Instruct's architecture with random bf16 weights (no download) and the paper's
frame / pixel contract (fps 1, 4..32 frames, 200704..602112 px per frame). Prints a Markdown table and
writes bench/results/evaluate.json.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gdo_utils.config import load_params  # noqa: E402
from gdo_utils.evaluate import registry  # noqa: E402
from gdo_utils.evaluate.engine import EvalWorker, length_order  # noqa: E402
from gdo_utils.evaluate.stage import load_questions  # noqa: E402
from gdo_utils.models import VLM, ensure_models, load_vlm_from_params  # noqa: E402
from gdo_utils.toyworld import generate_toyworld  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from qwen3vl_configs import QWEN3VL_2B  # noqa: E402


def random_2b(tiny: VLM, device: str) -> VLM:
    """Qwen3-VL-2B with random bf16 weights; the tiny processor's token ids all fit its vocabulary."""
    from transformers import Qwen3VLConfig, Qwen3VLForConditionalGeneration

    tok = tiny.processor.tokenizer
    ids = {t: tok.convert_tokens_to_ids(t) for t in ("<|image_pad|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>")}
    cfg = Qwen3VLConfig(**QWEN3VL_2B, image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
                        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"])
    with torch.device(device):
        model = Qwen3VLForConditionalGeneration(cfg).to(torch.bfloat16).eval()
    return VLM(model, tiny.processor, torch.device(device))


def time_path(vlm: VLM, bench: str, questions: list, cfg, batch: int) -> tuple[float, list[str]]:
    b = registry.get(bench)
    qmap = {q.qid: q for q in questions}
    order = length_order(questions, b, vlm.processor.tokenizer)
    worker = EvalWorker(vlm, b, qmap, cfg)
    t0 = time.perf_counter()
    replies = []
    for i in range(0, len(order), batch):
        replies += [r["reply"] for r in worker(order[i:i + batch])]
    if vlm.device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0, replies


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params/demo.yaml")
    ap.add_argument("--set", action="append", default=[])
    ap.add_argument("--model", choices=["tiny", "qwen3vl-2b-random"], default="tiny")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--n", type=int, default=24, help="questions per benchmark")
    ap.add_argument("--paper-pixels", action="store_true", help="200704..602112 px per frame (the paper's contract)")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "evaluate.json"))
    args = ap.parse_args()
    overrides = list(args.set) + [f"device={args.device}"]
    if args.paper_pixels:
        overrides += ["evaluate.min_pixels=200704", "evaluate.max_pixels=602112"]
    p = load_params(args.params, overrides)
    generate_toyworld(p.toyworld, p.toyworld_dir)
    ensure_models(p)
    vlm = load_vlm_from_params(p)
    if args.model == "qwen3vl-2b-random":
        vlm = random_2b(vlm, args.device)
    rows = []
    for bench in ("mvbench", "videomme"):
        qs = [q for q in load_questions(p, bench) if Path(q.media).exists()][: args.n]
        time_path(vlm, bench, qs[:2], p.evaluate, 2)   # warm-up
        t1, r1 = time_path(vlm, bench, qs, p.evaluate, 1)
        tb, rb = time_path(vlm, bench, qs, p.evaluate, args.batch_size)
        rows.append({"benchmark": bench, "questions": len(qs), "one_at_a_time_s": round(t1, 3),
                     "batched_s": round(tb, 3), "q_per_s_one": round(len(qs) / t1, 2),
                     "q_per_s_batched": round(len(qs) / tb, 2), "speedup": round(t1 / tb, 2),
                     "same_replies": r1 == rb})
    meta = {"model": args.model, "device": args.device, "batch_size": args.batch_size,
            "contract": f"px {p.evaluate.min_pixels}..{p.evaluate.max_pixels}, fps {p.evaluate.fps}, "
                        f"frames {p.evaluate.min_frames}..{p.evaluate.max_frames}",
            "torch": torch.__version__, "threads": torch.get_num_threads(), "python": platform.python_version()}
    print(f"{meta}\n\n| benchmark | questions | one at a time (q/s) | batched (q/s) | speed-up | same replies |")
    print("|---|---:|---:|---:|---:|---|")
    for r in rows:
        print(f"| {r['benchmark']} | {r['questions']} | {r['q_per_s_one']} | {r['q_per_s_batched']} | "
              f"x{r['speedup']} | {r['same_replies']} |")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
