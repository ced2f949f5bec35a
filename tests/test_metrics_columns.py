"""The column-wise metrics.jsonl reader (Arrow blocks) gives the record reader's table, counts and errors."""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from gdo_utils.descriptors import metrics_columns, release_metrics
from gdo_utils.descriptors.release_metrics import FIELDS, MetricsImportError, parse_metrics

VALS = {"loss_video": 1.25, "loss_blind": 1.5, "vds": 0.25, "frame_diversity": 0.1, "quality_score": 0.4}
FULL = {**VALS, "ppl": 3.0, "amm": 0.5, "tnc_score": 0.7, "self_consistency": 0.8, "cluster_score": 0.9,
        "cluster_hardness": 0.2}
AWKWARD = [
    json.dumps({"qa_uid": "ov::n::t0", **FULL, "data_quality_metrics": {**FULL, "cluster_id": 3}}),  # merged format
    json.dumps({"id": "ov::top::t0", **VALS}),                                  # id in `id`, values at the top
    json.dumps({"qa_uid": None, "id": "ov::nullqa::t0", **VALS}),              # qa_uid null: bad (id not used)
    json.dumps({"qa_uid": "", "id": "ov::emptyqa::t0", **VALS}),               # qa_uid empty: bad
    json.dumps({"qa_uid": "  ov::ws::t0 \u3000 x ", **VALS}),                  # whitespace collapsed (also unicode)
    json.dumps({"qa_uid": "ov::nestnull::t0", **VALS, "data_quality_metrics": {**VALS, "vds": None}}),  # null wins
    json.dumps({"qa_uid": "ov::nestabsent::t0", **VALS,                        # absent under the object: top level
                "data_quality_metrics": {k: v for k, v in VALS.items() if k != "vds"}}),
    json.dumps({"qa_uid": "ov::dqmnull::t0", **VALS, "data_quality_metrics": None}),
    json.dumps({"qa_uid": "ov::dqmnum::t0", **VALS, "data_quality_metrics": 5}),
    json.dumps({"qa_uid": "ov::strings::t0", "loss_video": "1.5", "loss_blind": "abc", "vds": True}),
    '{"qa_uid": "ov::nan::t0", "loss_video": NaN, "loss_blind": Infinity, "vds": -Infinity, "quality_score": 1e400}',
    json.dumps({"qa_uid": "ov::sc::t0", **VALS, "self_consistency": -1}),
    "{not json",
    "[1, 2]",
    "",
    "   ",
    json.dumps({"qa_uid": "ov::n::t0", **VALS, "quality_score": 0.99}),        # duplicate: the last row wins
    json.dumps({"qa_uid": "ov::a::t0"}) + " " + json.dumps({"qa_uid": "ov::b::t0"}),   # two objects on a line
    '{"qa_uid": "ov::tab\there::t0", "vds": 1.0}',                            # a raw tab: not JSON for json.loads
    json.dumps({"qa_uid": "vid_\u00e9t\u00e9::t0", **VALS}, ensure_ascii=False),   # non-ASCII id
    json.dumps({"id": 12345, **VALS}),                                         # a number as id
    json.dumps({"qa_uid": "ov::dupkey::t0", "vds": 1.0, "vds": 2.0}).replace('"vds": 2.0', '"vds": 1.0, "vds": 2.0'),
    json.dumps({"qa_uid": "ov::bigint::t0", "loss_video": 123456789012345678901234567890}),
    json.dumps({"qa_uid": "ov::extra::t0", "extra": {"deep": [1, {"x": None}]}, **VALS}),
    json.dumps({"loss_video": 1.0}),                                           # no id at all
    json.dumps({"qa_uid": "ov::last::t0", **VALS}),
]


def _write(path, lines: list[str], newline: str = "\n", final: bool = True, bom: bool = False) -> None:
    text = newline.join(lines) + (newline if final else "")
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))


def _same(a: tuple[pd.DataFrame, dict], b: tuple[pd.DataFrame, dict]) -> None:
    pd.testing.assert_frame_equal(a[0], b[0], check_exact=True)
    assert a[1] == b[1]


def _clean(n: int, start: int = 0) -> list[str]:
    rng = np.random.default_rng(start)
    return [json.dumps({"qa_uid": f"vv::v{i}::t0", **{k: float(rng.random()) for k in FULL},
                        "data_quality_metrics": {k: float(rng.random()) for k in FULL}}) for i in range(start, start + n)]


