"""Model-free GDO descriptors: motion (AMM, frame diversity), regex TNC, Jaccard SC + fallback,
robust z, and coverage (k-means, CLIP joint / standardized features)."""
from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from gdo_utils.descriptors.coverage import (
    FEATURE_NAMES, clip_joint_features, cluster_coverage, hashed_bow, stable_bucket, standardized_features,
)
from gdo_utils.descriptors.motion import motion_descriptors, motion_for_row
from gdo_utils.descriptors.stability import sc_fallback, self_consistency, word_tokens
from gdo_utils.stats import robust_z, sigmoid
from gdo_utils.descriptors.temporal import (
    TEMPORAL_WORDS, TNC_PROMPT_TEMPLATE, parse_tnc_reply, tnc_regex, tnc_regex_series,
)
from gdo_utils.media import MediaError, load_frames, uniform_indices

REPO = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------- helpers
def square_clip(speed: int, t: int = 8, size: int = 64, side: int = 12, x0: int = 8) -> np.ndarray:
    """White side x side square on black, moving right by `speed` px per frame: uint8 (t,size,size,3)."""
    frames = np.zeros((t, size, size, 3), np.uint8)
    y0 = (size - side) // 2
    for i in range(t):
        x = x0 + speed * i
        frames[i, y0:y0 + side, x:x + side] = 255
    return frames


def write_mp4(path: Path, frames: np.ndarray, fps: int = 8) -> Path:
    """Small H.264 mp4 with imageio-ffmpeg's bundled ffmpeg (decord reads it back)."""
    import imageio.v2 as imageio

    imageio.mimwrite(path, list(frames), fps=fps, codec="libx264", macro_block_size=16,
                     ffmpeg_params=["-threads", "1", "-crf", "10"], pixelformat="yuv420p")
    return path


def write_frame_folder(folder: Path, frames: np.ndarray) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, f in enumerate(frames):
        p = folder / f"frame_{i:04d}.jpg"
        Image.fromarray(f).save(p, quality=95)
        paths.append(p)
    return paths


# ----------------------------------------------------------------------------- motion
def test_static_clip_has_zero_motion():
    frames = square_clip(0)
    amm, div = motion_descriptors(frames)
    assert abs(amm) < 1e-6 and abs(div) < 1e-6


def test_motion_grows_with_speed():
    res = [motion_descriptors(square_clip(s)) for s in (0, 1, 2, 4)]
    amm = [r[0] for r in res]
    div = [r[1] for r in res]
    assert all(b > a for a, b in zip(amm, amm[1:])), amm
    assert all(b > a for a, b in zip(div, div[1:])), div
    # frame diversity is exact: the square (12 px tall, 255 gray) changes 2*speed columns per pair,
    # area-resized 64 -> 224 keeps the mean; mean |diff| / 255 = 2*speed*12 / 64^2.
    for s, d in zip((1, 2, 4), div[1:]):
        assert d == pytest.approx(2 * s * 12 / 64 ** 2, rel=1e-3)
    # the flow field sees the motion at the right order of magnitude (224/64 = 3.5x upscaling, the
    # square covers 12^2/64^2 of the frame): mean magnitude ~ speed * 3.5 * 0.035 within 3x.
    for s, a in zip((1, 2, 4), amm[1:]):
        expected = s * 3.5 * 144 / 64 ** 2
        assert expected / 3 < a < expected * 3, (s, a, expected)


def test_motion_fewer_than_two_frames_and_grayscale():
    assert motion_descriptors(square_clip(3, t=1)) == (0.0, 0.0)
    assert motion_descriptors(np.zeros((0, 8, 8, 3), np.uint8)) == (0.0, 0.0)
    clip = square_clip(2)
    gray = clip[..., 0].copy()  # white on black: every channel equals the gray value
    assert motion_descriptors(gray) == pytest.approx(motion_descriptors(clip))
    with pytest.raises(ValueError):
        motion_descriptors(clip.astype(np.float32))
    with pytest.raises(ValueError):
        motion_descriptors(np.zeros((4, 8, 8, 4), np.uint8))


