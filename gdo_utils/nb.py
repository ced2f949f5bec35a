"""Helpers every numbered notebook uses in its first code cell (after the `parameters` cell).

`start()` moves to the repository root when run inside a checkout (so relative paths in params files
mean the same thing in Jupyter, papermill and the CLI), configures the kit's logger and loads the params.

papermill passes parameters two ways, and both reach `start()`: `-p params_file params/paper.yaml -p overrides
seed=7` (a single override string is one override), or `-f run.yaml` where run.yaml holds `params_file:` and
`overrides:`. A kit params file given to `-f` would inject its sections (`run_name`, `pools`, ...) as loose
variables the notebook never reads, and the notebook would silently run its default params: `start()` refuses it.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

from .config import Params, ParamsError, load_params
from .logconf import configure_logging

# Sections of a params file; any of them beside `run_name` in the kernel's namespace means `papermill -f <params file>`.
PARAMS_SECTIONS = ("output_root", "toyworld", "pools", "models", "pool", "embed", "descriptors", "ofa", "subsets",
                   "evaluate", "report", "train")


def repo_root(start: str | Path | None = None) -> Path:
    """The nearest parent holding pyproject.toml and params/ (the kit's root)."""
    here = Path(start or os.getcwd()).resolve()
    for d in (here, *here.parents):
        if (d / "pyproject.toml").is_file() and (d / "params").is_dir():
            return d
    raise FileNotFoundError(f"no kit root (pyproject.toml + params/) above {here}")


def kernel_namespace() -> dict:
    """The IPython kernel's user namespace (the notebook's variables), {} outside IPython."""
    try:
        from IPython import get_ipython
    except ImportError:
        return {}
    return getattr(get_ipython(), "user_ns", None) or {}


def injected_params_sections(namespace: dict) -> list[str]:
    """Params-file sections present as variables in the kernel (papermill `-f params/x.yaml`), else []."""
    if "run_name" not in namespace:
        return []
    found = [k for k in PARAMS_SECTIONS if k in namespace]
    return ["run_name", *found] if found else []


def normalise_overrides(overrides: str | list[str] | tuple[str, ...] | None) -> list[str]:
    """`overrides` as a list: papermill's `-p overrides seed=7` passes one string, which is one override."""
    if overrides is None:
        return []
    if isinstance(overrides, str):
        return [overrides] if overrides.strip() else []
    if not isinstance(overrides, (list, tuple)) or not all(isinstance(o, str) for o in overrides):
        raise ParamsError(f"overrides must be a list of 'key.sub=value' strings (or one such string), got {overrides!r}")
    return list(overrides)


def start(params_file: str, overrides: str | list[str] | None = None, level: int = logging.INFO) -> Params:
    """chdir to the kit root (if inside a checkout), set up logging, load params (`overrides`: `key.sub=value`).

    Outside a checkout (the kit installed with pip, notebooks run by `gdo-repro run` from the package)
    the working directory stays: relative paths in the params are relative to where the run started.
    """
    namespace = kernel_namespace()
    injected = injected_params_sections(namespace)
    if injected:
        raise ParamsError(
            f"this notebook was given the sections of a params file as separate parameters ({', '.join(injected)}), "
            f"as `papermill -f params/<file>.yaml` does; the notebook reads its params only from `params_file` "
            f"(now {params_file!r}) and would run those instead. Use `papermill NB OUT -p params_file params/<file>.yaml`, "
            f"or `-f` a YAML holding `params_file:` and `overrides:`")
    overrides = normalise_overrides(overrides)
    if isinstance(namespace.get("overrides"), str):   # later cells pass `overrides` on (e.g. to a subprocess)
        namespace["overrides"] = overrides
    try:
        os.chdir(repo_root())
    except FileNotFoundError:
        pass
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    configure_logging(level)
    return load_params(params_file, overrides)
