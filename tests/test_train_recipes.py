"""Recipe presets: each run's TrainingArguments equal the original scripts' values; OFA runs inherit nothing of GDO's."""
from __future__ import annotations

import pytest
import yaml

from gdo_utils.config import TrainConfig, load_params
from gdo_utils.train.recipes import RECIPE_FIELDS, RecipeError, load_recipe, recipe_names, resolve_run_config
from gdo_utils.train.run import run_config, with_accumulation
from gdo_utils.train.sampling import modality_length_grouped_indices, split_to_even_chunks
from gdo_utils.train.trainer import training_arguments

# Transcribed from the sources, not from the presets. GDO: the release's scripts/train_sft.sh +
# configs/train_qwen3_vl_8b_instruct.env and ms-swift 3.11's defaults (AdamW beta2 0.95, cosine), 8 GPUs.
# LLaVA-1.5: haotian-liu/LLaVA scripts/v1_5/finetune_lora.sh (+ train.py's lora_dropout 0.05 and HF
# TrainingArguments defaults: betas 0.9 / 0.999, eps 1e-8, max_grad_norm 1.0), 8 GPUs x 16 = 128.
SOURCES = {
    "gdo_msswift": {"args": dict(learning_rate=2e-5, adam_beta1=0.9, adam_beta2=0.95, adam_epsilon=1e-8,
                                 weight_decay=0.01, warmup=0.1, lr_scheduler_type="cosine", max_grad_norm=1.0,
                                 num_train_epochs=1, per_device_train_batch_size=1, gradient_accumulation_steps=1,
                                 data_seed=42, optim="adamw_torch"),
                    "recipe": dict(projector_lr=None, lora=False, max_length=8192, over_length="drop",
                                   eval_ratio=0.001, group_by_modality=False, global_batch_8gpu=8,
                                   frozen=(False, False, False))},
    "llava15_lora": {"args": dict(learning_rate=2e-4, adam_beta1=0.9, adam_beta2=0.999, adam_epsilon=1e-8,
                                  weight_decay=0.0, warmup=0.03, lr_scheduler_type="cosine", max_grad_norm=1.0,
                                  num_train_epochs=1, per_device_train_batch_size=16, gradient_accumulation_steps=1,
                                  data_seed=42, optim="adamw_torch"),
                     "recipe": dict(projector_lr=2e-5, lora=(128, 256, 0.05), max_length=2048, over_length="truncate",
                                    eval_ratio=0.0, group_by_modality=True, global_batch_8gpu=128,
                                    frozen=(True, False, False))},
}


def _args(cfg: TrainConfig, tmp_path, procs: int):
    cfg = with_accumulation(cfg, procs)
    return cfg, training_arguments(cfg, tmp_path / "o", use_cpu=True, fsdp_checkpointing=False, has_eval=False)


