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


def test_no_corpus_by_default(tmp_path):
    cfg = ToyWorldConfig(**{**SMALL, "n_base_corpus": 0})
    report = generate_toyworld(cfg, tmp_path / "tw")
    assert report["base_corpus"] is None and not (tmp_path / "tw" / FILE).exists()
    assert canonical_json(cfg.model_dump()) != canonical_json(ToyWorldConfig(**SMALL).model_dump())
