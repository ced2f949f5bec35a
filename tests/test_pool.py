"""Pool readers on hand-written files: good rows kept, every bad line quarantined with its reason."""
import json
from pathlib import Path

import pandas as pd
import pytest

from gdo_utils.config import params_from_dict
from gdo_utils.pool import (PoolFormatError, build_pool, extract_pairs, load_raw_records, run_pool_stage,
                            source_group)
from gdo_utils.schema import QA_COLUMNS, QUARANTINE_REASONS


def _params(tmp_path: Path, pools: dict, check_media=True):
    return params_from_dict({"run_name": "t", "output_root": str(tmp_path / "out"), "pools": pools,
                             "pool": {"max_frames": 32, "check_media": check_media}})


def _jsonl(path: Path, lines: list) -> Path:
    path.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n")
    return path


@pytest.fixture
def onevision_file(media_dir):
    return _jsonl(media_dir / "ov.jsonl", [
        {"id": "img1", "images": ["a.jpg", "b.jpg"], "data_source": "ShapeQA(synthetic)",
         "messages": [{"role": "user", "content": "<image>\nHow many   squares?"}, {"role": "assistant", "content": "Two."},
                      {"role": "user", "content": "Which colour?\nA. red\nB. blue"}, {"role": "assistant", "content": "A"}]},
        {"id": "img2", "images": ["b.jpg"],
         "messages": [{"from": "gpt", "value": "orphan"}, {"from": "human", "value": "<image> Shape?"},
                      {"from": "gpt", "value": "circle"}, {"from": "human", "value": "<image>"},
                      {"from": "gpt", "value": "empty question is dropped"}]},
        '{"id": "broken", "images": ["a.jpg"], "messages": [',                       # line 3: malformed JSON
        {"id": "noimg", "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]},
        {"id": "nomsg", "images": ["a.jpg"]},
        {"id": "gone", "images": ["missing.jpg"], "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]},
        {"id": "emptyans", "images": ["a.jpg"], "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "  "}]},
        ["not", "an", "object"],
        {"id": "badrole", "images": ["a.jpg"], "messages": [{"role": "robot", "content": "q"}]},
    ])


def test_onevision_reader_keeps_good_rows_and_quarantines_each_bad_line(tmp_path, onevision_file):
    params = _params(tmp_path, {"gdo": [{"format": "onevision", "path": str(onevision_file)}]})
    res = build_pool(params, params.pools.gdo, "gdo", "pools.gdo")
    t = res.table
    assert list(t.columns) == QA_COLUMNS
    assert list(t["qa_uid"]) == ["ov::img1::t0", "ov::img1::t1", "ov::img2::t0"]
    row = t.iloc[0]
    assert row["question"] == "How many squares?" and row["answer"] == "Two."
    assert list(row["media"]) == [str(onevision_file.parent / "a.jpg")]  # first image only
    assert row["bucket"] == "image_qa" and row["n_frames"] == 1
    assert row["source"] == "ShapeQA(synthetic)" and row["source_group"] == "ShapeQA"
    assert t.iloc[1]["question_raw"] == "Which colour?\nA. red\nB. blue" and t.iloc[1]["question"] == "Which colour? A. red B. blue"
    assert t.iloc[2]["source"] == "onevision"  # release default for rows without data_source
    q = res.quarantine.set_index("line")
    assert dict(q["reason"]) == {3: "malformed_json", 4: "no_image", 5: "missing_messages", 6: "missing_media",
                                 7: "empty_turns", 8: "wrong_schema", 9: "wrong_schema"}
    assert q.loc[6, "field"] == "images[0]" and q.loc[9, "field"] == "messages[0].role"
    assert set(q["reason"]) <= set(QUARANTINE_REASONS)
    rep = res.report
    assert rep["records"] == 9 and rep["records_ok"] == 2 and rep["quarantined"] == 7
    assert rep["dropped_empty_pairs"] == 1 and rep["ignored_orphan_assistant_turns"] == 1


def test_llava_video_frames_folder_and_mp4(tmp_path, media_dir):
    frames = [f"frames/v1/frame_{i:04d}.jpg" for i in range(40)]
    f = _jsonl(media_dir / "vid.jsonl", [
        {"id": "a", "video_id": "v1", "images": frames, "data_source": "toy_motion_dir_v2_val_extra",
         "messages": [{"role": "user", "content": "<video>\nWhat happens after the red circle appears?"},
                      {"role": "assistant", "content": "It moves left."}]},
        {"id": "b", "video_id": "v2", "video": "v2.mp4",
         "messages": [{"role": "user", "content": "<video> Direction?"}, {"role": "assistant", "content": "right"}]},
        {"id": "c", "video": "frames/v1", "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]},
        {"id": "d", "video_id": "v3", "video": "bad.mp4", "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]},
        {"id": "e", "video_id": "v4", "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]},
    ])
    params = _params(tmp_path, {"gdo": [{"format": "llava_video", "path": str(f)}]})
    res = build_pool(params, params.pools.gdo, "gdo", "pools.gdo")
    t = res.table.set_index("qa_uid")
    a = t.loc["vv::a::t0"]
    assert a["n_frames"] == 32 and a["n_frames_total"] == 40 and a["media_kind"] == "frames"
    assert list(a["frame_indices"]) == [round(i * 39 / 31) for i in range(32)]
    assert a["video_uid"] == "v1" and a["bucket"] == "short_video" and a["source_group"] == "toy_motion_dir_v2"
    b = t.loc["vv::b::t0"]
    assert b["media_kind"] == "video_file" and b["n_frames"] == 12 and list(b["frame_indices"]) == list(range(12))
    c = t.loc["vv::c::t0"]
    assert c["video_uid"] == "c" and c["n_frames"] == 32  # frame folder, video_uid falls back to id
    assert dict(zip(res.quarantine["record_id"], res.quarantine["reason"])) == {"d": "unreadable_media", "e": "no_frames"}


def test_llava_json_pool_text_only_and_duplicates(tmp_path, media_dir):
    f = media_dir / "llava.json"
    f.write_text(json.dumps([
        {"id": "1", "image": "a.jpg", "conversations": [{"from": "human", "value": "<image>\nQ1"}, {"from": "gpt", "value": "A1"},
                                                        {"from": "human", "value": "Q2"}, {"from": "gpt", "value": "A2"}]},
        {"id": "2", "conversations": [{"from": "human", "value": "text only?"}, {"from": "gpt", "value": "yes"}]},
        {"id": "1", "image": "b.jpg", "conversations": [{"from": "human", "value": "again"}, {"from": "gpt", "value": "dup"}]},
        {"id": "3", "image": "a.jpg"},
        "junk",
    ]))
    params = _params(tmp_path, {"ofa_source": {"name": "llava665k", "sources": [{"format": "llava_json", "path": str(f)}]}})
    res = build_pool(params, params.pools.ofa_source.sources, "llava665k", "pools.ofa_source.sources")
    assert list(res.table["qa_uid"]) == ["llava665k::1::t0", "llava665k::1::t1", "llava665k::2::t0", "llava665k::1#dup1::t0"]
    assert list(res.table["bucket"]) == ["image_qa", "image_qa", "text_only", "image_qa"]
    assert list(res.table["record_index"]) == [0, 0, 1, 2]
    assert res.report["renamed_duplicate_ids"] == 1
    assert list(res.quarantine["reason"]) == ["missing_messages", "wrong_schema"]
    assert list(res.quarantine["line"]) == [4, 5]
    assert load_raw_records(f, "llava_json")[2]["image"] == "b.jpg"


def test_json_array_file_that_is_not_json_names_file_and_line(tmp_path):
    f = tmp_path / "vf.json"
    f.write_text('[\n {"id": "x",\n  "conversations": oops}\n]')
    params = _params(tmp_path, {"ofa_transfer": [{"name": "vf", "sources": [{"format": "visionflan", "path": str(f)}]}]})
    with pytest.raises(PoolFormatError, match=r"vf\.json:3:\d+: not valid JSON"):
        build_pool(params, params.pools.ofa_transfer[0].sources, "vf", "pools.ofa_transfer[0].sources")


def test_pair_extraction_rules():
    pairs = extract_pairs([
        {"role": "system", "content": "sys"},
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "<image> What  is\n\nthis?"}]},
        {"role": "assistant", "content": "A  cat."},
        {"role": "assistant", "content": "orphan"},
        {"role": "user", "content": "<video><audio>"},
        {"role": "assistant", "content": "dropped"},
        {"role": "user", "content": "Next?"},
        {"role": "assistant", "content": "Dog"},
    ])
    assert [(p.turn, p.question, p.answer) for p in pairs] == [(0, "What is this?", "A cat."), (1, "Next?", "Dog")]


@pytest.mark.parametrize("src,group", [
    ("ShapeQA(synthetic)", "ShapeQA"), ("a_b_c_d_e_f", "a_b_c_d"), ("a_b_c", "a_b_c"), ("plain", "plain"),
])
def test_source_group(src, group):
    assert source_group(src) == group


def test_stage_writes_files_and_skips_when_unchanged(tmp_path, onevision_file):
    params = _params(tmp_path, {"gdo": [{"format": "onevision", "path": str(onevision_file)}]})
    rep = run_pool_stage(params)
    out = params.stage_dir("pool")
    assert {p.name for p in out.iterdir()} >= {"qa.parquet", "quarantine.parquet", "report.json", "manifest.json"}
    assert rep["gdo"]["quarantined"] == 7
    before = (out / "qa.parquet").stat().st_mtime_ns
    run_pool_stage(params)
    assert (out / "qa.parquet").stat().st_mtime_ns == before
    q = pd.read_parquet(out / "quarantine.parquet")
    assert len(q) == 7 and q["source_file"].str.endswith("ov.jsonl").all()


def test_check_media_off_trusts_images(tmp_path, onevision_file):
    params = _params(tmp_path, {"gdo": [{"format": "onevision", "path": str(onevision_file)}]}, check_media=False)
    res = build_pool(params, params.pools.gdo, "gdo", "pools.gdo")
    assert "missing_media" not in set(res.quarantine["reason"]) and "ov::gone::t0" in set(res.table["qa_uid"])


# ----------------------------------------------------------------------------- what users run
TOY = ["toyworld.n_onevision=12", "toyworld.n_llava_video=10", "toyworld.n_llava665k=6", "toyworld.n_visionflan=4"]


def test_relative_roots_from_another_cwd_quarantine_exactly_the_injected_faults(tmp_path, monkeypatch, repo_root):
    """params/demo.yaml as shipped (relative output_root) plus a source with a relative media_root, run from
    a temporary working directory: only the toy world's injected faults are quarantined, one row each, and
    every media path in the QA tables is absolute and still resolves from another working directory."""
    from gdo_utils.config import load_params
    from gdo_utils.pool import load_pool, load_quarantine
    from gdo_utils.toyworld import generate_toyworld

    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    p = load_params(repo_root / "params/demo.yaml", TOY)
    assert p.output_root == "outputs" and not p.run_dir.is_absolute()
    world = generate_toyworld(p.toyworld, p.toyworld_dir)
    # the same LLaVA-Video file, moved beside the run, with a relative media_root (the user's layout)
    Path("annotations").mkdir()
    Path("annotations/llava_video.jsonl").write_bytes((p.toyworld_dir / "llava_video.jsonl").read_bytes())
    p = load_params(repo_root / "params/demo.yaml", TOY + [
        "pools.gdo=[{format: onevision, path: 'toyworld:onevision.jsonl'}, {format: llava_video, "
        "path: annotations/llava_video.jsonl, media_root: outputs/demo/toyworld}]"])
    reports = run_pool_stage(p)
    got = []
    for name in reports:
        q = load_quarantine(p, name)
        got += [(Path(f).name, int(line), r) for f, line, r in zip(q["source_file"], q["line"], q["reason"])]
    want = [(f["file"], f["line"], f["reason"]) for f in world["injected_faults"]]
    assert sorted(got) == sorted(want) and len(got) == len(set(got))
    assert reports["gdo"]["by_media_kind"].get("frames", 0) > 0
    tables = {name: load_pool(p, name) for name in reports}
    monkeypatch.chdir(tmp_path)  # elsewhere: the stored paths must not depend on the cwd of the run
    for qa in tables.values():
        for media in qa["media"]:
            assert all(Path(m).is_absolute() and Path(m).exists() for m in media)
        assert all(Path(f).is_absolute() for f in qa["source_file"])


def test_default_source_release_and_file_stem(tmp_path, media_dir):
    """Rows without data_source: the release's format name by default, the file stem as the kit option."""
    one = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
    ov = _jsonl(media_dir / "my_images.jsonl", [{"id": "i", "images": ["a.jpg"], **one}])
    vv = _jsonl(media_dir / "my_videos.jsonl", [{"id": "v", "video": "v2.mp4", **one}])
    pools = {"gdo": [{"format": "onevision", "path": str(ov)}, {"format": "llava_video", "path": str(vv)}]}
    for mode, want in (("release", ["onevision", "llava_video"]), ("file_stem", ["my_images", "my_videos"])):
        p = params_from_dict({"run_name": "t", "output_root": str(tmp_path / mode), "pools": pools,
                              "pool": {"default_source": mode}})
        t = build_pool(p, p.pools.gdo, "gdo", "pools.gdo").table
        assert list(t["source"]) == want and list(t["source_group"]) == want


def test_duplicate_ids_are_renamed_only_within_their_namespace(tmp_path, media_dir):
    """The same id in the image and the video file is two candidates (ov:: and vv::), both keep their id;
    a repeat inside one file is renamed #dup1."""
    one = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
    ov = _jsonl(media_dir / "ov.jsonl", [{"id": "x", "images": ["a.jpg"], **one}, {"id": "x", "images": ["b.jpg"], **one}])
    vv = _jsonl(media_dir / "vv.jsonl", [{"id": "x", "video": "v2.mp4", **one}, {"id": "y", "video": "v2.mp4", **one}])
    p = _params(tmp_path, {"gdo": [{"format": "onevision", "path": str(ov)}, {"format": "llava_video", "path": str(vv)}]})
    res = build_pool(p, p.pools.gdo, "gdo", "pools.gdo")
    assert list(res.table["qa_uid"]) == ["ov::x::t0", "ov::x#dup1::t0", "vv::x::t0", "vv::y::t0"]
    assert res.report["renamed_duplicate_ids"] == 1


def test_importing_the_pool_readers_loads_no_toyworld_module():
    """The toy world is a data source that writes files for the readers, never a dependency of them."""
    import subprocess
    import sys

    code = "import sys, gdo_utils.pool; print(sorted(m for m in sys.modules if 'toyworld' in m))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("order", ["ov,vv", "vv,ov", "ov,vv,ov2", "vv,ov,vv2,ov2"])
def test_reading_namespaces_in_parallel_gives_the_same_pool(tmp_path, media_dir, order):
    """pool.workers: this process reads the first file's namespace, workers the others; rows and report as with one."""
    one = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
    files = {"ov": _jsonl(media_dir / "ov.jsonl", [{"id": "x", "images": ["a.jpg"], **one},
                                                   {"id": "x", "images": ["b.jpg"], **one}, "{broken"]),
             "vv": _jsonl(media_dir / "vv.jsonl", [{"id": "x", "video": "v2.mp4", **one},
                                                   {"id": "y", "video": "bad.mp4", **one}]),
             "ov2": _jsonl(media_dir / "ov2.jsonl", [{"id": "x", "images": ["c.jpg"], **one}]),
             "vv2": _jsonl(media_dir / "vv2.jsonl", [{"id": "y", "video": "v2.mp4", **one}])}
    fmt = {"ov": "onevision", "vv": "llava_video", "ov2": "onevision", "vv2": "llava_video"}
    pools = {"gdo": [{"format": fmt[k], "path": str(files[k])} for k in order.split(",")]}
    res = {}
    for w in (1, 2, 3):
        p = params_from_dict({"run_name": "t", "output_root": str(tmp_path / str(w)), "pools": pools,
                              "pool": {"workers": w}})
        res[w] = build_pool(p, p.pools.gdo, "gdo", "pools.gdo")
    for w in (2, 3):
        pd.testing.assert_frame_equal(res[1].table, res[w].table)
        pd.testing.assert_frame_equal(res[1].quarantine, res[w].quarantine)
        assert res[1].report == res[w].report
    uids = list(res[2].table["qa_uid"])
    assert uids[:3] == (["ov::x::t0", "ov::x#dup1::t0", "vv::x::t0"] if order.startswith("ov")
                        else ["vv::x::t0", "ov::x::t0", "ov::x#dup1::t0"])
    assert len(uids) == len(set(uids))