def test_motion_uses_uniform_subsample():
    clip = square_clip(1, t=29)  # 29 frames -> 8 picked at uniform indices (steps of 4)
    idx = uniform_indices(29, 8)
    assert motion_descriptors(clip, n_frames=8) == motion_descriptors(clip[idx], n_frames=8)
    # more frames with a 4x larger step between picks -> about 4x the per-pair motion
    assert motion_descriptors(clip, n_frames=8)[1] == pytest.approx(4 * motion_descriptors(clip[:8])[1], rel=1e-3)


def test_motion_for_row_images_without_decoding(tmp_path):
    missing = str(tmp_path / "does_not_exist.jpg")
    assert motion_for_row([missing], "image", [0]) == (0.0, 0.0)
    assert motion_for_row([], "none", []) == (0.0, 0.0)
    with pytest.raises(ValueError):
        motion_for_row([missing], "audio", [0])


def test_motion_for_row_mp4(tmp_path):
    moving = square_clip(2, t=16)
    p_move = write_mp4(tmp_path / "move.mp4", moving)
    p_still = write_mp4(tmp_path / "still.mp4", square_clip(0, t=16))
    idx = uniform_indices(16, 32)
    amm, div = motion_for_row([str(p_move)], "video_file", idx, n_frames=8)
    amm_ref, div_ref = motion_descriptors(moving)
    assert amm == pytest.approx(amm_ref, rel=0.25) and div == pytest.approx(div_ref, rel=0.25)
    still_amm, still_div = motion_for_row([str(p_still)], "video_file", idx)
    assert still_amm < 0.05 * amm and still_div < 0.05 * div
    # decoding only the 8 motion frames equals decoding all row frames and subsampling afterwards
    assert (amm, div) == motion_descriptors(load_frames([str(p_move)], idx), n_frames=8)
    # frame_indices default: uniform over the whole file
    assert motion_for_row([str(p_move)], "video_file", None) == (amm, div)


def test_motion_for_row_frame_folder_and_list(tmp_path):
    clip = square_clip(1, t=20)
    paths = write_frame_folder(tmp_path / "move", clip)
    still = write_frame_folder(tmp_path / "still", square_clip(0, t=20))
    amm, div = motion_for_row([str(p) for p in paths], "frames", list(range(20)))
    # exactly the recipe applied to the decoded JPEGs (JPEG noise makes it differ from the drawn clip)
    decoded = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in paths])
    assert (amm, div) == motion_descriptors(decoded)
    assert div == pytest.approx(motion_descriptors(clip)[1], rel=0.05)
    assert amm > 0.1
    assert motion_for_row([str(p) for p in still], "frames", list(range(20))) == (0.0, 0.0)
    # the same frames through a frame folder + frame_indices (numpy, as read from Parquet) agree
    assert motion_for_row([str(tmp_path / "move")], "frames", np.arange(20)) == (amm, div)
    # a folder row whose frame_indices are a subset reads only those frames
    sub = [0, 2, 4, 6, 8, 10, 12, 14]
    assert motion_for_row([str(tmp_path / "move")], "frames", sub) == motion_descriptors(decoded[sub])


def test_motion_for_row_missing_and_corrupt_media(tmp_path):
    with pytest.raises(MediaError) as err:
        motion_for_row([str(tmp_path / "nope.mp4")], "video_file", [0, 1, 2])
    assert err.value.reason == "missing_media"
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00\x00\x00 ftypisom not a video" * 4)
    with pytest.raises(MediaError):
        motion_for_row([str(bad)], "video_file", [0, 1])
    with pytest.raises(MediaError):
        motion_for_row([str(tmp_path / "a.jpg"), str(tmp_path / "b.jpg")], "frames", [0, 1])
    with pytest.raises(MediaError):
        motion_for_row([], "frames", [])


# ----------------------------------------------------------------------------- TNC
TNC_CASES = [
    ("What happens after the man opens the door?", 1.0),
    ("Before cutting, what does she hold?", 1.0),
    ("BEFORE", 1.0),
    ("What did he do then?", 1.0),
    ("Thenceforth, what colour is the car?", 0.0),
    ("What is in the first frame?", 1.0),
    ("Describe the sequence of events.", 1.0),
    ("What will happen next", 1.0),
    ("What happened to the cup?", 0.0),          # whole words only: 'happened' is not 'happen'
    ("What colour is the afterglow?", 0.0),
    ("Is this a transition shot?", 1.0),
    ("How many dogs are there?", 0.0),
    ("", 0.0),
]


