"""Write a selection back as the original records, in their original order and format.

The pool table remembers, per sample, its annotation file and 0-based record index; the selected
records are re-read from those files unchanged (key order kept) and written as a JSON array
(selected.json) for JSON-array pools (LLaVA-665K, Vision-Flan) or one record per line
(selected.jsonl) for JSONL pools. selected_ids.txt lists the same samples in the same order; its
sha256 goes in the report.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..io import write_text
from ..pool import load_raw_records

JSONL_FORMATS = frozenset({"onevision", "llava_video"})


def selected_records(samples: pd.DataFrame, chosen_ids: np.ndarray, formats: dict[str, str]) -> tuple[list[Any], list[str], set[str]]:
    """(records, sample ids, formats used) of the chosen samples in pool order.

    `samples` has one row per sample in pool order (sample_id, source_file, record_index);
    `formats` maps resolved annotation paths to their pool format.
    """
    sel = samples[samples["sample_id"].isin(set(map(str, chosen_ids)))].reset_index(drop=True)
    missing = len(set(map(str, chosen_ids))) - len(sel)
    if missing:
        raise KeyError(f"{missing} selected sample id(s) are not in the pool table")
    records: list[Any] = [None] * len(sel)
    used: set[str] = set()
    for path, grp in sel.groupby("source_file", sort=False):  # one read per annotation file
        key = str(Path(path).resolve())
        if key not in formats:
            raise KeyError(f"annotation file {path} of the pool table is not among the pool's sources {sorted(formats)}")
        raw = load_raw_records(path, formats[key])
        used.add(formats[key])
        for pos, idx in zip(grp.index, grp["record_index"].to_numpy()):
            records[pos] = raw[int(idx)]
    return records, sel["sample_id"].astype(str).tolist(), used


def write_selected(out_dir: Path, samples: pd.DataFrame, chosen_ids: np.ndarray, formats: dict[str, str]) -> dict[str, Any]:
    """Write selected.json(l) and selected_ids.txt; returns their names and sha256 checksums."""
    records, ids, used = selected_records(samples, chosen_ids, formats)
    jsonl = bool(used) and used <= JSONL_FORMATS
    if jsonl:
        name, text = "selected.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    else:
        name, text = "selected.json", json.dumps(records, ensure_ascii=False, indent=2) + "\n"
    ids_text = "".join(f"{i}\n" for i in ids)
    write_text(out_dir / name, text)
    write_text(out_dir / "selected_ids.txt", ids_text)
    return {"selected_file": name, "selected_file_sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
            "selected_ids_sha256": hashlib.sha256(ids_text.encode("utf-8")).hexdigest()}