def _reference(path) -> tuple[list[str], dict, list[dict]]:
    """An independent reading of the release loader's rules: one dict per id (last wins), the bad lines."""
    rows: dict[str, list] = {}
    bad = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError:
                bad.append(n)
                continue
            if not isinstance(item, dict):
                bad.append(n)
                continue
            raw = item.get("qa_uid", item.get("id", ""))
            uid = "" if raw is None else " ".join(str(raw).split())
            if not uid:
                bad.append(n)
                continue
            m = item["data_quality_metrics"] if isinstance(item.get("data_quality_metrics"), dict) else item
            rows[uid] = [m.get(k, item.get(k)) for k in FIELDS]
    return list(rows), rows, bad


@pytest.mark.parametrize("block", [1 << 20, 300, 2000])
@pytest.mark.parametrize("newline,final,bom", [("\n", True, False), ("\n", False, False), ("\r\n", True, False),
                                               ("\n", True, True)])
def test_awkward_file_same_table_and_errors(tmp_path, monkeypatch, block, newline, final, bom):
    lines = _clean(150) + AWKWARD[:9] + _clean(80, 150) + AWKWARD[9:] + _clean(120, 230)
    f = tmp_path / "m.jsonl"
    _write(f, lines, newline, final, bom)
    monkeypatch.setattr(metrics_columns, "BLOCK", block)
    fast = parse_metrics(f)
    slow = parse_metrics(f, arrow=False)
    _same(fast, slow)
    table, counts = fast
    ids, rows, bad = _reference(f)
    assert table["qa_uid"].tolist() == ids
    assert [b["line"] for b in counts["bad_rows_listed"]] == bad[:release_metrics.MAX_LISTED]
    assert counts["bad_rows"] == len(bad) and counts["lines"] == len([x for x in lines if x.strip()])
    t = table.set_index("qa_uid")
    if not bom:   # with a BOM the first line is not JSON for json.loads (as in the release)
        assert t.loc["ov::n::t0", "quality"] == 0.99 and math.isnan(t.loc["ov::n::t0", "ppl"])   # the whole row
    assert math.isnan(t.loc["ov::nestnull::t0", "vds"]) and t.loc["ov::nestabsent::t0", "vds"] == 0.25
    assert t.loc["ov::dqmnum::t0", "vds"] == 0.25 and t.loc["ov::dqmnull::t0", "vds"] == 0.25
    assert t.loc["ov::strings::t0", "loss_video"] == 1.5 and t.loc["ov::strings::t0", "vds"] == 1.0
    assert math.isnan(t.loc["ov::strings::t0", "loss_blind"])
    assert t.loc[["ov::nan::t0"], ["loss_video", "loss_blind", "vds", "quality"]].isna().all(axis=None)
    assert math.isnan(t.loc["ov::sc::t0", "self_consistency"]) and t.loc["ov::dupkey::t0", "vds"] == 2.0
    assert "ov::ws::t0 x" in t.index and "12345" in t.index and "vid_\u00e9t\u00e9::t0" in t.index
    assert t.loc["ov::bigint::t0", "loss_video"] == float(123456789012345678901234567890)
    for uid, vals in rows.items():      # every value against the independent reading
        got = t.loc[uid, list(FIELDS.values())].to_numpy(dtype=float)
        want = np.array([release_metrics.as_float(v) if release_metrics.as_float(v) is not None else np.nan
                         for v in vals])
        if want[8] < 0:                 # self_consistency -1: not computed
            want[8] = np.nan
        np.testing.assert_array_equal(got, want)


def test_clean_blocks_never_go_line_by_line(tmp_path, monkeypatch):
    f = tmp_path / "m.jsonl"
    _write(f, _clean(3000))
    calls = []
    monkeypatch.setattr(release_metrics, "read_item", lambda line: calls.append(line) or ("x", [0.0] * len(FIELDS)))
    monkeypatch.setattr(metrics_columns, "BLOCK", 64 << 10)
    table, counts = parse_metrics(f)
    assert calls == [] and counts["rows"] == 3000 and counts["lines"] == 3000


def test_a_bad_line_sends_only_a_small_part_line_by_line(tmp_path, monkeypatch):
    lines = _clean(4000)
    lines[2345] = "{not json"
    f = tmp_path / "m.jsonl"
    _write(f, lines)
    calls = []
    real = release_metrics.read_item
    monkeypatch.setattr(release_metrics, "read_item", lambda line: calls.append(line) or real(line))
    table, counts = parse_metrics(f)
    assert counts["bad_rows_listed"] == [{"line": 2346, "reason": "not JSON (Expecting property name enclosed in "
                                                                   "double quotes at column 2)"}]
    assert 0 < len(calls) <= metrics_columns.SMALL and counts["rows"] == 3999


