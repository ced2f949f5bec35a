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
