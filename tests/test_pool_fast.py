"""The Arrow fast path of the JSONL readers gives exactly what the record-at-a-time reader gives.

Hand-built files mix clean records with every kind of record the fast path must hand back (quarantine
cases, odd types, Unicode whitespace, media tokens next to non-ASCII text, repeated ids, blank lines,
lines Arrow accepts but orjson does not); each file is read both ways (`FileReader(fast=...)`) and
the batches, quarantine rows and report must be equal. Small `batch_rows` make batch cuts fall inside
the fast-path blocks.
"""
import json
import random
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pytest

from gdo_utils.config import PoolSource
from gdo_utils.pool import fast as fast_mod
from gdo_utils.pool import reader as reader_mod
from gdo_utils.pool.reader import FileReader

U, A = "user", "assistant"


def _msgs(*pairs, keys=("role", "content")):
    out = []
    for q, a in pairs:
        out += [{keys[0]: "human" if keys[0] == "from" else U, keys[1]: q},
                {keys[0]: "gpt" if keys[0] == "from" else A, keys[1]: a}]
    return out


def _write(path: Path, lines: list, end: str = "\n") -> Path:
    text = "\n".join(x if isinstance(x, str) else json.dumps(x, ensure_ascii=False) for x in lines) + end
    path.write_bytes(text.encode("utf-8", errors="surrogateescape"))
    return path


def _read(path: Path, fmt: str, fast: bool, check: bool = False, root: Path | None = None, batch_rows: int = 5,
          seen: Counter | None = None):
    r = FileReader(PoolSource(format=fmt, path=str(path)), path, "gdo", max_frames=4, check_media=check,
                   media_root=root, batch_rows=batch_rows, fast=fast, seen_ids=seen if seen is not None else Counter())
    batches = list(r.batches())
    return batches, r.quarantine, r.report


def _same_both_ways(path: Path, fmt: str, **kw):
    fb, fq, fr = _read(path, fmt, True, **kw)
    sb, sq, sr = _read(path, fmt, False, **kw)
    assert [b.num_rows for b in fb] == [b.num_rows for b in sb]
    for x, y in zip(fb, sb):
        assert x.equals(y), (x.to_pylist()[:3], y.to_pylist()[:3])
    assert fq == sq
    assert fr == sr
    return pa.Table.from_batches(sb).to_pylist() if sb else [], sq, sr


