"""Release mode of the subset builder: each behaviour option both ways on hand-built pools.

Every pool below is small enough to work the selection out by hand; the expected ids in each test follow
the release's gdo/build_pair.py step by step (comments), and the kit's choice gives other rows. Scores are
set directly (the selection's input), so the hand-working needs no text statistics.
"""
from __future__ import annotations

import math
import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gdo_utils.config import BEHAVIOUR_OPTIONS, params_from_dict
from gdo_utils.subsets.budget import derive_budget
from gdo_utils.subsets.context import context_from_tables, pool_scores
from gdo_utils.subsets.core import select_subset
from gdo_utils.subsets.profiles import Profile, load_profile_file
from gdo_utils.subsets.quotas import apportion
from gdo_utils.subsets.release import release_stream, stream_candidates

PROFILES = Path(__file__).resolve().parents[1] / "params" / "profiles"
# the first values of random.Random(42).random() (CPython's Mersenne Twister), used as the release's ties
R42 = (0.6394267984578837, 0.025010755222666936, 0.27502931836911926, 0.22321073814882275, 0.7364712141640124)


def make_params(behaviour: str = "release", target: int | None = None, **opts):
    sub = {"behaviour": behaviour, "figures": False, "profiles_dir": str(PROFILES), **opts}
    if target is not None:
        sub["budget_override"] = target
    return params_from_dict({"run_name": "t", "output_root": "/nonexistent", "seed": 42, "subsets": sub})


def profile(**over) -> Profile:
    """temp_plus with neutral composition settings unless a test sets them."""
    base = load_profile_file(PROFILES / "temp_plus.yaml").model_dump()
    base.update(oversample=1.0, video_oversample=1.0, temporal_oversample=1.0, min_video_ratio=0.0,
                max_video_ratio=1.0, min_temporal_in_video_ratio=0.0, source_group_floor_topk=0)
    base.update(over)
    return Profile.model_validate(base)


def row(uid: str, score: float, group: str = "g", video: str | None = None, text: str | None = None,
        temporal: bool = False) -> dict:
    """One QA row: an image row, or a video row of `video`; `text` (default: the uid) makes the answer."""
    q = "what happens then" if temporal else "what is shown"
    return {"qa_uid": uid, "video_uid": video or uid, "source": group, "source_group": group,
            "bucket": "short_video" if video else "image_qa", "n_frames": 16 if video else 1,
            "question": q, "answer": text or uid, "_score": score}


def select(rows: list[dict], prof: Profile, behaviour: str = "release", target: int = 2, **opts) -> list[str]:
    """Selected qa_uids (selection order) of a hand-built pool with the given scores."""
    table = pd.DataFrame(rows)
    scores = table.pop("_score").to_numpy(dtype=float)
    ctx = context_from_tables(make_params(behaviour, target, **opts), table, None)
    ctx._scores[frozenset()] = pd.DataFrame({"score": scores, "tie": np.linspace(0.9, 0.1, len(scores)),
                                             "legacy_vds3": np.zeros(len(scores))})
    sel = select_subset(ctx, prof)
    return [table["qa_uid"].iloc[r] for r in sel.rows]


# ----------------------------------------------------------------------------- the switch
def test_behaviour_switch_sets_every_option_and_an_explicit_option_wins():
    rel, kit = make_params("release").subsets, make_params("kit").subsets
    assert rel.behaviour_options() == {k: v["release"] for k, v in BEHAVIOUR_OPTIONS.items()}
    assert kit.behaviour_options() == {k: v["kit"] for k, v in BEHAVIOUR_OPTIONS.items()}
    assert make_params("release", rounding="tolerance").subsets.option("rounding") == "tolerance"
    assert make_params().subsets.behaviour == "release"          # the release is the default
    from typing import get_args

    from gdo_utils.config import SubsetsConfig
    for name, values in BEHAVIOUR_OPTIONS.items():               # every option is a validated field
        assert set(values) == {"release", "kit"} and values["release"] != values["kit"], name
        literal = get_args(SubsetsConfig.model_fields[name].annotation)[0]
        assert set(get_args(literal)) == set(values.values()), name


