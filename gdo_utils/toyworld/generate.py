"""Write the toy world: media files + four QA pools in the real file layouts + ground truth.

Layout under `root` (outputs/<run>/toyworld/ in the demo):
  onevision.jsonl     LLaVA-OneVision style image QA  {id, images, messages, data_source}
  llava_video.jsonl   LLaVA-Video style               {id, video_id, images:[frames] | video, messages, data_source}
  llava665k.json      LLaVA-665K style JSON array      {id, image?, conversations:[{from, value}]}
  visionflan.json     Vision-Flan style JSON array     {id, image, conversations}
  images/ coco/ flan/ frames/<vid>/ videos/<vid>.mp4    the media
  truth.parquet       one row per media item: kind, scene (JSON), file
  base_corpus/        the base model's corpus (held-out still images and static clips; n_base_corpus > 0)
                      and its skill drills (<skill>.jsonl; base_skills)
  tokenizer_corpus.json  texts of the kind the world produces (the demo's tiny tokenizer is trained on them)
  report.json, manifest.json
A few faults are injected on purpose (malformed line, missing image, corrupt mp4, empty answer,
missing conversations, no frames); `report.json` lists each with the quarantine reason the pool
stage must give it, so the demo's quarantine is checkable rather than decorative.
"""
from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from ..config import ToyWorldConfig, canonical_json
from ..io import manifest_matches, read_json, write_json, write_manifest, write_parquet, write_text
from .image_bench import FILES as IMAGE_BENCH_FILES, BENCH_DIR as IMAGE_BENCH_DIR, write_image_benchmarks
from .base_corpus import FILE as BASE_CORPUS_FILE, skill_file, write_base_corpus, write_skill_corpora
from .benchmarks import write_toy_benchmarks
from .questions import QA, image_questions, sample_questions, text_only_question, video_questions
from .scenes import VIDEO_KINDS, render_image, render_video, sample_image_scene, sample_video_scene

log = logging.getLogger(__name__)
VERSION = 4  # bump when the generator's output changes for the same config

IMAGE_SOURCES = {  # question family -> data_source (several naming styles, so source groups differ)
    "count": "shape_counting(synth_cauldron)", "caption": "toy_detailed_caption_long_v1",
    "color": "color_vqa_synthetic_images_v2", "shape": "shape_naming_qa", "position": "spatial_position_qa_toy",
    "exists": "object_presence(synth_cauldron)",
}
VIDEO_SOURCES = {
    "move": "llava_video_moving_objects_synth", "appear": "temporal_order_qa(toy_academic)",
    "color_change": "color_change_video_qa_v1_extra", "static": "static_scene_video",
}
FLAN_TASKS = {
    "count": "Task: shape counting. Count the objects in the image and answer with a number.",
    "color": "Task: colour identification. Name the colour that is asked for.",
    "position": "Task: spatial relation. Decide on which side of the image the object lies.",
    "exists": "Task: object presence. Answer yes or no.",
    "caption": "Task: image description. Write one sentence about the image.",
    "shape": "Task: shape naming. Name the shape that is asked for.",
}


def held_out_seed(name: str, base: int) -> int:
    """A seed for a held-out split (e.g. a toy benchmark) that never collides with the pools' seeds."""
    return (base * 1_000_003 + int(hashlib.sha1(name.encode()).hexdigest()[:8], 16)) % (2**31 - 1)


def _rng(cfg: ToyWorldConfig, stream: str, i: int) -> np.random.Generator:
    """Independent generator per (stream, item): adding items never changes earlier ones."""
    return np.random.default_rng([cfg.seed, int(hashlib.sha1(stream.encode()).hexdigest()[:8], 16), i])


def _save_jpg(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, format="JPEG", quality=92)


def _save_mp4(path: Path, frames: np.ndarray, fps: int = 8) -> None:
    """libx264 via imageio-ffmpeg, single-threaded (deterministic bytes)."""
    import imageio.v2 as imageio

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.mp4")
    imageio.mimwrite(tmp, list(frames), fps=fps, codec="libx264", macro_block_size=16,
                     ffmpeg_params=["-threads", "1"], pixelformat="yuv420p")
    tmp.replace(path)


def _user_text(q: str, with_token: str | None, first: bool) -> str:
    return f"{with_token}\n{q}" if (with_token and first) else q


