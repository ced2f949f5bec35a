"""CLIP image and text embeddings of a pool, shared by GDO coverage and the OFA selector.

Two levels: `qa` (one row per qa_uid: the candidate's image or the mean of its frames, and its
question; GDO coverage) and `sample` (one row per sample_id: image as above, text = mean of the
L2-normalised embeddings of every user turn, L2-normalised again; OFA_METHOD.md step 1). Rows are
L2-normalised, stored fp16 as image.npy / text.npy in id order with ids.parquet beside them; missing
modalities are zero rows flagged in `has_image` / `has_text` (with the reason in `error`), never dropped.
Work is sharded by a stable hash of the id and resumes by id (gdo_utils.shards).
"""
from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import torch

from .cache import StageCache, code_version, fingerprint, portable_text
from .config import Params, params_hash, resolve_path
from .io import read_json, read_parquet, write_bytes, write_json, write_manifest, write_parquet
from .media import MediaError, load_frames, subsample
from .models import Clip, load_clip
from .shards import dist_info, merge_parts, prepare_parts, run_sharded, wait_for_ranks
from .vectors import l2_normalize

log = logging.getLogger(__name__)
Level = Literal["qa", "sample"]
PART_SCHEMA = pa.schema([("id", pa.string()), ("has_image", pa.bool_()), ("has_text", pa.bool_()),
                         ("image", pa.list_(pa.float32())), ("text", pa.list_(pa.float32())), ("error", pa.string())])


@dataclass
class Embeddings:
    """Embeddings of one pool in id order (float32 in memory, fp16 on disk)."""

    ids: np.ndarray
    image: np.ndarray
    text: np.ndarray
    has_image: np.ndarray
    has_text: np.ndarray
    level: str = "sample"
    arch: str = ""

    def __len__(self) -> int:
        return len(self.ids)


# ----------------------------------------------------------------------------- units of work
@dataclass
class EmbedItem:
    """What to embed for one id: media of its (first) row and the texts of its user turns."""

    id: str
    media: list[str]
    frame_indices: list[int]
    texts: list[str]


def items_for(table: pd.DataFrame, level: Level) -> dict[str, EmbedItem]:
    """One item per qa_uid (level qa) or per sample_id (level sample, all turns' questions)."""
    if level == "qa":
        return {r.qa_uid: EmbedItem(r.qa_uid, list(r.media), list(r.frame_indices), [r.question])
                for r in table.itertuples(index=False)}
    out: dict[str, EmbedItem] = {}
    for sid, g in table.sort_values(["sample_id", "turn"], kind="mergesort").groupby("sample_id", sort=True):
        first = g.iloc[0]
        out[str(sid)] = EmbedItem(str(sid), list(first["media"]), list(first["frame_indices"]), list(g["question"]))
    return out


class ClipEmbedder:
    """Batched open_clip encoding of images (frames averaged) and texts.

    Items with the same media and frame indices (the QAs of one image or video) are decoded and
    encoded once: inside a batch, and across batches through a small cache of recent media, which
    the sharding keeps adjacent (run_sharded's `shard_key`).
    """

    def __init__(self, clip: Clip, frames_per_video: int, cache_size: int = 512) -> None:
        self.clip, self.frames_per_video, self.cache_size = clip, frames_per_video, cache_size
        self._recent: dict[str, np.ndarray | str] = {}
        self.decoded = 0

    @torch.no_grad()
    def encode_images(self, images: list) -> np.ndarray:
        if not images:
            return np.zeros((0, self.clip.embed_dim), np.float32)
        x = torch.stack([self.clip.preprocess(im) for im in images]).to(self.clip.device)
        return l2_normalize(self.clip.model.encode_image(x).float().cpu().numpy())

    @torch.no_grad()
    def encode_texts(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.clip.embed_dim), np.float32)
        tok = self.clip.tokenizer(texts).to(self.clip.device)  # truncated to the context length (77)
        return l2_normalize(self.clip.model.encode_text(tok).float().cpu().numpy())

    def image_embeddings(self, items: Sequence[EmbedItem]) -> list[np.ndarray | str]:
        """Per item: the unit-norm mean embedding of its frames, or an error string."""
        from PIL import Image

        keys = [media_key(it) for it in items]
        todo: dict[str, EmbedItem] = {}
        for k, it in zip(keys, items):
            if k not in self._recent and k not in todo:
                todo[k] = it
        images, owner, got = [], [], {}
        for k, it in todo.items():
            if not it.media:
                got[k] = "no_media"
                continue
            try:
                frames = subsample(load_frames(it.media, it.frame_indices), self.frames_per_video)
            except MediaError as exc:
                got[k] = f"{exc.reason}: {exc.path}"
                continue
            self.decoded += 1
            images += [Image.fromarray(f) for f in frames]
            owner += [k] * len(frames)
        emb = self.encode_images(images)
        owner_a = np.asarray(owner, dtype=object)
        for k in todo:
            if k not in got:
                got[k] = l2_normalize(emb[owner_a == k].mean(0))
        self._recent.update(got)
        while len(self._recent) > self.cache_size:
            self._recent.pop(next(iter(self._recent)))
        return [self._recent[k] if k in self._recent else got[k] for k in keys]

    def __call__(self, items: Sequence[EmbedItem]) -> list[dict]:
        img = self.image_embeddings(items)
        flat_texts, t_owner = [], []
        for j, it in enumerate(items):
            for t in it.texts:
                if t and t.strip():
                    flat_texts.append(t)
                    t_owner.append(j)
        txt_emb = self.encode_texts(flat_texts)
        d = self.clip.embed_dim
        t_owner_a = np.asarray(t_owner)
        rows = []
        for j, it in enumerate(items):
            tx = txt_emb[t_owner_a == j] if len(t_owner) else np.zeros((0, d), np.float32)
            has_i, has_t = not isinstance(img[j], str), len(tx) > 0
            rows.append({"id": it.id, "has_image": has_i, "has_text": has_t,
                         "image": (img[j] if has_i else np.zeros(d, np.float32)).tolist(),
                         "text": (l2_normalize(tx.mean(0)) if has_t else np.zeros(d, np.float32)).tolist(),
                         "error": (None if has_i else img[j]) or (None if has_t else "no_text")})
        return rows


