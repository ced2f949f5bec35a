"""OFA selector: features, clustering transfer, core split, model, training, checkpoint choice,
quotas, least-confidence and k-DPP selection, save/load, feature-spec checks (tiny synthetic data)."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
import torch

from gdo_utils.config import OFAConfig
from gdo_utils.ofa.clustering import pseudo_labels, transfer_labels
from gdo_utils.ofa.core import balanced_sampler, core_indices, core_quota, split_core
from gdo_utils.ofa.features import joint_features, scorable_mask, split_modalities, unscored_reasons
from gdo_utils.ofa.kdpp import sample_kdpp, sample_kdpp_jitter
from gdo_utils.ofa.model import GatedFusionSelector
from gdo_utils.apportion import ceil_ratio, largest_remainder
from gdo_utils.ofa.scoring import score, scores_table
from gdo_utils.ofa.select import cluster_quotas, least_confident, select, selection_budget
from gdo_utils.ofa.store import (SelectorMismatchError, check_feature_spec, feature_spec, load_selector,
                                 model_config, save_selector)
from gdo_utils.ofa.train import HISTORY_COLUMNS, choose_epoch, train_selector

torch.set_num_threads(1)


def blobs(n: int = 240, d: int = 16, k: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Image/text embeddings drawn around k centres (same centre for both modalities), plus the true blob."""
    rng = np.random.default_rng(seed)
    ci, ct = rng.normal(size=(k, d)), rng.normal(size=(k, d))
    y = rng.integers(0, k, n)
    img = ci[y] + 0.3 * rng.normal(size=(n, d))
    txt = ct[y] + 0.3 * rng.normal(size=(n, d))
    img /= np.linalg.norm(img, axis=1, keepdims=True)
    txt /= np.linalg.norm(txt, axis=1, keepdims=True)
    return img.astype(np.float32), txt.astype(np.float32), y


def small_cfg(**kw) -> OFAConfig:
    base = dict(k=4, hidden=32, gate_hidden=16, epochs=4, batch_size=64, lr=1e-3, core_ratio=0.3, core_min=2)
    base.update(kw)
    return OFAConfig(**base)


# ----------------------------------------------------------------------------- features
def test_joint_features_are_unit_and_balanced():
    img, txt, _ = blobs(20, 8)
    x = joint_features(img * 3.0, txt * 0.5)
    assert x.dtype == np.float32 and x.shape == (20, 16)
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-6)
    a, b = split_modalities(x, 8)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1 / math.sqrt(2), atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(b, axis=1), 1 / math.sqrt(2), atol=1e-6)


def test_unscored_reasons():
    hi = np.array([True, False, True, False])
    ht = np.array([True, True, False, False])
    assert list(unscored_reasons(hi, ht)) == ["", "no_image", "no_text", "no_image_no_text"]
    assert list(scorable_mask(hi, ht)) == [True, False, False, False]


def test_ceil_ratio_is_exact_decimal():
    assert ceil_ratio(0.15, 100) == 15  # float: 0.15*100 = 15.000000000000002
    assert ceil_ratio(0.15, 101) == 16
    assert ceil_ratio(0.15, 665298) == 99795
    assert list(largest_remainder(np.array([5, 3, 2]), 5)) == [3, 1, 1]


