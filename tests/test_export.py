"""The training-file contract (gdo_utils.trainfile): train.jsonl rows, frame extraction, exports, the CLI."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import torch
import yaml
from PIL import Image

from gdo_utils.config import params_from_dict
from gdo_utils.media import read_video_frames
from gdo_utils.models import tiny_image_processor
from gdo_utils.ofa.training import conversation_rows, random_baseline
from gdo_utils.subsets import build_profile
from gdo_utils.io import jsonl_bytes
from gdo_utils.subsets.export import extract_video_row, training_file_chunks, training_rows, write_rows
from gdo_utils.subsets.trainlines import training_lines
from gdo_utils.subsets.synthetic import write_synthetic
from gdo_utils.trainfile import ContractError, check_row, read_rows, row_images
from tests.conftest import write_mp4

REPO = Path(__file__).resolve().parents[1]


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gdo_utils.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def test_gdo_rows_are_written_with_json_dumps(tmp_path):
    df = pd.DataFrame({"qa_uid": ["a", "b", "c", "d"], "media_kind": ["image", "frames", "video_file", "none"],
                       "media": [["/x/é.jpg"], ["/f/1.jpg", '/f/"2".jpg'], ["/v\\w.mp4"], []],
                       "frame_indices": [[0], [0, 1], [0, 5, 9], []], "question": ["Q? A. x B. y", "Q2", "Q3 \x01", "Q4"],
                       "question_raw": ["Q?\nA. x\tB. y", "", "Q3 \x01", None],
                       "answer": ['ans "1"', "b\tc", "ü \x1f", "z"], "source": ["s1", "s2", "s3", "s4"]})
    write_rows(tmp_path / "t.jsonl", training_rows(df, "question_raw"))
    want = [
        '{"id": "a", "messages": [{"role": "user", "content": "<image>\\nQ?\\nA. x\\tB. y"}, '
        '{"role": "assistant", "content": "ans \\"1\\""}], "images": ["/x/é.jpg"], "media_kind": "image", "source": "s1"}',
        '{"id": "b", "messages": [{"role": "user", "content": "<image><image>\\nQ2"}, '
        '{"role": "assistant", "content": "b\\tc"}], "images": ["/f/1.jpg", "/f/\\"2\\".jpg"], "media_kind": "frames", '
        '"frame_indices": [[0, 1]], "source": "s2"}',
        '{"id": "c", "messages": [{"role": "user", "content": "<image><image><image>\\nQ3 \\u0001"}, '
        '{"role": "assistant", "content": "ü \\u001f"}], "images": [], "media_kind": "video", '
        '"videos": ["/v\\\\w.mp4"], "frame_indices": [[0, 5, 9]], "source": "s3"}',
        '{"id": "d", "messages": [{"role": "user", "content": "Q4"}, {"role": "assistant", "content": "z"}], '
        '"images": [], "media_kind": "text", "source": "s4"}',
    ]
    assert (tmp_path / "t.jsonl").read_text(encoding="utf-8") == "".join(w + "\n" for w in want)
    assert [r["id"] for r in read_rows(tmp_path / "t.jsonl")] == ["a", "b", "c", "d"]  # every row passes the check
    collapsed = training_rows(df, "question")
    assert collapsed[0]["messages"][0]["content"] == "<image>\nQ? A. x B. y"


def test_rows_in_batches_equal_rows_at_once():
    # the subsets write train.jsonl from an Arrow table a batch at a time (bounded memory): same bytes
    t = pa.table({"qa_uid": ["a", "b", "c", "d", "e"], "media_kind": ["image", "frames", "video_file", "none", "frames"],
                  "media": [["/x/é.jpg"], ["/f/1.jpg", "f/./2.jpg"], ["/v.mp4"], [], ["/g//1.jpg"]],
                  "frame_indices": [[0], [0, 1], [0, 5, 9], [], [3]], "question": ["Q1", "Q2", "Q3", "Q4", "Q5"],
                  "question_raw": ["Q1\nA. x", "", "Q3", None, "Q5"], "answer": ["1", "2", "3", "4", "5"]})
    whole = training_rows(t, "question_raw")
    for batch in (1, 2, 3, 8):
        slices = (t.slice(i, batch) for i in range(0, t.num_rows, batch))
        assert b"".join(training_file_chunks(slices, "question_raw")) == jsonl_bytes(whole)
    assert whole[1]["images"] == ["/f/1.jpg", os.path.abspath("f/2.jpg")] and whole[4]["images"] == ["/g/1.jpg"]


def _awkward_rows() -> pa.Table:
    """Pool rows with every string case json.dumps escapes (or does not), the four media kinds, the extras."""
    n = 8
    return pa.table({
        "qa_uid": ['a"1', "b\\2", "c", "d", "e/é", "f", "g", "h\u2028"],
        "media_kind": ["image", "frames", "video_file", "none", "frames", "image", "frames", "video_file"],
        "media": [["/x/é.jpg"], ["/f/1.jpg", "f/./2.jpg"], ["/v.mp4"], [], ["/g//1.jpg", '/q"\\.jpg'], ["rel.jpg"],
                  [f"/fr/{i:04d}.jpg" for i in range(32)], ["/v\n2.mp4"]],
        "frame_indices": [[0], [0, 1], [0, 5, 9], [], [], [7], list(range(0, 320, 10)), [2147483647, 0]],
        "question": ["Q1\x00\x1f\x7f", "Q2 é 😀 \u2028", "Q3\t\b\f", "Q4 <image>", "Q5\r\n", "x", "", "Q8\x1b"],
        "question_raw": ["Q1\nA. x", "", "Q3", None, 'Q5 "q"', "\b\f", "raw only", "\\"],
        "answer": ["1\n", "2\\", "3", "4", "5", "", "ä\x0b", '"'],
        "source": ['s"', "s", "s", "s", "s", "s", "s", "s\\"], "bucket": ["image_qa"] * n,
        "video_uid": pa.array(["v\n"] * n, pa.large_string())})


@pytest.mark.parametrize("prompt", ["question_raw", "question"])
def test_arrow_lines_equal_json_dumps_of_the_rows(prompt):
    # train.jsonl's batches are written by Arrow kernels: the bytes must be json.dumps' of training_rows
    t = _awkward_rows()
    assert training_lines(t, prompt, ["source", "bucket", "video_uid"]) is not None   # the Arrow path decides
    for batch in (1, 3, 8):
        slices = (t.slice(i, batch) for i in range(0, t.num_rows, batch))
        assert b"".join(training_file_chunks(slices, prompt)) == jsonl_bytes(training_rows(t, prompt))
    line = json.loads(b"".join(training_file_chunks([t], prompt)).splitlines()[6])
    assert line["frame_indices"] == [list(range(0, 320, 10))] and line["messages"][0]["content"].count("<image>") == 32


@pytest.mark.parametrize("change", [
    {"answer": pa.array(["a", None, "c", "d", "e", "f", "g", "h"])},            # a null
    {"media_kind": pa.array(["image", "frames", "audio", "none", "frames", "image", "frames", "image"])},
    {"source": pa.array([1, 2, 3, 4, 5, 6, 7, 8])},                            # not a string column
    {"media": pa.array([["/a"], None, ["/v"], [], ["/b"], ["/c"], ["/d"], ["/e"]])},
])
def test_batches_the_arrow_lines_do_not_model_are_written_row_by_row(change):
    t = _awkward_rows()
    for name, col in change.items():
        t = t.set_column(t.schema.get_field_index(name), name, col)
    assert training_lines(t, "question_raw", ["source", "bucket", "video_uid"]) is None
    try:
        expected = jsonl_bytes(training_rows(t, "question_raw"))
    except ValueError as exc:                                                 # e.g. an unknown media kind
        with pytest.raises(ValueError, match=re.escape(str(exc))):
            b"".join(training_file_chunks([t], "question_raw"))
        return
    assert b"".join(training_file_chunks([t], "question_raw")) == expected


GOOD = {"id": "x", "messages": [{"role": "user", "content": "<image>\nQ"}, {"role": "assistant", "content": "A"}],
        "images": ["/a.jpg"], "media_kind": "image"}


@pytest.mark.parametrize("change, field", [
    ({"id": ""}, "id"),
    ({"messages": [{"role": "assistant", "content": "A"}, {"role": "user", "content": "Q"}]}, "messages[0]"),
    ({"messages": [{"role": "user", "content": "Q"}]}, "messages"),
    ({"images": ["rel/a.jpg"]}, "images[0]"),
    ({"images": ["/a.jpg", "/b.jpg"]}, "images"),
    ({"media_kind": "audio"}, "media_kind"),
    ({"media_kind": "frames", "images": ["/a.jpg", "/b.jpg"]}, "messages"),
    ({"media_kind": "video", "images": [], "videos": ["/v.mp4"], "frame_indices": [0, 1]}, "frame_indices"),
    ({"media_kind": "text", "images": []}, "messages"),
])
def test_rows_breaking_the_contract_are_refused_with_the_field(change, field):
    check_row(GOOD, "f:1")
    with pytest.raises(ContractError, match=rf"^f:3: {field}:".replace("[", r"\[").replace("]", r"\]")):
        check_row({**GOOD, **change}, "f:3")


def test_duplicate_ids_and_bad_json_name_the_line(tmp_path):
    f = tmp_path / "t.jsonl"
    f.write_text(json.dumps(GOOD) + "\n" + json.dumps(GOOD) + "\n")
    with pytest.raises(ContractError, match=r"t.jsonl:2: id: 'x' appears twice"):
        list(read_rows(f))
    f.write_text(json.dumps(GOOD) + "\n{oops\n")
    with pytest.raises(ContractError, match=r"t.jsonl:2: <json>: not valid JSON"):
        list(read_rows(f))


def test_video_and_extracted_frames_give_identical_pixel_tensors(tmp_path):
    mp4 = write_mp4(tmp_path / "clip.mp4", n_frames=12, size=64)
    row = {"id": "v", "messages": [{"role": "user", "content": "<image>" * 4 + "\nWhat moves?"},
                                   {"role": "assistant", "content": "A square."}],
           "images": [], "media_kind": "video", "videos": [str(mp4)], "frame_indices": [[0, 3, 7, 11]]}
    check_row(row)
    frames_row = extract_video_row(row, tmp_path / "frames")
    check_row(frames_row)
    assert frames_row["media_kind"] == "frames" and frames_row["frame_indices"] == [[0, 3, 7, 11]]
    assert [Path(p).name for p in frames_row["images"]] == [f"frame_{i:06d}.png" for i in (0, 3, 7, 11)]
    a, b = row_images(row), row_images(frames_row)
    decoded, _, _ = read_video_frames(mp4, [0, 3, 7, 11])
    assert all(np.array_equal(np.asarray(x), d) for x, d in zip(b, decoded))
    proc = tiny_image_processor()  # the tiny Qwen3-VL's image processor
    pa_, pb = proc(images=a, return_tensors="pt"), proc(images=b, return_tensors="pt")
    assert pa_["pixel_values"].shape[0] > 0 and torch.equal(pa_["pixel_values"], pb["pixel_values"])
    assert torch.equal(pa_["image_grid_thw"], pb["image_grid_thw"])
    # frames are written once: a second extraction reuses the files
    mtime = Path(frames_row["images"][0]).stat().st_mtime_ns
    assert extract_video_row(row, tmp_path / "frames") == frames_row
    assert Path(frames_row["images"][0]).stat().st_mtime_ns == mtime


def test_subset_train_jsonl_follows_the_contract(tmp_path):
    params = params_from_dict({"run_name": "t", "output_root": str(tmp_path / "out"), "seed": 42,
                               "subsets": {"figures": False, "ratio_scale": 5.0}})
    write_synthetic(params, 600, seed=0)
    build_profile(params, "minloss")
    d = params.stage_dir("subsets", "minloss")
    qa = pd.read_parquet(params.stage_dir("pool", "qa.parquet")).set_index("qa_uid")
    rows = list(read_rows(d / "train.jsonl"))
    kinds = set()
    for r in rows:
        p = qa.loc[r["id"]]
        user, assistant = r["messages"]
        assert assistant == {"role": "assistant", "content": p.answer}
        assert r["source"] == p.source and r["bucket"] == p.bucket and r["video_uid"] == p.video_uid
        kinds.add(r["media_kind"])
        if p.media_kind == "video_file":
            n = len(p.frame_indices)
            assert r["videos"] == list(p.media) and r["frame_indices"] == [list(p.frame_indices)] and r["images"] == []
        else:
            n = len(p.media)
            assert r["images"] == list(p.media)
        assert user["content"] == "<image>" * n + "\n" + (p.question_raw or p.question)
    assert kinds == {"image", "frames", "video"}
    assert [r["id"] for r in rows] == sorted(r["id"] for r in rows)
    assert (d / "selected_ids.txt").read_text().split() == [r["id"] for r in rows]


def test_ofa_conversations_keep_every_turn():
    qa = pd.DataFrame({
        "sample_id": ["s2", "s1", "s1", "s3"], "turn": [0, 1, 0, 0], "media_kind": ["none", "image", "image", "image"],
        "media": [[], ["/i/1.jpg"], ["/i/1.jpg"], ["/i/3.jpg"]], "frame_indices": [[], [0], [0], [0]],
        "question": ["Sum?", "And B?", "What is A?", "Q3"], "question_raw": ["Sum?", "And B?", "What is A?\nA. x", ""],
        "answer": ["4", "b", "a", "c"], "source": ["x"] * 4, "bucket": ["text_only", "image_qa", "image_qa", "image_qa"],
        "pool": ["p"] * 4})
    rows = conversation_rows(qa, ["s1", "s2", "s3"])
    assert rows[0]["messages"] == [{"role": "user", "content": "<image>\nWhat is A?\nA. x"},
                                   {"role": "assistant", "content": "a"},
                                   {"role": "user", "content": "And B?"}, {"role": "assistant", "content": "b"}]
    assert rows[0]["images"] == ["/i/1.jpg"] and rows[0]["media_kind"] == "image"
    assert rows[1]["messages"] == [{"role": "user", "content": "Sum?"}, {"role": "assistant", "content": "4"}]
    assert rows[1]["media_kind"] == "text" and rows[1]["images"] == []
    assert rows[2]["messages"][0]["content"] == "<image>\nQ3"  # empty raw text falls back to the question
    for r in rows:
        check_row(r)
    with pytest.raises(KeyError, match="s9"):
        conversation_rows(qa, ["s9"])


def test_random_baseline_is_seeded_and_sized():
    ids = [f"s{i}" for i in range(100)]
    a = random_baseline(ids, 15, 42)
    assert len(a) == 15 and a <= set(ids) and a == random_baseline(ids, 15, 42) and a != random_baseline(ids, 15, 7)
    assert len(random_baseline(ids[:5], 15, 42)) == 5


@pytest.fixture
def hand_subset(tmp_path, media_dir):
    """A run with one hand-written subset holding an image, a frame list and an mp4 row."""
    pf = tmp_path / "p.yaml"
    pf.write_text(yaml.safe_dump({"run_name": "r", "output_root": str(tmp_path / "out")}))
    frames = sorted(str(p) for p in (media_dir / "frames" / "v1").iterdir())[:3]
    rows = [{"id": "img", "messages": [{"role": "user", "content": "<image>\nQ1"}, {"role": "assistant", "content": "A1"}],
             "images": [str(media_dir / "a.jpg")], "media_kind": "image"},
            {"id": "frm", "messages": [{"role": "user", "content": "<image>" * 3 + "\nQ2"},
                                       {"role": "assistant", "content": "A2"}],
             "images": frames, "media_kind": "frames", "frame_indices": [[0, 1, 2]]},
            {"id": "vid", "messages": [{"role": "user", "content": "<image>" * 3 + "\nQ3"},
                                       {"role": "assistant", "content": "A3"}],
             "images": [], "media_kind": "video", "videos": [str(media_dir / "v2.mp4")], "frame_indices": [[0, 5, 11]]}]
    d = tmp_path / "out" / "r" / "subsets" / "hand"
    write_rows(d / "train.jsonl", rows)
    return tmp_path, pf, d


def test_cli_export_every_format(hand_subset):
    tmp, pf, d = hand_subset
    r = _cli("export", "--params", str(pf), "--subset", "hand", "--format", "ms-swift", cwd=tmp)
    assert r.returncode == 1 and "1 row(s) are mp4 videos" in r.stderr and "--extract-frames" in r.stderr
    r = _cli("export", "--params", str(pf), "--subset", "hand", "--format", "kit", cwd=tmp)
    assert r.returncode == 0 and r.stdout.strip() == str(d / "train.jsonl")

    r = _cli("export", "--params", str(pf), "--subset", "hand", "--format", "ms-swift", "--extract-frames", cwd=tmp)
    assert r.returncode == 0, r.stderr
    swift = [json.loads(x) for x in Path(r.stdout.strip()).read_text().splitlines()]
    assert [len(x["images"]) for x in swift] == [1, 3, 3] and all(set(x) == {"messages", "images"} for x in swift)
    pngs = swift[2]["images"]
    assert all(Path(p).is_file() and p.startswith(str(tmp / "out" / "r" / "frames")) for p in pngs)
    decoded, _, _ = read_video_frames(tmp / "media" / "v2.mp4", [0, 5, 11])
    assert all(np.array_equal(np.asarray(Image.open(p).convert("RGB")), f) for p, f in zip(pngs, decoded))

    r = _cli("export", "--params", str(pf), "--subset", "hand", "--format", "llama-factory", "--extract-frames", cwd=tmp)
    assert r.returncode == 0, r.stderr
    info = json.loads((d / "dataset_info.json").read_text())
    assert info["hand"]["file_name"] == "train_llamafactory.json" and info["hand"]["formatting"] == "sharegpt"
    assert json.loads((d / "train_llamafactory.json").read_text())[2]["images"] == pngs

    r = _cli("export", "--params", str(pf), "--subset", "hand", "--format", "llava", "--extract-frames", cwd=tmp)
    llava = json.loads(Path(r.stdout.strip()).read_text())
    assert llava[0]["image"] == str(tmp / "media" / "a.jpg") and llava[2]["image"] == pngs
    assert llava[1]["conversations"][0] == {"from": "human", "value": "<image><image><image>\nQ2"}

    r = _cli("export", "--params", str(pf), "--subset", "hand", "--format", "kit", "--extract-frames", cwd=tmp)
    kit = list(read_rows(r.stdout.strip()))
    assert kit[2]["media_kind"] == "frames" and kit[2]["images"] == pngs and kit[2]["source_video"].endswith("v2.mp4")

    r = _cli("export", "--params", str(pf), "--subset", "nope", "--format", "kit", cwd=tmp)
    assert r.returncode == 1 and "subset 'nope'" in r.stderr and "'hand'" in r.stderr


def test_cli_list_profiles_and_subsets(hand_subset):
    tmp, pf, _ = hand_subset
    r = _cli("list", "profiles", cwd=tmp)
    assert r.returncode == 0, r.stderr
    names = [line.split("\t")[0] for line in r.stdout.splitlines()]
    assert names == ["custom", "diverse", "minloss", "temp", "temp_plus"]
    r = _cli("list", "subsets", "--params", str(pf), cwd=tmp)
    assert r.returncode == 0, r.stderr
    table = {line.split("\t")[0]: line.split("\t")[1:4] for line in r.stdout.splitlines()}
    assert table["hand"] == ["other", "built", "3"]
    assert table["minloss"] == ["profile", "not built", ""] and table["uniform_temp_plus"][0] == "uniform"
