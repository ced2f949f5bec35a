"""Inputs of the subset builder, loaded once per run: pool columns, descriptors, strata, integer codes.

Only the columns the selection needs are read from the pool's Parquet (media lists, the largest column,
are read later for the selected rows only). Strings stay Arrow-backed; the text dedup key, the video
and the source group become integer codes so the greedy stages work on plain integer lists. The texts
(question, answer, question_raw) are dropped once the codes and the strata have read them: the written
rows' texts are read again from qa.parquet with their media (`files.RowSource`), so the selection and
the writes never hold the pool's texts (about 0.6 GB at 3M pairs).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..cache import code_version, upstream_digest
from ..config import Params
from ..io import MANIFEST_NAME, read_json, sha256_file
from ..pool import pool_dir
from ..score import check_ablations, descriptor_positions, descriptor_vds3, level2_score
from .release import ReleaseStream, release_stream
from .strata import Strata, compute_strata
from .text import as_arrow

log = logging.getLogger(__name__)

BASE_COLUMNS = ["qa_uid", "video_uid", "source", "source_group", "bucket", "n_frames", "question", "answer"]
TEXT_COLUMNS = ("question", "answer", "question_raw")   # read for the codes and strata only (load_context)
DESCRIPTOR_FILE = "descriptors.parquet"
RESERVOIR_STREAM = 0x0A1F
SCORE_ABLATIONS = ("no_vds", "no_ppl", "no_sc")


class SubsetInputError(ValueError):
    """The pool or the descriptors cannot be used; the message names the file and the column."""


def pool_file(params: Params) -> Path:
    """The GDO pool's qa.parquet."""
    return pool_dir(params) / "qa.parquet"


def descriptors_file(params: Params) -> Path:
    """The descriptor stage's descriptors.parquet."""
    return params.stage_dir("descriptors") / DESCRIPTOR_FILE


def _stage_hash(directory: Path, data_file: Path) -> str | None:
    """The params hash of a stage's manifest, else the sha256 of its data file, else None."""
    mf = directory / MANIFEST_NAME
    if mf.is_file():
        try:
            h = read_json(mf).get("params_hash")
            if h:
                return f"manifest:{h}"
        except (ValueError, OSError):
            pass
    return f"sha256:{sha256_file(data_file)}" if data_file.is_file() else None


CODE_MODULES = ("gdo_utils.subsets", "gdo_utils.score", "gdo_utils.apportion", "gdo_utils.words")


def input_hashes(params: Params) -> dict:
    """What the subsets depend on: the pool and descriptor stages (their hashes and the outputs their
    manifests recorded) and the subset builder's own code (gdo_utils.cache)."""
    pf, df = pool_file(params), descriptors_file(params)
    return {"pool": _stage_hash(pf.parent, pf), "descriptors": _stage_hash(df.parent, df),
            "upstream": upstream_digest([pf.parent, df.parent]), "code": code_version(CODE_MODULES)}


def pool_columns(params: Params) -> list[str]:
    """The pool columns selection needs (media and raw text are read later, for the selected rows only)."""
    s = params.subsets
    extra = (["question_raw"] if s.mcq_detection == "before_collapse" else []) + \
        (["n_frames_total"] if s.duration_frames == "n_frames_total" else [])
    return BASE_COLUMNS + extra