ONEVISION = [
    {"id": "ok1", "images": ["a.jpg"], "messages": _msgs(("<image>\nHow many   squares?", "Two."), ("Colour?\nA. red", "A"))},
    {"id": "ok2", "images": ["/abs/b.jpg", 3], "data_source": "vqav2(cauldron)",
     "conversations": _msgs(("<Image> Shape?\t", " circle "), keys=("from", "value"))},
    {"id": "ok2", "images": ["a.jpg"], "messages": _msgs(("again", "dup id"))},       # renamed ok2#dup1
    "",                                                                                 # blank line
    "   ",                                                                              # whitespace-only line
    '{"id": "broken", "images": ["a.jpg"], "messages": [',                             # malformed
    '{"id": "nan", "images": ["a.jpg"], "x": NaN, "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}',
    '{"id": "two", "images": ["a.jpg"], "messages": []} {"id": "three"}',             # two objects on a line
    '{"id": "dupkey", "id": "dk", "images": ["a.jpg"], "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}',
    ["not", "an", "object"],
    {"images": ["a.jpg"], "messages": _msgs(("q", "a"))},                              # missing id
    {"id": "  \u3000", "images": ["a.jpg"], "messages": _msgs(("q", "a"))},            # blank id (Unicode space)
    {"id": 17, "images": ["a.jpg"], "messages": _msgs(("int id", "kept as '17'"))},
    {"id": "noimg", "messages": _msgs(("q", "a"))},
    {"id": "imgstr", "images": "a.jpg", "messages": _msgs(("string image", "a"))},
    {"id": "imgnull", "images": [None], "messages": _msgs(("q", "a"))},
    {"id": "tilde", "images": ["~/x.jpg"], "messages": _msgs(("q", "a"))},
    {"id": "nomsg", "images": ["a.jpg"]},
    {"id": "emptymsg", "images": ["a.jpg"], "messages": []},
    {"id": "badrole", "images": ["a.jpg"], "messages": [{"role": "robot", "content": "q"}]},
    {"id": "norole", "images": ["a.jpg"], "messages": [{"content": "q"}, {"role": A, "content": "a"}]},
    {"id": "nullmsg", "images": ["a.jpg"], "messages": [None, {"role": A, "content": "a"}]},
    {"id": "listcontent", "images": ["a.jpg"],
     "messages": [{"role": U, "content": [{"type": "image"}, {"type": "text", "text": "Parts?"}]}, {"role": A, "content": "yes"}]},
    {"id": "intcontent", "images": ["a.jpg"], "messages": [{"role": U, "content": 5}, {"role": A, "content": "a"}]},
    {"id": "upper", "images": ["a.jpg"], "messages": [{"role": "System", "content": "be nice"}, {"role": "USER", "content": "Q?"},
                                                      {"role": "Assistant", "content": "A."}]},
    {"id": "orphan", "images": ["a.jpg"], "messages": [{"role": A, "content": "orphan"}, {"role": U, "content": "q1"},
                                                       {"role": U, "content": "q2 wins"}, {"role": A, "content": "a"},
                                                       {"role": A, "content": "orphan again"}]},
    {"id": "emptypair", "images": ["a.jpg"], "messages": _msgs(("<image>", "dropped"), ("kept", "yes"), ("q", " \n "))},
    {"id": "allempty", "images": ["a.jpg"], "messages": _msgs(("<video>  ", "x"))},
    {"id": "unicodews", "images": ["a.jpg"], "messages": _msgs(("a\u3000b\xa0c\x1cd\u2028", "\x85e\u200af "))},
    {"id": "nonascii<", "images": ["a.jpg"], "messages": _msgs(("<\u0130MAGE> caf\u00e9 <image>", "ok"))},
    {"id": "ascii<", "images": ["a.jpg"], "messages": _msgs(("<IMAGE>x<audio> <b> <Video>", "ok"))},
    {"id": "srcint", "images": ["a.jpg"], "data_source": 3, "messages": _msgs(("q", "a"))},
    {"id": "srcempty", "images": ["a.jpg"], "data_source": "", "messages": _msgs(("q", "a"))},
    {"id": "nullcontent", "images": ["a.jpg"], "messages": [{"role": U, "content": None, "value": "from value"},
                                                            {"role": A, "content": None}]},
    {"id": "last", "images": ["a.jpg"], "messages": _msgs(("final", "row"))},
]


def test_onevision_fast_equals_slow_with_every_quarantine_case(tmp_path):
    path = _write(tmp_path / "ov.jsonl", ONEVISION, end="")  # last line without a newline
    rows, q, rep = _same_both_ways(path, "onevision")
    by_id = {r["qa_uid"]: r for r in rows}
    # expected values worked out by hand from the GDO section 2 rules
    assert by_id["ov::ok1::t0"]["question"] == "How many squares?"
    assert by_id["ov::ok2::t0"]["question_raw"] == "Shape?" and by_id["ov::ok2::t0"]["answer"] == "circle"
    assert by_id["ov::ok2#dup1::t0"]["question"] == "again"
    assert by_id["ov::17::t0"]["sample_id"] == "17"
    assert by_id["ov::upper::t0"]["question"] == "Q?"
    assert by_id["ov::orphan::t0"]["question"] == "q2 wins"
    assert by_id["ov::emptypair::t0"]["question"] == "kept" and "ov::emptypair::t1" not in by_id
    assert by_id["ov::unicodews::t0"]["question"] == "a b c d" and by_id["ov::unicodews::t0"]["answer"] == "e f"
    assert by_id["ov::ascii<::t0"]["question"] == "x <b>"
    assert by_id["ov::srcint::t0"]["source"] == "onevision" and by_id["ov::srcempty::t0"]["source"] == "onevision"
    reasons = {r["record_id"] or r["line"]: r["reason"] for r in q}
    assert reasons[6] == "malformed_json" and reasons[7] == "malformed_json" and reasons[8] == "malformed_json"
    assert reasons["noimg"] == "no_image" and reasons["nomsg"] == "missing_messages"
    assert reasons["emptymsg"] == "empty_turns" and reasons["allempty"] == "empty_turns"
    assert reasons["badrole"] == reasons["norole"] == reasons["nullmsg"] == reasons["intcontent"] == "wrong_schema"
    assert reasons["imgnull"] == "wrong_schema" and reasons["nullcontent"] == "empty_turns"  # empty answer
    assert reasons[10] == "wrong_schema" and reasons[11] == reasons[12] == "missing_id"
    assert [r["line"] for r in q] == sorted(r["line"] for r in q)
    assert rep["renamed_duplicate_ids"] == 1 and rep["ignored_system_turns"] == 1
    assert rep["ignored_orphan_assistant_turns"] == 2 and rep["records"] == len(ONEVISION) - 2


