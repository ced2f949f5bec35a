"""Goal-preset subsets (gdo_utils.subsets): budget rule, quotas, constraints, stages, files, determinism."""
from __future__ import annotations

import hashlib
import json
import logging
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from gdo_utils.config import params_from_dict
from gdo_utils.io import read_parquet
from gdo_utils.subsets import build_all, build_profile, budget_sweep, parse_subset_name
from gdo_utils.subsets.budget import budget_rule, derive_budget, vds_adjustment
from gdo_utils.subsets.context import load_context
from gdo_utils.subsets.core import select_subset
from gdo_utils.words import WORD_TOKEN_RE
from gdo_utils.subsets.profiles import Profile, ProfileError, load_profile, load_profile_file
from gdo_utils.apportion import largest_remainder
from gdo_utils.subsets.quotas import source_group_floors
from gdo_utils.subsets.strata import compute_strata, mcq_mask, temporal_match
from gdo_utils.subsets.synthetic import write_synthetic
from gdo_utils.subsets.text import answer_token_stats, word_counts

REPO = Path(__file__).resolve().parents[1]
PROFILES = REPO / "params" / "profiles"
PRESETS = ("minloss", "diverse", "temp", "temp_plus", "custom")


def make_params(tmp_path: Path, **subsets) -> object:
    # these tests pin the kit's behaviour options; tests/test_release_mode.py covers the release's
    tree = {"run_name": "t", "output_root": str(tmp_path / "out"), "seed": 42,
            "subsets": {"profiles_dir": str(PROFILES), "figures": False, "ratio_scale": 5.0, "behaviour": "kit",
                        **subsets}}
    return params_from_dict(tree)


@pytest.fixture(scope="module")
def pool_dir(tmp_path_factory) -> Path:
    """A synthetic 2000-row pool + descriptors shared by the module's tests (copied per test)."""
    d = tmp_path_factory.mktemp("pool")
    write_synthetic(make_params(d), 2000, seed=0)
    return d


@pytest.fixture
def params(tmp_path: Path, pool_dir: Path):
    import shutil

    shutil.copytree(pool_dir / "out", tmp_path / "out")
    return make_params(tmp_path)


def profile(**over) -> Profile:
    base = load_profile_file(PROFILES / "temp_plus.yaml").model_dump()
    base.update(over)
    return Profile.model_validate(base)


def text_sha1(q: str, a: str) -> str:
    return hashlib.sha1(f"{q}|||{a}".encode()).hexdigest()


# ----------------------------------------------------------------------------- profiles
def test_presets_load_with_the_spec_values():
    got = {n: load_profile_file(PROFILES / f"{n}.yaml") for n in PRESETS}
    assert got["temp_plus"].min_count == 16000 and got["temp_plus"].max_ratio == 0.018
    assert got["minloss"].temporal_oversample == 1.55 and got["diverse"].source_group_floor_topk == 28
    assert got["temp"].min_video_ratio == 0.35 and got["custom"].vds3_max_mult == 3.0
    assert [got[n].paper_1x_size for n in PRESETS[:4]] == [12900, 42900, 33300, 53300]
    # _default.yaml carries every key; each preset file states only the values that differ from it
    import yaml
    default = yaml.safe_load((PROFILES / "_default.yaml").read_text())
    assert set(Profile.model_fields) - {"name"} <= set(default)
    for n in PRESETS:
        own = yaml.safe_load((PROFILES / f"{n}.yaml").read_text())
        assert own.pop("include") == "_default.yaml", n
        same = [k for k, v in own.items() if k != "description" and default.get(k) == v]
        assert same == [], (n, same)
    assert got["custom"].model_dump(exclude={"name", "description"}) == \
        {k: v for k, v in default.items() if k != "description"}


@pytest.mark.parametrize("text, field", [
    ("min_ratio: -0.1", "min_ratio"),
    ("min_video_ratio: 0.9", "min_video_ratio"),
    ("oversample: 0.5", "oversample"),
    ("max_count: 10", "min_count"),
    ("bogus_key: 1", "bogus_key"),
    ("coverage_mass: '0.9'", "coverage_mass"),
])
def test_invalid_profile_values_are_rejected_with_field_and_file(tmp_path, text, field):
    (tmp_path / "_default.yaml").write_text((PROFILES / "_default.yaml").read_text())
    bad = tmp_path / "bad.yaml"
    bad.write_text((PROFILES / "temp_plus.yaml").read_text() + "\n" + text + "\n")
    with pytest.raises(ProfileError) as exc:
        load_profile_file(bad)
    assert field in str(exc.value) and str(bad) in str(exc.value)


