"""Import the GDO release's per-candidate metrics (metrics.jsonl) as the kit's descriptor table.

Users of the release already hold its metrics, the expensive GPU part (gdo/extract_six_metrics.py +
gdo/merge_metrics.py write `sixd_metrics_merged.jsonl`). `import_metrics` reads that file with the rules
of the release's loader (gdo/build_pair.py, load_legacy_metrics):

* the id is `qa_uid` when the key is present (even when empty: then the row is bad), else `id`;
* values are read from `data_quality_metrics` when it is an object, else from the row itself; a key the
  object lacks falls back to the row's top level;
* None, NaN, +-inf and anything `float()` refuses are missing (numeric strings such as "1.5" count, as
  in the release);
* a repeated id: the last row wins.

It writes outputs/<run>/descriptors/descriptors.parquet (one row per id, the kit's column names:
quality_score -> quality, tnc_score -> tnc, cluster_score -> cluster_rep, cluster_hardness ->
cluster_hard; the release's SC placeholder -1 -> missing), an `import_report.json` and a manifest.
The report counts bad rows (line and reason), duplicated ids, ids not in the pool (kept: the release's
z statistics and VDS-positive share count every metrics row) and pool rows without metrics.

One residual difference: the release's running z statistics also count the values of the rows a
duplicate id replaced; the descriptor table holds one row per id, so with duplicated ids the kit's
statistics (and possibly the selection) can differ slightly. The report counts the duplicates.
"""
from __future__ import annotations

import json
import logging
import math
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..config import Params
from ..io import sha256_file, write_json, write_manifest, write_parquet
from .metrics_columns import read_columns

log = logging.getLogger(__name__)

# release key -> kit column (the first five are what the release's subset builder reads)
FIELDS = {"loss_video": "loss_video", "loss_blind": "loss_blind", "frame_diversity": "frame_diversity",
          "vds": "vds", "quality_score": "quality", "ppl": "ppl", "amm": "amm", "tnc_score": "tnc",
          "self_consistency": "self_consistency", "cluster_score": "cluster_rep", "cluster_hardness": "cluster_hard"}
BUILDER_FIELDS = ("loss_video", "loss_blind", "frame_diversity", "vds", "quality_score")
MAX_LISTED = 20


class MetricsImportError(ValueError):
    """The metrics file cannot be imported at all; the message names the file."""


def as_float(x: object) -> float | None:
    """The release's number rule: float(x) when finite, else missing (None)."""
    if x is None:
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) or math.isinf(v) else v


def _normalize(x: object) -> str:
    """The release's id normalisation: str, whitespace collapsed ("" for None)."""
    return "" if x is None else " ".join(str(x).strip().split())


def read_item(line: str) -> tuple[str, list[float]] | str:
    """One line under the release loader's rules: (id, values in FIELDS order, NaN = missing) or why it is bad."""
    try:
        item = json.loads(line)
    except json.JSONDecodeError as exc:
        return f"not JSON ({exc.msg} at column {exc.colno})"
    if not isinstance(item, dict):
        return f"not a JSON object ({type(item).__name__})"
    uid = _normalize(item["qa_uid"] if "qa_uid" in item else item.get("id", ""))
    if not uid:
        return "no qa_uid / id"
    m = item.get("data_quality_metrics")
    if not isinstance(m, dict):
        m = item
    vals = []
    for key in FIELDS:
        v = as_float(m.get(key, item.get(key)))
        if key == "self_consistency" and v is not None and v < 0:
            v = None          # the release writes -1 when SC was not computed
        vals.append(math.nan if v is None else v)
    return uid, vals


