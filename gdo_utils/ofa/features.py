"""OFA features (spec step 1): the joint image-text vector and which samples can be scored.

The embedding stage stores per-modality CLIP vectors (L2-normalised rows, zeros where a modality is
missing). OFA's joint feature is x = L2([L2(image); L2(text)]); the k-means and the k-DPP kernel read x.
The selector's inputs (`ofa.selector_input`): "unit" (default, OFA_METHOD.md step 4) gives it the
unit-norm v_img and v_txt; "joint_halves" (the kit's earlier choice) gives it the two halves of x, each
its modality's unit vector divided by sqrt(2), which halves the interaction term z = v_img * v_txt.
Samples without an image or without text are not scored: they keep a row with a reason.
"""
from __future__ import annotations

import numpy as np

from ..vectors import joint_features, l2_normalize  # noqa: F401 - re-exported for the OFA modules

SELECTOR_INPUTS = {"unit": "selector input = (l2(image), l2(text))",
                   "joint_halves": "selector input = (x[:d_image], x[d_image:]), x = l2([l2(image); l2(text)])"}
NORMALISATION = SELECTOR_INPUTS["joint_halves"]   # what selectors saved before the option existed were fed
REASON_NO_IMAGE = "no_image"
REASON_NO_TEXT = "no_text"
REASON_NO_IMAGE_NO_TEXT = "no_image_no_text"
REASON_NO_EMBEDDING = "no_embedding"


def split_modalities(x: np.ndarray, image_dim: int, selector_input: str = "joint_halves") -> tuple[np.ndarray, np.ndarray]:
    """The selector's inputs from the joint feature: its two halves, or ("unit") each half L2-normalised,
    i.e. the unit-norm v_img and v_txt (a half is its modality's unit vector / sqrt 2)."""
    if selector_input not in SELECTOR_INPUTS:
        raise ValueError(f"selector_input must be one of {sorted(SELECTOR_INPUTS)}, got {selector_input!r}")
    a, b = x[:, :image_dim], x[:, image_dim:]
    if selector_input == "unit":
        return l2_normalize(a), l2_normalize(b)
    return a, b


def selector_input_of(meta: dict) -> str:
    """The selector input a saved selector was trained on (selectors saved before the option: joint_halves)."""
    return (meta.get("config") or {}).get("selector_input", "joint_halves")


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