# ----------------------------------------------------------------------------- each option both ways
def test_floor_candidates_capped_vs_pool():
    # 9 images (stratum A) and 1 video (stratum V); target 3: quotas A = 3 (2.7 -> 2 + the remainder), V = 0,
    # so V has no capped candidate. min_video = ceil(0.3 * 3) = 1.
    rows = [row(f"i{k}", 1.0 - k / 10) for k in range(1, 10)] + [row("v", 0.05, group="vid", video="v")]
    prof = profile(min_video_ratio=0.3, max_video_ratio=0.5)
    # release: the video floor draws from the capped candidates (no video) -> the three best images
    assert select(rows, prof, target=3) == ["i1", "i2", "i3"]
    # kit: the floor draws from the whole pool -> the video, then two images fill quota A up to the target
    assert select(rows, prof, target=3, floor_candidates="pool") == ["v", "i1", "i2"]


def test_quota_fill_stratum_order_vs_score_order():
    # strata A (group ga, seen first) and B (gb), quota 1 each (target 2), caps 2 (oversample 2).
    # b1 scores highest but has a1's text, so whichever is taken first blocks the other.
    rows = [row("a1", 0.5, "ga", text="same"), row("a2", 0.4, "ga"),
            row("b1", 0.9, "gb", text="same"), row("b2", 0.3, "gb")]
    prof = profile(oversample=2.0)
    # release: stratum A first: a1; then B: b1 is a duplicate text -> b2
    assert select(rows, prof) == ["a1", "b2"]
    # kit: one walk in score order: b1 (B done), a1 blocked, a2 (A done)
    assert select(rows, prof, quota_fill="score_order") == ["b1", "a2"]


def test_tie_order_first_seen_vs_sorted():
    # two strata of one row each, target 1: both raw quotas are 0.5, a tie for the one remainder seat.
    rows = [row("z1", 0.1, "zz"), row("a1", 0.9, "aa")]
    # release: the tie goes to the stratum seen first (zz); aa gets quota 0 and no candidate
    assert select(rows, profile(), target=1) == ["z1"]
    # kit: the tie goes to the first label in sorted order (aa)
    assert select(rows, profile(), target=1, tie_order="sorted") == ["a1"]


def test_tie_order_in_apportion_and_top_k_groups():
    assert apportion(np.array([1, 1, 1]), 2, "float").tolist() == [1, 1, 0]        # ties -> earlier keys
    from gdo_utils.subsets.quotas import source_group_floors
    counts = pd.Series({"aa": 5, "zz": 5, "mm": 2})
    prof = profile(source_group_floor_topk=1, min_source_group_ratio=0.01, floor_frac_of_expected=0.1)
    # 100 x 5/12 = 41.7 expected; required max(1, ceil(4.17)) = 5: the single top group is the tie winner
    assert list(source_group_floors(counts, 100, prof, "float", ["zz", "aa", "mm"])["floors"]) == ["zz"]
    assert list(source_group_floors(counts, 100, prof, "tolerance")["floors"]) == ["aa"]


def test_group_floor_fill_group_by_group_vs_score_order():
    # groups G1 (3 rows, the most common) and G2 (2 rows); target 3. Floors: expected 1.8 and 1.2, required 1 each.
    # Strata = groups; quotas G1 2, G2 1; caps (oversample 2) hold every row. g2a has g1a's text.
    rows = [row("g1a", 0.5, "G1", text="same"), row("g1b", 0.4, "G1"), row("g1c", 0.2, "G1"),
            row("g2a", 0.9, "G2", text="same"), row("g2b", 0.3, "G2")]
    prof = profile(oversample=2.0, source_group_floor_topk=2, min_source_group_ratio=0.01, floor_frac_of_expected=0.1)
    # release: G1 first: g1a; G2: g2a blocked -> g2b; quota G1 needs one more: g1b
    assert select(rows, prof, target=3) == ["g1a", "g2b", "g1b"]
    # kit: one score-ordered walk over both groups: g2a, g1a blocked, g1b; quota G1 needs one more: g1c
    assert select(rows, prof, target=3, group_floor_fill="score_order") == ["g2a", "g1b", "g1c"]


