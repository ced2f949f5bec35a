"""`gdo-repro import-metrics`: the release loader's rules, the report, and the README's release commands."""
from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gdo_utils.descriptors.release_metrics import parse_metrics
from gdo_utils.io import read_parquet

REPO = Path(__file__).resolve().parents[1]
OV = [{"id": "a", "images": ["a.jpg"], "data_source": "ai2d(gpt4v)",
       "messages": [{"from": "human", "value": "<image>\nWhat is shown?"}, {"from": "gpt", "value": "A red circle."}]},
      {"id": "b", "images": ["b.jpg"],
       "messages": [{"role": "user", "content": "<image>\nHow many shapes?"}, {"role": "assistant", "content": "Two."},
                    {"role": "user", "content": "Which one is larger?"}, {"role": "assistant", "content": "The square."}]}]
VV = [{"id": "v1", "video_id": "vid1", "images": [f"f{k}.jpg" for k in range(4)], "data_source": "nextqa_oe(v1)",
       "messages": [{"role": "user", "content": "<video>\nWhat happens first?"},
                    {"role": "assistant", "content": "The ball rolls."}]}]
METRICS = "\n".join([
    # 1: values at the top level, id in qa_uid
    '{"qa_uid": "ov::a::t0", "loss_video": 1.0, "loss_blind": 1.5, "vds": 0.5, "frame_diversity": 0.1, "quality_score": 0.4}',
    # 2: id in `id`; values under data_quality_metrics: a numeric string, NaN, null, a word, Infinity; amm only at the top
    '{"id": "ov::b::t0", "amm": 2.5, "data_quality_metrics": {"loss_video": "2.0", "vds": NaN, "loss_blind": null, '
    '"frame_diversity": "abc", "quality_score": Infinity, "self_consistency": -1}}',
    '{not json',                                         # 3: bad: not JSON
    '[1, 2]',                                            # 4: bad: not an object
    '{"qa_uid": "", "id": "ov::b::t1", "vds": 1.0}',     # 5: bad: qa_uid present but empty (id is not used)
    '{"loss_video": 1.0}',                               # 6: bad: no id
    '',                                                  # blank line: skipped, not a row
    '{"qa_uid": "ov::a::t0", "loss_video": 3.0, "loss_blind": 3.5, "vds": 0.5, "frame_diversity": 0.2, "quality_score": 0.9}',  # 8: duplicate, wins
    '{"qa_uid": "vv::gone::t0", "vds": 1.0}',            # 9: not in the pool
]) + "\n"


def write_release_files(d: Path) -> dict[str, Path]:
    d.mkdir(parents=True, exist_ok=True)
    ov, vv = d / "llava_onevision.jsonl", d / "llava_video.jsonl"
    ov.write_text("".join(json.dumps(r) + "\n" for r in OV))
    vv.write_text("".join(json.dumps(r) + "\n" for r in VV))
    return {"ONEVISION_PATH": ov, "VIDEO_PATH": vv}


def test_parse_metrics_follows_the_release_loader(tmp_path):
    f = tmp_path / "metrics.jsonl"
    f.write_text(METRICS)
    table, counts = parse_metrics(f)
    assert table["qa_uid"].tolist() == ["ov::a::t0", "ov::b::t0", "vv::gone::t0"]
    assert counts["lines"] == 8 and counts["rows"] == 3 and counts["duplicated_ids"] == 1
    assert counts["bad_rows"] == 4
    assert [b["line"] for b in counts["bad_rows_listed"]] == [3, 4, 5, 6]
    assert counts["bad_by_reason"] == {"not JSON": 1, "not a JSON object": 1, "no qa_uid / id": 2}
    a = table.set_index("qa_uid").loc["ov::a::t0"]
    assert (a["loss_video"], a["quality"], a["frame_diversity"]) == (3.0, 0.9, 0.2)       # the last row wins
    b = table.set_index("qa_uid").loc["ov::b::t0"]
    assert b["loss_video"] == 2.0 and b["amm"] == 2.5                                     # string number; top level
    for col in ("vds", "loss_blind", "frame_diversity", "quality", "self_consistency"):   # NaN/null/word/inf/-1
        assert math.isnan(b[col]), col


def _env(files: dict[str, Path]) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), **{k: str(v) for k, v in files.items()}}


