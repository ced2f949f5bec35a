"""LLaVA-665K and Vision-Flan (a JSON array of `{id, image?, conversations: [{from, value}]}`).

Same record layout as a OneVision row with an optional image (text-only conversations are kept as
`text_only` rows); the file is one JSON array rather than JSONL.
"""
from __future__ import annotations

from .onevision import media_of as _image_media
from .paths import MediaResolver

FORMATS = ("llava_json", "visionflan")


def media_of(rec: dict, res: MediaResolver) -> tuple[str, list[str], list[int], int]:
    """(media_kind, media, frame_indices, n_total): the first image, or no media for text-only rows."""
    return _image_media(rec, res, required=False)