# ----------------------------------------------------------------------------- clustering
def test_transfer_labels_equal_brute_force_nearest_centroid():
    img, txt, _ = blobs(200, 16, k=5)
    x = joint_features(img, txt)
    km = pseudo_labels(x, 5, seed=3, niter=10)
    rng = np.random.default_rng(1)
    other = joint_features(rng.normal(size=(150, 16)), rng.normal(size=(150, 16)))
    lab, dist = transfer_labels(other, km.centroids)
    d2 = ((other[:, None, :] - km.centroids[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(lab, d2.argmin(1))
    np.testing.assert_allclose(dist, np.sqrt(d2.min(1)), atol=1e-5)
    # the source pool's k-means labels are its own nearest centroids
    np.testing.assert_array_equal(transfer_labels(x, km.centroids)[0], km.labels)
    with pytest.raises(ValueError, match="dimension 8"):
        transfer_labels(other[:, :8], km.centroids)


# ----------------------------------------------------------------------------- core
def test_core_split_sizes_follow_the_formula():
    rng = np.random.default_rng(0)
    sizes = np.array([100, 40, 7, 1, 0, 250])
    labels = np.repeat(np.arange(6), sizes)
    dist = rng.random(len(labels)).astype(np.float32)
    quota = core_quota(sizes, 0.03, 2)
    assert list(quota) == [3, 2, 2, 1, 0, 8]  # max(2, ceil(0.03 n)), never above |C_k|
    core = core_indices(labels, dist, 6, 0.03, 2)
    assert np.bincount(labels[core], minlength=6).tolist() == quota.tolist()
    for c in range(6):  # the members nearest to the centroid
        members = np.flatnonzero(labels == c)
        if len(members):
            want = members[np.argsort(dist[members], kind="stable")[: quota[c]]]
            assert set(core[labels[core] == c]) == set(want)
    split = split_core(labels, dist, 6, 0.03, 2, 0.2, seed=7)
    assert len(split.val) == max(1, round(0.2 * len(core))) == 3
    assert len(split.train) == len(core) - 3
    assert sorted(split.core) == sorted(core) and not set(split.train) & set(split.val)
    again = split_core(labels, dist, 6, 0.03, 2, 0.2, seed=7)
    np.testing.assert_array_equal(split.train, again.train)
    other = split_core(labels, dist, 6, 0.03, 2, 0.2, seed=8)
    assert not np.array_equal(np.concatenate([split.train, split.val]), np.concatenate([other.train, other.val]))


def test_balanced_sampler_is_class_balanced_and_seeded():
    y = np.array([0] * 90 + [1] * 10)
    draws = np.array(list(iter(balanced_sampler(y, seed=1, num_samples=4000))))
    assert len(draws) == 4000
    share1 = (y[draws] == 1).mean()
    assert 0.45 < share1 < 0.55  # 1/count weights: classes drawn equally often
    again = np.array(list(iter(balanced_sampler(y, seed=1, num_samples=4000))))
    np.testing.assert_array_equal(draws, again)


# ----------------------------------------------------------------------------- model
@pytest.mark.parametrize("fusion", ["gated", "static_gate", "no_interaction"])
def test_selector_forward_shapes(fusion):
    torch.manual_seed(0)
    m = GatedFusionSelector(16, 16, 5, hidden=32, gate_hidden=8, fusion=fusion).eval()
    logits, gate = m(torch.randn(7, 16), torch.randn(7, 16))
    assert logits.shape == (7, 5) and gate.shape == (7,)
    assert ((gate > 0) & (gate < 1)).all()
    if fusion == "static_gate":
        assert torch.equal(gate, torch.full((7,), 0.5))
        assert not hasattr(m, "gate_net")
    if fusion == "gated":
        assert m.alpha.item() == pytest.approx(0.1)
        assert m.gate_net[0].in_features == 48
    if fusion == "no_interaction":
        assert not hasattr(m, "alpha") and not hasattr(m, "inter")


def test_no_interaction_equals_gated_with_alpha_zero_and_alpha_matters_otherwise():
    torch.manual_seed(0)
    gated = GatedFusionSelector(16, 16, 5, hidden=32, gate_hidden=8).eval()
    plain = GatedFusionSelector(16, 16, 5, hidden=32, gate_hidden=8, fusion="no_interaction").eval()
    missing = plain.load_state_dict(gated.state_dict(), strict=False)
    assert set(missing.unexpected_keys) == {"alpha", "inter.weight"} and not missing.missing_keys
    vi, vt = torch.randn(6, 16), torch.randn(6, 16)
    before = gated(vi, vt)[0]
    with torch.no_grad():
        gated.alpha.fill_(0.0)
    assert not torch.allclose(before, gated(vi, vt)[0])
    torch.testing.assert_close(gated(vi, vt)[0], plain(vi, vt)[0])


def test_selector_rejects_unequal_modality_dims():
    with pytest.raises(ValueError, match="image 16 and text 8"):
        GatedFusionSelector(16, 8, 3)


# ----------------------------------------------------------------------------- checkpoint choice
def hist(macro, cov) -> pd.DataFrame:
    n = len(macro)
    return pd.DataFrame({"epoch": np.arange(1, n + 1), "val_macro_acc": macro, "val_coverage": cov})


def test_choose_epoch_target_prefers_full_coverage_and_earlier_ties():
    h = hist([0.30, 0.55, 0.65, 0.60, 0.70], [4, 4, 4, 3, 4])
    assert choose_epoch(h, "target", 4, 0.60) == 2  # 0.55 and 0.65 tie at 0.05 -> earlier; epoch 4 lacks coverage
    assert choose_epoch(h, "target_any", 4, 0.60) == 4
    assert choose_epoch(h, "target", 4, 0.69) == 5
    assert choose_epoch(h, "last", 4, 0.60) == 5


def test_choose_epoch_falls_back_to_all_epochs_without_full_coverage():
    h = hist([0.2, 0.58, 0.9], [2, 3, 3])
    assert choose_epoch(h, "target", 4, 0.60) == 2
    assert choose_epoch(h, "max_coverage", 4, 0.60) == 2  # first epoch with the maximum coverage
    with pytest.raises(ValueError, match="policy"):
        choose_epoch(h, "best", 4, 0.6)


# ----------------------------------------------------------------------------- training
def fit_small(seed: int = 0, **kw):
    img, txt, _ = blobs(240, 16, k=4, seed=1)
    x = joint_features(img, txt)
    km = pseudo_labels(x, 4, seed=seed, niter=10)
    cfg = small_cfg(**kw)
    split = split_core(km.labels, km.distances, 4, cfg.core_ratio, cfg.core_min, cfg.val_ratio, seed)
    vi, vt = split_modalities(x, 16)
    return x, km, cfg, train_selector(vi, vt, km.labels, split, cfg, 4, seed, progress=False)


def test_training_is_deterministic_and_logs_every_epoch():
    _, _, cfg, a = fit_small(checkpoint_policy="last")
    _, _, _, b = fit_small(checkpoint_policy="last")
    assert list(a.history.columns) == HISTORY_COLUMNS and len(a.history) == cfg.epochs
    pd.testing.assert_frame_equal(a.history, b.history)
    for k, v in a.model.state_dict().items():
        assert torch.equal(v, b.model.state_dict()[k])
    assert a.chosen_epoch == cfg.epochs and len(a.states) == cfg.epochs
    assert a.history["train_loss"].iloc[-1] < a.history["train_loss"].iloc[0]  # it learns
    assert (a.history["val_coverage"] <= 4).all() and a.history["val_acc"].between(0, 1).all()
    _, _, _, c = fit_small(seed=5, checkpoint_policy="last")
    assert not a.history["train_loss"].equals(c.history["train_loss"])


def test_training_loads_the_chosen_epoch():
    _, _, cfg, r = fit_small(checkpoint_policy="max_coverage", epochs=3)
    want = r.states[r.chosen_epoch - 1]
    for k, v in r.model.state_dict().items():
        assert torch.equal(v, want[k])


# ----------------------------------------------------------------------------- scoring, save / load
def test_saved_selector_scores_identically_and_refuses_other_dims(tmp_path):
    x, km, cfg, r = fit_small(checkpoint_policy="last", epochs=2)
    spec = feature_spec(16, 16, 4, "tiny-clip", "l2")
    meta = {"feature_spec": spec, "model": model_config(cfg), "chosen_epoch": r.chosen_epoch}
    save_selector(tmp_path / "sel", r.model, meta, km.centroids, r.history)
    loaded = load_selector(tmp_path / "sel")
    vi, vt = split_modalities(x, 16)
    s1, s2 = score(r.model, vi, vt, batch=50), score(loaded.model, vi, vt, batch=50)
    for name in ("conf", "entropy", "gate", "pred"):
        np.testing.assert_array_equal(getattr(s1, name), getattr(s2, name))
    np.testing.assert_allclose(score(loaded.model, vi, vt, batch=17).conf, s1.conf, rtol=1e-5)  # batching: float noise only
    np.testing.assert_array_equal(loaded.centroids, km.centroids)
    assert (s1.conf >= 0.25 - 1e-6).all() and (s1.conf <= 1).all()
    assert (s1.entropy >= 0).all() and (s1.entropy <= math.log(4) + 1e-5).all()
    check_feature_spec(loaded.feature_spec, 16, 16, "tiny-clip", 4)
    with pytest.raises(SelectorMismatchError, match=r"image embedding dimension: selector 16, visionflan 32"):
        check_feature_spec(loaded.feature_spec, 32, 16, pool="visionflan")
    with pytest.raises(SelectorMismatchError, match="CLIP architecture: selector 'tiny-clip', pool 'ViT-B-32'"):
        check_feature_spec(loaded.feature_spec, 16, 16, "ViT-B-32")
    with pytest.raises(ValueError):  # a ValueError subclass
        check_feature_spec(loaded.feature_spec, 16, 16, k=8)


def test_scores_table_keeps_unscored_rows():
    reasons = np.array(["", "no_image", "", "no_text"], dtype=object)
    from gdo_utils.ofa.scoring import Scores

    s = Scores(np.array([0.2, 0.5], np.float32), np.array([1.0, 0.5], np.float32),
               np.array([0.4, 0.6], np.float32), np.array([1, 0]))
    t = scores_table(np.array(["a", "b", "c", "d"]), reasons, np.array([3, 1]), np.array([0.1, 0.2]), s)
    assert t["scored"].tolist() == [True, False, True, False]
    assert t["cluster"].tolist() == [3, -1, 1, -1]
    assert t["conf"].isna().tolist() == [False, True, False, True]
    assert t["reason"].tolist() == ["", "no_image", "", "no_text"]


# ----------------------------------------------------------------------------- quotas and selection
@pytest.mark.parametrize("sizes,n_sel", [([50, 30, 15, 4, 1, 0], 15), ([50, 30, 15, 4, 1, 0], 5),
                                         ([50, 30, 15, 4, 1, 0], 100), ([1, 1, 1, 200], 10),
                                         ([7, 3, 3, 3], 16), ([10, 10, 10], 0)])
def test_quotas_sum_respect_sizes_and_cover_clusters(sizes, n_sel):
    sizes = np.array(sizes)
    q = cluster_quotas(sizes, n_sel)
    assert q.sum() == n_sel and (q <= sizes).all() and (q >= 0).all()
    assert (q[sizes == 0] == 0).all()
    if n_sel >= (sizes > 0).sum():
        assert (q[sizes > 0] >= 1).all()


def test_quotas_proportional_and_small_budget_goes_to_largest():
    assert cluster_quotas(np.array([60, 30, 10]), 10).tolist() == [6, 3, 1]
    assert cluster_quotas(np.array([50, 30, 15, 4, 1, 0]), 15).tolist() == [7, 4, 2, 1, 1, 0]
    assert cluster_quotas(np.array([5, 9, 9, 2]), 2).tolist() == [0, 1, 1, 0]  # largest first, ties by id
    assert cluster_quotas(np.array([1, 1, 1, 200]), 10).tolist() == [1, 1, 1, 7]
    with pytest.raises(ValueError):
        cluster_quotas(np.array([2, 2]), 5)


def test_selection_budget():
    assert selection_budget(0.15, 100) == 15 and selection_budget(0.15, 7) == 2


def test_least_confident_takes_lowest_per_cluster():
    conf = np.array([0.9, 0.1, 0.5, 0.3, 0.3, 0.2, 0.8])
    clusters = np.array([0, 0, 0, 1, 1, 1, 1])
    idx = least_confident(conf, clusters, np.array([2, 2]))
    assert idx.tolist() == [1, 2, 3, 5]  # cluster 1: 0.2 then the earlier of the two 0.3 ties


def test_same_seed_same_selection_and_diversity_respects_quotas():
    rng = np.random.default_rng(0)
    n, k = 400, 5
    x = joint_features(rng.normal(size=(n, 16)), rng.normal(size=(n, 16)))
    clusters = rng.integers(0, k, n)
    conf = rng.random(n).astype(np.float32)
    a = select(conf, clusters, k, 0.15, x=x, diversity=True, block=16, seed=42, progress=False)
    b = select(conf, clusters, k, 0.15, x=x, diversity=True, block=16, seed=42, progress=False)
    np.testing.assert_array_equal(a.indices, b.indices)
    assert len(a.indices) == a.n_sel == 60 == len(np.unique(a.indices))
    assert a.taken.tolist() == a.quotas.tolist()
    c = select(conf, clusters, k, 0.15, x=x, diversity=True, block=16, seed=43, progress=False)
    assert not np.array_equal(a.indices, c.indices)
    for cl in range(k):  # candidates are the 2q lowest-confidence members
        members = np.flatnonzero(clusters == cl)
        cand = members[np.argsort(conf[members], kind="stable")[: 2 * a.quotas[cl]]]
        assert set(a.indices[clusters[a.indices] == cl]) <= set(cand)
    plain = select(conf, clusters, k, 0.15, progress=False)
    np.testing.assert_array_equal(plain.indices, least_confident(conf, clusters, plain.quotas))


# ----------------------------------------------------------------------------- k-DPP
def test_kdpp_returns_k_distinct_items():
    rng = np.random.default_rng(0)
    f = rng.normal(size=(30, 40))
    kernel = f @ f.T
    for seed in range(5):
        out = sample_kdpp(kernel, 7, np.random.default_rng(seed))
        assert len(out) == 7 == len(np.unique(out)) and out.min() >= 0 and out.max() < 30
    low_rank = np.ones((6, 6))  # rank 1: k = 3 only possible with jitter
    assert len(np.unique(sample_kdpp_jitter(low_rank, 3, seed=1))) == 3


def test_kdpp_matches_exact_distribution():
    rng = np.random.default_rng(3)
    f = rng.normal(size=(5, 3))
    kernel = f @ f.T + 0.1 * np.eye(5)
    subsets = list(itertools.combinations(range(5), 2))
    dets = np.array([np.linalg.det(kernel[np.ix_(s, s)]) for s in subsets])
    want = dets / dets.sum()
    gen = np.random.default_rng(11)
    counts = dict.fromkeys(subsets, 0)
    draws = 3000
    for _ in range(draws):
        counts[tuple(sample_kdpp(kernel, 2, gen).tolist())] += 1
    got = np.array([counts[s] for s in subsets]) / draws
    assert np.abs(got - want).max() < 0.03


def test_kdpp_prefers_diverse_sets_over_near_duplicates():
    base = np.eye(4)
    x = np.repeat(base, 2, axis=0) + 0.01 * np.random.default_rng(0).normal(size=(8, 4))  # 4 pairs of twins
    from gdo_utils.ofa.select import dpp_kernel

    kernel = dpp_kernel(x, np.ones(8))
    diverse = 0
    for seed in range(200):
        out = sample_kdpp_jitter(kernel, 4, seed=seed)
        diverse += len(set((out // 2).tolist())) == 4  # one item from each twin pair
    assert diverse / 200 > 0.6  # uniform choice would give 16/70 = 0.23