def _messages(qas: list[QA], token: str | None, style: str, system: bool = False) -> list[dict]:
    """Turns in `role/content` (OneVision) or `from/value` (LLaVA) style; the media token on turn 1."""
    out: list[dict] = []
    if system:
        out.append({"role": "system", "content": "You are a helpful assistant."} if style == "role"
                   else {"from": "system", "value": "You are a helpful assistant."})
    for j, qa in enumerate(qas):
        u = _user_text(qa.question, token, j == 0)
        if style == "role":
            out += [{"role": "user", "content": u}, {"role": "assistant", "content": qa.answer}]
        else:
            out += [{"from": "human", "value": u}, {"from": "gpt", "value": qa.answer}]
    return out


def _n_turns(rng: np.random.Generator, cfg: ToyWorldConfig) -> int:
    return int(rng.integers(2, 4)) if rng.random() < cfg.multi_turn_ratio else 1


# ----------------------------------------------------------------------------- pools
def _onevision(cfg: ToyWorldConfig, root: Path, truth: list[dict], faults: list[dict]) -> list[str]:
    lines: list[str] = []
    for i in range(cfg.n_onevision):
        rng = _rng(cfg, "onevision", i)
        scene = sample_image_scene(rng, cfg.image_size, cfg.shape_fraction)
        rel = f"images/ov_{i:05d}.jpg"
        _save_jpg(root / rel, render_image(scene))
        truth.append({"media_id": f"ov_{i:05d}", "pool": "onevision", "kind": "image", "file": rel,
                      "scene": canonical_json(scene.to_dict())})
        qas = sample_questions(image_questions(scene, rng, rng.random() < cfg.mcq_ratio), rng, _n_turns(rng, cfg))
        style = "role" if rng.random() < 0.8 else "from"
        rec = {"id": f"ov_synth_{i:05d}", "images": [rel],
               "messages": _messages(qas, "<image>", style, system=rng.random() < 0.1),
               "data_source": IMAGE_SOURCES[qas[0].family]}
        lines.append(json.dumps(rec))
    # injected faults
    k = len(lines) // 2
    lines.insert(k, '{"id": "ov_broken_line", "images": ["images/ov_00000.jpg"], "messages": [')
    faults.append({"file": "onevision.jsonl", "line": k + 1, "reason": "malformed_json"})
    lines.append(json.dumps({"id": "ov_missing_image", "images": ["images/does_not_exist.jpg"],
                             "messages": _messages([QA("What is shown?", "A shape.", "caption")], "<image>", "role"),
                             "data_source": IMAGE_SOURCES["caption"]}))
    faults.append({"file": "onevision.jsonl", "line": len(lines), "reason": "missing_media"})
    lines.append(json.dumps({"id": "ov_empty_answer", "images": ["images/ov_00001.jpg"],
                             "messages": [{"role": "user", "content": "<image>\nHow many shapes?"},
                                          {"role": "assistant", "content": "  "}],
                             "data_source": IMAGE_SOURCES["count"]}))
    faults.append({"file": "onevision.jsonl", "line": len(lines), "reason": "empty_turns"})
    return lines


