"""Toy benchmarks in the official MVBench / VideoMME / MLVU / LVBench layouts, from held-out scenes.

Each family gets a few questions about toy clips whose answers are true for the pixels (the scene
specs of `scenes.py`), written exactly as the real files are laid out so the same loaders read
them (gdo_utils.evaluate): MVBench `json/<subtask>.json` + main-branch video folders (a `bound`
task whose answer depends on honouring start/end, and a 3-fps frame-folder task), VideoMME's
parquet with duration classes and task types, MLVU's test JSON with up to six options, LVBench's
`video_info.meta.jsonl` with inline options and question-type lists. Scenes come from seeds of
`held_out_seed` and any scene whose spec equals one in the training pools is redrawn, so the pools
never contain a benchmark scene. VideoMME carries one row whose video is deliberately absent, so the
missing-video count and policy show in the demo.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from ..config import ToyWorldConfig, canonical_json
from ..io import write_json, write_parquet, write_text
from .scenes import COLORS, DIRECTIONS, SHAPES, VideoScene, render_video, sample_video_scene

LETTERS = "ABCDEF"
MP4_FPS = 4


@dataclass
class ToyMCQ:
    question: str
    options: list[str]
    answer: str                 # the correct option text
    tags: tuple[str, ...] = ()  # LVBench question types


class SceneSource:
    """Held-out scenes: seeded per benchmark, redrawn when a training-pool scene has the same spec."""

    def __init__(self, cfg: ToyWorldConfig, name: str, pool_scenes: set[str]) -> None:
        from .generate import held_out_seed

        self.seed, self.size, self.pool = held_out_seed(f"benchmark/{name}", cfg.seed), cfg.video_size, pool_scenes
        self.shape_fraction = cfg.shape_fraction
        self.redrawn = 0

    def draw(self, i: int, kind: str, n_frames: int) -> tuple[VideoScene, np.random.Generator]:
        for attempt in range(100):
            rng = np.random.default_rng([self.seed, i, attempt])
            scene = sample_video_scene(rng, self.size, n_frames, kind, self.shape_fraction)
            if canonical_json(scene.to_dict()) not in self.pool:
                return scene, rng
            self.redrawn += 1
        raise RuntimeError("could not draw a held-out scene in 100 attempts")


def _shuffled(rng: np.random.Generator, correct: str, distractors: list[str], k: int) -> list[str]:
    opts = [correct] + [d for d in dict.fromkeys(distractors) if d != correct][: k - 1]
    return [opts[i] for i in rng.permutation(len(opts))]


def _other_names(scene: VideoScene, rng: np.random.Generator) -> list[str]:
    have = {s.name for s in scene.shapes}
    others = [f"{c} {k}" for c in COLORS for k in SHAPES if f"{c} {k}" not in have]
    return [others[i] for i in rng.permutation(len(others))]


# ----------------------------------------------------------------------------- question makers
def q_direction(s: VideoScene, rng) -> ToyMCQ:
    return ToyMCQ(f"Which direction does the {s.shapes[0].name} move?", _shuffled(rng, s.direction, list(DIRECTIONS), 4),
                  s.direction, ("event understanding",))


def q_new_colour(s: VideoScene, rng, k: int = 4) -> ToyMCQ:
    others = [c for c in rng.permutation(list(COLORS)) if c != s.new_color]
    return ToyMCQ(f"Which colour does the {s.shapes[0].kind} turn into?", _shuffled(rng, s.new_color, others, k),
                  s.new_color, ("key information retrieval", "entity recognition"))


def q_first_colour(s: VideoScene, rng, k: int = 4) -> ToyMCQ:
    c = s.shapes[0].color
    others = [s.new_color] + [x for x in rng.permutation(list(COLORS)) if x not in (c, s.new_color)]
    return ToyMCQ(f"What colour is the {s.shapes[0].kind} at the beginning?", _shuffled(rng, c, others, k), c,
                  ("key information retrieval",))


def q_first_shape(s: VideoScene, rng) -> ToyMCQ:
    names = [x.name for x in s.shapes]
    return ToyMCQ("Which shape appears first?", _shuffled(rng, f"the {names[0]}", [f"the {n}" for n in names[1:]] +
                                                          [f"the {n}" for n in _other_names(s, rng)], 4),
                  f"the {names[0]}", ("temporal grounding", "event understanding"))


def q_count_appear(s: VideoScene, rng, k: int = 4) -> ToyMCQ:
    n = str(len(s.shapes))
    return ToyMCQ("How many shapes appear during the video?", _shuffled(rng, n, [str(x) for x in range(1, 7)], k), n,
                  ("reasoning",))


def q_exists(s: VideoScene, rng) -> ToyMCQ:
    if rng.random() < 0.5:
        sh = s.shapes[int(rng.integers(len(s.shapes)))].name
        return ToyMCQ(f"Is there a {sh} in the video?", _shuffled(rng, "yes", ["no"], 2), "yes", ("entity recognition",))
    sh = _other_names(s, rng)[0]
    return ToyMCQ(f"Is there a {sh} in the video?", _shuffled(rng, "no", ["yes"], 2), "no", ("entity recognition",))


def q_moving_count(s: VideoScene, rng) -> ToyMCQ:
    n = "1" if s.kind == "move" else "0"
    return ToyMCQ("How many shapes are moving?", _shuffled(rng, n, ["0", "1", "2", "3"], 4), n, ("reasoning",))


TOPICS = {"move": "a shape moving across the frame", "appear": "shapes appearing one after another",
          "color_change": "a shape changing its colour", "static": "a still scene where nothing happens"}


def q_topic(s: VideoScene, rng) -> ToyMCQ:
    return ToyMCQ("What is the video mainly about?", _shuffled(rng, TOPICS[s.kind], list(TOPICS.values()), 4),
                  TOPICS[s.kind], ("summarization",))


def q_order(s: VideoScene, rng) -> ToyMCQ:
    names = [x.name for x in s.shapes]
    right = ", then ".join(names)
    perms = [", then ".join(names[i] for i in rng.permutation(len(names))) for _ in range(12)]
    return ToyMCQ("In which order do the shapes appear?", _shuffled(rng, right, perms, 4), right, ("temporal grounding",))


# ----------------------------------------------------------------------------- writers
def _mp4(path: Path, frames: np.ndarray) -> None:
    from .generate import _save_mp4

    _save_mp4(path, frames, fps=MP4_FPS)


# MVBench subtask -> (main-branch folder, scene kind, frames, question maker, bound (s) or None, frame folder?)
MVBENCH_TOY: dict[str, tuple[str, str, int, Callable, tuple[float, float] | None, bool]] = {
    "moving_direction": ("clevrer/video_validation", "move", 16, q_direction, None, False),
    "action_sequence": ("star/Charades_v1_480", "appear", 32, q_first_shape, (2.0, 8.0), False),
    "state_change": ("perception/videos", "color_change", 16, q_new_colour, None, False),
    "object_existence": ("clevrer/video_validation", "static", 12, q_exists, None, False),
    "action_count": ("perception/videos", "appear", 24, q_count_appear, None, False),
    "moving_count": ("clevrer/video_validation", "move", 12, q_moving_count, None, False),
    "episodic_reasoning": ("tvqa/frames_fps3_hq", "color_change", 18, q_first_colour, (0.0, 2.5), True),
}


# bound subtask -> lmms-eval's `video` revision folder of pre-trimmed segments (lmms-eval 0.5.0 DATA_LIST)
MVBENCH_SEGMENT_FOLDERS = {"action_sequence": "star/Charades_segment", "episodic_reasoning": "tvqa/video_fps3_hq_segment"}
FRAME_FOLDER_FPS = 3.0   # MVBench's tvqa frames_fps3_hq


def _segment(frames: np.ndarray, fps: float, bound: tuple[float, float]) -> np.ndarray:
    """The frames a pre-trimmed segment holds: ceil(start*fps) .. floor(end*fps) (qwen-vl-utils' bound rule)."""
    first = int(np.ceil(bound[0] * fps))
    last = min(int(np.floor(bound[1] * fps)), len(frames) - 1)
    return frames[first:last + 1]


def write_mvbench(cfg: ToyWorldConfig, root: Path, pool: set[str], n: int) -> dict:
    """json/<subtask>.json + video/<main-branch folder>/...; action_sequence's bound skips the first shape.

    Both inputs the kit reads exist: the main-branch files (bound applied by the reader) and, for the bound
    subtasks, lmms-eval's pre-trimmed segments (`video` revision folders; episodic_reasoning as `<name>.mp4`)."""
    src = SceneSource(cfg, "mvbench", pool)
    counts = {}
    for t, (sub, (folder, kind, n_frames, maker, bound, frame_folder)) in enumerate(MVBENCH_TOY.items()):
        rows = []
        for i in range(n):
            kind_i = kind if not (sub == "moving_count" and i % 2) else "static"
            scene, rng = src.draw(t * 1000 + i, kind_i, n_frames)
            if sub == "action_sequence":  # the bound starts after shape 0 appeared: the first to appear in it is shape 1
                scene.appear_frames = [0, 10, 20][: len(scene.shapes)]
                q = _action_sequence_q(scene, rng)
            else:
                q = maker(scene, rng)
            frames = render_video(scene)
            name = f"toy_{sub}_{i:03d}"
            if frame_folder:
                from .generate import _save_jpg

                for k, f in enumerate(frames, 1):
                    _save_jpg(root / "video" / folder / name / f"{k:05d}.jpg", f)
            else:
                name += ".mp4"
                _mp4(root / "video" / folder / name, frames)
            row = {"video": name, "question": q.question, "candidates": q.options, "answer": q.answer}
            if bound:
                row.update(start=bound[0], end=bound[1])
                fps = FRAME_FOLDER_FPS if frame_folder else MP4_FPS
                seg_name = f"{name}.mp4" if frame_folder else name
                from .generate import _save_mp4

                _save_mp4(root / "video" / MVBENCH_SEGMENT_FOLDERS[sub] / seg_name, _segment(frames, fps, bound),
                          fps=fps)
            rows.append(row)
        write_json(root / "json" / f"{sub}.json", rows)
        counts[sub] = len(rows)
    return {"questions": counts, "redrawn": src.redrawn}


def _action_sequence_q(scene: VideoScene, rng) -> ToyMCQ:
    """Inside the bound (2-8 s at 4 fps: frames 8-32) shape 0 is already there; shape 1 appears first."""
    names = [x.name for x in scene.shapes]
    right = names[1]
    return ToyMCQ("Which shape appears first in this part of the video?",
                  _shuffled(rng, right, [n for n in names if n != right] + _other_names(scene, rng), 4), right)


VIDEOMME_DURATIONS = {"short": 16, "medium": 32, "long": 48}   # frames at 4 fps: 4 s, 8 s, 12 s
VIDEOMME_TASKS = [("move", q_direction, "Action Recognition"), ("appear", q_first_shape, "Temporal Perception"),
                  ("color_change", q_new_colour, "Attribute Perception"), ("appear", q_count_appear, "Counting Problem"),
                  ("appear", q_order, "Temporal Reasoning")]


def write_videomme(cfg: ToyWorldConfig, root: Path, pool: set[str], n_videos: int) -> dict:
    """videomme/test-00000-of-00001.parquet (lettered options) + data/<videoID>.mp4; one video left absent."""
    src = SceneSource(cfg, "videomme", pool)
    rows = []
    for v in range(n_videos + 1):
        duration = list(VIDEOMME_DURATIONS)[v % 3]
        kind, _, _ = VIDEOMME_TASKS[v % len(VIDEOMME_TASKS)]
        if kind == "move" and duration == "long":
            kind = "color_change"
        scene, rng = src.draw(v, kind, VIDEOMME_DURATIONS[duration])
        vid = f"toyvmme{v:03d}"
        missing = v == n_videos
        if not missing:
            _mp4(root / "data" / f"{vid}.mp4", render_video(scene))
        makers = [(m, tt) for k, m, tt in VIDEOMME_TASKS if k == scene.kind] or [(q_topic, "Information Synopsis")]
        makers = (makers + [(q_topic, "Information Synopsis"), (q_exists, "Object Recognition")])[:3]
        for k, (maker, task_type) in enumerate(makers, 1):
            q = maker(scene, rng)
            opts = [f"{LETTERS[j]}. {o}" for j, o in enumerate(q.options)]
            rows.append({"video_id": f"{v:03d}", "duration": duration, "domain": "Life Record",
                         "sub_category": "Daily Life", "url": f"https://example.invalid/{vid}", "videoID": vid,
                         "question_id": f"{v:03d}-{k}", "task_type": task_type, "question": q.question,
                         "options": opts, "answer": LETTERS[q.options.index(q.answer)]})
    write_parquet(root / "videomme" / "test-00000-of-00001.parquet", pd.DataFrame(rows))
    return {"questions": len(rows), "missing_video": f"toyvmme{n_videos:03d}", "redrawn": src.redrawn}


MLVU_TOY = {"count": ("appear", lambda s, r: q_count_appear(s, r, 6), 24),
            "order": ("appear", q_order, 24),
            "needleQA": ("color_change", lambda s, r: q_first_colour(s, r, 6), 32),
            "anomaly_reco": ("color_change", lambda s, r: q_new_colour(s, r, 5), 24),
            "topic_reasoning": (None, q_topic, 16)}


def write_mlvu(cfg: ToyWorldConfig, root: Path, pool: set[str], n: int) -> dict:
    """test_question.json (official test layout, answers merged in) + video/<name>.mp4; up to 6 options."""
    src = SceneSource(cfg, "mlvu", pool)
    rows = []
    for t, (task, (kind, maker, n_frames)) in enumerate(MLVU_TOY.items()):
        for i in range(n):
            k = kind or ("move", "appear", "color_change", "static")[i % 4]
            scene, rng = src.draw(t * 1000 + i, k, n_frames)
            name = f"toy_{task}_{i:03d}.mp4"
            _mp4(root / "video" / name, render_video(scene))
            q = maker(scene, rng)
            rows.append({"question_id": f"{task}_{i}", "question_type": task, "video": name, "question": q.question,
                         "candidates": q.options, "answer": q.answer})
    write_json(root / "test_question.json", rows)
    return {"questions": len(rows), "redrawn": src.redrawn}


def write_lvbench(cfg: ToyWorldConfig, root: Path, pool: set[str], n_videos: int) -> dict:
    """video_info.meta.jsonl: one line per video with its qa list (inline "(A) .." options, letter answers)."""
    src = SceneSource(cfg, "lvbench", pool)
    lines, nq = [], 0
    kinds = ("move", "appear", "color_change", "static")
    for v in range(n_videos):
        kind = kinds[v % 4]
        scene, rng = src.draw(v, kind, 40 if kind != "move" else 32)
        key = f"toylvb{v:03d}"
        _mp4(root / "videos" / f"{key}.mp4", render_video(scene))
        makers = {"move": [q_direction, q_topic], "appear": [q_first_shape, q_order, q_topic],
                  "color_change": [q_new_colour, q_first_colour, q_topic], "static": [q_exists, q_topic]}[kind]
        qa = []
        for j, maker in enumerate(makers):
            q = maker(scene, rng)
            opts = (q.options + [x for x in ("none of these", "all of these", "something else") if x not in q.options])[:4]
            text = q.question + "".join(f"\n({LETTERS[k]}) {o}" for k, o in enumerate(opts))
            qa.append({"uid": f"{key}_{j}", "question": text, "answer": LETTERS[opts.index(q.answer)],
                       "question_type": list(q.tags), "time_reference": ""})
        nq += len(qa)
        lines.append(json.dumps({"key": key, "type": "toy", "video_info": {"duration_minutes": scene.n_frames / MP4_FPS / 60},
                                 "qa": qa}))
    write_text(root / "video_info.meta.jsonl", "\n".join(lines) + "\n")
    return {"questions": nq, "redrawn": src.redrawn}


def write_toy_benchmarks(cfg: ToyWorldConfig, root: str | Path, truth: list[dict]) -> dict:
    """All four toy benchmarks under <root>/benchmarks/<name>/; returns counts for the toy world report."""
    base = Path(root) / "benchmarks"
    pool = {t["scene"] for t in truth}
    n = cfg.bench_questions_per_task
    return {"mvbench": write_mvbench(cfg, base / "mvbench", pool, n),
            "videomme": write_videomme(cfg, base / "videomme", pool, n),
            "mlvu": write_mlvu(cfg, base / "mlvu", pool, n),
            "lvbench": write_lvbench(cfg, base / "lvbench", pool, n)}