def test_include_template_and_unknown_profile(tmp_path):
    (tmp_path / "_default.yaml").write_text((PROFILES / "_default.yaml").read_text())
    (tmp_path / "mine.yaml").write_text("include: _default.yaml\nmin_video_ratio: 0.1\n")
    p = load_profile_file(tmp_path / "mine.yaml")
    assert p.name == "mine" and p.min_video_ratio == 0.1 and p.max_video_ratio == 0.55
    params = make_params(tmp_path, profiles_dir=str(tmp_path))
    with pytest.raises(ProfileError, match="available: \\['mine'\\]"):
        load_profile(params, "nope")


def test_parse_subset_name():
    assert parse_subset_name("temp_plus") == ("temp_plus", ())
    assert parse_subset_name("temp_plus_no_vds") == ("temp_plus", ("no_vds",))
    assert parse_subset_name("temp_plus_no_vds_budget") == ("temp_plus", ("no_vds_budget",))
    assert parse_subset_name("temp_plus_no_sc_no_ppl") == ("temp_plus", ("no_ppl", "no_sc"))


# ----------------------------------------------------------------------------- budget rule
def test_budget_rule_on_a_hand_made_stratum_table():
    counts = np.array([500, 300, 150, 50])              # N = 1000
    p = profile(min_count=10, max_count=10_000, min_ratio=0.001, max_ratio=0.5, strata_mult=20,
                coverage_mass=0.95, tail_target=16)
    b = budget_rule(counts, p)
    shares = counts / 1000
    e = math.exp(-(shares * np.log(shares)).sum())
    assert b["effective_strata"] == pytest.approx(e)
    assert b["p_tail"] == pytest.approx(0.15) and b["strata_covered"] == 3     # 0.5 + 0.3 + 0.15 = 0.95
    assert b["lower_terms"] == {"min_count": 10, "n_min_ratio": 1, "e_strata_mult": math.ceil(e * 20),
                                "tail": math.ceil(16 / 0.15)}
    assert b["n"] == max(math.ceil(e * 20), 107) and b["binding"] in ("e_strata_mult", "tail")
    # upper terms bind: MAX_RATIO 0.05 -> floor(1000 * 0.05) = 50
    assert budget_rule(counts, profile(min_count=10, max_count=10_000, max_ratio=0.05, min_ratio=0.001))["n"] == 50
    # ratio_scale multiplies MIN/MAX_RATIO
    assert budget_rule(counts, profile(min_count=10, max_count=10_000, max_ratio=0.05, min_ratio=0.001),
                       ratio_scale=2.0)["n"] == 100


def test_vds_adjustment_by_hand():
    p = profile(vds3_target_positive=90, vds3_max_mult=3.2, max_count=110_000, max_ratio=0.5)
    adj = vds_adjustment(100, 1000, 0.5, p)              # needs ceil(90/0.5)=180 -> max(100,180) = 180
    assert adj["target"] == 180 and adj["needed"] == 180
    adj = vds_adjustment(100, 1000, 0.01, p)             # needs 9000; capped by ceil(100*3.2) = 320
    assert adj["target"] == 320 and adj["cap_terms"]["n_max_mult"] == 320
    adj = vds_adjustment(100, 1000, 0.0, p)
    assert adj["target"] == 100 and not adj["applied"]
    lv3 = np.r_[np.ones(10), -np.ones(990)]
    counts = np.array([500, 500])
    b = derive_budget(counts, lv3, profile(min_count=10, max_ratio=0.5, vds3_target_positive=2))
    assert b["vds_adjustment"]["positive_share"] == pytest.approx(0.01) and b["target"] >= b["n"]
    off = derive_budget(counts, lv3, profile(min_count=10, max_ratio=0.5, vds3_target_positive=2), vds_aware=False)
    assert off["target"] == off["n"]
    assert derive_budget(counts, lv3, profile(), override=37)["target"] == 37
    assert derive_budget(counts, lv3, profile(), override=0.05)["target"] == 50


