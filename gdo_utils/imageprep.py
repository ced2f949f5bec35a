"""Family-correct image preparation before the processor, shared by training and evaluation.

- Qwen-VL families (qwen3_vl, qwen2_5_vl, qwen2_vl): qwen-vl-utils `fetch_image` — resize (bicubic) to
  multiples of the processor's patch x merge size (32 px for Qwen3-VL, 28 for Qwen2.5-VL) with a pixel
  count within [min_pixels, max_pixels], aspect kept; the processor is then called with do_resize=False.
- LLaVA-1.5 (llava): LLaVA's `image_aspect_ratio: pad` — `expand2square` pads the image to a square
  with the processor's image mean (x255) as background, then the processor resizes it to its crop size
  (336) as usual; its centre crop of a square cuts nothing. Without the padding, a CLIP processor
  resizes the short side to 336 and centre-crops, so the model would see only the middle of a wide image.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, Sequence

from PIL import Image

QWEN_TYPES = ("qwen3_vl", "qwen2_5_vl", "qwen2_vl")
LLAVA_TYPES = ("llava",)
Kind = Literal["qwen", "llava_pad"]


def smart_resize(h: int, w: int, min_pixels: float, max_pixels: float, factor: int = 32) -> tuple[int, int]:
    """qwen-vl-utils `smart_resize`: multiples of `factor`, pixel count within [min, max], aspect kept."""
    hb, wb = max(factor, round(h / factor) * factor), max(factor, round(w / factor) * factor)
    if hb * wb > max_pixels:
        beta = math.sqrt(h * w / max_pixels)
        hb, wb = math.floor(h / beta / factor) * factor, math.floor(w / beta / factor) * factor
    elif hb * wb < min_pixels:
        beta = math.sqrt(min_pixels / (h * w))
        hb, wb = math.ceil(h * beta / factor) * factor, math.ceil(w * beta / factor) * factor
    return hb, wb


def expand2square(img: Image.Image, background: tuple[int, ...]) -> Image.Image:
    """LLaVA's `expand2square`: the image centred on a square canvas of `background` colour."""
    w, h = img.size
    if w == h:
        return img
    side = max(w, h)
    out = Image.new(img.mode, (side, side), background)
    out.paste(img, ((side - w) // 2, (side - h) // 2))
    return out


def mean_colour(image_mean: Sequence[float]) -> tuple[int, int, int]:
    """LLaVA's pad colour: `tuple(int(x * 255) for x in image_processor.image_mean)`."""
    r, g, b = (int(x * 255) for x in image_mean)
    return r, g, b


def kind_of(model_type: str) -> Kind:
    """How a model family prepares its images (an unknown family is an error naming the known ones)."""
    if model_type in QWEN_TYPES:
        return "qwen"
    if model_type in LLAVA_TYPES:
        return "llava_pad"
    raise ValueError(f"no image preparation known for model_type {model_type!r} "
                     f"(known: {', '.join(QWEN_TYPES + LLAVA_TYPES)})")


@dataclass(frozen=True)
class ImagePrep:
    """One family's preparation: `prepare(image)` before the processor, `processor_kwargs` for the call."""

    kind: Kind
    min_pixels: int = 0
    max_pixels: int = 0
    factor: int = 32
    background: tuple[int, int, int] = (0, 0, 0)

    def prepare(self, img: Image.Image) -> Image.Image:
        if self.kind == "llava_pad":
            return expand2square(img.convert("RGB"), self.background)
        h, w = smart_resize(img.height, img.width, self.min_pixels, self.max_pixels, self.factor)
        return img.resize((w, h), Image.BICUBIC)

    @property
    def processor_kwargs(self) -> dict[str, Any]:
        """Qwen: the image is already sized (do_resize=False); LLaVA: the processor's own resize to 336."""
        return {"do_resize": False} if self.kind == "qwen" else {}


def image_prep(processor: Any, model_type: str, min_pixels: int = 0, max_pixels: int = 0) -> ImagePrep:
    """The preparation for a model family, with the processor's patch factor (Qwen) or image mean (LLaVA)."""
    ip = getattr(processor, "image_processor", processor)
    kind = kind_of(model_type)
    if kind == "llava_pad":
        return ImagePrep(kind, background=mean_colour(getattr(ip, "image_mean", (0.0, 0.0, 0.0))))
    factor = int(getattr(ip, "patch_size", 16)) * int(getattr(ip, "merge_size", 2))
    return ImagePrep(kind, min_pixels, max_pixels, factor)


def training_images(processor: Any, model_type: str, images: list[Image.Image]) -> list[Image.Image]:
    """A training row's images before the processor: LLaVA padded to a square (its recipe's `pad`); Qwen as
    they are (the trainer passes the pixel bounds to the processor, which resizes them the same smart way)."""
    if not images or kind_of(model_type) == "qwen":
        return images
    prep = image_prep(processor, model_type)
    return [prep.prepare(im) for im in images]
