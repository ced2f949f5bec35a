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
      subsets/curriculum_<k>/, train/curriculum_<k>/, held_out_curriculum_<k>.jsonl, stages/curriculum_<k>/
                                        the same per curriculum stage (models.pretrain.curriculum), trained in
                                        order before the corpus, each from the previous stage's weights
      held_out.json                     accuracy of the initial and the trained model on the held-out rows,
                                        overall, lettered / open and per question type; every stage's own
      manifest.json

Held-out accuracy is exact-match of greedy decoding, computed in one teacher-forced pass: a reply equals
the reference answer (and its end-of-turn token) exactly when the argmax at every answer position is
the reference token. Accuracies are in percent with 95% Wilson intervals (gdo_utils.binomial);
multiple-choice rows (letters A-D) have chance level 1 / (their number of options), 25-33%.
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


def read_rows(params: Params, spec: str, field: str) -> list[dict]:
    """Rows of a corpus file (media relative to the toy world) with absolute media paths (the training-file contract)."""
    path = resolve_path(params, spec, field)
    if not path.is_file():
        raise FileNotFoundError(f"{path} ({field}) not found: set toyworld.n_base_corpus > 0 (the corpus) or "
                                "toyworld.base_skills (the drills) and generate the toy world first (notebook 00 / "
                                "gdo-repro toyworld)")
    root = params.toyworld_dir.resolve()
    rows = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                obj = json.loads(line)
                obj["images"] = [str((root / p).resolve()) for p in obj["images"]]
                rows.append(obj)
    return rows


def corpus_rows(params: Params) -> list[dict]:
    """The toy world's base-corpus rows with absolute media paths."""
    return read_rows(params, params.models.pretrain.corpus, "models.pretrain.corpus")


def split_rows(rows: list[dict], held_out: int, field: str = "models.pretrain.corpus") -> tuple[list[dict], list[dict]]:
    """The last `held_out` rows are the fixed held-out set; the rest are trained on."""
    if held_out >= len(rows):
        raise ValueError(f"models.pretrain.held_out={held_out} leaves no training rows ({len(rows)} rows in {field})")
    return rows[: len(rows) - held_out], rows[len(rows) - held_out:]


def stages_of(params: Params) -> list[tuple[str, list[str], list[str], dict, str]]:
    """(run name, corpus files, their config fields, train overrides, the overrides' field) of every stage: the
    curriculum in order, then the corpus."""
    pre = params.models.pretrain
    out = []
    for k, st in enumerate(pre.curriculum):
        specs = [st.corpus] if isinstance(st.corpus, str) else list(st.corpus)
        fields = [f"models.pretrain.curriculum[{k}].corpus"] if isinstance(st.corpus, str) else \
            [f"models.pretrain.curriculum[{k}].corpus[{j}]" for j in range(len(specs))]
        out.append((f"curriculum_{k}", specs, fields, dict(st.train), f"models.pretrain.curriculum[{k}].train"))
    return out + [(SUBSET, [pre.corpus], ["models.pretrain.corpus"], dict(pre.train), "models.pretrain.train")]


