"""Selector training (spec step 5) and the checkpoint choice ("early stop").

Cross-entropy, AdamW(lr, weight_decay), class-balanced batches, `epochs` epochs; after every epoch the
validation core is scored and one history row is logged (loss, accuracy, macro accuracy, coverage =
number of clusters predicted at least once, confidence and gate quantiles). Every epoch's weights are
kept in memory (the model is small: ~2.5 MB at the paper's size) so any checkpoint policy can be
applied afterwards. Deterministic on CPU for a seed (torch.manual_seed + seeded sampler generator).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from .core import CoreSplit, balanced_sampler
from .model import GatedFusionSelector, build_selector

log = logging.getLogger(__name__)

POLICIES = ("target", "target_any", "last", "max_coverage")
HISTORY_COLUMNS = ["epoch", "train_loss", "val_loss", "val_acc", "val_macro_acc", "val_coverage",
                   "conf_q10", "conf_q50", "conf_q90", "gate_q10", "gate_q50", "gate_q90"]
TIE_DECIMALS = 12  # distances to the target equal to 12 decimals are ties (float noise must not break them)


@dataclass
class TrainResult:
    """The selector loaded with the chosen epoch's weights, the per-epoch history and all epoch weights."""

    model: GatedFusionSelector
    history: pd.DataFrame
    states: list[dict[str, torch.Tensor]]
    chosen_epoch: int
    epoch_seconds: list[float] = field(default_factory=list)


@dataclass
class EvalStats:
    """Validation outputs of one epoch (numpy, on CPU)."""

    loss: float
    pred: np.ndarray
    conf: np.ndarray
    gate: np.ndarray


def macro_accuracy(y: np.ndarray, pred: np.ndarray, k: int) -> float:
    """Mean over the classes present in y of the per-class accuracy."""
    count = np.bincount(y, minlength=k)
    correct = np.bincount(y[pred == y], minlength=k)
    present = count > 0
    return float((correct[present] / count[present]).mean()) if present.any() else float("nan")


@torch.no_grad()
def evaluate(model: GatedFusionSelector, v_img: torch.Tensor, v_txt: torch.Tensor, y: torch.Tensor,
             batch_size: int) -> EvalStats:
    """Mean cross-entropy, predictions, max-softmax confidence and gate over a labelled set."""
    model.eval()
    loss_sum, preds, confs, gates = 0.0, [], [], []
    for s in range(0, len(y), batch_size):
        logits, gate = model(v_img[s:s + batch_size], v_txt[s:s + batch_size])
        loss_sum += float(nn.functional.cross_entropy(logits, y[s:s + batch_size], reduction="sum"))
        prob = torch.softmax(logits, dim=1)
        conf, pred = prob.max(dim=1)
        preds.append(pred.cpu())
        confs.append(conf.cpu())
        gates.append(gate.cpu())
    return EvalStats(loss_sum / max(len(y), 1), torch.cat(preds).numpy(), torch.cat(confs).numpy(),
                     torch.cat(gates).numpy())


def history_row(epoch: int, train_loss: float, ev: EvalStats, y_val: np.ndarray, k: int) -> dict:
    """One history row from an epoch's validation outputs."""
    cq = np.quantile(ev.conf, [0.1, 0.5, 0.9])
    gq = np.quantile(ev.gate, [0.1, 0.5, 0.9])
    return {"epoch": epoch, "train_loss": train_loss, "val_loss": ev.loss,
            "val_acc": float((ev.pred == y_val).mean()), "val_macro_acc": macro_accuracy(y_val, ev.pred, k),
            "val_coverage": int(len(np.unique(ev.pred))),
            "conf_q10": float(cq[0]), "conf_q50": float(cq[1]), "conf_q90": float(cq[2]),
            "gate_q10": float(gq[0]), "gate_q50": float(gq[1]), "gate_q90": float(gq[2])}


