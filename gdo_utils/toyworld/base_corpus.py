"""The base model's corpus: held-out still images and static clips, never motion, order or change.

The demo's small VLM is first taught the toy world's visual vocabulary on this corpus (the analogue of
a pretrained, instruction-tuned base; gdo_utils.pretrain trains it). Scenes come from their own seed
stream and any scene equal to a pool scene is redrawn, so the pools and the benchmarks never contain a
corpus scene. Questions cover colour, count, presence and left / right, as multiple choice answered
with the option's letter (in the common instruction styles below) and as short open answers; clips are
static only, so the base model has never been asked about direction, order or change
(docs/toyworld.md gives the composition).

Written under `<toyworld>/base_corpus/`: `images/`, `frames/<clip>/`, and `corpus.jsonl`, one row per
QA in the kit's training-file layout but with media paths relative to `<toyworld>` (gdo_utils.pretrain
makes them absolute in its own training file). With `base_skills`, each skill drill (the curriculum
trained before the corpus) is written to `<skill>.jsonl` with its images under `<skill>/`, and
`base_corpus_skill_ratio` of the corpus's own rows are drills too, so the skills stay in the mix.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from ..config import ToyWorldConfig, canonical_json
from ..io import write_text
from .questions import article
from .scenes import BACKGROUNDS, COLORS, SHAPES, ImageScene, VideoScene, distinct_shapes, render_image, render_video, \
    sample_image_scene, sample_video_scene, shape_side

DIR = "base_corpus"
FILE = f"{DIR}/corpus.jsonl"
LETTERS = "ABCD"
SHORT = "\nAnswer the question using a single word or phrase."


def mcq_prompt(question: str, options: list[str], style: int) -> str:
    """A multiple-choice prompt in one of four common instruction styles (letters A-D)."""
    if style == 0:
        lines = "\n".join(f"{LETTERS[i]}. {o}" for i, o in enumerate(options))
        return f"{question}\n{lines}\nAnswer with the option's letter from the given choices directly."
    if style == 1:
        lines = "".join(f"({LETTERS[i]}) {o}\n" for i, o in enumerate(options))
        return f"Question:{question}\nOption:\n{lines}Only give the best option.\n"
    if style == 2:
        lines = "\n".join(f"{LETTERS[i]}. {o}" for i, o in enumerate(options))
        return f"Question: {question}\nOptions:\n{lines}\nAnswer with the option letter only."
    lines = "".join(f"\n({LETTERS[i]}) {o}" for i, o in enumerate(options))
    return f"{question}{lines}\nAnswer the question with the option letter"


OPTION_LINE = re.compile(r"^(?:\(([A-D])\) |([A-D])\. )", re.M)


def option_count(prompt: str) -> int:
    """Lettered options in a prompt `mcq_prompt` wrote (0 for an open question): its chance level is 1 / that."""
    return len(OPTION_LINE.findall(prompt))


def _facts(shapes, medium: str, rng: np.random.Generator, size: int) -> list[tuple[str, str, list[str], bool]]:
    """(question, correct answer, distractors, lettered only) about what is visible; `medium`: "image" / "video".

    "Which of these objects is in the image?" is only well posed with options: asked open, every shape shown
    answers it, and exact match would score all but one of them wrong.
    """
    s = shapes[int(rng.integers(len(shapes)))]
    n = len(shapes)
    kinds = [x.kind for x in shapes]
    present = {x.name for x in shapes}
    absent = [f"{c} {k}" for c in COLORS for k in SHAPES if f"{c} {k}" not in present]
    out = [(f"How many shapes are in the {medium}?", str(n), [str(x) for x in range(1, 7) if x != n], False)]
    if kinds.count(s.kind) == 1:
        out.append((f"What colour is the {s.kind} in the {medium}?", s.color, [c for c in COLORS if c != s.color],
                    False))
    out.append((f"Which of these objects is in the {medium}?", s.name, absent, True))
    neg = absent[int(rng.integers(len(absent)))]
    yes = rng.random() < 0.5
    obj = s.name if yes else neg
    out.append((f"Is there {article(obj)} {obj} in the {medium}?", "yes" if yes else "no", ["no" if yes else "yes"],
                False))
    third = size / 3
    if s.x < third or s.x >= 2 * third:
        side = "left" if s.x < third else "right"
        out.append((f"Is the {s.name} on the left or on the right side of the {medium}?", side,
                    ["right" if side == "left" else "left"], False))
    return out


def _qa(fact: tuple[str, str, list[str], bool], rng: np.random.Generator, mcq_ratio: float) -> tuple[str, str]:
    """One fact as a lettered multiple-choice question or a short open one (always lettered when flagged)."""
    q, a, wrong, lettered_only = fact
    if rng.random() < mcq_ratio or lettered_only:
        picks = [wrong[i] for i in rng.permutation(len(wrong))[:3]]
        opts = [a, *picks]
        opts = [opts[i] for i in rng.permutation(len(opts))]
        return mcq_prompt(q, opts, int(rng.integers(4))), LETTERS[opts.index(a)]
    return q + SHORT, a


def _draw(rng: np.random.Generator, cfg: ToyWorldConfig, video: bool, taken: set[str]) -> ImageScene | VideoScene:
    for _ in range(100):
        scene = (sample_video_scene(rng, cfg.video_size, cfg.frames_per_video, "static", cfg.shape_fraction) if video
                 else sample_image_scene(rng, cfg.image_size, cfg.shape_fraction))
        key = canonical_json(scene.to_dict())
        if key not in taken:
            taken.add(key)
            return scene
    raise RuntimeError("could not draw a held-out corpus scene in 100 attempts")


SKILLS = ("kind", "colour_named", "letter")
GIVEN = "Given: "
LETTER_FACTS = (("the shape is a {}.", "What shape is shown?", SHAPES),
                ("the shape is {}.", "What colour is the shape?", tuple(COLORS)),
                ("there are {} shapes.", "How many shapes are there?", ("1", "2", "3", "4", "5", "6")),
                ("the shape moves {}.", "Which direction does the shape move?", ("left", "right", "up", "down")))
QUESTION_TYPES = ((GIVEN, "letter"), ("How many", "count"), ("What colour is the", "colour"), ("Which of", "which"),
                  ("Is there", "yes/no"), ("left or on the right", "left/right"), ("What shape", "kind"))


def question_type(prompt: str) -> str:
    """The type of a corpus or drill question, from its fixed wording (held-out accuracy is reported per type).

    "colour" is the corpus's "What colour is the X in the image / video?"; "colour_named" the drill's "What colour
    is the X?" with nothing after the kind.
    """
    for key, name in QUESTION_TYPES:
        if key in prompt:
            if name == "colour" and " in the " not in prompt.split(key, 1)[1].split("?", 1)[0]:
                return "colour_named"
            return name
    return "other"


def skill_file(skill: str) -> str:
    """Path (under the toy world) of one skill drill's rows: `base_corpus/<skill>.jsonl`."""
    return f"{DIR}/{skill}.jsonl"


