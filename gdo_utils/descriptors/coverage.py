"""Coverage descriptor (GDO_METHOD.md section 3.6): k-means over a joint feature space.

Every candidate is assigned to its nearest of K = min(k, n) centroids (gdo_utils.kmeans.fit_kmeans:
seeded init, faiss's Lloyd iterations, nearest-centroid assignment, the same bytes on any thread
count); with d the Euclidean distance to that centroid, cluster_rep = exp(-d) (typical of its cluster) and
cluster_hard = 1 - cluster_rep (far from its centroid).

Feature spaces (DescriptorsConfig.coverage_features):
- "clip" (default): `clip_joint_features`, the CLIP joint embedding shared with OFA.
- "standardized": `standardized_features`, descriptor + text/vision statistics.

Release defects this module fixes (GDO_METHOD.md section 3, "known defects"): the release hashes
words with Python's salted `hash()`, so its coverage features (and hence clusters) change between
processes; here words are hashed with hashlib.blake2b, identical under any PYTHONHASHSEED. The release
also mixes raw PPL (up to e^30) with unit-scale features, so PPL alone decides the clusters; here
every descriptor is robust-z-scored (log PPL, clipped) and clipped to +-4 before it enters.
"""
from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

import numpy as np
import pandas as pd

from gdo_utils.stats import robust_z
from gdo_utils.kmeans import fit_kmeans
from gdo_utils.lloyd import one_thread
from gdo_utils.vectors import l2_normalize
from gdo_utils.words import WORD_TOKEN, WORD_TOKEN_RE

COVERAGE_COLUMNS = ("cluster_id", "cluster_dist", "cluster_rep", "cluster_hard")
DESCRIPTOR_FEATURES = ("amm", "frame_diversity", "vds", "log_ppl", "tnc", "self_consistency")
TEXT_FEATURES = ("log_q_words", "log_a_words", "n_frames_32", "is_video", "log_q_digits", "has_qmark")
HASH_BUCKETS = 64
Z_CLIP = 4.0
LOG_PPL_CLIP = 30.0
FRAMES_SCALE = 32.0


PCA_SAMPLE = 100_000
FILL_ROWS = 16_384
FILL_THREADS = 2  # threads for pure row copies (the same bytes for any count)


