"""The GDO shared score rho(x), both levels, with the paper's ablation switches (GDO_METHOD.md section 4).

Level 1 (`level1_quality`) turns the six descriptors of each candidate into one `quality` number with
robust z-scores (center = median, scale = IQR/1.349 floored at 1e-6). The descriptor merge step calls
it; it only needs a DataFrame with the columns in `LEVEL1_COLUMNS`.

Level 2 (`level2_score`) is the ranking score the goal presets select by: text terms (naturalness,
difficulty, alignment with the pool's stratum distribution, temporal bonus, source prior) combine into
`base`, and the descriptors enter through `legacy_vds3` and `legacy_quality` (mean/std z-scores clipped
to +-4, then clip(., c)/c with c = 4). Every term is returned as its own column so reports and tests can
look at each one.

Missing values (documented choices, counted, never silent):
* Level 1: a NaN descriptor contributes its term's neutral value -- the value at the pool median for the
  z-score terms (z = 0: sigmoid(vds3) uses 0 for that z, ppl_mid / amm_mid = 1), 0.5 for TNC (the TNC
  descriptor's own "undecided" value), the column median for cluster_rep / cluster_hard (0.5 when the
  whole column is missing), and the spec's fallback sigmoid(0.6*z(VDS) - 0.2*|z(PPL)|) for SC. The counts
  are in ``quality.attrs["neutral_filled"]`` and logged as a warning.
* Level 2: a z-score of a missing value is 0; legacy_vds3 uses the spec's fallbacks in order
  (-z(loss_video) + z(loss_blind) + z(frame_div); z(VDS) + 0.5*z(frame_div); z(VDS); 0). A video row has
  "no descriptors" when the descriptor table has no row for it, or its row has none of loss_video,
  loss_blind, vds, frame_diversity, quality; such a video scores 0.35*tanh(base/3) - 0.15.
* Infinite descriptor values, duplicated qa_uid rows or a non-finite final score are errors that name the
  column (and a qa_uid).

Ties are broken by a seeded uniform number per row of the QA table (numpy PCG64 seeded with
[seed, TIE_STREAM], drawn in the QA table's row order), or by numbers the caller passes (the subsets'
release mode draws the release's random.Random(seed) stream).

Layering: this module imports only gdo_utils.stats (no descriptors, subsets or toy world module); the
stratum fields come in as an argument.
"""
from __future__ import annotations

import logging
from typing import Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .stats import robust_z, sigmoid, standard_z as _standard_z  # noqa: F401 - shared with the descriptors

log = logging.getLogger(__name__)

Z_CLIP = 4.0
CAP = 4.0
P_FLOOR = 1e-9
TIE_STREAM = 0x71E5

LEVEL1_COLUMNS = ("vds", "frame_diversity", "ppl", "amm", "tnc", "self_consistency", "cluster_rep", "cluster_hard")
LEVEL1_WEIGHTS = {"vds3": 0.28, "sc": 0.18, "ppl_mid": 0.14, "amm_mid": 0.12, "tnc": 0.12,
                  "cluster_rep": 0.10, "cluster_hard": 0.06}
LEVEL2_DESCRIPTOR_COLUMNS = ("loss_video", "loss_blind", "vds", "frame_diversity")
ABLATIONS = ("no_vds", "no_ppl", "no_sc", "no_vds_budget")
TEMPORAL_BONUS = {"Temporal": 1.0, "Mixed": 0.2, "Static": -0.5}


class ScoreInputError(ValueError):
    """The descriptor or QA table cannot be scored; the message names the column (and a qa_uid)."""


# ----------------------------------------------------------------------------- small numeric helpers
def standard_z(x: np.ndarray | pd.Series, clip: float = Z_CLIP, *, ref: np.ndarray | None = None,
               std: str = "population") -> np.ndarray:
    """Mean/std z-score clipped to +-clip (gdo_utils.stats.standard_z): statistics over `ref` (default x),
    population std (kit; a constant column gives 0) or sample std (release; sd 1.0 when undefined)."""
    return _standard_z(np.asarray(x, dtype=float), clip, ref=ref, std=std)


def _nz(z: np.ndarray) -> np.ndarray:
    """NaN -> 0 (the neutral z-score)."""
    return np.where(np.isnan(z), 0.0, z)