def choose_epoch(history: pd.DataFrame, policy: str, k: int, target: float) -> int:
    """The epoch (1-based, as in history.epoch) a checkpoint policy picks.

    target: among epochs with coverage == k the one whose val_macro_acc is closest to `target`, ties
    to the earlier epoch; all epochs when none has full coverage. target_any: closest among all
    epochs. last: the last epoch. max_coverage: the first epoch with the maximum coverage.
    """
    if len(history) == 0:
        raise ValueError("empty training history: nothing to choose from")
    h = history.sort_values("epoch", kind="stable")
    if policy == "last":
        return int(h["epoch"].iloc[-1])
    if policy == "max_coverage":
        return int(h.loc[h["val_coverage"] == h["val_coverage"].max(), "epoch"].iloc[0])
    if policy not in ("target", "target_any"):
        raise ValueError(f"checkpoint policy must be one of {POLICIES}, got {policy!r}")
    cand = h
    if policy == "target":
        full = h[h["val_coverage"] == k]
        if len(full):
            cand = full
        else:
            log.warning("no epoch covers all %d clusters (max %d): choosing among all epochs", k,
                        int(h["val_coverage"].max()))
    dist = (cand["val_macro_acc"] - target).abs().round(TIE_DECIMALS).to_numpy()
    return int(cand["epoch"].to_numpy()[np.lexsort((cand["epoch"].to_numpy(), dist))[0]])


def train_selector(v_img: np.ndarray, v_txt: np.ndarray, y: np.ndarray, split: CoreSplit, cfg, k: int, seed: int,
                   device: str = "cpu", progress: bool = True) -> TrainResult:
    """Train the selector on the core's training rows, log every epoch, load the policy's epoch.

    `cfg` is an OFAConfig (fusion, sizes, lr, weight_decay, batch_size, epochs, checkpoint_policy,
    target_macro_acc); `k` is the number of clusters (classes).
    """
    torch.manual_seed(seed)
    dev = torch.device(device)
    model = build_selector(v_img.shape[1], v_txt.shape[1], k, cfg).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)

    def tensors(idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return (torch.as_tensor(np.ascontiguousarray(v_img[idx]), dtype=torch.float32, device=dev),
                torch.as_tensor(np.ascontiguousarray(v_txt[idx]), dtype=torch.float32, device=dev),
                torch.as_tensor(y[idx], dtype=torch.long, device=dev))

    ti, tt, ty = tensors(split.train)
    vi, vt, vy = tensors(split.val)
    y_val = y[split.val].astype(np.int64)
    sampler = balanced_sampler(y[split.train], seed=seed, num_samples=len(split.train))
    rows, states, seconds = [], [], []
    for epoch in tqdm(range(1, cfg.epochs + 1), desc="OFA selector", disable=not progress):
        t0 = time.perf_counter()
        model.train()
        order = torch.as_tensor(list(iter(sampler)), dtype=torch.long, device=dev)
        loss_sum = 0.0
        for s in range(0, len(order), cfg.batch_size):
            b = order[s:s + cfg.batch_size]
            logits, _ = model(ti[b], tt[b])
            loss = nn.functional.cross_entropy(logits, ty[b])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += float(loss.detach()) * len(b)
        ev = evaluate(model, vi, vt, vy, cfg.batch_size)
        rows.append(history_row(epoch, loss_sum / len(order), ev, y_val, k))
        states.append({n: t.detach().to("cpu", copy=True) for n, t in model.state_dict().items()})
        seconds.append(time.perf_counter() - t0)
        log.debug("epoch %d: %s", epoch, rows[-1])
    history = pd.DataFrame(rows, columns=HISTORY_COLUMNS)
    chosen = choose_epoch(history, cfg.checkpoint_policy, k, cfg.target_macro_acc)
    model.load_state_dict(states[chosen - 1])
    model.eval()
    r = history.iloc[chosen - 1]
    log.info("selector: chose epoch %d by %s (val macro acc %.3f, coverage %d/%d, median conf %.3f)", chosen,
             cfg.checkpoint_policy, r["val_macro_acc"], r["val_coverage"], k, r["conf_q50"])
    return TrainResult(model.cpu(), history, states, chosen, seconds)
