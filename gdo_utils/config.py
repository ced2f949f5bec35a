"""Pydantic models for the params files: one `Params` tree per run, loaded from YAML with safe_load.

Every stage reads its own section (`params.pool`, `params.descriptors`, ...). `load_params` applies
`--set a.b=value` overrides before validation, and `params_hash` gives a stable digest used to skip
stages whose outputs were made with the same settings.

Placeholders: params/paper.yaml ships real-data paths as strings starting with ``<FILL``. They load
fine (so the file can be validated and inspected) but `resolve_path` refuses them with the field name.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

PLACEHOLDER_PREFIX = "<FILL"
TOYWORLD_SCHEME = "toyworld:"
RUN_SCHEME = "run:"


class ParamsError(ValueError):
    """A params file (or an override) is invalid; the message names the file and the field."""


class UnfilledPathError(ParamsError):
    """A path in the params is still a `<FILL ...>` placeholder."""


class Strict(BaseModel):
    """Base for every params section: unknown keys are errors (typos must not pass silently)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


# ----------------------------------------------------------------------------- sources and models
PoolFormat = Literal["onevision", "llava_video", "llava_json", "visionflan"]


class PoolSource(Strict):
    """One annotation file of a pool. `path` may be `toyworld:<relative>` (resolved in the toy world)."""

    format: PoolFormat
    path: str
    media_root: str | None = Field(None, description="Directory media paths are relative to (default: the file's dir).")
    source: str | None = Field(None, description="data_source value for rows that do not carry one.")


class NamedPool(Strict):
    """A pool with a name: written to outputs/<run>/pools/<name>/ (the GDO pool goes to pool/)."""

    name: str
    sources: list[PoolSource]

    @field_validator("name")
    @classmethod
    def _safe_name(cls, v: str) -> str:
        if not v or not all(c.isalnum() or c in "-_." for c in v):
            raise ValueError(f"pool name {v!r} must be non-empty and use only letters, digits, '-', '_', '.'")
        return v


class PoolsConfig(Strict):
    gdo: list[PoolSource] = Field(default_factory=list, description="GDO candidate pool (OneVision + Video files).")
    ofa_source: NamedPool | None = None
    ofa_transfer: list[NamedPool] = Field(default_factory=list)


class VLMConfig(Strict):
    """The backbone: a local directory or a hub id (hub ids need the weights in the local HF cache)."""

    path: str = "Qwen/Qwen3-VL-8B-Instruct"
    dtype: Literal["float32", "bfloat16", "float16"] = "bfloat16"
    attn_implementation: str | None = None
    image_max_pixels: int = 50176
    video_max_pixels: int = 50176


class ClipConfig(Strict):
    """open_clip architecture + checkpoint file (None: the architecture's random init; demo builds a tiny one)."""

    arch: str = "ViT-B-32"
    checkpoint: str | None = None
    model_config_path: str | None = Field(None, description="open_clip JSON config for custom (tiny) archs.")


class ModelsConfig(Strict):
    vlm: VLMConfig = Field(default_factory=VLMConfig)
    clip: ClipConfig = Field(default_factory=ClipConfig)
    build_tiny: bool = Field(False, description="Build tiny offline models into outputs/<run>/models/ (demo).")


# ----------------------------------------------------------------------------- stages
class ToyWorldConfig(Strict):
    """The procedurally generated demo world (images, videos, pools). Sizes keep the demo to minutes."""

    enabled: bool = False
    seed: int = 1234
    image_size: int = 96
    video_size: int = 64
    n_onevision: int = 120
    n_llava_video: int = 48
    n_llava665k: int = 160
    n_visionflan: int = 120
    frames_per_video: int = 24
    static_video_ratio: float = Field(0.25, ge=0, le=1)
    multi_turn_ratio: float = Field(0.3, ge=0, le=1)
    mcq_ratio: float = Field(0.3, ge=0, le=1)
    text_only_ratio: float = Field(0.05, ge=0, le=1)
    video_as_mp4_ratio: float = Field(0.5, ge=0, le=1, description="Share of videos shipped as mp4 (rest as frame folders).")