def test_invalid_utf8_names_the_line(tmp_path):
    f = tmp_path / "m.jsonl"
    f.write_bytes(("\n".join(_clean(5)) + "\n").encode() + b'{"qa_uid": "\xff"}\n')
    for arrow in (True, False):
        with pytest.raises(MetricsImportError, match=r"m\.jsonl: line 6: not UTF-8"):
            parse_metrics(f, arrow=arrow)


def _merged_line(uid: str, vals: list, video: str = "v", cid=3, dist=0.25) -> str:
    """A line as gdo/merge_metrics.py writes it: every value at the top level and under data_quality_metrics."""
    m = dict(zip(FIELDS, vals))
    return json.dumps({"qa_uid": uid, "video_uid": video, **m,
                       "data_quality_metrics": {**m, "cluster_id": cid, "cluster_dist": dist}}, ensure_ascii=False)


def _merged_lines(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        vals = [float(x) for x in rng.normal(0, 10.0 ** rng.integers(-8, 9), len(FIELDS))]
        vals[i % len(FIELDS)] = [None, -1.0, -0.0, 0, 7, 1e-99, 1.5e99, 0.1 + 0.2, 5e-324, 10 ** 30, 1.7976931348623157e308][i % 11]
        out.append(_merged_line(f"vv::m{i}::t{i % 3}", vals, video=["v", "", "vidé\u00e9o", "a:b"][i % 4]))
    return out


def _spy(monkeypatch, name: str) -> list:
    """The Chunks a path of metrics_columns returned (the blocks it decided)."""
    real, hits = getattr(metrics_columns, name), []
    def spy(*a, **k):
        got = real(*a, **k)
        if got is not None:
            hits.append(got)
        return got
    monkeypatch.setattr(metrics_columns, name, spy)
    return hits


def test_merged_shape_blocks_are_read_by_the_shape_path_bit_for_bit(tmp_path, monkeypatch):
    lines = _merged_lines(600)
    f = tmp_path / "m.jsonl"
    _write(f, lines)
    monkeypatch.setattr(metrics_columns, "BLOCK", 16 << 10)
    merged, arrow = _spy(monkeypatch, "_merged"), _spy(monkeypatch, "_arrow")
    fast = parse_metrics(f)
    assert merged and not arrow
    slow = parse_metrics(f, arrow=False)
    _same(fast, slow)
    got, want = fast[0].drop(columns="qa_uid").to_numpy(), slow[0].drop(columns="qa_uid").to_numpy()
    assert (got.view(np.int64) == want.view(np.int64)).all()      # the same bits (-0.0, subnormals included)
    ids, rows, bad = _reference(f)
    assert fast[0]["qa_uid"].tolist() == ids and not bad
    t = fast[0].set_index("qa_uid")
    assert math.isnan(t.loc["vv::m0::t0", "loss_video"]) and t.loc["vv::m1::t1", "loss_blind"] == -1.0
    assert math.copysign(1, t.loc["vv::m2::t2", "frame_diversity"]) == -1          # -0.0 stays -0.0
    assert t.loc["vv::m3::t0", "vds"] == 0 and t.loc["vv::m8::t2", "self_consistency"] == 5e-324
    assert t.loc["vv::m9::t0", "cluster_rep"] == 1e30 and t.loc["vv::m10::t1", "cluster_hard"] == 1.7976931348623157e308


@pytest.mark.parametrize("odd", [
    lambda ln: ln.replace('"loss_blind": ', '"loss_blind":  ', 1),                 # other spacing
    lambda ln: ln.replace('"vds": ', '"vds": -0, "vds": ', 1),                    # repeated key, bare -0
    lambda ln: ln.replace(', "ppl": ', ', "ppl": "1.5", "x": ', 1),               # a string value
    lambda ln: ln.replace(', "cluster_dist"', ', "cluster_dist": 1e400, "y"', 1), # out of range
    lambda ln: ln.replace(', "amm": ', ', "amm": 01, "z": ', 1),                  # not JSON: a leading zero
    lambda ln: ln.replace('"qa_uid": "', '"qa_uid": "  ', 1),                    # an id to normalise
    lambda ln: ln.replace('"qa_uid": "', '"id": "x", "qa_uid": "', 1),           # one more key
    lambda ln: ln.replace(', "tnc_score": ', ', "tnc_score": null, "w": ', 1),    # nested value absent ...
    lambda ln: "{" + ln[ln.index('"data_quality_metrics"'):],                   # no id, no top level
    lambda ln: ln.replace('"qa_uid": "vv::m', '"qa_uid": "vv::\u00e9', 1),       # a non-ASCII id
    lambda ln: ln[:-1],                                                         # cut: not JSON
    lambda ln: ln.replace('"qa_uid": ', '"qa_uid": null, "id": ', 1),           # null qa_uid beside an id
    lambda ln: ln.replace('"video_uid": "', '"video_uid": "\t', 1),             # a raw tab: not JSON
    lambda ln: ln + "\n",                                                      # a blank line after it
])
def test_a_line_off_the_merged_shape_is_read_by_the_record_rule(tmp_path, monkeypatch, odd):
    lines = _merged_lines(300)
    lines[137] = odd(lines[137])
    f = tmp_path / "m.jsonl"
    _write(f, lines)
    monkeypatch.setattr(metrics_columns, "BLOCK", 16 << 10)
    merged = _spy(monkeypatch, "_merged")
    fast = parse_metrics(f)
    _same(fast, parse_metrics(f, arrow=False))
    ids, rows, bad = _reference(f)
    assert fast[0]["qa_uid"].tolist() == ids
    assert [b["line"] for b in fast[1]["bad_rows_listed"]] == bad
    got = fast[0].set_index("qa_uid")
    for uid, vals in rows.items():      # every value against the independent reading
        want = np.array([np.nan if release_metrics.as_float(v) is None else release_metrics.as_float(v) for v in vals])
        want[8] = np.nan if want[8] < 0 else want[8]
        np.testing.assert_array_equal(got.loc[uid, list(FIELDS.values())].to_numpy(dtype=float), want)
    decided = np.concatenate([c.lines for c in merged])
    assert 138 not in decided and len(decided) > 0      # the odd line's block left the shape path, others took it


def test_merged_shape_bad_line_and_outsiders_keep_their_line_numbers(tmp_path, monkeypatch):
    lines = _merged_lines(400) + [json.dumps({"qa_uid": f"vv::gone{k}::t0", "vds": 0.5}) for k in range(3)]
    lines[250] = "{not json"
    f = tmp_path / "m.jsonl"
    _write(f, lines)
    monkeypatch.setattr(metrics_columns, "BLOCK", 8 << 10)
    table, counts = parse_metrics(f)
    assert counts["bad_rows_listed"] == [{"line": 251, "reason": "not JSON (Expecting property name enclosed in "
                                                                   "double quotes at column 2)"}]
    assert counts["rows"] == 402 and table["qa_uid"].tolist()[-3:] == [f"vv::gone{k}::t0" for k in range(3)]
    _same((table, counts), parse_metrics(f, arrow=False))


def test_bare_minus_zero_is_read_as_json_reads_it(tmp_path, monkeypatch):
    """`-0` is the integer 0 for json.loads (+0.0 as a float), while a float parser gives -0.0."""
    lines = _merged_lines(50)
    lines[7] = _merged_line("vv::zero::t0", [12345.678] + [1.0] * (len(FIELDS) - 1)).replace("12345.678", "-0")
    f = tmp_path / "m.jsonl"
    _write(f, lines)
    table, counts = parse_metrics(f)
    got = table.set_index("qa_uid").loc["vv::zero::t0", "loss_video"]
    assert got == 0 and math.copysign(1, got) == 1
    _same((table, counts), parse_metrics(f, arrow=False))


@pytest.mark.parametrize("newline,final", [("\r\n", True), ("\n", False)])
def test_merged_shape_with_crlf_or_no_final_newline(tmp_path, monkeypatch, newline, final):
    f = tmp_path / "m.jsonl"
    _write(f, _merged_lines(200), newline, final)
    monkeypatch.setattr(metrics_columns, "BLOCK", 8 << 10)
    _same(parse_metrics(f), parse_metrics(f, arrow=False))


def test_merged_shape_invalid_utf8_names_the_line(tmp_path):
    f = tmp_path / "m.jsonl"
    lines = _merged_lines(20)
    lines[12] = lines[12].replace('"video_uid": "', '"video_uid": "\udcff', 1)
    f.write_bytes(("\n".join(lines) + "\n").encode("utf-8", "surrogateescape"))
    for arrow in (True, False):
        with pytest.raises(MetricsImportError, match=r"m\.jsonl: line 13: not UTF-8"):
            parse_metrics(f, arrow=arrow)
