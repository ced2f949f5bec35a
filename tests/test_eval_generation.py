"""The shared generation helpers: the chat input with and without a system turn (`evaluate.system_prompt`)."""
from __future__ import annotations

from gdo_utils.config import load_params
from gdo_utils.evaluate.generation import chat_texts, messages
from gdo_utils.evaluate.image.stage import contract_id as image_contract
from gdo_utils.evaluate.stage import generation_hash
from gdo_utils.evaluate.video import contract_id as video_contract


class _Proc:
    """A processor stand-in rendering the Qwen3-VL template the way the tiny model's does (ChatML)."""

    def apply_chat_template(self, convs, tokenize, add_generation_prompt):
        from jinja2 import Template

        from gdo_utils.models import CHAT_TEMPLATE

        t = Template(CHAT_TEMPLATE)
        return [t.render(messages=c, add_generation_prompt=add_generation_prompt) for c in convs]


def test_release_default_sends_no_system_turn():
    assert messages("Q?", "image") == [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Q?"}]}]
    (text,) = chat_texts(_Proc(), ["Q?"], "video")
    assert text == "<|im_start|>user\n<|vision_start|><|video_pad|><|vision_end|>Q?<|im_end|>\n<|im_start|>assistant\n"


def test_system_prompt_option_adds_the_turn_and_changes_the_contract():
    (text,) = chat_texts(_Proc(), ["Q?"], "image", "You are a helpful assistant.")
    assert text == ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
                    "<|vision_start|><|image_pad|><|vision_end|>Q?<|im_end|>\n<|im_start|>assistant\n")
    p0 = load_params("params/demo.yaml", [])
    p1 = load_params("params/demo.yaml", ["evaluate.system_prompt=You are a helpful assistant."])
    assert video_contract(p0.evaluate) == "fps1-f4..32-px4096..4096-greedy16-release"
    assert video_contract(p1.evaluate) == "fps1-f4..32-px4096..4096-greedy16-release-system"
    assert image_contract(p1).endswith("-release-system") and not image_contract(p0).endswith("-system")
    h = [generation_hash(p.evaluate, "mvbench", {}, "m") for p in (p0, p1)]
    assert h[0] != h[1]