def read_pool_columns(path: Path, columns: list[str] | None = None) -> pd.DataFrame:
    """Some columns of the pool's qa.parquet (default BASE_COLUMNS), with clear errors for missing ones."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run the pool stage first (gdo-repro pool --params ...)")
    columns = columns or BASE_COLUMNS
    names = pq.read_schema(path).names
    missing = [c for c in columns if c not in names]
    if missing:
        raise SubsetInputError(f"{path}: missing column(s) {missing}")
    # one large_string chunk per string column: the pandas columns stay Arrow-backed, so every later
    # as_arrow() of them is free instead of a copy of the whole column. Column by column, each read
    # column dropped as soon as its copy is made, so at most one column exists twice (not the table).
    arrow = pq.read_table(path, columns=columns, use_threads=False)  # Arrow's reader threads cost CPU, not time saved here
    cols = {}
    for name in columns:
        col = arrow.column(name)
        arrow = arrow.drop_columns([name])
        cols[name] = (col.cast(pa.large_string()) if col.type == pa.string() else col).combine_chunks()
        del col
    table = pa.table(cols).to_pandas()
    del cols
    for col in ("question", "answer", "video_uid", "bucket", "source_group", "source"):
        nulls = int(table[col].isna().sum())
        if nulls:
            raise SubsetInputError(f"{path}: column {col!r} has {nulls} null value(s)")
    return table


def check_unique_ids(table: pd.DataFrame, path: Path) -> None:
    """The pool's qa_uids must be unique (the take condition "qa_uid is new" relies on it)."""
    uid = as_arrow(table["qa_uid"])
    if len(pc.unique(uid)) != len(uid):
        dup = table["qa_uid"][table["qa_uid"].duplicated()].iloc[0]
        raise SubsetInputError(f"{path}: column 'qa_uid' has duplicated values, e.g. {dup!r}")