def test_llava_video_fast_equals_slow(tmp_path, media_dir):
    frames = [f"frames/v1/frame_{i:04d}.jpg" for i in range(40)]
    lines = [
        {"id": "v1", "video_id": "vid1", "images": frames, "data_source": "nextqa_mc_train",
         "messages": _msgs(("<video>\nWhat happens first?", "A man opens a door."), ("Then?", "He sits."), keys=("from", "value"))},
        {"id": "v2", "video_id": "", "frames": frames[:3], "messages": _msgs(("few frames", "ok"))},
        {"id": "v3", "video_id": 5, "images": frames[:10], "messages": _msgs(("int video id", "ok"))},
        {"id": "v4", "images": frames[:2] + [7] + frames[2:9], "messages": _msgs(("non-string frame", "ok"))},
        {"id": "v5", "video": "frames/v1", "messages": _msgs(("folder", "ok"))},
        {"id": "v6", "video": "v2.mp4", "messages": _msgs(("mp4", "ok"))},
        {"id": "v7", "video": "bad.mp4", "messages": _msgs(("corrupt", "x"))},
        {"id": "v8", "messages": _msgs(("no frames", "x"))},
        {"id": "v9", "images": ["frames/v1/frame_0000.jpg", "missing.jpg", "frames/v1/frame_0002.jpg"],
         "messages": _msgs(("one missing frame", "x"))},
        {"id": "v1", "video_id": "vid1", "images": frames[:5], "messages": _msgs(("dup", "renamed"))},
    ]
    path = _write(tmp_path / "vv.jsonl", lines)
    for check in (False, True):
        rows, q, rep = _same_both_ways(path, "llava_video", check=check, root=media_dir, batch_rows=3)
        by_id = {r["qa_uid"]: r for r in rows}
        assert by_id["vv::v1::t0"]["frame_indices"] == [0, 13, 26, 39] and by_id["vv::v1::t1"]["turn"] == 1
        assert by_id["vv::v2::t0"]["video_uid"] == "v2" and by_id["vv::v3::t0"]["video_uid"] == "5"
        assert by_id["vv::v1#dup1::t0"]["video_uid"] == "vid1"
        assert {r["record_id"]: r["reason"] for r in q}["v8"] == "no_frames"
        if check:
            bad = {r["record_id"]: (r["reason"], r["field"]) for r in q}
            assert bad["v9"] == ("missing_media", "images[1]") and bad["v7"][0] != "" and "v4" not in bad


def test_check_media_rejections_keep_line_order_and_fields(tmp_path, media_dir):
    lines = [{"id": f"r{i}", "images": ["a.jpg" if i % 3 else "missing.jpg"], "messages": _msgs((f"q{i}", "a"))}
             for i in range(12)]
    lines.insert(5, '{"id": "bad json"')
    rows, q, _ = _same_both_ways(_write(tmp_path / "ov.jsonl", lines), "onevision", check=True, root=media_dir)
    assert [(r["line"], r["reason"], r["field"]) for r in q] == [
        (1, "missing_media", "images[0]"), (4, "missing_media", "images[0]"), (6, "malformed_json", ""),
        (8, "missing_media", "images[0]"), (11, "missing_media", "images[0]")]
    assert len(rows) == 8


def test_fast_path_reads_clean_records_without_the_slow_reader(tmp_path, monkeypatch):
    calls = []
    slow = FileReader._record
    monkeypatch.setattr(FileReader, "_record", lambda self, r: calls.append(r.line) or slow(self, r))
    lines = [{"id": f"r{i}", "images": ["a.jpg"], "messages": _msgs((f"<image>\nq {i}", "a"))} for i in range(50)]
    lines[20] = {"id": "odd", "images": ["a.jpg"], "messages": [{"role": "robot", "content": "q"}]}
    _read(_write(tmp_path / "ov.jsonl", lines), "onevision", True)
    assert calls == [21]  # only the odd record went the slow way