def test_tnc_regex_table():
    assert len(TEMPORAL_WORDS) == 13
    for q, want in TNC_CASES:
        assert tnc_regex(q) == want, q
    s = pd.Series([q for q, _ in TNC_CASES] + [None], index=range(100, 100 + len(TNC_CASES) + 1))
    got = tnc_regex_series(s)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, [w for _, w in TNC_CASES] + [0.0])
    assert tnc_regex(None) == 0.0


def test_parse_tnc_reply_and_prompt():
    cases = {"Temporal": 1.0, "temporal.": 1.0, " TEMPORAL": 1.0, "Static": 0.0, "static": 0.0,
             "Static, not temporal": 0.0, "Temporal rather than static": 1.0, "Maybe": 0.5, "": 0.5,
             "I don't know": 0.5}
    for text, want in cases.items():
        assert parse_tnc_reply(text, "first_word") == want, text
    assert parse_tnc_reply(None) == 0.5
    # the release's containment rule (default): "temporal" is tested first, so it wins when both occur
    release = {**cases, "Static, not temporal": 1.0}
    for text, want in release.items():
        assert parse_tnc_reply(text) == want, text
    prompt = TNC_PROMPT_TEMPLATE.format(question="What happens first?")
    assert prompt.endswith("\nQuestion: What happens first?")
    assert "Temporal or Static" in prompt


# ----------------------------------------------------------------------------- SC
def test_word_tokens():
    assert word_tokens("The cat's hat, 2 HATS_x!") == {"the", "cat", "s", "hat", "2", "hats_x"}
    assert word_tokens("") == set() and word_tokens(None) == set()


def test_self_consistency_hand_cases():
    assert self_consistency(["A red car.", "a RED car", "red, car; a"]) == 1.0
    assert self_consistency(["red car", "blue bike"]) == 0.0
    # {a,b}, {a,b,c}, {c}: J = 2/3, 0/3, 1/3 -> mean 1/3
    assert self_consistency(["a b", "a b c", "c"]) == pytest.approx(1 / 3)
    # {x,y}, {y,z}, {x,y,z}: J = 1/3, 2/3, 2/3 -> mean 5/9
    assert self_consistency(["x y", "y z", "x y z"]) == pytest.approx(5 / 9)
    assert self_consistency(["", ""]) == 1.0
    assert self_consistency(["", "word"]) == 0.0
    assert math.isnan(self_consistency(["only one"]))
    assert math.isnan(self_consistency([]))


def test_robust_z_hand_values():
    # median 3, IQR = 4 - 2 = 2 -> scale 2/1.349
    z = robust_z([1, 2, 3, 4, 5])
    np.testing.assert_allclose(z, (np.array([1, 2, 3, 4, 5]) - 3) / (2 / 1.349))
    # NaNs are ignored for the estimate and stay NaN
    z2 = robust_z([1, np.nan, 2, 3, 4, 5])
    assert np.isnan(z2[1])
    np.testing.assert_allclose(z2[[0, 2, 3, 4, 5]], z)
    # constant column: scale floor 1e-6 -> zeros, no division by zero
    np.testing.assert_array_equal(robust_z([7.0, 7.0, 7.0]), [0.0, 0.0, 0.0])
    assert np.isnan(robust_z([np.nan, np.nan])).all()
    assert robust_z([]).shape == (0,)


def test_sc_fallback_hand_values():
    vds = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    ppl = np.array([10.0, 20.0, 30.0, 40.0, 50.0])
    zv = (vds - 3.0) / (2.0 / 1.349)
    zp = (ppl - 30.0) / (20.0 / 1.349)
    want = 1.0 / (1.0 + np.exp(-(0.6 * zv - 0.2 * np.abs(zp))))
    np.testing.assert_allclose(sc_fallback(vds, ppl), want, rtol=1e-12)
    # middle row: z = 0 for both -> sigmoid(0) = 0.5
    assert sc_fallback(vds, ppl)[2] == pytest.approx(0.5)
    out = sc_fallback([1.0, np.nan, 3.0], [1.0, 2.0, 3.0])
    assert np.isnan(out[1]) and np.isfinite(out[[0, 2]]).all()
    with pytest.raises(ValueError):
        sc_fallback([1.0, 2.0], [1.0])
    assert sigmoid(1000.0) == 1.0 and sigmoid(-1000.0) == 0.0


