"""One candidate walked through two descriptors, for reading: VDS (loss with vs without frames) and its flow field.

`vds_walkthrough` recomputes, for one qa_uid, the two answer losses the descriptor stage computed
(the same code: `model_based.dependence` with the stage's image size settings) and puts them beside the
stored values; `flow_field` returns the Farneback flow between two of the motion frames (the same
frames, size and parameters AMM averages over). Both read the pool and the descriptor table; nothing
is written.
"""
from __future__ import annotations

from typing import Any

import cv2
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..config import Params
from ..media import load_frames, uniform_indices
from ..vlm_batch import VLMSample, encode_batch, to_pil
from .model_based import dependence
from .motion import FARNEBACK_PARAMS, _pin_cv2_threads, _prepare_gray


def pick_moving_video(desc: pd.DataFrame) -> str:
    """The video candidate (no error) with the largest AMM (ties: smallest qa_uid): a clip that moves."""
    v = desc[(desc["bucket"] == "short_video") & desc["error"].isna() & desc["amm"].notna()]
    if v.empty:
        raise ValueError("no video candidate with descriptors to walk through")
    return str(v.sort_values(["amm", "qa_uid"], ascending=[False, True], kind="stable")["qa_uid"].iloc[0])


def _pool_row(params: Params, qa_uid: str) -> pd.Series:
    from ..pool import load_pool

    qa = load_pool(params)
    hit = qa[qa["qa_uid"] == qa_uid]
    if hit.empty:
        raise KeyError(f"{qa_uid!r} is not in the GDO pool")
    return hit.iloc[0]


def vds_walkthrough(params: Params, qa_uid: str, stored: pd.Series | None = None) -> dict[str, Any]:
    """loss_video (frames given), loss_blind (no frames), VDS = blind - video for one candidate, and the stored row."""
    from ..models import load_vlm_from_params
    from .runner import DescriptorWorker

    row = _pool_row(params, qa_uid)
    frames = load_frames(list(row["media"]), list(row["frame_indices"]))
    vlm = load_vlm_from_params(params)
    worker = DescriptorWorker(params, row.to_frame().T, vlm)  # the stage's image-size settings
    images = to_pil(frames[uniform_indices(len(frames), params.descriptors.max_frames_model)])
    sample = VLMSample(row["question"], row["answer"], images)
    dep = dependence(vlm, [sample], worker.image_kwargs)
    with_v = encode_batch(vlm.processor, [sample], with_visuals=True, with_answer=True, image_kwargs=worker.image_kwargs)
    blind = encode_batch(vlm.processor, [VLMSample(row["question"], row["answer"])], with_visuals=False, with_answer=True)
    out = {"qa_uid": qa_uid, "question": row["question"], "answer": row["answer"], "frames_given": len(images),
           "prompt_tokens_with_frames": int(with_v["input_ids"].shape[1]),
           "prompt_tokens_without_frames": int(blind["input_ids"].shape[1]),
           "answer_tokens": int((with_v["labels"] != -100).sum()),
           "loss_video": float(dep["loss_video"][0]), "loss_blind": float(dep["loss_blind"][0]),
           "vds": float(dep["vds"][0]), "ppl": float(dep["ppl"][0])}
    if stored is not None:
        out.update({f"stored_{k}": float(stored[k]) for k in ("loss_video", "loss_blind", "vds", "ppl")})
    return out


def plot_vds(walk: dict[str, Any]) -> plt.Figure:
    """Two bars (answer loss with and without the frames) and the gap VDS between them."""
    fig, ax = plt.subplots(figsize=(4.6, 3.2))
    vals = [walk["loss_video"], walk["loss_blind"]]
    ax.bar(["with frames\n(loss_video)", "without frames\n(loss_blind)"], vals, color=["C0", "C1"])
    ax.annotate("", xy=(1, walk["loss_blind"]), xytext=(1, walk["loss_video"]),
                arrowprops={"arrowstyle": "<->", "color": "black"})
    ax.text(1.08, np.mean(vals), f"VDS = {walk['vds']:+.3f}", va="center")
    ax.set_ylabel("mean answer-token cross-entropy")
    ax.set_title(walk["qa_uid"], fontsize=9)
    fig.tight_layout()
    return fig


def flow_field(params: Params, qa_uid: str, pair: int | None = None) -> dict[str, Any]:
    """Gray motion frames t, t+1 and their Farneback flow (the pair with the largest mean magnitude by default)."""
    row = _pool_row(params, qa_uid)
    cfg = params.descriptors
    frames = load_frames(list(row["media"]), list(row["frame_indices"]))
    _pin_cv2_threads()
    gray = _prepare_gray(frames[uniform_indices(len(frames), cfg.motion_frames)], cfg.motion_size)
    if len(gray) < 2:
        raise ValueError(f"{qa_uid}: fewer than 2 frames, no flow")
    flows = [cv2.calcOpticalFlowFarneback(gray[i], gray[i + 1], None, **FARNEBACK_PARAMS) for i in range(len(gray) - 1)]
    mags = np.array([float(np.sqrt((f.astype(np.float64) ** 2).sum(-1)).mean()) for f in flows])
    i = int(np.argmax(mags)) if pair is None else int(pair)
    return {"qa_uid": qa_uid, "pair": i, "frame_a": gray[i], "frame_b": gray[i + 1], "flow": flows[i],
            "pair_magnitudes": mags, "amm": float(mags.mean())}


def plot_flow_field(ff: dict[str, Any], step: int = 14) -> plt.Figure:
    """Frame t, frame t+1, and the flow arrows over the magnitude map."""
    flow = ff["flow"]
    mag = np.sqrt((flow ** 2).sum(-1))
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.4))
    axes[0].imshow(ff["frame_a"], cmap="gray")
    axes[1].imshow(ff["frame_b"], cmap="gray")
    im = axes[2].imshow(mag, cmap="viridis")
    ys, xs = np.mgrid[step // 2:flow.shape[0]:step, step // 2:flow.shape[1]:step]
    axes[2].quiver(xs, ys, flow[ys, xs, 0], flow[ys, xs, 1], color="white", scale_units="xy", angles="xy", scale=0.5)
    fig.colorbar(im, ax=axes[2], fraction=0.046, label="|flow| (pixels)")
    for ax, t in zip(axes, (f"frame {ff['pair']}", f"frame {ff['pair'] + 1}",
                            f"flow, mean |flow| {ff['pair_magnitudes'][ff['pair']]:.2f} (AMM {ff['amm']:.2f})")):
        ax.set_title(t, fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    return fig