def test_per_video_cap_on_video_rows_only_vs_every_row():
    # two image rows of one multi-turn record (same video_uid "s") and one more image; cap 1 per video.
    rows = [row("i1", 0.9), row("i2", 0.8), row("i3", 0.1)]
    rows[0]["video_uid"] = rows[1]["video_uid"] = "s"
    prof = profile(oversample=2.0)
    # release: the cap counts short-video rows only -> the two best images
    assert select(rows, prof, per_video_cap=1) == ["i1", "i2"]
    # kit: every row counts -> i2 is the second row of video "s", so i3 instead
    assert select(rows, prof, per_video_cap=1, per_video_cap_on="all") == ["i1", "i3"]


def test_temporal_oversample_on_mixed_video_strata():
    # images i1..i4 (stratum I, seen first), Mixed videos m1..m3 (stratum V); target 3: quotas I 2 (1.71 + the
    # remainder), V 1 (1.29). caps: I ceil(2 * 1.5) = 3; V: kit ceil(1 * 1.5) = 2 (m1, m2), release
    # ceil(1 * 3) = 3 (TEMPORAL_OVERSAMPLE also on Mixed video strata). m1, m2 repeat i1's and i2's texts.
    rows = [row("i1", 0.6, "img", text="t1"), row("i2", 0.5, "img", text="t2"), row("i3", 0.4, "img"),
            row("i4", 0.1, "img"), row("m1", 0.9, "vid", video="m1", text="t1"),
            row("m2", 0.8, "vid", video="m2", text="t2"), row("m3", 0.7, "vid", video="m3")]
    prof = profile(oversample=1.5, temporal_oversample=3.0)
    # release: quota I: i1, i2; quota V: m1, m2 blocked -> m3
    assert select(rows, prof, target=3) == ["i1", "i2", "m3"]
    # kit: V's candidates m1, m2 are blocked; the global fill takes the next image candidate i3
    assert select(rows, prof, target=3, temporal_oversample_on="temporal") == ["i1", "i2", "i3"]


def test_candidate_ties_stream_vs_tie_number():
    # one stratum, quota 1, cap 1; r1 and r5 tie on score 0.5. The release's ties (random.Random(42), no
    # reservoir draw in a pool smaller than the reservoir) are R42: r1 0.639, r5 0.736.
    assert release_stream(5, 42, 10).ties.tolist() == list(R42)
    rows = [row("r1", 0.5), row("r2", 0.1), row("r3", 0.1), row("r4", 0.1), row("r5", 0.5)]
    # release: r5 arrives at a full list whose lowest score is 0.5: not strictly higher -> r1 stays
    assert select(rows, profile(), target=1) == ["r1"]
    # kit: the top row by (score, tie) -> r5 (tie 0.736 > 0.639)
    assert select(rows, profile(), target=1, candidate_ties="tie_number") == ["r5"]


def test_stream_candidates_replays_the_heap_only_at_the_boundary():
    score = np.array([0.5, 0.9, 0.5, 0.5, 0.1, 0.5])
    tie = np.array([0.1, 0.5, 0.9, 0.2, 0.3, 0.8])
    order = np.lexsort((-tie, -score))
    # cap 3 of one stratum: rows 1 (0.9) and, at the boundary 0.5, the first two read: 0 then 2;
    # row 3 and row 5 arrive at a full list whose lowest score is 0.5 and are refused.
    kept = stream_candidates(order, np.zeros(6, np.int64), np.array([3]), score, tie)
    assert sorted(kept.tolist()) == [0, 1, 2]
    assert kept.tolist() == [1, 2, 0]                        # still in (score, tie) order


