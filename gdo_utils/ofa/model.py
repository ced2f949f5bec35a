"""The OFA selector (spec step 4): a gated fusion of the image and text halves of the joint feature.

    z      = v_img * v_txt
    h_img  = ReLU(W_i v_img + b_i),  h_txt = ReLU(W_t v_txt + b_t)
    gate   = sigmoid(W_g2 ReLU(W_g1 [v_img; v_txt; z] + b_g1) + b_g2)
    f      = gate * h_img + (1 - gate) * h_txt + alpha * W_z z        (W_z no bias, alpha learnable)
    logits = W_o Dropout(ReLU(LayerNorm(f))) + b_o

Ablations: `static_gate` (gate = 0.5, no gate network) and `no_interaction` (no alpha term; W_z and
alpha are not created). Modules that a mode does not use are not built, so the state dict holds only
trained weights.
"""
from __future__ import annotations

from typing import Literal

import torch
from torch import nn

Fusion = Literal["gated", "static_gate", "no_interaction"]
FUSIONS: tuple[str, ...] = ("gated", "static_gate", "no_interaction")


class GatedFusionSelector(nn.Module):
    """Weak K-way classifier of cluster pseudo-labels; its max-softmax is the OFA confidence."""

    def __init__(self, image_dim: int, text_dim: int, n_classes: int, hidden: int = 256, gate_hidden: int = 128,
                 dropout: float = 0.1, alpha_init: float = 0.1, fusion: Fusion = "gated") -> None:
        super().__init__()
        if fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}, got {fusion!r}")
        if image_dim != text_dim:
            raise ValueError(f"the interaction z = v_img * v_txt needs equal dimensions, got image {image_dim} and text {text_dim}")
        self.image_dim, self.text_dim, self.n_classes, self.fusion = image_dim, text_dim, n_classes, fusion
        self.img = nn.Linear(image_dim, hidden)
        self.txt = nn.Linear(text_dim, hidden)
        if fusion != "static_gate":
            self.gate_net = nn.Sequential(nn.Linear(image_dim + text_dim + image_dim, gate_hidden), nn.ReLU(),
                                          nn.Linear(gate_hidden, 1))
        if fusion != "no_interaction":
            self.inter = nn.Linear(image_dim, hidden, bias=False)
            self.alpha = nn.Parameter(torch.tensor(float(alpha_init)))
        self.norm = nn.LayerNorm(hidden)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, n_classes)

    def forward(self, v_img: torch.Tensor, v_txt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (B, K) and the gate (B,) for a batch of image and text vectors."""
        z = v_img * v_txt
        h_img = torch.relu(self.img(v_img))
        h_txt = torch.relu(self.txt(v_txt))
        if self.fusion == "static_gate":
            gate = torch.full((v_img.shape[0], 1), 0.5, dtype=h_img.dtype, device=h_img.device)
        else:
            gate = torch.sigmoid(self.gate_net(torch.cat([v_img, v_txt, z], dim=1)))
        f = gate * h_img + (1.0 - gate) * h_txt
        if self.fusion != "no_interaction":
            f = f + self.alpha * self.inter(z)
        logits = self.out(self.drop(torch.relu(self.norm(f))))
        return logits, gate.squeeze(1)


def build_selector(image_dim: int, text_dim: int, n_classes: int, cfg) -> GatedFusionSelector:
    """A selector from an OFAConfig-like object (hidden, gate_hidden, dropout, alpha_init, fusion)."""
    return GatedFusionSelector(image_dim, text_dim, n_classes, hidden=cfg.hidden, gate_hidden=cfg.gate_hidden,
                               dropout=cfg.dropout, alpha_init=cfg.alpha_init, fusion=cfg.fusion)
