"""Pydantic models for the params files: one `Params` tree per run, loaded from YAML with safe_load.

Every stage reads its own section (`params.pool`, `params.descriptors`, ...). `load_params` applies
`--set a.b=value` overrides before validation, and `params_hash` gives a stable digest used to skip
stages whose outputs were made with the same settings.

Placeholders: params/paper.yaml ships real-data paths as strings starting with ``<FILL``. They load
fine (so the file can be validated and inspected) but `resolve_path` refuses them with the field name.
"""
from __future__ import annotations

import ast
import hashlib
import importlib.util
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

PLACEHOLDER_PREFIX = "<FILL"
TOYWORLD_SCHEME = "toyworld:"
RUN_SCHEME = "run:"
ENV_SCHEME = "env:"
# Benchmark names the evaluation registries hold (gdo_utils.evaluate.registry / .image.IMAGE_BENCHMARKS; a test
# keeps these equal): spelled here so params are checked at load time without importing the stages.
VIDEO_BENCHMARKS = ("mvbench", "videomme", "mlvu", "lvbench")
IMAGE_BENCHMARKS = ("mmbench_en", "mmbench_cn", "sqa_img", "pope", "mme", "gqa", "vqav2", "textvqa", "llava_wild",
                    "mmvet")


@lru_cache(maxsize=1)
def lr_scheduler_names() -> tuple[str, ...]:
    """transformers' SchedulerType values, read from its source (importing it would pull in torch at load time)."""
    spec = importlib.util.find_spec("transformers")
    if spec is None or not spec.submodule_search_locations:
        return ()
    src = Path(list(spec.submodule_search_locations)[0]) / "trainer_utils.py"
    for node in ast.parse(src.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.ClassDef) and node.name == "SchedulerType":
            return tuple(n.value.value for n in node.body
                         if isinstance(n, ast.Assign) and isinstance(n.value, ast.Constant) and isinstance(n.value.value, str))
    return ()


def _pixel_range(section: str, lo: int, hi: int) -> None:
    if lo > hi:
        raise ValueError(f"{section}: min_pixels ({lo}) > max_pixels ({hi}): every image would be resized outside "
                         "the range")


def _known(values: list[str], known: tuple[str, ...], what: str) -> list[str]:
    bad = [v for v in values if v not in known]
    if bad:
        raise ValueError(f"unknown {what} {bad}; known: {list(known)}")
    return values


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


class PretrainStage(Strict):
    """One curriculum stage of the base model: its rows and its own training overrides."""

    corpus: str | list[str] = Field(description="Rows of this stage (training-file layout, media relative to the toy "
                                    "world); several files are trained together, shuffled, each keeping its share "
                                    "of the held-out rows.")
    train: dict[str, Any] = Field(default_factory=dict, description="Overrides of the train section for this "
                                  "stage (validated as the train section).")

    @field_validator("corpus")
    @classmethod
    def _some_corpus(cls, v: str | list[str]) -> str | list[str]:
        if isinstance(v, list) and not v:
            raise ValueError("a curriculum stage needs at least one corpus file")
        return v


class PretrainConfig(Strict):
    """Teach the tiny demo VLM the toy world before any selection run (gdo_utils.pretrain; build_tiny only)."""

    enabled: bool = Field(False, description="Train the tiny VLM on the base corpus; the result is models.vlm.path.")
    curriculum: list[PretrainStage] = Field(default_factory=list, description="Stages trained in order before the "
                                            "corpus, each from the previous one's weights (empty: the corpus only).")
    corpus: str = Field("toyworld:base_corpus/corpus.jsonl", description="Rows the base model is trained on.")
    held_out: int = Field(100, ge=1, description="Last rows of the corpus kept out of training, to measure learning.")
    train: dict[str, Any] = Field(default_factory=dict, description="Overrides of the train section for this "
                                  "one run (learning rate, epochs, batch size; validated as the train section).")


class ModelsConfig(Strict):
    vlm: VLMConfig = Field(default_factory=VLMConfig)
    clip: ClipConfig = Field(default_factory=ClipConfig)
    build_tiny: bool = Field(False, description="Build tiny offline models into outputs/<run>/models/ (demo).")
    tiny_corpus: str = Field("toyworld:tokenizer_corpus.json",
                             description="JSON list of texts the tiny tokenizer is trained on (build_tiny only).")
    tiny_layers: int = Field(2, ge=1, description="Language-model layers of the tiny Qwen3-VL (build_tiny only; 2: "
                                                  "the demo). bench/README.md: 4 did not bind colours to shapes better.")
    tiny_hidden: int = Field(64, ge=16, description="Language-model width of the tiny Qwen3-VL (build_tiny only; 64: "
                                                     "the demo; the vision tower's output width follows it).")
    pretrain: PretrainConfig = Field(default_factory=PretrainConfig)


