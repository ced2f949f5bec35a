"""Toy image benchmarks for the OFA image suite, in the official layouts the real loaders read.

Under `<toyworld>/benchmarks/image/`:
  mmbench_en/MMBench_DEV_EN.tsv   MMBench TSV (base64 images; circular copies at index + k * 1e6)
  pope/coco_pope_{random,popular,adversarial}.json + pope/images/   POPE question files
  vqav2/v2_OpenEnded_mscoco_val2014_questions.json, v2_mscoco_val2014_annotations.json
        + vqav2/images/COCO_val2014_<id:012d>.jpg                 VQAv2 (ten human answers each)
Scenes come from seeds of their own (`held_out_seed`) and any scene that equals a pool scene is
redrawn, so the OFA pools never contain a benchmark image. Human answers vary the way VQA answers
do ("2" / "two", "red" / "red one" / "dark red"), so the soft accuracy is exercised.
"""
from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import numpy as np
from PIL import Image

from ..config import ToyWorldConfig, canonical_json
from ..io import write_json, write_text
from .questions import NUMBER_WORDS, article
from .scenes import COLORS, SHAPES, ImageScene, render_image, sample_image_scene

BENCH_DIR = "benchmarks/image"
FILES = ("mmbench_en/MMBench_DEV_EN.tsv", "pope/coco_pope_random.json", "pope/coco_pope_popular.json",
         "pope/coco_pope_adversarial.json", "vqav2/v2_OpenEnded_mscoco_val2014_questions.json",
         "vqav2/v2_mscoco_val2014_annotations.json")
TSV_COLUMNS = ("index", "question", "hint", "A", "B", "C", "D", "answer", "category", "image", "source",
               "l2-category", "split")
CIRCULAR = 1_000_000


def _scenes(cfg: ToyWorldConfig, stream: str, n: int, taken: set[str]) -> list[ImageScene]:
    """n held-out scenes, none equal to a pool scene or to another benchmark scene."""
    from .generate import held_out_seed

    rng = np.random.default_rng(held_out_seed(f"image_bench/{stream}", cfg.seed))
    out: list[ImageScene] = []
    while len(out) < n:
        s = sample_image_scene(rng, cfg.image_size, cfg.shape_fraction)
        key = canonical_json(s.to_dict())
        if key in taken:
            continue
        taken.add(key)
        out.append(s)
    return out


def _jpg_bytes(scene: ImageScene) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(render_image(scene)).save(buf, format="JPEG", quality=92)
    return buf.getvalue()


def _mcq(scene: ImageScene, rng: np.random.Generator) -> tuple[str, str, list[str], str]:
    """(category, question, 4 options, correct option) about one scene."""
    s = scene.shapes[int(rng.integers(len(scene.shapes)))]
    kind = int(rng.integers(3))
    if kind == 0:
        wrong = [c for c in COLORS if c != s.color]
        opts = [s.color] + [wrong[i] for i in rng.permutation(len(wrong))[:3]]
        q = f"What colour is the {s.kind} in the image?" if [x.kind for x in scene.shapes].count(s.kind) == 1 \
            else f"Which colour does one of the {s.kind}s have?"
        return "attribute_recognition", q, opts, s.color
    if kind == 1:
        n = len(scene.shapes)
        wrong = [str(x) for x in range(1, 7) if x != n]
        opts = [str(n)] + [wrong[i] for i in rng.permutation(len(wrong))[:3]]
        return "object_counting", "How many shapes are in the image?", opts, str(n)
    present = {(x.color, x.kind) for x in scene.shapes}
    absent = [f"{c} {k}" for c in COLORS for k in SHAPES if (c, k) not in present]
    opts = [s.name] + [absent[i] for i in rng.permutation(len(absent))[:3]]
    return "object_existence", "Which of these objects is in the image?", opts, s.name


def write_mmbench(cfg: ToyWorldConfig, out: Path, scenes: list[ImageScene]) -> int:
    """MMBench-style TSV; each question also as 3 circular copies (options rotated). Returns the row count."""
    from .generate import held_out_seed

    rng = np.random.default_rng(held_out_seed("image_bench/mmbench_q", cfg.seed))
    lines = ["\t".join(TSV_COLUMNS)]
    for i, scene in enumerate(scenes):
        cat, q, opts, correct = _mcq(scene, rng)
        opts = [opts[j] for j in rng.permutation(4)]
        b64 = base64.b64encode(_jpg_bytes(scene)).decode()
        hint = f"The background is {scene.background}." if i % 3 == 0 else "nan"
        for k in range(4):  # k = 0: the original; 1-3: circular shifts
            rot = opts[k:] + opts[:k]
            row = [str(i + k * CIRCULAR), q, hint, *rot, "ABCD"[rot.index(correct)], cat, b64, "toyworld",
                   "perception", "dev"]
            lines.append("\t".join(row))
    write_text(out, "\n".join(lines) + "\n")
    return len(lines) - 1