def parse_metrics(path: Path, *, arrow: bool = True) -> tuple[pd.DataFrame, dict]:
    """Rows of a metrics.jsonl under the release loader's rules, and the counts of what was skipped.

    arrow=True parses blocks column-wise (`metrics_columns`); arrow=False reads one line at a time; the
    table and the counts are the same."""
    if not path.is_file():
        raise MetricsImportError(f"metrics file not found: {path}")
    try:
        chunks, lines = read_columns(path, tuple(FIELDS), read_item, _normalize, "self_consistency", arrow=arrow)
    except ValueError as exc:
        raise MetricsImportError(str(exc)) from exc
    bad = [b for c in chunks for b in c.bad]
    ids = pa.chunked_array([c.uids if isinstance(c.uids, pa.Array) else pa.array(c.uids, pa.large_string())
                            for c in chunks], pa.large_string()).combine_chunks()
    vals = np.concatenate([c.values for c in chunks]) if chunks else np.zeros((0, len(FIELDS)))
    enc = pc.dictionary_encode(ids)                   # ids in first-seen order (a dict keeps the first position)
    codes = enc.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    unique = np.asarray(enc.dictionary.to_pylist(), dtype=object)
    last = len(codes) - 1 - np.unique(codes[::-1], return_index=True)[1]   # ... and the last row's values
    picked = vals[last]                               # one gather of the kept rows, then one column view each
    table = pd.DataFrame({"qa_uid": unique,
                          **{col: picked[:, j] for j, col in enumerate(FIELDS.values())}})
    seen = np.bincount(codes, minlength=len(unique))
    missing = np.isnan(vals).sum(axis=0)
    counts = {"lines": lines, "rows": int(len(table)), "bad_rows": len(bad), "bad_rows_listed": bad[:MAX_LISTED],
              "bad_by_reason": dict(Counter(b["reason"].split(" (")[0] for b in bad)),
              "duplicated_ids": int(len(codes) - len(unique)),
              "duplicated_ids_listed": sorted(unique[seen > 1])[:MAX_LISTED],
              "missing_values": {c: int(missing[j]) for j, c in enumerate(FIELDS.values())}}
    return table, counts


def import_metrics(params: Params, path: str | Path) -> dict:
    """Import a release metrics.jsonl into the run's descriptors.parquet; returns the import report."""
    from ..pool import load_pool_column

    t0, c0 = time.time(), time.process_time()
    path = Path(path)
    table, counts = parse_metrics(path)
    if not len(table):
        raise MetricsImportError(f"{path}: no usable metrics row ({counts['bad_rows']} bad of {counts['lines']} lines)")
    t1, c1 = time.time(), time.process_time()
    pool_ids = load_pool_column(params, "qa_uid").cast(pa.string())     # one column, not the table
    ids = pa.array(table["qa_uid"].to_numpy(), type=pa.string())
    in_pool = pc.is_in(ids, value_set=pool_ids).to_numpy(zero_copy_only=False)
    has = pc.is_in(pool_ids, value_set=ids)
    report = {"file": str(path), "sha256": sha256_file(path), **counts,
              "ids_not_in_pool": int((~in_pool).sum()),
              "ids_not_in_pool_listed": table.loc[~in_pool, "qa_uid"].head(MAX_LISTED).tolist(),
              "pool_rows": len(pool_ids), "pool_rows_without_metrics": len(pool_ids) - pc.sum(has).as_py(),
              "pool_rows_without_metrics_listed": pool_ids.filter(pc.invert(has)).slice(0, MAX_LISTED).to_pylist()}
    t2, c2 = time.time(), time.process_time()
    out = params.stage_dir("descriptors")
    files = [write_parquet(out / "descriptors.parquet", table)]
    files.append(write_json(out / "import_report.json", report))
    timings = {"parse": round(t1 - t0, 4), "join_pool": round(t2 - t1, 4), "write": round(time.time() - t2, 4)}
    cpu = {"parse": round(c1 - c0, 4), "join_pool": round(c2 - c1, 4), "write": round(time.process_time() - c2, 4)}
    write_manifest(out, stage="descriptors:import-metrics", params_hash=f"import:{report['sha256'][:16]}",
                   params_file=params.source_file, wall_time_s=time.time() - t0, outputs=files,
                   extra={"metrics_file": str(path), "timings_s": timings, "cpu_s": cpu})
    for key, n in (("bad_rows", report["bad_rows"]), ("duplicated_ids", report["duplicated_ids"]),
                   ("ids_not_in_pool", report["ids_not_in_pool"]),
                   ("pool_rows_without_metrics", report["pool_rows_without_metrics"])):
        if n:
            log.warning("import-metrics %s: %d %s", path, n, key.replace("_", " "))
    return report
