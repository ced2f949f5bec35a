"""Helpers every numbered notebook uses in its first code cell (after the `parameters` cell).

`start()` moves to the repository root when run inside a checkout (so relative paths in params files
mean the same thing in Jupyter, papermill and the CLI), configures logging and loads the params.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

from .config import Params, load_params


def repo_root(start: str | Path | None = None) -> Path:
    """The nearest parent holding pyproject.toml and params/ (the kit's root)."""
    here = Path(start or os.getcwd()).resolve()
    for d in (here, *here.parents):
        if (d / "pyproject.toml").is_file() and (d / "params").is_dir():
            return d
    raise FileNotFoundError(f"no kit root (pyproject.toml + params/) above {here}")


def start(params_file: str, overrides: list[str] | None = None, level: int = logging.INFO) -> Params:
    """chdir to the kit root (if inside a checkout), set up logging, load params (`overrides`: `key.sub=value`).

    Outside a checkout (the kit installed with pip, notebooks run by `gdo-repro run` from the package)
    the working directory stays: relative paths in the params are relative to where the run started.
    """
    try:
        os.chdir(repo_root())
    except FileNotFoundError:
        pass
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", force=True)
    return load_params(params_file, overrides or [])
