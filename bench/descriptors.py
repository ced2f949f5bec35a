"""Benchmark the GDO descriptor stages: candidates/s per stage, batched path vs a one-at-a-time path.

The one-at-a-time path mirrors the release: per candidate, two separate loss passes (with and without
the visuals), one TNC generate call, and five separate sampling calls for SC. The batched path is the
kit's: padded batches, per-sample losses from the logits, one TNC generate per batch, one SC
generate per batch with num_return_sequences=5.

  python bench/descriptors.py --params params/demo.yaml              # CPU, tiny model, demo pool
  python bench/descriptors.py --model qwen3vl-8b-random --device cuda  # GPU: Qwen3-VL-8B config, random weights

Prints a Markdown table and writes bench/results/descriptors.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gdo_utils.config import load_params  # noqa: E402
from gdo_utils.descriptors.model_based import dependence, sample_answers, tnc_llm  # noqa: E402
from gdo_utils.descriptors.motion import motion_descriptors  # noqa: E402
from gdo_utils.media import load_frames, subsample  # noqa: E402
from gdo_utils.models import VLM, ensure_models, load_vlm_from_params  # noqa: E402
from gdo_utils.pool import load_pool, run_pool_stage  # noqa: E402
from gdo_utils.vlm_batch import VLMSample, answer_losses, generate, to_pil  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from qwen3vl_configs import QWEN3VL_8B  # noqa: E402


def big_random_vlm(tiny: VLM, device: str) -> VLM:
    """Qwen3-VL-8B shapes with random bf16 weights (no download); the tiny processor feeds it."""
    from transformers import Qwen3VLConfig, Qwen3VLForConditionalGeneration

    tok = tiny.tokenizer
    cfg = Qwen3VLConfig(**QWEN3VL_8B, image_token_id=tok.convert_tokens_to_ids("<|image_pad|>"),
                        video_token_id=tok.convert_tokens_to_ids("<|video_pad|>"),
                        vision_start_token_id=tok.convert_tokens_to_ids("<|vision_start|>"),
                        vision_end_token_id=tok.convert_tokens_to_ids("<|vision_end|>"))
    torch.set_default_dtype(torch.bfloat16)
    with torch.device(device):
        model = Qwen3VLForConditionalGeneration(cfg)
    torch.set_default_dtype(torch.float32)
    model.eval()
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    return VLM(model, tiny.processor, torch.device(device))


def timed(fn, sync: bool) -> float:
    if sync:
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    fn()
    if sync:
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params/demo.yaml")
    ap.add_argument("--set", action="append", default=[])
    ap.add_argument("--n", type=int, default=32, help="candidates (videos first) to time")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--frames", type=int, default=8, help="frames per video given to the model")
    ap.add_argument("--sc-tokens", type=int, default=16)
    ap.add_argument("--model", choices=["params", "qwen3vl-8b-random"], default="params")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default="bench/results/descriptors.json")
    args = ap.parse_args()

    p = load_params(args.params, args.set)
    run_pool_stage(p)
    ensure_models(p)
    vlm = load_vlm_from_params(p)
    if args.model == "qwen3vl-8b-random":
        vlm = big_random_vlm(vlm, args.device)
    sync = vlm.device.type == "cuda"
    qa = load_pool(p).sort_values(["bucket", "qa_uid"], ascending=[False, True]).head(args.n)
    frames = [load_frames(list(r.media), list(r.frame_indices)) for r in qa.itertuples()]
    samples = [VLMSample(r.question, r.answer, to_pil(subsample(f, args.frames))) for r, f in zip(qa.itertuples(), frames)]
    ids = list(qa["qa_uid"])
    n, bs = len(samples), args.batch_size
    batches = [range(i, min(i + bs, n)) for i in range(0, n, bs)]
    rows = []

    def record(stage: str, path: str, seconds: float) -> None:
        rows.append({"stage": stage, "path": path, "seconds": round(seconds, 3), "candidates_per_s": round(n / seconds, 2)})

    record("motion (AMM)", "per candidate", timed(lambda: [motion_descriptors(f) for f in frames], False))
    # warm-up (kernels, allocator)
    dependence(vlm, samples[:2])
    record("VDS/PPL (2 losses)", "batched", timed(lambda: [dependence(vlm, [samples[i] for i in b]) for b in batches], sync))
    record("VDS/PPL (2 losses)", "one at a time", timed(lambda: [(answer_losses(vlm, [s], True),
                                                                    answer_losses(vlm, [VLMSample(s.question, s.answer)], False))
                                                                   for s in samples], sync))
    record("TNC (llm)", "batched", timed(lambda: [tnc_llm(vlm, [samples[i].question for i in b]) for b in batches], sync))
    record("TNC (llm)", "one at a time", timed(lambda: [tnc_llm(vlm, [s.question]) for s in samples], sync))
    record("SC (5 samples)", "batched", timed(lambda: [sample_answers(vlm, [samples[i] for i in b], [ids[i] for i in b],
                                                                      max_new_tokens=args.sc_tokens) for b in batches], sync))
    record("SC (5 samples)", "one at a time", timed(lambda: [[generate(vlm, [s], True, max_new_tokens=args.sc_tokens,
                                                                      do_sample=True, top_p=0.9, temperature=0.8)
                                                             for _ in range(5)] for s in samples], sync))
    by = {(r["stage"], r["path"]): r["seconds"] for r in rows}
    for stage in ("VDS/PPL (2 losses)", "TNC (llm)", "SC (5 samples)"):
        rows.append({"stage": stage, "path": "speed-up (one at a time / batched)",
                     "seconds": None, "candidates_per_s": round(by[(stage, "one at a time")] / by[(stage, "batched")], 2)})
    total_b = sum(by[(s, "batched")] for s in ("VDS/PPL (2 losses)", "TNC (llm)", "SC (5 samples)"))
    total_1 = sum(by[(s, "one at a time")] for s in ("VDS/PPL (2 losses)", "TNC (llm)", "SC (5 samples)"))
    machine = {"platform": platform.platform(), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
               "device": str(vlm.device), "gpu": torch.cuda.get_device_name(0) if sync else None,
               "model": args.model, "params_m": round(sum(x.numel() for x in vlm.model.parameters()) / 1e6, 2),
               "load_avg_1min": os.getloadavg()[0]}
    result = {"n": n, "batch_size": bs, "frames": args.frames, "sc_tokens": args.sc_tokens, "machine": machine,
              "rows": rows, "model_stages_speedup": round(total_1 / total_b, 2)}
    print(f"\n{n} candidates ({int((qa['bucket'] == 'short_video').sum())} videos), batch {bs}, {args.frames} frames, "
          f"model {args.model} ({machine['params_m']} M params) on {machine['device']}\n")
    print("| stage | path | seconds | candidates/s |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['stage']} | {r['path']} | {r['seconds'] if r['seconds'] is not None else ''} | {r['candidates_per_s']} |")
    print(f"\nmodel stages together: batched {total_b:.2f}s vs one at a time {total_1:.2f}s -> x{total_1 / total_b:.2f}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
