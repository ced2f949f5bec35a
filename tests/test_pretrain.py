"""The demo's base model: its corpus (held-out, no motion or order) and that it learns."""
from __future__ import annotations

import json
import pandas as pd
import pytest

from gdo_utils.config import ToyWorldConfig, canonical_json
from gdo_utils.toyworld import generate_toyworld
from gdo_utils.toyworld.base_corpus import FILE, mcq_prompt

SMALL = dict(enabled=True, seed=7, n_onevision=12, n_llava_video=4, n_llava665k=6, n_visionflan=4, n_base_corpus=60)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("tw") / "toyworld"
    return root, generate_toyworld(ToyWorldConfig(**SMALL), root)


def test_base_corpus_counts_and_no_motion_or_order(world):
    root, report = world
    rows = [json.loads(x) for x in (root / FILE).read_text().splitlines()]
    assert report["base_corpus"]["rows"] == len(rows) == SMALL["n_base_corpus"]
    assert {r["media_kind"] for r in rows} <= {"image", "frames"}
    text = " ".join(r["messages"][0]["content"].lower() for r in rows)
    for word in ("move", "direction", "appear", "order", "change", "first", "then", "before", "after"):
        assert word not in text, word
    for r in rows:  # one placeholder per image or frame, every media file there
        assert r["messages"][0]["content"].count("<image>") == len(r["images"])
        assert all((root / p).is_file() for p in r["images"])
    mcq = [r for r in rows if r["messages"][1]["content"] in ("A", "B", "C", "D")]
    assert 0 < len(mcq) < len(rows)  # lettered multiple choice and short open answers
    which = [r for r in rows if "Which of these objects" in r["messages"][0]["content"]]
    assert which and all(r in mcq for r in which)  # open, any shape shown would answer it: always lettered


def test_base_corpus_scenes_are_held_out(world):
    root, _ = world
    pool = set(pd.read_parquet(root / "truth.parquet")["scene"])
    from gdo_utils.toyworld.base_corpus import write_base_corpus

    again = root.parent / "again"
    _, scenes = write_base_corpus(ToyWorldConfig(**SMALL), again, pool)
    assert scenes and not scenes & pool
    assert (again / FILE).read_bytes() == (root / FILE).read_bytes()  # deterministic


def test_mcq_prompt_styles_letter_every_option():
    for style in range(4):
        p = mcq_prompt("What colour is the square?", ["red", "blue", "green", "cyan"], style)
        assert all(x in p for x in ("red", "blue", "green", "cyan")) and "D" in p


def test_bad_pretrain_recipe_and_held_out_are_named(tmp_path, repo_root):
    from gdo_utils.config import load_params
    from gdo_utils.pretrain import pretrain_params, split_rows

    p = load_params(repo_root / "params" / "demo.yaml", ["models.pretrain.train={learning_rate: -1}"])
    with pytest.raises(ValueError, match=r"models\.pretrain\.train\.learning_rate"):
        pretrain_params(p, tmp_path)
    with pytest.raises(ValueError, match="models.pretrain.held_out=3 leaves no training rows"):
        split_rows([{}] * 3, 3)


def test_no_corpus_by_default(tmp_path):
    cfg = ToyWorldConfig(**{**SMALL, "n_base_corpus": 0})
    report = generate_toyworld(cfg, tmp_path / "tw")
    assert report["base_corpus"] is None and not (tmp_path / "tw" / FILE).exists()
    assert canonical_json(cfg.model_dump()) != canonical_json(ToyWorldConfig(**SMALL).model_dump())


def test_miniature_params_are_the_documented_composition(repo_root):
    """params/miniature.yaml's pool sizes are the ones docs/toyworld.md fixed before any result, its scenes the second run's."""
    import re

    from gdo_utils.config import load_params

    doc = (repo_root / "docs" / "toyworld.md").read_text()
    documented = {k: int(v) for k, v in re.findall(r"`(n_\w+): (\d+)`", doc)}
    assert set(documented) == {"n_onevision", "n_llava_video", "n_llava665k", "n_visionflan"}
    tw = load_params(repo_root / "params" / "miniature.yaml").toyworld
    assert {k: getattr(tw, k) for k in documented} == documented
    assert f"`mcq_ratio: {tw.mcq_ratio}`" in doc and tw.frames_per_video == 8 and tw.image_size == tw.video_size == 96
    assert (tw.base_corpus_static_ratio, tw.base_corpus_mcq_ratio) == (0.15, 0.6)   # the doc's 15% and 60%
    for field in ("image_size", "video_size", "shape_fraction", "base_corpus_skill_ratio"):   # the second run's recipe
        assert f"`{field}: {getattr(tw, field)}`" in doc, field
    skills = re.search(r"`base_skills: \{([^}]*)\}`", doc).group(1)
    assert {k: int(v) for k, v in re.findall(r"(\w+): (\d+)", skills)} == tw.base_skills


