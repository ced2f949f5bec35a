"""Questions and answers about toy scenes: every answer is derived from the scene's ground truth.

Each generator returns `QA` items tagged with a `family` (count, color, motion, order, ...) and
whether answering needs the temporal order of frames, so tests and notebooks can check descriptors
against the truth (e.g. TNC should be high on `order` questions, AMM high on `move` clips).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .scenes import COLORS, SHAPES, ImageScene, Shape, VideoScene

LETTERS = "ABCD"
MCQ_SUFFIX = "Answer with the option's letter from the given choices directly."  # LLaVA's wording
MCQ_SUFFIX_PLAIN = "Answer with the letter of the correct option."  # options only: no word "choice(s)"
NUMBER_WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five"}


@dataclass
class QA:
    question: str
    answer: str
    family: str
    temporal: bool = False
    mcq: bool = False


def _mcq(rng: np.random.Generator, stem: str, correct: str, distractors: list[str], family: str,
         temporal: bool = False) -> QA:
    """Multiple choice with "A. ..." option lines (newline-separated, as the real pools have them).

    Half end with LLaVA's "...from the given choices" instruction, half only list the options, so
    the two `subsets.mcq_detection` modes disagree on the toy pool as they do on real pools.
    """
    opts = [correct] + [d for d in distractors if d != correct][:3]
    order = rng.permutation(len(opts))
    opts = [opts[i] for i in order]
    letter = LETTERS[opts.index(correct)]
    lines = "\n".join(f"{LETTERS[i]}. {o}" for i, o in enumerate(opts))
    suffix = MCQ_SUFFIX if rng.random() < 0.5 else MCQ_SUFFIX_PLAIN
    return QA(f"{stem}\n{lines}\n{suffix}", letter, family, temporal, mcq=True)


def _column(s: Shape, size: int) -> str:
    third = size / 3
    return "left" if s.x < third else ("right" if s.x >= 2 * third else "middle")


def article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def describe(shapes: list[Shape], background: str) -> str:
    names = [f"{article(s.name)} {s.name}" for s in shapes]
    body = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return f"The picture shows {body} on a {background} background."


def image_questions(scene: ImageScene, rng: np.random.Generator, want_mcq: bool) -> list[QA]:
    """All askable questions about an image scene (the caller samples some of them)."""
    shapes, n = scene.shapes, len(scene.shapes)
    out = [QA("How many shapes are in the image?", str(n), "count"),
           QA("Describe the image.", describe(shapes, scene.background), "caption")]
    kinds = [s.kind for s in shapes]
    colors = [s.color for s in shapes]
    for s in shapes:
        if kinds.count(s.kind) == 1:
            if want_mcq:
                out.append(_mcq(rng, f"What colour is the {s.kind}?", s.color,
                                list(rng.permutation([c for c in COLORS if c != s.color])), "color"))
            else:
                out.append(QA(f"What colour is the {s.kind} in the image?", s.color, "color"))
        if colors.count(s.color) == 1:
            out.append(QA(f"Which shape is {s.color}?", f"The {s.color} shape is a {s.kind}.", "shape"))
        col = _column(s, scene.size)
        if col != "middle":
            out.append(QA(f"Is the {s.name} on the left or on the right side of the image?", col, "position"))
    present = {(s.color, s.kind) for s in shapes}
    absent = [(c, k) for c in COLORS for k in SHAPES if (c, k) not in present]
    c, k = absent[int(rng.integers(len(absent)))]
    out.append(QA(f"Is there {article(c)} {c} {k} in the image?", "No.", "exists"))
    s = shapes[int(rng.integers(n))]
    out.append(QA(f"Is there {article(s.name)} {s.name} in the image?", "Yes.", "exists"))
    if want_mcq:
        out.append(_mcq(rng, "How many shapes can be seen?", str(n), [str(x) for x in rng.permutation(range(1, 6))],
                        "count"))
    return out


def video_questions(scene: VideoScene, rng: np.random.Generator, want_mcq: bool) -> list[QA]:
    """All askable questions about a clip; order/change questions are the temporal ones."""
    s0 = scene.shapes[0]
    if scene.kind == "move":
        d = scene.direction
        out = [QA(f"Which direction does the {s0.name} move?", d, "motion"),
               QA(f"Is the {s0.name} moving or standing still?", "It is moving.", "motion"),
               QA(f"What does the {s0.name} do after the video starts?", f"It moves {d} across the frame.",
                  "motion", temporal=True)]
        if want_mcq:
            out.append(_mcq(rng, f"In which direction is the {s0.name} moving?", d, ["left", "right", "up", "down"],
                            "motion"))
        return out
    if scene.kind == "appear":
        names = [s.name for s in scene.shapes]
        seq = ", then ".join(f"the {x}" for x in names)
        out = [QA("Which shape appears first in the video?", f"The {names[0]}.", "order", temporal=True),
               QA(f"What appears after the {names[0]}?", f"The {names[1]}.", "order", temporal=True),
               QA("In what sequence do the shapes appear?", f"First {seq}.", "order", temporal=True),
               QA("How many shapes are visible at the end of the video?", str(len(names)), "count")]
        if want_mcq:
            others = [f"the {c} {k}" for c in COLORS for k in SHAPES if f"{c} {k}" not in names]
            pick = [others[i] for i in rng.permutation(len(others))[:2]] + [f"the {x}" for x in names[1:]]
            out.append(_mcq(rng, "Which shape appears first?", f"the {names[0]}", pick, "order", temporal=True))
        return out
    if scene.kind == "color_change":
        k, c1, c2 = s0.kind, s0.color, scene.new_color
        out = [QA(f"What colour is the {k} before it changes?", c1, "change", temporal=True),
               QA(f"What colour is the {k} at the end of the clip?", c2, "change"),
               QA(f"What happens to the {k} during the video?", f"It changes colour from {c1} to {c2}.", "change",
                  temporal=True)]
        if want_mcq:
            out.append(_mcq(rng, f"Which colour does the {k} turn into?", c2,
                            list(rng.permutation([c for c in COLORS if c != c2])), "change"))
        return out
    # static
    out = [QA("How many shapes are in the video?", str(len(scene.shapes)), "count"),
           QA("Is anything moving in the video?", "No, the scene stays still.", "static"),
           QA("Describe the scene.", describe(scene.shapes, scene.background), "caption")]
    kinds = [s.kind for s in scene.shapes]
    for s in scene.shapes:
        if kinds.count(s.kind) == 1:
            out.append(QA(f"What colour is the {s.kind} in the video?", s.color, "color"))
    return out


def text_only_question(rng: np.random.Generator) -> QA:
    """Questions without media (LLaVA-665K has text-only rows)."""
    kind = int(rng.integers(3))
    if kind == 0:
        a, b = (int(x) for x in rng.integers(1, 20, size=2))
        return QA(f"What is {a} plus {b}?", str(a + b), "arithmetic")
    if kind == 1:
        k = str(rng.choice(["triangle", "square"]))
        n = 3 if k == "triangle" else 4
        return QA(f"How many sides does a {k} have?", f"A {k} has {NUMBER_WORDS[n]} sides.", "geometry")
    mixes = {("blue", "yellow"): "green", ("red", "yellow"): "orange", ("red", "blue"): "purple"}
    (c1, c2), res = list(mixes.items())[int(rng.integers(len(mixes)))]
    return QA(f"Which colour do you get when you mix {c1} and {c2} paint?", f"You get {res}.", "colors")


def sample_questions(qas: list[QA], rng: np.random.Generator, n: int) -> list[QA]:
    """n distinct questions (fewer if the scene has fewer), order seeded."""
    idx = rng.permutation(len(qas))[: max(1, min(n, len(qas)))]
    return [qas[i] for i in idx]
