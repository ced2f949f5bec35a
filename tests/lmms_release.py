"""lmms-eval 0.5.0's own task functions, read from its PyPI wheel (the release vendors 0.5.0).

The wheel is fetched once with `pip download --no-deps lmms-eval==0.5.0` into a cache folder
(`$GDO_REPRO_CACHE`, else `~/.cache/gdo-repro`) and reused. lmms-eval itself is not installed or
imported: each task's `utils.py` is extracted beside its YAML files and executed as a module with
stand-ins for the imports it needs only for file I/O and logging (loguru, datasets,
`lmms_eval.tasks._task_utils.file_utils`). A failed download fails the test with the pip output:
this comparison is meant to run in CI, never to skip.
"""
from __future__ import annotations

import importlib.util
import logging
import os
import subprocess
import sys
import types
import zipfile
from pathlib import Path

import pytest

VERSION = "0.5.0"
WHEEL = f"lmms_eval-{VERSION}-py3-none-any.whl"
TASKS = ("mvbench", "videomme", "mlvu", "lvbench")


def cache_dir() -> Path:
    root = os.environ.get("GDO_REPRO_CACHE") or Path.home() / ".cache" / "gdo-repro"
    return Path(root) / f"lmms-eval-{VERSION}"


def wheel() -> Path:
    """The lmms-eval 0.5.0 wheel in the cache (downloaded with pip when absent)."""
    d = cache_dir()
    w = d / WHEEL
    if w.is_file():
        return w
    d.mkdir(parents=True, exist_ok=True)
    r = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
                        f"lmms-eval=={VERSION}", "-d", str(d)], capture_output=True, text=True, timeout=600)
    if r.returncode != 0 or not w.is_file():
        pytest.fail(f"could not download lmms-eval=={VERSION} from PyPI into {d} (the differential test needs it; "
                    f"pip exit {r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}", pytrace=False)
    return w


def task_folder(task: str) -> Path:
    """lmms_eval/tasks/<task>/ extracted from the wheel (utils.py reads its YAML files at import)."""
    out = cache_dir() / "extracted"
    folder = out / "lmms_eval" / "tasks" / task
    if not (folder / "utils.py").is_file():
        with zipfile.ZipFile(wheel()) as z:
            z.extractall(out, [n for n in z.namelist() if n.startswith(f"lmms_eval/tasks/{task}/")
                               or n == "lmms_eval/models/model_utils/reasoning_model_utils.py"])
    return folder


def _stubs() -> dict[str, types.ModuleType]:
    loguru = types.ModuleType("loguru")
    loguru.logger = logging.getLogger("lmms_eval_050")
    file_utils = types.ModuleType("lmms_eval.tasks._task_utils.file_utils")
    file_utils.generate_submission_file = lambda *a, **k: None
    datasets = types.ModuleType("datasets")
    datasets.Dataset = object
    return {"loguru": loguru, "lmms_eval": types.ModuleType("lmms_eval"),
            "lmms_eval.tasks": types.ModuleType("lmms_eval.tasks"),
            "lmms_eval.tasks._task_utils": types.ModuleType("lmms_eval.tasks._task_utils"),
            "lmms_eval.tasks._task_utils.file_utils": file_utils, "datasets": datasets}


def _exec(path: Path, name: str) -> types.ModuleType:
    mod = types.ModuleType(name)
    mod.__file__ = str(path)
    stubs = {k: v for k, v in _stubs().items() if k.startswith("lmms_eval") or importlib.util.find_spec(k) is None}
    saved = {k: sys.modules.get(k) for k in stubs}
    sys.modules.update(stubs)
    try:
        exec(compile(path.read_text(encoding="utf-8"), str(path), "exec"), mod.__dict__)
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
    return mod


def task_utils(task: str) -> types.ModuleType:
    """lmms-eval 0.5.0's `lmms_eval/tasks/<task>/utils.py` as a module."""
    if task not in TASKS:
        raise KeyError(task)
    return _exec(task_folder(task) / "utils.py", f"lmms_eval_050_{task}_utils")


def reasoning_utils() -> types.ModuleType:
    """lmms-eval 0.5.0's `parse_reasoning_model_answer` (the chat wrapper applies it to every reply)."""
    task_folder("mvbench")
    return _exec(cache_dir() / "extracted/lmms_eval/models/model_utils/reasoning_model_utils.py",
                 "lmms_eval_050_reasoning")


def task_yaml_kwargs(task: str, yaml_name: str) -> dict:
    """`lmms_eval_specific_kwargs.default` of one task YAML (the `!function` lines dropped, as utils.py does)."""
    import yaml

    lines = (task_folder(task) / yaml_name).read_text(encoding="utf-8").splitlines()
    data = yaml.safe_load("\n".join(x for x in lines if "!function" not in x)) or {}
    return dict((data.get("lmms_eval_specific_kwargs") or {}).get("default") or {})