# ----------------------------------------------------------------------------- quotas
def test_largest_remainder_sums_exactly():
    assert list(largest_remainder(np.array([5, 3, 2]), 7)) == [4, 2, 1]
    assert list(largest_remainder(np.array([1, 1, 1]), 2)) == [1, 1, 0]
    rng = np.random.default_rng(0)
    for _ in range(200):
        w = rng.integers(0, 1000, rng.integers(1, 50))
        if w.sum() == 0:
            continue
        t = int(rng.integers(0, 5000))
        q = largest_remainder(w, t)
        assert q.sum() == t and (q >= 0).all()
        assert np.all(np.abs(q - t * w / w.sum()) < 1.0 + 1e-9)
    assert largest_remainder(np.array([0.5, 0.25, 0.25]), 3).sum() == 3


def test_source_group_floors_by_hand():
    counts = pd.Series({"a": 600, "b": 300, "c": 90, "d": 10})
    p = profile(source_group_floor_topk=3, min_source_group_ratio=0.02, floor_frac_of_expected=0.5)
    f = source_group_floors(counts, 100, p)
    # expected a 60, b 30, c 9; required = max(ceil(100*0.02)=2, ceil(0.5*expected)) = 30, 15, 5
    assert f["floors"] == {"a": 30, "b": 15, "c": 5} and not f["scaled"]
    p = profile(source_group_floor_topk=3, min_source_group_ratio=0.02, floor_frac_of_expected=1.0)
    f = source_group_floors(counts, 100, p)    # 60 + 30 + 9 = 99 > floor(0.7*100) = 70 -> scaled
    assert f["scaled"] and f["floors"] == {"a": math.floor(60 * 70 / 99), "b": math.floor(30 * 70 / 99),
                                           "c": math.floor(9 * 70 / 99)}
    p = profile(source_group_floor_topk=4, min_source_group_ratio=0.05, floor_frac_of_expected=0.1)
    assert "d" not in source_group_floors(counts, 100, p)["floors"]    # required 5 > floor(expected 1)


def test_video_limits_caps_and_top_per_group_by_hand():
    from gdo_utils.subsets.quotas import stratum_caps, video_limits
    from gdo_utils.subsets.select import score_order, top_per_group

    p = profile()    # Temp+: video 0.50-0.64, temporal-in-video 0.38, oversample 1.35 / 2.9 / 4.2
    assert video_limits(p, 100, 60) == {"min_video": 50, "max_video": 64, "video_quota": 60, "min_temporal_video": 23}
    assert video_limits(p, 100, 30)["min_temporal_video"] == 19          # ceil(0.38 * max(50, 30))
    assert video_limits(profile(max_video_ratio=0.5, min_video_ratio=0.5), 7, 0)["max_video"] == 4   # max(4, 3)
    caps = stratum_caps(np.array([2, 3, 0, 1]), np.array([False, True, True, True]),
                        np.array([False, False, True, True]), p)
    assert list(caps) == [3, 9, 0, 5]                                     # ceil(2.7), ceil(8.7), 0, ceil(4.2)
    score = np.array([0.1, 0.9, 0.5, 0.5, 0.3, 0.8])
    tie = np.array([0.0, 0.0, 0.2, 0.7, 0.0, 0.0])
    order = score_order(score, tie)
    assert list(order) == [1, 5, 3, 2, 4, 0]                             # ties broken by the larger tie number
    group = np.array([0, 0, 0, 1, 1, 1])
    assert list(top_per_group(order, group, np.array([2, 1]))) == [1, 5, 2]      # group 0: 1, 2; group 1: 5


# ----------------------------------------------------------------------------- strata fields
def test_text_statistics_match_the_regex_definition():
    texts = ["Hello, world!", "", "  a_b 12x  é ü-z ", "The the THE cat", "x" * 5 + " ..." + " y", "日本 go"]
    wc = word_counts(pd.Series(texts))
    assert list(wc) == [len(WORD_TOKEN_RE.findall(t)) for t in texts]
    n, d = answer_token_stats(pd.Series(texts))
    assert list(n) == list(wc)
    assert list(d) == [len(set(x.lower() for x in WORD_TOKEN_RE.findall(t))) for t in texts]


@pytest.mark.parametrize("chunk", [1, 2, 3, 64])
def test_text_statistics_are_the_same_across_chunk_boundaries(monkeypatch, chunk):
    import gdo_utils.words as words

    texts = ["Hello, world!", "", "  a_b 12x  é ü-z ", None, "The the THE cat", "x" * 5 + " ..." + " y", "日本 go", "a"]
    want = [len(WORD_TOKEN_RE.findall(t or "")) for t in texts]
    monkeypatch.setattr(words, "CHUNK_ROWS", chunk)
    assert list(word_counts(pd.Series(texts, dtype=object))) == want
    n, d = answer_token_stats(pd.Series(texts, dtype=object))
    assert list(n) == want and list(d) == [len({x.lower() for x in WORD_TOKEN_RE.findall(t or "")}) for t in texts]


