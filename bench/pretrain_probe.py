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
  kind          the kind of the only shape ("What shape is shown?"): can the vision tower tell the kinds apart
  kind_letter   the same, the three kinds given as shuffled lettered options, answered with the letter (chance 1/3):
                can the language model map an answer it knows to its option's letter
  letter_text   no image: the answer is given in words ("The image shows a circle. What shape is shown?" or "The shape
                is red. What colour is the shape?") with lettered options; only the letter is asked
  letter_kit    the kit's letter drill (toyworld.base_skills letter: four facts, four instruction styles)
  text_named    the same question on a blank image whose shapes are listed in the prompt ("The image shows a red
                circle and a blue square."): binding in words, no pixels to read
  corpus        1-4 shapes, the base corpus's question mix (colour, count, which object, left / right,
                yes / no; lettered multiple choice (`--mcq-ratio`) or short answer, gdo_utils.toyworld.base_corpus)

A curriculum is `--stages colour:300,colour_named:2000` (a stage may mix tasks row by row,
`corpus+colour_named:1500`, scored on its first task's held-out rows) (each stage its own rows, its own warm-up and decay;
held-out rows are the last stage's task). `--fresh` draws and encodes every training batch anew (never a row
twice), so a curve cannot come from memorising a fixed pool; `--seed` sets rows, initialisation and order.

    OMP_NUM_THREADS=1 .venv/bin/python bench/pretrain_probe.py --task colour --steps 400
    OMP_NUM_THREADS=1 .venv/bin/python bench/pretrain_probe.py --task corpus --steps 1500 --layers 4
    OMP_NUM_THREADS=1 .venv/bin/python bench/pretrain_probe.py --task corpus --warm-task colour --warm-steps 300
    OMP_NUM_THREADS=1 .venv/bin/python bench/pretrain_probe.py --stages colour:300,colour_named:2500 --fresh \
        --shape-size 28 --layers 4 --every 250
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
from gdo_utils.toyworld.base_corpus import question_type  # noqa: E402
from gdo_utils.toyworld.generate import _save_jpg  # noqa: E402

HELD = 200
TASKS = ("colour", "kind", "kind_letter", "letter_text", "letter_kit", "colour_named", "text_named", "corpus")


def draw_row(task: str, rng: np.random.Generator, size: int, shape: int, path: Path, mcq_ratio: float,
             i: int) -> dict:
    """One single-turn row of the task (training-file layout, absolute image path); its image is written.

    A mix ("corpus+colour_named") draws each row's task uniformly from its parts.
    """
    if "+" in task:
        parts = task.split("+")
        task = parts[int(rng.integers(len(parts)))]
    if task == "letter_kit":    # the kit's letter drill (gdo_utils.toyworld.base_corpus.letter_qa)
        q, a = bc.letter_qa(rng)
        return {"id": f"p{i}", "media_kind": "text", "images": [],
                "messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}
    if task == "letter_text":   # no image: the answer is given in words, only the letter is asked
        if rng.random() < 0.5:
            kind = scenes.SHAPES[int(rng.integers(len(scenes.SHAPES)))]
            stem, a, opts = f"The image shows a {kind}. What shape is shown?", kind, list(scenes.SHAPES)
        else:
            cols = [list(scenes.COLORS)[j] for j in rng.permutation(len(scenes.COLORS))[:4]]
            a = cols[0]
            stem, opts = f"The shape is {a}. What colour is the shape?", cols
        opts = [opts[j] for j in rng.permutation(len(opts))]
        return {"id": f"p{i}", "media_kind": "text", "images": [],
                "messages": [{"role": "user", "content": bc.mcq_prompt(stem, opts, 0)},
                             {"role": "assistant", "content": bc.LETTERS[opts.index(a)]}]}
    k = 1 if task in ("colour", "kind", "kind_letter") else int(rng.integers(1, 4 if task in ("colour_named", "text_named") else 5))
    while True:  # a named kind must name one shape: redraw scenes where every kind shown repeats
        sc = scenes.ImageScene(str(rng.choice(list(scenes.BACKGROUNDS))), scenes.distinct_shapes(rng, k, size, shape),
                               size)
        kinds = [x.kind for x in sc.shapes]
        if task == "corpus" or any(kinds.count(x) == 1 for x in kinds):
            break
    target = next(x for x in sc.shapes if kinds.count(x.kind) == 1) if task != "corpus" else sc.shapes[0]
    shown = scenes.ImageScene(sc.background, [], size) if task == "text_named" else sc
    _save_jpg(path, scenes.render_image(shown))
    if task == "corpus":
        facts = bc._facts(sc.shapes, "image", rng, size)
        q, a = bc._qa(facts[int(rng.integers(len(facts)))], rng, mcq_ratio)
    else:
        q, a = f"What colour is the {target.kind}?", target.color
        if task == "kind":
            q, a = "What shape is shown?", target.kind
        if task == "kind_letter":  # the same question with the three kinds as shuffled lettered options
            opts = [scenes.SHAPES[j] for j in rng.permutation(len(scenes.SHAPES))]
            q = bc.mcq_prompt("What shape is shown?", opts, 0)
            a = bc.LETTERS[opts.index(target.kind)]
        if task == "text_named":
            names = [f"{bc.article(sc.shapes[j].name)} {sc.shapes[j].name}" for j in rng.permutation(k)]
            listed = names[0] if k == 1 else ", ".join(names[:-1]) + " and " + names[-1]
            q = f"The image shows {listed}. {q}"
    return {"id": f"p{i}", "media_kind": "image", "images": [str(path)],
            "messages": [{"role": "user", "content": "<image>\n" + q}, {"role": "assistant", "content": a}]}


def draw_rows(task: str, n: int, size: int, shape: int, folder: Path, seed: int, mcq_ratio: float = 0.6
              ) -> list[dict]:
    """n rows of the task, images under `folder`."""
    rng = np.random.default_rng(seed)
    return [draw_row(task, rng, size, shape, folder / f"img_{i:05d}.jpg", mcq_ratio, i) for i in range(n)]


def parse_stages(spec: str) -> list[tuple[str, int]]:
    """"colour:300,colour_named:2000" -> [("colour", 300), ("colour_named", 2000)]."""
    out = []
    for part in spec.split(","):
        task, _, steps = part.partition(":")
        if any(t not in TASKS for t in task.split("+")) or not steps.isdigit():
            raise SystemExit(f"--stages: {part!r} is not <task>[+<task>...]:<steps> with tasks in {TASKS}")
        out.append((task, int(steps)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", choices=TASKS, default="corpus")
    ap.add_argument("--stages", default=None, help="curriculum <task>:<steps>,...; replaces --task / --steps")
    ap.add_argument("--rows", type=int, default=3000, help="rows drawn per stage; the last stage's last 200 are "
                                                            "held out (with --fresh: the tokenizer's rows)")
    ap.add_argument("--fresh", action="store_true", help="draw and encode every training batch anew")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--mcq-ratio", type=float, default=0.6, help="corpus task: share asked as lettered choices")
    ap.add_argument("--image-size", type=int, default=96)
    ap.add_argument("--shape-size", type=int, default=16)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--every", type=int, default=100)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--hidden", type=int, default=64, help="language model width (demo: 64)")
    ap.add_argument("--vision-hidden", type=int, default=32, help="vision tower width (demo: 32)")
    ap.add_argument("--layers", type=int, default=2, help="language model layers (demo: 2)")
    ap.add_argument("--warm-task", choices=TASKS, default=None,
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

    stages = parse_stages(a.stages) if a.stages else \
        ([(a.warm_task, a.warm_steps)] if a.warm_task else []) + [(a.task, a.steps)]
    work = Path(a.work) / "_".join(t for t, _ in stages)
    # each stage its own rows (seed + 1 + index); the last stage's last HELD rows are the held-out set
    pools = [draw_rows(t, a.rows, a.image_size, a.shape_size, work / f"stage{k}", a.seed * 100 + 1 + k, a.mcq_ratio)
             for k, (t, _) in enumerate(stages)]
    held_rows = pools[-1][-HELD:]
    pools[-1] = pools[-1][:-HELD]
    last = stages[-1][0]
    if "+" in last:  # a mix is scored on its first part's questions (its own draw, never trained on)
        held_rows = draw_rows(last.split("+")[0], HELD, a.image_size, a.shape_size, work / "held",
                              a.seed * 100 + 99, a.mcq_ratio)
    model_dir = build_tiny_vlm(work / "model", [m["content"] for rows in pools + [held_rows] for r in rows
                                                for m in r["messages"]], seed=a.seed, hidden=a.hidden)
    proc = AutoProcessor.from_pretrained(str(model_dir))
    proc.tokenizer.padding_side = "right"
    family = family_of_model_path(str(model_dir))
    settings = EncodeSettings(min_pixels=a.image_size ** 2, max_pixels=a.image_size ** 2)
    collator = Collator(proc, family, settings)

    def encode(rows: list[dict], tag: str) -> list:
        return [collator.encode(r, load_media(r, settings, family))
                for r in (parse_c1_row(x, tag, i) for i, x in enumerate(rows))]

    held = encode(held_rows, "held")
    held_types = [question_type(r["messages"][0]["content"]) for r in held_rows]
    cfg = AutoConfig.from_pretrained(str(model_dir))
    cfg.vision_config.hidden_size, cfg.vision_config.intermediate_size = a.vision_hidden, 2 * a.vision_hidden
    cfg.text_config.num_hidden_layers = a.layers
    torch.manual_seed(a.seed)
    model = AutoModelForImageTextToText.from_config(cfg, attn_implementation="eager")
    pad = proc.tokenizer.pad_token_id

    def score() -> dict[str, float]:
        model.eval()
        hits: dict[str, list[bool]] = {}
        with torch.no_grad():
            for i in range(0, len(held), 32):
                batch = pad_and_concat(held[i:i + 32], pad)
                labels = batch.pop("labels")
                pred = model(**batch).logits.argmax(-1)
                for j in range(labels.shape[0]):
                    mask = labels[j, 1:] != IGNORE_INDEX
                    hits.setdefault(held_types[i + j], []).append(bool((pred[j, :-1][mask] == labels[j, 1:][mask]).all()))
        model.train()
        return {k: round(100 * sum(v) / len(v), 1) for k, v in sorted(hits.items())}

    rng = random.Random(a.seed)
    curve: list[dict] = []
    seen = {"rows": 0}

    def batches(task: str, rows: list[dict], k: int):
        """Encoded training batches: shuffled epochs of the stage's rows, or (--fresh) new rows every batch."""
        if a.fresh:
            g = np.random.default_rng([a.seed, 7919, k])
            folder = work / f"fresh{k}"
            while True:
                drawn = [draw_row(task, g, a.image_size, a.shape_size, folder / f"b{j:02d}.jpg", a.mcq_ratio, j)
                         for j in range(a.batch)]
                yield encode(drawn, "fresh")
        enc = encode(rows, task)
        order: list[int] = []
        while True:
            if not order:
                order = list(range(len(enc)))
                rng.shuffle(order)
            yield [enc[order.pop()] for _ in range(min(a.batch, len(order)))]

    def train_on(task: str, rows: list[dict], steps: int, k: int) -> None:
        """`steps` AdamW steps on the stage's batches (linear warm-up and decay within the stage)."""
        opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=0.0)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 25) * max(0.0, 1 - s / steps))
        t0, stage_rows = time.process_time(), 0
        source = batches(task, rows, k)
        for step in range(1, steps + 1):
            items = next(source)
            seen["rows"] += len(items)
            stage_rows += len(items)
            loss = model(**pad_and_concat(items, pad)).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad()
            if step % a.every == 0 or step == steps:
                curve.append({"phase": f"{k}:{task}", "step": step, "loss": round(loss.item(), 3),
                              "rows_seen": seen["rows"],
                              "epoch": None if a.fresh else round(stage_rows / max(1, len(rows)), 2),
                              "held_out": score(), "cpu_s": round(time.process_time() - t0, 1)})
                print(json.dumps(curve[-1]), flush=True)

    for k, ((task, steps), rows) in enumerate(zip(stages, pools)):
        train_on(task, rows, steps, k)
    counts = {t: held_types.count(t) for t in sorted(set(held_types))}
    write_results(a.out, {"args": vars(a), "stages": stages, "held_out_n": counts,
                          "params": sum(p.numel() for p in model.parameters()), "curve": curve})

if __name__ == "__main__":
    main()
