"""The OFA starting model: LLaVA-1.5 stage 2 assembled from its three parts as a transformers LlavaForConditionalGeneration.

LLaVA-1.5's instruction tuning (what the OFA subsets replace) does not start from llava-hf/llava-1.5-7b-hf
(already trained on all of LLaVA-665K) but from
  - the vision tower CLIP ViT-L/14-336 (features of the second-to-last layer, patch tokens only),
  - the language model Vicuna-7B-v1.5,
  - the stage-1 pretrain projector (mlp2x_gelu), saved under LLaVA's own key names
    `model.mm_projector.{0,2}.{weight,bias}` (mm_projector.bin, or a .safetensors with the same keys).
`assemble_llava` loads each part, puts it where llava-hf's layout keeps it (projector 0 -> linear_1, 2 -> linear_2),
adds the `<image>` and `<pad>` tokens (embedding rows: the mean of the existing ones), and saves the model with
llava-1.5-hf's chat template and processor settings (family fixture llava_1_5_hf). `assemble_stage` runs it from
params (`assemble_llava:` section) and keeps a manifest: same parts + same params + same code -> skipped.
"""
from __future__ import annotations

import hashlib
import logging
import time
from pathlib import Path
from typing import Any

import torch

from ..config import Params, canonical_json, resolve_path
from ..io import manifest_matches, read_json, sha256_file, write_json, write_manifest
from ..models import family_fixture

log = logging.getLogger(__name__)

PROJECTOR_KEYS = {"model.mm_projector.0.weight": "linear_1.weight", "model.mm_projector.0.bias": "linear_1.bias",
                  "model.mm_projector.2.weight": "linear_2.weight", "model.mm_projector.2.bias": "linear_2.bias"}
DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}


class AssemblyError(ValueError):
    """A part that does not fit (missing projector keys, shapes that do not match the vision tower / LLM)."""


def llava_config(vision: Any, text: Any, tok: Any):
    """LlavaConfig as llava-hf writes it for llava-1.5: penultimate CLIP layer, patch tokens only, gelu MLP."""
    from transformers import LlavaConfig

    n = (vision.image_size // vision.patch_size) ** 2
    return LlavaConfig(vision_config=vision, text_config=text, image_token_id=tok.convert_tokens_to_ids("<image>"),
                       vision_feature_select_strategy="default", vision_feature_layer=-2, image_seq_length=n,
                       projector_hidden_act="gelu", pad_token_id=tok.pad_token_id)


def llava_processor(tok: Any, image_size: int):
    """LlavaProcessor with llava-1.5-hf's settings (fixture llava_1_5_hf) at `image_size` pixels."""
    from transformers import CLIPImageProcessor, LlavaProcessor

    real = family_fixture("llava_1_5_hf")
    rip = {k: v for k, v in real["image_processor"].items() if k not in ("class", "size", "crop_size")}
    ip = CLIPImageProcessor(size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size},
                            **rip)
    return LlavaProcessor(image_processor=ip, tokenizer=tok, chat_template=real["chat_template"],
                          image_token=real["tokenizer"]["image_token"], **real["processor"])


