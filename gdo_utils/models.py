"""Load the backbone VLM and CLIP from a local path or hub id; build tiny offline stand-ins for the demo.

The demo never downloads anything: `build_tiny_vlm` trains a byte-level BPE tokenizer on the toy
world's texts and builds a randomly initialised Qwen3-VL (the recipe of
../shared/probes/tiny_qwen3vl_probe.py), `build_tiny_clip` builds a small open_clip model from a JSON
config in the `local-dir:` layout open_clip itself reads. Real runs point the same params at
Qwen3-VL-8B-Instruct and ViT-B-32 weights; `load_vlm` / `load_clip` do not care which.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .config import ClipConfig, Params, VLMConfig, params_hash, resolve_path
from .io import manifest_matches, read_json, sha256_file, write_json, write_manifest

log = logging.getLogger(__name__)

SPECIAL_TOKENS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>",
    "<|object_ref_start|>", "<|object_ref_end|>", "<|box_start|>", "<|box_end|>",
    "<|quad_start|>", "<|quad_end|>",
    "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>",
    "<tool_call>", "</tool_call>", "<think>", "</think>",
]
# Qwen3-VL-Instruct chat template (ChatML + vision placeholders), as in the probe.
CHAT_TEMPLATE = (
    "{%- set image_count = namespace(value=0) %}{%- set video_count = namespace(value=0) %}"
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' }}"
    "{%- if message['content'] is string %}{{- message['content'] }}"
    "{%- else %}{%- for content in message['content'] %}"
    "{%- if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{%- set image_count.value = image_count.value + 1 %}"
    "{%- if add_vision_id %}Picture {{ image_count.value }}: {% endif -%}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{%- elif content['type'] == 'video' or 'video' in content %}"
    "{%- set video_count.value = video_count.value + 1 %}"
    "{%- if add_vision_id %}Video {{ video_count.value }}: {% endif -%}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{%- elif 'text' in content %}{{- content['text'] }}{%- endif %}"
    "{%- endfor %}{%- endif %}"
    "{{- '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
TINY_CLIP_CONFIG = {
    "embed_dim": 64,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "head_width": 32, "patch_size": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}


# ----------------------------------------------------------------------------- devices and dtypes
def resolve_device(device: str) -> torch.device:
    """`auto` -> cuda when available (honouring LOCAL_RANK), else cpu."""
    import os

    if device == "cpu" or (device == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))


def torch_dtype(name: str) -> torch.dtype:
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


# ----------------------------------------------------------------------------- tiny Qwen3-VL
def build_tiny_tokenizer(corpus: list[str], vocab_size: int = 1024):
    """Byte-level BPE trained on `corpus`, wrapped with the Qwen chat special tokens (left padding)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE(unk_token=None))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS,
                                                         initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                                         show_progress=False))
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>", bos_token=None,
        additional_special_tokens=SPECIAL_TOKENS[1:],
        extra_special_tokens={"image_token": "<|image_pad|>", "video_token": "<|video_pad|>",
                              "vision_start_token": "<|vision_start|>", "vision_end_token": "<|vision_end|>"},
        chat_template=CHAT_TEMPLATE, padding_side="left",
    )


TINY_PATCH = 16


def tiny_image_processor():
    """The tiny Qwen3-VL's image processor (Qwen2-VL layout: patch 16, merge 2, 1k..16k pixels)."""
    from transformers import Qwen2VLImageProcessor

    return Qwen2VLImageProcessor(
        patch_size=TINY_PATCH, merge_size=2, temporal_patch_size=2,
        size={"shortest_edge": 32 * 32, "longest_edge": 128 * 128}, image_mean=[0.5] * 3, image_std=[0.5] * 3)


