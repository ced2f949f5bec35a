"""The tiny models carry the real families' chat templates; labels supervise what each original recipe supervises."""
from __future__ import annotations

import hashlib

import pytest

from gdo_utils.models import family_fixture
from gdo_utils.train.collate import Collator
from gdo_utils.train.encode import IGNORE_INDEX, EncodeSettings, close_answers, load_media
from gdo_utils.train.families import FAMILIES
from gdo_utils.train.records import parse_c1_row
from tests.conftest import write_jpg

# Transcribed from the sources named in each fixture (not read off the fixture): Qwen3-VL-8B-Instruct's template
# is pinned there by length and SHA-256; the other two are the texts' SHA-256 as copied from their sources.
PINNED = {"qwen3_vl_instruct": (5292, "3636d0f0bd6bef02654cdffdc447b79cb2cef8ab02cc75267345946291a489e4"),
          "qwen2_5_vl_instruct": (1017, "a0bc6f6fc7a29a80017a433e8f03a1cc1236e838a944a2d034295a60c4f2fddb"),
          "llava_1_5_hf": (674, "6fef09c05345e88b9f85e80bcb3491003332050750586568bdf91cfa81965d0c")}


@pytest.mark.parametrize("name", sorted(PINNED))
def test_fixture_is_the_pinned_text_with_its_source_named(name):
    fx = family_fixture(name)
    raw = fx["chat_template"].encode()
    assert (len(raw), hashlib.sha256(raw).hexdigest()) == PINNED[name]
    assert fx["sha256"] == PINNED[name][1] and "commit" in fx["source"]["read_from"] and fx["model"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from transformers import AutoProcessor

    from gdo_utils.train.tiny import build_tiny_llava, build_tiny_qwen25vl
    from tests.train_helpers import tiny_qwen3vl

    root = tmp_path_factory.mktemp("tpl")
    dirs = {"qwen3_vl_instruct": tiny_qwen3vl(root), "qwen2_5_vl_instruct": build_tiny_qwen25vl(root / "q25"),
            "llava_1_5_hf": build_tiny_llava(root / "llava")}
    return {k: AutoProcessor.from_pretrained(d) for k, d in dirs.items()}


def test_tiny_models_load_with_the_real_templates_and_settings(tiny):
    for name, proc in tiny.items():
        fx = family_fixture(name)
        assert proc.chat_template == fx["chat_template"], name
        assert proc.tokenizer.eos_token == fx["tokenizer"]["eos_token"], name
    llava = tiny["llava_1_5_hf"]
    assert llava.tokenizer("hi")["input_ids"][0] == llava.tokenizer.bos_token_id   # LLaMA adds BOS
    ip = llava.image_processor
    assert ip.do_center_crop and ip.resample == 3 and list(ip.image_mean) == family_fixture("llava_1_5_hf")["image_processor"]["image_mean"]
    assert llava.vision_feature_select_strategy == "default" and llava.num_additional_image_tokens == 1
    assert tiny["qwen3_vl_instruct"].image_processor.patch_size == 16
    assert tiny["qwen2_5_vl_instruct"].image_processor.patch_size == 14


def _row(tmp_path, turns):
    img = str(write_jpg(tmp_path / "a.jpg", (200, 30, 30), (48, 40)))
    msgs = []
    for i, (q, a) in enumerate(turns):
        msgs += [{"role": "user", "content": ("<image>\n" if i == 0 else "") + q}, {"role": "assistant", "content": a}]
    return parse_c1_row({"id": "r", "messages": msgs, "images": [img], "media_kind": "image"}, "/x/t.jsonl", 1)


def _encode(proc, fam, rec):
    s = EncodeSettings()
    return Collator(proc, fam, s, "none")([{"record": rec, "media": load_media(rec, s, fam)}])


def _supervised(batch) -> list[list[int]]:
    """The runs of consecutive supervised label ids."""
    lab = batch["labels"][0].tolist()
    runs, cur = [], []
    for t in lab + [IGNORE_INDEX]:
        if t == IGNORE_INDEX:
            if cur:
                runs.append(cur)
            cur = []
        else:
            cur.append(t)
    return runs


def test_llava_labels_hold_each_answer_and_its_eos(tiny, tmp_path):
    """llava-1.5-hf's template ends an answer with ' '; LLaVA-1.5 supervises 'answer</s>' (fails without close_answers)."""
    proc = tiny["llava_1_5_hf"]
    tok = proc.tokenizer
    rec = _row(tmp_path, [("What colour is the square?", "The square is red."), ("And the ball?", "yes")])
    batch = _encode(proc, FAMILIES["llava"], rec)
    n_img = 4   # 28 px / patch 14 = 2 x 2 patch tokens (CLS dropped: strategy 'default')
    want = ([tok.bos_token_id] + tok("USER: " + "<image>" * n_img + "\nWhat colour is the square? ASSISTANT: The square "
                                     "is red.</s>USER: And the ball? ASSISTANT: yes</s>", add_special_tokens=False)["input_ids"])
    assert batch["input_ids"][0].tolist() == want
    answers = [tok(" The square is red.</s>", add_special_tokens=False)["input_ids"],
               tok(" yes</s>", add_special_tokens=False)["input_ids"]]
    assert _supervised(batch) == answers
    assert all(a[-1] == tok.eos_token_id for a in answers)


def test_qwen_labels_hold_each_answer_and_im_end(tiny, tmp_path):
    rec = _row(tmp_path, [("What colour is the square?", "The square is red.")])
    for name, fam in (("qwen3_vl_instruct", "qwen3_vl"), ("qwen2_5_vl_instruct", "qwen2_5_vl")):
        proc = tiny[name]
        tok = proc.tokenizer
        batch = _encode(proc, FAMILIES[fam], rec)
        assert _supervised(batch) == [tok("The square is red.<|im_end|>", add_special_tokens=False)["input_ids"]], name
        text = tok.decode(batch["input_ids"][0])
        # Qwen2.5-VL's template adds its default system turn; Qwen3-VL's does not (ms-swift / the release: none).
        assert text.startswith("<|im_start|>system\nYou are a helpful assistant.<|im_end|>") == (name == "qwen2_5_vl_instruct")


def test_close_answers_only_adds_a_missing_eos():
    assert close_answers("U: q A: a U: r A: b ", [(7, 9), (17, 19)], "</s>") == ("U: q A: a</s>U: r A: b</s>",
                                                                             [(7, 13), (20, 26)])
    text = "<|im_start|>assistant\na<|im_end|>\n"
    assert close_answers(text, [(22, 33)], "<|im_end|>") == (text, [(22, 33)])
    assert close_answers("x", [(0, 1)], None) == ("x", [(0, 1)])


def test_llava_generate_stops_at_eos(tiny, tmp_path):
    """The tiny LLaVA's generation config stops at </s>, the token its labels now teach."""
    from transformers import GenerationConfig

    d = tmp_path / "g"
    from gdo_utils.train.tiny import build_tiny_llava

    build_tiny_llava(d)
    gc = GenerationConfig.from_pretrained(d)
    assert gc.eos_token_id == tiny["llava_1_5_hf"].tokenizer.eos_token_id