def load_projector(path: str | Path) -> dict[str, torch.Tensor]:
    """The stage-1 projector in LLaVA's key names, renamed to llava-hf's (linear_1 / linear_2)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"projector file {p} not found (LLaVA-1.5 stage-1 mm_projector.bin)")
    if p.suffix == ".safetensors":
        from safetensors.torch import load_file

        sd = load_file(str(p))
    else:
        sd = torch.load(str(p), map_location="cpu", weights_only=True)
    missing = sorted(set(PROJECTOR_KEYS) - set(sd))
    if missing:
        raise AssemblyError(f"{p}: not a LLaVA mlp2x_gelu projector: missing {missing} (has {sorted(sd)[:8]})")
    return {PROJECTOR_KEYS[k]: v for k, v in sd.items() if k in PROJECTOR_KEYS}


def prepare_tokenizer(lm_dir: str | Path):
    """The LLM's tokenizer with llava-1.5-hf's additions: `<image>` (placeholder) and `<pad>`, left padding."""
    from transformers import AutoTokenizer

    real = family_fixture("llava_1_5_hf")["tokenizer"]
    tok = AutoTokenizer.from_pretrained(str(lm_dir))
    tok.add_special_tokens({"additional_special_tokens": [real["image_token"]]})
    if tok.pad_token is None or tok.pad_token == tok.unk_token:
        tok.add_special_tokens({"pad_token": real["pad_token"]})
    tok.padding_side = real["padding_side"]
    tok.chat_template = family_fixture("llava_1_5_hf")["chat_template"]
    return tok


def assemble_llava(vision_tower: str | Path, language_model: str | Path, projector: str | Path, out_dir: str | Path,
                   dtype: str = "float16") -> dict:
    """Build and save LlavaForConditionalGeneration + processor from the three parts; returns a summary."""
    from transformers import AutoConfig, AutoModelForCausalLM, CLIPVisionConfig, CLIPVisionModel, LlavaForConditionalGeneration

    dt = DTYPES[dtype]
    tok = prepare_tokenizer(language_model)
    vcfg = CLIPVisionConfig.from_pretrained(str(vision_tower))
    tcfg = AutoConfig.from_pretrained(str(language_model))
    proj = load_projector(projector)
    want = {"linear_1.weight": (tcfg.hidden_size, vcfg.hidden_size), "linear_2.weight": (tcfg.hidden_size, tcfg.hidden_size)}
    for k, shape in want.items():
        if tuple(proj[k].shape) != shape:
            raise AssemblyError(f"{projector}: {k} has shape {tuple(proj[k].shape)}, the parts need {shape} "
                                f"(vision hidden {vcfg.hidden_size}, LLM hidden {tcfg.hidden_size})")
    config = llava_config(vcfg, tcfg, tok)
    with torch.device("meta"):
        model = LlavaForConditionalGeneration(config)
    vision = CLIPVisionModel.from_pretrained(str(vision_tower), dtype=dt)
    model.model.vision_tower.load_state_dict(vision.state_dict(), strict=True, assign=True)
    del vision
    lm = AutoModelForCausalLM.from_pretrained(str(language_model), dtype=dt)
    model.model.language_model.load_state_dict(lm.model.state_dict(), strict=True, assign=True)
    model.lm_head.load_state_dict(lm.lm_head.state_dict(), strict=True, assign=True)
    lm_generation = lm.generation_config
    del lm
    model.model.multi_modal_projector.load_state_dict({k: v.to(dt) for k, v in proj.items()}, strict=True, assign=True)
    n_old = model.get_input_embeddings().weight.shape[0]
    model.resize_token_embeddings(len(tok), mean_resizing=True)
    model.config.text_config.vocab_size = len(tok)
    gen = model.generation_config
    gen.bos_token_id, gen.eos_token_id, gen.pad_token_id = tok.bos_token_id, tok.eos_token_id, tok.pad_token_id
    gen.do_sample = bool(getattr(lm_generation, "do_sample", False))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    llava_processor(tok, vcfg.image_size).save_pretrained(out)
    return {"vision_tower": str(vision_tower), "language_model": str(language_model), "projector": str(projector),
            "dtype": dtype, "image_size": vcfg.image_size, "image_seq_length": config.image_seq_length,
            "vocab": {"language_model": n_old, "assembled": len(tok)},
            "added_tokens": {"image": tok.convert_tokens_to_ids("<image>"), "pad": tok.pad_token_id}}


# ----------------------------------------------------------------------------- stage
def _part(params: Params, value: str | None, field: str) -> str:
    """A part given as a local path (made absolute) or a hub id already in the HF cache (kept as is)."""
    if value is None:
        raise ValueError(f"{params.source_file}: {field} is not set (the OFA starting model needs it)")
    p = resolve_path(params, value, field)
    return str(p.resolve()) if p.exists() else value


def _fingerprint(path: str) -> str:
    """A part's identity: the projector file's checksum; a model folder's files (size, mtime); a hub id: the id."""
    from ..cache import model_fingerprint

    p = Path(path)
    return sha256_file(p) if p.is_file() else model_fingerprint(path)


def assemble_stage(params: Params, force: bool = False) -> dict:
    """Assemble the OFA starting model from params.assemble_llava (skipped when the manifest matches)."""
    from ..cache import code_version

    cfg = params.assemble_llava
    parts = {name: _part(params, getattr(cfg, name), f"assemble_llava.{name}")
             for name in ("vision_tower", "language_model", "projector")}
    out = resolve_path(params, cfg.out, "assemble_llava.out")
    key = {"parts": {k: _fingerprint(v) for k, v in parts.items()}, "dtype": cfg.dtype,
           "code": code_version(["gdo_utils.train.llava"])}
    h = hashlib.sha256(canonical_json(key).encode()).hexdigest()[:16]
    if not force and manifest_matches(out, h, [out / "config.json", out / "processor_config.json"]):
        log.info("assembled LLaVA start at %s is up to date", out)
        return read_json(out / "assembly.json")
    t0 = time.time()
    info = assemble_llava(parts["vision_tower"], parts["language_model"], parts["projector"], out, cfg.dtype)
    write_json(out / "assembly.json", info)
    weights = sorted(out.glob("*.safetensors"))
    write_manifest(out, stage="assemble_llava", params_hash=h, params_file=params.source_file,
                   wall_time_s=time.time() - t0, outputs=[out / "config.json", out / "assembly.json", *weights],
                   extra={"parts": parts, "fingerprints": key["parts"]})
    log.info("assembled the LLaVA-1.5 stage-2 start in %.1fs under %s", time.time() - t0, out)
    return info