def test_dedup_key_is_the_joined_question_answer_text():
    """The release deduplicates on question + "|||" + answer: two different pairs whose joined texts are equal
    are one text; equal pairs are one text; a "|" alone changes nothing."""
    from gdo_utils.subsets.context import text_codes

    q = pd.Series(["a|||b", "a", "x", "a|||b", "a|b", "a", "a|", "a", "q"])
    a = pd.Series(["c", "b|||c", "y", "c", "c", "b|c", "|b", "||b", "q"])
    # joined: a|||b|||c, a|||b|||c, x|||y, a|||b|||c, a|b|||c, a|||b|c, a|||||b (a, 5 bars, b) twice, q|||q
    assert text_codes(q, a).tolist() == [0, 0, 1, 0, 2, 3, 4, 4, 5]


def test_temporal_regex_and_mcq_options():
    q = pd.Series(["What happens BEFORE the end?", "Is it beforehand?", "What is it?", "Then what?"])
    assert list(temporal_match(q)) == [True, False, False, True]
    table = pd.DataFrame({"question": ["Which is red? A. ball B. cube", "Pick one of the choices", "Why?"],
                          "question_raw": ["Which is red?\nA. ball\nB. cube", "Pick one of the choices", "Why?"]})
    # release quirk: after collapse the option lines are gone, only "choice" words count
    assert list(mcq_mask(table, "after_collapse")) == [False, True, False]
    assert list(mcq_mask(table, "before_collapse")) == [True, True, False]


def test_strata_fields_by_hand():
    t = pd.DataFrame({"bucket": ["image_qa", "short_video", "short_video"], "n_frames": [1, 8, 32],
                      "n_frames_total": [1, 8, 200], "question": ["What color?", "What happens next?", "Why?"],
                      "answer": ["Red", "It falls down", "x " * 70], "source_group": ["g1", "g2", "g1"]})
    s = compute_strata(t)
    f = s.fields.astype(str)
    assert list(f.duration) == ["image", "very_short", "medium"]
    assert list(f.temporal) == ["Static", "Temporal", "Mixed"]
    assert list(f.q_len) == ["q<=6"] * 3 and list(f.a_len) == ["a<=2", "a<=8", "a>64"]
    assert s.labels[s.stratum[1]] == "short_video|very_short|Temporal|Open|q<=6|a<=8|g2"
    assert list(compute_strata(t, duration_frames="n_frames_total").fields.duration.astype(str))[2] == "very_long"
    tnc = compute_strata(t, temporal_category="tnc", tnc=np.array([np.nan, 0.0, np.nan]))
    assert list(tnc.fields.temporal.astype(str)) == ["Static", "Mixed", "Mixed"]
    assert tnc.notes["tnc_missing_videos_regex_fallback"] == 1


# ----------------------------------------------------------------------------- selection
def _pool_frame(params) -> pd.DataFrame:
    return read_parquet(params.stage_dir("pool") / "qa.parquet")


def _check_hard_constraints(params, report: dict, name: str) -> pd.DataFrame:
    qa = _pool_frame(params).set_index("qa_uid")
    ids = (params.stage_dir("subsets", name) / "selected_ids.txt").read_text().split()
    assert len(ids) == len(set(ids)) == report["size"]
    sel = qa.loc[ids]
    hashes = [text_sha1(q, a) for q, a in zip(sel.question, sel.answer)]
    assert len(set(hashes)) == len(hashes), "duplicated question+answer text"
    assert Counter(sel.video_uid).most_common(1)[0][1] <= params.subsets.per_video_cap
    return sel