def skill_qa(skill: str, rng: np.random.Generator, size: int, shape: int) -> tuple[ImageScene, str, str]:
    """One drill: a still scene, its question and the short answer.

    kind          one shape, "What shape is shown?" -> its kind (the vision tower learns to name the kinds)
    colour_named  1-3 shapes, "What colour is the <kind>?" -> the colour of the one shape of that kind
                  (binds a colour to the object a question names; drawn again until the named kind is shown once)
    """
    if skill not in SKILLS or skill == "letter":
        raise ValueError(f"unknown image skill {skill!r}; known: {SKILLS[:2]} (letter has no image: letter_qa)")
    k = 1 if skill == "kind" else int(rng.integers(1, 4))
    while True:
        scene = ImageScene(str(rng.choice(list(BACKGROUNDS))), distinct_shapes(rng, k, size, shape), size)
        kinds = [x.kind for x in scene.shapes]
        once = [x for x in scene.shapes if kinds.count(x.kind) == 1]
        if once:
            break
    if skill == "kind":
        return scene, "What shape is shown?", once[0].kind
    return scene, f"What colour is the {once[0].kind}?", once[0].color


def letter_qa(rng: np.random.Generator) -> tuple[str, str]:
    """The letter drill, no image: the answer is given in words, only its option's letter is asked.

    "Given: the shape is red. What colour is the shape?" with 3-4 shuffled lettered options in one of the four
    instruction styles -> the letter of "red". Mapping an answer it knows to its option's letter is what the tiny
    model does not learn from pictures within the budget (bench/README.md, fifth probe pass); in words it does.
    """
    fact, question, values = LETTER_FACTS[int(rng.integers(len(LETTER_FACTS)))]
    answer = values[int(rng.integers(len(values)))]
    others = [v for v in values if v != answer]
    opts = [answer, *[others[j] for j in rng.permutation(len(others))[:3]]]
    opts = [opts[j] for j in rng.permutation(len(opts))]
    return mcq_prompt(GIVEN + fact.format(answer) + " " + question, opts, int(rng.integers(4))), \
        LETTERS[opts.index(answer)]


