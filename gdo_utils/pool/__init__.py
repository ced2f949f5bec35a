"""Pool readers: LLaVA-OneVision / LLaVA-Video JSONL and LLaVA-665K / Vision-Flan JSON -> one QA table.

Parsing follows GDO_METHOD.md section 2 (`text`); one module per file format reads its records'
media (`onevision`, `llava_video`, `llava_json`), resolving every path once to an absolute path
(`paths`); `reader` turns one file into Arrow record batches + quarantine rows (JSONL through the Arrow fast
path of `fast`, anything it cannot decide exactly record at a time, same output); `stage` streams a
pool's files into outputs/<run>/pool/qa.parquet (+ quarantine.parquet, report.json, manifest.json).
Rejected records never vanish: each becomes a quarantine row (file, line, id, field, reason) and the
pool report counts everything. The table schema is in `gdo_utils.schema`. This package imports no
toy-world module: the toy world is one data source that writes files these readers read.
"""
from .reader import GDO_POOL_NAME, ID_PREFIX, FileReader, default_source, id_prefix
from .records import PoolFormatError, RawRecord, iter_json_array, iter_jsonl, load_raw_records
from .stage import (PoolResult, build_pool, load_pool, load_pool_column, load_quarantine, named_pools, pool_dir, pool_hash,
                    run_pool_stage)
from .text import Pair, PairStats, RecordError, collapse_ws, extract_pairs, source_group, strip_media_tokens

__all__ = ["GDO_POOL_NAME", "ID_PREFIX", "FileReader", "default_source", "id_prefix", "PoolFormatError", "RawRecord",
           "iter_json_array", "iter_jsonl", "load_raw_records", "PoolResult", "build_pool", "load_pool", "load_pool_column",
           "load_quarantine", "named_pools", "pool_dir", "pool_hash", "run_pool_stage", "Pair", "PairStats",
           "RecordError", "collapse_ws", "extract_pairs", "source_group", "strip_media_tokens"]