def _numeric(df: pd.DataFrame, col: str, where: str) -> np.ndarray:
    """Column as float64 (null -> NaN); errors name the column; +-inf is refused with a qa_uid."""
    if col not in df.columns:
        raise ScoreInputError(f"{where}: missing column {col!r}")
    try:
        x = pd.to_numeric(df[col], errors="raise").to_numpy(dtype=float, na_value=np.nan)
    except (ValueError, TypeError) as exc:
        raise ScoreInputError(f"{where}: column {col!r} is not numeric ({exc})") from None
    bad = np.isinf(x)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        uid = df["qa_uid"].iloc[i] if "qa_uid" in df.columns else i
        raise ScoreInputError(f"{where}: column {col!r} has {int(bad.sum())} infinite value(s), e.g. qa_uid {uid!r}")
    return x


# ----------------------------------------------------------------------------- level 1
def level1_quality(df: pd.DataFrame) -> pd.Series:
    """Level-1 `quality` per row of a descriptor table (see the module docstring for NaN handling).

    quality = 0.28*sigmoid(z(VDS) + z(frame_div)) + 0.18*SC + 0.14*exp(-|z(PPL)|) + 0.12*exp(-|z(AMM)|)
              + 0.12*TNC + 0.10*cluster_rep + 0.06*cluster_hard, robust z over the rows of `df`.
    """
    where = "level1_quality"
    cols = {c: _numeric(df, c, where) for c in LEVEL1_COLUMNS}
    filled = {c: int(np.isnan(v).sum()) for c, v in cols.items()}
    z_vds, z_fd = _nz(robust_z(cols["vds"])), _nz(robust_z(cols["frame_diversity"]))
    z_ppl, z_amm = _nz(robust_z(cols["ppl"])), _nz(robust_z(cols["amm"]))
    vds3 = z_vds + z_fd
    sc = cols["self_consistency"]
    sc = np.where(np.isnan(sc), sigmoid(0.6 * z_vds - 0.2 * np.abs(z_ppl)), sc)
    tnc = np.where(np.isnan(cols["tnc"]), 0.5, cols["tnc"])
    rep, hard = cols["cluster_rep"], cols["cluster_hard"]
    rep = np.where(np.isnan(rep), _median_or(rep, 0.5), rep)
    hard = np.where(np.isnan(hard), _median_or(hard, 0.5), hard)
    w = LEVEL1_WEIGHTS
    q = (w["vds3"] * sigmoid(vds3) + w["sc"] * sc + w["ppl_mid"] * np.exp(-np.abs(z_ppl))
         + w["amm_mid"] * np.exp(-np.abs(z_amm)) + w["tnc"] * tnc + w["cluster_rep"] * rep
         + w["cluster_hard"] * hard)
    out = pd.Series(q, index=df.index, name="quality", dtype=float)
    out.attrs["neutral_filled"] = filled
    if any(filled.values()):
        log.warning("level1_quality: NaN descriptors took their neutral value: %s",
                    {k: v for k, v in filled.items() if v})
    return out


def _median_or(x: np.ndarray, default: float) -> float:
    """Median of the finite values, or `default` when there are none."""
    finite = x[np.isfinite(x)]
    return float(np.median(finite)) if len(finite) else default


# ----------------------------------------------------------------------------- level 2: text terms
def naturalness(q_words: np.ndarray, a_words: np.ndarray, a_distinct: np.ndarray) -> np.ndarray:
    """-|ln qn - ln 14| - 1.25*|ln an - ln 16| - 1.2*max(0, 0.55 - distinct(a)/an), counts floored at 1."""
    qn = np.maximum(np.asarray(q_words, dtype=float), 1.0)
    an = np.maximum(np.asarray(a_words, dtype=float), 1.0)
    return (-np.abs(np.log(qn) - np.log(14.0)) - 1.25 * np.abs(np.log(an) - np.log(16.0))
            - 1.2 * np.maximum(0.0, 0.55 - np.asarray(a_distinct, dtype=float) / an))


def difficulty(q_words: np.ndarray, a_words: np.ndarray) -> np.ndarray:
    """exp(-d^2 / (2*0.85^2)), d = |ln max(1, qn + 0.5*an) - ln 22|, counts floored at 1."""
    qn = np.maximum(np.asarray(q_words, dtype=float), 1.0)
    an = np.maximum(np.asarray(a_words, dtype=float), 1.0)
    d = np.abs(np.log(np.maximum(1.0, qn + 0.5 * an)) - np.log(22.0))
    return np.exp(-d ** 2 / (2 * 0.85 ** 2))


def log_pool_share(values: pd.Series | pd.Categorical | np.ndarray) -> np.ndarray:
    """ln p_pool(value) per row, p = count(value)/N over the given rows, floored at 1e-9."""
    codes, _ = pd.factorize(values if not isinstance(values, pd.Series) else values.to_numpy())
    counts = np.bincount(codes[codes >= 0], minlength=int(codes.max()) + 1 if len(codes) else 0)
    n = max(len(codes), 1)
    p = np.where(codes >= 0, counts[np.maximum(codes, 0)] / n if len(counts) else 0.0, 0.0)
    return np.log(np.maximum(p, P_FLOOR))