# ----------------------------------------------------------------------------- coverage
def blobs(seed: int = 0, per: int = 40, d: int = 8) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = np.eye(4, d) * 20.0
    x = np.concatenate([c + rng.normal(0, 0.3, (per, d)) for c in centers]).astype(np.float32)
    return x, np.repeat(np.arange(4), per)


def test_cluster_coverage_recovers_blobs_and_is_deterministic():
    x, truth = blobs()
    a = cluster_coverage(x, k=4, seed=1, niter=10)
    b = cluster_coverage(x, k=4, seed=1, niter=10)
    pd.testing.assert_frame_equal(a, b)
    assert list(a.columns) == ["cluster_id", "cluster_dist", "cluster_rep", "cluster_hard"]
    assert a["cluster_id"].dtype == np.int64 and a["cluster_dist"].dtype == np.float32
    # each blob maps to exactly one cluster and the mapping is a bijection
    pairs = pd.crosstab(truth, a["cluster_id"].to_numpy())
    assert ((pairs > 0).sum(axis=1) == 1).all() and ((pairs > 0).sum(axis=0) == 1).all()
    np.testing.assert_allclose(a["cluster_rep"], np.exp(-a["cluster_dist"].astype(np.float64)), rtol=1e-12)
    np.testing.assert_allclose(a["cluster_hard"], 1.0 - a["cluster_rep"], rtol=1e-12)
    assert (a["cluster_dist"] < 3.0).all()


def test_cluster_coverage_seed_changes_result_and_k_capped():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(200, 4)).astype(np.float32)  # no cluster structure: the seed matters
    a = cluster_coverage(x, k=8, seed=1, niter=5)
    b = cluster_coverage(x, k=8, seed=2, niter=5)
    assert not np.array_equal(a["cluster_dist"].to_numpy(), b["cluster_dist"].to_numpy())
    small = cluster_coverage(x[:3], k=4096, seed=0, niter=5)
    assert small.attrs["k"] == 3
    np.testing.assert_allclose(small["cluster_dist"], 0.0, atol=1e-5)
    with pytest.raises(ValueError):
        cluster_coverage(np.array([[np.nan, 0.0]]), k=1, seed=0)


def test_clip_joint_features():
    img = np.array([[3.0, 4.0], [1.0, 0.0], [2.0, 2.0]])
    txt = np.array([[0.0, 2.0, 0.0], [0.0, 0.0, 5.0], [np.nan, 0.0, 0.0]])
    f = clip_joint_features(img, txt, has_image=[True, False, True], has_text=[True, True, True])
    assert f.dtype == np.float32 and f.shape == (3, 5)
    r = 1 / np.sqrt(2)
    np.testing.assert_allclose(f[0], [0.6 * r, 0.8 * r, 0.0, r, 0.0], atol=1e-6)
    np.testing.assert_allclose(f[1], [0.0, 0.0, 0.0, 0.0, 1.0], atol=1e-6)   # no image: text only
    np.testing.assert_allclose(f[2], [r, r, 0.0, 0.0, 0.0], atol=1e-6)     # NaN text -> zeros
    np.testing.assert_allclose(np.linalg.norm(f, axis=1), 1.0, atol=1e-6)
    both_missing = clip_joint_features(img[:1], txt[:1], has_image=[False], has_text=[False])
    assert not both_missing.any()


