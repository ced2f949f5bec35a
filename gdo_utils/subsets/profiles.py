"""Goal presets C_g (GDO_METHOD.md section 5 table) as validated YAML profiles.

A profile file is `params/profiles/<name>.yaml` (directory: `params.subsets.profiles_dir`, relative to
the kit root). Like lmms-eval task configs, a file may `include:` other files (a path or a list, relative
to the including file); included keys are defaults that the including file overrides. The shipped
`_default.yaml` is the documented template; files starting with "_" are templates, not profiles.
Every value is checked at load time (ranges, min <= max pairs); errors name the file and the field.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..config import Params, ParamsError, format_validation_error, read_yaml
from ..registry import default_profiles_dir

PROFILE_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_]*$")
MAX_INCLUDE_DEPTH = 8
DEFAULT_PROFILES_DIR = "params/profiles"


class ProfileError(ParamsError):
    """A profile file is missing or invalid; the message names the file and the field."""


class Profile(BaseModel):
    """One goal preset: budget rule, VDS-aware adjustment, composition constraints, oversampling."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    name: str
    description: str = ""
    min_count: int = Field(ge=0)
    max_count: int = Field(ge=1)
    min_ratio: float = Field(ge=0, le=1)
    max_ratio: float = Field(gt=0, le=1)
    strata_mult: float = Field(ge=0)
    coverage_mass: float = Field(gt=0, le=1)
    tail_target: float = Field(ge=0)
    vds3_target_positive: int = Field(ge=0)
    vds3_threshold: float
    vds3_max_mult: float = Field(ge=1)
    min_video_ratio: float = Field(ge=0, le=1)
    max_video_ratio: float = Field(ge=0, le=1)
    min_temporal_in_video_ratio: float = Field(ge=0, le=1)
    oversample: float = Field(ge=1)
    video_oversample: float = Field(ge=1)
    temporal_oversample: float = Field(ge=1)
    source_group_floor_topk: int = Field(ge=0)
    min_source_group_ratio: float = Field(ge=0, le=1)
    floor_frac_of_expected: float = Field(ge=0, le=1)
    paper_1x_size: int | None = Field(None, ge=1, description="1x size reported in the paper (reference only).")

    @model_validator(mode="after")
    def _ordered(self) -> "Profile":
        for lo, hi in (("min_count", "max_count"), ("min_ratio", "max_ratio"),
                       ("min_video_ratio", "max_video_ratio")):
            if getattr(self, lo) > getattr(self, hi):
                raise ValueError(f"{lo} ({getattr(self, lo)}) must be <= {hi} ({getattr(self, hi)})")
        if not PROFILE_NAME_RE.match(self.name):
            raise ValueError(f"name {self.name!r} must match {PROFILE_NAME_RE.pattern}")
        return self


def profiles_dir(params: Params) -> Path:
    """The profile directory: absolute, or relative to the cwd (the kit root), else to the kit checkout.

    The default `params/profiles` also falls back to the profiles installed with the package.
    """
    d = Path(params.subsets.profiles_dir).expanduser()
    if d.is_absolute():
        candidates = [d]
    else:
        candidates = [Path.cwd() / d, Path(__file__).resolve().parents[2] / d]
        if d == Path(DEFAULT_PROFILES_DIR):
            candidates.append(default_profiles_dir())  # the copy installed with the package
    for c in candidates:
        if c.is_dir():
            return c
    raise ProfileError(f"{params.source_file}: subsets.profiles_dir={params.subsets.profiles_dir!r} not found "
                       f"(looked in {[str(c) for c in candidates]})")


def available_profiles(directory: Path) -> list[str]:
    """Profile names in a directory (templates starting with '_' excluded), sorted."""
    return sorted(p.stem for p in Path(directory).glob("*.yaml") if not p.name.startswith("_"))


def _merged_tree(path: Path, depth: int = 0, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The file's mapping with its `include:`d files merged underneath (later includes win, file wins last)."""
    path = path.resolve()
    if path in seen or depth > MAX_INCLUDE_DEPTH:
        raise ProfileError(f"{path}: include cycle or nesting deeper than {MAX_INCLUDE_DEPTH}")
    try:
        tree = read_yaml(path)
    except ParamsError as exc:
        raise ProfileError(str(exc)) from None
    inc = tree.pop("include", None)
    includes = [inc] if isinstance(inc, str) else (inc or [])
    if not isinstance(includes, list) or not all(isinstance(i, str) for i in includes):
        raise ProfileError(f"{path}: include must be a file name or a list of file names")
    merged: dict[str, Any] = {}
    for i in includes:
        merged.update(_merged_tree(path.parent / i, depth + 1, seen + (path,)))
    merged.update(tree)
    return merged


def load_profile_file(path: str | Path) -> Profile:
    """Load and validate one profile file (the name defaults to the file stem)."""
    path = Path(path)
    if not path.is_file():
        raise ProfileError(f"profile file not found: {path}")
    tree = _merged_tree(path)
    tree.setdefault("name", path.stem)
    try:
        return Profile.model_validate(tree)
    except ValidationError as err:
        raise ProfileError(format_validation_error(err, str(path))) from None


def load_profile(params: Params, name: str) -> Profile:
    """The named profile from `params.subsets.profiles_dir`; unknown names list the available ones."""
    if not PROFILE_NAME_RE.match(name):
        raise ProfileError(f"profile name {name!r} must match {PROFILE_NAME_RE.pattern}")
    d = profiles_dir(params)
    path = d / f"{name}.yaml"
    if not path.is_file():
        raise ProfileError(f"profile {name!r} not found in {d}; available: {available_profiles(d)}")
    return load_profile_file(path)