def stage_rows(params: Params, specs: list[str], fields: list[str], held_out: int) -> tuple[int, list, list]:
    """A stage's row count, training rows and held-out rows: each file keeps its last rows of an even share of
    `held_out` (the first files one more when it does not divide), so every file's skill is measured."""
    total, train, held = 0, [], []
    for j, (spec, field) in enumerate(zip(specs, fields)):
        rows = read_rows(params, spec, field)
        tr, ho = split_rows(rows, held_out // len(specs) + (j < held_out % len(specs)), field)
        total, train, held = total + len(rows), train + tr, held + ho
    return total, train, held


def pretrain_params(params: Params, init_dir: Path, name: str = SUBSET, over: dict | None = None,
                    field: str = "models.pretrain.train") -> Params:
    """Params whose run folder is outputs/<run>/pretrain and whose train section is one stage's recipe."""
    from pydantic import ValidationError

    over = dict(params.models.pretrain.train if over is None else over)
    try:
        train = TrainConfig.model_validate({**params.train.model_dump(mode="python", exclude={"runs", "run_overrides"}),
                                            **over, "runs": [name], "base_model": str(init_dir.resolve())})
    except ValidationError as err:
        e = err.errors()[0]
        raise ValueError(f"{params.source_file}: {field}.{'.'.join(map(str, e['loc']))}: {e['msg']}") from None
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
    from .toyworld.base_corpus import option_count, question_type

    hits: dict[str, list[bool]] = {"mcq": [], "open": []}
    options: list[int] = []
    by_type: dict[str, list[bool]] = {}
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
            lettered = len(answer) == 1 and answer in "ABCD"
            hits["mcq" if lettered else "open"].append(ok)
            if lettered:
                options.append(option_count(rec.messages[0]["content"]))
                if not options[-1]:
                    raise ValueError(f"held-out row {i + j}: the answer is a letter ({answer}) but the question lists "
                                     "no lettered options")
            by_type.setdefault(question_type(rec.messages[0]["content"]), []).append(ok)
    out: dict[str, Any] = {name: _share(h) for name, h in [("all", hits["mcq"] + hits["open"]), *hits.items()]}
    out["mcq"]["chance"] = chance_level(options)   # 1 / options of each lettered row (the letter drill has 3 or 4)
    out["by_type"] = {name: _share(h) for name, h in sorted(by_type.items())}
    return out


def _share(hits: list[bool]) -> dict:
    """n, correct, accuracy (%) and its 95% Wilson interval of a list of exact-match hits."""
    k, n = sum(hits), len(hits)
    acc = 100.0 * k / n if n else float("nan")
    return {"n": n, "correct": k, "accuracy": acc, "ci95": list(wilson_interval(acc, n))}


def pretrain_hash(params: Params) -> str:
    """Key of the trained base: the pretraining settings, every stage's corpus bytes, the seed and the code."""
    from .cache import code_version

    corpora = [[sha256_file(resolve_path(params, spec, field)) for spec, field in zip(specs, fields)]
               for _, specs, fields, _, _ in stages_of(params)]
    return params_hash({"pretrain": params.models.pretrain.model_dump(mode="json"), "train": params.train.model_dump(
        mode="json", exclude={"runs", "run_overrides"}), "seed": params.seed, "corpus": corpora[-1],
        "curriculum": corpora[:-1], "code": code_version(["gdo_utils.pretrain"])})


def export_model(init_dir: Path, checkpoint: Path, out_dir: Path) -> None:
    """A loadable model folder: the checkpoint's weights and config, the initial model's processor and tokenizer."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for f in init_dir.iterdir():
        if f.is_file() and f.name not in MODEL_FILES:
            shutil.copy2(f, out_dir / f.name)
    for name in MODEL_FILES:
        shutil.copy2(checkpoint / name, out_dir / name)


def pretrain_base(params: Params, init_dir: Path, out_dir: Path) -> dict:
    """Train the tiny VLM in `init_dir` on the curriculum, then the base corpus, with the kit's trainer; save in `out_dir`.

    Each stage starts from the previous stage's weights and keeps its last `held_out` rows out of training; the
    report gives every stage's held-out accuracy before and after it, overall and per question type.
    """
    from .train.run import train_subset

    t0 = time.time()
    root = params.stage_dir("pretrain")
    n_held = params.models.pretrain.held_out
    cur, stages = init_dir, []
    for name, specs, fields, over, train_field in stages_of(params):
        n_rows, train_rows, held = stage_rows(params, specs, fields, n_held)
        sub = pretrain_params(params, cur, name, over, train_field)
        write_jsonl(sub.stage_dir("subsets", name, "train.jsonl"), train_rows)
        write_jsonl(root / f"held_out_{name}.jsonl" if name != SUBSET else root / "held_out.jsonl", held)
        info = train_subset(sub, name)
        last = sub.stage_dir("train", name, info["checkpoints"][-1]["name"])
        dest = out_dir if name == SUBSET else root / "stages" / name
        export_model(init_dir, last, dest)
        stages.append({"stage": name, "corpus": specs[0] if len(specs) == 1 else specs, "rows": n_rows,
                       "trained_rows": len(train_rows),
                       "held_out_rows": len(held), "steps": info.get("steps"), "checkpoint": last.name,
                       "held_out_before": held_out_accuracy(cur, held, sub.train.min_pixels, sub.train.max_pixels),
                       "held_out_after": held_out_accuracy(dest, held, sub.train.min_pixels, sub.train.max_pixels)})
        log.info("pretraining stage %s: %d rows, held-out accuracy %.1f%% -> %.1f%%", name, len(train_rows),
                 stages[-1]["held_out_before"]["all"]["accuracy"], stages[-1]["held_out_after"]["all"]["accuracy"])
        cur = dest
    final = stages[-1]
    initial = final["held_out_before"] if len(stages) == 1 else \
        held_out_accuracy(init_dir, held, sub.train.min_pixels, sub.train.max_pixels)   # the corpus's held-out rows
    report = {"corpus_rows": final["rows"], "trained_rows": final["trained_rows"], "held_out_rows": final["held_out_rows"],
              "steps": sum(st["steps"] or 0 for st in stages), "checkpoint": final["checkpoint"],
              "held_out_initial": initial, "held_out_trained": final["held_out_after"], "stages": stages,
              "seconds": round(time.time() - t0, 1)}
    write_json(root / "held_out.json", report)
    write_manifest(root, stage="pretrain", params_hash=pretrain_hash(params), params_file=params.source_file,
                   wall_time_s=time.time() - t0, outputs=[root / "held_out.json", out_dir / "model.safetensors"])
    log.info("base model trained in %d stages in %.0fs: held-out accuracy %.1f%% -> %.1f%%", len(stages),
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
        res = report[f"held_out_{model}"]
        parts = [(k, v) for k, v in res.items() if k != "by_type"] + \
            [(f"type: {k}", v) for k, v in res.get("by_type", {}).items()]
        for part, r in parts:
            rows.append({"model": model, "questions": part, "n": r["n"], "accuracy": r["accuracy"],
                         "ci95_low": r["ci95"][0], "ci95_high": r["ci95"][1], "chance": r.get("chance")})
    return pd.DataFrame(rows).round(3)


def stage_table(report: dict | None):
    """Every pretraining stage's held-out accuracy before and after it, per question type, with 95% intervals."""
    import pandas as pd

    rows = []
    for st in (report or {}).get("stages", []):
        for when in ("before", "after"):
            res = st[f"held_out_{when}"]
            for part, r in [("all", res["all"]), *[(f"type: {k}", v) for k, v in res.get("by_type", {}).items()]]:
                rows.append({"stage": st["stage"], "steps": st["steps"], "model": when, "questions": part,
                             "n": r["n"], "accuracy": r["accuracy"], "ci95_low": r["ci95"][0],
                             "ci95_high": r["ci95"][1]})
    return pd.DataFrame(rows).round(3)