def alignment(fields: pd.DataFrame, names: Iterable[str]) -> np.ndarray:
    """Mean over the named stratum fields of ln p_pool(value) (floor 1e-9)."""
    names = list(names)
    total = np.zeros(len(fields))
    for name in names:
        col = fields[name]
        if isinstance(col.dtype, pd.CategoricalDtype):
            codes = col.cat.codes.to_numpy().astype(np.int64)
            counts = np.bincount(codes[codes >= 0], minlength=len(col.cat.categories))
            p = np.where(codes >= 0, counts[np.maximum(codes, 0)] / max(len(codes), 1), 0.0)
            total += np.log(np.maximum(p, P_FLOOR))
        else:
            total += log_pool_share(col)
    return total / max(len(names), 1)


def temporal_bonus(temporal: pd.Series | np.ndarray) -> np.ndarray:
    """1.0 Temporal, 0.2 Mixed, -0.5 otherwise."""
    t = np.asarray(temporal, dtype=object)
    return np.where(t == "Temporal", TEMPORAL_BONUS["Temporal"], np.where(t == "Mixed", TEMPORAL_BONUS["Mixed"], -0.5))


def source_prior(sources: pd.Series | np.ndarray) -> np.ndarray:
    """ln((N+1) / (count(data_source)+1)) with N the number of rows."""
    codes, _ = pd.factorize(np.asarray(sources, dtype=object) if not isinstance(sources, pd.Series) else sources)
    counts = np.bincount(codes[codes >= 0]) if len(codes) else np.zeros(0, np.int64)
    c = np.where(codes >= 0, counts[np.maximum(codes, 0)] if len(counts) else 0, 0)
    return np.log((len(codes) + 1.0) / (c + 1.0))


# ----------------------------------------------------------------------------- level 2: descriptor terms
def legacy_vds3(loss_video: np.ndarray, loss_blind: np.ndarray, vds: np.ndarray, frame_div: np.ndarray, *,
                refs: dict[str, np.ndarray] | None = None, std: str = "population") -> np.ndarray:
    """-z(loss_video) + z(loss_blind) + z(frame_div), else z(VDS) + 0.5*z(frame_div), else z(VDS), else 0.

    `refs` (keys loss_video, loss_blind, vds, frame_diversity) gives the rows the z statistics are taken
    over (the release: every metrics row); default: the given rows themselves.
    """
    refs = refs or {}
    z_lv, z_lb, z_fd, z_vds = (standard_z(x, ref=refs.get(k), std=std) for x, k in
                               ((loss_video, "loss_video"), (loss_blind, "loss_blind"),
                                (frame_div, "frame_diversity"), (vds, "vds")))
    ok_loss = np.isfinite(z_lv) & np.isfinite(z_lb) & np.isfinite(z_fd)
    ok_vds_fd = np.isfinite(z_vds) & np.isfinite(z_fd)
    ok_vds = np.isfinite(z_vds)
    return np.select([ok_loss, ok_vds_fd, ok_vds],
                     [-_nz(z_lv) + _nz(z_lb) + _nz(z_fd), _nz(z_vds) + 0.5 * _nz(z_fd), _nz(z_vds)], 0.0)


def descriptor_vds3(descriptors: pd.DataFrame | None, std: str = "population") -> np.ndarray:
    """legacy_vds3 of every row of a descriptor table, statistics over the table (the release's VDS-positive
    share counts these rows: every row of metrics.jsonl, in the pool or not)."""
    if descriptors is None or len(descriptors) == 0:
        return np.zeros(0)
    cols = {c: _numeric(descriptors, c, "descriptors") for c in LEVEL2_DESCRIPTOR_COLUMNS}
    return legacy_vds3(cols["loss_video"], cols["loss_blind"], cols["vds"], cols["frame_diversity"], std=std)


def capped(x: np.ndarray, c: float = CAP) -> np.ndarray:
    """clip(x, -c, c) / c."""
    return np.clip(x, -c, c) / c


def tie_numbers(n: int, seed: int) -> np.ndarray:
    """Seeded uniform tie-breakers in [0, 1), one per QA-table row (row order)."""
    return np.random.default_rng([int(seed), TIE_STREAM]).random(n)