def test_tie_numbers_release_stream_interleaves_reservoir_draws():
    # uniform size 2 -> reservoir cap max(2, ceil(2.7)) = 3; rows 4..6 draw a randint after their tie.
    st = release_stream(6, 7, 2)
    rng = random.Random(7)
    ties, res = [], []
    for i in range(6):
        ties.append(rng.random())
        if len(res) < 3:
            res.append(i)
        else:
            j = rng.randint(1, i + 1)
            if j <= 3:
                res[j - 1] = i
    shuffled = list(res)
    rng.shuffle(shuffled)
    assert st.ties.tolist() == ties and st.reservoir.tolist() == res and st.shuffled.tolist() == shuffled
    assert st.reservoir_cap == 3
    # the kit's PCG64 numbers are another stream
    ctx = context_from_tables(make_params("kit"), pd.DataFrame([row("a", 0.1), row("b", 0.2)]).drop(columns="_score"), None)
    assert ctx.scores()["tie"].tolist() != list(R42[:2])


@pytest.mark.parametrize("n,seed,uniform", [(0, 1, 5), (1, 1, 0), (3, 2, 1), (100, 5, 0), (5000, 42, 37),
                                             (5000, 9, 10000), (70000, 42, 1000)])
def test_release_stream_equals_the_standard_library_draws(n, seed, uniform):
    # the release's loop written with random.Random's own random / randint / shuffle (bit lengths up to 17)
    rng, cap = random.Random(seed), max(uniform, math.ceil(uniform * 1.35)) if uniform else 0
    ties, res = [], []
    for i in range(n):
        ties.append(rng.random())
        if len(res) < cap:
            res.append(i)
        else:
            j = rng.randint(1, i + 1)
            if j <= cap:
                res[j - 1] = i
    shuffled = list(res)
    rng.shuffle(shuffled)
    st = release_stream(n, seed, uniform)
    assert (st.ties.tolist(), st.reservoir.tolist(), st.shuffled.tolist()) == (ties, res, shuffled)


def test_rounding_float_vs_tolerance():
    prof = load_profile_file(PROFILES / "temp_plus.yaml")
    counts = np.array([100000])
    # 100000 * 0.018 = 1799.9999999999998 in floating point: the release floors it to 1799
    assert derive_budget(counts, np.zeros(0), prof, rounding="float")["target"] == 1799
    assert derive_budget(counts, np.zeros(0), prof, rounding="tolerance")["target"] == 1800
    # quotas of 11 over counts 15 and 7: exactly 7.5 and 3.5 (a tie -> the first key gets the seat: 8, 3);
    # in floating point 11 * (15/22) = 7.499999999999999, so the release gives the seat to the second: 7, 4
    assert apportion(np.array([15, 7]), 11, "float").tolist() == [7, 4]
    assert apportion(np.array([15, 7]), 11, "tolerance").tolist() == [8, 3]


def _video_table(n: int) -> pd.DataFrame:
    return pd.DataFrame([row(f"v{k}", 0.0, video=f"v{k}") for k in range(n)]).drop(columns="_score")


def test_z_std_sample_vs_population():
    table = _video_table(2)
    desc = pd.DataFrame({"qa_uid": ["v0", "v1"], "loss_video": np.nan, "loss_blind": np.nan, "frame_diversity": np.nan,
                         "vds": [0.0, 1.0], "quality": [0.0, 0.0]})
    # mean 0.5; population sd 0.5 -> z = -1, +1; sample sd sqrt(0.5) -> z = -/+0.7071
    pop = pool_scores(table, desc, z_std="population")["legacy_vds3"].to_numpy()
    smp = pool_scores(table, desc, z_std="sample")["legacy_vds3"].to_numpy()
    assert pop == pytest.approx([-1.0, 1.0]) and smp == pytest.approx([-0.5 ** 0.5, 0.5 ** 0.5])