SEE = ["toyworld.n_onevision=6", "toyworld.n_llava_video=2", "toyworld.n_llava665k=4", "toyworld.n_visionflan=2",
       "toyworld.image_size=96", "toyworld.bench_questions_per_task=1", "toyworld.image_bench_size=1",
       "models.pretrain.enabled=true", "models.pretrain.corpus=toyworld:colour_probe/corpus.jsonl",
       "models.pretrain.held_out=100",
       "models.pretrain.train={learning_rate: 2.0e-3, num_epochs: 8, per_device_batch_size: 16, warmup_ratio: 0.05, "
       "checkpoint_fractions: [1.0], eval_ratio: 0.0, min_pixels: 9216, max_pixels: 9216}"]


@pytest.mark.slow
def test_base_model_learns_to_see_colour_above_chance_and_is_cached(tmp_path, repo_root):
    """The kit's pretraining teaches the tiny VLM what is in the picture (held-out colour answers above chance);
    a second call with the same params, corpus and code reuses the trained model.

    One shape per 96-pixel image, "What colour is the <kind>?", eight colours: a model that never looks at the
    pixels can at best answer the commonest colour (chance 1/8). After 8 epochs of 900 rows (450 steps)
    the held-out accuracy's 95% interval must lie above 1/8 (bench/pretrain_probe.py --task colour: about 90%
    after 300 steps). A break between the pixels and the loss (media not loaded, vision tokens not placed,
    the vision tower not trained, labels off by one) leaves the answers at the colour prior and fails here.
    """
    from gdo_utils.config import load_params
    from gdo_utils.models import ensure_models
    from gdo_utils.toyworld.base_corpus import write_colour_probe

    p = load_params(repo_root / "params" / "demo.yaml", [f"output_root={tmp_path}", *SEE])
    generate_toyworld(p.toyworld, p.toyworld_dir)
    write_colour_probe(p.toyworld_dir, 1000, p.toyworld.image_size, p.toyworld.seed)
    ensure_models(p)
    report = json.loads(p.stage_dir("pretrain", "held_out.json").read_text())
    colour, initial = report["held_out_trained"]["open"], report["held_out_initial"]["open"]
    assert colour["n"] == initial["n"] == 100
    assert colour["ci95"][0] > 100 / 8, (initial, colour)
    stamp = p.stage_dir("models", "manifest.json").stat().st_mtime_ns
    ensure_models(p)                                     # same params, corpus and code: nothing is retrained
    assert p.stage_dir("models", "manifest.json").stat().st_mtime_ns == stamp


DRILLS = dict(SMALL, image_size=96, shape_fraction=0.875, base_skills={"kind": 20, "colour_named": 30, "letter": 25},
              base_corpus_skill_ratio=0.5)


def test_skill_drills_are_written_and_kept_in_the_corpus_mix(tmp_path):
    """toyworld.base_skills writes one drill file per skill; base_corpus_skill_ratio mixes drills into the corpus."""
    from gdo_utils.toyworld.base_corpus import question_type, skill_file
    from gdo_utils.toyworld.scenes import COLORS, SHAPES

    cfg = ToyWorldConfig(**DRILLS)
    root = tmp_path / "tw"
    report = generate_toyworld(cfg, root)
    assert report["base_skills"] == {"kind": 20, "colour_named": 30, "letter": 25}
    for skill, answers in (("kind", SHAPES), ("colour_named", COLORS), ("letter", "ABCD")):
        rows = [json.loads(x) for x in (root / skill_file(skill)).read_text().splitlines()]
        assert len(rows) == cfg.base_skills[skill]
        assert {r["messages"][1]["content"] for r in rows} <= set(answers)
        assert {question_type(r["messages"][0]["content"]) for r in rows} == {skill}
        assert all((root / p).is_file() for r in rows for p in r["images"])
    corpus = [json.loads(x) for x in (root / FILE).read_text().splitlines()]
    drills = sum(report["base_corpus"].get(f"drill_{k}", 0) for k in cfg.base_skills)
    kinds = [question_type(r["messages"][0]["content"]) for r in corpus]
    assert drills == sum(k in ("kind", "colour_named", "letter") for k in kinds)
    assert 0.2 * len(corpus) < drills < 0.8 * len(corpus)          # about half, as asked
    assert report["base_corpus"]["image"] + report["base_corpus"]["static_clip"] + drills == len(corpus)
    again = generate_toyworld(cfg, tmp_path / "again")                # deterministic
    assert again["base_corpus"] == report["base_corpus"]
    assert (tmp_path / "again" / skill_file("kind")).read_bytes() == (root / skill_file("kind")).read_bytes()


