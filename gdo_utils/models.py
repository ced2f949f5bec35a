"""Load the backbone VLM and CLIP from a local path or hub id; build tiny offline stand-ins for the demo.

The demo never downloads anything: `build_tiny_vlm` trains a byte-level BPE tokenizer on the toy
world's texts and builds a randomly initialised Qwen3-VL with the real model's chat template and
processor settings (family_fixtures/qwen3_vl_instruct.json names where each came from), `build_tiny_clip` builds a small open_clip model from a JSON
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
FIXTURES_DIR = Path(__file__).resolve().parent / "family_fixtures"


def family_fixture(name: str) -> dict:
    """A family's real chat template and processor / tokenizer settings (family_fixtures/<name>.json, source named inside)."""
    f = FIXTURES_DIR / f"{name}.json"
    if not f.is_file():
        have = sorted(p.stem for p in FIXTURES_DIR.glob("*.json"))
        raise FileNotFoundError(f"no family fixture {name!r} in {FIXTURES_DIR} (have: {', '.join(have)})")
    return read_json(f)


# Qwen3-VL-Instruct's own chat template (Qwen/Qwen3-VL-8B-Instruct; source and checksum in the fixture).
CHAT_TEMPLATE: str = family_fixture("qwen3_vl_instruct")["chat_template"]
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
    real = family_fixture("qwen3_vl_instruct")["tokenizer"]
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe, eos_token=real["eos_token"], pad_token=real["pad_token"], bos_token=real["bos_token"],
        additional_special_tokens=SPECIAL_TOKENS[1:],
        extra_special_tokens={"image_token": "<|image_pad|>", "video_token": "<|video_pad|>",
                              "vision_start_token": "<|vision_start|>", "vision_end_token": "<|vision_end|>"},
        chat_template=CHAT_TEMPLATE, padding_side="left",
    )


TINY_PATCH = 16


def tiny_image_processor():
    """The tiny Qwen3-VL's image processor: Qwen3-VL's patch, merge, mean and std; class-level sizes 1k..16k pixels."""
    from transformers import Qwen2VLImageProcessor

    real = family_fixture("qwen3_vl_instruct")["image_processor"]
    return Qwen2VLImageProcessor(
        patch_size=real["patch_size"], merge_size=real["merge_size"], temporal_patch_size=real["temporal_patch_size"],
        size={"shortest_edge": 32 * 32, "longest_edge": 128 * 128}, image_mean=real["image_mean"],
        image_std=real["image_std"])


def build_tiny_vlm(out_dir: str | Path, corpus: list[str], seed: int = 0, hidden: int = 64, layers: int = 2) -> Path:
    """Build and save a tiny randomly initialised Qwen3-VL + processor (offline, ~1 MB); `layers`: LLM depth."""
    from transformers import Qwen3VLConfig, Qwen3VLForConditionalGeneration, Qwen3VLProcessor, Qwen3VLVideoProcessor

    torch.manual_seed(seed)
    tok = build_tiny_tokenizer(corpus)
    ids = {t: tok.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    patch, merge, tpatch = TINY_PATCH, 2, 2
    image_processor = tiny_image_processor()
    vreal = family_fixture("qwen3_vl_instruct")["video_processor"]
    video_processor = Qwen3VLVideoProcessor(
        patch_size=vreal["patch_size"], merge_size=vreal["merge_size"], temporal_patch_size=vreal["temporal_patch_size"],
        size={"shortest_edge": 32 * 32, "longest_edge": 4 * 64 * 64}, image_mean=vreal["image_mean"],
        image_std=vreal["image_std"], fps=vreal["fps"], min_frames=2, max_frames=32, do_sample_frames=False,
        cap_pixels_per_frame=True)
    processor = Qwen3VLProcessor(image_processor=image_processor, tokenizer=tok, video_processor=video_processor,
                                 chat_template=CHAT_TEMPLATE)
    config = Qwen3VLConfig(
        text_config=dict(vocab_size=len(tok), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
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
    # absolute: under a relative output_root, root / "outputs/<run>/models/..." named a file that never exists,
    # so every stage that ensures the models (descriptors, evaluate) rebuilt them
    if not manifest_matches(root, h, [(vlm_dir / "config.json").absolute(), clip_file.absolute()]):
        t0 = time.time()
        init_dir = root / "tiny-qwen3vl-init" if pretrain else vlm_dir
        build_tiny_vlm(init_dir, read_corpus(corpus_file), seed=params.seed, hidden=params.models.tiny_hidden,
                       layers=params.models.tiny_layers)
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


def vlm_path(params: Params) -> str:
    """models.vlm.path as loaded: a `run:` path or local folder resolved (absolute), a hub id as is."""
    path = params.models.vlm.path
    if path.startswith(("run:", "toyworld:", "<FILL")) or Path(path).expanduser().exists():
        return str(resolve_path(params, path, "models.vlm.path"))
    return path


def load_vlm_from_params(params: Params) -> VLM:
    cfg: VLMConfig = params.models.vlm
    return load_vlm(vlm_path(params), cfg.dtype, params.device, cfg.attn_implementation)


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
