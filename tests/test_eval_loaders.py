"""Benchmark loaders on hand-written minimal files in the official layouts, prompt snapshots, the release video input."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from gdo_utils.config import EvaluateConfig
from gdo_utils.evaluate import registry
from gdo_utils.evaluate.types import BenchmarkFormatError
from gdo_utils.evaluate.video import frame_range, frame_size, n_frames, sample_indices, smart_resize

from .conftest import write_jpg, write_mp4


def _touch(p: Path) -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(b"x")
    return p


def test_mvbench_layout_bound_frames_and_prompt(tmp_path):
    root, video = tmp_path / "MVBench", tmp_path / "MVBench" / "video"
    (root / "json").mkdir(parents=True)
    (root / "json" / "moving_direction.json").write_text(json.dumps(
        [{"video": "v1.mp4", "question": "Which way does it go?", "candidates": ["left", "right"], "answer": "right"}]))
    (root / "json" / "action_sequence.json").write_text(json.dumps([
        {"video": "main.mp4", "question": "What first?", "candidates": ["a", "b", "c"], "answer": "c", "start": 1.5, "end": 7.0},
        {"video": "seg.mp4", "question": "What next?", "candidates": ["a", "b"], "answer": "a", "start": 1.5, "end": 7.0}]))
    (root / "json" / "episodic_reasoning.json").write_text(json.dumps(
        [{"video": "s01e01_seg", "question": "Who?", "candidates": ["x", "y", "z", "w"], "answer": "w", "start": 0, "end": 3}]))
    _touch(video / "clevrer/video_validation/v1.mp4")
    _touch(video / "star/Charades_v1_480/main.mp4")
    _touch(video / "star/Charades_segment/seg.mp4")       # lmms-eval's pre-trimmed copy: bound already applied
    write_jpg(video / "tvqa/frames_fps3_hq/s01e01_seg/00001.jpg")
    # default input (the release): lmms-eval's pre-trimmed segments; a bound subtask is never cut again
    qs = {q.qid: q for q in registry.get("mvbench").load(root, video)}
    assert sorted(qs) == ["action_sequence/0000", "action_sequence/0001", "episodic_reasoning/0000", "moving_direction/0000"]
    md = qs["moving_direction/0000"]
    assert md.gold == "B" and md.media == str(video / "clevrer/video_validation/v1.mp4") and md.start is None
    main, seg = qs["action_sequence/0000"], qs["action_sequence/0001"]
    assert main.media == str(video / "star/Charades_segment/main.mp4") and main.start is None   # absent: missing
    assert (seg.start, seg.end) == (None, None) and seg.media.endswith("star/Charades_segment/seg.mp4")
    ep = qs["episodic_reasoning/0000"]
    assert ep.media == str(video / "tvqa/video_fps3_hq_segment/s01e01_seg") and ep.frame_fps is None
    _touch(video / "tvqa/video_fps3_hq_segment/s01e01_seg.mp4")                  # the mp4 segment of a frame folder
    ep = {q.qid: q for q in registry.get("mvbench").load(root, video)}["episodic_reasoning/0000"]
    assert ep.media == str(video / "tvqa/video_fps3_hq_segment/s01e01_seg.mp4") and ep.start is None
    # option main_bound: the main-branch videos and frame folders, cut by each row's bound
    qs = {q.qid: q for q in registry.get("mvbench").load(root, video, input="main_bound")}
    main, seg = qs["action_sequence/0000"], qs["action_sequence/0001"]
    assert (main.start, main.end, main.gold) == (1.5, 7.0, "C") and main.media.endswith("Charades_v1_480/main.mp4")
    assert seg.media.endswith("star/Charades_v1_480/seg.mp4") and seg.start == 1.5   # not there: counted missing
    ep = qs["episodic_reasoning/0000"]
    assert ep.frame_fps == 3.0 and (ep.start, ep.end) == (0.0, 3.0) and ep.gold == "D"
    assert qs["moving_direction/0000"].media == md.media
    assert registry.get("mvbench").prompt(md) == (
        "Question:Which way does it go?\nOption:\n(A) left\n(B) right\nOnly give the best option.\n")
    (root / "json" / "moving_count.json").write_text(json.dumps(
        [{"video": "v.mp4", "question": "How many?", "candidates": ["1", "2"], "answer": "3"}]))
    with pytest.raises(BenchmarkFormatError, match=r"moving_count.json row 0: field 'answer'"):
        registry.get("mvbench").load(root, video)


def test_videomme_parquet_and_prompt(tmp_path):
    p = tmp_path / "videomme" / "test-00000-of-00001.parquet"
    p.parent.mkdir()
    pd.DataFrame([{"video_id": "001", "duration": "short", "domain": "Knowledge", "sub_category": "Astronomy",
                   "url": "u", "videoID": "abc", "question_id": "001-1", "task_type": "Counting Problem",
                   "question": "How many planets are shown?", "options": ["A. 1", "B. 2", "C. 3", "D. 4"],
                   "answer": "C"}]).to_parquet(p)
    _touch(tmp_path / "data" / "abc.MP4")
    (q,) = registry.get("videomme").load(tmp_path / "videomme", tmp_path)
    assert (q.qid, q.gold, q.duration, q.task_type, q.domain) == ("001-1", "C", "short", "Counting Problem", "Knowledge")
    assert q.media == str(tmp_path / "data" / "abc.MP4") and q.option_texts == ("1", "2", "3", "4")
    assert registry.get("videomme").prompt(q) == (
        "Question: How many planets are shown?\nOptions:\nA. 1\nB. 2\nC. 3\nD. 4\nAnswer with the option letter only.")
    pd.DataFrame([{"videoID": "abc", "question": "q"}]).to_parquet(p)
    with pytest.raises(BenchmarkFormatError, match="columns"):
        registry.get("videomme").load(p, tmp_path)


def test_mlvu_official_json_and_lmms_parquet(tmp_path):
    f = tmp_path / "test_question.json"
    f.write_text(json.dumps([{"question_id": "count_0", "question_type": "count", "video": "c0.mp4",
                              "question": "How many?", "candidates": ["1", "2", "3", "4", "5", "6"], "answer": "5"}]))
    _touch(tmp_path / "video" / "c0.mp4")
    (q,) = registry.get("mlvu").load(f, tmp_path)
    assert q.gold == "E" and q.task_type == "count" and q.letters == "ABCDEF" and q.media.endswith("video/c0.mp4")
    assert registry.get("mlvu").prompt(q) == "How many?\n(A) 1\n(B) 2\n(C) 3\n(D) 4\n(E) 5\n(F) 6"
    p = tmp_path / "test-00000-of-00001.parquet"
    pd.DataFrame([{"video_name": "s.mp4", "question": "Which sport?\n(A) golf\n(B) tennis", "answer": "B",
                   "task_type": "sportsQA"}]).to_parquet(p)
    (q2,) = registry.get("mlvu").load(p, tmp_path)
    assert registry.get("mlvu").prompt(q2) == "Which sport?\n(A) golf\n(B) tennis"   # verbatim, as mlvu_test.yaml
    assert q2.option_texts == ("golf", "tennis") and q2.gold == "B" and q2.qid == "sportsQA/00000"


def test_lvbench_meta_jsonl_and_prompt(tmp_path):
    f = tmp_path / "video_info.meta.jsonl"
    qa = [{"uid": "u1", "question": "What happens?\n(A) a\n(B) b\n(C) c\n(D) d", "answer": "D",
           "question_type": ["reasoning", "event understanding"], "time_reference": "00:01-00:05"}]
    f.write_text(json.dumps({"key": "yt1", "type": "doc", "video_info": {"duration_minutes": 60}, "qa": qa}) + "\n\n")
    (q,) = registry.get("lvbench").load(f, tmp_path)
    assert (q.qid, q.gold, q.question_types, q.option_texts) == ("u1", "D", ("reasoning", "event understanding"),
                                                                 ("a", "b", "c", "d"))
    assert registry.get("lvbench").prompt(q) == (
        "What happens?\n(A) a\n(B) b\n(C) c\n(D) d\nAnswer the question with the option letter")
    f.write_text('{"key": "yt1", "qa": [\n')
    with pytest.raises(BenchmarkFormatError, match="line 1: not valid JSON"):
        registry.get("lvbench").load(f, tmp_path)


def test_release_video_input_rules():
    cfg = EvaluateConfig()
    assert n_frames(24, 8.0, cfg) == 4          # 3 s -> at least 4 frames
    assert n_frames(9, 1.0, cfg) == 8           # 9 s at 1 fps -> even count
    assert n_frames(2500, 25.0, cfg) == 32      # 100 s -> at most 32
    assert frame_range(100, 10.0, 2.05, 5.0) == (21, 50, 30)
    assert sample_indices(100, 10.0, None, None, cfg) == [0, 11, 22, 33, 44, 55, 66, 77, 88, 99]
    assert smart_resize(720, 1280, 200704, 602112) == (576, 1024)   # 1280x720 -> 1024x576 (notes 3.2)
    assert smart_resize(64, 64, 4096, 4096) == (64, 64)
    assert frame_size(64, 64, 4, cfg) == (448, 448)                  # upscaled to >= 200704 px


def test_frames_of_a_bound_segment_from_a_video(tmp_path):
    from gdo_utils.evaluate.types import Question
    from gdo_utils.evaluate.video import load_eval_video

    v = write_mp4(tmp_path / "v.mp4", n_frames=40, size=32, fps=8)     # 5 s
    cfg = EvaluateConfig(min_pixels=1024, max_pixels=1024)
    q = Question("mvbench", "x", "q", ("a", "b"), ("a", "b"), "A", str(v), start=1.0, end=4.0)
    ev = load_eval_video(q, cfg)
    # frames 8..32, 25 frames = 3.125 s -> 4 frames: linspace(8, 32, 4).round() = [8, 16, 24, 32], whose
    # timestamps count from the segment's start (as in a pre-trimmed segment file): indices 0, 8, 16, 24 of 25
    assert ev.indices == [0, 8, 16, 24] and ev.fps == pytest.approx(8.0) and tuple(ev.frames.shape) == (4, 3, 32, 32)
    assert ev.metadata == {"fps": 8.0, "frames_indices": [0, 8, 16, 24], "total_num_frames": 25}
    yellow = (ev.frames[:, 0] > 128) & (ev.frames[:, 2] < 128)            # the square starts at x = 2 + frame
    first_col = [int(f.any(0).nonzero().min()) for f in yellow[:3]]   # (frame 32: the square has left the picture)
    assert all(abs(c - (2 + t)) <= 1 for c, t in zip(first_col, [8, 16, 24]))       # source frames 8, 16, 24