def check_ablations(ablations: Iterable[str]) -> frozenset[str]:
    """The ablation switches as a set; unknown names are an error that lists the valid ones."""
    abl = frozenset(ablations or ())
    unknown = sorted(abl - set(ABLATIONS))
    if unknown:
        raise ValueError(f"unknown ablation(s) {unknown}; valid: {list(ABLATIONS)}")
    return abl


def descriptor_positions(qa_uid: pa.Array, d_uid: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(has a descriptor row, its position) for each QA-table row; duplicated descriptor ids are an error.

    Descriptor rows already in the QA table's order take a fast path (no hash join).
    """
    if len(qa_uid) == len(d_uid) and (len(d_uid) == 0 or pc.all(pc.equal(qa_uid, d_uid)).as_py()):
        return np.ones(len(qa_uid), dtype=bool), np.arange(len(qa_uid), dtype=np.int64)
    if len(pc.unique(d_uid)) != len(d_uid):
        dup = pd.Series(d_uid.to_pylist())
        dup = dup[dup.duplicated()]
        raise ScoreInputError(f"descriptors: column 'qa_uid' has {len(dup)} duplicated value(s), e.g. {dup.iloc[0]!r}")
    pos = pc.index_in(qa_uid, value_set=d_uid)
    has = pos.is_valid().to_numpy(zero_copy_only=False)
    idx = pc.fill_null(pos, 0).to_numpy(zero_copy_only=False).astype(np.int64)
    return has, idx


def align_descriptors(qa_uid: pd.Series, descriptors: pd.DataFrame | None, columns: Iterable[str]) -> tuple[pd.DataFrame, np.ndarray, dict]:
    """Descriptor columns in the QA table's row order (NaN where absent), the has-row mask and notes."""
    n = len(qa_uid)
    cols = list(columns)
    if descriptors is None or len(descriptors) == 0:
        return pd.DataFrame({c: np.full(n, np.nan) for c in cols}), np.zeros(n, bool), {"descriptor_rows": 0}
    if "qa_uid" not in descriptors.columns:
        raise ScoreInputError("descriptors: missing column 'qa_uid'")
    d_uid = pa.array(descriptors["qa_uid"], type=pa.large_string())
    if d_uid.null_count:
        raise ScoreInputError(f"descriptors: column 'qa_uid' has {d_uid.null_count} null value(s)")
    has, idx = descriptor_positions(pa.array(qa_uid, type=pa.large_string()), d_uid)
    out = {}
    for c in cols:
        v = _numeric(descriptors, c, "descriptors")
        out[c] = np.where(has, v[idx] if len(v) else np.nan, np.nan)
    notes = {"descriptor_rows": int(len(descriptors)), "descriptor_rows_matched": int(has.sum()),
             "descriptor_rows_not_in_pool": int(len(descriptors) - has.sum())}
    if notes["descriptor_rows_not_in_pool"]:
        log.warning("descriptors: %d row(s) have a qa_uid that is not in the QA table (ignored)",
                    notes["descriptor_rows_not_in_pool"])
    return pd.DataFrame(out), has, notes


def _with_quality(descriptors: pd.DataFrame) -> pd.DataFrame:
    """The descriptor table with its `quality` column (level 1 computed when absent; a clear error when it
    cannot be: the message names `quality` and the level-1 columns that are missing)."""
    if "quality" in descriptors.columns:
        return descriptors
    missing = [c for c in LEVEL1_COLUMNS if c not in descriptors.columns]
    if missing:
        raise ScoreInputError(f"descriptors: missing column 'quality' (the level-1 quality; imported metrics call "
                              f"it quality_score), and it cannot be computed: level-1 column(s) {missing} missing too")
    return descriptors.assign(quality=level1_quality(descriptors).to_numpy())


def level2_score(table: pd.DataFrame, descriptors: pd.DataFrame | None, ablations: Iterable[str] = (),
                 seed: int = 42, *, strata, z_std: str = "population", stats_over: str = "pool",
                 presence: str = "values", tie: np.ndarray | None = None) -> pd.DataFrame:
    """The level-2 ranking score and each of its terms, one row per QA-table row (same order).

    `descriptors` has one row per qa_uid (columns loss_video, loss_blind, vds, frame_diversity and
    quality; quality is computed with `level1_quality` when the column is absent). `ablations` switch
    off terms: no_vds drops the 0.95*VDS term, no_ppl zeroes naturalness, no_sc drops the
    legacy_quality terms; no_vds_budget only affects the budget (score unchanged). `strata` is the
    stratum computation of `table` (gdo_utils.subsets.strata.Strata: fields, word counts, is_video,
    alignment_fields), passed in so this module needs nothing from the subsets package.

    Release options: z_std "sample" | "population"; stats_over "metrics" (z statistics over every
    descriptor row) | "pool" (over the rows joined to the pool); presence "row" (a video with a descriptor
    row has descriptors) | "values" (it needs one finite value); `tie` replaces the PCG64 tie numbers.
    """
    abl = check_ablations(ablations)
    if "qa_uid" not in table.columns:
        raise ScoreInputError("QA table: missing column 'qa_uid'")
    if stats_over not in ("metrics", "pool") or presence not in ("row", "values"):
        raise ValueError(f"stats_over must be metrics|pool and presence row|values, got {stats_over!r}, {presence!r}")
    n = len(table)
    desc_cols = list(LEVEL2_DESCRIPTOR_COLUMNS) + ["quality"]
    if descriptors is not None and len(descriptors):
        descriptors = _with_quality(descriptors)
    d, has_row, notes = align_descriptors(table["qa_uid"], descriptors, desc_cols)
    refs = ({c: _numeric(descriptors, c, "descriptors") for c in desc_cols}
            if stats_over == "metrics" and descriptors is not None and len(descriptors) else {})
    is_video = strata.is_video
    fields = strata.fields

    nat = naturalness(strata.q_words, strata.a_words, strata.a_distinct)
    if "no_ppl" in abl:
        nat = np.zeros(n)
    diff = difficulty(strata.q_words, strata.a_words)
    align = alignment(fields, strata.alignment_fields)
    tb = temporal_bonus(fields["temporal"].astype(str).to_numpy())
    if "source" not in table.columns:
        raise ScoreInputError("QA table: missing column 'source'")
    sp = source_prior(table["source"])
    base = np.where(is_video,
                    nat + 0.85 * diff + 0.9 * align + 0.55 * tb + 0.15 * sp,
                    1.1 * nat + 0.85 * diff + 0.9 * align + 0.15 * sp)

    lv3 = legacy_vds3(d["loss_video"].to_numpy(), d["loss_blind"].to_numpy(), d["vds"].to_numpy(),
                      d["frame_diversity"].to_numpy(), refs=refs, std=z_std)
    lq = _nz(standard_z(d["quality"].to_numpy(), ref=refs.get("quality"), std=z_std))
    has_values = has_row & np.isfinite(d[desc_cols].to_numpy()).any(axis=1)
    has_desc = has_row if presence == "row" else has_values

    t_base = np.where(is_video, 0.35, 0.90) * np.tanh(base / 3.0)
    t_vds = np.where(is_video, 0.95 * capped(lv3), 0.0)
    t_q = np.where(is_video, 0.35, 0.15) * capped(lq)
    if "no_vds" in abl:
        t_vds = np.zeros(n)
    if "no_sc" in abl:
        t_q = np.zeros(n)
    no_desc_video = is_video & ~has_desc
    t_vds = np.where(no_desc_video, 0.0, t_vds)
    t_q = np.where(no_desc_video, 0.0, t_q)
    t_missing = np.where(no_desc_video, -0.15, 0.0)
    score = t_base + t_vds + t_q + t_missing

    out = pd.DataFrame({
        "qa_uid": table["qa_uid"].array, "is_video": is_video, "has_descriptors": has_desc,
        "naturalness": nat, "difficulty": diff, "alignment": align, "temporal_bonus": tb, "source_prior": sp,
        "base": base, "legacy_vds3": lv3, "legacy_quality": lq, "term_base": t_base, "term_vds": t_vds,
        "term_quality": t_q, "term_missing_descriptors": t_missing, "score": score,
        "tie": tie_numbers(n, seed) if tie is None else np.asarray(tie, dtype=float),
    }, index=table.index)
    for col in ("naturalness", "difficulty", "alignment", "base", "legacy_vds3", "legacy_quality", "score"):
        bad = ~np.isfinite(out[col].to_numpy())
        if bad.any():
            raise ScoreInputError(f"level2_score: term {col!r} is not finite for {int(bad.sum())} row(s), "
                                  f"e.g. qa_uid {out['qa_uid'].iloc[int(np.flatnonzero(bad)[0])]!r}")
    notes.update({"ablations": sorted(abl), "videos_without_descriptors": int(no_desc_video.sum()),
                  "rows_with_descriptors": int(has_desc.sum()), "z_std": z_std, "z_stats_over": stats_over,
                  "descriptor_presence": presence})
    out.attrs["notes"] = notes
    if notes["videos_without_descriptors"]:
        log.warning("level2_score: %d video candidate(s) have no descriptors (score 0.35*tanh(base/3) - 0.15)",
                    notes["videos_without_descriptors"])
    return out
