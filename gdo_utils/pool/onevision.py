"""LLaVA-OneVision image QA (JSONL `{id, images: [path, ...], messages, data_source?}`): first image only.

Also serves LLaVA-665K / Vision-Flan rows (`image` instead of `images`), where the image is optional
(text-only conversations); in the GDO OneVision pool an image is required.
"""
from __future__ import annotations

from ..media import MediaError
from .paths import MediaResolver
from .text import RecordError

FORMAT = "onevision"
RELEASE_SOURCE = "onevision"  # the release's data_source for rows without one (build_pair.py)
ID_PREFIX = "ov"


def media_of(rec: dict, res: MediaResolver, required: bool = True) -> tuple[str, list[str], list[int], int]:
    """(media_kind, media, frame_indices, n_total) of an image row: the first image, absolute."""
    images = rec.get("images")
    if images is None:
        images = rec.get("image")
    if images is None:
        images = []
    elif not isinstance(images, list):
        images = [images]
    if not images:
        if required:
            raise RecordError("no_image", "images")
        return "none", [], [], 0
    first = images[0]
    if type(first) is not str:  # only the first image is kept, so only it must be a path string
        raise RecordError("wrong_schema", "images", "image paths must be strings")
    p = res.path(first)
    if res.check:
        try:
            res.check_image(p)
        except MediaError as exc:
            raise RecordError(exc.reason, "images[0]", exc.path) from None
    return "image", [p], [0], 1