def _pope_rows(scenes: list[ImageScene], rng: np.random.Generator, split: str, popular: list[str],
               start_id: int) -> list[dict]:
    """Per image one present object (yes) and one absent object (no), chosen the POPE way per split."""
    rows = []
    for j, scene in enumerate(scenes):
        present = [x.name for x in scene.shapes]
        absent = [f"{c} {k}" for c in COLORS for k in SHAPES if f"{c} {k}" not in present]
        if split == "popular":
            neg = next(a for a in popular if a in absent)
        elif split == "adversarial":  # same colour or same shape as something in the picture
            close = [a for a in absent if any(a.split()[0] == p.split()[0] or a.split()[1] == p.split()[1]
                                              for p in present)]
            neg = close[int(rng.integers(len(close)))] if close else absent[int(rng.integers(len(absent)))]
        else:
            neg = absent[int(rng.integers(len(absent)))]
        pos = present[int(rng.integers(len(present)))]
        img = f"COCO_val2014_{j:012d}.jpg"
        for k, (obj, label) in enumerate(((pos, "yes"), (neg, "no"))):
            rows.append({"question_id": start_id + 2 * j + k, "image": img,
                         "text": f"Is there {article(obj)} {obj} in the image?", "label": label})
    return rows


def write_pope(cfg: ToyWorldConfig, out_dir: Path, scenes: list[ImageScene], popular: list[str]) -> int:
    from .generate import _save_jpg, held_out_seed

    for j, scene in enumerate(scenes):
        _save_jpg(out_dir / "images" / f"COCO_val2014_{j:012d}.jpg", render_image(scene))
    n = 0
    for s, split in enumerate(("random", "popular", "adversarial")):
        rng = np.random.default_rng(held_out_seed(f"image_bench/pope_{split}", cfg.seed))
        rows = _pope_rows(scenes, rng, split, popular, 1 + s * 1000)
        write_text(out_dir / f"coco_pope_{split}.json", "".join(json.dumps(r) + "\n" for r in rows))
        n += len(rows)
    return n


def _humans(answer: str, variants: list[str], rng: np.random.Generator) -> list[str]:
    """Ten human answers: mostly the answer, a few variants (how VQA annotators disagree)."""
    k = int(rng.integers(0, 4))
    alts = [variants[int(rng.integers(len(variants)))] for _ in range(k)] if variants else []
    return [answer] * (10 - len(alts)) + alts


def write_vqav2(cfg: ToyWorldConfig, out_dir: Path, scenes: list[ImageScene]) -> int:
    from .generate import _save_jpg, held_out_seed

    rng = np.random.default_rng(held_out_seed("image_bench/vqav2_q", cfg.seed))
    questions, annotations = [], []
    for j, scene in enumerate(scenes):
        image_id = 900000 + j
        _save_jpg(out_dir / "images" / f"COCO_val2014_{image_id:012d}.jpg", render_image(scene))
        s = scene.shapes[int(rng.integers(len(scene.shapes)))]
        n = len(scene.shapes)
        kinds = [x.kind for x in scene.shapes]
        items = [("How many shapes are there?", str(n), [NUMBER_WORDS.get(n, str(n)), f"{n} shapes"], "number"),
                 (f"Is there {article(s.name)} {s.name}?", "yes", ["yes it is", "Yes."], "yes/no")]
        if kinds.count(s.kind) == 1:
            items.append((f"What color is the {s.kind}?", s.color, [f"{s.color} one", f"dark {s.color}"], "other"))
        for k, (q, a, variants, atype) in enumerate(items):
            qid = image_id * 10 + k
            humans = _humans(a, variants, rng)
            questions.append({"image_id": image_id, "question": q, "question_id": qid})
            annotations.append({"question_id": qid, "image_id": image_id, "question_type": q.split()[0].lower(),
                                "answer_type": atype, "multiple_choice_answer": a,
                                "answers": [{"answer": h, "answer_confidence": "yes", "answer_id": i + 1}
                                            for i, h in enumerate(humans)]})
    meta = {"info": {"description": "toy world VQAv2-style benchmark"}, "data_subtype": "val2014"}
    write_json(out_dir / "v2_OpenEnded_mscoco_val2014_questions.json",
               {**meta, "task_type": "Open-Ended", "data_type": "mscoco", "questions": questions})
    write_json(out_dir / "v2_mscoco_val2014_annotations.json", {**meta, "annotations": annotations})
    return len(questions)


def popular_objects(pool_scenes: list[str]) -> list[str]:
    """Every "colour shape" object, most frequent in the pools' images first (POPE's popular setting)."""
    counts = {f"{c} {k}": 0 for c in COLORS for k in SHAPES}
    for sc in pool_scenes:
        d = json.loads(sc)
        if "n_frames" in d:  # videos are not part of the image pools' statistics
            continue
        for sh in d["shapes"]:
            counts[f"{sh['color']} {sh['kind']}"] += 1
    return sorted(counts, key=lambda o: (-counts[o], o))


def write_image_benchmarks(cfg: ToyWorldConfig, root: str | Path, pool_scenes: list[str],
                           exclude: set[str] | None = None) -> dict:
    """Write the three toy image benchmarks under `<root>/benchmarks/image`; returns their question counts.

    No benchmark scene equals a pool scene or one of `exclude` (the base model's corpus).
    """
    out = Path(root) / BENCH_DIR
    taken = set(pool_scenes) | set(exclude or ())
    n = cfg.image_bench_size
    popular = popular_objects(pool_scenes)
    counts = {"mmbench_en": write_mmbench(cfg, out / FILES[0], _scenes(cfg, "mmbench", n, taken)),
              "pope": write_pope(cfg, out / "pope", _scenes(cfg, "pope", n, taken), popular),
              "vqav2": write_vqav2(cfg, out / "vqav2", _scenes(cfg, "vqav2", n, taken))}
    return counts