# ----------------------------------------------------------------------------- stage
CODE_MODULES = ("gdo_utils.embed", "gdo_utils.media", "gdo_utils.models", "gdo_utils.vectors", "gdo_utils.shards")
OUTPUT_FILES = ["ids.parquet", "image.npy", "text.npy", "report.json"]


def embed_dir(params: Params, pool_name: str) -> Path:
    return params.stage_dir("embed", pool_name)


def embed_hash(params: Params, pool_name: str, level: Level) -> str:
    """The embedding settings (CLIP, frames per video, level); the pool enters through its items."""
    data = params.model_dump(mode="json")
    emb = {k: v for k, v in data["embed"].items() if k not in ("batch_size", "part_rows")}
    return params_hash({"clip": data["models"]["clip"], "build_tiny": data["models"]["build_tiny"], "embed": emb,
                        "name": pool_name, "level": level})


def item_key(it: EmbedItem, root: Path | None = None) -> str:
    """sha256 (16 hex) of one item: id, media paths (relative to the run folder when inside it), frames, texts."""
    return hashlib.sha256("\x1f".join([it.id, "\x1e".join(portable_text(m, root) for m in it.media),
                                        ",".join(map(str, it.frame_indices)), "\x1e".join(it.texts)])
                          .encode("utf-8", "surrogatepass")).hexdigest()[:16]


def items_digest(items: dict[str, EmbedItem], root: Path | None = None) -> str:
    """sha256 (16 hex) of what is embedded: every item's `item_key`, in id order."""
    h = hashlib.sha256()
    for i in sorted(items):
        h.update(item_key(items[i], root).encode())
        h.update(b"\n")
    return h.hexdigest()[:16]


def parts_key(params: Params, name: str, level: Level) -> str:
    """What every embedding part's rows depend on: settings, code and the CLIP files' content (no paths).

    The items are not in it: each row carries its own `item_key`, so an edited record re-embeds its rows only.
    """
    fps = [fingerprint(f).get("sha256") for f in clip_files(params)]
    return params_hash({"settings": embed_hash(params, name, level), "code": code_version(CODE_MODULES), "clip": fps})


def clip_files(params: Params) -> list[Path]:
    """The CLIP checkpoint and config files the embeddings depend on (fingerprinted by the cache)."""
    c = params.models.clip
    out = []
    for value, name in ((c.checkpoint, "models.clip.checkpoint"), (c.model_config_path, "models.clip.model_config_path")):
        if value:
            out.append(resolve_path(params, value, name))
    return out


def media_key(it: EmbedItem) -> str:
    """Items with the same media and frame indices share one image embedding (the QAs of a video)."""
    return "\x1e".join(it.media) + "|" + ",".join(map(str, it.frame_indices))


def _save_npy(path: Path, arr: np.ndarray) -> Path:
    import io

    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return write_bytes(path, buf.getvalue())


