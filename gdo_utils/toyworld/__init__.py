"""The demo world: procedurally drawn images and videos and QA pools in the real file formats.

`generate_toyworld(cfg, root)` writes everything (seeded, deterministic, skipped when up to date);
`text_corpus(cfg)` gives texts for the tiny tokenizer; `held_out_seed(name, base)` seeds held-out
splits (toy benchmarks) that never overlap the pools.
"""
from .generate import generate_toyworld, held_out_seed, text_corpus, toyworld_hash
from .questions import QA, image_questions, video_questions
from .scenes import COLORS, DIRECTIONS, SHAPES, ImageScene, Shape, VideoScene, render_image, render_video

__all__ = ["generate_toyworld", "held_out_seed", "text_corpus", "toyworld_hash", "QA", "image_questions",
           "video_questions", "COLORS", "DIRECTIONS", "SHAPES", "ImageScene", "Shape", "VideoScene",
           "render_image", "render_video"]
