"""nbdev-style: execute every numbered notebook on the demo params (CI runs this on every change).

One session-scoped run of the whole chain into a temporary output root; the tests below check what
each stage left behind. This is the slowest test (minutes on 2 cores).
"""
import json

import pandas as pd
import pytest

from gdo_utils.chain import discover, run_chain

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory):
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    out = tmp_path_factory.mktemp("demo_out")
    records = run_chain(repo / "params/demo.yaml", overrides=[f"output_root={out}"], cwd=repo)
    return out / "demo", records


def test_every_numbered_notebook_ran(demo_run, repo_root):
    run_dir, records = demo_run
    assert [r["notebook"] for r in records] == [s.name for s in discover(repo_root / "notebooks")]
    assert all(r["status"] == "ok" for r in records)
    for r in records:
        assert (run_dir / "notebooks" / f"{r['notebook']}.ipynb").is_file()


def test_demo_pool_outputs(demo_run):
    run_dir, _ = demo_run
    qa = pd.read_parquet(run_dir / "pool" / "qa.parquet")
    assert {"image_qa", "short_video"} <= set(qa["bucket"])
    assert qa["qa_uid"].is_unique
    report = json.loads((run_dir / "pool" / "report.json").read_text())
    q = pd.read_parquet(run_dir / "pool" / "quarantine.parquet")
    assert report["quarantined"] == len(q) > 0  # the toy world injects faults; all are counted
    assert (run_dir / "pool" / "manifest.json").is_file()
    assert (run_dir / "figures" / "pool_overview.png").is_file() and (run_dir / "figures" / "pool_overview.pdf").is_file()
