"""What the tiny Qwen3-VL learns from the toy world, per question type, per step (issue 23's base model).

A side experiment, not a kit stage: it draws still-image scenes with the toy world's own scene sampler and
question rules (gdo_utils.toyworld), builds the demo's tiny VLM (gdo_utils.models.build_tiny_vlm, optionally
deeper or wider), encodes rows with the kit's collator, and trains it with a plain AdamW loop (linear warm-up
and decay, gradient clipping 1.0; the kit's Trainer adds checkpoints and logging, not different maths), optionally
after a first phase on another task (a curriculum: `--warm-task`, `--warm-steps`; held-out rows are --task's). Every
`--every` steps it scores 200 held-out rows by exact match of the greedy reply in one teacher-forced pass, as
gdo_utils.pretrain does, split by question type, so one can see which skill is learnt and when.

Tasks:
  colour        one shape per image, "What colour is the <kind>?" (open answer)
  colour_named  1-3 shapes, "What colour is the <kind>?" (binding a kind to its colour; open answer)
  corpus        1-4 shapes, the base corpus's question mix (colour, count, which object, left / right,
                yes / no; lettered multiple choice or short answer, gdo_utils.toyworld.base_corpus)

    OMP_NUM_THREADS=1 .venv/bin/python bench/pretrain_probe.py --task colour --steps 400
    OMP_NUM_THREADS=1 .venv/bin/python bench/pretrain_probe.py --task corpus --steps 1500 --layers 4
    OMP_NUM_THREADS=1 .venv/bin/python bench/pretrain_probe.py --task corpus --warm-task colour --warm-steps 300
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from common import write_results  # noqa: E402

from gdo_utils.toyworld import base_corpus as bc  # noqa: E402
from gdo_utils.toyworld import scenes  # noqa: E402
from gdo_utils.toyworld.generate import _save_jpg  # noqa: E402

HELD = 200


def question_type(q: str) -> str:
    """The question's type, from its wording (the toy world's fixed templates)."""
    for key, name in (("How many", "count"), ("What colour", "colour"), ("Which of", "which"), ("Is there", "yes/no"),
                      ("left or on the right", "left/right")):
        if key in q:
            return name
    return "other"


def draw_rows(task: str, n: int, size: int, shape: int, folder: Path, seed: int) -> list[dict]:
    """n single-turn rows (training-file layout, absolute image paths) of the task."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        k = 1 if task == "colour" else int(rng.integers(1, 4 if task == "colour_named" else 5))
        sc = scenes.ImageScene(str(rng.choice(list(scenes.BACKGROUNDS))), scenes.distinct_shapes(rng, k, size, shape),
                               size)
        path = folder / f"img_{i:05d}.jpg"
        _save_jpg(path, scenes.render_image(sc))
        if task == "corpus":
            facts = bc._facts(sc.shapes, "image", rng, size)
            q, a = bc._qa(facts[int(rng.integers(len(facts)))], rng, 0.6)
        else:
            q, a = f"What colour is the {sc.shapes[0].kind}?", sc.shapes[0].color
        rows.append({"id": f"p{i}", "media_kind": "image", "images": [str(path)],
                     "messages": [{"role": "user", "content": "<image>\n" + q}, {"role": "assistant", "content": a}]})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", choices=["colour", "colour_named", "corpus"], default="corpus")
    ap.add_argument("--rows", type=int, default=3000, help="rows drawn; the last 200 are held out")
    ap.add_argument("--image-size", type=int, default=96)
    ap.add_argument("--shape-size", type=int, default=16)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--every", type=int, default=100)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--hidden", type=int, default=64, help="language model width (demo: 64)")
    ap.add_argument("--vision-hidden", type=int, default=32, help="vision tower width (demo: 32)")
    ap.add_argument("--layers", type=int, default=2, help="language model layers (demo: 2)")
    ap.add_argument("--warm-task", choices=["colour", "colour_named", "corpus"], default=None,
                    help="a curriculum: first train --warm-steps on this task's rows, then --steps on --task")
    ap.add_argument("--warm-steps", type=int, default=0)
    ap.add_argument("--work", default="/tmp/gdo_pretrain_probe")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "pretrain_probe.json"))
    a = ap.parse_args()
    from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor

    from gdo_utils.models import build_tiny_vlm
    from gdo_utils.train.collate import Collator, pad_and_concat
    from gdo_utils.train.encode import IGNORE_INDEX, EncodeSettings, load_media
    from gdo_utils.train.families import family_of_model_path
    from gdo_utils.train.records import parse_c1_row

    work = Path(a.work) / a.task
    rows = draw_rows(a.task, a.rows, a.image_size, a.shape_size, work / "images", seed=0)
    warm_rows = (draw_rows(a.warm_task, a.rows, a.image_size, a.shape_size, work / "warm_images", seed=1)
                 if a.warm_task else [])
    model_dir = build_tiny_vlm(work / "model", [m["content"] for r in rows + warm_rows for m in r["messages"]],
                               seed=0, hidden=a.hidden)
    proc = AutoProcessor.from_pretrained(str(model_dir))
    proc.tokenizer.padding_side = "right"
    family = family_of_model_path(str(model_dir))
    settings = EncodeSettings(min_pixels=a.image_size ** 2, max_pixels=a.image_size ** 2)
    collator = Collator(proc, family, settings)
    recs = [parse_c1_row(r, "probe", i) for i, r in enumerate(rows)]
    encoded = [collator.encode(r, load_media(r, settings, family)) for r in recs]
    train, held = encoded[:-HELD], encoded[-HELD:]
    warm = [collator.encode(r, load_media(r, settings, family))
            for r in (parse_c1_row(x, "warm", i) for i, x in enumerate(warm_rows))]
    held_types = [question_type(r["messages"][0]["content"]) for r in rows[-HELD:]]
    cfg = AutoConfig.from_pretrained(str(model_dir))
    cfg.vision_config.hidden_size, cfg.vision_config.intermediate_size = a.vision_hidden, 2 * a.vision_hidden
    cfg.text_config.num_hidden_layers = a.layers
    torch.manual_seed(0)
    model = AutoModelForImageTextToText.from_config(cfg, attn_implementation="eager")
    pad = proc.tokenizer.pad_token_id

    def score() -> dict[str, float]:
        model.eval()
        hits: dict[str, list[bool]] = {}
        with torch.no_grad():
            for i in range(0, HELD, 32):
                batch = pad_and_concat(held[i:i + 32], pad)
                labels = batch.pop("labels")
                pred = model(**batch).logits.argmax(-1)
                for j in range(labels.shape[0]):
                    mask = labels[j, 1:] != IGNORE_INDEX
                    hits.setdefault(held_types[i + j], []).append(bool((pred[j, :-1][mask] == labels[j, 1:][mask]).all()))
        model.train()
        return {k: round(100 * sum(v) / len(v), 1) for k, v in sorted(hits.items())}

    rng = random.Random(0)
    curve = []

    def train_on(rows_enc: list, steps: int, phase: str) -> None:
        """`steps` AdamW steps over shuffled epochs of `rows_enc` (linear warm-up and decay within the phase)."""
        opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=0.0)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 25) * max(0.0, 1 - s / steps))
        order: list[int] = []
        t0 = time.process_time()
        for step in range(1, steps + 1):
            if not order:
                order = list(range(len(rows_enc)))
                rng.shuffle(order)
            batch = pad_and_concat([rows_enc[order.pop()] for _ in range(min(a.batch, len(order)))], pad)
            loss = model(**batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad()
            if step % a.every == 0:
                curve.append({"phase": phase, "step": step, "loss": round(loss.item(), 3), "held_out": score(),
                              "cpu_s": round(time.process_time() - t0, 1)})
                print(json.dumps(curve[-1]), flush=True)

    if warm:
        train_on(warm, a.warm_steps, f"warm:{a.warm_task}")
    train_on(train, a.steps, a.task)
    counts = {t: held_types.count(t) for t in sorted(set(held_types))}
    write_results(a.out, {"args": vars(a), "held_out_n": counts,
                          "params": sum(p.numel() for p in model.parameters()), "curve": curve})


if __name__ == "__main__":
    main()
