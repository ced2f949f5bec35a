"""Media paths of a pool: resolved once against an absolute root, checked (optionally) and cached.

A relative `media_root` (or annotation folder) is made absolute once, against the working directory
of the run, so every path in the QA table is absolute and resolvable from any working directory
later (training files, descriptor extraction, exports). A path is joined to the root exactly once.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..media import MediaError, load_image, probe_video


@dataclass
class MediaResolver:
    """Resolves media paths against an absolute root and (optionally) checks them, caching per path."""

    root: Path
    check: bool
    _root_s: str = field(default="", init=False, repr=False)
    _image_ok: dict = field(default_factory=dict, init=False, repr=False)
    _video: dict = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self.root = Path(os.path.abspath(Path(self.root).expanduser()))
        self._root_s = str(self.root).rstrip("/") + "/"

    def path(self, rel: str) -> str:
        """Absolute path of a media entry (absolute entries kept, `~` expanded, others joined to the root)."""
        head = rel[:1]
        if head == "/":
            return rel
        if head == "~":
            return os.path.abspath(os.path.expanduser(rel))
        return self._root_s + rel

    def check_image(self, p: str) -> None:
        """Raise MediaError when the (absolute) image path cannot be decoded (cached)."""
        if p not in self._image_ok:
            try:
                load_image(p)
                self._image_ok[p] = None
            except MediaError as exc:
                self._image_ok[p] = exc
        if self._image_ok[p] is not None:
            raise self._image_ok[p]

    def video_frames_total(self, p: str) -> int:
        """Frame count of a video file (cached); MediaError when it cannot be read."""
        if p not in self._video:
            try:
                self._video[p] = probe_video(p).n_frames
            except MediaError as exc:
                self._video[p] = exc
        v = self._video[p]
        if isinstance(v, MediaError):
            raise v
        return v