def _llava_video(cfg: ToyWorldConfig, root: Path, truth: list[dict], faults: list[dict]) -> list[str]:
    lines: list[str] = []
    for v in range(cfg.n_llava_video):
        rng = _rng(cfg, "llava_video", v)
        kind = "static" if rng.random() < cfg.static_video_ratio else str(rng.choice(VIDEO_KINDS[:3]))
        n_frames = 40 if v % 5 == 4 else cfg.frames_per_video  # some clips longer than T=32
        scene = sample_video_scene(rng, cfg.video_size, n_frames, kind, cfg.shape_fraction)
        frames = render_video(scene)
        vid = f"vid_{v:04d}"
        as_mp4 = rng.random() < cfg.video_as_mp4_ratio
        if as_mp4:
            rel = f"videos/{vid}.mp4"
            _save_mp4(root / rel, frames)
            media: dict = {"video": rel}
        else:
            rel = f"frames/{vid}"
            names = [f"{rel}/frame_{t:04d}.jpg" for t in range(n_frames)]
            for t, name in enumerate(names):
                _save_jpg(root / name, frames[t])
            media = {"images": names} if v % 2 == 0 else {"video": rel}
        truth.append({"media_id": vid, "pool": "llava_video", "kind": kind, "file": rel,
                      "scene": canonical_json(scene.to_dict())})
        all_qas = video_questions(scene, rng, rng.random() < cfg.mcq_ratio)
        order = rng.permutation(len(all_qas))
        n_records = int(rng.integers(1, 4))
        pos = 0
        for r in range(n_records):
            if pos >= len(order):
                break
            n_t = _n_turns(rng, cfg)
            qas = [all_qas[i] for i in order[pos:pos + n_t]]
            pos += n_t
            rec = {"id": f"{vid}_r{r}", "video_id": vid, **media,
                   "messages": _messages(qas, "<video>", "role"), "data_source": VIDEO_SOURCES[kind]}
            lines.append(json.dumps(rec))
    corrupt = "videos/corrupt_0000.mp4"
    (root / corrupt).parent.mkdir(parents=True, exist_ok=True)
    (root / corrupt).write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    lines.append(json.dumps({"id": "corrupt_video", "video_id": "corrupt_0000", "video": corrupt,
                             "messages": _messages([QA("What moves?", "A square.", "motion")], "<video>", "role"),
                             "data_source": VIDEO_SOURCES["move"]}))
    faults.append({"file": "llava_video.jsonl", "line": len(lines), "reason": "unreadable_media"})
    lines.append(json.dumps({"id": "no_frames_video", "video_id": "nothing",
                             "messages": _messages([QA("What happens?", "Nothing.", "static")], "<video>", "role")}))
    faults.append({"file": "llava_video.jsonl", "line": len(lines), "reason": "no_frames"})
    return lines


def _llava_json(cfg: ToyWorldConfig, root: Path, truth: list[dict], faults: list[dict], name: str, n: int,
                image_dir: str, flan: bool) -> list[dict]:
    """LLaVA-665K (mixed conversations, some text-only) or Vision-Flan (task-instruction prompts)."""
    records: list[dict] = []
    for i in range(n):
        rng = _rng(cfg, name, i)
        if not flan and rng.random() < cfg.text_only_ratio:
            qas = [text_only_question(rng) for _ in range(_n_turns(rng, cfg))]
            records.append({"id": f"text_{i:06d}", "conversations": _messages(qas, None, "from")})
            continue
        scene = sample_image_scene(rng, cfg.image_size, cfg.shape_fraction)
        rel = f"{image_dir}/{i:012d}.jpg"
        _save_jpg(root / rel, render_image(scene))
        truth.append({"media_id": f"{name}_{i:06d}", "pool": name, "kind": "image", "file": rel,
                      "scene": canonical_json(scene.to_dict())})
        qas = sample_questions(image_questions(scene, rng, rng.random() < cfg.mcq_ratio), rng,
                               1 if flan else _n_turns(rng, cfg))
        if flan:
            qa = qas[0]
            task = qa.family
            qas = [QA(f"{FLAN_TASKS[task]}\n{qa.question}", qa.answer, qa.family, mcq=qa.mcq)]
            rid = f"{task}+{i:06d}"
        else:
            rid = f"{i:012d}"
        records.append({"id": rid, "image": rel, "conversations": _messages(qas, "<image>", "from")})
    if flan:
        records.append({"id": "flan_empty_answer", "image": records[0]["image"],
                        "conversations": [{"from": "human", "value": "<image>\nTask: count. How many?"},
                                          {"from": "gpt", "value": ""}]})
        faults.append({"file": f"{name}.json", "line": len(records), "reason": "empty_turns"})
    else:
        records.append({"id": "no_conversations", "image": records[0].get("image", "coco/x.jpg")})
        faults.append({"file": f"{name}.json", "line": len(records), "reason": "missing_messages"})
    return records


# ----------------------------------------------------------------------------- entry point
def toyworld_hash(cfg: ToyWorldConfig) -> str:
    """The world's cache key: its config, VERSION and the generator's own code (gdo_utils.cache)."""
    from ..cache import code_version

    key = {"cfg": cfg.model_dump(mode="json"), "v": VERSION, "code": code_version(["gdo_utils.toyworld"])}
    return hashlib.sha256(canonical_json(key).encode()).hexdigest()[:16]