def take_rows(x: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """x[rows] as a new C-contiguous array, FILL_ROWS rows at a time on FILL_THREADS threads (pure copies)."""
    out = np.empty((len(rows), *x.shape[1:]), dtype=x.dtype)

    def take(s: int) -> None:
        np.take(x, rows[s:s + FILL_ROWS], axis=0, out=out[s:s + FILL_ROWS])

    with ThreadPoolExecutor(max_workers=FILL_THREADS) as pool:
        list(pool.map(take, range(0, len(rows), FILL_ROWS)))
    return out


def reduce_dims(features: np.ndarray, dims: int, seed: int) -> np.ndarray:
    """Project onto the top `dims` principal axes (faiss PCAMatrix fitted on a seeded sample of rows).

    faiss runs on one thread here: its covariance and projection are single BLAS calls, which round
    differently when OpenBLAS splits them over threads (the same bytes on any machine needs one thread).
    """
    import faiss

    x = np.ascontiguousarray(features, dtype=np.float32)
    if dims >= x.shape[1]:
        return x
    rng = np.random.default_rng(seed)
    fit_rows = x if len(x) <= PCA_SAMPLE else take_rows(x, np.sort(rng.choice(len(x), PCA_SAMPLE, replace=False)))
    pca = faiss.PCAMatrix(x.shape[1], dims)
    with one_thread():
        pca.train(np.ascontiguousarray(fit_rows))
        return pca.apply(x)


def cluster_coverage(features: np.ndarray, k: int, seed: int, niter: int = 20, init: str = "faiss",
                     points_per_centroid: int = 256, pca: int | None = None) -> pd.DataFrame:
    """k-means coverage per row: cluster_id (int64), cluster_dist (float32), cluster_rep = exp(-d), cluster_hard.

    `init`, `points_per_centroid` (training rows per centroid) and `pca` (cluster in the top-`pca`
    principal axes; distances measured there) are the DescriptorsConfig.coverage_* options.
    """
    x = np.asarray(features, dtype=np.float32)
    if pca is not None:
        x = reduce_dims(x, pca, seed)
    res = fit_kmeans(x, k=k, seed=seed, niter=niter, init=init, max_points_per_centroid=points_per_centroid)
    dist = res.distances.astype(np.float32)
    rep = np.exp(-dist.astype(np.float64))
    out = pd.DataFrame({
        "cluster_id": res.labels.astype(np.int64),
        "cluster_dist": dist,
        "cluster_rep": rep,
        "cluster_hard": 1.0 - rep,
    })
    out.attrs["k"] = int(res.centroids.shape[0])
    return out




@lru_cache(maxsize=1)
def _float16_table() -> np.ndarray:
    """float32 value of each of the 65,536 float16 bit patterns (numpy's own cast, so exact, NaN bits included)."""
    return np.arange(1 << 16, dtype=np.uint16).view(np.float16).astype(np.float32)


def _fill_float32(dst: np.ndarray, src: np.ndarray, rows: np.ndarray | None) -> np.ndarray:
    """dst[i] = float32(src[rows[i]]) (rows default: all, in order), FILL_ROWS at a time; returns each row's finiteness.

    float16 goes through `_float16_table` (numpy's element-wise cast is about 5x slower at a million rows);
    the rows are gathered one chunk at a time, so no full-size copy of `src` is made. The chunks are pure
    copies and lookups into disjoint rows of `dst`, so FILL_THREADS threads share them (numpy drops the GIL).
    """
    finite = np.empty(len(dst), dtype=bool)
    table = _float16_table()

    def fill(s: int) -> None:
        part = src[s:s + FILL_ROWS] if rows is None else src[rows[s:s + FILL_ROWS]]
        out = dst[s:s + FILL_ROWS]
        out[...] = table[part.view(np.uint16)] if part.dtype == np.float16 else part
        finite[s:s + FILL_ROWS] = np.isfinite(out).all(axis=1)

    with ThreadPoolExecutor(max_workers=FILL_THREADS) as pool:
        list(pool.map(fill, range(0, len(dst), FILL_ROWS)))
    return finite


def clip_joint_features(image: np.ndarray, text: np.ndarray, has_image: np.ndarray | None = None,
                        has_text: np.ndarray | None = None, rows: np.ndarray | None = None) -> np.ndarray:
    """Joint CLIP feature L2([L2(img); L2(txt)]) per row, zero block for a missing modality (float32).

    `image` (n, d_img) and `text` (n, d_txt) are CLIP embeddings; `has_image` / `has_text` (n,) mark
    rows that really have that modality (default: all). Missing or non-finite embeddings become zeros.
    Built in one (n, d_img + d_txt) float32 buffer normalised in place (a million rows at 1024-d
    without a second copy): each non-zero block has norm 1 after its own L2, so the row norm is the
    square root of the number of non-zero blocks. `rows` (optional) picks and orders the rows of all four
    inputs (the same as passing `image[rows]`, ...), gathered chunk by chunk.
    """
    img = np.asarray(image)
    txt = np.asarray(text)
    if img.ndim != 2 or txt.ndim != 2 or len(img) != len(txt):
        raise ValueError(f"image and text must be 2-D with the same rows, got {img.shape} and {txt.shape}")
    n_in, di = img.shape
    hi = np.ones(n_in, bool) if has_image is None else np.asarray(has_image, dtype=bool).reshape(n_in)
    ht = np.ones(n_in, bool) if has_text is None else np.asarray(has_text, dtype=bool).reshape(n_in)
    if rows is not None:
        rows = np.asarray(rows, dtype=np.intp)
        hi, ht = hi[rows], ht[rows]
    n = len(hi)
    out = np.empty((n, di + txt.shape[1]), dtype=np.float32)
    blocks = (out[:, :di], out[:, di:])
    nonzero = np.zeros(n, dtype=np.float32)
    for block, src, has in zip(blocks, (img, txt), (hi, ht)):
        ok = has & _fill_float32(block, src, rows)
        block[~ok] = 0.0
        norm = np.sqrt(np.einsum("ij,ij->i", block, block))
        live = norm > 0
        block /= np.where(live, norm, 1.0)[:, None]
        nonzero += live
    out /= np.sqrt(np.maximum(nonzero, 1.0))[:, None]
    return out


def stable_bucket(token: str, buckets: int = HASH_BUCKETS) -> int:
    """Bucket of a token from blake2b (stable across processes, unlike Python's salted hash())."""
    digest = hashlib.blake2b(token.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") % buckets


def _count(texts: pd.Series, pattern: str) -> np.ndarray:
    """Matches of a regex per string (Arrow's kernel on Arrow strings; whole numbers, so thread order cannot matter)."""
    return texts.str.count(pattern).to_numpy(dtype=np.float64)


def hashed_bow(texts: pd.Series, buckets: int = HASH_BUCKETS) -> np.ndarray:
    """Hashed bag of lowercase word tokens per text, L2-normalised rows (float32, (n, buckets))."""
    s = pd.Series(texts).astype(object).where(pd.notna(texts), "").astype(str).str.lower()
    with ThreadPoolExecutor(max_workers=1) as pool:  # Arrow's count (no GIL held) beside Python's findall
        counting = pool.submit(_count, s, WORD_TOKEN)
        flat = WORD_TOKEN_RE.findall("\n".join(s.tolist()))  # one pass over all rows: "\n" ends every token
        lengths = counting.result().astype(np.int64)
    if len(flat) != lengths.sum():  # cannot happen for an ASCII token class; the per-row reading decides then
        toks = s.str.findall(WORD_TOKEN)
        lengths = toks.str.len().to_numpy(dtype=np.int64)
        flat = [t for row in toks for t in row]
    counts = np.zeros(len(s) * buckets, dtype=np.int64)
    if flat:
        codes, uniq = pd.factorize(np.asarray(flat, dtype=object))  # hashing, not sorting, the distinct tokens
        ubuckets = np.fromiter((stable_bucket(t, buckets) for t in uniq), dtype=np.int64, count=len(uniq))
        rows = np.repeat(np.arange(len(s), dtype=np.int64), lengths)
        counts = np.bincount(rows * buckets + ubuckets[codes], minlength=len(s) * buckets)
    return l2_normalize(counts.reshape(len(s), buckets).astype(np.float32))


def _align(desc: pd.DataFrame, qa: pd.DataFrame) -> pd.DataFrame:
    """Descriptor rows in the QA table's order (by qa_uid when both have it, else by position)."""
    if "qa_uid" in desc.columns and "qa_uid" in qa.columns:
        if desc["qa_uid"].duplicated().any():
            dup = desc.loc[desc["qa_uid"].duplicated(), "qa_uid"].iloc[0]
            raise ValueError(f"descriptor table has duplicate qa_uid, e.g. {dup!r}")
        return desc.set_index("qa_uid").reindex(pd.Index(qa["qa_uid"]))
    if len(desc) != len(qa):
        raise ValueError(f"descriptor ({len(desc)}) and QA ({len(qa)}) tables differ in length and lack qa_uid")
    return desc.reset_index(drop=True)


def _col(df: pd.DataFrame, name: str, default: float = np.nan) -> np.ndarray:
    """A numeric column as float64 (missing column -> `default`, non-numeric -> NaN)."""
    if name not in df.columns:
        return np.full(len(df), default, dtype=np.float64)
    return pd.to_numeric(df[name], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def standardized_features(desc: pd.DataFrame, qa: pd.DataFrame, buckets: int = HASH_BUCKETS) -> np.ndarray:
    """Deterministic coverage features (float32, rows in `qa` order), layout FEATURE_NAMES.

    1. descriptors amm, frame_diversity, vds, log(ppl) clipped to +-30, tnc, self_consistency:
       robust z over the pool, NaN -> 0, clipped to +-4;
    2. text/vision statistics: log1p(question words), log1p(answer words), n_frames/32, is_video,
       log1p(digits in the question), question-mark presence;
    3. `buckets`-bucket hashed bag of words of the question (blake2b), L2-normalised.
    """
    d = _align(desc, qa)
    ppl = _col(d, "ppl")
    with np.errstate(divide="ignore", invalid="ignore"):
        log_ppl = np.where(ppl > 0, np.log(np.where(ppl > 0, ppl, 1.0)), np.nan)
    log_ppl = np.clip(log_ppl, -LOG_PPL_CLIP, LOG_PPL_CLIP)
    raw = {"amm": _col(d, "amm"), "frame_diversity": _col(d, "frame_diversity"), "vds": _col(d, "vds"),
           "log_ppl": log_ppl, "tnc": _col(d, "tnc"), "self_consistency": _col(d, "self_consistency")}
    zs = [np.clip(np.nan_to_num(robust_z(raw[name]), nan=0.0, posinf=Z_CLIP, neginf=-Z_CLIP), -Z_CLIP, Z_CLIP)
          for name in DESCRIPTOR_FEATURES]

    n = len(qa)
    q = qa["question"].astype(object).where(qa["question"].notna(), "").astype(str) if "question" in qa \
        else pd.Series([""] * n)
    a = qa["answer"].astype(object).where(qa["answer"].notna(), "").astype(str) if "answer" in qa \
        else pd.Series([""] * n)
    n_frames = np.nan_to_num(_col(qa, "n_frames", 0.0), nan=0.0)
    if "media_kind" in qa.columns:
        is_video = qa["media_kind"].isin(["frames", "video_file"]).to_numpy(dtype=np.float64)
    elif "bucket" in qa.columns:
        is_video = (qa["bucket"] == "short_video").to_numpy(dtype=np.float64)
    else:
        is_video = (n_frames > 1).astype(np.float64)
    with ThreadPoolExecutor(max_workers=1) as pool:  # the counts beside the bag of words (whole numbers)
        counts = [pool.submit(_count, text, pattern) for text, pattern in ((q, WORD_TOKEN), (a, WORD_TOKEN),
                                                                           (q, r"[0-9]"))]
        bow = hashed_bow(q, buckets)
        q_words, a_words, q_digits = (c.result() for c in counts)
    stats = [
        np.log1p(q_words),
        np.log1p(a_words),
        n_frames / FRAMES_SCALE,
        is_video,
        np.log1p(q_digits),
        q.str.contains("?", regex=False).to_numpy(dtype=np.float64),
    ]
    dense = np.stack(zs + stats, axis=1).astype(np.float32)
    return np.concatenate([dense, bow], axis=1)


def feature_names(buckets: int = HASH_BUCKETS) -> list[str]:
    """Column names of `standardized_features` (descriptor z's, text stats, bow_00..)."""
    return [f"z_{c}" for c in DESCRIPTOR_FEATURES] + list(TEXT_FEATURES) + [f"bow_{i:02d}" for i in range(buckets)]


FEATURE_NAMES = feature_names()