def _cli(args: list[str], cwd: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gdo_utils.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture
def release_dir(tmp_path) -> Path:
    """A working directory outside the checkout holding params/release.yaml and the profiles."""
    work = tmp_path / "work"
    shutil.copytree(REPO / "params", work / "params")
    return work


def test_readme_release_commands_build_the_release_subsets(release_dir, tmp_path):
    text = (REPO / "README.md").read_text()
    block = re.search(r"<!-- release-commands -->\s*```bash\n(.*?)```", text, re.S)
    assert block, "README lacks the release-commands block"
    commands = [ln.strip() for ln in block.group(1).splitlines() if ln.strip().startswith("gdo-repro ")]
    assert len(commands) == 2 and "import-metrics" in commands[0] and commands[1].startswith("gdo-repro subsets")
    files = write_release_files(tmp_path / "data")
    metrics = release_dir / "outputs" / "metrics" / "sixd_metrics_merged.jsonl"
    metrics.parent.mkdir(parents=True)
    metrics.write_text(METRICS)
    env = _env(files)
    for cmd in commands:
        r = _cli(cmd.split()[1:] + ["--set", "subsets.profiles=[temp_plus]", "--set", "subsets.figures=false"],
                 release_dir, env)
        assert r.returncode == 0, r.stderr[-2000:]
    rep = json.loads((release_dir / "outputs" / "release" / "descriptors" / "import_report.json").read_text())
    assert (rep["bad_rows"], rep["duplicated_ids"], rep["ids_not_in_pool"], rep["pool_rows_without_metrics"]) == (4, 1, 1, 2)
    assert rep["pool_rows_without_metrics_listed"] == ["ov::b::t1", "vv::v1::t0"]
    out = release_dir / "outputs" / "release" / "subsets" / "temp_plus"
    sub = json.loads((out / "report.json").read_text())
    assert sub["behaviour"]["switch"] == "release" and sub["behaviour"]["floor_candidates"] == "capped"
    # 4 QA pairs: floor(4 * 0.018) = 0 is no bound in the release, so the budget takes the whole pool
    assert sorted((out / "selected_ids.txt").read_text().split()) == ["ov::a::t0", "ov::b::t0", "ov::b::t1", "vv::v1::t0"]


def test_subsets_without_descriptors_or_with_a_missing_column_are_clear_errors(release_dir, tmp_path):
    env = _env(write_release_files(tmp_path / "data"))
    sets = ["--params", "params/release.yaml", "--set", "subsets.profiles=[temp_plus]", "--set", "subsets.figures=false"]
    assert _cli(["pool"] + sets[:2], release_dir, env).returncode == 0
    r = _cli(["subsets"] + sets, release_dir, env)
    assert r.returncode == 1 and "the run has no descriptors" in r.stderr and "Traceback" not in r.stderr
    assert _cli(["subsets"] + sets + ["--set", "subsets.allow_no_descriptors=true"], release_dir, env).returncode == 0
    # a descriptor table without `quality` (and without the level-1 columns): the error names quality, not ppl
    import pandas as pd

    from gdo_utils.io import write_parquet
    write_parquet(release_dir / "outputs" / "release" / "descriptors" / "descriptors.parquet",
                  pd.DataFrame({"qa_uid": ["ov::a::t0"], "loss_video": [1.0], "loss_blind": [1.2], "vds": [0.2],
                                "frame_diversity": [0.1]}))
    r = _cli(["subsets"] + sets + ["--force"], release_dir, env)
    assert r.returncode == 1 and "missing column 'quality'" in r.stderr and "Traceback" not in r.stderr


def test_import_metrics_errors_name_the_file(release_dir, tmp_path):
    env = _env(write_release_files(tmp_path / "data"))
    r = _cli(["import-metrics", str(tmp_path / "nope.jsonl"), "--params", "params/release.yaml"], release_dir, env)
    assert r.returncode == 1 and "nope.jsonl" in r.stderr
    only_bad = tmp_path / "bad.jsonl"
    only_bad.write_text("{oops\n")
    r = _cli(["import-metrics", str(only_bad), "--params", "params/release.yaml"], release_dir, env)
    assert r.returncode == 1 and "no usable metrics row" in r.stderr
    r = _cli(["import-metrics", str(only_bad), "--params", "params/release.yaml", "--set", "output_root=fresh"],
             release_dir, {k: v for k, v in env.items() if k != "VIDEO_PATH"})
    assert r.returncode == 2 and "VIDEO_PATH" in r.stderr
