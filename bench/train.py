"""Training throughput of one GPU (or CPU with --tiny): samples/s, tokens/s, peak memory, MFU.

A randomly initialised model with Qwen3-VL-2B-Instruct's public config (values below, from the model's
config.json) runs forward + backward + AdamW steps on the paper's training shapes: one row of 32 frames at
50176 px (224 x 224 -> 14 x 14 patches of 16 px -> 49 tokens per frame after the 2 x 2 merge) plus a
question and answer, per-device batch 1, bf16, gradient checkpointing. Variants: attention sdpa vs
flash-attention-2, Liger kernels on vs off.

MFU = 6 x (LLM params x LLM tokens + vision params x vision patches) / step time / peak bf16 FLOP/s
(--peak-tflops, default 989 for H100/H200 SXM dense bf16). `--tiny` uses a tiny config on CPU so the script
itself is tested without a GPU; its MFU is not meaningful (CPU peak is not known) and is left empty.

    python bench/train.py --tiny                          # CPU smoke run
    python bench/train.py --attn sdpa flash_attention_2 --liger off on   # on one GPU
    python bench/train.py --model 8b --text-layers 18 --fsdp   # one FSDP2 step of the 8B shapes (half its LLM layers)

`--fsdp` wraps the model as the trainer's FSDP config does (fully_shard per Qwen3VLTextDecoderLayer and
Qwen3VLVisionBlock, then the root; one process unless run under torchrun). `--model 8b` with all 36 LLM
layers does not fit one 80 GB GPU with AdamW states; `--text-layers` keeps the layer shapes and cuts the
count, and MFU counts the parameters that ran.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from qwen3vl_configs import CONFIGS, with_text_layers  # noqa: E402

TOKEN_IDS = dict(image_token_id=151655, video_token_id=151656, vision_start_token_id=151652,
                 vision_end_token_id=151653)
TINY = dict(
    text_config=dict(vocab_size=1024, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                     num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=8192,
                     rope_parameters=dict(rope_type="default", rope_theta=10000.0, mrope_section=[4, 2, 2],
                                          mrope_interleaved=True)),
    vision_config=dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, patch_size=16,
                       spatial_merge_size=2, temporal_patch_size=2, out_hidden_size=64, num_position_embeddings=64,
                       deepstack_visual_indexes=[0]),
    image_token_id=1000, video_token_id=1001, vision_start_token_id=1002, vision_end_token_id=1003)


def batch(cfg, frames: int, side: int, text_tokens: int, answer_tokens: int, device) -> dict:
    """One row: `frames` images of side x side px, each <|vision_start|> + pads + <|vision_end|>, then text."""
    vc = cfg.vision_config
    g = side // vc.patch_size                      # patches per side
    per = g * g // (vc.spatial_merge_size ** 2)    # tokens per frame
    ids = []
    for _ in range(frames):
        ids += [cfg.vision_start_token_id] + [cfg.image_token_id] * per + [cfg.vision_end_token_id]
    gen = torch.Generator().manual_seed(0)
    ids += torch.randint(10, 900, (text_tokens + answer_tokens,), generator=gen).tolist()
    ids = torch.tensor([ids])
    labels = torch.full_like(ids, -100)
    labels[0, -answer_tokens:] = ids[0, -answer_tokens:]
    patch_dim = 3 * vc.temporal_patch_size * vc.patch_size ** 2
    return {"input_ids": ids.to(device), "attention_mask": torch.ones_like(ids).to(device), "labels": labels.to(device),
            "mm_token_type_ids": (ids == cfg.image_token_id).long().to(device),
            "pixel_values": torch.randn(frames * g * g, patch_dim, generator=gen).to(device),
            "image_grid_thw": torch.tensor([[1, g, g]] * frames).to(device)}


def fsdp_wrap(model, device: str):
    """FSDP2 as the trainer wraps Qwen3-VL: each decoder layer and vision block, then the root (world size from torchrun)."""
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    if not dist.is_initialized():
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ.setdefault("MASTER_PORT", "29531")
        dist.init_process_group("nccl" if device == "cuda" else "gloo", rank=int(os.environ.get("RANK", 0)),
                                world_size=int(os.environ.get("WORLD_SIZE", 1)))
    mesh = init_device_mesh(device, (dist.get_world_size(),))
    for m in model.modules():
        if type(m).__name__ in ("Qwen3VLTextDecoderLayer", "Qwen3VLVisionBlock"):
            fully_shard(m, mesh=mesh)
    fully_shard(model, mesh=mesh)
    return model


def run(cfg_dict: dict, attn: str, liger: bool, steps: int, warmup: int, frames: int, side: int, device: str,
        peak_tflops: float | None, fsdp: bool = False, name: str = "") -> dict:
    from transformers import Qwen3VLConfig, Qwen3VLForConditionalGeneration

    dev = torch.device(device)
    cfg = Qwen3VLConfig(**cfg_dict)
    dtype = torch.bfloat16 if dev.type == "cuda" else torch.float32
    with torch.device(dev):
        model = Qwen3VLForConditionalGeneration._from_config(cfg, attn_implementation=attn, dtype=dtype)
    if liger:
        from liger_kernel.transformers import _apply_liger_kernel_to_instance
        _apply_liger_kernel_to_instance(model=model)
    model.gradient_checkpointing_enable({"use_reentrant": False})
    model.config.use_cache = False
    model.train()
    n_vis = sum(p.numel() for n, p in model.named_parameters() if ".visual." in f".{n}")
    n_llm = sum(p.numel() for p in model.parameters()) - n_vis
    if fsdp:
        model = fsdp_wrap(model, dev.type)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5, betas=(0.9, 0.95), foreach=dev.type == "cuda")
    b = batch(cfg, frames, side, text_tokens=64, answer_tokens=32, device=dev)
    tokens, patches = b["input_ids"].numel(), b["pixel_values"].shape[0]
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = []
    for i in range(warmup + steps):
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        loss = model(**b).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    step = sum(times) / len(times)
    flops = 6 * (n_llm * tokens + n_vis * patches)
    return {"model": name, "fsdp": fsdp, "layers": cfg.text_config.num_hidden_layers, "attn": attn, "liger": liger,
            "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
            "params_llm": n_llm, "params_vision": n_vis, "tokens_per_sample": tokens, "patches_per_sample": patches,
            "step_s": round(step, 4), "samples_per_s": round(1 / step, 3), "tokens_per_s": round(tokens / step, 1),
            "peak_mem_gib": round(torch.cuda.max_memory_allocated(dev) / 2**30, 2) if dev.type == "cuda" else None,
            "mfu": round(flops / step / (peak_tflops * 1e12), 4) if peak_tflops else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiny", action="store_true", help="tiny config on CPU (checks the script, MFU left empty)")
    ap.add_argument("--attn", nargs="+", default=["sdpa"], choices=["sdpa", "flash_attention_2", "eager"])
    ap.add_argument("--liger", nargs="+", default=["off"], choices=["off", "on"])
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--frames", type=int, default=32)
    ap.add_argument("--side", type=int, default=224, help="frame side in px (224*224 = 50176)")
    ap.add_argument("--peak-tflops", type=float, default=989.0, help="peak dense bf16 TFLOP/s of the GPU")
    ap.add_argument("--model", choices=sorted(CONFIGS), default="2b", help="Qwen3-VL-Instruct architecture")
    ap.add_argument("--text-layers", type=int, help="cut the LLM to this many decoder layers (same shapes)")
    ap.add_argument("--fsdp", action="store_true", help="wrap with FSDP2 as the trainer does (one process or torchrun)")
    ap.add_argument("--out", help="write the results as JSON lines here")
    a = ap.parse_args()
    device = "cpu" if a.tiny or not torch.cuda.is_available() else "cuda"
    cfg = TINY if a.tiny else {**with_text_layers(CONFIGS[a.model], a.text_layers), **TOKEN_IDS}
    name = "tiny" if a.tiny else f"qwen3vl-{a.model}"
    peak = None if device == "cpu" else a.peak_tflops
    rows = [run(cfg, attn, lg == "on", a.steps, a.warmup, a.frames, a.side, device, peak, a.fsdp, name)
            for attn, lg in itertools.product(a.attn, a.liger)]
    for r in rows:
        print(json.dumps(r))
    if a.out:
        with open(a.out, "w") as fh:
            fh.writelines(json.dumps(r) + "\n" for r in rows)


if __name__ == "__main__":
    main()