def test_build_profile_meets_every_feasible_constraint(params):
    rep = build_profile(params, "temp_plus")
    assert rep["size"] == rep["target"] > 0 and rep["unmet_constraints"] == []
    sel = _check_hard_constraints(params, rep, "temp_plus")
    q = rep["quotas"]
    n_video = int((sel.bucket == "short_video").sum())
    assert q["min_video"] <= n_video <= q["max_video"]
    assert q["min_video"] == math.ceil(0.5 * rep["target"] - 1e-9)
    assert n_video >= q["min_temporal_video"]
    for g, floor in q["source_group_floors"]["floors"].items():
        assert int((sel.source_group == g).sum()) >= floor
    assert sum(rep["stage_counts"].values()) == rep["size"]
    assert q["strata"]["quota_sum"] == rep["target"]
    assert sum(q["bucket"].values()) == rep["target"]
    out = params.stage_dir("subsets", "temp_plus")
    for f in ("train.jsonl", "selected_ids.txt", "report.json", "card.md", "manifest.json", "selection.parquet"):
        assert (out / f).is_file(), f
    assert rep["files"]["selected_ids.txt"] == hashlib.sha256((out / "selected_ids.txt").read_bytes()).hexdigest()
    assert set(rep["js_divergence"]) >= {"bucket", "duration", "temporal", "form", "q_len", "a_len", "source_group"}
    assert 0 <= rep["uniform"]["overlap"]["shared"] <= rep["size"]
    card = (out / "card.md").read_text()
    assert "every constraint met" in card and str(rep["size"]) in card
    # uniform baseline: 10x the target capped at the pool, same dedup + per-video cap
    urep = json.loads((params.stage_dir("subsets", "uniform_temp_plus") / "report.json").read_text())
    assert urep["size"] == min(10 * rep["target"], 2000) or urep["unmet_constraints"]
    _check_uniform(params, urep)


def _check_uniform(params, urep: dict) -> None:
    qa = _pool_frame(params).set_index("qa_uid")
    ids = (params.stage_dir("subsets", urep["name"]) / "selected_ids.txt").read_text().split()
    sel = qa.loc[ids]
    assert Counter(sel.video_uid).most_common(1)[0][1] <= params.subsets.per_video_cap
    dups = len(ids) - len({text_sha1(q, a) for q, a in zip(sel.question, sel.answer)})
    assert dups <= urep["dedup_relaxed"]


def test_same_seed_byte_identical_and_other_seed_differs(tmp_path, pool_dir):
    import shutil

    roots = []
    for name in ("a", "b"):
        shutil.copytree(pool_dir / "out", tmp_path / name / "out")
        p = make_params(tmp_path / name)
        build_profile(p, "temp")
        roots.append(p.stage_dir("subsets", "temp"))
    assert (roots[0] / "train.jsonl").read_bytes() == (roots[1] / "train.jsonl").read_bytes()
    assert (roots[0] / "report.json").read_bytes() == (roots[1] / "report.json").read_bytes()
    shutil.copytree(pool_dir / "out", tmp_path / "c" / "out")
    p = params_from_dict({**make_params(tmp_path / "c").model_dump(), "seed": 7})
    build_profile(p, "temp")
    # the seed drives ties and the uniform reservoir: the uniform baseline changes with it
    uni = [r.parent / "uniform_temp" / "selected_ids.txt" for r in roots] + \
        [p.stage_dir("subsets", "uniform_temp", "selected_ids.txt")]
    assert uni[0].read_bytes() == uni[1].read_bytes() != uni[2].read_bytes()


def test_skip_when_current_and_force_rebuilds(params):
    build_profile(params, "minloss")
    mf = params.stage_dir("subsets", "minloss") / "manifest.json"
    first = mf.read_text()
    build_profile(params, "minloss")
    assert mf.read_text() == first
    build_profile(params, "minloss", force=True)
    assert json.loads(mf.read_text())["created_utc"] >= json.loads(first)["created_utc"]
    p2 = params_from_dict({**params.model_dump(), "subsets": {**params.subsets.model_dump(), "per_video_cap": 2}})
    rep = build_profile(p2, "minloss")           # settings changed -> rebuilt
    assert rep["achieved"]["per_video_cap"] == 2
    _check_hard_constraints(p2, rep, "minloss")


def test_infeasible_video_floor_is_reported_not_raised(tmp_path, caplog):
    p = make_params(tmp_path)
    write_synthetic(p, 600, seed=3, video_share=0.04)
    with caplog.at_level(logging.WARNING):
        rep = build_profile(p, "temp_plus")
    unmet = {u["constraint"] for u in rep["unmet_constraints"]}
    assert unmet == {"min_video"}                # 21 usable videos < floor 27; the temporal floor (11) is met
    assert rep["achieved"]["video"] == 21 and rep["quotas"]["min_video"] == 27
    assert rep["size"] == rep["target"]          # filled with images by the later stages
    assert any("unmet constraint min_video" in r.message for r in caplog.records)
    assert "Unmet constraints" in (p.stage_dir("subsets", "temp_plus") / "card.md").read_text()


