"""The saved selector: weights, metadata, centroids and training history in one directory.

    selector.safetensors   the chosen epoch's weights (safetensors, no pickle)
    selector.json          config, K, feature spec, chosen epoch, policy, seed, file names
    centroids.npy          source k-means centroids (K, d_image + d_text) float32
    history.parquet/.csv   one row per epoch

`check_feature_spec` refuses a pool whose features do not match what the selector was trained on
(embedding dimensions, CLIP architecture, number of clusters) with a SelectorMismatchError naming
both values.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from safetensors.torch import load_file, save_file

from ..io import atomic_path, read_json, read_parquet, write_json, write_parquet, write_text
from .model import GatedFusionSelector

WEIGHTS = "selector.safetensors"
META = "selector.json"
CENTROIDS = "centroids.npy"
HISTORY = "history.parquet"
HISTORY_CSV = "history.csv"
SELECTOR_FILES = (WEIGHTS, META, CENTROIDS, HISTORY, HISTORY_CSV)
MODEL_KEYS = ("hidden", "gate_hidden", "dropout", "alpha_init", "fusion")


class SelectorMismatchError(ValueError):
    """A pool's features do not match the features the selector was trained on."""


@dataclass
class LoadedSelector:
    """A selector read back from disk: the model (eval mode), its metadata and the source centroids."""

    model: GatedFusionSelector
    meta: dict[str, Any]
    centroids: np.ndarray

    @property
    def feature_spec(self) -> dict[str, Any]:
        return self.meta["feature_spec"]


def feature_spec(image_dim: int, text_dim: int, k: int, clip_arch: str | None, normalisation: str) -> dict[str, Any]:
    """The description of the features a selector accepts."""
    return {"image_dim": int(image_dim), "text_dim": int(text_dim), "k": int(k), "clip_arch": clip_arch,
            "normalisation": normalisation}


def check_feature_spec(spec: dict[str, Any], image_dim: int, text_dim: int, clip_arch: str | None = None,
                       k: int | None = None, pool: str = "pool") -> None:
    """Raise SelectorMismatchError when a pool's features differ from the selector's feature spec."""
    problems = []
    if int(spec["image_dim"]) != int(image_dim):
        problems.append(f"image embedding dimension: selector {spec['image_dim']}, {pool} {image_dim}")
    if int(spec["text_dim"]) != int(text_dim):
        problems.append(f"text embedding dimension: selector {spec['text_dim']}, {pool} {text_dim}")
    if clip_arch is not None and spec.get("clip_arch") is not None and spec["clip_arch"] != clip_arch:
        problems.append(f"CLIP architecture: selector {spec['clip_arch']!r}, {pool} {clip_arch!r}")
    if k is not None and int(spec["k"]) != int(k):
        problems.append(f"number of clusters K: selector {spec['k']}, {pool} {k}")
    if problems:
        raise SelectorMismatchError(
            f"{pool} cannot be scored by this selector: " + "; ".join(problems)
            + ". Embed the pool with the selector's CLIP model, or refit the selector on matching features.")


def save_selector(out_dir: str | Path, model: GatedFusionSelector, meta: dict[str, Any], centroids: np.ndarray,
                  history: pd.DataFrame) -> list[Path]:
    """Write the selector directory (every file atomically); returns the written paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / WEIGHTS) as tmp:
        save_file({n: t.detach().cpu().contiguous() for n, t in model.state_dict().items()}, str(tmp))
    with atomic_path(out / CENTROIDS) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, np.ascontiguousarray(centroids, dtype=np.float32))
    write_parquet(out / HISTORY, history)
    write_text(out / HISTORY_CSV, history.to_csv(index=False, float_format="%.6g"))
    write_json(out / META, {**meta, "files": {"weights": WEIGHTS, "centroids": CENTROIDS, "history": HISTORY}})
    return [out / f for f in SELECTOR_FILES]


def load_selector(selector_dir: str | Path, device: str = "cpu") -> LoadedSelector:
    """Rebuild the model from selector.json + selector.safetensors and read the centroids."""
    d = Path(selector_dir)
    missing = [f for f in (WEIGHTS, META, CENTROIDS) if not (d / f).is_file()]
    if missing:
        raise FileNotFoundError(f"{d}: selector files missing: {missing} (run the OFA fit stage first)")
    meta = read_json(d / META)
    spec, mc = meta["feature_spec"], meta["model"]
    model = GatedFusionSelector(spec["image_dim"], spec["text_dim"], spec["k"], hidden=mc["hidden"],
                                gate_hidden=mc["gate_hidden"], dropout=mc["dropout"], alpha_init=mc["alpha_init"],
                                fusion=mc["fusion"])
    model.load_state_dict(load_file(str(d / WEIGHTS), device="cpu"))
    model.to(device).eval()
    centroids = np.load(d / meta.get("files", {}).get("centroids", CENTROIDS))
    if centroids.shape != (spec["k"], spec["image_dim"] + spec["text_dim"]):
        raise SelectorMismatchError(f"{d / CENTROIDS}: shape {centroids.shape}, expected "
                                    f"({spec['k']}, {spec['image_dim'] + spec['text_dim']}) from {META}")
    return LoadedSelector(model, meta, centroids)


def load_history(selector_dir: str | Path) -> pd.DataFrame:
    """The per-epoch training history of a saved selector."""
    return read_parquet(Path(selector_dir) / HISTORY)


def model_config(cfg) -> dict[str, Any]:
    """The architecture fields of an OFAConfig, as stored in selector.json."""
    return {k: getattr(cfg, k) for k in MODEL_KEYS}
