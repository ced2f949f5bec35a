"""Qwen3-VL-Instruct architectures for random-weight timing (no download): the models' public config.json values.

Token ids are left to the caller (the tiny processor's ids, or the real ones). Sources: the config.json of
Qwen/Qwen3-VL-2B-Instruct and Qwen/Qwen3-VL-8B-Instruct (text: layers, widths, heads, rope; vision: depth 24 /
27, deepstack layers, merge 2, patch 16).
"""
from __future__ import annotations

import copy

QWEN3VL_2B = dict(
    text_config=dict(vocab_size=151936, hidden_size=2048, intermediate_size=6144, num_hidden_layers=28,
                     num_attention_heads=16, num_key_value_heads=8, head_dim=128, max_position_embeddings=262144,
                     rms_norm_eps=1e-6, tie_word_embeddings=True,
                     rope_parameters=dict(rope_type="default", rope_theta=5000000.0, mrope_section=[24, 20, 20],
                                          mrope_interleaved=True)),
    vision_config=dict(depth=24, hidden_size=1024, intermediate_size=4096, num_heads=16, patch_size=16,
                       spatial_merge_size=2, temporal_patch_size=2, out_hidden_size=2048,
                       num_position_embeddings=2304, deepstack_visual_indexes=[5, 11, 17],
                       hidden_act="gelu_pytorch_tanh"),
    tie_word_embeddings=True)
QWEN3VL_8B = dict(
    text_config=dict(vocab_size=151936, hidden_size=4096, intermediate_size=12288, num_hidden_layers=36,
                     num_attention_heads=32, num_key_value_heads=8, head_dim=128, max_position_embeddings=262144,
                     rms_norm_eps=1e-6, tie_word_embeddings=False,
                     rope_parameters=dict(rope_type="default", rope_theta=5_000_000.0, mrope_section=[24, 20, 20],
                                          mrope_interleaved=True)),
    vision_config=dict(depth=27, hidden_size=1152, intermediate_size=4304, num_heads=16, patch_size=16,
                       spatial_merge_size=2, temporal_patch_size=2, out_hidden_size=4096, num_position_embeddings=2304,
                       deepstack_visual_indexes=[8, 16, 24], hidden_act="gelu_pytorch_tanh"),
    tie_word_embeddings=False)
CONFIGS = {"2b": QWEN3VL_2B, "8b": QWEN3VL_8B}


def with_text_layers(cfg: dict, layers: int | None) -> dict:
    """The config with its LLM cut to `layers` decoder layers (same shapes; to fit one GPU), or unchanged."""
    if layers is None:
        return cfg
    out = copy.deepcopy(cfg)
    out["text_config"]["num_hidden_layers"] = layers
    return out
