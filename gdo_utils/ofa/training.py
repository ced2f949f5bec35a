"""OFA training sets in the kit's training-file contract (`gdo_utils.trainfile`), written as subsets.

For every OFA pool <pool> (the source and each transfer pool) three subsets go to outputs/<run>/subsets/:

  ofa_<pool>          the 15% selection (the selected samples, in pool order)
  ofa_random_<pool>   a random sample of the same size from the same scored samples (seeded baseline)
  ofa_full_<pool>     the whole pool (text-only samples included): the full-data reference of Rel

Each holds train.jsonl (one row per sample, id = sample id; every turn of the conversation, so every
assistant turn is supervised; the placeholders go on the first user turn), selected_ids.txt,
report.json and manifest.json. The turns are the pool table's pairs (GDO section 2 parsing: empty
pairs dropped, answers whitespace-collapsed; user text as `subsets.prompt_text` says). The
original-format records of the selection stay in outputs/<run>/ofa/<pool>/selected.json(l).
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..cache import code_version
from ..config import Params, params_hash
from ..io import manifest_matches, read_json, sha256_file, write_json, write_jsonl, write_manifest, write_text
from ..trainfile import conversation, media_fields, n_visuals
from .pipeline import SCORES, ofa_pools, pool_dir, select_hash

log = logging.getLogger(__name__)
KINDS = ("ofa", "ofa_random", "ofa_full")
FILES = ("train.jsonl", "selected_ids.txt", "report.json")
RANDOM_STREAM = 15  # second word of the random baseline's seed, so it never reuses another draw


def subset_name(kind: str, pool: str) -> str:
    """'ofa' + 'visionflan' -> 'ofa_visionflan' (kind: ofa | ofa_random | ofa_full)."""
    if kind not in KINDS:
        raise ValueError(f"kind {kind!r} must be one of {KINDS}")
    return f"{kind}_{pool}"


def conversation_rows(qa: pd.DataFrame, sample_ids: list[str], prompt_text: str = "question_raw") -> list[dict]:
    """Multi-turn contract rows of some samples of a pool table, in the order of `sample_ids`."""
    use_raw = prompt_text == "question_raw" and "question_raw" in qa.columns
    qa = qa.sort_values(["sample_id", "turn"], kind="stable")
    groups = {k: g for k, g in qa.groupby("sample_id", sort=False)}
    out = []
    for sid in sample_ids:
        g = groups.get(sid)
        if g is None:
            raise KeyError(f"sample {sid!r} is not in the pool table")
        first = g.iloc[0]
        raws = g["question_raw"].tolist() if use_raw else [None] * len(g)
        questions = [r if isinstance(r, str) and r else q for r, q in zip(raws, g["question"].tolist())]
        media = media_fields(first["media_kind"], first["media"], first["frame_indices"])
        row: dict[str, Any] = {"id": str(sid),
                               "messages": conversation(list(zip(questions, g["answer"].tolist())), n_visuals(media))}
        row.update(media)
        row.update(source=str(first["source"]), bucket=str(first["bucket"]), pool=str(first["pool"]))
        out.append(row)
    return out


def random_baseline(eligible: list[str], n: int, seed: int) -> set[str]:
    """n ids drawn uniformly without replacement from `eligible` (seeded, independent of the selection)."""
    rng = np.random.default_rng([seed, RANDOM_STREAM])
    n = min(n, len(eligible))
    return {eligible[i] for i in rng.permutation(len(eligible))[:n]}


def training_sets_hash(params: Params, pool: str) -> str:
    """What the three sets depend on: the selection's hash, the seed, the prompt text setting and the code."""
    return params_hash({"select": select_hash(params, pool), "seed": params.seed,
                        "prompt_text": params.subsets.prompt_text, "code": code_version(["gdo_utils.ofa.training"])})