def test_clip_joint_features_float16_rows_equal_numpy_cast_bit_for_bit(monkeypatch):
    """float16 inputs through the lookup table, rows gathered chunk-wise: the same bits as numpy's cast of
    `image[rows]` (every float16 pattern: subnormals, -0, inf and NaN rows included)."""
    import gdo_utils.descriptors.coverage as cov

    monkeypatch.setattr(cov, "FILL_ROWS", 7)  # several chunks and a short last one
    every = np.arange(1 << 16, dtype=np.uint16).view(np.float16)
    assert np.array_equal(cov._float16_table().view(np.uint32), every.astype(np.float32).view(np.uint32))
    rng = np.random.default_rng(3)
    img = rng.choice(every, (40, 6)).astype(np.float16)
    img[5:, :] = rng.standard_normal((35, 6)).astype(np.float16)  # mostly finite rows, a few all-pattern rows
    txt = rng.standard_normal((40, 4)).astype(np.float16)
    txt[9] = 0.0
    has_img, has_txt = rng.random(40) < 0.8, rng.random(40) < 0.9
    rows = rng.permutation(40)[:33]
    got = clip_joint_features(img, txt, has_img, has_txt, rows=rows)
    with monkeypatch.context() as m:  # reference: numpy's own float16 -> float32 cast of the gathered rows
        m.setattr(cov, "_float16_table", lambda: None)
        m.setattr(cov, "_fill_float32", lambda dst, src, r: (dst.__setitem__(Ellipsis, src[r].astype(np.float32)),
                                                              np.isfinite(dst).all(axis=1))[1])
        want = clip_joint_features(img, txt, has_img, has_txt, rows=rows)
    assert got.dtype == np.float32 and got.shape == (33, 10)
    assert np.array_equal(got.view(np.uint32), want.view(np.uint32))
    assert np.array_equal(got, clip_joint_features(img[rows], txt[rows], has_img[rows], has_txt[rows]))


def _toy_tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    qa = pd.DataFrame({
        "qa_uid": ["vv::1::t0", "ov::2::t0", "vv::3::t0", "ov::4::t0"],
        "question": ["What happens after 2 cars pass?", "What colour is the hat", None, "Count the 3 dogs?"],
        "answer": ["They stop.", "Red", "A cat", ""],
        "n_frames": [32, 1, 16, 1],
        "media_kind": ["video_file", "image", "frames", "image"],
    })
    desc = pd.DataFrame({  # shuffled order, one row missing ppl, one with a huge ppl
        "qa_uid": ["ov::4::t0", "vv::1::t0", "vv::3::t0", "ov::2::t0"],
        "amm": [0.0, 1.5, 0.7, 0.0], "frame_diversity": [0.0, 0.1, 0.05, 0.0],
        "vds": [0.1, 0.9, np.nan, 0.3], "ppl": [math.exp(30), 5.0, 3.0, np.nan],
        "tnc": [0.0, 1.0, 0.5, 0.0], "self_consistency": [1.0, 0.4, 0.6, 0.9],
    })
    return desc, qa


def test_standardized_features_layout_and_values():
    desc, qa = _toy_tables()
    f = standardized_features(desc, qa)
    assert f.dtype == np.float32 and f.shape == (4, len(FEATURE_NAMES)) and np.isfinite(f).all()
    names = {n: i for i, n in enumerate(FEATURE_NAMES)}
    assert np.abs(f[:, :6]).max() <= 4.0                       # clipped z's, huge PPL tamed
    # log PPL over rows with a PPL: [log 5, log 3, 30]; median log 5, IQR = (30+log5)/2 - (log3+log5)/2
    scale = ((30 + math.log(5)) / 2 - (math.log(3) + math.log(5)) / 2) / 1.349
    assert f[3, names["z_log_ppl"]] == pytest.approx((30 - math.log(5)) / scale, rel=1e-6)
    assert f[2, names["z_log_ppl"]] == pytest.approx((math.log(3) - math.log(5)) / scale, rel=1e-5)
    # amm [1.5, 0.0, 0.7, 0.0]: median 0.35, IQR 0.9 - 0 -> the fast clip is clipped at +4
    assert f[0, names["z_amm"]] == pytest.approx(min(4.0, (1.5 - 0.35) / (0.9 / 1.349)), rel=1e-6)
    assert f[1, names["z_log_ppl"]] == 0.0 and f[2, names["z_vds"]] == 0.0   # NaN -> 0
    np.testing.assert_allclose(f[:, names["n_frames_32"]], [1.0, 1 / 32, 0.5, 1 / 32])
    np.testing.assert_array_equal(f[:, names["is_video"]], [1, 0, 1, 0])
    np.testing.assert_array_equal(f[:, names["has_qmark"]], [1, 0, 0, 1])
    np.testing.assert_allclose(f[:, names["log_q_words"]], np.log1p([6, 5, 0, 4]), rtol=1e-6)
    np.testing.assert_allclose(f[:, names["log_a_words"]], np.log1p([2, 1, 2, 0]), rtol=1e-6)
    np.testing.assert_allclose(f[:, names["log_q_digits"]], np.log1p([1, 0, 0, 1]), rtol=1e-6)
    bow = f[:, names["bow_00"]:]
    np.testing.assert_allclose(np.linalg.norm(bow, axis=1), [1, 1, 0, 1], atol=1e-6)
    # alignment is by qa_uid: permuting the descriptor table does not change anything
    np.testing.assert_array_equal(standardized_features(desc.iloc[::-1], qa), f)
    # missing descriptor columns (model stage skipped) still work
    g = standardized_features(desc[["qa_uid", "amm"]], qa)
    assert np.isfinite(g).all() and (g[:, 2:6] == 0).all()
    with pytest.raises(ValueError):
        standardized_features(pd.concat([desc, desc.iloc[:1]]), qa)