# ----------------------------------------------------------------------------- stages
class ToyWorldConfig(Strict):
    """The procedurally generated demo world (images, videos, pools). Sizes keep the demo to minutes."""

    enabled: bool = False
    seed: int = 1234
    image_size: int = Field(96, ge=8)
    video_size: int = Field(64, ge=8)
    n_onevision: int = Field(120, ge=0)
    n_llava_video: int = Field(48, ge=0)
    n_llava665k: int = Field(160, ge=0)
    n_visionflan: int = Field(120, ge=0)
    frames_per_video: int = Field(24, ge=2)
    static_video_ratio: float = Field(0.25, ge=0, le=1)
    multi_turn_ratio: float = Field(0.3, ge=0, le=1)
    mcq_ratio: float = Field(0.3, ge=0, le=1)
    text_only_ratio: float = Field(0.05, ge=0, le=1)
    video_as_mp4_ratio: float = Field(0.5, ge=0, le=1, description="Share of videos shipped as mp4 (rest as frame folders).")
    image_bench_size: int = Field(8, ge=1, description="Images per toy image benchmark (MMBench / POPE / VQAv2 style).")
    bench_questions_per_task: int = Field(4, ge=1, description="Toy benchmarks: questions per MVBench subtask / MLVU "
                                          "task type, videos of VideoMME and LVBench.")
    n_base_corpus: int = Field(0, ge=0, description="QA rows of the base model's corpus (held-out still images and "
                               "static clips; docs/toyworld.md). 0: none written.")
    base_corpus_static_ratio: float = Field(0.15, ge=0, le=1, description="Share of base-corpus rows on static clips.")
    base_corpus_mcq_ratio: float = Field(0.6, ge=0, le=1, description="Share of base-corpus rows asked as lettered "
                                         "multiple choice (the rest: short open answers).")
    base_skills: dict[Literal["kind", "colour_named", "letter"], int] = Field(
        default_factory=dict, description="Rows of each skill drill written to base_corpus/<skill>.jsonl (the base "
        "model's curriculum: kind = name a lone shape, colour_named = colour of the named shape, letter = pick "
        "the option's letter of an answer given in words, no image). Empty: none.")
    base_corpus_skill_ratio: float = Field(0.0, ge=0, le=1, description="Share of base-corpus rows that are drills "
                                           "of base_skills (drawn evenly), so the curriculum's skills stay in the "
                                           "mix. 0: none (the corpus as before).")
    shape_fraction: float | None = Field(None, gt=0, le=1, description="Side of every drawn shape as a fraction of "
                                         "its 3x3 grid cell (0.875: 28 px at 96 px). None: the demo's max(8, size // 6).")

    @model_validator(mode="after")
    def _skills(self) -> "ToyWorldConfig":
        bad = {k: v for k, v in self.base_skills.items() if v < 0}
        if bad:
            raise ValueError(f"base_skills: rows must be >= 0, got {bad}")
        if self.base_corpus_skill_ratio > 0 and not self.base_skills:
            raise ValueError("base_corpus_skill_ratio > 0 needs base_skills (the drills to mix into the corpus)")
        return self


