"""Bootstrap intervals of image-benchmark scores and of Rel (gdo_utils.evaluate.bootstrap) and how the report shows them."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gdo_utils.binomial import wilson_interval
from gdo_utils.evaluate import bootstrap as B
from gdo_utils.evaluate.image import IMAGE_BENCHMARKS


def pope_log(rng: np.random.Generator, n_per_split: int = 60) -> pd.DataFrame:
    """A scored POPE log: three splits, half the gold answers yes, replies yes / no / unparsed."""
    rows = []
    for split in ("adversarial", "popular", "random"):
        for i in range(n_per_split):
            gold = "yes" if i % 2 else "no"
            parsed = str(rng.choice(["yes", "no", ""], p=[0.45, 0.45, 0.1]))
            rows.append({"question_id": f"{split}/{i}", "group": f"{split}/{i}", "subtask": split, "gold": gold,
                         "parsed": parsed, "score": float(parsed == gold)})
    return pd.DataFrame(rows)


def mean_log(scores: np.ndarray, subtasks: int = 3) -> pd.DataFrame:
    """A scored log of one question per group (VQAv2-like: the overall score is the mean of the per-question scores)."""
    n = len(scores)
    return pd.DataFrame({"question_id": [str(i) for i in range(n)], "group": [str(i) for i in range(n)],
                         "subtask": [f"t{i % subtasks}" for i in range(n)], "gold": "x", "parsed": "x",
                         "score": scores.astype(float)})


def test_units_reproduce_the_benchmarks_own_scores():
    """POPE's mean of per-split F1 (unparsed replies neither TP nor FN) and VQA's mean soft accuracy, from the units."""
    rng = np.random.default_rng(0)
    for name, log in [("pope", pope_log(rng)), ("vqav2", mean_log(rng.choice([0, 1 / 3, 2 / 3, 1], 150)))]:
        units = B.checked_units(log, name, IMAGE_BENCHMARKS[name].aggregate)
        assert units is not None, name
        own = next(r.accuracy for r in IMAGE_BENCHMARKS[name].aggregate(log) if r.level == "overall")
        assert B.observed_score(units) == pytest.approx(own, abs=1e-9)


def test_a_score_the_units_cannot_reproduce_gets_no_interval():
    log = mean_log(np.array([1.0, 0.0, 1.0, 1.0]))
    other = lambda df: [type("R", (), {"level": "overall", "accuracy": 10.0})()]   # noqa: E731 - not the log's mean
    assert B.checked_units(log, "vqav2", other) is None


def test_every_draw_keeps_each_subtasks_size():
    strata = np.array([0] * 5 + [1] * 9 + [2] * 2)
    w = B.draw_weights(strata, 500, np.random.default_rng(1))
    for s, size in [(0, 5), (1, 9), (2, 2)]:
        assert (w[:, strata == s].sum(1) == size).all()
    assert w.std(0).min() > 0                               # each unit is drawn a varying number of times


def test_the_interval_of_a_proportion_matches_wilson():
    """For 0/1 scores the bootstrap interval is close to the Wilson interval of the same proportion."""
    scores = np.r_[np.ones(120), np.zeros(280)]
    units = B.units_of(mean_log(scores, subtasks=1), "vqav2")
    lo, hi = B.score_interval(units, n_boot=4000, seed=3)
    wlo, whi = wilson_interval(30.0, 400)
    assert abs(lo - wlo) < 1.5 and abs(hi - whi) < 1.5 and lo < 30.0 < hi


def test_rel_draws_the_same_questions_for_both_runs():
    """A subset scoring half the full-data run on every question has Rel 50 in every paired draw; equal runs 100."""
    rng = np.random.default_rng(2)
    full = mean_log(rng.choice([1 / 3, 2 / 3, 1.0], 120))
    half = full.assign(score=full["score"] / 2)
    agg = {"vqav2": IMAGE_BENCHMARKS["vqav2"].aggregate}
    assert B.rel_interval(B.paired_units({"vqav2": half}, {"vqav2": full}, agg), seed=0) == pytest.approx((50.0, 50.0))
    assert B.rel_interval(B.paired_units({"vqav2": full}, {"vqav2": full}, agg), seed=0) == pytest.approx((100.0, 100.0))
    lo, hi = B.rel_interval(B.paired_units({"vqav2": mean_log(rng.choice([0.0, 1.0], 120))}, {"vqav2": full}, agg))
    assert hi - lo > 10                                     # unrelated answers: a wide interval
    with pytest.raises(ValueError, match="same questions"):
        B.rel_interval(B.paired_units({"vqav2": full.iloc[:-1]}, {"vqav2": full}, agg))


def test_a_benchmark_whose_full_run_scores_zero_is_left_out_of_every_draw():
    zero = mean_log(np.zeros(50))
    agg = {b: IMAGE_BENCHMARKS["vqav2"].aggregate for b in ("a", "b")}
    full = mean_log(np.r_[np.ones(25), np.zeros(25)])
    pairs = B.paired_units({"a": full, "b": zero}, {"a": full, "b": zero}, agg)
    assert B.rel_interval(pairs) == pytest.approx((100.0, 100.0))   # "b" (full 0) never enters the mean


def test_the_report_shows_a_bootstrap_interval_beside_a_score_that_is_not_a_proportion():
    from gdo_utils.report.columns import Col, run_frames

    run = pd.DataFrame({"pool": ["p"], "method": ["OFA 15%"], "POPE": [72.2], "n_POPE": [240],
                        "lo_POPE": [61.0], "hi_POPE": [80.5]})
    paper = pd.DataFrame({"pool": ["p"], "method": ["OFA 15%"], "POPE": [85.0]})
    csv, disp = run_frames(run, paper, [("pool", "Pool"), ("method", "Method")], [Col("POPE", "POPE", 1, binomial=False)])
    assert disp["This run"].iloc[0] == "72.2 (n=240, 95% CI 61.0-80.5)"
    assert (csv["POPE_ci95_low"].iloc[0], csv["POPE_ci95_high"].iloc[0]) == ("61.0", "80.5")
    _, plain = run_frames(run.drop(columns=["lo_POPE", "hi_POPE"]), paper, [("pool", "Pool"), ("method", "Method")],
                          [Col("POPE", "POPE", 1, binomial=False)])
    assert plain["This run"].iloc[0] == "72.2 (n=240)"


def test_mmbench_units_are_its_circular_groups():
    """A group (the original question and its circular copies) counts only when every copy is right, as MMBench scores."""
    from gdo_utils.evaluate.image.mmbench import CIRCULAR_STRIDE

    rng = np.random.default_rng(4)
    rows = []
    for i in range(16):
        right = rng.random(4) < (0.9 if i % 2 else 0.5)
        for k in range(4):
            qid = i + k * CIRCULAR_STRIDE
            rows.append({"question_id": str(qid), "group": str(i), "subtask": f"cat{i % 3}", "gold": "A",
                         "parsed": "A" if right[k] else "B", "score": float(right[k])})
    log = pd.DataFrame(rows)
    own = next(r.accuracy for r in IMAGE_BENCHMARKS["mmbench_en"].aggregate(log) if r.level == "overall")
    units = B.checked_units(log, "mmbench_en", IMAGE_BENCHMARKS["mmbench_en"].aggregate)
    assert 0 < own < 100 and units is not None and len(units.keys) == 16
    assert B.observed_score(units) == pytest.approx(own)


def test_runs_that_answered_different_questions_get_no_rel_interval_and_the_stage_goes_on(tmp_path, repo_root, caplog):
    from gdo_utils.config import load_params
    from gdo_utils.evaluate.image.stage import last_logs, with_rel_intervals

    params = load_params(repo_root / "params" / "demo.yaml", [f"output_root={tmp_path}",
                                                               "evaluate.image.benchmarks=[vqav2]"])
    ev = tmp_path / "eval"
    traj, n_questions = [], {"ofa_p": 40, "ofa_full_p": 41}          # the full run has one more question
    for subset, n in n_questions.items():
        log = mean_log(np.r_[np.ones(n // 2), np.zeros(n - n // 2)])
        log = log.assign(parsed_release=log["parsed"], score_release=log["score"], parsed_robust=log["parsed"],
                         score_robust=log["score"])
        (ev / subset / "checkpoint-1").mkdir(parents=True)
        log.to_parquet(ev / subset / "checkpoint-1" / "vqav2.log.parquet")
        traj.append({"subset": subset, "checkpoint": "checkpoint-1", "samples_seen": 1, "benchmark": "vqav2",
                     "level": "overall", "subtask": "", "accuracy": 100.0 * (n // 2) / n})
    rel = pd.DataFrame([{"pool": "p", "subset": "ofa_p", "role": "ofa"}, {"pool": "p", "subset": "ofa_full_p", "role": "full"}])
    out = with_rel_intervals(rel, last_logs(ev, pd.DataFrame(traj), params), params)
    assert out[["rel_ci95_low", "rel_ci95_high"]].isna().all().all()
    assert "ofa_p: no Rel interval" in caplog.text and "same questions" in caplog.text