def build_tiny_vlm(out_dir: str | Path, corpus: list[str], seed: int = 0, hidden: int = 64) -> Path:
    """Build and save a tiny randomly initialised Qwen3-VL + processor (offline, ~1 MB)."""
    from transformers import Qwen3VLConfig, Qwen3VLForConditionalGeneration, Qwen3VLProcessor, Qwen3VLVideoProcessor

    torch.manual_seed(seed)
    tok = build_tiny_tokenizer(corpus)
    ids = {t: tok.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    patch, merge, tpatch = TINY_PATCH, 2, 2
    image_processor = tiny_image_processor()
    video_processor = Qwen3VLVideoProcessor(
        patch_size=patch, merge_size=merge, temporal_patch_size=tpatch,
        size={"shortest_edge": 32 * 32, "longest_edge": 4 * 64 * 64}, image_mean=[0.5] * 3, image_std=[0.5] * 3,
        fps=2, min_frames=2, max_frames=32, do_sample_frames=False, cap_pixels_per_frame=True)
    processor = Qwen3VLProcessor(image_processor=image_processor, tokenizer=tok, video_processor=video_processor,
                                 chat_template=CHAT_TEMPLATE)
    config = Qwen3VLConfig(
        text_config=dict(vocab_size=len(tok), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=4096,
                         tie_word_embeddings=False, pad_token_id=ids["<|endoftext|>"],
                         rope_parameters=dict(rope_type="default", rope_theta=10000.0, mrope_section=[4, 2, 2],
                                              mrope_interleaved=True)),
        vision_config=dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, patch_size=patch,
                           spatial_merge_size=merge, temporal_patch_size=tpatch, out_hidden_size=hidden,
                           num_position_embeddings=64, deepstack_visual_indexes=[0]),
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=False,
    )
    model = Qwen3VLForConditionalGeneration(config)
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


# ----------------------------------------------------------------------------- tiny CLIP
def build_tiny_clip(out_dir: str | Path, seed: int = 0, model_cfg: dict | None = None) -> Path:
    """A small open_clip model saved as open_clip's `local-dir:` layout (config JSON + safetensors)."""
    import open_clip
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cfg = model_cfg or TINY_CLIP_CONFIG
    size = cfg["vision_cfg"]["image_size"]
    write_json(out / "open_clip_config.json", {
        "model_cfg": cfg,
        "preprocess_cfg": {"size": size, "mean": [0.48145466, 0.4578275, 0.40821073],
                           "std": [0.26862954, 0.26130258, 0.27577711], "interpolation": "bicubic",
                           "resize_mode": "shortest"},
    })
    torch.manual_seed(seed)
    model = open_clip.CLIP(**cfg)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out / "open_clip_model.safetensors"))
    return out


# ----------------------------------------------------------------------------- params-level entry
def models_hash(params: Params) -> str:
    """Hash of the settings the tiny models are built from (the corpus file's checksum is added by the caller)."""
    return params_hash(params, ["models", "seed"])


def read_corpus(path: str | Path) -> list[str]:
    """Texts to train the tiny tokenizer on: a JSON list of strings (the toy world writes one)."""
    texts = read_json(path)
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise ValueError(f"{path}: a tokenizer corpus must be a JSON list of strings")
    return texts


def ensure_models(params: Params) -> dict:
    """Build the tiny demo models when `models.build_tiny` (once per params hash); return resolved paths."""
    vlm = params.models.vlm
    clip = params.models.clip
    info: dict[str, Any] = {"vlm": vlm.path, "clip_arch": clip.arch, "clip_checkpoint": clip.checkpoint}
    if not params.models.build_tiny:
        return info
    vlm_dir = resolve_path(params, vlm.path, "models.vlm.path")
    clip_file = resolve_path(params, clip.checkpoint, "models.clip.checkpoint")
    clip_dir = clip_file.parent
    corpus_file = resolve_path(params, params.models.tiny_corpus, "models.tiny_corpus")
    if not corpus_file.is_file():
        raise FileNotFoundError(f"{corpus_file} (models.tiny_corpus) not found: the tiny tokenizer is trained on it; "
                                "generate the toy world first (gdo-repro toyworld / pool)")
    root = params.stage_dir("models")
    pretrain = params.models.pretrain.enabled
    key: dict[str, Any] = {"models": models_hash(params), "corpus": sha256_file(corpus_file)}
    if pretrain:  # the base model is the tiny VLM trained on the toy world's base corpus (gdo_utils.pretrain)
        from .pretrain import pretrain_hash

        key["pretrain"] = pretrain_hash(params)
    h = params_hash(key)
    if not manifest_matches(root, h, [vlm_dir / "config.json", clip_file]):
        t0 = time.time()
        init_dir = root / "tiny-qwen3vl-init" if pretrain else vlm_dir
        build_tiny_vlm(init_dir, read_corpus(corpus_file), seed=params.seed)
        build_tiny_clip(clip_dir, seed=params.seed)
        if pretrain:
            from .pretrain import pretrain_base

            pretrain_base(params, init_dir, vlm_dir)
        write_manifest(root, stage="models", params_hash=h, params_file=params.source_file,
                       wall_time_s=time.time() - t0, outputs=[vlm_dir / "model.safetensors", clip_file])
        log.info("tiny models built in %.1fs under %s", time.time() - t0, root)
    info.update(vlm=str(vlm_dir), clip_checkpoint=str(clip_file), clip_dir=str(clip_dir), built_tiny=True,
                pretrained=pretrain)
    return info


