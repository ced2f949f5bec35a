"""OFA features (spec step 1): the joint image-text vector and which samples can be scored.

The embedding stage stores per-modality CLIP vectors (L2-normalised rows, zeros where a modality is
missing). OFA's joint feature is x = L2([L2(image); L2(text)]); the selector reads the two halves of
x (each is its modality's unit vector divided by sqrt(2)), the k-means and the k-DPP kernel read x.
Samples without an image or without text are not scored: they keep a row with a reason.
"""
from __future__ import annotations

import numpy as np

from ..vectors import joint_features, l2_normalize  # noqa: F401 - re-exported for the OFA modules

NORMALISATION = "x = l2([l2(image); l2(text)]); selector input = (x[:d_image], x[d_image:])"
REASON_NO_IMAGE = "no_image"
REASON_NO_TEXT = "no_text"
REASON_NO_IMAGE_NO_TEXT = "no_image_no_text"
REASON_NO_EMBEDDING = "no_embedding"


def split_modalities(x: np.ndarray, image_dim: int) -> tuple[np.ndarray, np.ndarray]:
    """The selector's inputs: the image half and the text half of the joint feature."""
    return x[:, :image_dim], x[:, image_dim:]


def unscored_reasons(has_image: np.ndarray, has_text: np.ndarray) -> np.ndarray:
    """Per row "" when scorable, else no_image / no_text / no_image_no_text (object array)."""
    has_image = np.asarray(has_image, dtype=bool)
    has_text = np.asarray(has_text, dtype=bool)
    reasons = np.full(len(has_image), "", dtype=object)
    reasons[~has_image & has_text] = REASON_NO_IMAGE
    reasons[has_image & ~has_text] = REASON_NO_TEXT
    reasons[~has_image & ~has_text] = REASON_NO_IMAGE_NO_TEXT
    return reasons


def scorable_mask(has_image: np.ndarray, has_text: np.ndarray) -> np.ndarray:
    """True where the sample has both an image and text (the only samples OFA scores)."""
    return np.asarray(has_image, dtype=bool) & np.asarray(has_text, dtype=bool)
