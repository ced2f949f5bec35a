"""A synthetic GDO pool + descriptor table of any size, generated without Python loops over rows.

Used by the subsets benchmark (bench/subsets.py, 1M-3M rows) and the tests. The pool follows
`gdo_utils.schema.QA_SCHEMA`: image QA and multi-turn video QA (frame lists and mp4 files), a dozen
sources in the release's naming style, temporal / MCQ / open questions of varied lengths (MCQ option lines
only in question_raw), a share of duplicated question+answer texts, and descriptors with a few gaps.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..io import write_parquet
from ..pool import source_group
from ..schema import QA_SCHEMA
from ..score import level1_quality

SOURCES_IMAGE = ["sharegpt4v(coco)", "ai2d(gpt4v)", "chartqa(cauldron,llava_format)", "clevr(cauldron,llava_format)",
                 "geo170k(qa)", "vision_flan(filtered)", "ureader_kg_processed", "allava_instruct_laion4v"]
SOURCES_VIDEO = ["llava_video_178k_0_30_s_academic_oe", "llava_video_178k_30_60_s_youtube_mc",
                 "llava_video_178k_1_2_m_activitynet_oe", "nextqa_oe(v1)", "perceptiontest_mc(v1)"]
OBJECTS = ["circle", "square", "triangle", "star", "person", "car", "dog", "ball"]
COLORS = ["red", "blue", "green", "yellow", "purple", "orange"]
FILLER = ("please look carefully at the scene and describe the relevant details with care and precision "
          "considering every object shape colour position and motion that is visible ") * 6


def _pick(rng: np.random.Generator, words: list[str], n: int) -> pa.Array:
    return pa.array(np.asarray(words, dtype=object)[rng.integers(0, len(words), n)], type=pa.large_string())


def _join(*parts: pa.Array | str) -> pa.Array:
    """Element-wise concatenation of arrays and string constants (large_string)."""
    args = [pa.scalar(p, pa.large_string()) if isinstance(p, str) else p for p in parts]
    return pc.binary_join_element_wise(*args, pa.scalar("", pa.large_string()))


def _filler(rng: np.random.Generator, n: int, max_chars: int) -> pa.Array:
    """Prefixes of FILLER of random length (0 for half of the rows)."""
    lengths = rng.integers(0, max_chars + 1, n) * rng.integers(0, 2, n)
    data = np.frombuffer(FILLER.encode(), dtype=np.uint8)
    lengths = np.minimum(lengths, len(data)).astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    idx = np.arange(offsets[-1]) - np.repeat(offsets[:-1], lengths)
    return pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data[idx].tobytes()))


def synthetic_pool(n: int, seed: int = 0, video_share: float = 0.45, duplicate_share: float = 0.03,
                   turns_per_video: int = 4, media_root: str = "/data/synthetic") -> pa.Table:
    """A QA table of `n` rows following QA_SCHEMA (vectorised; ~1 s per million rows)."""
    rng = np.random.default_rng(seed)
    is_video = rng.random(n) < video_share
    n_vid_rows = int(is_video.sum())
    # videos: consecutive rows share a video (1..turns_per_video turns)
    n_videos = max(1, n_vid_rows // max(1, (turns_per_video + 1) // 2))
    vid_of_row = np.sort(rng.integers(0, n_videos, n_vid_rows))
    row_id = np.arange(n)
    video_idx = np.full(n, -1, np.int64)
    video_idx[is_video] = vid_of_row
    sample = np.where(is_video, video_idx, row_id + 10 ** 9)
    order = np.argsort(sample, kind="stable")
    turn = np.empty(n, np.int64)
    s_sorted = sample[order]
    starts = np.searchsorted(s_sorted, s_sorted, side="left")
    turn[order] = np.arange(n) - starts
    sample_str = pc.cast(pa.array(sample), pa.large_string())
    prefix = pa.array(np.where(is_video, "vv::v", "ov::i").astype(object), type=pa.large_string())
    qa_uid = _join(prefix, sample_str, "::t", pc.cast(pa.array(turn), pa.large_string()))
    sample_id = _join(pa.array(np.where(is_video, "v", "i").astype(object), type=pa.large_string()), sample_str)
    # sources
    src_img = rng.integers(0, len(SOURCES_IMAGE), n)
    src_vid = rng.integers(0, len(SOURCES_VIDEO), n)
    src_vid_of_video = rng.integers(0, len(SOURCES_VIDEO), n_videos)
    src_vid = np.where(is_video, src_vid_of_video[np.maximum(video_idx, 0)], src_vid)
    names = np.asarray(SOURCES_IMAGE + SOURCES_VIDEO, dtype=object)
    src = np.where(is_video, src_vid + len(SOURCES_IMAGE), src_img)
    groups = np.asarray([source_group(s) for s in names], dtype=object)
    # frames
    frames_of_video = rng.choice([8, 16, 24, 40, 64, 200], n_videos)
    n_frames_total = np.where(is_video, frames_of_video[np.maximum(video_idx, 0)], 1)
    n_frames = np.minimum(n_frames_total, 32)
    as_file = is_video & (rng.random(n_videos) < 0.5)[np.maximum(video_idx, 0)]
    # questions
    kind = rng.integers(0, 4, n)       # 0 temporal, 1 open, 2 mcq (choice word), 3 mcq (option lines only)
    obj, col, col2 = _pick(rng, OBJECTS, n), _pick(rng, COLORS, n), _pick(rng, COLORS, n)
    tword = _pick(rng, ["before", "after", "then", "first", "next", "later", "while"], n)
    q_temporal = _join("What happens to the ", obj, " ", tword, " it turns ", col, "?")
    q_open = _join("What color is the ", obj, "?")
    q_choice = _join("Which choice describes the ", obj, " best?")
    q_opts_head = _join("Which colour does the ", obj, " have?")
    fill = _filler(rng, n, 160)
    opts = _join("A. ", col, "\nB. ", col2)
    kinds = [q_temporal, q_open, q_choice, q_opts_head]
    head = pc.choose(pa.array(kind.astype(np.int8)), *kinds)
    q_raw = pc.if_else(pa.array(kind == 3), _join(head, " ", fill, "\n", opts), _join(head, " ", fill))
    question = pc.utf8_trim_whitespace(pc.replace_substring_regex(q_raw, r"\s+", " "))
    a_fill = _filler(rng, n, 120)
    rep = pc.if_else(pa.array(rng.random(n) < 0.1), _join(col, " ", col, " ", col, " ", col, " ", col), pa.scalar("", pa.large_string()))
    answer = _join("The ", obj, " is ", col, ". ", a_fill, " ", rep)
    answer = pc.utf8_trim_whitespace(answer)
    # duplicated texts: copy question/answer of another row
    dup = rng.random(n) < duplicate_share
    src_row = rng.integers(0, n, n)
    take = np.where(dup, src_row, row_id)
    question, q_raw, answer = question.take(pa.array(take)), q_raw.take(pa.array(take)), answer.take(pa.array(take))
    # media
    n_media = np.where(is_video & ~as_file, n_frames, 1)
    offs = np.concatenate([[0], np.cumsum(n_media)]).astype(np.int32)
    owner = np.repeat(row_id, n_media)
    within = np.arange(offs[-1]) - np.repeat(offs[:-1], n_media)
    vid_or_img = pc.cast(pa.array(np.where(is_video, video_idx, row_id)[owner]), pa.large_string())
    kind_m = np.where(is_video[owner], np.where(as_file[owner], 2, 1), 0).astype(np.int8)
    frame_s = pc.cast(pa.array(within), pa.large_string())
    paths = pc.choose(pa.array(kind_m),
                      _join(f"{media_root}/images/", vid_or_img, ".jpg"),
                      _join(f"{media_root}/frames/v", vid_or_img, "/frame_", frame_s, ".jpg"),
                      _join(f"{media_root}/videos/v", vid_or_img, ".mp4"))
    media = pa.ListArray.from_arrays(pa.array(offs), paths.cast(pa.string()))
    f_offs = np.concatenate([[0], np.cumsum(n_frames)]).astype(np.int32)
    f_within = np.arange(f_offs[-1]) - np.repeat(f_offs[:-1], n_frames)
    frame_indices = pa.ListArray.from_arrays(pa.array(f_offs), pa.array(f_within.astype(np.int32)))
    table = pa.table({
        "qa_uid": qa_uid.cast(pa.string()), "sample_id": sample_id.cast(pa.string()),
        "video_uid": sample_id.cast(pa.string()),
        "source": pa.array(names[src], type=pa.string()), "source_group": pa.array(groups[src], type=pa.string()),
        "bucket": pa.array(np.where(is_video, "short_video", "image_qa").astype(object), type=pa.string()),
        "media_kind": pa.array(np.where(is_video, np.where(as_file, "video_file", "frames"), "image").astype(object),
                               type=pa.string()),
        "media": media, "frame_indices": frame_indices,
        "n_frames": pa.array(n_frames.astype(np.int32)), "n_frames_total": pa.array(n_frames_total.astype(np.int32)),
        "question": question.cast(pa.string()), "question_raw": q_raw.cast(pa.string()),
        "answer": answer.cast(pa.string()), "turn": pa.array(turn.astype(np.int32)),
        "pool": pa.array(["gdo"] * 1, type=pa.string()).take(pa.array(np.zeros(n, np.int64))),
        "source_file": pa.array(np.where(is_video, "llava_video.jsonl", "onevision.jsonl").astype(object), type=pa.string()),
        "record_index": pa.array(sample.astype(np.int64)),
    })
    return table.cast(QA_SCHEMA)


def synthetic_descriptors(pool: pa.Table, seed: int = 1, missing_share: float = 0.02) -> pd.DataFrame:
    """Descriptor rows for a synthetic pool (a `missing_share` of rows absent, some SC values null)."""
    rng = np.random.default_rng(seed)
    n = pool.num_rows
    is_video = pc.equal(pool.column("bucket"), "short_video").to_numpy(zero_copy_only=False)
    keep = rng.random(n) >= missing_share
    lv = rng.normal(1.5, 0.5, n)
    lb = lv + rng.normal(0.2, 0.4, n) * np.where(is_video, 1.0, 0.5)
    fd = np.where(is_video, rng.gamma(2.0, 0.03, n), 0.0)
    amm = np.where(is_video, rng.gamma(2.0, 0.8, n), 0.0)
    sc = np.where(rng.random(n) < 0.05, np.nan, rng.beta(4, 2, n))
    dist = rng.gamma(2.0, 0.3, n)
    df = pd.DataFrame({
        "qa_uid": pool.column("qa_uid").to_pandas(), "amm": amm, "frame_diversity": fd, "loss_video": lv,
        "loss_blind": lb, "vds": lb - lv, "ppl": np.exp(np.clip(lv, -30, 30)), "tnc": rng.choice([0.0, 0.5, 1.0], n),
        "self_consistency": sc, "cluster_id": rng.integers(0, 64, n), "cluster_dist": dist,
        "cluster_rep": np.exp(-dist), "cluster_hard": 1 - np.exp(-dist),
    })
    df = df[keep].reset_index(drop=True)
    df["quality"] = level1_quality(df).to_numpy()
    df["error"] = pd.Series([None] * len(df), dtype="string")
    return df


def write_synthetic(params, n: int, seed: int = 0, **kwargs) -> dict[str, Path]:
    """Write a synthetic pool qa.parquet and descriptors.parquet where the params' stages expect them."""
    pool = synthetic_pool(n, seed=seed, **kwargs)
    qa = write_parquet(params.stage_dir("pool") / "qa.parquet", pool)
    desc = write_parquet(params.stage_dir("descriptors") / "descriptors.parquet", synthetic_descriptors(pool, seed + 1))
    return {"pool": qa, "descriptors": desc}