def test_a_drill_names_one_shape_and_answers_for_it():
    """colour_named asks about a kind shown exactly once and answers its colour; kind shows one shape."""
    import numpy as np

    from gdo_utils.toyworld.base_corpus import skill_qa

    rng = np.random.default_rng(0)
    for _ in range(200):
        scene, q, a = skill_qa("colour_named", rng, 96, 28)
        named = [s for s in scene.shapes if f" {s.kind}?" in q]
        assert len(named) == 1 and a == named[0].color and 1 <= len(scene.shapes) <= 3
        scene, q, a = skill_qa("kind", rng, 96, 28)
        assert len(scene.shapes) == 1 and a == scene.shapes[0].kind
    with pytest.raises(ValueError, match="unknown image skill 'count'"):
        skill_qa("count", rng, 96, 28)


def test_the_letter_drill_asks_for_the_letter_of_the_answer_it_gives():
    """letter: no image; the answer is stated in words, the reply is the letter of the option holding it."""
    import re

    import numpy as np

    from gdo_utils.toyworld.base_corpus import letter_qa, question_type

    rng = np.random.default_rng(1)
    styles = set()
    for _ in range(300):
        q, a = letter_qa(rng)
        given = re.search(r"Given: the shape (?:is (?:an? )?|moves )(\w+)|Given: there are (\w+)", q)
        value = given.group(1) or given.group(2)
        options = dict(re.findall(r"^\(?([A-D])[.)] (\w+)", q, re.M))
        assert 3 <= len(options) <= 4 and options[a] == value, q
        assert list(options.values()).count(value) == 1 and question_type(q) == "letter" and "<image>" not in q
        styles.add(q.splitlines()[-1])
    assert len(styles) == 4                     # every instruction style of the corpus's lettered questions


def test_the_chance_level_counts_each_questions_options():
    """A lettered question's chance is 1 / its options, in every instruction style (the letter drill has 3 or 4)."""
    from gdo_utils.binomial import chance_level
    from gdo_utils.toyworld.base_corpus import mcq_prompt, option_count

    for style in range(4):
        for n in (2, 3, 4):
            prompt = mcq_prompt("What colour is the circle?", ["red", "A. blue", "green", "(B) cyan"][:n], style)
            assert option_count(prompt) == n, (style, n, prompt)
    assert option_count("What colour is the circle in the image?") == 0
    assert round(chance_level([option_count(mcq_prompt("Q?", ["a", "b", "c"], s)) for s in range(4)]), 2) == 33.33


def test_skill_settings_are_validated():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="base_corpus_skill_ratio > 0 needs base_skills"):
        ToyWorldConfig(**{**SMALL, "base_corpus_skill_ratio": 0.5})
    with pytest.raises(ValidationError, match="base_skills"):
        ToyWorldConfig(**{**SMALL, "base_skills": {"motion": 10}})
    with pytest.raises(ValidationError, match="rows must be >= 0"):
        ToyWorldConfig(**{**SMALL, "base_skills": {"kind": -1}})


CURRICULUM = ["toyworld.n_onevision=6", "toyworld.n_llava_video=2", "toyworld.n_llava665k=4",
              "toyworld.n_visionflan=2", "toyworld.image_size=96", "toyworld.shape_fraction=0.875",
              "toyworld.bench_questions_per_task=1", "toyworld.image_bench_size=1", "toyworld.n_base_corpus=40",
              "toyworld.base_skills={kind: 40}", "toyworld.base_corpus_skill_ratio=0.25",
              "models.pretrain.enabled=true", "models.pretrain.held_out=8",
              "models.pretrain.curriculum=[{corpus: 'toyworld:base_corpus/kind.jsonl', train: {learning_rate: 3.0e-3, "
              "num_epochs: 1, per_device_batch_size: 16, checkpoint_fractions: [1.0], eval_ratio: 0.0, "
              "min_pixels: 9216, max_pixels: 9216}}]",
              "models.pretrain.train={num_epochs: 1, per_device_batch_size: 16, checkpoint_fractions: [1.0], "
              "eval_ratio: 0.0, min_pixels: 9216, max_pixels: 9216}"]


