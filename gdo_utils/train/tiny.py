"""Tiny offline Qwen2.5-VL and LLaVA-1.5 (random weights, BPE tokenizer) so every family is tested without downloads.

The tiny Qwen3-VL is `gdo_utils.models.build_tiny_vlm` (the demo backbone); these two follow the same
recipe with each family's real chat template and processor / tokenizer settings (gdo_utils/family_fixtures/:
Qwen2.5-VL-Instruct's ChatML with its default system turn; llava-1.5-hf's "USER: <image>\n... ASSISTANT: ..."
with no end-of-turn token after an answer, BOS added, CLIP resize + centre crop). Only the sizes are small.
"""
from __future__ import annotations

from pathlib import Path

import torch

from ..models import build_tiny_tokenizer, family_fixture
from .llava import llava_config, llava_processor

CORPUS = ["What colour is the square?", "The square is red.", "Describe the video.", "A ball moves left.",
          "USER: ASSISTANT: yes no", "seconds 0.5 1.0 1.5 2.0"] * 10


def build_tiny_qwen25vl(out_dir: str | Path, seed: int = 0, hidden: int = 64) -> Path:
    """A tiny random Qwen2.5-VL + processor (patch 14, merge 2), saved with save_pretrained."""
    from transformers import (Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor,
                              Qwen2VLImageProcessor, Qwen2VLVideoProcessor)

    real = family_fixture("qwen2_5_vl_instruct")
    rip = real["image_processor"]
    torch.manual_seed(seed)
    tok = build_tiny_tokenizer(CORPUS, vocab_size=512)
    tok.chat_template = real["chat_template"]
    ids = {t: tok.convert_tokens_to_ids(t) for t in ("<|image_pad|>", "<|video_pad|>", "<|vision_start|>",
                                                      "<|vision_end|>", "<|endoftext|>")}
    ip = Qwen2VLImageProcessor(patch_size=rip["patch_size"], merge_size=rip["merge_size"],
                               temporal_patch_size=rip["temporal_patch_size"], image_mean=rip["image_mean"],
                               image_std=rip["image_std"], size={"shortest_edge": 28 * 28, "longest_edge": 128 * 128})
    vp = Qwen2VLVideoProcessor(patch_size=rip["patch_size"], merge_size=rip["merge_size"],
                               temporal_patch_size=rip["temporal_patch_size"], image_mean=rip["image_mean"],
                               image_std=rip["image_std"], size={"shortest_edge": 28 * 28, "longest_edge": 4 * 64 * 64},
                               do_sample_frames=False)
    proc = Qwen2_5_VLProcessor(image_processor=ip, tokenizer=tok, video_processor=vp,
                               chat_template=real["chat_template"])
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
    """A tiny random LLaVA-1.5 (CLIP vision tower, 2-layer MLP projector, Llama LLM) + llava-1.5-hf's processor."""
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaForConditionalGeneration

    torch.manual_seed(seed)
    tok = llama_style_tokenizer(CORPUS)
    vision = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                              image_size=TINY_LLAVA_IMAGE, patch_size=14, projection_dim=32)
    text = LlamaConfig(vocab_size=len(tok), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                       pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    model = LlavaForConditionalGeneration(llava_config(vision, text, tok))
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    return _save(model, llava_processor(tok, TINY_LLAVA_IMAGE), out_dir)


TINY_LLAVA_IMAGE = 28   # llava-1.5: 336 (24 x 24 patches of 14 px); the tiny model: 2 x 2 patches


def llama_style_tokenizer(corpus: list[str], vocab_size: int = 512):
    """Byte-level BPE with LLaMA's specials and BOS (<s> before every text), LLaVA's <image>, llava-1.5-hf's settings."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    real = family_fixture("llava_1_5_hf")["tokenizer"]
    specials = [real["unk_token"], real["bos_token"], real["eos_token"], real["pad_token"], real["image_token"]]
    bpe = Tokenizer(models.BPE(unk_token=None))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials,
                                                         show_progress=False,
                                                         initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    bos = real["bos_token"]
    bpe.post_processor = processors.TemplateProcessing(single=f"{bos} $A", pair=f"{bos} $A {bos} $B",
                                                       special_tokens=[(bos, bpe.token_to_id(bos))])
    return PreTrainedTokenizerFast(tokenizer_object=bpe, unk_token=real["unk_token"], bos_token=bos,
                                   eos_token=real["eos_token"], pad_token=real["pad_token"],
                                   additional_special_tokens=[real["image_token"]],
                                   extra_special_tokens={"image_token": real["image_token"]},
                                   padding_side=real["padding_side"])


def _save(model, processor, out_dir: str | Path) -> Path:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out