class PoolStageConfig(Strict):
    max_frames: int = Field(32, ge=1, description="T: uniform subsampling of video frames.")
    check_media: bool = Field(True, description="Open every media file; unreadable ones go to quarantine.")
    workers: int = Field(2, ge=1, description="Processes reading files of different id namespaces at once "
                                              "(the image and the video file); output identical to one.")
    default_source: Literal["release", "file_stem"] = Field(
        "release", description="data_source of rows without one (and no `source` on the pool source): "
                               "release = the format's name (onevision / llava_video, as the release's "
                               "build_pair.py); file_stem = the annotation file's stem (kit option).")


class EmbedConfig(Strict):
    batch_size: int = Field(64, ge=1)
    frames_per_video: int = Field(8, ge=1, description="Frames (uniform) whose embeddings are averaged for a video.")
    part_rows: int = Field(2048, ge=1, description="Rows per resumable Parquet part.")


class DescriptorsConfig(Strict):
    batch_size: int = Field(8, ge=1)
    part_rows: int = Field(256, ge=1)
    motion_frames: int = Field(8, ge=2)
    motion_size: int = 224
    tnc_mode: Literal["llm", "regex"] = "llm"
    sc_samples: int = Field(5, ge=2)
    sc_top_p: float = 0.9
    sc_temperature: float = 0.8
    sc_max_new_tokens: int = 32
    coverage_features: Literal["clip", "standardized"] = "clip"
    coverage_k: int = Field(4096, ge=1)
    coverage_niter: int = Field(20, ge=1)
    coverage_init: Literal["faiss", "kmeans++"] = Field(
        "faiss", description="Coverage k-means initialisation: faiss's seeded sampling (K = 4096 in seconds) or "
                             "k-means++ on a 100k-row sample (K sequential passes; the release's MiniBatchKMeans "
                             "seeds with k-means++).")
    coverage_points_per_centroid: int = Field(256, ge=1, description="Training rows per centroid (faiss subsamples).")
    coverage_pca: int | None = Field(None, ge=1, description="Cluster in the top-N principal axes (None: full features).")
    max_frames_model: int = Field(32, ge=1, description="Frames given to the VLM (as an image sequence).")
    skip_model: bool = Field(False, description="Only cheap descriptors (motion); model ones left null.")
    max_pixels: int | None = Field(
        None, ge=1, description="Pixel cap per image/frame in the descriptor forward passes. None (release): the "
                                "processor's own range; an int (kit: 50176, the training cap) also clamps the "
                                "processor's minimum to it.")


class OFAConfig(Strict):
    k: int = Field(128, ge=2)
    kmeans_niter: int = Field(25, ge=1)
    core_ratio: float = Field(0.03, gt=0, le=1)
    core_min: int = Field(2, ge=1)
    val_ratio: float = Field(0.2, ge=0, lt=1)
    hidden: int = 256
    gate_hidden: int = 128
    dropout: float = 0.1
    alpha_init: float = 0.1
    fusion: Literal["gated", "static_gate", "no_interaction"] = "gated"
    lr: float = 1e-5
    weight_decay: float = 1e-4
    batch_size: int = 1024
    epochs: int = Field(100, ge=1)
    checkpoint_policy: Literal["target", "target_any", "last", "max_coverage"] = "target"
    target_macro_acc: float = Field(0.60, ge=0, le=1)
    budget_ratio: float = Field(0.15, gt=0, le=1)
    diversity: bool = Field(False, description="Optional exact k-DPP diversity stage inside each cluster.")
    dpp_block: int = Field(128, ge=2)


class UniformConfig(Strict):
    """Uni-10x baseline: a fixed size (paper: 512000) or a multiple of each profile's target (release: 10)."""

    size: int | None = Field(None, ge=1)
    multiplier: float | None = Field(10.0, gt=0)

    @model_validator(mode="after")
    def _one_of(self) -> "UniformConfig":
        if (self.size is None) == (self.multiplier is None):
            raise ValueError("set exactly one of uniform.size and uniform.multiplier")
        return self


