"""Row-wise vector helpers shared by the CLIP embeddings, GDO coverage and the OFA selector."""
from __future__ import annotations

import numpy as np


def l2_normalize(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Rows divided by their L2 norm (all-zero rows stay zero), float32."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norms, eps)


def joint_features(image: np.ndarray, text: np.ndarray) -> np.ndarray:
    """x = L2([L2(image); L2(text)]) as float32 (n, d_image + d_text): OFA step 1 and GDO coverage."""
    image = np.asarray(image)
    text = np.asarray(text)
    if image.ndim != 2 or text.ndim != 2 or len(image) != len(text):
        raise ValueError(f"image and text embeddings must be 2-D with the same rows, got {image.shape} and {text.shape}")
    return l2_normalize(np.concatenate([l2_normalize(image), l2_normalize(text)], axis=1))