def test_pool_too_small_for_target_reports_size(tmp_path):
    p = make_params(tmp_path, budget_override=500)
    write_synthetic(p, 300, seed=4, duplicate_share=0.5)
    rep = build_profile(p, "minloss")
    assert rep["target"] == 300 and rep["size"] < 300
    assert any(u["constraint"] == "size" for u in rep["unmet_constraints"])
    _check_hard_constraints(p, rep, "minloss")
    urep = json.loads((p.stage_dir("subsets", "uniform_minloss") / "report.json").read_text())
    assert urep["dedup_relaxed"] > 0            # the uniform baseline relaxes dedup when short


def test_build_all_ablations_and_profiles_differ(params):
    p = params_from_dict({**params.model_dump(), "subsets": {**params.subsets.model_dump(),
                                                            "ablations": ["no_vds", "no_vds_budget"]}})
    reps = build_all(p)
    assert list(reps) == ["minloss", "diverse", "temp", "temp_plus", "temp_plus_no_vds", "temp_plus_no_vds_budget"]
    sizes = {n: r["size"] for n, r in reps.items()}
    assert len({sizes[n] for n in ("minloss", "temp_plus")}) == 2
    ids = {n: (p.stage_dir("subsets", n) / "selected_ids.txt").read_text() for n in reps}
    assert ids["temp_plus"] != ids["temp_plus_no_vds"]
    assert reps["temp_plus_no_vds"]["uniform"]["name"] == "uniform_temp_plus"
    assert reps["temp_plus_no_vds_budget"]["budget"]["vds_adjustment"]["applied"] is False
    summary = json.loads((p.stage_dir("subsets", "summary.json")).read_text())
    assert set(summary) == set(reps)


def test_fixed_uniform_size_is_shared(params):
    p = params_from_dict({**params.model_dump(), "subsets": {**params.subsets.model_dump(),
                                                            "uniform": {"size": 700, "multiplier": None}}})
    a, b = build_profile(p, "minloss"), build_profile(p, "temp")
    assert a["uniform"]["name"] == b["uniform"]["name"] == "uniform" and a["uniform"]["size"] == 700


def test_budget_override_ratio_and_sweep(params):
    ctx = load_context(params)
    prof = load_profile(params, "diverse")
    sel = select_subset(ctx, prof, target=0.1)
    assert sel.report["target"] == 200 and len(sel.rows) == 200
    df = budget_sweep(params, "diverse", [50, 0.05, 150], ctx=ctx)
    assert list(df["target"]) == [50, 100, 150] and (df["size"] == df["target"]).all()


def test_before_collapse_finds_more_mcq(params):
    ctx = load_context(params)
    p2 = params_from_dict({**params.model_dump(), "subsets": {**params.subsets.model_dump(),
                                                             "mcq_detection": "before_collapse"}})
    ctx2 = load_context(p2)
    n_after = int((ctx.strata.fields["form"] == "MCQ").sum())
    n_before = int((ctx2.strata.fields["form"] == "MCQ").sum())
    assert n_before > n_after > 0


def test_bad_inputs_give_clear_errors(tmp_path):
    p = make_params(tmp_path)
    with pytest.raises(FileNotFoundError, match="qa.parquet"):
        build_profile(p, "temp")
    write_synthetic(p, 200, seed=5)
    with pytest.raises(ProfileError, match="not found"):
        build_profile(p, "temp_minus")
    d = read_parquet(p.stage_dir("descriptors") / "descriptors.parquet")
    d.loc[3, "loss_blind"] = np.inf
    from gdo_utils.io import write_parquet
    write_parquet(p.stage_dir("descriptors") / "descriptors.parquet", d)
    with pytest.raises(ValueError, match="'loss_blind'"):
        build_profile(p, "temp")


