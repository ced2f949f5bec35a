"""The column-wise train.jsonl writer gives the bytes json.dumps gives for `training_rows`."""
import json

import pyarrow as pa

from gdo_utils.subsets.export import absolute_media, training_lines, training_rows, write_lines


def _table():
    return pa.table({
        "qa_uid": ["a", 'b"q', "c\\d", "e", "f", "g", "h"],
        "media_kind": ["image", "frames", "video_file", "none", "image", "frames", "image"],
        "media": [["/x/a.jpg"], ["/f/1.jpg", "/f/./2.jpg", "rel/3.jpg"], ["/v.mp4"], [], None, ["//odd/p\u00e9.jpg"], ["/a/b/"]],
        "frame_indices": [[0], [0, 5, 9], [0, 10, 20, 30], [], [0], [2], [0]],
        "question_raw": ["raw\nA. x", None, "", "r\x01ctl", "tab\there", "caf\u00e9 \u2028 x", "\x7f"],
        "question": ["q1", "q2", 'q3 "quoted"', "q4", None, "q6", "q7"],
        "answer": ["a1\r\n", "\\", "a3", "a4\x1f", "a5", "\u00e9", ""],
        "source": ["s", None, "s3", "s4", "s5", "s6", "s7"],
        "bucket": ["image_qa"] * 7, "video_uid": ["v"] * 7})


def test_training_lines_equal_json_dumps_of_training_rows(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # relative media paths are made absolute against the working directory
    t = _table()
    for prompt in ("question_raw", "question"):
        expected = [json.dumps(r, ensure_ascii=False) for r in training_rows(t, prompt)]
        assert training_lines(t, prompt).to_pylist() == expected
    # hand-checked pieces: a relative path joined to the cwd, "/./" normalised, escapes, the video row's keys
    rows = [json.loads(x) for x in training_lines(t, "question_raw").to_pylist()]
    assert rows[1]["images"] == ["/f/1.jpg", "/f/2.jpg", str(tmp_path / "rel/3.jpg")]
    assert rows[2]["messages"][0]["content"] == "<image>" * 4 + "\nq3 \"quoted\"" and rows[2]["videos"] == ["/v.mp4"]
    assert rows[3]["media_kind"] == "text" and rows[3]["messages"][0]["content"] == "r\x01ctl"
    assert rows[4]["messages"][0]["content"] == "tab\there" and rows[1]["source"] is None
    write_lines(tmp_path / "t.jsonl", training_lines(t, "question_raw"))
    assert (tmp_path / "t.jsonl").read_text(encoding="utf-8") == "".join(
        json.dumps(r, ensure_ascii=False) + "\n" for r in training_rows(t, "question_raw"))


def test_unknown_media_kind_is_left_to_training_rows():
    t = _table().slice(0, 2)
    t = t.set_column(1, "media_kind", pa.array(["image", "hologram"]))
    assert training_lines(t) is None


def test_absolute_media_matches_abspath(tmp_path, monkeypatch):
    import os

    monkeypatch.chdir(tmp_path)
    paths = [["/a/b.jpg", "/a//b.jpg", "/a/../b.jpg", "/a/.hidden/x.jpg", "rel.jpg", "/", "/x/"], [], None, ["~/y.jpg"]]
    got = absolute_media(pa.array(paths, pa.list_(pa.string()))).to_pylist()
    assert got == [[os.path.abspath(p) for p in ps] if ps is not None else None for ps in paths]
