"""`gdo-repro assemble-llava`: the OFA start from tiny parts built offline, and paper.yaml's OFA launch from it."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gdo_utils.io import read_json
from tests.conftest import REPO, write_jpg

ENV = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
       "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
CLI = [sys.executable, "-m", "gdo_utils.cli"]


def _vicuna_like(d: Path) -> Path:
    """A tiny Llama causal LM with a LLaMA-style tokenizer that has no <image> / <pad> (as Vicuna's)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE(unk_token=None))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(["What colour is the square? The square is red. USER: ASSISTANT:"] * 5,
                            trainers.BpeTrainer(vocab_size=300, special_tokens=["<unk>", "<s>", "</s>"],
                                                initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                                show_progress=False))
    bpe.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, unk_token="<unk>", bos_token="<s>", eos_token="</s>")
    torch.manual_seed(1)
    lm = LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=48, intermediate_size=96, num_hidden_layers=2,
                                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                                      bos_token_id=1, eos_token_id=2, tie_word_embeddings=False))
    lm.save_pretrained(d)
    tok.save_pretrained(d)
    return d


def _clip(d: Path) -> Path:
    from transformers import CLIPVisionConfig, CLIPVisionModel

    torch.manual_seed(2)
    CLIPVisionModel(CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=2,
                                     image_size=56, patch_size=14)).save_pretrained(d)
    return d


def _projector(f: Path, vis: int = 32, hid: int = 48) -> dict[str, torch.Tensor]:
    """mm_projector.bin as LLaVA's stage 1 saves it: only the projector, under LLaVA's own key names."""
    g = torch.Generator().manual_seed(3)
    sd = {"model.mm_projector.0.weight": torch.randn(hid, vis, generator=g), "model.mm_projector.0.bias": torch.randn(hid, generator=g),
          "model.mm_projector.2.weight": torch.randn(hid, hid, generator=g), "model.mm_projector.2.bias": torch.randn(hid, generator=g)}
    torch.save(sd, f)
    return sd


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    root = tmp_path_factory.mktemp("parts")
    proj = root / "mm_projector.bin"
    return {"vision_tower": _clip(root / "clip"), "language_model": _vicuna_like(root / "vicuna"),
            "projector": proj, "projector_sd": _projector(proj)}


def _sets(out: Path, parts: dict, dtype: str = "float32") -> list[str]:
    return ["--set", f"output_root={out}", "--set", f"assemble_llava.vision_tower={parts['vision_tower']}",
            "--set", f"assemble_llava.language_model={parts['language_model']}",
            "--set", f"assemble_llava.projector={parts['projector']}", "--set", f"assemble_llava.dtype={dtype}"]


