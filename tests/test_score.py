"""The GDO shared score (gdo_utils.score): every term on hand-computed rows, NaN rules, ablation switches."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from gdo_utils import score as S
from gdo_utils.subsets.context import pool_scores


def sig(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


# ----------------------------------------------------------------------------- z-scores
def test_robust_z_by_hand():
    z = S.robust_z([1.0, 2.0, 3.0, 4.0, 100.0])
    # median 3, q25 2, q75 4 -> scale 2/1.349
    assert z[2] == 0.0
    assert z[4] == pytest.approx(97 * 1.349 / 2)
    assert z[0] == pytest.approx(-2 * 1.349 / 2)


def test_robust_z_floor_and_nan():
    z = S.robust_z([5.0, 5.0, 5.0, np.nan, 5.000001])
    assert np.isnan(z[3])
    assert z[4] == pytest.approx(0.000001 / 1e-6)     # IQR 0 -> scale floored at 1e-6
    assert np.all(np.isnan(S.robust_z([np.nan, np.nan])))


def test_standard_z_clips_and_constant():
    x = np.r_[np.zeros(99), 1000.0]
    z = S.standard_z(x)
    assert z.max() == 4.0
    assert np.all(S.standard_z([3.0, 3.0, np.nan])[:2] == 0.0)
    assert S.standard_z([1.0, 3.0])[1] == pytest.approx(1.0)    # mean 2, population std 1


# ----------------------------------------------------------------------------- level 1
def _l1_frame(**over) -> pd.DataFrame:
    base = {"qa_uid": ["a", "b", "c"], "vds": [0.0, 1.0, 2.0], "frame_diversity": [0.0, 0.0, 0.0],
            "ppl": [1.0, 1.0, 1.0], "amm": [2.0, 2.0, 2.0], "tnc": [1.0, 0.0, 0.5],
            "self_consistency": [0.5, 0.5, 0.5], "cluster_rep": [0.5, 0.5, 0.5], "cluster_hard": [0.5, 0.5, 0.5]}
    base.update(over)
    return pd.DataFrame(base)


def test_level1_quality_by_hand():
    q = S.level1_quality(_l1_frame())
    # vds: median 1, IQR 1 -> z = (x-1)*1.349; frame_div, ppl, amm constant -> z 0 -> mids 1
    for i, (zv, tnc) in enumerate([(-1.349, 1.0), (0.0, 0.0), (1.349, 0.5)]):
        expect = 0.28 * sig(zv) + 0.18 * 0.5 + 0.14 * 1 + 0.12 * 1 + 0.12 * tnc + 0.10 * 0.5 + 0.06 * 0.5
        assert q.iloc[i] == pytest.approx(expect)
    assert q.name == "quality"


def test_level1_quality_ppl_and_amm_mid():
    q = S.level1_quality(_l1_frame(ppl=[1.0, 2.0, 3.0], amm=[0.0, 0.0, 4.0]))
    # ppl z = (x-2)*1.349 ; amm: median 0, q25 0, q75 2 -> scale 2/1.349 -> z(4) = 2*1.349
    zv = -1.349
    expect0 = 0.28 * sig(zv) + 0.09 + 0.14 * math.exp(-1.349) + 0.12 * 1 + 0.12 + 0.05 + 0.03
    expect2 = 0.28 * sig(1.349) + 0.09 + 0.14 * math.exp(-1.349) + 0.12 * math.exp(-2 * 1.349) + 0.06 + 0.05 + 0.03
    assert q.iloc[0] == pytest.approx(expect0)
    assert q.iloc[2] == pytest.approx(expect2)


def test_level1_nan_neutral_values_and_sc_fallback():
    df = _l1_frame(self_consistency=[np.nan, 0.5, 0.5], tnc=[np.nan, 0.0, 0.5], vds=[0.0, 1.0, np.nan],
                   ppl=[1.0, 2.0, 3.0], cluster_rep=[np.nan, 0.2, 0.4], cluster_hard=[0.5, 0.5, np.nan])
    q = S.level1_quality(df)
    # vds finite [0, 1]: median 0.5, q25 .25, q75 .75 -> scale 0.5/1.349; row 0 z = -1.349, row 2 z = 0 (neutral)
    z_v0 = -0.5 / (0.5 / 1.349)
    z_p0 = -1.349
    sc0 = sig(0.6 * z_v0 - 0.2 * abs(z_p0))
    expect0 = 0.28 * sig(z_v0) + 0.18 * sc0 + 0.14 * math.exp(-1.349) + 0.12 + 0.12 * 0.5 + 0.10 * 0.3 + 0.06 * 0.5
    assert q.iloc[0] == pytest.approx(expect0)
    expect2 = 0.28 * 0.5 + 0.09 + 0.14 * math.exp(-1.349) + 0.12 + 0.06 + 0.10 * 0.4 + 0.06 * 0.5
    assert q.iloc[2] == pytest.approx(expect2)
    assert q.attrs["neutral_filled"] == {"vds": 1, "frame_diversity": 0, "ppl": 0, "amm": 0, "tnc": 1,
                                         "self_consistency": 1, "cluster_rep": 1, "cluster_hard": 1}


def test_level1_errors_name_the_column():
    with pytest.raises(S.ScoreInputError, match="'amm'"):
        S.level1_quality(_l1_frame().drop(columns=["amm"]))
    with pytest.raises(S.ScoreInputError, match="'ppl'.*infinite.*'b'"):
        S.level1_quality(_l1_frame(ppl=[1.0, np.inf, 1.0]))
    with pytest.raises(S.ScoreInputError, match="'tnc' is not numeric"):
        S.level1_quality(_l1_frame(tnc=["x", "y", "z"]))


# ----------------------------------------------------------------------------- level 2 text terms
def test_naturalness_by_hand():
    nat = S.naturalness(np.array([14, 7, 14, 0]), np.array([16, 16, 4, 0]), np.array([16, 16, 1, 0]))
    assert nat[0] == pytest.approx(0.0)
    assert nat[1] == pytest.approx(-math.log(2))
    assert nat[2] == pytest.approx(-1.25 * abs(math.log(4) - math.log(16)) - 1.2 * (0.55 - 0.25))
    # empty counts floor at 1; distinct 0 of 1 -> full 0.55 penalty
    assert nat[3] == pytest.approx(-abs(math.log(1) - math.log(14)) - 1.25 * abs(-math.log(16)) - 1.2 * 0.55)


def test_difficulty_by_hand():
    d = S.difficulty(np.array([21, 44, 1]), np.array([2, 0, 0]))
    assert d[0] == pytest.approx(1.0)
    dd = abs(math.log(44.5) - math.log(22))
    assert d[1] == pytest.approx(math.exp(-dd ** 2 / (2 * 0.85 ** 2)))
    dd = abs(math.log(1.5) - math.log(22))
    assert d[2] == pytest.approx(math.exp(-dd ** 2 / (2 * 0.85 ** 2)))


def test_alignment_source_prior_temporal_bonus():
    fields = pd.DataFrame({"f": pd.Categorical(["x", "x", "x", "y"], categories=["x", "y", "z"]),
                           "g": ["u", "v", "u", "v"]})
    al = S.alignment(fields, ["f", "g"])
    assert al[0] == pytest.approx((math.log(0.75) + math.log(0.5)) / 2)
    assert al[3] == pytest.approx((math.log(0.25) + math.log(0.5)) / 2)
    sp = S.source_prior(pd.Series(["a", "a", "a", "b"]))
    assert sp[0] == pytest.approx(math.log(5 / 4)) and sp[3] == pytest.approx(math.log(5 / 2))
    tb = S.temporal_bonus(np.array(["Temporal", "Mixed", "Static"]))
    assert list(tb) == [1.0, 0.2, -0.5]


def test_log_pool_share_floor():
    assert S.log_pool_share(np.array(["a"] * 3))[0] == pytest.approx(0.0)
    assert np.log(S.P_FLOOR) == pytest.approx(math.log(1e-9))


def test_legacy_vds3_fallbacks():
    lv = np.array([1.0, 2.0, np.nan, np.nan, np.nan, 3.0])
    lb = np.array([2.0, 2.0, np.nan, np.nan, np.nan, 1.0])
    vds = np.array([1.0, 0.0, 1.0, 2.0, np.nan, -2.0])
    fd = np.array([0.1, 0.3, 0.2, np.nan, np.nan, 0.2])
    out = S.legacy_vds3(lv, lb, vds, fd)
    z_lv, z_lb, z_vds, z_fd = (S.standard_z(x) for x in (lv, lb, vds, fd))
    assert out[0] == pytest.approx(-z_lv[0] + z_lb[0] + z_fd[0])
    assert out[2] == pytest.approx(z_vds[2] + 0.5 * z_fd[2])
    assert out[3] == pytest.approx(z_vds[3])
    assert out[4] == 0.0


# ----------------------------------------------------------------------------- level 2 score
def _table() -> pd.DataFrame:
    q = ["What happens after the ball falls?", "What color is the cube?", "Describe the scene before it ends.",
         "Which choice is right?", "How many dogs are there?", "What is shown?"]
    return pd.DataFrame({
        "qa_uid": [f"u{i}" for i in range(6)], "video_uid": ["v0", "i1", "v2", "v3", "i4", "v5"],
        "source": ["s1", "s2", "s1", "s3", "s2", "s1"], "source_group": ["s1", "s2", "s1", "s3", "s2", "s1"],
        "bucket": ["short_video", "image_qa", "short_video", "short_video", "image_qa", "short_video"],
        "n_frames": [16, 1, 8, 32, 1, 24], "question": q, "question_raw": q,
        "answer": ["It rolls away quickly.", "Red.", "A man walks a dog in the park.", "B", "Two dogs.", "a cat a cat a cat"],
    })


def _desc() -> pd.DataFrame:
    return pd.DataFrame({"qa_uid": ["u0", "u1", "u2", "u3", "u4"],
                         "loss_video": [1.0, 2.0, 1.5, np.nan, 0.5], "loss_blind": [2.0, 2.1, 1.4, np.nan, 0.7],
                         "vds": [1.0, 0.1, -0.1, 0.3, 0.2], "frame_diversity": [0.2, 0.0, 0.1, 0.4, 0.0],
                         "quality": [0.6, 0.5, 0.4, 0.7, 0.55]})


def test_level2_score_formulas():
    t = _table()
    out = pool_scores(t, _desc(), seed=42)
    v = out["is_video"].to_numpy()
    assert list(v) == [True, False, True, True, False, True]
    base_v = out.naturalness + 0.85 * out.difficulty + 0.9 * out.alignment + 0.55 * out.temporal_bonus + 0.15 * out.source_prior
    base_i = 1.1 * out.naturalness + 0.85 * out.difficulty + 0.9 * out.alignment + 0.15 * out.source_prior
    np.testing.assert_allclose(out.base, np.where(v, base_v, base_i))
    c = 4.0
    lv3 = np.clip(out.legacy_vds3, -c, c) / c
    lq = np.clip(out.legacy_quality, -c, c) / c
    sv = 0.35 * np.tanh(out.base / 3) + 0.95 * lv3 + 0.35 * lq
    si = 0.90 * np.tanh(out.base / 3) + 0.15 * lq
    expect = np.where(v, sv, si)
    expect[5] = 0.35 * math.tanh(out.base[5] / 3) - 0.15     # video without descriptors
    np.testing.assert_allclose(out.score, expect)
    assert not out.has_descriptors[5] and out.has_descriptors[3]
    # temporal regex: rows 0 and 2 are Temporal videos, row 3/5 Mixed, images Static
    assert list(out.temporal_bonus) == [1.0, -0.5, 1.0, 0.2, -0.5, 0.2]
    # row 3 has no losses: legacy_vds3 falls back to z(VDS) + 0.5*z(frame_div) over the matched rows
    d = _desc()
    assert out.legacy_vds3[3] == pytest.approx(S.standard_z(d.vds)[3] + 0.5 * S.standard_z(d.frame_diversity)[3])
    assert out.attrs["notes"]["videos_without_descriptors"] == 1


def test_level2_computes_quality_when_absent():
    d = _desc().drop(columns=["quality"])
    for col in ("ppl", "amm", "tnc", "self_consistency", "cluster_rep", "cluster_hard"):
        d[col] = 0.5
    out = pool_scores(_table(), d)
    np.testing.assert_allclose(out.legacy_quality[:5], S.standard_z(S.level1_quality(d).to_numpy()))


@pytest.mark.parametrize("ablation, changed", [
    ("no_vds", {"term_vds", "score"}),
    ("no_ppl", {"naturalness", "base", "term_base", "score"}),
    ("no_sc", {"term_quality", "score"}),
    ("no_vds_budget", set()),
])
def test_each_ablation_changes_exactly_its_term(ablation, changed):
    t, d = _table(), _desc()
    ref = pool_scores(t, d, seed=1)
    out = pool_scores(t, d, [ablation], seed=1)
    differs = {c for c in ref.columns if c != "qa_uid" and not np.allclose(ref[c].to_numpy(float), out[c].to_numpy(float))}
    assert differs == changed
    if ablation == "no_vds":
        assert (out.term_vds == 0).all()
    if ablation == "no_ppl":
        assert (out.naturalness == 0).all()
    if ablation == "no_sc":
        assert (out.term_quality == 0).all()


def test_ties_seeded_and_errors():
    t, d = _table(), _desc()
    a, b, c = pool_scores(t, d, seed=3), pool_scores(t, d, seed=3), pool_scores(t, d, seed=4)
    np.testing.assert_array_equal(a.tie, b.tie)
    assert not np.array_equal(a.tie, c.tie)
    with pytest.raises(ValueError, match="unknown ablation"):
        pool_scores(t, d, ["no_magic"])
    dup = pd.concat([d, d.iloc[:1]], ignore_index=True)
    with pytest.raises(S.ScoreInputError, match="duplicated.*'u0'"):
        pool_scores(t, dup)
    bad = d.assign(loss_video=[1.0, np.inf, 1.0, 1.0, 1.0])
    with pytest.raises(S.ScoreInputError, match="'loss_video'.*'u1'"):
        pool_scores(t, bad)


def test_level2_without_any_descriptors():
    out = pool_scores(_table(), None)
    v = out.is_video.to_numpy()
    np.testing.assert_allclose(out.score[v], 0.35 * np.tanh(out.base[v] / 3) - 0.15)
    np.testing.assert_allclose(out.score[~v], 0.90 * np.tanh(out.base[~v] / 3))