def test_metric_stats_over_every_metrics_row_vs_pool_rows():
    table = _video_table(2)
    desc = pd.DataFrame({"qa_uid": ["v0", "v1", "gone"], "loss_video": np.nan, "loss_blind": np.nan,
                         "frame_diversity": np.nan, "vds": [0.0, 1.0, 2.0], "quality": 0.0})
    # over all three rows: mean 1, sample sd 1 -> z(0) = -1, z(1) = 0; over the pool's two: -/+0.7071
    allrows = pool_scores(table, desc, z_std="sample", stats_over="metrics")["legacy_vds3"].to_numpy()
    pool = pool_scores(table, desc, z_std="sample", stats_over="pool")["legacy_vds3"].to_numpy()
    assert allrows == pytest.approx([-1.0, 0.0]) and pool == pytest.approx([-0.5 ** 0.5, 0.5 ** 0.5])
    # the VDS-positive share of the budget: 1 of 3 metrics rows (z = +1) vs 1 of 2 pool rows
    rel = context_from_tables(make_params("release"), table, desc)
    kit = context_from_tables(make_params("release", metric_stats_over="pool"), table, desc)
    assert (rel.positive_source() > 0).tolist() == [False, False, True]
    assert (kit.positive_source() > 0).tolist() == [False, True]


def test_descriptor_presence_row_vs_values():
    table = _video_table(2)
    desc = pd.DataFrame({"qa_uid": ["v0"], "loss_video": np.nan, "loss_blind": np.nan, "frame_diversity": np.nan,
                         "vds": np.nan, "quality": np.nan})
    # v0 has a metrics row with no value: the release counts it as having metrics (no penalty); v1 has none
    rel = pool_scores(table, desc, presence="row")["term_missing_descriptors"].tolist()
    kit = pool_scores(table, desc, presence="values")["term_missing_descriptors"].tolist()
    assert rel == [0.0, -0.15] and kit == [-0.15, -0.15]


# ----------------------------------------------------------------------------- the core promise
def _promise_violations(ctx, sel) -> list[str]:
    """Strata where an unselected candidate the fill stages could still take outscores a selected row.

    A candidate could still be taken when it is not selected, its text is new, its video is under the
    per-video cap and (for a video) the subset is under max_video: such a row stayed takeable through
    every stage (the take conditions only tighten), and every stage walks its rows in score order.
    """
    s = ctx.params.subsets
    score = sel.scores["score"].to_numpy()
    rows = sel.rows[np.asarray(sel.stages) != "uniform_fallback"]
    taken = np.zeros(ctx.n, bool)
    taken[sel.rows] = True
    texts = set(ctx.text_code[sel.rows].tolist())
    codes = ctx.cap_video_code()
    per_video = pd.Series(codes[sel.rows]).value_counts()
    n_video = int(ctx.is_video[sel.rows].sum())
    cand = sel.candidates
    open_ = ~taken[cand] & ~np.isin(ctx.text_code[cand], list(texts)) & \
        (per_video.reindex(codes[cand]).fillna(0).to_numpy() < s.per_video_cap) & \
        ~(ctx.is_video[cand] & (n_video >= sel.report["quotas"]["max_video"]))
    best_open = pd.Series(score[cand[open_]]).groupby(ctx.strata.stratum[cand[open_]]).max()
    worst_taken = pd.Series(score[rows]).groupby(ctx.strata.stratum[rows]).min()
    both = best_open.index.intersection(worst_taken.index)
    return [ctx.strata.labels[k] for k in both if worst_taken[k] < best_open[k]]


@pytest.mark.parametrize("behaviour", ["release", "kit"])
def test_selected_rows_outscore_the_takeable_candidates_of_their_stratum_synthetic(tmp_path, behaviour):
    from gdo_utils.subsets.context import load_context
    from gdo_utils.subsets.synthetic import write_synthetic

    params = params_from_dict({"run_name": "t", "output_root": str(tmp_path), "seed": 42,
                               "subsets": {"behaviour": behaviour, "profiles_dir": str(PROFILES), "figures": False,
                                           "ratio_scale": 5.0}})
    write_synthetic(params, 3000, seed=5)
    ctx = load_context(params)
    for name in ("minloss", "temp_plus"):
        sel = select_subset(ctx, load_profile_file(PROFILES / f"{name}.yaml"))
        assert len(sel.rows) == sel.report["target"] > 0
        assert _promise_violations(ctx, sel) == [], name


