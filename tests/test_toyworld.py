"""The toy world: deterministic, answers true for the drawn and decoded media, faults counted."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gdo_utils.config import ToyWorldConfig
from gdo_utils.io import sha256_file
from gdo_utils.media import load_frames, read_video_frames
from gdo_utils.toyworld import generate_toyworld, held_out_seed, text_corpus
from gdo_utils.toyworld.scenes import BACKGROUNDS, render_video, sample_video_scene

SMALL = dict(enabled=True, seed=7, n_onevision=40, mcq_ratio=0.6, n_llava_video=10, n_llava665k=12, n_visionflan=8)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("tw") / "toyworld"
    report = generate_toyworld(ToyWorldConfig(**SMALL), root)
    return root, report


def _centroid(frame: np.ndarray, bg: tuple[int, int, int]) -> np.ndarray:
    diff = np.abs(frame.astype(int) - np.array(bg)).sum(-1) > 90
    ys, xs = np.nonzero(diff)
    return np.array([xs.mean(), ys.mean()])


def test_deterministic_bytes(world, tmp_path):
    root, _ = world
    again = generate_toyworld(ToyWorldConfig(**SMALL), tmp_path / "again")
    for f in ("onevision.jsonl", "llava_video.jsonl", "llava665k.json", "visionflan.json", "truth.parquet"):
        assert sha256_file(root / f) == sha256_file(tmp_path / "again" / f), f
    mp4s = sorted((root / "videos").glob("vid_*.mp4"))
    assert mp4s, "some videos are shipped as mp4"
    for p in mp4s:
        assert sha256_file(p) == sha256_file(tmp_path / "again" / "videos" / p.name)
    assert again["config_hash"] == world[1]["config_hash"]


def test_other_seed_differs(world, tmp_path):
    other = generate_toyworld(ToyWorldConfig(**{**SMALL, "seed": 8}), tmp_path / "other")
    assert other["config_hash"] != world[1]["config_hash"]
    assert (tmp_path / "other" / "onevision.jsonl").read_bytes() != (world[0] / "onevision.jsonl").read_bytes()


def test_reuse_when_up_to_date(world):
    root, report = world
    stamp = (root / "onevision.jsonl").stat().st_mtime_ns
    assert generate_toyworld(ToyWorldConfig(**SMALL), root) == report
    assert (root / "onevision.jsonl").stat().st_mtime_ns == stamp


def test_counts_and_formats(world):
    root, report = world
    ov = (root / "onevision.jsonl").read_text().splitlines()
    assert len(ov) == SMALL["n_onevision"] + 3  # + malformed line, missing image, empty answer
    good = [json.loads(x) for x in ov if not x.startswith('{"id": "ov_broken')]
    assert all({"id", "images", "messages"} <= set(r) for r in good)
    l665 = json.loads((root / "llava665k.json").read_text())
    assert len(l665) == SMALL["n_llava665k"] + 1
    assert all(c.get("from") in ("human", "gpt", "system") for r in l665 if "conversations" in r for c in r["conversations"])
    flan = json.loads((root / "visionflan.json").read_text())
    assert all("+" in r["id"] for r in flan[:-1])
    assert {f["reason"] for f in report["injected_faults"]} == {
        "malformed_json", "missing_media", "empty_turns", "unreadable_media", "no_frames", "missing_messages"}


def test_mcq_answers_are_the_right_letter(world):
    root, _ = world
    truth = pd.read_parquet(root / "truth.parquet").set_index("media_id")
    seen = 0
    for line in (root / "onevision.jsonl").read_text().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        msgs = rec["messages"]
        for u, a in zip(msgs[::2], msgs[1::2]):
            if u.get("role") == "system" or "\nA. " not in str(u.get("content", u.get("value"))):
                continue
            q = u.get("content", u.get("value")).replace("<image>\n", "")
            ans = a.get("content", a.get("value"))
            options = {ln[0]: ln[3:] for ln in q.splitlines() if len(ln) > 3 and ln[1:3] == ". "}
            assert ans in options
            scene = json.loads(truth.loc[rec["images"][0].split("/")[-1][:-4], "scene"])
            chosen = options[ans]
            if q.startswith("How many"):
                assert int(chosen) == len(scene["shapes"])
            else:
                kind = q.split("What colour is the ")[1].split("?")[0]
                assert chosen == next(s["color"] for s in scene["shapes"] if s["kind"] == kind)
            seen += 1
    assert seen > 0


@pytest.mark.parametrize("direction", ["left", "right", "up", "down"])
def test_drawn_motion_direction(direction):
    for i in range(40):
        sc = sample_video_scene(np.random.default_rng(i), 64, 24, "move")
        if sc.direction == direction:
            break
    frames = render_video(sc)
    d = _centroid(frames[-1], BACKGROUNDS[sc.background]) - _centroid(frames[0], BACKGROUNDS[sc.background])
    axis = {"left": (0, -1), "right": (0, 1), "up": (1, -1), "down": (1, 1)}[direction]
    assert np.sign(d[axis[0]]) == axis[1] and abs(d[axis[0]]) >= sc.speed * 20 - 2
    assert abs(d[1 - axis[0]]) < 2


def test_decoded_videos_move_as_their_questions_say(world):
    """Read back every moving clip (mp4 via decord, or frames) and check the stated direction."""
    root, _ = world
    truth = pd.read_parquet(root / "truth.parquet")
    records = [json.loads(x) for x in (root / "llava_video.jsonl").read_text().splitlines()]
    checked = 0
    for t in truth[truth["kind"].isin(["move", "static"])].itertuples():
        scene = json.loads(t.scene)
        path = root / t.file
        frames = read_video_frames(path)[0] if path.suffix == ".mp4" else load_frames([str(path)])
        c0, c1 = _centroid(frames[0], BACKGROUNDS[scene["background"]]), _centroid(frames[-1], BACKGROUNDS[scene["background"]])
        if t.kind == "static":
            assert np.abs(c1 - c0).max() < 1.0
            continue
        dx, dy = c1 - c0
        observed = ("right" if dx > 0 else "left") if abs(dx) > abs(dy) else ("down" if dy > 0 else "up")
        stated = [m["content"] for r in records if r.get("video_id") == t.media_id for m in r["messages"]
                  if m["role"] == "assistant" and m["content"] in ("left", "right", "up", "down")]
        assert observed == scene["direction"]
        assert all(s == observed for s in stated)
        checked += 1
    assert checked > 0


def test_text_corpus_and_held_out_seed():
    cfg = ToyWorldConfig(**SMALL)
    corpus = text_corpus(cfg, n=20)
    assert corpus == text_corpus(cfg, n=20) and any("Temporal" in c for c in corpus)
    assert held_out_seed("mvbench", 42) == held_out_seed("mvbench", 42) != held_out_seed("videomme", 42)


def test_every_reader_on_the_toy_world_quarantines_exactly_the_injected_faults(tmp_path):
    """Pool stage over the four toy formats: good records kept, each injected fault quarantined with its reason."""
    from gdo_utils.config import load_params
    from gdo_utils.pool import load_pool, load_quarantine, run_pool_stage

    p = load_params(Path(__file__).resolve().parents[1] / "params/demo.yaml",
                    [f"output_root={tmp_path}", *(f"toyworld.{k}={v}" for k, v in SMALL.items())])
    reports = run_pool_stage(p)
    faults = {(f["file"], f["line"], f["reason"]) for f in generate_toyworld(p.toyworld, p.toyworld_dir)["injected_faults"]}
    got = set()
    for name in reports:
        q = load_quarantine(p, name)
        got |= {(Path(f).name, int(line), r) for f, line, r in zip(q["source_file"], q["line"], q["reason"])}
        assert reports[name]["quarantined"] == len(q)
        qa = load_pool(p, name)
        assert qa["qa_uid"].is_unique and (qa["question"].str.len() > 0).all() and (qa["answer"].str.len() > 0).all()
    assert got == faults
    gdo = load_pool(p)
    assert gdo["qa_uid"].str.match(r"^(ov|vv)::").all()
    assert set(gdo["media_kind"]) == {"image", "frames", "video_file"}
    assert gdo.loc[gdo["bucket"] == "short_video", "n_frames"].max() == 32  # 40-frame clips subsampled to T


def _drawn_box(img: np.ndarray, bg: tuple[int, int, int]) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(np.abs(img.astype(int) - np.array(bg)).sum(-1) > 0)
    return int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())


@pytest.mark.parametrize("size,fraction,side", [(96, None, 16), (64, None, 10), (96, 0.875, 28), (64, 0.875, 18),
                                                (96, 1.0, 31), (96, 0.25, 8)])
def test_shape_fraction_sets_the_drawn_side_and_stays_in_its_cell(size, fraction, side):
    """shape_fraction: side = fraction of a grid cell (size // 3), never past it; None keeps max(8, size // 6)."""
    from gdo_utils.toyworld.scenes import ImageScene, distinct_shapes, render_image, shape_side

    assert shape_side(size, fraction) == side
    step = size // 3
    for i in range(12):
        rng = np.random.default_rng(i)
        sh = distinct_shapes(rng, 1, size, shape_side(size, fraction))[0]
        sh.kind = "square"
        img = render_image(ImageScene("black", [sh], size))
        x0, y0, x1, y1 = _drawn_box(img, BACKGROUNDS["black"])
        assert x1 - x0 + 1 == 2 * (side // 2) + 1 == y1 - y0 + 1
        cx, cy = sh.x // step, sh.y // step
        assert cx * step <= x0 and x1 < (cx + 1) * step and cy * step <= y0 and y1 < (cy + 1) * step


def test_shape_fraction_reaches_the_generated_pools_and_benchmarks(tmp_path):
    """The option is threaded through every writer: larger shapes cover more of each pool image and clip."""
    from PIL import Image

    cfg = dict(SMALL, n_onevision=12, n_llava_video=6, n_llava665k=4, n_visionflan=4)
    cover = {}
    for name, frac in (("default", None), ("large", 0.875)):
        root = tmp_path / name
        rep = generate_toyworld(ToyWorldConfig(**cfg, shape_fraction=frac), root)
        imgs = sorted((root / "images").glob("*.jpg"))[:10]
        clips = sorted((root / "benchmarks" / "mvbench" / "video").rglob("*.mp4"))[:4]
        assert imgs and clips
        px = [np.asarray(Image.open(p).convert("RGB")) for p in imgs]
        px += [read_video_frames(p, [0])[0][0] for p in clips]
        # share of pixels far from the image's most common colour (the background)
        def fg(a: np.ndarray) -> float:
            flat = a.reshape(-1, 3).astype(int)
            vals, counts = np.unique(flat // 16, axis=0, return_counts=True)
            return float((np.abs(flat // 16 - vals[counts.argmax()]).sum(-1) > 2).mean())
        cover[name] = (np.mean([fg(a) for a in px[:10]]), np.mean([fg(a) for a in px[10:]]), rep["config_hash"])
    assert cover["large"][0] > 1.8 * cover["default"][0]    # pool images: (28 / 16)^2 = 3x the area
    assert cover["large"][1] > 1.8 * cover["default"][1]    # benchmark clips: (18 / 10)^2 = 3.2x
    assert cover["large"][2] != cover["default"][2]
