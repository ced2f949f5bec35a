"""Family-correct image input: a band at the edge of a wide image reaches a LLaVA-1.5 model (padded, not cropped).

The tiny LLaVA here carries llava-1.5's real image-processor settings (llava-hf/llava-1.5-7b-hf
`preprocessor_config.json`: CLIPImageProcessor, size shortest_edge 336, crop 336x336, do_center_crop
true, bicubic, CLIP's image mean/std), so the processor would centre-crop exactly as the real one does.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from gdo_utils.imageprep import ImagePrep, expand2square, image_prep, kind_of, mean_colour, smart_resize

CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
BAND = 48   # red columns at the left edge of a 672x336 image


def _band_image() -> Image.Image:
    a = np.full((336, 672, 3), 128, np.uint8)
    a[:, :BAND] = (255, 0, 0)
    return Image.fromarray(a)


@pytest.fixture(scope="module")
def tiny_llava():
    """A tiny LLaVA whose processor has llava-1.5-hf's real settings (fixture llava_1_5_hf) at the real 336 px."""
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaForConditionalGeneration

    from gdo_utils.models import VLM
    from gdo_utils.train.llava import llava_config, llava_processor
    from gdo_utils.train.tiny import CORPUS, llama_style_tokenizer

    torch.manual_seed(0)
    tok = llama_style_tokenizer(CORPUS)
    proc = llava_processor(tok, 336)
    vision = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                              image_size=336, patch_size=14, projection_dim=32)
    text = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                       pad_token_id=tok.pad_token_id)
    model = LlavaForConditionalGeneration(llava_config(vision, text, tok)).eval()
    return VLM(model, proc, torch.device("cpu"))


def _red(pv: torch.Tensor) -> torch.Tensor:
    """Where a normalised (3, H, W) tensor is pure red."""
    r = pv[0] * CLIP_STD[0] + CLIP_MEAN[0]
    g = pv[1] * CLIP_STD[1] + CLIP_MEAN[1]
    return (r > 0.9) & (g < 0.1)


def _capture(vlm):
    seen = []
    hook = vlm.model.model.vision_tower.register_forward_pre_hook(lambda m, args, kw: seen.append(
        (args[0] if args else kw["pixel_values"]).detach().clone()), with_kwargs=True)
    return seen, hook


def test_expand2square_and_mean_colour():
    im = Image.new("RGB", (60, 30), (255, 0, 0))
    sq = expand2square(im, mean_colour(CLIP_MEAN))
    assert sq.size == (60, 60) and sq.getpixel((0, 0)) == (122, 116, 104) and sq.getpixel((30, 30)) == (255, 0, 0)
    assert expand2square(Image.new("RGB", (8, 8)), (1, 2, 3)).size == (8, 8)
    assert smart_resize(720, 1280, 200704, 602112) == (576, 1024)
    assert smart_resize(720, 1280, 200704, 602112, factor=28) == (560, 1008)  # Qwen2.5-VL: 20 x 36 tokens of 28 px
    assert kind_of("llava") == "llava_pad" and kind_of("qwen3_vl") == "qwen"
    with pytest.raises(ValueError, match="model_type 'idefics'"):
        kind_of("idefics")


def test_image_prep_takes_the_processor_settings(tiny_llava):
    prep = image_prep(tiny_llava.processor, "llava")
    assert prep == ImagePrep("llava_pad", background=(122, 116, 104)) and prep.processor_kwargs == {}
    from transformers import Qwen2VLImageProcessor

    q = image_prep(Qwen2VLImageProcessor(patch_size=14, merge_size=2), "qwen2_5_vl", 100, 1000)
    assert q.factor == 28 and q.processor_kwargs == {"do_resize": False}


def test_edge_band_reaches_the_llava_model_in_evaluation(tiny_llava):
    from gdo_utils.evaluate.image.stage import generate_image_replies, model_image_prep

    img = _band_image()
    # without the padding the real llava-1.5 processor centre-crops the band away
    cropped = tiny_llava.processor.image_processor(img, return_tensors="pt")["pixel_values"][0]
    assert not _red(cropped).any()
    prep = model_image_prep(tiny_llava, 200704, 602112)
    seen, hook = _capture(tiny_llava)
    try:
        generate_image_replies(tiny_llava, ["What colour is the square?"], [prep.prepare(img)], 1, None,
                               prep.processor_kwargs)
    finally:
        hook.remove()
    pv = seen[0][0].float()
    assert pv.shape == (3, 336, 336)
    band = _red(pv)
    cols = band.any(0).nonzero().flatten()
    assert band.sum() > 0 and cols.max() < BAND // 2 + 2                  # the band, scaled 672 -> 336, at the left
    assert pv[:, :80, :].abs().max() < 0.05                              # padding rows: the mean colour (~0)


def test_edge_band_reaches_the_llava_model_in_training(tiny_llava):
    from gdo_utils.train.encode import EncodeSettings, Media, encode_row
    from gdo_utils.train.families import FAMILIES
    from gdo_utils.train.records import TrainRecord

    rec = TrainRecord("r0", [{"role": "user", "content": "<image>\nWhat colour is the square?"},
                             {"role": "assistant", "content": "The square is red."}], "image", images=["x.png"])
    enc = encode_row(tiny_llava.processor, FAMILIES["llava"], rec, Media([_band_image()]), EncodeSettings())
    pv = enc["pixel_values"][0].float()
    assert pv.shape == (3, 336, 336) and _red(pv).sum() > 0 and _red(pv).any(0).nonzero().max() < BAND // 2 + 2