def generate_toyworld(cfg: ToyWorldConfig, root: str | Path, force: bool = False) -> dict:
    """Generate (or reuse, when the manifest matches) the toy world under `root`; returns its report."""
    from tqdm.auto import tqdm

    root = Path(root)
    h = toyworld_hash(cfg)
    files = ["onevision.jsonl", "llava_video.jsonl", "llava665k.json", "visionflan.json", "truth.parquet",
             "tokenizer_corpus.json", "report.json"]
    files += [f"{IMAGE_BENCH_DIR}/{f}" for f in IMAGE_BENCH_FILES]
    files += [BASE_CORPUS_FILE] if cfg.n_base_corpus else []
    files += [skill_file(k) for k in cfg.base_skills]
    if not force and manifest_matches(root, h, files):
        return read_json(root / "report.json")
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    t0 = time.time()
    truth: list[dict] = []
    faults: list[dict] = []
    steps = tqdm(total=4, desc="toy world", leave=False)
    ov = _onevision(cfg, root, truth, faults)
    write_text(root / "onevision.jsonl", "\n".join(ov) + "\n")
    steps.update()
    vv = _llava_video(cfg, root, truth, faults)
    write_text(root / "llava_video.jsonl", "\n".join(vv) + "\n")
    steps.update()
    l665 = _llava_json(cfg, root, truth, faults, "llava665k", cfg.n_llava665k, "coco/train2017", flan=False)
    write_json(root / "llava665k.json", l665)
    steps.update()
    flan = _llava_json(cfg, root, truth, faults, "visionflan", cfg.n_visionflan, "flan/images", flan=True)
    write_json(root / "visionflan.json", flan)
    steps.update()
    steps.close()
    base_corpus, corpus_scenes = write_base_corpus(cfg, root, {t["scene"] for t in truth}) if cfg.n_base_corpus \
        else (None, set())
    skills = write_skill_corpora(cfg, root) if cfg.base_skills else None
    # held-out scenes, official layouts (gdo_utils.evaluate); never a pool or base-corpus scene
    benchmarks = write_toy_benchmarks(cfg, root, truth + [{"scene": k} for k in sorted(corpus_scenes)])
    truth_df = pd.DataFrame(truth, columns=["media_id", "pool", "kind", "file", "scene"])
    write_parquet(root / "truth.parquet", truth_df)
    write_json(root / "tokenizer_corpus.json", text_corpus(cfg))
    image_bench = write_image_benchmarks(cfg, root, truth_df["scene"].tolist(), exclude=corpus_scenes)
    report = {
        "root": str(root), "config_hash": h,
        "records": {"onevision": len(ov), "llava_video": len(vv), "llava665k": len(l665), "visionflan": len(flan)},
        "media": {k: int(v) for k, v in truth_df["kind"].value_counts().sort_index().items()},
        "injected_faults": faults,
        "image_benchmarks": image_bench,
        "benchmarks": benchmarks,
        "base_corpus": base_corpus,
        "base_skills": skills,
    }
    write_json(root / "report.json", report)
    write_manifest(root, stage="toyworld", params_hash=h, wall_time_s=time.time() - t0,
                   outputs=[root / f for f in files])
    log.info("toy world: %s in %.1fs", report["records"], time.time() - t0)
    return report


def text_corpus(cfg: ToyWorldConfig, n: int = 400) -> list[str]:
    """Texts of the kind the toy world produces (questions, answers, prompts), for training a tokenizer."""
    from ..descriptors.temporal import TNC_PROMPT_TEMPLATE  # the tiny VLM must also read the TNC prompt

    out: list[str] = []
    for i in range(n):
        rng = _rng(cfg, "corpus", i)
        scene = sample_image_scene(rng, cfg.image_size, cfg.shape_fraction)
        out += [f"{q.question} {q.answer}" for q in image_questions(scene, rng, bool(i % 2))]
        kind = VIDEO_KINDS[i % len(VIDEO_KINDS)]
        vs = sample_video_scene(rng, cfg.video_size, cfg.frames_per_video, kind, cfg.shape_fraction)
        out += [f"{q.question} {q.answer}" for q in video_questions(vs, rng, bool(i % 3 == 0))]
        out.append(f"{text_only_question(rng).question}")
        if i % 20 == 0:
            out.append(TNC_PROMPT_TEMPLATE.format(question=out[-2]) + " Temporal Static")
    out += list(FLAN_TASKS.values()) + ["You are a helpful assistant.", "Temporal", "Static", "temporal static"]
    return out