class PoolStageConfig(Strict):
    max_frames: int = Field(32, ge=1, description="T: uniform subsampling of video frames.")
    check_media: bool = Field(True, description="Open every media file; unreadable ones go to quarantine.")
    workers: int = Field(2, ge=1, description="Processes reading files of different id namespaces at once "
                                              "(the image and the video file): this one and workers - 1 "
                                              "more; output identical to one.")
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
    motion_size: int = Field(224, ge=1)
    tnc_mode: Literal["llm", "regex"] = "llm"
    tnc_reply_rule: Literal["containment", "first_word"] = Field(
        "containment", description="A TNC reply naming both words: containment (release: Temporal wins) or "
                                   "first_word (the word that comes first).")
    sc_samples: int = Field(5, ge=2)
    sc_top_p: float = Field(0.9, gt=0, le=1)
    sc_temperature: float = Field(0.8, gt=0)
    sc_max_new_tokens: int = Field(32, ge=1)
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
    hidden: int = Field(256, ge=1)
    gate_hidden: int = Field(128, ge=1)
    dropout: float = Field(0.1, ge=0, lt=1)
    alpha_init: float = 0.1
    fusion: Literal["gated", "static_gate", "no_interaction"] = "gated"
    selector_input: Literal["unit", "joint_halves"] = Field(
        "unit", description="Selector inputs: unit-norm v_img and v_txt (OFA_METHOD.md step 4) or the two halves "
                            "of the joint vector (each divided by sqrt 2, so the interaction term is halved).")
    lr: float = Field(1e-5, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    batch_size: int = Field(1024, ge=1)
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


Behaviour = Literal["release", "kit"]

# Each behaviour option of the subset builder and its value under `subsets.behaviour` (docs/departures.md
# section 2; gdo_utils/subsets/behaviour.py says what each one changes). An option set
# explicitly in the params wins over the switch.
BEHAVIOUR_OPTIONS: dict[str, dict[str, str]] = {
    "floor_candidates": {"release": "capped", "kit": "pool"},
    "quota_fill": {"release": "stratum_order", "kit": "score_order"},
    "rounding": {"release": "float", "kit": "tolerance"},
    "z_std": {"release": "sample", "kit": "population"},
    "temporal_oversample_on": {"release": "temporal_mixed", "kit": "temporal"},
    "tie_order": {"release": "first_seen", "kit": "sorted"},
    "group_floor_fill": {"release": "group_by_group", "kit": "score_order"},
    "per_video_cap_on": {"release": "video", "kit": "all"},
    "metric_stats_over": {"release": "metrics", "kit": "pool"},
    "tie_numbers": {"release": "python_random", "kit": "pcg64"},
    "candidate_ties": {"release": "stream", "kit": "tie_number"},
    "descriptor_presence": {"release": "row", "kit": "values"},
}


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
    ablations: list[str] = Field(
        default_factory=list, description="Temp+ ablations to build: one of no_vds, no_ppl, no_sc, no_vds_budget, "
                                          "or several joined by '+' (the paper's 'w/o VDS/PPL/SC': no_vds+no_ppl+no_sc).")
    ratio_scale: float = Field(1.0, gt=0, description="Multiplies each preset's MIN_RATIO and MAX_RATIO (demo: small pools).")
    duration_frames: Literal["n_frames", "n_frames_total"] = Field(
        "n_frames", description="Frame count the duration stratum uses (spec: n_frames, after T-subsampling).")
    prompt_text: Literal["question_raw", "question"] = Field(
        "question_raw", description="User text written to train.jsonl (raw keeps MCQ option lines).")
    figures: bool = Field(True, description="Draw each subset's composition figure for its data card.")
    allow_no_descriptors: bool = Field(
        False, description="Build subsets when the run has no descriptors at all (every video then carries the "
                           "no-metrics penalty); otherwise that is an error.")
    behaviour: Behaviour = Field(
        "release", description="release: every option below takes the GDO release's behaviour (id for id); "
                               "kit: the kit's choices. An option set explicitly wins.")
    floor_candidates: Literal["capped", "pool"] | None = Field(
        None, description="Floor stages draw from the per-stratum capped candidates (release) or the whole pool.")
    quota_fill: Literal["stratum_order", "score_order"] | None = Field(
        None, description="Stratum quotas filled stratum by stratum in first-seen order (release) or in one "
                          "global score-ordered walk.")
    rounding: Literal["float", "tolerance"] | None = Field(
        None, description="ceil/floor of products in plain floating point (release: floor(100000*0.018) = 1799) "
                          "or with a 1e-9 tolerance (1800).")
    z_std: Literal["sample", "population"] | None = Field(
        None, description="Standard deviation of the level-2 z-scores: sample (release) or population.")
    temporal_oversample_on: Literal["temporal_mixed", "temporal"] | None = Field(
        None, description="TEMPORAL_OVERSAMPLE applies to Temporal and Mixed video strata (release) or Temporal only.")
    tie_order: Literal["first_seen", "sorted"] | None = Field(
        None, description="Quota remainder ties and top-K source-group ties in first-seen order (release) or "
                          "sorted label order.")
    group_floor_fill: Literal["group_by_group", "score_order"] | None = Field(
        None, description="Source-group floors filled group by group in most-common order (release) or in one "
                          "score-ordered walk.")
    per_video_cap_on: Literal["video", "all"] | None = Field(
        None, description="The per-video cap counts short-video rows only (release) or every row.")
    metric_stats_over: Literal["metrics", "pool"] | None = Field(
        None, description="z statistics and the VDS-positive share over every descriptor row (release: all of "
                          "metrics.jsonl) or over the pool's rows.")
    tie_numbers: Literal["python_random", "pcg64"] | None = Field(
        None, description="Ties (and the uniform reservoir) from the release's random.Random(seed) stream or "
                          "numpy PCG64.")
    candidate_ties: Literal["stream", "tie_number"] | None = Field(
        None, description="Per-stratum candidate caps kept as the release's stream (a row enters a full list only "
                          "with a strictly higher score) or as the top-cap rows by (score, tie).")
    descriptor_presence: Literal["row", "values"] | None = Field(
        None, description="A video has descriptors when it has a descriptor row (release) or a row with a value.")

    def uniform_name(self, profile: str) -> str:
        """The uniform baseline's subset name: one shared `uniform` (fixed size) or `uniform_<profile>` (multiplier)."""
        return "uniform" if self.uniform.size is not None else f"uniform_{profile}"

    def option(self, name: str) -> str:
        """The effective value of a behaviour option: set explicitly, else the `behaviour` switch's value."""
        if name not in BEHAVIOUR_OPTIONS:
            raise KeyError(f"unknown behaviour option {name!r}; known: {sorted(BEHAVIOUR_OPTIONS)}")
        v = getattr(self, name)
        return v if v is not None else BEHAVIOUR_OPTIONS[name][self.behaviour]

    def behaviour_options(self) -> dict[str, str]:
        """Every behaviour option with its effective value."""
        return {k: self.option(k) for k in BEHAVIOUR_OPTIONS}

    @field_validator("ablations")
    @classmethod
    def _ablations(cls, v: list[str]) -> list[str]:
        known = ("no_vds", "no_ppl", "no_sc", "no_vds_budget")  # gdo_utils.score.ABLATIONS
        bad = [a for a in v if not a or any(part not in known for part in a.split("+"))]
        if bad:
            raise ValueError(f"unknown ablation(s) {bad}: each is one of {list(known)} or several joined by '+'")
        return v

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


class BenchmarkData(Strict):
    """Where one benchmark's files are: its annotation file/folder and its video folder (see gdo_utils.evaluate)."""

    annotations: str
    media_root: str
    limit: int | None = Field(None, ge=1, description="Evaluate only the first N questions (smoke runs).")


class ImageSuiteConfig(Strict):
    """OFA image suite: which image benchmarks (paths in evaluate.data), which runs, the image input contract.

    Defaults are the release's lmms-eval run (chat Qwen3-VL wrapper, images at 200704..602112 px, each
    task's own max_new_tokens); the suite is off until `benchmarks` names some.
    """

    benchmarks: list[str] = Field(default_factory=list, description="Image benchmarks (C3 names), paths in evaluate.data.")
    runs: list[str] = Field(default_factory=list, description="Training runs to score; empty: every ofa_* run.")
    checkpoints: Literal["final", "all"] = Field("final", description="final: the finished model (OFA tables); all: every checkpoint.")
    min_pixels: int = Field(200704, ge=1)
    max_pixels: int = Field(602112, ge=1)
    max_new_tokens: int | None = Field(None, ge=1, description="Cap on each task's own max_new_tokens (None: the task's).")

    @field_validator("benchmarks")
    @classmethod
    def _benchmarks(cls, v: list[str]) -> list[str]:
        return _known(v, IMAGE_BENCHMARKS, "image benchmark(s)")

    @model_validator(mode="after")
    def _pixels(self) -> "ImageSuiteConfig":
        _pixel_range("evaluate.image", self.min_pixels, self.max_pixels)
        return self


class LmmsEvalConfig(Strict):
    """`gdo-repro evaluate --engine lmms-eval`: how the accelerate launch command is built."""

    num_processes: int = Field(8, ge=1)
    model: str = Field("qwen3_vl", description="lmms-eval --model (the release: qwen3_vl, chat wrapper).")
    python: str = Field("python", description="Interpreter whose environment has lmms-eval (may be another venv).")
    batch_size: int = Field(1, ge=1)
    include_path: str | None = Field(None, description="Extra task folder (--include_path), e.g. the toy tasks.")
    tasks: dict[str, str] = Field(default_factory=dict, description="lmms-eval task per benchmark name, overriding "
                                  "the default names, e.g. {mvbench: kit_mvbench, pope: kit_pope} for the folders "
                                  "`gdo-repro evaluate --write-lmms-tasks DIR` writes.")


class EvaluateConfig(Strict):
    """Video benchmark evaluation (gdo_utils.evaluate): the frozen eval contract, the policies, the data paths.

    Defaults are the release's lmms-eval run (chat Qwen3-VL wrapper): fps 1, 4..32 frames (even),
    200704..602112 pixels per frame, greedy, 16 new tokens, the lmms-eval 0.5.0 answer extractors.
    """

    benchmarks: list[str] = Field(default_factory=lambda: ["mvbench", "videomme", "mlvu", "lvbench"])
    data: dict[str, BenchmarkData] = Field(default_factory=dict, description="Per benchmark name: annotations + media_root.")
    extraction: Literal["release", "robust"] = Field(
        "release", description="release: each benchmark's lmms-eval 0.5.0 extractor; robust: the kit's parser.")
    missing_video: Literal["wrong", "exclude"] = Field(
        "wrong", description="Questions whose video is missing/undecodable: counted wrong, or dropped from the denominator.")
    fps: float = Field(1.0, gt=0)
    min_frames: int = Field(4, ge=2)
    max_frames: int = Field(32, ge=2)
    min_pixels: int = Field(200704, ge=1)
    max_pixels: int = Field(602112, ge=1)
    max_new_tokens: int = Field(16, ge=1)
    system_prompt: str | None = Field(
        None, description="None: no system turn (the release's lmms-eval 0.5.0 chat wrapper); a text: a system turn "
                          "with it, e.g. 'You are a helpful assistant.' (what lmms-eval 0.7.x's qwen3_vl always sends).")
    mvbench_input: Literal["segments", "main_bound"] = Field(
        "segments", description="MVBench bound subtasks: segments = lmms-eval's pre-trimmed `video` revision "
                                "(the release); main_bound = main-branch videos cut by each row's start/end.")
    batch_size: int = Field(8, ge=1)
    attn_implementation: Literal["sdpa", "flash_attention_2", "eager"] | None = Field(
        None, description="Attention kernel of the evaluated models (None: models.vlm.attn_implementation); "
                          "the release evaluates with flash_attention_2.")
    part_rows: int = Field(64, ge=1, description="Logged questions per resumable Parquet part.")
    runs: list[str] = Field(default_factory=list, description="Training runs (subset names under outputs/<run>/train/) "
                            "to evaluate; empty: every run folder found.")
    base_model: bool = Field(True, description="Also evaluate the untrained base model (samples_seen 0).")
    image: "ImageSuiteConfig" = Field(default_factory=lambda: ImageSuiteConfig(),
                                      description="OFA image suite (gdo_utils.evaluate.image), issue 14.")
    lmms_eval: "LmmsEvalConfig" = Field(default_factory=lambda: LmmsEvalConfig(),
                                        description="lmms-eval as a second engine (gdo_utils.evaluate.lmms).")

    @field_validator("benchmarks")
    @classmethod
    def _benchmarks(cls, v: list[str]) -> list[str]:
        return _known(v, VIDEO_BENCHMARKS, "video benchmark(s) (image ones go in evaluate.image.benchmarks)")

    @model_validator(mode="after")
    def _ranges(self) -> "EvaluateConfig":
        if self.min_frames > self.max_frames or self.min_pixels > self.max_pixels:
            raise ValueError("evaluate: min_frames <= max_frames and min_pixels <= max_pixels are required")
        return self


PUBLISHED_POOLS = ("LLaVA-665K", "Vision-Flan-186K")
DEFAULT_TEMPORAL_SUBTASKS = [
    "mvbench:character_order", "mvbench:counterfactual_inference", "mvbench:moving_count", "mvbench:state_change",
    "videomme:Temporal Perception", "mlvu:order", "mlvu:plotQA", "mlvu:sportsQA"]


class ReportProfile(Strict):
    """Which trained subset is a GDO profile, and which is its "Uni-10x" baseline."""

    subset: str
    uniform: str | None = Field(None, description="Uni-10x subset (None: 'uniform' when subsets.uniform.size is set, "
                                                  "else 'uniform_<subset>', the names gdo_utils.subsets writes).")


class ReportOFAPool(Strict):
    """The OFA subsets of one kit pool and the published pool they are compared with."""

    published: Literal["LLaVA-665K", "Vision-Flan-186K"] | None = None
    subset: str | None = Field(None, description="The 15% selection (None: ofa_<pool>).")
    random: str | None = Field(None, description="The random baseline (None: ofa_random_<pool>).")
    full: str | None = Field(None, description="The full-data reference of Rel (None: ofa_full_<pool>).")


class ReportSweepConfig(Strict):
    """`gdo-repro report --sweep`: the OFA selection over k x budget_ratio (training + evaluation when asked)."""

    k: list[int] = Field(default_factory=lambda: [64, 128, 256])
    budget_ratio: list[float] = Field(default_factory=lambda: [0.05, 0.10, 0.15, 0.20, 0.30])
    train_eval: bool = Field(False, description="Also write each grid point's selection as a training subset "
                                                "(ofa_sweep_k<K>_r<R>_<pool>), fine-tune on it (train recipe) and "
                                                "score it on the image suite, so Rel is filled per grid point.")

    @field_validator("k")
    @classmethod
    def _k(cls, v: list[int]) -> list[int]:
        if not v or any(x < 2 for x in v):
            raise ValueError(f"sweep k values must be >= 2 (and at least one), got {v}")
        return v

    @field_validator("budget_ratio")
    @classmethod
    def _ratios(cls, v: list[float]) -> list[float]:
        if not v or any(not 0 < x <= 1 for x in v):
            raise ValueError(f"sweep budget ratios must be in (0, 1] (and at least one), got {v}")
        return v


class ReportConfig(Strict):
    """gdo_utils.report: which subsets fill which rows of the papers' tables, and the OFA sweep grid."""

    mode: Literal["auto", "reference", "run"] = Field(
        "auto", description="reference: published numbers only; run: the run's trajectory beside them; auto: run "
                            "when outputs/<run>/eval/trajectory.parquet exists, else reference.")
    main_profile: str = Field("Temp+", description="The profile whose subset is 'GDO' in the main table and curves.")
    profiles: dict[str, ReportProfile] = Field(default_factory=lambda: {
        "MinLoss": ReportProfile(subset="minloss"), "Diverse": ReportProfile(subset="diverse"),
        "Temp": ReportProfile(subset="temp"), "Temp+": ReportProfile(subset="temp_plus")})
    ablations: dict[str, str] = Field(default_factory=lambda: {
        "Temp+": "temp_plus", "Temp+ w/o VDS": "temp_plus_no_vds", "Temp+ w/o PPL": "temp_plus_no_ppl",
        "Temp+ w/o SC": "temp_plus_no_sc", "Temp+ w/o VDS/PPL/SC": "temp_plus_no_vds_no_ppl_no_sc"})
    ofa_pools: dict[str, ReportOFAPool] = Field(default_factory=dict, description="Keyed by kit pool name.")
    temporal_subtasks: list[str] = Field(
        default_factory=lambda: list(DEFAULT_TEMPORAL_SUBTASKS),
        description="benchmark:subtask keys the temporal-gains table ranks (default: the subtasks the paper's table shows).")
    sweep: ReportSweepConfig = Field(default_factory=ReportSweepConfig)

    @model_validator(mode="after")
    def _main(self) -> "ReportConfig":
        if self.main_profile not in self.profiles:
            raise ValueError(f"main_profile {self.main_profile!r} is not one of profiles {sorted(self.profiles)}")
        bad = [t for t in self.temporal_subtasks if ":" not in t]
        if bad:
            raise ValueError(f"temporal_subtasks entries must be 'benchmark:subtask', got {bad}")
        return self


# ----------------------------------------------------------------------------- training (gdo_utils.train)
class FreezeConfig(Strict):
    """Which parts stay frozen (release: nothing; the vision tower includes the deepstack mergers)."""

    vision_tower: bool = False
    projector: bool = False
    llm: bool = False


class LoraConfig(Strict):
    """LoRA through peft on the LLM's linear layers; the projector stays fully trained (OFA LLaVA-1.5 recipe)."""

    enabled: bool = False
    r: int = Field(128, ge=1)
    alpha: int = Field(256, ge=1)
    dropout: float = Field(0.05, ge=0, lt=1)


class LaunchConfig(Strict):
    """How `gdo-repro train` starts the workers: an accelerate config from params/accelerate/ + the cluster."""

    config: str = Field("cpu_1proc", description="Name in params/accelerate/ (or a path to a YAML file).")
    configs_dir: str = "params/accelerate"
    nnodes: int = Field(1, ge=1)
    node_rank: int = Field(0, ge=0)
    master_addr: str = "127.0.0.1"
    master_port: int = Field(29500, ge=1, le=65535)
    in_process: bool = Field(True, description="Run a 1-process, 1-node config inside this process (no relaunch).")
    prepare_timeout_s: float = Field(7200, gt=0, description="Multi-node: how long a node other than node 0 waits "
                                     "for node 0 to prepare the run folder (its data/prepare.json marker).")


class TrainConfig(Strict):
    """Fine-tuning: a named recipe (train.recipe, gdo_utils.train.recipes) + explicit keys; only the subset changes."""

    runs: list[str] = Field(default_factory=list, description="Subset names (C1) to train, one run each.")
    recipe: str = Field("gdo_msswift", description="Recipe preset (params/recipes/<name>.yaml) every run starts from.")
    run_overrides: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Per-subset keys on top of the run's recipe, e.g. {recipe: llava15_lora}.")
    base_model: str | None = Field(None, description="Model to fine-tune (None: models.vlm.path).")
    load_dtype: Literal["float32", "bfloat16"] = Field("float32", description="Weights dtype (fp32 masters; bf16 autocast).")
    learning_rate: float = Field(2e-5, gt=0)
    projector_lr: float | None = Field(None, gt=0, description="Own learning rate for the projector (OFA LoRA: 2e-5).")
    adam_beta1: float = 0.9
    adam_beta2: float = Field(0.95, description="ms-swift default (HF's is 0.999).")
    adam_epsilon: float = 1e-8
    weight_decay: float = Field(0.01, ge=0)
    warmup_ratio: float = Field(0.1, ge=0, lt=1)
    lr_scheduler: str = "cosine"
    max_grad_norm: float = Field(1.0, gt=0)
    num_epochs: int = Field(1, ge=1)
    per_device_batch_size: int = Field(1, ge=1)
    grad_accum: int = Field(1, ge=1)
    global_batch: int | None = Field(None, ge=1, description="When set, the accumulation is global_batch / "
                                     "(per-device batch x processes) and must divide evenly (LLaVA-1.5: 128).")
    seed: int = 42
    data_seed: int = Field(42, description="Shuffle seed (release --data_seed 42).")
    eval_ratio: float = Field(0.001, ge=0, lt=1, description="Held-out share for eval loss (ceil, >= 1 row when > 0).")
    checkpoint_fractions: list[float] = Field(default_factory=lambda: [0.25, 0.5, 0.75, 1.0])
    eval_fractions: list[float] | None = Field(None, description="Held-out loss points (None: at the checkpoints).")
    video_input: Literal["frames", "video"] = Field("frames", description="frames: <= 32 images, no timestamps (release).")
    default_video_fps: float = Field(2.0, gt=0, description="fps for video rows without video_fps (video input).")
    max_pixels: int = Field(50176, ge=1, description="Per image / frame (49 tokens at patch 16, merge 2).")
    min_pixels: int = Field(4096, ge=1, description="Per image / frame (qwen-vl-utils IMAGE_MIN_TOKEN_NUM=4).")
    max_length: int = Field(8192, ge=16)
    over_length: Literal["drop", "truncate"] = Field("drop", description="drop (release 'delete') or cut the end.")
    strict: bool = Field(False, description="Stop at the first bad row instead of skipping and counting it.")
    text_only_batches: Literal["dummy_image", "none"] = Field(
        "dummy_image", description="Run the vision tower on a masked dummy image when a batch has no media.")
    bf16: Literal["auto", "true", "false"] = "auto"
    gradient_checkpointing: bool = True
    attn_implementation: Literal["sdpa", "flash_attention_2", "eager"] | None = None
    liger: bool = Field(False, description="Liger kernels (GPU only).")
    group_by_length: bool = Field(False, description="Length-grouped batches (GPU speed option).")
    group_by_modality: bool = Field(False, description="LLaVA's group_by_modality_length: batches of media rows and "
                                    "of text-only rows formed apart, each grouped by length.")
    dataloader_workers: int = Field(8, ge=0)
    save_only_model: bool = Field(False, description="Release: optimizer states are saved too.")
    freeze: FreezeConfig = Field(default_factory=FreezeConfig)
    lora: LoraConfig = Field(default_factory=LoraConfig)
    launch: LaunchConfig = Field(default_factory=LaunchConfig)

    @model_validator(mode="after")
    def _overrides_valid(self) -> "TrainConfig":
        for name, over in self.run_overrides.items():
            bad = {"runs", "run_overrides"} & set(over)
            if bad:
                raise ValueError(f"run_overrides.{name}: {sorted(bad)} cannot be overridden per run")
            try:
                TrainConfig.model_validate({**self.model_dump(exclude={"run_overrides"}), **over})
            except ValidationError as err:
                raise ValueError(f"run_overrides.{name}: {err.errors()[0]['loc']}: {err.errors()[0]['msg']}") from None
        return self

    @field_validator("lr_scheduler")
    @classmethod
    def _scheduler(cls, v: str) -> str:
        known = lr_scheduler_names()
        if known and v not in known:
            raise ValueError(f"unknown lr_scheduler {v!r}; transformers' SchedulerType has {list(known)}")
        return v

    @model_validator(mode="after")
    def _pixels(self) -> "TrainConfig":
        _pixel_range("train", self.min_pixels, self.max_pixels)
        return self

    @field_validator("checkpoint_fractions", "eval_fractions")
    @classmethod
    def _fractions(cls, v: list[float] | None) -> list[float] | None:
        if v is None:
            return v
        if not v or any(not 0 < f <= 1 for f in v) or sorted(set(v)) != list(v):
            raise ValueError(f"fractions must be increasing, unique and in (0, 1], got {v}")
        return v


class AssembleLlavaConfig(Strict):
    """The OFA starting model's three parts (gdo-repro assemble-llava): LLaVA-1.5 stage 2 starts from them."""

    vision_tower: str | None = Field(None, description="CLIP ViT-L/14-336 (local dir or cached hub id).")
    language_model: str | None = Field(None, description="Vicuna-7B-v1.5 (local dir or cached hub id).")
    projector: str | None = Field(None, description="Stage-1 mm_projector.bin / .safetensors (original LLaVA keys).")
    out: str = Field("run:models/llava15_stage2_start", description="Folder the assembled model is written to.")
    dtype: Literal["float16", "bfloat16", "float32"] = Field("float16", description="Saved weights (Vicuna ships fp16).")


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
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)
    report: ReportConfig = Field(default_factory=ReportConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    assemble_llava: AssembleLlavaConfig = Field(default_factory=AssembleLlavaConfig)

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
    return _unshared(data)


def _unshared(obj: Any) -> Any:
    """A copy in which YAML aliases (`*anchor`) are separate objects, so a --set on one run changes that run only."""
    if isinstance(obj, dict):
        return {k: _unshared(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_unshared(v) for v in obj]
    return obj


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
    world; `env:VAR` -> the path in environment variable VAR (params/release.yaml); `<FILL ...>` placeholders are refused with the field name.
    """
    if value is None:
        raise ParamsError(f"{params.source_file}: {field} is not set")
    if is_placeholder(value):
        raise UnfilledPathError(
            f"{params.source_file}: {field} is still the placeholder {value!r}. "
            f"Edit the params file (or pass --set {field}=/your/path) to point at your data."
        )
    if value.startswith(ENV_SCHEME):
        var = value[len(ENV_SCHEME):]
        got = os.environ.get(var, "")
        if not got:
            raise UnfilledPathError(f"{params.source_file}: {field}={value!r} reads the environment variable {var}, "
                                    f"which is not set (export {var}=/your/path)")
        return Path(got).expanduser()
    if value.startswith(RUN_SCHEME):
        return params.run_dir / value[len(RUN_SCHEME):]
    if value.startswith(TOYWORLD_SCHEME):
        if not params.toyworld.enabled:
            raise ParamsError(f"{params.source_file}: {field}={value!r} uses the toy world but toyworld.enabled is false")
        return params.toyworld_dir / value[len(TOYWORLD_SCHEME):]
    return Path(value).expanduser()
