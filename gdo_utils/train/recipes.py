"""Named training recipes (params/recipes/*.yaml, shipped as gdo_utils/recipes/): one per paper's original script.

A run's settings are built in layers, never by merging one recipe into another:

  TrainConfig defaults < the run's recipe preset < the train section's explicit keys < run_overrides[<subset>]

The recipe is `train.recipe` (default `gdo_msswift`), or `run_overrides.<subset>.recipe` for one run (the OFA
runs: `llava15_lora`). Every preset sets every field in RECIPE_FIELDS, so nothing of another recipe leaks in;
the train section's explicit keys (those written in the params file or given with --set) apply to every run,
so paper.yaml writes only what is not part of a recipe (launch, attention kernel, checkpoints, pixels).
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from ..config import TrainConfig

DEFAULT_RECIPE = "gdo_msswift"
# What a recipe decides: optimisation, batch, schedule, length policy, trained parts. Each preset sets all of them.
RECIPE_FIELDS = ("learning_rate", "projector_lr", "adam_beta1", "adam_beta2", "adam_epsilon", "weight_decay",
                 "warmup_ratio", "lr_scheduler", "max_grad_norm", "num_epochs", "per_device_batch_size", "grad_accum",
                 "global_batch", "data_seed", "eval_ratio", "max_length", "over_length", "load_dtype", "bf16",
                 "gradient_checkpointing", "group_by_length", "group_by_modality", "freeze", "lora")
NOT_PER_RUN = ("runs", "run_overrides")


class RecipeError(ValueError):
    """An unknown recipe name or a preset file that is incomplete or invalid (the message names the file)."""


def recipes_dir() -> Path:
    from ..registry import shipped_dir

    return shipped_dir("recipes")


def recipe_names() -> list[str]:
    """The shipped recipe presets, by name."""
    return sorted(p.stem for p in recipes_dir().glob("*.yaml"))


def recipe_file(name: str) -> Path:
    """A preset name, or a path to a preset YAML file."""
    if name.endswith((".yaml", ".yml")) and Path(name).expanduser().is_file():
        return Path(name).expanduser()
    f = recipes_dir() / f"{name}.yaml"
    if not f.is_file():
        raise RecipeError(f"unknown train recipe {name!r} (known: {', '.join(recipe_names())}; or a path to a .yaml)")
    return f


def load_recipe(name: str) -> dict[str, Any]:
    """The `train:` values of a preset, checked: exactly the RECIPE_FIELDS, each valid for TrainConfig."""
    f = recipe_file(name)
    data = yaml.safe_load(f.read_text(encoding="utf-8")) or {}
    values = data.get("train")
    if not isinstance(values, dict):
        raise RecipeError(f"{f}: a recipe preset needs a `train:` mapping")
    missing, extra = set(RECIPE_FIELDS) - set(values), set(values) - set(RECIPE_FIELDS)
    if missing or extra:
        raise RecipeError(f"{f}: a recipe sets exactly the recipe fields; missing {sorted(missing)}, "
                          f"not recipe fields {sorted(extra)}")
    try:
        TrainConfig.model_validate(values)
    except ValueError as err:
        raise RecipeError(f"{f}: invalid recipe values: {err}") from None
    return values


def _deep_merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def recipe_of(train: TrainConfig, subset: str) -> str:
    """The recipe a run uses: its run_overrides' `recipe`, else train.recipe."""
    return str(train.run_overrides.get(subset, {}).get("recipe", train.recipe))


def resolve_run_config(train: TrainConfig, subset: str) -> TrainConfig:
    """This run's TrainConfig: defaults < its recipe < the train section's explicit keys < its run_overrides."""
    over = dict(train.run_overrides.get(subset, {}))
    name = recipe_of(train, subset)
    explicit = train.model_dump(mode="python", exclude_unset=True, exclude=set(NOT_PER_RUN) | {"recipe"})
    tree = _deep_merge(_deep_merge(load_recipe(name), explicit), {k: v for k, v in over.items() if k != "recipe"})
    tree.update(recipe=name, runs=train.runs)
    return TrainConfig.model_validate(tree)