def test_curriculum_stages_train_in_order_each_from_the_last(tmp_path, repo_root):
    """models.pretrain.curriculum: each stage is its own run started from the previous stage's weights, the
    corpus last; the report gives every stage's held-out accuracy per question type; the drill file is in the key."""
    from safetensors.torch import load_file

    from gdo_utils.config import load_params
    from gdo_utils.models import ensure_models
    from gdo_utils.pretrain import pretrain_hash, stage_table

    p = load_params(repo_root / "params" / "demo.yaml", [f"output_root={tmp_path}", *CURRICULUM])
    generate_toyworld(p.toyworld, p.toyworld_dir)
    key = pretrain_hash(p)
    ensure_models(p)
    report = json.loads(p.stage_dir("pretrain", "held_out.json").read_text())
    assert [s["stage"] for s in report["stages"]] == ["curriculum_0", "base_corpus"]
    first, corpus = report["stages"]
    assert (first["trained_rows"], first["held_out_rows"], first["steps"]) == (32, 8, 2)
    assert set(first["held_out_after"]["by_type"]) == {"kind"}
    assert corpus["trained_rows"] == 32 and report["held_out_trained"] == corpus["held_out_after"]
    runs = p.stage_dir("pretrain", "train")
    info0 = json.loads((runs / "curriculum_0" / "run_info.json").read_text())
    info1 = json.loads((runs / "base_corpus" / "run_info.json").read_text())
    assert info0["base_model"] == str(p.stage_dir("models", "tiny-qwen3vl-init").resolve())
    assert info1["base_model"] == str(p.stage_dir("pretrain", "stages", "curriculum_0").resolve())
    stage0 = load_file(p.stage_dir("pretrain", "stages", "curriculum_0", "model.safetensors"))
    init = load_file(p.stage_dir("models", "tiny-qwen3vl-init", "model.safetensors"))
    final = load_file(p.stage_dir("models", "tiny-qwen3vl", "model.safetensors"))
    name = next(k for k in init if "embed_tokens" in k)
    assert not (stage0[name] == init[name]).all() and not (final[name] == stage0[name]).all()
    table = stage_table(report)
    assert set(table["stage"]) == {"curriculum_0", "base_corpus"} and "type: kind" in set(table["questions"])
    drill = p.toyworld_dir / "base_corpus" / "kind.jsonl"
    drill.write_text(drill.read_text().replace('"circle"', '"square"', 1))
    assert pretrain_hash(p) != key                      # a changed drill file is a new base model


def test_a_bad_curriculum_stage_is_named(tmp_path, repo_root):
    from gdo_utils.config import load_params
    from gdo_utils.pretrain import pretrain_params, stages_of

    p = load_params(repo_root / "params" / "demo.yaml",
                    ["models.pretrain.curriculum=[{corpus: 'toyworld:k.jsonl', train: {learning_rate: -1}}]"])
    name, _, _, over, train_field = stages_of(p)[0]
    with pytest.raises(ValueError, match=r"models\.pretrain\.curriculum\[0\]\.train\.learning_rate"):
        pretrain_params(p, tmp_path, name, over, train_field)


def test_a_stage_of_several_files_trains_them_together_and_holds_out_from_each(tmp_path, repo_root):
    """A curriculum stage may list several files: their rows are trained together and each file keeps an even
    share of the held-out rows (so every skill is measured); every file's bytes are in the base model's key."""
    from gdo_utils.config import ParamsError, load_params
    from gdo_utils.pretrain import pretrain_hash, stage_rows, stages_of

    stage = "models.pretrain.curriculum=[{corpus: ['toyworld:a.jsonl', 'toyworld:b.jsonl']}]"
    p = load_params(repo_root / "params" / "demo.yaml", [f"output_root={tmp_path}", stage, "models.pretrain.held_out=5"])
    p.toyworld_dir.mkdir(parents=True)
    for name, n in (("a", 10), ("b", 7)):
        rows = [{"id": f"{name}{i}", "media_kind": "text", "images": [],
                 "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]} for i in range(n)]
        (p.toyworld_dir / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (p.toyworld_dir / "base_corpus").mkdir()
    (p.toyworld_dir / "base_corpus" / "corpus.jsonl").write_text("")
    name, specs, fields, _, _ = stages_of(p)[0]
    assert fields == ["models.pretrain.curriculum[0].corpus[0]", "models.pretrain.curriculum[0].corpus[1]"]
    total, train, held = stage_rows(p, specs, fields, 5)
    assert total == 17 and len(train) == 12
    assert [r["id"] for r in held] == ["a7", "a8", "a9", "b5", "b6"]
    key = pretrain_hash(p)
    (p.toyworld_dir / "b.jsonl").write_text((p.toyworld_dir / "b.jsonl").read_text().replace('"q"', '"Q"', 1))
    assert pretrain_hash(p) != key
    with pytest.raises(ParamsError, match=r"curriculum\.0\.corpus.*at least one corpus file"):
        load_params(repo_root / "params" / "demo.yaml", ["models.pretrain.curriculum=[{corpus: []}]"])