def run_embed(params: Params, table: pd.DataFrame, out_dir: str | Path, level: Level = "sample",
              force: bool = False, pool_name: str | None = None, progress: bool = True,
              inputs: Sequence[str | Path] = ()) -> dict:
    """Embed every id of `table` at `level` into out_dir (sharded by media, resumable, merged on rank 0).

    The cache key is the embedding settings + the items (ids, media, texts) + this stage's code + the
    CLIP checkpoint files (+ `inputs`, e.g. the pool file). Parts made under other settings, code or CLIP
    files are discarded (switching the checkpoint, architecture or frames per video recomputes
    everything); parts are also keyed on their rows, so an edited item re-embeds that item only.
    Every rank embeds its share; rank 0 waits for the others and merges.
    """
    out = Path(out_dir)
    name = pool_name or out.name
    items = items_for(table, level)
    root = params.run_dir
    key = params_hash({"settings": embed_hash(params, name, level), "items": items_digest(items, root)})
    cache = StageCache(f"embed {name}", out, key, CODE_MODULES, [*clip_files(params), *inputs], root=root)
    if cache.fresh(OUTPUT_FILES, force=force):
        return read_json(out / "report.json")
    parts = out / "parts"
    record = cache.record()
    keys = {i: item_key(it, root) for i, it in items.items()}
    prepare_parts(parts, parts_key(params, name, level), force=force, row_keys=keys, id_col="id")
    t0 = time.time()
    clip = load_clip(params.models.clip, params, device="cpu" if params.device == "cpu" else "auto")
    embedder = ClipEmbedder(clip, params.embed.frames_per_video)
    ids = sorted(items)
    rank, world = dist_info()
    counts = run_sharded(ids, lambda batch: embedder([items[i] for i in batch]), parts, id_col="id",
                         batch_size=params.embed.batch_size, part_rows=params.embed.part_rows, schema=PART_SCHEMA,
                         desc=f"embed {name}", progress=progress, shard_key=lambda i: media_key(items[i]),
                         row_keys=keys)
    counts["media_decoded"] = embedder.decoded
    if rank != 0:
        return counts
    if world > 1:
        wait_for_ranks(parts, ids, "id")
    df = merge_parts(parts, ids, "id")
    image = np.asarray(df["image"].tolist(), dtype=np.float32).astype(np.float16)
    text = np.asarray(df["text"].tolist(), dtype=np.float32).astype(np.float16)
    meta = df[["id", "has_image", "has_text", "error"]]
    outs = [write_parquet(out / "ids.parquet", meta), _save_npy(out / "image.npy", image),
            _save_npy(out / "text.npy", text)]
    report = {"pool": name, "level": level, "rows": int(len(df)), "dim": int(image.shape[1]), "clip_arch": clip.arch,
              "has_image": int(meta["has_image"].sum()), "has_text": int(meta["has_text"].sum()),
              "errors_by_reason": {k: int(v) for k, v in meta["error"].dropna().str.split(":").str[0]
                                   .value_counts().sort_index().items()},
              "seconds": round(time.time() - t0, 2), **{f"shard_{k}": v for k, v in counts.items()}}
    outs.append(write_json(out / "report.json", report))
    write_manifest(out, stage=f"embed:{name}", params_hash=key, params_file=params.source_file,
                   wall_time_s=time.time() - t0, outputs=outs, extra=record)
    if report["rows"] - report["has_image"]:
        log.warning("embed %s: %d of %d rows without an image embedding %s", name, report["rows"] - report["has_image"],
                    report["rows"], report["errors_by_reason"])
    return report


def default_level(pool_name: str) -> Level:
    """GDO pool -> one embedding per candidate (qa); OFA pools -> one per sample."""
    from .pool import GDO_POOL_NAME

    return "qa" if pool_name == GDO_POOL_NAME else "sample"


def ensure_embeddings(params: Params, pool_name: str, level: Level | None = None, force: bool = False) -> dict:
    """Compute (or reuse) the embeddings of a built pool; returns the embed report."""
    from .pool import load_pool, pool_dir

    level = level or default_level(pool_name)
    columns = ["qa_uid", "sample_id", "turn", "media", "frame_indices", "question"]
    return run_embed(params, load_pool(params, pool_name, columns=columns), embed_dir(params, pool_name), level=level,
                     force=force, pool_name=pool_name, inputs=[pool_dir(params, pool_name) / "qa.parquet"])


def load_embeddings(params: Params, pool_name: str, dtype: type = np.float32) -> Embeddings:
    """A pool's embeddings in id order (float32; np.float16: the stored arrays mapped read-only, not copied)."""
    d = embed_dir(params, pool_name)
    mmap = "r" if dtype == np.float16 else None  # callers gather the rows they need, reading only those pages
    if not (d / "ids.parquet").is_file():
        raise FileNotFoundError(f"{d}/ids.parquet not found: run `gdo-repro embed --pool {pool_name}` first")
    meta = read_parquet(d / "ids.parquet")
    rep = read_json(d / "report.json")
    image, text = (np.load(d / f, mmap_mode=mmap).astype(dtype, copy=False) for f in ("image.npy", "text.npy"))
    return Embeddings(ids=meta["id"].to_numpy(dtype=str), image=image, text=text,
                      has_image=meta["has_image"].to_numpy(bool), has_text=meta["has_text"].to_numpy(bool),
                      level=rep["level"], arch=rep["clip_arch"])