@pytest.fixture(scope="module")
def assembled(tmp_path_factory, parts) -> Path:
    """`gdo-repro assemble-llava` on paper.yaml with the tiny parts: the run's output root."""
    out = tmp_path_factory.mktemp("asm") / "out"
    r = subprocess.run(CLI + ["assemble-llava", "--params", "params/paper.yaml"] + _sets(out, parts),
                       capture_output=True, text=True, env=ENV, cwd=REPO, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    return out


@pytest.mark.slow
def test_assembled_model_holds_each_part_where_it_belongs_and_generates(tmp_path, parts, assembled):
    from transformers import (AutoModelForImageTextToText, AutoProcessor, CLIPVisionModel, LlamaForCausalLM,
                              LlavaForConditionalGeneration)

    from gdo_utils.config import load_params
    from gdo_utils.models import family_fixture
    from gdo_utils.train.llava import assemble_stage

    out = assembled
    d = out / "paper" / "models" / "llava15_stage2_start"
    m = AutoModelForImageTextToText.from_pretrained(d)
    assert isinstance(m, LlavaForConditionalGeneration)
    sd = parts["projector_sd"]
    pj = m.model.multi_modal_projector
    assert torch.equal(pj.linear_1.weight, sd["model.mm_projector.0.weight"]) and torch.equal(pj.linear_1.bias, sd["model.mm_projector.0.bias"])
    assert torch.equal(pj.linear_2.weight, sd["model.mm_projector.2.weight"]) and torch.equal(pj.linear_2.bias, sd["model.mm_projector.2.bias"])
    clip = CLIPVisionModel.from_pretrained(parts["vision_tower"]).state_dict()
    assert all(torch.equal(v, m.model.vision_tower.state_dict()[k]) for k, v in clip.items())
    lm = LlamaForCausalLM.from_pretrained(parts["language_model"])
    n = lm.config.vocab_size
    lm_sd, got = lm.model.state_dict(), m.model.language_model.state_dict()
    assert all(torch.equal(v, got[k]) for k, v in lm_sd.items() if k != "embed_tokens.weight")
    assert torch.equal(got["embed_tokens.weight"][:n], lm_sd["embed_tokens.weight"])
    assert torch.equal(m.lm_head.weight[:n], lm.lm_head.weight) and m.lm_head.weight.shape[0] == n + 2
    c = m.config
    assert (c.vision_feature_layer, c.vision_feature_select_strategy, c.image_seq_length) == (-2, "default", 16)
    proc = AutoProcessor.from_pretrained(d)
    assert proc.chat_template == family_fixture("llava_1_5_hf")["chat_template"]
    tok = proc.tokenizer
    assert tok.convert_tokens_to_ids("<image>") == n and tok.pad_token == "<pad>" and c.image_token_id == n
    assert proc.image_processor.crop_size == {"height": 56, "width": 56}
    msgs = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What colour is the square?"}]}]
    text = proc.apply_chat_template(msgs, add_generation_prompt=True)
    from PIL import Image

    enc = proc(text=[text], images=[Image.open(write_jpg(tmp_path / "a.jpg", size=(70, 50)))], return_tensors="pt")
    assert (enc["input_ids"] == n).sum() == 16                      # 56 / 14 = 4 x 4 patch tokens
    with torch.no_grad():
        logits = m(**enc).logits
        gen = m.generate(**enc, max_new_tokens=3, do_sample=False)
    assert logits.shape[-1] == n + 2 and gen.shape[1] == enc["input_ids"].shape[1] + 3
    info = read_json(d / "assembly.json")
    assert info["vocab"] == {"language_model": n, "assembled": n + 2} and (d / "manifest.json").is_file()
    # Up to date: a second call with the same parts reuses the folder.
    before = (d / "model.safetensors").stat().st_mtime_ns
    sets = [x for x in _sets(out, parts) if x != "--set"]
    assert assemble_stage(load_params("params/paper.yaml", sets)) == info
    assert (d / "model.safetensors").stat().st_mtime_ns == before


def test_projector_that_does_not_fit_is_refused_with_the_file(tmp_path, parts):
    from gdo_utils.train.llava import AssemblyError, assemble_llava

    bad = tmp_path / "wrong.bin"
    _projector(bad, vis=16)
    with pytest.raises(AssemblyError, match=r"wrong.bin: linear_1.weight has shape \(48, 16\)"):
        assemble_llava(parts["vision_tower"], parts["language_model"], bad, tmp_path / "o")
    torch.save({"mm_projector.weight": torch.zeros(1)}, tmp_path / "other.bin")
    with pytest.raises(AssemblyError, match="other.bin: not a LLaVA mlp2x_gelu projector"):
        assemble_llava(parts["vision_tower"], parts["language_model"], tmp_path / "other.bin", tmp_path / "o")


@pytest.mark.slow
def test_paper_ofa_launch_shows_the_assembled_start_and_the_llava_recipe(parts, assembled):
    out = assembled
    r = subprocess.run(CLI + ["train", "--params", "params/paper.yaml", "--subset", "ofa_llava665k", "--print-launch"]
                       + _sets(out, parts), capture_output=True, text=True, env=ENV, cwd=REPO, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    head, cmd = r.stdout.strip().splitlines()
    start = out / "paper" / "models" / "llava15_stage2_start"
    assert head.startswith(f"# ofa_llava665k: start {start.resolve()} = gdo-repro assemble-llava of language model "
                           f"{parts['language_model']}, vision tower {parts['vision_tower']}, projector {parts['projector']}")
    assert ("recipe llava15_lora: lr 0.0002, projector lr 2e-05, LoRA r 128 / alpha 256 / dropout 0.05, "
            "frozen vision_tower, AdamW betas (0.9, 0.999), weight decay 0, warmup 0.03, cosine, grad clip 1, "
            "1 epoch(s), max length 2048, global batch 128 = 16 x 8 processes x 1 accumulation, "
            "batches grouped by modality") in head
    assert "--fsdp_transformer_layer_cls_to_wrap LlamaDecoderLayer,CLIPEncoderLayer" in cmd
    assert cmd.startswith("accelerate launch") and "--num_processes 8" in cmd and "--subset ofa_llava665k" in cmd