def test_random_texts_fast_equals_slow(tmp_path, monkeypatch):
    monkeypatch.setattr(reader_mod, "FAST_BLOCK", 2048)  # many blocks, cuts inside them
    rng = random.Random(0)
    alphabet = ["a", "B", " ", "  ", "\t", "\n", "\r", "\x0b", "\x1c", "\xa0", "\u3000", "\u00e9", "<image>", "<VIDEO>",
                "<audio >", "<", ">", "x"]
    roles = ["user", "assistant", "human", "gpt", "system", "USER", "Gpt"]
    lines = []
    for i in range(400):
        msgs = [{"role" if rng.random() < 0.5 else "from": rng.choice(roles),
                 "content" if rng.random() < 0.5 else "value": "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 8)))}
                for _ in range(rng.randint(0, 7))]
        lines.append({"id": f"r{rng.randint(0, 300)}", "images": ["a.jpg"], "messages": msgs})
    _same_both_ways(_write(tmp_path / "ov.jsonl", lines), "onevision", batch_rows=7)


def test_invalid_utf8_and_bom_lines_go_the_slow_way(tmp_path):
    good = json.dumps({"id": "g", "images": ["a.jpg"], "messages": _msgs(("q", "a"))})
    path = tmp_path / "ov.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + good.encode() + b"\n" + good.encode()[:-2] + b'\xff"}\n' + good.encode() + b"\n")
    _, q, _ = _same_both_ways(path, "onevision")
    assert [r["reason"] for r in q] == ["malformed_json", "malformed_json"]


@pytest.mark.parametrize("data", [b"ok", b"\xc3\xa9", b"\xf0\x9f\x98\x80", b"\xef\xbf\xbe", b"a\x00b", b"\xed\x9f\xbf",
                                  b"\xed\xa0\x80", b"\xc0\xaf", b"\xe0\x80\xaf", b"\xf4\x90\x80\x80", b"\xff", b"\xc3",
                                  b"\xf8\x88\x80\x80\x80", b"x\xed\xbf\xbfy", b""])
def test_utf8_check_is_pythons(data):
    # the fast path checks a block's UTF-8 with Arrow's validator: it must agree with Python's decoder
    try:
        data.decode("utf-8")
        python = True
    except UnicodeDecodeError:
        python = False
    assert fast_mod.valid_utf8(data) is python


def test_python_whitespace_class_and_collapse():
    assert fast_mod.PY_WHITESPACE == "".join(chr(c) for c in range(0x110000) if chr(c).isspace())
    texts = [" a  b\t\nc ", "", "   ", "x", "\u3000y\xa0 z\x1f", "caf\u00e9\n\ndone", None]
    got = fast_mod.collapse(pa.array(texts, pa.string())).to_pylist()
    assert got == ["a b c", "", "", "x", "y z", "caf\u00e9 done", None]


def test_namespaced_duplicates_across_files_fast_equals_slow(tmp_path):
    a = _write(tmp_path / "a.jsonl", [{"id": "x", "images": ["a.jpg"], "messages": _msgs(("q", "a"))}])
    b = _write(tmp_path / "b.jsonl", [{"id": "x", "images": ["a.jpg"], "messages": _msgs(("q", "a"))},
                                      {"id": "x#dup1", "images": ["a.jpg"], "messages": _msgs(("q", "a"))}])
    for fast in (True, False):
        seen = Counter()
        _read(a, "onevision", fast, seen=seen)
        with pytest.raises(RuntimeError, match="renamed duplicate|collides"):
            _read(b, "onevision", fast, seen=seen)


def test_cli_user_error_is_one_line_and_start_up_skips_the_report_package(tmp_path):
    """A bad input prints one "error:" line (exit 1); the pool command never imports the report/train packages,
    nor torch (closing a torch.distributed group at exit must not import it: 300-400 MB on the release path)."""
    import subprocess
    import sys

    good = _write(tmp_path / "ov.jsonl", [{"id": "a", "images": ["a.jpg"], "messages": _msgs(("q", "a"))}])
    for name, path in (("good", good), ("bad", tmp_path / "missing.jsonl")):
        pf = tmp_path / f"{name}.yaml"
        pf.write_text(json.dumps({"run_name": name, "output_root": str(tmp_path / "out"), "pool": {"check_media": False},
                                  "pools": {"gdo": [{"format": "onevision", "path": str(path)}]}}))
        code = ("import sys; from gdo_utils.cli import main; rc = main(['pool', '--params', sys.argv[1]]); "
                "print('loaded', sorted(m for m in ('gdo_utils.report', 'gdo_utils.train', 'torch') if m in sys.modules)); "
                "sys.exit(rc)")
        res = subprocess.run([sys.executable, "-c", code, str(pf)], capture_output=True, text=True, cwd=tmp_path)
        if name == "good":
            assert res.returncode == 0, res.stderr[-2000:]
            assert "loaded []" in res.stdout
        else:
            assert res.returncode == 1
            assert res.stderr.strip().splitlines()[-1].startswith("error: pools.gdo[0].path: annotation file not found")
