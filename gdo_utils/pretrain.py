"""The demo's base model: the tiny VLM taught the toy world's vision and language before any selection run.

The papers fine-tune a pretrained, instruction-tuned VLM; a randomly initialised tiny model cannot learn
anything from a few hundred selected samples, so every comparison would sit at chance. With
`models.pretrain.enabled` the tiny Qwen3-VL (gdo_utils.models.build_tiny_vlm) is first trained on the toy
world's base corpus (gdo_utils.toyworld.base_corpus: held-out still images and static clips, colour,
count, presence, left / right; never motion, order or change), with the kit's own training stage
(gdo_utils.train: transformers Trainer, the same collator and labels as every fine-tuning run), and the
trained weights become `models.vlm.path`, the base every later stage uses.

    outputs/<run>/pretrain/
      subsets/base_corpus/train.jsonl   the corpus rows (absolute media paths), minus the held-out rows
      held_out.jsonl                    the fixed held-out rows (never trained on)
      train/base_corpus/                the training run folder (gdo_utils.train layout)
      held_out.json                     accuracy of the initial and the trained model on the held-out rows
      manifest.json

Held-out accuracy is exact-match of greedy decoding, computed in one teacher-forced pass: a reply equals
the reference answer (and its end-of-turn token) exactly when the argmax at every answer position is
the reference token. Accuracies are in percent with 95% Wilson intervals (gdo_utils.binomial);
multiple-choice rows (letters A-D) have chance level 25%.
"""
from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

from .binomial import chance_level, wilson_interval
from .config import Params, TrainConfig, params_hash, resolve_path
from .io import read_json, sha256_file, write_json, write_jsonl, write_manifest

log = logging.getLogger(__name__)
SUBSET = "base_corpus"
MODEL_FILES = ("config.json", "generation_config.json", "model.safetensors")


def corpus_rows(params: Params) -> list[dict]:
    """The toy world's base-corpus rows with absolute media paths (the training-file contract)."""
    path = resolve_path(params, params.models.pretrain.corpus, "models.pretrain.corpus")
    if not path.is_file():
        raise FileNotFoundError(f"{path} (models.pretrain.corpus) not found: set toyworld.n_base_corpus > 0 and "
                                "generate the toy world first (notebook 00 / gdo-repro toyworld)")
    root = params.toyworld_dir.resolve()
    rows = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                obj = json.loads(line)
                obj["images"] = [str((root / p).resolve()) for p in obj["images"]]
                rows.append(obj)
    return rows


def split_rows(rows: list[dict], held_out: int) -> tuple[list[dict], list[dict]]:
    """The last `held_out` rows are the fixed held-out set; the rest are trained on."""
    if held_out >= len(rows):
        raise ValueError(f"models.pretrain.held_out={held_out} leaves no training rows ({len(rows)} corpus rows)")
    return rows[: len(rows) - held_out], rows[len(rows) - held_out:]


def pretrain_params(params: Params, init_dir: Path) -> Params:
    """Params whose run folder is outputs/<run>/pretrain and whose train section is the pretraining recipe."""
    from pydantic import ValidationError

    over = dict(params.models.pretrain.train)
    try:
        train = TrainConfig.model_validate({**params.train.model_dump(mode="python", exclude={"runs", "run_overrides"}),
                                            **over, "runs": [SUBSET], "base_model": str(init_dir.resolve())})
    except ValidationError as err:
        e = err.errors()[0]
        raise ValueError(f"{params.source_file}: models.pretrain.train.{'.'.join(map(str, e['loc']))}: "
                         f"{e['msg']}") from None
    return params.model_copy(update={"output_root": str(params.run_dir.resolve()), "run_name": "pretrain",
                                     "train": train})


