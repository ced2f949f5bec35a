"""Seeded faiss k-means: both initialisations recover separated blobs, deterministically; PCA option."""
import numpy as np
import pytest

from gdo_utils.descriptors.coverage import cluster_coverage
from gdo_utils.kmeans import fit_kmeans, kmeans_plus_plus


def _blobs(n_per=50, d=8, seed=0, spread=0.05):
    rng = np.random.default_rng(seed)
    centres = np.eye(4, d, dtype=np.float32) * 10  # four blobs 10*sqrt(2) apart
    truth = np.repeat(np.arange(4), n_per)
    return (centres[truth] + spread * rng.standard_normal((len(truth), d))).astype(np.float32), truth


def _same_partition(a, b) -> bool:
    return all(len(set(b[a == c])) == 1 for c in np.unique(a)) and len(np.unique(a)) == len(np.unique(b))


@pytest.mark.parametrize("init", ["kmeans++", "faiss"])
def test_both_inits_recover_the_blobs_and_repeat_exactly(init):
    x, truth = _blobs()
    a = fit_kmeans(x, 4, seed=3, niter=10, init=init)
    b = fit_kmeans(x, 4, seed=3, niter=10, init=init)
    assert _same_partition(a.labels, truth)
    np.testing.assert_array_equal(a.centroids, b.centroids)
    # every row sits within a few spreads of its centroid: distance = ||x - c||
    np.testing.assert_allclose(a.distances, np.linalg.norm(x - a.centroids[a.labels], axis=1), rtol=1e-4, atol=1e-4)


def test_kmeans_plus_plus_picks_one_row_per_blob_first():
    x, truth = _blobs()
    c = kmeans_plus_plus(x, 4, seed=0)
    picked = [int(np.flatnonzero((x == row).all(1))[0]) for row in c]
    assert sorted(truth[picked]) == [0, 1, 2, 3]  # D^2 sampling leaves no blob out when they are this far apart


def test_coverage_pca_option_clusters_in_the_principal_axes():
    rng = np.random.default_rng(1)
    x, truth = _blobs(d=4)
    noise = 0.01 * rng.standard_normal((len(x), 60)).astype(np.float32)
    wide = np.concatenate([x, noise], axis=1)
    cov = cluster_coverage(wide, k=4, seed=0, niter=10, pca=4)
    assert _same_partition(cov["cluster_id"].to_numpy(), truth)
    with pytest.raises(ValueError, match="init"):
        fit_kmeans(x, 2, seed=0, init="random")