def _codes(table: pd.DataFrame, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The uniqueness check and the dedup / video integer codes (run beside the strata)."""
    check_unique_ids(table, path)
    return text_codes(table["question"], table["answer"]), dense_codes(table["video_uid"])


def check_inputs_unchanged(ctx: "PoolContext") -> None:
    """An error when the pool or descriptor stage rewrote its outputs after `ctx` was loaded: rows read back from
    qa.parquet (texts, media) must be those the context's codes, strata and hashes were computed from."""
    was = ctx.hashes.get("upstream")
    if was is not None and was != upstream_digest([pool_file(ctx.params).parent, descriptors_file(ctx.params).parent]):
        raise SubsetInputError(f"{pool_file(ctx.params)}: the pool or descriptor stage rewrote its outputs after this "
                               f"context was loaded; load it again (load_context)")


def read_descriptors(path: Path, allow_missing: bool = False) -> pd.DataFrame | None:
    """descriptors.parquet; when absent an error (or None with a warning if `allow_missing`)."""
    if not path.is_file():
        if not allow_missing:
            raise SubsetInputError(
                f"{path} not found: the run has no descriptors. Run the descriptor stage (gdo-repro descriptors) "
                f"or import the release's metrics (gdo-repro import-metrics metrics.jsonl), or set "
                f"subsets.allow_no_descriptors=true to score every video with the no-metrics penalty")
        log.warning("%s not found: every candidate is scored without descriptors (allow_no_descriptors)", path)
        return None
    return pq.read_table(path, use_threads=False).to_pandas()


def dense_codes(values: pd.Series) -> np.ndarray:
    """Integer code per distinct value (order of first appearance), via Arrow hashing."""
    enc = pc.dictionary_encode(as_arrow(values))
    return enc.indices.to_numpy(zero_copy_only=False).astype(np.int64)


def text_codes(question: pd.Series, answer: pd.Series) -> np.ndarray:
    """One code per distinct dedup key question + "|||" + answer (the release's text key), dense, in order of
    first appearance.

    Keyed by the pair of the two texts' codes, except rows with a "|" in either text: two different pairs
    give the same joined key only when the longer question runs into the other's separator, so both rows hold
    a "|" ("a|||b" + "c" and "a" + "b|||c"); those rows alone are keyed by the joined string."""
    q = dense_codes(question)
    a = dense_codes(answer)
    key = q * (int(a.max()) + 1 if len(a) else 1) + a
    qa, aa = as_arrow(question), as_arrow(answer)
    bar = pc.or_(pc.match_substring(qa, "|"), pc.match_substring(aa, "|")).to_numpy(zero_copy_only=False)
    if bar.any():
        rows = pa.array(np.flatnonzero(bar))
        joined = pc.binary_join_element_wise(qa.take(rows), aa.take(rows), pa.scalar("|||", pa.large_string()))
        key[bar] = int(key.max()) + 1 + dense_codes(joined)
    codes, _ = pd.factorize(key)
    return codes.astype(np.int64)


@dataclass
class PoolContext:
    """Everything the selection reads, computed once and shared by every profile of a run."""

    params: Params
    table: pd.DataFrame
    descriptors: pd.DataFrame | None
    strata: Strata
    text_code: np.ndarray
    video_code: np.ndarray
    group_code: np.ndarray
    hashes: dict
    _scores: dict = field(default_factory=dict)
    uniform_cache: dict = field(default_factory=dict)
    _reservoir: np.ndarray | None = None
    _streams: dict = field(default_factory=dict)

    @property
    def n(self) -> int:
        """Pool size."""
        return len(self.table)

    @property
    def is_video(self) -> np.ndarray:
        """Video-bucket mask per pool row."""
        return self.strata.is_video

    def scores(self, ablations: frozenset[str] = frozenset()) -> pd.DataFrame:
        """Level-2 scores under the score-changing ablations (cached; no_vds_budget does not change them)."""
        key = frozenset(a for a in check_ablations(ablations) if a in SCORE_ABLATIONS)
        if key not in self._scores:
            s = self.params.subsets
            self._scores[key] = level2_score(self.table, self.descriptors, sorted(key), self.params.seed,
                                             strata=self.strata, z_std=s.option("z_std"),
                                             stats_over=s.option("metric_stats_over"),
                                             presence=s.option("descriptor_presence"))
        return self._scores[key]

    def positive_source(self) -> np.ndarray:
        """legacy_vds3 of the rows the budget's VDS-positive share counts (pool rows, or every descriptor row)."""
        s = self.params.subsets
        if s.option("metric_stats_over") == "metrics":
            return descriptor_vds3(self.descriptors, s.option("z_std"))
        return self.scores()["legacy_vds3"].to_numpy() if self.descriptors is not None else np.zeros(0)

    def cap_video_code(self) -> np.ndarray:
        """Video codes the per-video cap counts: every row (kit), or video rows only (release: each
        non-video row gets a code of its own, so the cap never binds on it)."""
        if self.params.subsets.option("per_video_cap_on") == "all":
            return self.video_code
        base = int(self.video_code.max()) + 1 if self.n else 0
        return np.where(self.is_video, self.video_code, base + np.arange(self.n, dtype=np.int64))

    def reservoir(self) -> np.ndarray:
        """The uniform reservoir: a seeded permutation of the pool rows (also the uniform baseline's order)."""
        if self._reservoir is None:
            self._reservoir = np.random.default_rng([int(self.params.seed), RESERVOIR_STREAM]).permutation(self.n)
        return self._reservoir

    def release_stream(self, uniform_count: int) -> ReleaseStream:
        """The release's random stream for a profile whose uniform baseline has `uniform_count` rows (cached)."""
        if uniform_count not in self._streams:
            self._streams[uniform_count] = release_stream(self.n, int(self.params.seed), uniform_count)
        return self._streams[uniform_count]


def load_context(params: Params, hashes: dict | None = None) -> PoolContext:
    """Read the pool and descriptors and compute strata and codes (the expensive, shared part); `hashes`:
    the input_hashes the caller already computed in this process (else computed here). The context's
    table holds no texts (TEXT_COLUMNS): they are read again for the rows a build writes."""
    table = read_pool_columns(pool_file(params), pool_columns(params))
    # the integer codes first, on this thread: their hash tables and dictionaries are gone before the
    # descriptors are read and the strata computed (not beside them on a thread, nor after them): at 3M rows
    # the load's peak is ~500 MB lower, at 1M ~150 MB, for ~0.5 s more wall time than the thread
    codes = _codes(table, pool_file(params))
    ctx = _context_with_strata(params, table, codes, hashes)
    log.info("subsets: pool of %d QA (%d video), %d strata, %d distinct texts", ctx.n, int(ctx.is_video.sum()),
             ctx.strata.n_strata, int(ctx.text_code.max()) + 1 if ctx.n else 0)
    return ctx


def context_from_tables(params: Params, table: pd.DataFrame, descriptors: pd.DataFrame | None) -> PoolContext:
    """A pool context from in-memory tables (hand-built pools in tests and notebooks; no files read)."""
    s = params.subsets
    strata = pool_strata(table, descriptors, s.temporal_category, s.mcq_detection, s.duration_frames)
    text_code, video_code = _codes(table, Path("<table>"))
    return PoolContext(params=params, table=table, descriptors=descriptors, strata=strata, text_code=text_code,
                       video_code=video_code,
                       group_code=strata.fields["source_group"].cat.codes.to_numpy().astype(np.int64),
                       hashes={"pool": None, "descriptors": None})


def _context_with_strata(params: Params, table: pd.DataFrame, codes: tuple[np.ndarray, np.ndarray],
                         hashes: dict | None = None) -> PoolContext:
    """The context of a pool table and its (text, video) codes: computes the strata, drops the texts from
    `table` (in place: the caller's frame loses them too), then reads the descriptors, so the texts and the
    descriptors are never held together (except under temporal_category=tnc, whose strata read them)."""
    s = params.subsets
    tnc = s.temporal_category == "tnc"
    desc = read_descriptors(descriptors_file(params), s.allow_no_descriptors) if tnc else None
    strata = pool_strata(table, desc, s.temporal_category, s.mcq_detection, s.duration_frames,
                         where=str(descriptors_file(params)))
    for col in TEXT_COLUMNS:
        if col in table.columns:
            del table[col]
    if not tnc:
        desc = read_descriptors(descriptors_file(params), s.allow_no_descriptors)
    text_code, video_code = codes
    return PoolContext(params=params, table=table, descriptors=desc, strata=strata, text_code=text_code,
                       video_code=video_code,
                       group_code=strata.fields["source_group"].cat.codes.to_numpy().astype(np.int64),
                       hashes=hashes or input_hashes(params))


def pool_strata(table: pd.DataFrame, descriptors: pd.DataFrame | None, temporal_category: str = "regex",
                mcq_detection: str = "after_collapse", duration_frames: str = "n_frames", where: str = "descriptors") -> Strata:
    """The strata of a pool table (TNC joined from the descriptors when temporal_category is tnc)."""
    tnc = None
    if temporal_category == "tnc":
        if descriptors is None or "tnc" not in descriptors.columns:
            raise SubsetInputError(f"{where}: temporal_category=tnc needs the 'tnc' column")
        has, idx = descriptor_positions(as_arrow(table["qa_uid"]), as_arrow(descriptors["qa_uid"]))
        tnc = np.where(has, pd.to_numeric(descriptors["tnc"]).to_numpy(dtype=float, na_value=np.nan)[idx], np.nan)
    return compute_strata(table, temporal_category=temporal_category, mcq_detection=mcq_detection, tnc=tnc,
                          duration_frames=duration_frames)


def pool_scores(table: pd.DataFrame, descriptors: pd.DataFrame | None, ablations=(), seed: int = 42, *,
                temporal_category: str = "regex", mcq_detection: str = "after_collapse",
                duration_frames: str = "n_frames", **options) -> pd.DataFrame:
    """`gdo_utils.score.level2_score` of a pool table with its strata (options: z_std, stats_over, presence, tie)."""
    strata = pool_strata(table, descriptors, temporal_category, mcq_detection, duration_frames)
    return level2_score(table, descriptors, ablations, seed, strata=strata, **options)
