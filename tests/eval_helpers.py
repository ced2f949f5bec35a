"""Test helpers for the evaluation stage: C2 training-run folders made from the tiny model (no training)."""
from __future__ import annotations

import json
from pathlib import Path

import torch


def make_c2_run(tiny_dir: Path, run_root: Path, subset: str, samples: tuple[int, ...] = (8, 16)) -> Path:
    """outputs/<run>/train/<subset>/ with run_info.json and one checkpoint per sample count.

    Each checkpoint is the tiny model with its LM head scaled (so replies differ between checkpoints),
    saved with save_pretrained together with the processor, as the training stage does.
    """
    from transformers import AutoModelForImageTextToText, AutoProcessor

    folder = run_root / "train" / subset
    folder.mkdir(parents=True, exist_ok=True)
    cks = []
    for step, n in enumerate(samples, 1):
        model = AutoModelForImageTextToText.from_pretrained(str(tiny_dir), dtype=torch.float32)
        with torch.no_grad():
            g = torch.Generator().manual_seed(n)
            model.lm_head.weight.add_(0.05 * torch.randn(model.lm_head.weight.shape, generator=g))
        out = folder / f"checkpoint-{n}"
        model.save_pretrained(out)
        AutoProcessor.from_pretrained(str(tiny_dir)).save_pretrained(out)
        cks.append({"name": f"checkpoint-{n}", "samples_seen": n, "step": step})
    info = {"subset": subset, "train_file": str(run_root / "subsets" / subset / "train.jsonl"),
            "base_model": str(tiny_dir), "family": "qwen3_vl", "global_batch": 8, "n_train": samples[-1],
            "lora": False, "finished": True, "checkpoints": cks}
    (folder / "run_info.json").write_text(json.dumps(info, indent=2))
    return folder
