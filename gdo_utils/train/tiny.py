"""Tiny offline Qwen2.5-VL and LLaVA-1.5 (random weights, BPE tokenizer) so every family is tested without downloads.

The tiny Qwen3-VL is `gdo_utils.models.build_tiny_vlm` (the demo backbone); these two follow the same
recipe with each family's own config, processor and chat template (LLaVA-1.5: "USER: <image>\\n... ASSISTANT: ...</s>").
"""
from __future__ import annotations

from pathlib import Path

import torch

from ..models import build_tiny_tokenizer

LLAVA_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %}USER: {% else %}ASSISTANT: {% endif %}"
    "{% for item in message['content'] %}{% if item['type'] == 'image' %}<image>\n{% endif %}{% endfor %}"
    "{% for item in message['content'] %}{% if item['type'] == 'text' %}{{ item['text'] }}{% endif %}{% endfor %}"
    "{% if message['role'] == 'user' %} {% else %}{{ eos_token }}{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)
CORPUS = ["What colour is the square?", "The square is red.", "Describe the video.", "A ball moves left.",
          "USER: ASSISTANT: yes no", "seconds 0.5 1.0 1.5 2.0"] * 10


def build_tiny_qwen25vl(out_dir: str | Path, seed: int = 0, hidden: int = 64) -> Path:
    """A tiny random Qwen2.5-VL + processor (patch 14, merge 2), saved with save_pretrained."""
    from transformers import (Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor,
                              Qwen2VLImageProcessor, Qwen2VLVideoProcessor)

    from ..models import CHAT_TEMPLATE

    torch.manual_seed(seed)
    tok = build_tiny_tokenizer(CORPUS, vocab_size=512)
    ids = {t: tok.convert_tokens_to_ids(t) for t in ("<|image_pad|>", "<|video_pad|>", "<|vision_start|>",
                                                      "<|vision_end|>", "<|endoftext|>")}
    ip = Qwen2VLImageProcessor(patch_size=14, merge_size=2, temporal_patch_size=2,
                               size={"shortest_edge": 28 * 28, "longest_edge": 128 * 128})
    vp = Qwen2VLVideoProcessor(patch_size=14, merge_size=2, temporal_patch_size=2,
                               size={"shortest_edge": 28 * 28, "longest_edge": 4 * 64 * 64}, do_sample_frames=False)
    proc = Qwen2_5_VLProcessor(image_processor=ip, tokenizer=tok, video_processor=vp, chat_template=CHAT_TEMPLATE)
    cfg = Qwen2_5_VLConfig(
        text_config=dict(vocab_size=len(tok), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                         pad_token_id=ids["<|endoftext|>"],
                         rope_parameters=dict(rope_type="default", rope_theta=10000.0, mrope_section=[4, 2, 2])),
        vision_config=dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, patch_size=14,
                           spatial_merge_size=2, temporal_patch_size=2, out_hidden_size=hidden, window_size=56,
                           fullatt_block_indexes=[1]),
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=False)
    return _save(Qwen2_5_VLForConditionalGeneration(cfg), proc, out_dir)


def build_tiny_llava(out_dir: str | Path, seed: int = 0, hidden: int = 64) -> Path:
    """A tiny random LLaVA-1.5 (CLIP vision tower, 2-layer MLP projector, Llama LLM) + processor."""
    from transformers import (CLIPImageProcessor, CLIPVisionConfig, LlamaConfig, LlavaConfig,
                              LlavaForConditionalGeneration, LlavaProcessor)

    torch.manual_seed(seed)
    tok = _llama_style_tokenizer()
    image_id = tok.convert_tokens_to_ids("<image>")
    ip = CLIPImageProcessor(size={"shortest_edge": 28}, crop_size={"height": 28, "width": 28})
    vision = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                              image_size=28, patch_size=14, projection_dim=32)
    proc = LlavaProcessor(image_processor=ip, tokenizer=tok, patch_size=14, vision_feature_select_strategy="default",
                          chat_template=LLAVA_TEMPLATE, num_additional_image_tokens=1, image_token="<image>")
    text = LlamaConfig(vocab_size=len(tok), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                       pad_token_id=tok.pad_token_id)
    cfg = LlavaConfig(vision_config=vision, text_config=text, image_token_id=image_id,
                      vision_feature_select_strategy="default", vision_feature_layer=-2, image_seq_length=4)
    return _save(LlavaForConditionalGeneration(cfg), proc, out_dir)


def _llama_style_tokenizer():
    """Byte-level BPE with LLaMA's specials (<s>, </s>, <unk>, <pad>) and LLaVA's <image> placeholder."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<unk>", "<s>", "</s>", "<pad>", "<image>"]
    bpe = Tokenizer(models.BPE(unk_token=None))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(CORPUS, trainers.BpeTrainer(vocab_size=512, special_tokens=specials, show_progress=False,
                                                         initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return PreTrainedTokenizerFast(tokenizer_object=bpe, unk_token="<unk>", bos_token="<s>", eos_token="</s>",
                                   pad_token="<pad>", additional_special_tokens=["<image>"],
                                   extra_special_tokens={"image_token": "<image>"}, padding_side="right")


def _save(model, processor, out_dir: str | Path) -> Path:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out
