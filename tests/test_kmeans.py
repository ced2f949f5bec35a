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


def _faiss_kmeans(x, k, niter, seed, mppc, init=None):
    """faiss.Kmeans itself on one thread: the centroids and the iterations it ran (with their splits)."""
    import faiss

    from gdo_utils.lloyd import one_thread

    km = faiss.Kmeans(x.shape[1], k, niter=niter, seed=seed, verbose=False, max_points_per_centroid=mppc,
                      min_points_per_centroid=1)
    with one_thread():
        km.train(x, init_centroids=init)
    return np.array(km.centroids, dtype=np.float32).reshape(k, x.shape[1]), km.iteration_stats


def _lloyd_cases():
    rng = np.random.default_rng(0)
    wide = rng.standard_normal((14_000, 40)).astype(np.float32)
    dup = np.repeat(rng.standard_normal((300, 40)).astype(np.float32), 40, axis=0)[rng.permutation(12_000)]
    return {  # name: (x, k, niter, seed, max_points_per_centroid, init)
        "all rows, three search ranges": (wide[:14_000], 64, 8, 3, 256, None),
        "subsample": (wide, 48, 6, 5, 100, None),
        "empty clusters split": (dup, 400, 6, 7, 256, None),
        "given init": (wide, 32, 6, 1, 256, wide[:32] * 0.5),
        "converges before niter": (np.repeat(np.eye(4, 40, dtype=np.float32) * 5, 3_000, axis=0), 4, 20, 0, 256, None),
        "sample of k rows copies x[:k]": (wide[:600], 200, 4, 2, 1, None),
        "d <= 32, one range": (wide[:, :8].copy(), 16, 5, 4, 256, None),
    }


@pytest.mark.parametrize("case", list(_lloyd_cases()))
def test_lloyd_is_faiss_kmeans_bit_for_bit_on_any_thread_count(case):
    from gdo_utils import lloyd

    x, k, niter, seed, mppc, init = _lloyd_cases()[case]
    want, stats = _faiss_kmeans(x, k, niter, seed, mppc, init)
    if case == "empty clusters split":
        assert sum(s["nsplit"] for s in stats) > 0
    if case == "converges before niter":
        assert len(stats) < niter
    for threads in (1, 3):
        got, iterations = lloyd.train(x, k, niter, seed, mppc, init_centroids=init, threads=threads)
        assert got.dtype == np.float32 and got.tobytes() == want.tobytes(), threads
        assert iterations == len(stats)


def test_nearest_is_one_single_threaded_faiss_search_per_batch():
    import faiss

    from gdo_utils import lloyd

    rng = np.random.default_rng(1)
    x = rng.standard_normal((30_000, 76)).astype(np.float32)
    c = rng.standard_normal((700, 76)).astype(np.float32)
    index = faiss.IndexFlatL2(76)
    index.add(c)
    with lloyd.one_thread():
        whole = index.search(x, 1)
        batched = [index.search(x[s:s + 9_000], 1) for s in range(0, len(x), 9_000)]  # tail: 3,000 rows
    for threads in (1, 2, 5):
        d2, lab = lloyd.nearest(x, c, threads)
        assert d2.tobytes() == whole[0][:, 0].tobytes() and lab.tobytes() == whole[1][:, 0].tobytes()
        d2, lab = lloyd.nearest(x, c, threads, batch=9_000)
        assert d2.tobytes() == np.concatenate([b[0][:, 0] for b in batched]).tobytes()
        assert lab.tobytes() == np.concatenate([b[1][:, 0] for b in batched]).tobytes()


@pytest.mark.parametrize("n,d,parts", [(30_000, 76, 8), (30_000, 76, 2), (8_200, 40, 4), (5_000, 76, 4),
                                       (100_000, 33, 3), (100_000, 32, 4), (100, 76, 4)])
def test_search_ranges_start_on_faiss_blocks_and_keep_the_blas_path(n, d, parts):
    import faiss

    from gdo_utils.lloyd import search_ranges

    bs, threshold = faiss.cvar.distance_compute_blas_query_bs, faiss.cvar.distance_compute_blas_threshold
    ranges = search_ranges(n, d, parts)
    assert ranges[0][0] == 0 and ranges[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))
    if len(ranges) > 1:
        assert all(s % bs == 0 and (e - s) * d >= threshold for s, e in ranges)
        assert d > 32 and len(ranges) <= parts


def test_split_draws_are_faiss_random_generator_floats():
    import faiss

    from gdo_utils.lloyd import _MT19937Floats

    ref = faiss.RandomGenerator(1234)
    want = np.array([ref.rand_float() for _ in range(2_000)], dtype=np.float32)
    ours = _MT19937Floats(1234)
    assert ours.take(2_000).tobytes() == want.tobytes()


def test_assign_and_pca_give_the_same_bytes_for_any_faiss_thread_count():
    import faiss

    from gdo_utils.descriptors.coverage import reduce_dims
    from gdo_utils.kmeans import assign

    rng = np.random.default_rng(2)
    x = rng.standard_normal((20_000, 96)).astype(np.float32)
    c = rng.standard_normal((300, 96)).astype(np.float32)
    before = faiss.omp_get_max_threads()
    out = []
    try:
        for threads in (1, 2, 3):
            faiss.omp_set_num_threads(threads)
            lab, dist = assign(x, c)
            out.append((lab.tobytes(), dist.tobytes(), reduce_dims(x, 16, seed=0).tobytes()))
    finally:
        faiss.omp_set_num_threads(before)
    assert out[0] == out[1] == out[2]
    lab, dist = assign(np.empty((0, 96), dtype=np.float32), c)
    assert lab.shape == dist.shape == (0,)


def test_take_rows_is_fancy_indexing_across_chunks():
    from gdo_utils.descriptors.coverage import FILL_ROWS, take_rows

    rng = np.random.default_rng(3)
    x = rng.standard_normal((3 * FILL_ROWS, 3)).astype(np.float32)
    rows = np.sort(rng.choice(len(x), 2 * FILL_ROWS + 5, replace=False))
    got = take_rows(x, rows)
    assert got.flags.c_contiguous and got.tobytes() == x[rows].tobytes()