def test_plots_draw_from_reports(params):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from gdo_utils.subsets import subset_rows
    from gdo_utils.subsets.build import composition_inputs
    from gdo_utils.subsets.plots import plot_composition, plot_score_distributions, plot_stage_counts
    from gdo_utils.subsets.report import budget_table, constraints_table, summary_table

    p = params_from_dict({**params.model_dump(), "subsets": {**params.subsets.model_dump(), "profiles": ["minloss", "temp"]}})
    reports = build_all(p)
    comps = composition_inputs(reports, p.subsets.profiles)
    assert list(comps) == ["pool", "minloss", "temp", "uniform_temp"]
    figs = [plot_composition(comps), plot_stage_counts(reports)]
    ctx = load_context(p)
    figs.append(plot_score_distributions(ctx.scores(), {n: subset_rows(p, n, ctx) for n in reports}))
    assert [len(f.axes) for f in figs] == [5, 1, 2]
    for f in figs:
        plt.close(f)
    assert list(summary_table(reports).index) == ["minloss", "temp"]
    assert (budget_table(reports)["binding"] == "n_max_ratio").all()
    assert (constraints_table(reports)["unmet"] == "-").all()


def test_duplicated_pool_ids_are_refused(tmp_path):
    from gdo_utils.io import write_parquet
    from gdo_utils.schema import QA_SCHEMA

    p = make_params(tmp_path)
    write_synthetic(p, 50, seed=6)
    qa = read_parquet(p.stage_dir("pool") / "qa.parquet")
    qa.loc[1, "qa_uid"] = qa.loc[0, "qa_uid"]
    write_parquet(p.stage_dir("pool") / "qa.parquet", pa.Table.from_pandas(qa, schema=QA_SCHEMA, preserve_index=False))
    with pytest.raises(ValueError, match="qa_uid.*duplicated"):
        build_profile(p, "temp")


@pytest.mark.parametrize("prompt_text", ["question", "question_raw"])
def test_loaded_context_holds_no_texts_and_writes_the_same_records(params, tmp_path, prompt_text):
    """load_context drops the texts once the codes and strata have read them (the selection and the writes
    never hold the pool's texts); the written records read them back from qa.parquet and are byte for byte
    those of a context that keeps the texts in memory."""
    from gdo_utils.subsets.context import TEXT_COLUMNS, context_from_tables, descriptors_file, pool_file
    from gdo_utils.subsets.decomposition import top_picks
    from gdo_utils.subsets.files import RowSource, write_subset_files

    p = params_from_dict({**params.model_dump(), "subsets": {**params.subsets.model_dump(), "prompt_text": prompt_text}})
    ctx = load_context(p)
    assert not set(TEXT_COLUMNS) & set(ctx.table.columns)
    pool = read_parquet(pool_file(p))
    full = context_from_tables(p, pool, read_parquet(descriptors_file(p)))
    assert {"question", "answer"} <= set(full.table.columns)
    np.testing.assert_array_equal(ctx.text_code, full.text_code)
    rows = np.random.default_rng(3).choice(ctx.n, 300, replace=False)
    digests = [write_subset_files(c, tmp_path / name, rows, None, c.scores(), RowSource(c, rows))
               for name, c in (("loaded", ctx), ("in_memory", full))]
    assert digests[0] == digests[1]
    records = [json.loads(line) for line in (tmp_path / "loaded" / "train.jsonl").read_text().splitlines()]
    by_uid = pool.set_index("qa_uid")
    assert len(records) == 300
    for rec in records[:20]:
        user, assistant = rec["messages"]
        assert user["content"].endswith(by_uid.loc[rec["id"], prompt_text])
        assert assistant["content"] == by_uid.loc[rec["id"], "answer"]
    build_profile(p, "temp_plus")
    top = top_picks(p, "temp_plus", ctx, n=5)
    assert list(top["question"]) == list(pool.set_index("qa_uid").loc[top["qa_uid"], "question"])


def test_rows_are_not_read_back_from_a_pool_rewritten_after_the_context_was_loaded(params):
    """The written rows' texts and media are read from qa.parquet at write time: when the pool stage has rewritten
    its outputs since load_context, that is refused instead of mixing two pools."""
    from gdo_utils.subsets.context import SubsetInputError, pool_file
    from gdo_utils.subsets.files import RowSource, column_of

    ctx = load_context(params)
    RowSource(ctx, np.arange(5))                       # unchanged: reads
    (pool_file(params).parent / "manifest.json").write_text(json.dumps({"outputs_sha256": {"qa.parquet": "other"}}))
    with pytest.raises(SubsetInputError, match="rewrote its outputs"):
        RowSource(ctx, np.arange(5))
    with pytest.raises(SubsetInputError, match="rewrote its outputs"):
        column_of(ctx, np.arange(5), "question")
    RowSource(load_context(params), np.arange(5))     # a context loaded again reads