def held_out_accuracy(model_dir: str | Path, rows: list[dict], min_pixels: int, max_pixels: int,
                      batch_size: int = 16) -> dict:
    """Exact-match accuracy of greedy replies on `rows` (one teacher-forced pass), overall and per format."""
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from .train.collate import Collator, pad_and_concat
    from .train.encode import IGNORE_INDEX, EncodeSettings, load_media
    from .train.families import family_of_model_path
    from .train.records import parse_c1_row

    proc = AutoProcessor.from_pretrained(str(model_dir))
    proc.tokenizer.padding_side = "right"
    family = family_of_model_path(str(model_dir))
    settings = EncodeSettings(min_pixels=min_pixels, max_pixels=max_pixels)
    collator = Collator(proc, family, settings)
    model = AutoModelForImageTextToText.from_pretrained(str(model_dir), attn_implementation="eager").eval()
    hits: dict[str, list[bool]] = {"mcq": [], "open": []}
    for i in range(0, len(rows), batch_size):
        recs = [parse_c1_row(r, "held_out", i + j) for j, r in enumerate(rows[i:i + batch_size])]
        batch = pad_and_concat([collator.encode(r, load_media(r, settings, family)) for r in recs],
                               proc.tokenizer.pad_token_id)
        labels = batch.pop("labels")
        with torch.no_grad():
            pred = model(**batch).logits.argmax(-1)
        for j, rec in enumerate(recs):
            mask = labels[j, 1:] != IGNORE_INDEX
            ok = bool((pred[j, :-1][mask] == labels[j, 1:][mask]).all())
            answer = rec.messages[-1]["content"]
            hits["mcq" if len(answer) == 1 and answer in "ABCD" else "open"].append(ok)
    out: dict[str, Any] = {}
    for name, h in [("all", hits["mcq"] + hits["open"]), *hits.items()]:
        k, n = sum(h), len(h)
        acc = 100.0 * k / n if n else float("nan")
        out[name] = {"n": n, "correct": k, "accuracy": acc, "ci95": list(wilson_interval(acc, n))}
    out["mcq"]["chance"] = chance_level([4] * len(hits["mcq"]))
    return out


def pretrain_hash(params: Params) -> str:
    """Key of the trained base: the pretraining settings, the corpus bytes, the seed and the code."""
    from .cache import code_version

    corpus = resolve_path(params, params.models.pretrain.corpus, "models.pretrain.corpus")
    return params_hash({"pretrain": params.models.pretrain.model_dump(mode="json"), "train": params.train.model_dump(
        mode="json", exclude={"runs", "run_overrides"}), "seed": params.seed, "corpus": sha256_file(corpus),
        "code": code_version(["gdo_utils.pretrain"])})


def pretrain_base(params: Params, init_dir: Path, out_dir: Path) -> dict:
    """Train the tiny VLM in `init_dir` on the base corpus with the kit's trainer; save the result in `out_dir`."""
    from .train.run import train_subset

    t0 = time.time()
    root = params.stage_dir("pretrain")
    rows = corpus_rows(params)
    train_rows, held = split_rows(rows, params.models.pretrain.held_out)
    sub = pretrain_params(params, init_dir)
    write_jsonl(sub.stage_dir("subsets", SUBSET, "train.jsonl"), train_rows)
    write_jsonl(root / "held_out.jsonl", held)
    info = train_subset(sub, SUBSET)
    last = sub.stage_dir("train", SUBSET, info["checkpoints"][-1]["name"])
    out_dir.mkdir(parents=True, exist_ok=True)
    for f in init_dir.iterdir():       # processor and tokenizer files come from the initial model
        if f.is_file() and f.name not in MODEL_FILES:
            shutil.copy2(f, out_dir / f.name)
    for name in MODEL_FILES:
        shutil.copy2(last / name, out_dir / name)
    report = {"corpus_rows": len(rows), "trained_rows": len(train_rows), "held_out_rows": len(held),
              "steps": info.get("steps"), "checkpoint": last.name,
              "held_out_initial": held_out_accuracy(init_dir, held, sub.train.min_pixels, sub.train.max_pixels),
              "held_out_trained": held_out_accuracy(out_dir, held, sub.train.min_pixels, sub.train.max_pixels),
              "seconds": round(time.time() - t0, 1)}
    write_json(root / "held_out.json", report)
    write_manifest(root, stage="pretrain", params_hash=pretrain_hash(params), params_file=params.source_file,
                   wall_time_s=time.time() - t0, outputs=[root / "held_out.json", out_dir / "model.safetensors"])
    log.info("base model trained on %d rows in %.0fs: held-out accuracy %.1f%% -> %.1f%%", len(train_rows),
             time.time() - t0, report["held_out_initial"]["all"]["accuracy"],
             report["held_out_trained"]["all"]["accuracy"])
    return report


def load_pretrain_report(params: Params) -> dict | None:
    """held_out.json of the pretraining stage, or None when the base model was not pretrained."""
    f = params.stage_dir("pretrain", "held_out.json")
    return read_json(f) if f.is_file() else None


def held_out_table(report: dict | None):
    """Held-out accuracy of the initial and the trained base model: n, accuracy, 95% Wilson interval, chance."""
    import pandas as pd

    if report is None:
        return "models.pretrain is off: the base model is the randomly initialised tiny VLM"
    rows = []
    for model in ("initial", "trained"):
        for part, r in report[f"held_out_{model}"].items():
            rows.append({"model": model, "questions": part, "n": r["n"], "accuracy": r["accuracy"],
                         "ci95_low": r["ci95"][0], "ci95_high": r["ci95"][1], "chance": r.get("chance")})
    return pd.DataFrame(rows).round(3)