class SubsetsConfig(Strict):
    """GDO goal-preset subsets (gdo_utils.subsets): profiles, uniform baseline, named release options.

    Budget for small pools (the demo): `budget_override` fixes the target of every profile (an int count,
    or a float ratio in (0, 1) of the pool); `ratio_scale` instead keeps each preset's own budget rule and
    multiplies its MIN_RATIO and MAX_RATIO (capped at 1), so profiles keep different sizes on a toy pool
    whose MIN_COUNT (12000+) would otherwise clamp every budget to floor(N * MAX_RATIO) of a few rows.
    """

    profiles: list[str] = Field(default_factory=lambda: ["minloss", "diverse", "temp", "temp_plus"])
    profiles_dir: str = "params/profiles"
    uniform: UniformConfig = Field(default_factory=UniformConfig)
    temporal_category: Literal["regex", "tnc"] = "regex"
    mcq_detection: Literal["before_collapse", "after_collapse"] = "after_collapse"
    per_video_cap: int = Field(8, ge=1)
    budget_override: int | float | None = Field(None, description="Fixed count (int) or ratio (float < 1) for every profile.")
    ablations: list[Literal["no_vds", "no_ppl", "no_sc", "no_vds_budget"]] = Field(default_factory=list)
    ratio_scale: float = Field(1.0, gt=0, description="Multiplies each preset's MIN_RATIO and MAX_RATIO (demo: small pools).")
    duration_frames: Literal["n_frames", "n_frames_total"] = Field(
        "n_frames", description="Frame count the duration stratum uses (spec: n_frames, after T-subsampling).")
    prompt_text: Literal["question_raw", "question"] = Field(
        "question_raw", description="User text written to train.jsonl (raw keeps MCQ option lines).")
    figures: bool = Field(True, description="Draw each subset's composition figure for its data card.")

    @field_validator("budget_override")
    @classmethod
    def _budget(cls, v: int | float | None) -> int | float | None:
        if v is None:
            return v
        if isinstance(v, bool):
            raise ValueError("budget_override must be a count (int >= 1) or a ratio (float in (0, 1))")
        if isinstance(v, int) and v < 1:
            raise ValueError(f"budget_override count must be >= 1, got {v}")
        if isinstance(v, float) and not 0.0 < v < 1.0:
            raise ValueError(f"budget_override ratio must be in (0, 1), got {v} (write a count as an int)")
        return v


class Params(Strict):
    """The whole params file."""

    run_name: str
    seed: int = 42
    output_root: str = "outputs"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    toyworld: ToyWorldConfig = Field(default_factory=ToyWorldConfig)
    pools: PoolsConfig = Field(default_factory=PoolsConfig)
    models: ModelsConfig = Field(default_factory=ModelsConfig)
    pool: PoolStageConfig = Field(default_factory=PoolStageConfig)
    embed: EmbedConfig = Field(default_factory=EmbedConfig)
    descriptors: DescriptorsConfig = Field(default_factory=DescriptorsConfig)
    ofa: OFAConfig = Field(default_factory=OFAConfig)
    subsets: SubsetsConfig = Field(default_factory=SubsetsConfig)

    # Where the params came from (not part of the hash).
    source_file: str | None = Field(None, exclude=True)

    @field_validator("run_name")
    @classmethod
    def _safe_run(cls, v: str) -> str:
        if not v or "/" in v or v.startswith("."):
            raise ValueError(f"run_name {v!r} must be a plain directory name")
        return v

    @property
    def run_dir(self) -> Path:
        return Path(self.output_root) / self.run_name

    @property
    def toyworld_dir(self) -> Path:
        return self.run_dir / "toyworld"

    def stage_dir(self, *parts: str) -> Path:
        return self.run_dir.joinpath(*parts)