def test_hashed_bow_is_stable():
    assert stable_bucket("cat") == stable_bucket("cat") and 0 <= stable_bucket("cat") < 64
    b = hashed_bow(pd.Series(["Cat cat dog", "dog CAT cat", None]))
    np.testing.assert_array_equal(b[0], b[1])
    assert b[0].max() == pytest.approx(2 / math.sqrt(5)) and not b[2].any()


@pytest.mark.parametrize("force_rows", [False, True])
def test_hashed_bow_equals_counting_each_row(monkeypatch, force_rows):
    """One regex pass over all rows (and the per-row reading it falls back to) counts what a row-by-row
    `re.findall` of the lowercased text counts, bucket by bucket: newlines, underscores, non-ASCII letters,
    the Kelvin sign (lowercases to an ASCII k), empty and missing texts."""
    import re
    from collections import Counter

    import gdo_utils.descriptors.coverage as cov

    texts = ["Cat cat dog", "dog\nCAT_2 cat", None, "", "\u212a9 kelvin \u00e9t\u00e9 caf\u00e9", "x\ny\n",
             "  ", "A1 b2 C3 d4 " * 5, float("nan"), "\u0130stanbul \u00dfa"]
    if force_rows:  # the per-row reading must give the same table
        monkeypatch.setattr(cov, "WORD_TOKEN_RE", re.compile(r"[a-z]"))
    got = cov.hashed_bow(pd.Series(texts, dtype=object), buckets=16)
    want = np.zeros((len(texts), 16), dtype=np.float32)
    lowered = pd.Series(texts, dtype=object).where(pd.notna(texts), "").astype(str).str.lower()  # pandas' rule
    for i, t in enumerate(lowered):
        for tok, c in Counter(re.findall(r"[A-Za-z0-9_]+", t)).items():
            want[i, stable_bucket(tok, 16)] += c
    from gdo_utils.vectors import l2_normalize

    assert got.dtype == np.float32 and np.array_equal(got, l2_normalize(want))


_SUBPROCESS_CODE = """
import hashlib, sys
sys.path.insert(0, {repo!r})
import pandas as pd
from tests.test_descriptors_cheap import _toy_tables
from gdo_utils.descriptors.coverage import standardized_features
desc, qa = _toy_tables()
print(hashlib.sha256(standardized_features(desc, qa).tobytes()).hexdigest())
"""


def test_standardized_features_identical_across_hash_seeds():
    desc, qa = _toy_tables()
    import hashlib

    here = hashlib.sha256(standardized_features(desc, qa).tobytes()).hexdigest()
    code = _SUBPROCESS_CODE.format(repo=str(REPO))
    digests = []
    for seed in ("1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "OMP_NUM_THREADS": "1"}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                             timeout=120, cwd=str(REPO))
        assert out.returncode == 0, out.stderr[-2000:]
        digests.append(out.stdout.strip().splitlines()[-1])
    assert digests[0] == digests[1] == here
