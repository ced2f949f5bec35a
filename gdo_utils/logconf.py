"""Logging set-up for the notebooks and the CLI: the kit's own `gdo_utils` logger, not the root logger.

The kit's messages (stage skipped, rows quarantined, ...) go to stderr at INFO (DEBUG with `-v`); other
libraries keep Python's default (WARNING), so open_clip's and faiss's INFO lines stay out of notebooks.
"""
from __future__ import annotations

import logging
import sys

KIT_LOGGER = "gdo_utils"
FORMAT = "%(levelname)s %(name)s: %(message)s"
_HANDLER_NAME = "gdo_utils.console"


class _StderrHandler(logging.StreamHandler):
    """A stream handler writing to whatever sys.stderr is at emit time (pytest and Jupyter replace it)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def configure_logging(level: int = logging.INFO, fmt: str = FORMAT) -> logging.Logger:
    """Give the `gdo_utils` logger one stderr handler at `level` (idempotent); the root logger is left alone."""
    logger = logging.getLogger(KIT_LOGGER)
    for h in [h for h in logger.handlers if h.get_name() == _HANDLER_NAME]:
        logger.removeHandler(h)
    handler = _StderrHandler()
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(logging.Formatter(fmt))
    logger.addHandler(handler)
    logger.setLevel(level)
    return logger   # propagates: the root has no handler unless the host (pytest's caplog, an app) adds one