def _skill_row(skill: str, rng: np.random.Generator, cfg: ToyWorldConfig, root: Path, rel: str, row_id: str) -> str:
    """One drill row (its image written under `root`), as a JSON line of the training-file layout."""
    from .generate import _save_jpg

    if skill == "letter":
        q, a = letter_qa(rng)
        return json.dumps({"id": row_id, "media_kind": "text", "images": [],
                           "messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]})
    scene, q, a = skill_qa(skill, rng, cfg.image_size, shape_side(cfg.image_size, cfg.shape_fraction))
    _save_jpg(root / rel, render_image(scene))
    return json.dumps({"id": row_id, "media_kind": "image", "images": [rel],
                       "messages": [{"role": "user", "content": "<image>\n" + q},
                                    {"role": "assistant", "content": a}]})


def write_skill_corpora(cfg: ToyWorldConfig, root: str | Path) -> dict[str, int]:
    """Write each drill of `cfg.base_skills` (rows per skill) to `base_corpus/<skill>.jsonl`: the curriculum.

    Drill scenes come from their own seed stream and are not kept apart from pool or benchmark scenes: a scene
    of one shape is one of only 72 (colour, kind, background) looks in 9 places, so a pool of a few thousand
    images already shows most of them. The picture drills ask only what the shape is and which colour a named
    shape has (the letter drill has no picture), and every method's runs start from the same base model, so no
    selection gains from the overlap.
    """
    from .generate import held_out_seed

    root = Path(root)
    out = {}
    for skill, n in cfg.base_skills.items():
        rng = np.random.default_rng(held_out_seed(f"skill_{skill}", cfg.seed))
        lines = [_skill_row(skill, rng, cfg, root, f"{DIR}/{skill}/img_{i:05d}.jpg", f"{skill}_{i:05d}")
                 for i in range(n)]
        write_text(root / skill_file(skill), "\n".join(lines) + ("\n" if lines else ""))
        out[skill] = len(lines)
    return out


def write_base_corpus(cfg: ToyWorldConfig, root: str | Path, pool_scenes: set[str]) -> tuple[dict, set[str]]:
    """Write `cfg.n_base_corpus` QA rows (images + static clips) under `<root>/base_corpus/`.

    Returns the counts and the corpus scenes (canonical JSON), which the benchmarks then avoid.
    """
    from .generate import _save_jpg, held_out_seed

    root = Path(root)
    taken = set(pool_scenes)
    rng = np.random.default_rng(held_out_seed("base_corpus", cfg.seed))
    lines, counts = [], {"image": 0, "static_clip": 0, "mcq": 0}
    skills = list(cfg.base_skills)
    for i in range(cfg.n_base_corpus):
        if cfg.base_corpus_skill_ratio and rng.random() < cfg.base_corpus_skill_ratio:   # a drill kept in the mix
            skill = skills[int(rng.integers(len(skills)))]
            lines.append(_skill_row(skill, rng, cfg, root, f"{DIR}/images/img_{i:05d}.jpg", f"base_{i:05d}"))
            counts[f"drill_{skill}"] = counts.get(f"drill_{skill}", 0) + 1
            continue
        video = rng.random() < cfg.base_corpus_static_ratio
        scene = _draw(rng, cfg, video, taken)
        facts = _facts(scene.shapes, "video" if video else "image", rng, scene.size)
        prompt, answer = _qa(facts[int(rng.integers(len(facts)))], rng, cfg.base_corpus_mcq_ratio)
        if video:
            frames = render_video(scene)
            names = [f"{DIR}/frames/clip_{i:05d}/frame_{t:04d}.jpg" for t in range(len(frames))]
            for name, f in zip(names, frames):
                _save_jpg(root / name, f)
            kind, media = "frames", names
            counts["static_clip"] += 1
        else:
            rel = f"{DIR}/images/img_{i:05d}.jpg"
            _save_jpg(root / rel, render_image(scene))
            kind, media = "image", [rel]
            counts["image"] += 1
        counts["mcq"] += answer in LETTERS and len(answer) == 1
        lines.append(json.dumps({"id": f"base_{i:05d}", "media_kind": kind, "images": media,
                                 "messages": [{"role": "user", "content": "<image>" * len(media) + "\n" + prompt},
                                              {"role": "assistant", "content": answer}]}))
    write_text(root / FILE, "\n".join(lines) + ("\n" if lines else ""))
    return {"rows": len(lines), **counts}, taken - set(pool_scenes)


PROBE_FILE = "colour_probe/corpus.jsonl"


def write_colour_probe(root: str | Path, n: int, size: int, seed: int) -> Path:
    """A one-skill corpus (one shape per image, "What colour is the <kind>?"): can the base model see at all?

    The base corpus mixes five question types, and the tiny VLM stays at their answer priors for at least
    1,500 steps on it (bench/README.md, "Why the base model stays weak"); this corpus isolates the vision
    path, so a check that the kit's trainer teaches the tiny VLM something about pixels stays cheap (a few
    hundred steps). Same layout as `write_base_corpus`.
    """
    from .generate import _save_jpg, held_out_seed

    root = Path(root)
    rng = np.random.default_rng(held_out_seed("colour_probe", seed))
    lines = []
    for i in range(n):
        scene = ImageScene(str(rng.choice(list(BACKGROUNDS))),
                           distinct_shapes(rng, 1, size, shape_side(size)), size)
        rel = f"colour_probe/images/img_{i:05d}.jpg"
        _save_jpg(root / rel, render_image(scene))
        shape = scene.shapes[0]
        lines.append(json.dumps({"id": f"colour_{i:05d}", "media_kind": "image", "images": [rel],
                                 "messages": [{"role": "user", "content": f"<image>\nWhat colour is the {shape.kind}?"
                                               + SHORT}, {"role": "assistant", "content": shape.color}]}))
    write_text(root / PROBE_FILE, "\n".join(lines) + "\n")
    return root / PROBE_FILE