# ----------------------------------------------------------------------------- loading
@dataclass
class VLM:
    """A loaded backbone: model (eval mode), processor, device."""

    model: Any
    processor: Any
    device: torch.device

    @property
    def tokenizer(self):
        return self.processor.tokenizer


def load_vlm(path_or_id: str | Path, dtype: str = "bfloat16", device: str = "auto",
             attn_implementation: str | None = None) -> VLM:
    """Any image-text-to-text model transformers knows (Qwen3-VL, Qwen2.5-VL), local dir or hub id."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    dev = resolve_device(device)
    kw: dict[str, Any] = {"dtype": torch_dtype(dtype)}
    if attn_implementation:
        kw["attn_implementation"] = attn_implementation
    model = AutoModelForImageTextToText.from_pretrained(str(path_or_id), **kw).to(dev).eval()
    processor = AutoProcessor.from_pretrained(str(path_or_id))
    processor.tokenizer.padding_side = "left"
    return VLM(model, processor, dev)


def load_vlm_from_params(params: Params) -> VLM:
    cfg: VLMConfig = params.models.vlm
    path = cfg.path
    if path.startswith(("run:", "toyworld:", "<FILL")) or Path(path).expanduser().exists():
        path = str(resolve_path(params, path, "models.vlm.path"))
    return load_vlm(path, cfg.dtype, params.device, cfg.attn_implementation)


@dataclass
class Clip:
    """A loaded open_clip model with its image preprocess and tokenizer."""

    model: Any
    preprocess: Any
    tokenizer: Any
    device: torch.device
    arch: str

    @property
    def embed_dim(self) -> int:
        return int(self.model.text_projection.shape[1]) if hasattr(self.model, "text_projection") and \
            self.model.text_projection is not None else int(self.model.visual.output_dim)


def load_clip(cfg: ClipConfig, params: Params | None = None, device: str = "cpu") -> Clip:
    """open_clip model from an architecture + checkpoint file, or a `local-dir:` folder with its config.

    With `model_config_path` (the demo's tiny CLIP), the architecture comes from that config through
    open_clip's own `local-dir:` schema; the weights are `checkpoint` when given (open_clip's
    `load_checkpoint`), else the folder's own weight file. Otherwise `create_model(arch, pretrained=file)`.
    """
    import open_clip

    def _path(v: str | None, field: str) -> Path | None:
        if v is None:
            return None
        return resolve_path(params, v, field) if params is not None else Path(v).expanduser()

    dev = torch.device(device) if device != "auto" else resolve_device("auto")
    cfg_path = _path(cfg.model_config_path, "models.clip.model_config_path")
    ckpt = _path(cfg.checkpoint, "models.clip.checkpoint")
    if cfg_path is not None:
        if not cfg_path.is_file():
            raise FileNotFoundError(f"models.clip.model_config_path: {cfg_path} not found")
        name = f"local-dir:{cfg_path.parent}"
        model, _, preprocess = open_clip.create_model_and_transforms(name, device=dev)
        tokenizer = open_clip.get_tokenizer(name)
        if ckpt is not None:
            if not ckpt.is_file():
                raise FileNotFoundError(f"models.clip.checkpoint: {ckpt} not found")
            open_clip.load_checkpoint(model, str(ckpt), strict=True, weights_only=True, device=str(dev))
    else:
        if ckpt is not None and not ckpt.is_file():
            raise FileNotFoundError(f"models.clip.checkpoint: {ckpt} not found")
        model, _, preprocess = open_clip.create_model_and_transforms(
            cfg.arch, pretrained=str(ckpt) if ckpt else None, device=dev, weights_only=True)
        tokenizer = open_clip.get_tokenizer(cfg.arch)
        if ckpt is None:
            log.warning("CLIP %s has no checkpoint: randomly initialised weights (fine for tests only)", cfg.arch)
    model.eval()
    return Clip(model, preprocess, tokenizer, dev, cfg.arch)
