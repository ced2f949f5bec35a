"""Scoring with the frozen selector (spec steps 6-7): confidence, entropy, gate, predicted cluster.

conf(x) = max_k softmax(logits)_k. A pool's cluster is its k-means label for the source pool and the
nearest source centroid for any other pool. Unscorable samples keep a row (scored=False, NaN scores,
cluster -1) with the reason.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from .model import GatedFusionSelector

SCORE_COLUMNS = ["sample_id", "cluster", "distance", "conf", "entropy", "gate", "pred", "scored", "reason"]


@dataclass
class Scores:
    """Per-row selector outputs (float32 conf/entropy/gate, int64 predicted class)."""

    conf: np.ndarray
    entropy: np.ndarray
    gate: np.ndarray
    pred: np.ndarray


@torch.no_grad()
def score(model: GatedFusionSelector, v_img: np.ndarray, v_txt: np.ndarray, batch: int = 4096,
          device: str | None = None) -> Scores:
    """Max-softmax confidence, entropy (nats), gate and argmax class for every row, in batches."""
    model.eval()
    dev = torch.device(device) if device else next(model.parameters()).device
    n = len(v_img)
    conf = np.empty(n, np.float32)
    ent = np.empty(n, np.float32)
    gate = np.empty(n, np.float32)
    pred = np.empty(n, np.int64)
    for s in range(0, n, batch):
        vi = torch.as_tensor(np.ascontiguousarray(v_img[s:s + batch]), dtype=torch.float32, device=dev)
        vt = torch.as_tensor(np.ascontiguousarray(v_txt[s:s + batch]), dtype=torch.float32, device=dev)
        logits, g = model(vi, vt)
        logp = torch.log_softmax(logits.float(), dim=1)
        c, p = logp.max(dim=1)
        conf[s:s + batch] = c.exp().cpu().numpy()
        ent[s:s + batch] = (-(logp.exp() * logp).sum(dim=1)).cpu().numpy()
        gate[s:s + batch] = g.float().cpu().numpy()
        pred[s:s + batch] = p.cpu().numpy()
    return Scores(conf, ent, gate, pred)


def scores_table(sample_ids: np.ndarray, reasons: np.ndarray, clusters: np.ndarray, distances: np.ndarray,
                 s: Scores) -> pd.DataFrame:
    """The scores table of a pool: every sample, scored rows filled from `s` in mask order.

    `reasons` is "" for scorable rows; `clusters`, `distances` and `s` cover the scorable rows only.
    """
    reasons = np.asarray(reasons, dtype=object)
    mask = reasons == ""
    n = len(sample_ids)

    def fill(values: np.ndarray, dtype, empty) -> np.ndarray:
        out = np.full(n, empty, dtype=dtype)
        out[mask] = values
        return out

    return pd.DataFrame({
        "sample_id": np.asarray(sample_ids, dtype=object).astype(str),
        "cluster": fill(clusters, np.int64, -1),
        "distance": fill(distances, np.float32, np.nan),
        "conf": fill(s.conf, np.float32, np.nan),
        "entropy": fill(s.entropy, np.float32, np.nan),
        "gate": fill(s.gate, np.float32, np.nan),
        "pred": fill(s.pred, np.int64, -1),
        "scored": mask,
        "reason": reasons.astype(str),
    }, columns=SCORE_COLUMNS)