def write_set(params: Params, qa: pd.DataFrame, name: str, ids: list[str], h: str, extra: dict) -> dict:
    """One subset folder: train.jsonl, selected_ids.txt, report.json, manifest.json."""
    t0 = time.time()
    out = params.stage_dir("subsets", name)
    rows = conversation_rows(qa, ids, params.subsets.prompt_text)
    write_jsonl(out / "train.jsonl", rows)
    write_text(out / "selected_ids.txt", "".join(f"{i}\n" for i in ids))
    kinds = pd.Series([r["media_kind"] for r in rows], dtype=object).value_counts().sort_index()
    report = {"name": name, "kind": "ofa", "size": len(rows), "turns": int(sum(len(r["messages"]) // 2 for r in rows)),
              "media_kinds": {str(k): int(v) for k, v in kinds.items()}, **extra,
              "files": {f: sha256_file(out / f) for f in ("train.jsonl", "selected_ids.txt")}}
    write_json(out / "report.json", report)
    write_manifest(out, stage=f"subsets:{name}", params_hash=h, params_file=params.source_file,
                   wall_time_s=time.time() - t0, outputs=[out / f for f in FILES])
    return report


def write_training_sets(params: Params, pool: str, force: bool = False) -> dict[str, dict]:
    """The selection, its random baseline and the full pool of `pool` as training subsets (skipped when current)."""
    from ..pool import load_pool

    h = training_sets_hash(params, pool)
    names = {k: subset_name(k, pool) for k in KINDS}
    if not force and all(manifest_matches(params.stage_dir("subsets", n), h, FILES) for n in names.values()):
        return {k: read_json(params.stage_dir("subsets", n, "report.json")) for k, n in names.items()}
    sel_dir = pool_dir(params, pool)
    ids_file = sel_dir / "selected_ids.txt"
    if not ids_file.is_file():
        raise FileNotFoundError(f"{ids_file} not found: run the OFA selection of {pool!r} first")
    selected = set(ids_file.read_text(encoding="utf-8").split())
    qa = load_pool(params, pool)
    order = qa.drop_duplicates("sample_id")["sample_id"].astype(str).tolist()
    scores = pd.read_parquet(sel_dir / SCORES, columns=["sample_id", "scored"])
    scored = set(scores.loc[scores["scored"], "sample_id"].astype(str))
    eligible = [s for s in order if s in scored]
    rnd = random_baseline(eligible, len(selected), params.seed)
    base = {"pool": pool, "n_pool_samples": len(order), "n_scored": len(eligible)}
    reports = {
        "ofa": write_set(params, qa, names["ofa"], [s for s in order if s in selected], h,
                          {**base, "selection": "OFA per-cluster least confidence", "source": str(ids_file)}),
        "ofa_random": write_set(params, qa, names["ofa_random"], [s for s in order if s in rnd], h,
                                 {**base, "selection": "uniform random over the scored samples", "seed": params.seed,
                                  "overlap_with_ofa": len(rnd & selected)}),
        "ofa_full": write_set(params, qa, names["ofa_full"], order, h, {**base, "selection": "the whole pool"}),
    }
    log.info("OFA training sets of %s: %s", pool, {k: r["size"] for k, r in reports.items()})
    return reports


def write_all_training_sets(params: Params, force: bool = False) -> dict[str, dict[str, dict]]:
    """`write_training_sets` for the source pool and every transfer pool (after their selection)."""
    return {p.name: write_training_sets(params, p.name, force=force) for p in ofa_pools(params)}


def training_sets_table(reports: dict[str, dict[str, dict]]) -> pd.DataFrame:
    """One row per written OFA training subset: pool, kind, samples, turns, media kinds."""
    rows = [{"subset": r["name"], "pool": pool, "kind": kind, "samples": r["size"], "turns": r["turns"],
             **{f"n_{k}": v for k, v in r["media_kinds"].items()}}
            for pool, sets in reports.items() for kind, r in sets.items()]
    return pd.DataFrame(rows).set_index("subset").fillna(0)


def subset_dirs(params: Params, pool: str) -> dict[str, Path]:
    """The three subset folders of a pool."""
    return {k: params.stage_dir("subsets", subset_name(k, pool)) for k in KINDS}