# ----------------------------------------------------------------------------- loading
def _parse_scalar(text: str) -> Any:
    """Parse an override value the way YAML would (numbers, bools, null, lists), never eval."""
    return yaml.safe_load(text) if text.strip() else ""


def apply_override(tree: dict, assignment: str) -> None:
    """Apply one `a.b.c=value` override to a nested dict in place (creates missing dicts)."""
    if "=" not in assignment:
        raise ParamsError(f"override {assignment!r} must look like key.sub=value")
    key, value = assignment.split("=", 1)
    parts = [p for p in key.strip().split(".") if p]
    if not parts:
        raise ParamsError(f"override {assignment!r} has an empty key")
    node = tree
    for p in parts[:-1]:
        nxt = node.get(p)
        if nxt is None:
            nxt = node[p] = {}
        if not isinstance(nxt, dict):
            raise ParamsError(f"override {assignment!r}: {p!r} is not a section")
        node = nxt
    node[parts[-1]] = _parse_scalar(value)


def format_validation_error(err: ValidationError, source: str) -> str:
    """One line per problem: `file: field.path: message (got value)`."""
    lines = [f"{source}: invalid params ({err.error_count()} problem(s))"]
    for e in err.errors():
        loc = ".".join(str(x) for x in e["loc"]) or "<root>"
        got = e.get("input")
        got_s = "" if isinstance(got, dict) else f" (got {got!r})"
        lines.append(f"  {loc}: {e['msg']}{got_s}")
    return "\n".join(lines)


def read_yaml(path: str | Path) -> dict:
    """safe_load a YAML mapping; errors name the file."""
    p = Path(path)
    if not p.is_file():
        raise ParamsError(f"params file not found: {p}")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ParamsError(f"{p}: not valid YAML: {exc}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ParamsError(f"{p}: top level must be a mapping, got {type(data).__name__}")
    return data


def load_params(path: str | Path, overrides: list[str] | None = None) -> Params:
    """Load and validate a params file, applying `key.sub=value` overrides first."""
    tree = read_yaml(path)
    for ov in overrides or []:
        apply_override(tree, ov)
    return params_from_dict(tree, source=str(path))


def params_from_dict(tree: dict, source: str = "<dict>") -> Params:
    try:
        params = Params.model_validate(tree)
    except ValidationError as err:
        raise ParamsError(format_validation_error(err, source)) from None
    params.source_file = source
    return params


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)


def params_hash(params: Params | dict, section: str | list[str] | None = None) -> str:
    """Stable sha256 (16 hex) of the params, or of selected top-level sections (e.g. a stage's inputs)."""
    data = params.model_dump(mode="json") if isinstance(params, BaseModel) else dict(params)
    if section is not None:
        keys = [section] if isinstance(section, str) else list(section)
        data = {k: data.get(k) for k in keys}
    return hashlib.sha256(canonical_json(data).encode()).hexdigest()[:16]


def is_placeholder(value: str | None) -> bool:
    return isinstance(value, str) and value.strip().startswith(PLACEHOLDER_PREFIX)


def resolve_path(params: Params, value: str | None, field: str) -> Path:
    """Turn a params path into a real Path.

    `run:x` -> outputs/<run>/x (e.g. tiny models built for the demo); `toyworld:x` -> the run's toy
    world; `<FILL ...>` placeholders are refused with the field name.
    """
    if value is None:
        raise ParamsError(f"{params.source_file}: {field} is not set")
    if is_placeholder(value):
        raise UnfilledPathError(
            f"{params.source_file}: {field} is still the placeholder {value!r}. "
            f"Edit the params file (or pass --set {field}=/your/path) to point at your data."
        )
    if value.startswith(RUN_SCHEME):
        return params.run_dir / value[len(RUN_SCHEME):]
    if value.startswith(TOYWORLD_SCHEME):
        if not params.toyworld.enabled:
            raise ParamsError(f"{params.source_file}: {field}={value!r} uses the toy world but toyworld.enabled is false")
        return params.toyworld_dir / value[len(TOYWORLD_SCHEME):]
    return Path(value).expanduser()