@pytest.fixture(scope="module")
def toy_pool(tmp_path_factory):
    """The demo's toy-world GDO pool (params/demo.yaml) with seeded synthetic descriptors."""
    import pyarrow as pa

    from gdo_utils.config import load_params
    from gdo_utils.pool import load_pool, run_pool_stage
    from gdo_utils.subsets.synthetic import synthetic_descriptors

    d = tmp_path_factory.mktemp("toy")
    p = load_params(Path(__file__).resolve().parents[1] / "params" / "demo.yaml",
                    [f"output_root={d}", "pool.check_media=false"])
    run_pool_stage(p, only=["gdo"])
    qa = load_pool(p)
    return qa, synthetic_descriptors(pa.Table.from_pandas(qa, preserve_index=False), 3)


@pytest.mark.parametrize("behaviour", ["release", "kit"])
def test_selected_rows_outscore_the_takeable_candidates_of_their_stratum_toyworld(toy_pool, behaviour):
    qa, desc = toy_pool
    ctx = context_from_tables(make_params(behaviour, ratio_scale=7.0), qa, desc)
    for name in ("minloss", "diverse", "temp", "temp_plus"):
        sel = select_subset(ctx, load_profile_file(PROFILES / f"{name}.yaml"))
        assert len(sel.rows) > 0
        assert _promise_violations(ctx, sel) == [], name


def test_promise_check_flags_a_lower_row_taken_over_a_higher_one():
    from gdo_utils.subsets.core import Selection

    rows = [row("a", 0.9), row("b", 0.5), row("c", 0.1)]
    table = pd.DataFrame(rows)
    scores = pd.DataFrame({"score": table.pop("_score").to_numpy(), "tie": [0.3, 0.2, 0.1], "legacy_vds3": 0.0})
    ctx = context_from_tables(make_params("kit", 2), table, None)
    good = Selection(np.array([0, 1]), ["stratum_quotas"] * 2, {"quotas": {"max_video": 2}}, scores, np.arange(3))
    bad = Selection(np.array([0, 2]), ["stratum_quotas"] * 2, {"quotas": {"max_video": 2}}, scores, np.arange(3))
    assert _promise_violations(ctx, good) == []
    assert _promise_violations(ctx, bad) == [ctx.strata.labels[0]]      # c (0.1) taken while b (0.5) was open


# ----------------------------------------------------------------------------- other release departures
def test_tnc_prompt_is_the_release_wording():
    from gdo_utils.descriptors.temporal import TNC_PROMPT_TEMPLATE

    # gdo/extract_six_metrics.py, tnc_llm, verbatim
    assert TNC_PROMPT_TEMPLATE.format(question="What happens first?") == (
        "Decide if the question requires temporal reasoning over multiple frames.\n"
        "Answer only one word: Temporal or Static.\n"
        "Question: What happens first?")


def test_ofa_selector_input_unit_vs_joint_halves():
    from gdo_utils.config import OFAConfig
    from gdo_utils.ofa.features import joint_features, selector_input_of, split_modalities

    assert OFAConfig().selector_input == "unit"
    img, txt = np.array([[3.0, 4.0]]), np.array([[0.0, 2.0]])
    x = joint_features(img, txt)                       # [0.6, 0.8, 0, 1] / sqrt 2
    vi, vt = split_modalities(x, 2, "unit")
    np.testing.assert_allclose(vi, [[0.6, 0.8]], atol=1e-6)
    np.testing.assert_allclose(vt, [[0.0, 1.0]], atol=1e-6)
    hi, ht = split_modalities(x, 2, "joint_halves")
    np.testing.assert_allclose(hi, [[0.6 / 2 ** 0.5, 0.8 / 2 ** 0.5]], atol=1e-6)
    np.testing.assert_allclose(hi * ht, vi * vt / 2, atol=1e-6)     # the interaction term is halved
    assert selector_input_of({"config": {"selector_input": "unit"}}) == "unit"
    assert selector_input_of({"config": {}}) == "joint_halves"      # selectors saved before the option