def _lr_curve(args, steps: int = 100) -> list[float]:
    """The learning rate the Trainer's scheduler gives at each step (its own get_scheduler)."""
    import torch
    from transformers import get_scheduler

    opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=args.learning_rate)
    sched = get_scheduler(args.lr_scheduler_type, opt, num_warmup_steps=args.get_warmup_steps(steps),
                          num_training_steps=steps)
    out = []
    for _ in range(steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_training_arguments_of_each_recipe_equal_the_source(name, tmp_path):
    want, rec = SOURCES[name]["args"], SOURCES[name]["recipe"]
    cfg, args = _args(resolve_run_config(TrainConfig(recipe=name), "any"), tmp_path, procs=8)
    got = {k: getattr(args, k) for k in want if k != "warmup"}
    assert got == {k: v for k, v in want.items() if k != "warmup"}
    assert args.get_warmup_steps(1000) == round(want["warmup"] * 1000)
    lr = _lr_curve(args)
    peak = want["learning_rate"]
    assert lr[0] == 0.0 and max(lr) == pytest.approx(peak) and lr[-1] < 0.01 * peak   # warmup, then cosine to ~0
    assert lr.index(max(lr)) == round(want["warmup"] * 100)
    assert cfg.projector_lr == rec["projector_lr"] and cfg.max_length == rec["max_length"]
    assert cfg.over_length == rec["over_length"] and cfg.eval_ratio == rec["eval_ratio"]
    assert cfg.group_by_modality == rec["group_by_modality"]
    assert cfg.per_device_batch_size * 8 * cfg.grad_accum == rec["global_batch_8gpu"]
    assert (cfg.freeze.vision_tower, cfg.freeze.projector, cfg.freeze.llm) == rec["frozen"]
    assert ((cfg.lora.r, cfg.lora.alpha, cfg.lora.dropout) if cfg.lora.enabled else False) == rec["lora"]


def test_llava_global_batch_128_on_fewer_processes_through_accumulation(tmp_path):
    cfg, args = _args(resolve_run_config(TrainConfig(recipe="llava15_lora"), "x"), tmp_path, procs=2)
    assert args.gradient_accumulation_steps == 4 and args.per_device_train_batch_size == 16
    with pytest.raises(ValueError, match="not a multiple"):
        with_accumulation(cfg, 3)


def test_every_preset_sets_every_recipe_field_and_bad_presets_are_refused(tmp_path):
    assert set(recipe_names()) >= set(SOURCES)
    for name in recipe_names():
        assert set(load_recipe(name)) == set(RECIPE_FIELDS)
    f = tmp_path / "half.yaml"
    f.write_text(yaml.safe_dump({"train": {"learning_rate": 1e-4}}))
    with pytest.raises(RecipeError, match=r"half.yaml: .*missing"):
        load_recipe(str(f))
    with pytest.raises(RecipeError, match="unknown train recipe 'nope'"):
        load_recipe("nope")


def test_list_recipes_names_each_preset_file(capsys):
    from gdo_utils.cli import main

    assert main(["list", "recipes"]) == 0
    rows = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert [r[0] for r in rows] == recipe_names() and all(r[1].endswith(f"{r[0]}.yaml") for r in rows)


def test_paper_params_ofa_runs_take_the_llava_recipe_not_gdo_values():
    p = load_params("params/paper.yaml")
    gdo, ofa = run_config(p, "temp_plus"), run_config(p, "ofa_llava665k")
    assert (gdo.recipe, gdo.learning_rate, gdo.adam_beta2, gdo.weight_decay, gdo.warmup_ratio) == \
        ("gdo_msswift", 2e-5, 0.95, 0.01, 0.1)
    assert (ofa.recipe, ofa.learning_rate, ofa.adam_beta2, ofa.weight_decay, ofa.warmup_ratio, ofa.max_length) == \
        ("llava15_lora", 2e-4, 0.999, 0.0, 0.03, 2048)
    assert ofa.base_model == "run:models/llava15_stage2_start" and ofa.lora.enabled and not gdo.lora.enabled
    for s in p.train.runs:
        assert run_config(p, s).recipe == ("llava15_lora" if s.startswith("ofa_") else "gdo_msswift")
    # The train section's explicit keys apply to every run; a run's overrides go on top of its recipe.
    q = load_params("params/paper.yaml", ["train.max_grad_norm=0.5", "train.run_overrides.ofa_llava665k.num_epochs=2"])
    assert run_config(q, "temp_plus").max_grad_norm == run_config(q, "ofa_llava665k").max_grad_norm == 0.5
    assert run_config(q, "ofa_llava665k").num_epochs == 2 and run_config(q, "ofa_visionflan").num_epochs == 1
    assert run_config(q, "ofa_llava665k").learning_rate == 2e-4   # nothing else of the section leaks in


def test_modality_grouped_order_keeps_each_step_to_one_modality():
    import torch

    lengths = [(5 + i % 7) * (1 if i % 3 else -1) for i in range(50)]   # 33 media rows, 17 text-only rows
    order = modality_length_grouped_indices(lengths, batch_size=2, world_size=2,
                                            generator=torch.Generator().manual_seed(0))
    assert sorted(order) == list(range(50))
    # Steps of 2 x 2 rows: 8 full media + 4 full text steps, each of one modality, shuffled; then the two
    # leftovers (1 media row, 1 text row) joined into a last step, as LLaVA does.
    steps = [order[s:s + 4] for s in range(0, 48, 4)]
    assert all(len({lengths[i] > 0 for i in st}) == 1 for st in steps)
    assert sum(lengths[st[0]] > 0 for st in steps) == 8 and sorted(order[48:]) == order[48:]
    assert {lengths[i] > 0 for i in order[48:]} == {True, False}
    assert [lengths[st[0]] > 0 for st in steps] != [True] * 8 + [False] * 4   # the steps are shuffled
    again = modality_length_grouped_indices(lengths, 2, 2, torch.Generator().manual_seed(0))
    assert again == order
    # Hand-dealt: longest first, each to the chunk with the fewest tokens, a full chunk takes no more.
    assert split_to_even_chunks([0, 1, 2, 3], [9, 7, 4, 1], 2) == [[0, 3], [1, 2]]
