"""Training data: C1 reader, collator labels vs hand-built expectations, placeholder expansion, dummy image, schedule."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from gdo_utils.train.collate import Collator
from gdo_utils.train.encode import IGNORE_INDEX, EncodeSettings, RowSkipped, encode_row, load_media
from gdo_utils.train.families import FAMILIES, apply_freeze, family_of
from gdo_utils.train.records import TrainFileError, parse_c1_row, read_c1, read_llava_json
from gdo_utils.train.schedule import fraction_steps, samples_seen, total_steps
from tests.train_helpers import c1_rows, tiny_qwen3vl, write_subset


@pytest.fixture(scope="module")
def qwen(tmp_path_factory):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    d = tiny_qwen3vl(tmp_path_factory.mktemp("m"))
    proc = AutoProcessor.from_pretrained(d)
    return proc, AutoModelForImageTextToText.from_pretrained(d), FAMILIES["qwen3_vl"]


def ids(tok, text):
    return tok(text, add_special_tokens=False)["input_ids"]


def rec(obj):
    return parse_c1_row(obj, "/x/train.jsonl", 1)


# ----------------------------------------------------------------------------- reader
def test_c1_reader_names_file_line_field(tmp_path):
    good = {"id": "a", "messages": [{"role": "user", "content": "<image>\nq"}, {"role": "assistant", "content": "a"}],
            "images": ["/abs/a.jpg"], "media_kind": "image"}
    cases = [({**good, "images": ["rel.jpg"]}, "images[0]"),
             ({**good, "media_kind": "frames", "images": []}, "images"),
             ({**good, "messages": [{"role": "system", "content": "s"}] + good["messages"]}, "messages[0]"),
             ({**good, "images": ["/a.jpg", "/b.jpg"], "media_kind": "frames"}, "messages"),  # 1 placeholder, 2 frames
             ({**good, "media_kind": "video", "images": [], "videos": ["/v.mp4"]}, "frame_indices")]
    for i, (row, fld) in enumerate(cases):
        f = tmp_path / f"t{i}.jsonl"
        f.write_text(json.dumps(good) + "\n" + json.dumps({**row, "id": "b"}) + "\n")
        with pytest.raises(TrainFileError) as e:
            read_c1(f)
        assert e.value.line == 2 and e.value.field == fld and str(f) in str(e.value)
    f = tmp_path / "dup.jsonl"
    f.write_text(json.dumps(good) + "\n" + json.dumps(good) + "\n")
    with pytest.raises(TrainFileError, match="duplicate id"):
        read_c1(f)


def test_llava_json_reader_media_root_and_text_rows(tmp_path):
    data = [{"id": "1", "image": "coco/a.jpg", "conversations": [{"from": "human", "value": "<image>\nq1"},
                                                                {"from": "gpt", "value": "a1"},
                                                                {"from": "human", "value": "q2"},
                                                                {"from": "gpt", "value": "a2"}]},
            {"id": "2", "conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "yo"}]}]
    f = tmp_path / "llava.json"
    f.write_text(json.dumps(data))
    rows = read_llava_json(f, media_root=tmp_path / "media")
    assert rows[0].images == [str((tmp_path / "media" / "coco" / "a.jpg").resolve())]
    assert [m["role"] for m in rows[0].messages] == ["user", "assistant", "user", "assistant"]
    assert rows[1].media_kind == "text" and rows[1].images == []


# ----------------------------------------------------------------------------- labels vs hand-built expectations
def test_collator_masks_prompt_and_padding_image_and_frames_rows(qwen, tmp_path):
    proc, _, fam = qwen
    tok = proc.tokenizer
    img = write_jpg_sized(tmp_path / "a.jpg", (96, 64))         # width 96, height 64
    frames = [write_jpg_sized(tmp_path / f"f{i}.jpg", (32, 32)) for i in range(3)]
    r_img = rec({"id": "i", "messages": [{"role": "user", "content": "<image>\nWhat colour is the square?"},
                                          {"role": "assistant", "content": "red"}], "images": [img], "media_kind": "image"})
    r_vid = rec({"id": "v", "messages": [{"role": "user", "content": "<image><image><image>\nDescribe the video."},
                                          {"role": "assistant", "content": "A ball moves left."}],
                 "images": frames, "media_kind": "frames"})
    s = EncodeSettings()   # frames as images, 4096..50176 px each
    col = Collator(proc, fam, s)
    batch = col([{"record": r, "media": load_media(r, s, fam)} for r in (r_img, r_vid)])
    # Hand-built: 96x64 fits [4096, 50176] px -> 64x96 at 32 px per merged token -> 2*3 = 6 tokens.
    # 32x32 frames (1024 px) are scaled up to the 4096 px floor -> 64x64 -> 4 tokens each.
    vis = lambda n: "<|vision_start|>" + "<|image_pad|>" * n + "<|vision_end|>"  # noqa: E731
    p_img = ids(tok, "<|im_start|>user\n" + vis(6) + "\nWhat colour is the square?<|im_end|>\n<|im_start|>assistant\n")
    a_img = ids(tok, "red<|im_end|>")
    p_vid = ids(tok, "<|im_start|>user\n" + vis(4) * 3 + "\nDescribe the video.<|im_end|>\n<|im_start|>assistant\n")
    a_vid = ids(tok, "A ball moves left.<|im_end|>")
    nl = ids(tok, "\n")
    row_img, row_vid = p_img + a_img + nl, p_vid + a_vid + nl
    width = max(len(row_img), len(row_vid))
    pad = tok.pad_token_id
    exp_ids = [r + [pad] * (width - len(r)) for r in (row_img, row_vid)]
    exp_lab = [[IGNORE_INDEX] * len(p) + a + [IGNORE_INDEX] * (width - len(p) - len(a))
               for p, a in ((p_img, a_img), (p_vid, a_vid))]
    assert batch["input_ids"].tolist() == exp_ids
    assert batch["labels"].tolist() == exp_lab
    assert batch["attention_mask"].tolist() == [[1] * len(r) + [0] * (width - len(r)) for r in (row_img, row_vid)]
    assert batch["image_grid_thw"].tolist() == [[1, 4, 6]] + [[1, 4, 4]] * 3
    image_id = tok.convert_tokens_to_ids("<|image_pad|>")
    assert batch["mm_token_type_ids"].tolist() == [[1 if t == image_id else 0 for t in r] for r in exp_ids]


def test_video_input_option_has_true_timestamps(qwen, tmp_path):
    proc, model, fam = qwen
    tok = proc.tokenizer
    frames = [write_jpg_sized(tmp_path / f"g{i}.jpg", (32, 32)) for i in range(4)]
    r = rec({"id": "v", "messages": [{"role": "user", "content": "<image>" * 4 + "\nDescribe the video."},
                                      {"role": "assistant", "content": "A ball moves left."}],
             "images": frames, "media_kind": "frames", "frame_indices": [[0, 2, 4, 6]], "video_fps": 2.0})
    s = EncodeSettings(video_input="video")
    enc = encode_row(proc, fam, r, load_media(r, s, fam), s)
    # 4 frames, temporal patch 2 -> 2 groups at (0+2)/2/2 = 0.5 s and (4+6)/2/2 = 2.5 s; 32x32 frames scaled
    # to the 4 x 4096 px floor -> 64x64 -> 4 tokens per group. transformers 5.x replaces only <|video_pad|>, so
    # the template's own <|vision_start|>...<|vision_end|> wraps the timestamped groups.
    grp = lambda t: f"<{t} seconds><|vision_start|>" + "<|video_pad|>" * 4 + "<|vision_end|>"  # noqa: E731
    prompt = ids(tok, "<|im_start|>user\n<|vision_start|>" + grp("0.5") + grp("2.5") +
                 "<|vision_end|>\nDescribe the video.<|im_end|>\n<|im_start|>assistant\n")
    ans = ids(tok, "A ball moves left.<|im_end|>")
    assert enc["input_ids"][0].tolist() == prompt + ans + ids(tok, "\n")
    assert enc["labels"][0].tolist() == [IGNORE_INDEX] * len(prompt) + ans + [IGNORE_INDEX]
    assert enc["video_grid_thw"].tolist() == [[2, 4, 4]]
    assert model(**enc).loss.isfinite()


def test_placeholders_expand_to_processor_token_counts(qwen, tmp_path):
    proc, _, fam = qwen
    sizes = [(96, 64), (200, 120), (32, 32), (500, 400)]
    paths = [write_jpg_sized(tmp_path / f"s{i}.jpg", wh) for i, wh in enumerate(sizes)]
    r = rec({"id": "x", "messages": [{"role": "user", "content": "<image>" * 4 + "\nq"},
                                      {"role": "assistant", "content": "a"}], "images": paths, "media_kind": "frames"})
    s = EncodeSettings()
    enc = encode_row(proc, fam, r, load_media(r, s, fam), s)
    # By hand (Qwen smart_resize, 32 px per merged token, 4096..50176 px): 96x64 -> 64x96 -> 2*3 = 6;
    # 200x120 -> 128x192 -> 4*6 = 24; 32x32 -> up to the floor 64x64 -> 4; 500x400 is over 50176 px:
    # beta = sqrt(400*500/50176), floor(400/beta/32)=6, floor(500/beta/32)=7 -> 6*7 = 42 (<= 49 tokens).
    expected = [6, 24, 4, 42]
    assert (enc["image_grid_thw"].prod(1) // 4).tolist() == expected
    assert int((enc["input_ids"] == proc.image_token_id).sum()) == sum(expected)
    assert int((enc["mm_token_type_ids"] == 1).sum()) == sum(expected)


def test_text_only_batch_dummy_image_keeps_loss_and_reaches_vision(qwen):
    proc, model, fam = qwen
    r = rec({"id": "t", "messages": [{"role": "user", "content": "What colour is the square?"},
                                      {"role": "assistant", "content": "red"}], "images": [], "media_kind": "text"})
    s = EncodeSettings()
    plain = Collator(proc, fam, s, "none")([{"record": r, "media": load_media(r, s, fam)}])
    dummy = Collator(proc, fam, s, "dummy_image")([{"record": r, "media": load_media(r, s, fam)}])
    assert "pixel_values" not in plain and "pixel_values" in dummy
    model.zero_grad()
    loss_d = model(**dummy).loss
    loss_d.backward()
    assert torch.allclose(model(**plain).loss, loss_d, atol=1e-6)
    grads = [p.grad for n, p in model.named_parameters() if ".visual." in f".{n}"]
    assert grads and all(g is not None for g in grads)      # every vision parameter took part (no rank skips it)
    model.zero_grad()


def test_over_length_drop_and_truncate(qwen, tmp_path):
    proc, _, fam = qwen
    r = rec({"id": "l", "messages": [{"role": "user", "content": "<image>\nWhat colour is the square?"},
                                      {"role": "assistant", "content": "The square is red. " * 10}],
             "images": [write_jpg_sized(tmp_path / "l.jpg", (64, 64))], "media_kind": "image"})
    m = load_media(r, EncodeSettings(), fam)
    full = encode_row(proc, fam, r, m, EncodeSettings())["input_ids"].shape[1]
    with pytest.raises(RowSkipped, match="over_length"):
        encode_row(proc, fam, r, m, EncodeSettings(max_length=full - 5))
    cut = encode_row(proc, fam, r, m, EncodeSettings(max_length=full - 5, over_length="truncate"))
    assert cut["input_ids"].shape[1] == full - 5 and (cut["labels"] != IGNORE_INDEX).any()
    with pytest.raises(RowSkipped, match="over_length_visual"):
        encode_row(proc, fam, r, m, EncodeSettings(max_length=8, over_length="truncate"))


# ----------------------------------------------------------------------------- families, schedule
def test_families_match_models_no_split_modules_and_freeze(qwen, tmp_path):
    _, model, fam = qwen
    assert set(fam.layer_classes) == set(model._no_split_modules)
    counts = apply_freeze(model, fam, vision_tower=True, projector=False, llm=False)
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    assert any("deepstack_merger_list" in n for n in frozen) and all("visual" in n for n in frozen)
    assert counts["vision"] == 0 and counts["projector"] > 0 and counts["llm"] > 0
    assert not any(".merger." in n and "deepstack" not in n for n in frozen)
    for p in model.parameters():
        p.requires_grad_(True)
    with pytest.raises(ValueError, match="not a supported family"):
        family_of("mystery_vl")


def test_schedule_37_rows_global_batch_4():
    # 37 rows, B = 4: 10 steps (the last sees 1 row). Quarters: ceil(9.25/4)=3 -> 12, ceil(18.5/4)=5 -> 20,
    # ceil(27.75/4)=7 -> 28, the end -> 37. Release fifths: 2->8, 4->16, 6->24, 8->32, 10->37.
    assert total_steps(37, 4) == 10
    assert fraction_steps([0.25, 0.5, 0.75, 1.0], 37, 4) == [3, 5, 7, 10]
    assert [samples_seen(s, 37, 4) for s in (3, 5, 7, 10)] == [12, 20, 28, 37]
    assert [samples_seen(s, 37, 4) for s in fraction_steps([0.2, 0.4, 0.6, 0.8, 1.0], 37, 4)] == [8, 16, 24, 32, 37]


def write_jpg_sized(path: Path, wh: tuple[int, int]) -> str:
    Image.new("RGB", wh, (200, 30, 30)).save(path)
    return str(path)
