"""nbdev-style: execute every numbered notebook on the demo params (CI runs this on every change).

One session-scoped run of the whole chain exactly as `make demo` runs it: `gdo-repro run --params
params/demo.yaml` from a working directory that holds the checkout's notebooks/, params/ and pyproject.toml (linked), so
the demo's own relative settings (`output_root: outputs`) are used, outside the checkout. The tests
below check what each stage left behind. This is the slowest test (minutes on 2 cores).
"""
import json
import os
import re
from pathlib import Path
import subprocess
import sys

import pandas as pd
import pytest

from gdo_utils.chain import discover

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory):
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    work = tmp_path_factory.mktemp("demo_cwd")
    for d in ("notebooks", "params"):  # a checkout's layout (the notebooks find the root by pyproject + params)
        (work / d).symlink_to(repo / d, target_is_directory=True)
    (work / "pyproject.toml").symlink_to(repo / "pyproject.toml")
    cli = Path(sys.executable).parent / "gdo-repro"  # the README's command, as installed by `make setup`
    out = subprocess.run([str(cli), "run", "--params", "params/demo.yaml"], cwd=work,
                         env={**os.environ}, capture_output=True, text=True, timeout=1500)
    assert out.returncode == 0, out.stderr[-4000:]
    run_dir = work / "outputs" / "demo"
    records = [json.loads((run_dir / "notebooks" / f"{s.name}.run.json").read_text()) for s in discover(repo / "notebooks")]
    return run_dir, records


def test_every_numbered_notebook_ran(demo_run, repo_root):
    run_dir, records = demo_run
    assert [r["notebook"] for r in records] == [s.name for s in discover(repo_root / "notebooks")]
    assert all(r["status"] == "ok" for r in records)
    for r in records:
        assert (run_dir / "notebooks" / f"{r['notebook']}.ipynb").is_file()


def test_a_second_run_with_nothing_changed_executes_nothing(demo_run, repo_root):
    """`make demo` twice: the second `gdo-repro run` finds every notebook up to date by the stages' own keys
    (no notebook rebuilds what an earlier one built; no-op stage rewrites re-trigger nothing)."""
    from pathlib import Path

    run_dir, records = demo_run
    work = run_dir.parents[1]
    before = {f.name: f.read_bytes() for f in (run_dir / "notebooks").glob("*.run.json")}
    cli = Path(sys.executable).parent / "gdo-repro"
    out = subprocess.run([str(cli), "run", "--params", "params/demo.yaml"], cwd=work,
                         env={**os.environ}, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-4000:]
    after = {f.name: f.read_bytes() for f in (run_dir / "notebooks").glob("*.run.json")}
    rerun = [line for line in out.stderr.splitlines() if "running again" in line]
    assert not rerun and after == before, rerun


def test_demo_pool_outputs(demo_run):
    run_dir, _ = demo_run
    qa = pd.read_parquet(run_dir / "pool" / "qa.parquet")
    assert {"image_qa", "short_video"} <= set(qa["bucket"])
    assert qa["qa_uid"].is_unique
    report = json.loads((run_dir / "pool" / "report.json").read_text())
    q = pd.read_parquet(run_dir / "pool" / "quarantine.parquet")
    assert report["quarantined"] == len(q) > 0  # the toy world injects faults; all are counted
    # exactly the injected faults, one row each, across every pool (nothing lost to path resolution)
    world = json.loads((run_dir / "toyworld" / "report.json").read_text())
    got = []
    for qf in [run_dir / "pool" / "quarantine.parquet", *sorted((run_dir / "pools").glob("*/quarantine.parquet"))]:
        t = pd.read_parquet(qf)
        got += [(os.path.basename(f), int(line), r) for f, line, r in zip(t["source_file"], t["line"], t["reason"])]
    assert sorted(got) == sorted((f["file"], f["line"], f["reason"]) for f in world["injected_faults"])
    assert all(os.path.isabs(m) for media in qa["media"] for m in media)
    assert (run_dir / "pool" / "manifest.json").is_file()
    assert (run_dir / "figures" / "pool_overview.png").is_file() and (run_dir / "figures" / "pool_overview.pdf").is_file()


def test_demo_descriptors_contract(demo_run):
    run_dir, _ = demo_run
    qa = pd.read_parquet(run_dir / "pool" / "qa.parquet")
    desc = pd.read_parquet(run_dir / "descriptors" / "descriptors.parquet")
    assert list(desc.columns) == ["qa_uid", "amm", "frame_diversity", "loss_video", "loss_blind", "vds", "ppl", "tnc",
                                  "self_consistency", "cluster_id", "cluster_dist", "cluster_rep", "cluster_hard",
                                  "quality", "error"]
    assert desc["qa_uid"].tolist() == sorted(qa["qa_uid"])  # one row per candidate, sorted by qa_uid
    assert desc["quality"].notna().all()
    report = json.loads((run_dir / "descriptors" / "report.json").read_text())
    assert report["rows"] == len(qa) and report["errors"] == int(desc["error"].notna().sum())
    for fig in ("descriptor_distributions", "descriptor_correlations", "quality_level1"):
        assert (run_dir / "figures" / f"{fig}.png").is_file() and (run_dir / "figures" / f"{fig}.pdf").is_file()


def test_demo_ofa_contract(demo_run):
    run_dir, _ = demo_run
    sel = run_dir / "ofa" / "selector"
    for f in ("selector.safetensors", "selector.json", "centroids.npy", "history.parquet", "manifest.json"):
        assert (sel / f).is_file(), f
    for pool in ("llava665k", "visionflan"):
        scores = pd.read_parquet(run_dir / "ofa" / pool / "scores.parquet")
        assert {"sample_id", "cluster", "conf", "entropy", "gate", "scored"} <= set(scores.columns)
        rep = json.loads((run_dir / "ofa" / pool / "report.json").read_text())
        selected = json.loads((run_dir / "ofa" / pool / "selected.json").read_text())
        assert len(selected) == rep["n_selected"] == -(-15 * int(scores["scored"].sum()) // 100)
        assert rep["n_unscored"] == int((~scores["scored"]).sum())


def test_demo_subsets_contract(demo_run):
    run_dir, _ = demo_run
    qa = pd.read_parquet(run_dir / "pool" / "qa.parquet")
    sizes = {}
    for name in ("minloss", "diverse", "temp", "temp_plus"):
        d = run_dir / "subsets" / name
        rows = [json.loads(x) for x in (d / "train.jsonl").read_text().splitlines()]
        rep = json.loads((d / "report.json").read_text())
        assert len(rows) == rep["size"] and (d / "card.md").is_file()
        assert {r["id"] for r in rows} <= set(qa["qa_uid"])
        paths = [x for r in rows for x in r.get("images", []) + r.get("videos", [])]
        assert paths and all(os.path.isabs(x) and os.path.exists(x) for x in paths)  # resolvable from any cwd
        sizes[name] = len(rows)
        assert rep["uniform"]["name"] == "uniform"  # demo: one fixed-size uniform baseline
    assert 0 < min(sizes.values()) and max(sizes.values()) < 0.2 * len(qa)


def test_demo_teaches_what_the_issue_asked(demo_run):
    """A uniform baseline that is a sample, a varying TNC, an OFA epoch the policy chose, MCQ modes that disagree."""
    from gdo_utils.subsets.strata import mcq_mask
    from gdo_utils.trainfile import read_rows

    run_dir, _ = demo_run
    qa = pd.read_parquet(run_dir / "pool" / "qa.parquet")
    uniform = list(read_rows(run_dir / "subsets" / "uniform" / "train.jsonl"))
    one_x = max(json.loads((run_dir / "subsets" / n / "report.json").read_text())["size"]
                for n in ("minloss", "diverse", "temp", "temp_plus"))
    assert one_x < len(uniform) == 150 < len(qa)
    desc = pd.read_parquet(run_dir / "descriptors" / "descriptors.parquet")
    assert set(desc["tnc"].dropna()) == {0.0, 1.0}  # regex TNC on the demo
    meta = json.loads((run_dir / "ofa" / "selector" / "selector.json").read_text())
    hist = pd.read_parquet(run_dir / "ofa" / "selector" / "history.parquet")
    k = meta["feature_spec"]["k"]
    full = hist[hist["val_coverage"] == k]
    assert len(full) >= 2 and meta["chosen_epoch"] in set(full["epoch"])  # a real choice, not the fallback
    assert int(mcq_mask(qa, "after_collapse").sum()) < int(mcq_mask(qa, "before_collapse").sum())
    for fig in ("vds_walkthrough", "flow_field", "score_decomposition", "ofa_vs_random_llava665k",
                "ofa_budget_sweep_llava665k"):
        assert (run_dir / "figures" / f"{fig}.png").is_file(), fig
    for pool in ("llava665k", "visionflan"):
        sel = (run_dir / "ofa" / pool / "selected_ids.txt").read_text().split()
        rows = {kind: list(read_rows(run_dir / "subsets" / f"{kind}_{pool}" / "train.jsonl"))
                for kind in ("ofa", "ofa_random", "ofa_full")}
        assert [r["id"] for r in rows["ofa"]] == sel and len(rows["ofa_random"]) == len(sel)
        assert len(rows["ofa_full"]) == qa_samples(run_dir, pool)


def qa_samples(run_dir, pool: str) -> int:
    return int(pd.read_parquet(run_dir / "pools" / pool / "qa.parquet")["sample_id"].nunique())
def test_demo_report(demo_run):
    run_dir, _ = demo_run
    check_demo_report(run_dir)


def check_demo_report(run_dir: Path) -> None:
    """REPORT.md is the reference report, REPORT_run.md the run's: no peak match from a baseline at chance, every
    accuracy with its n, every table and figure with its source."""
    report = (run_dir / "REPORT.md").read_text()
    assert "## Inconsistencies in the published material" in report and "## Provenance" in report
    assert "(reference mode)" in report  # notebook 06 builds both modes; the run report never overwrites this one
    for name in ("gdo_main", "gdo_profiles", "ofa_rel"):
        assert (run_dir / "tables" / "reference" / f"{name}.csv").is_file()
    assert (run_dir / "figures" / "reference" / "gdo_convergence.png").stat().st_size > 0
    if not (run_dir / "eval" / "trajectory.parquet").is_file():
        return
    run = (run_dir / "REPORT_run.md").read_text()
    assert "(run mode)" in run
    acc = pd.read_csv(run_dir / "tables" / "run" / "gdo_run_accuracies.csv", dtype=str, keep_default_na=False)
    main = pd.read_csv(run_dir / "tables" / "run" / "gdo_main.csv", dtype=str, keep_default_na=False)
    uni = main.set_index("benchmark")
    uni_subset = re.search(r"Uni-10x = `([^`]+)`", run).group(1)
    for r in acc[acc["subset"] == uni_subset].itertuples(index=False):
        if r.status != "above chance" and r.n not in ("", "0"):
            assert uni.loc[r.benchmark, "peak_match_k"] == "" and uni.loc[r.benchmark, "reduction_x"] == ""
            assert f"| {r.benchmark} | Peak match | undefined |" in run
    quantities = {"### Main results": ("Uni-10x", "GDO (Temp+)"), "### Goal presets": ("Accuracy",),
                  "### Temp+ score-term ablation": ("MVBench", "VideoMME", "MLVU")}
    for section in re.split(r"\n(?=##)", run):  # every accuracy has its n
        keys = next((q for title, q in quantities.items() if section.startswith(title)), None)
        for line in section.splitlines() if keys else []:
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            hit = [i for i, c in enumerate(cells) if c in keys]
            if line.startswith("| ") and hit and "Quantity" not in cells:
                value = cells[hit[-1] + 1]
                assert value in ("—", "not trained on the demo") or "(n=" in value, line
    for text in (report, run):  # each table and figure section names its source
        for section in re.split(r"\n(?=##)", text):
            if section.startswith("### "):
                assert "\n- source: " in section, section.splitlines()[0]


def check_train_runs(run_dir, runs):
    """Contract C2 for every demo run whose subset exists: run_info, checkpoints, log; held-out loss falls."""
    from gdo_utils.train.logs import LOG_COLUMNS

    trained = 0
    for name in runs:
        if not (run_dir / "subsets" / name / "train.jsonl").is_file():
            continue
        d = run_dir / "train" / name
        info = json.loads((d / "run_info.json").read_text())
        assert {"subset", "train_file", "base_model", "family", "global_batch", "n_train", "lora", "finished",
                "checkpoints"} <= set(info) and info["finished"] and info["family"] == "qwen3_vl"
        names = [c["name"] for c in info["checkpoints"]]
        assert names and names[-1] == f"checkpoint-{info['n_train']}"
        for c in info["checkpoints"]:
            assert (d / c["name"] / "config.json").is_file() and (d / c["name"] / "processor_config.json").is_file()
        log = pd.read_parquet(d / "train_log.parquet")
        assert list(log.columns) == LOG_COLUMNS and (d / "manifest.json").is_file()
        ev = log["eval_loss"].dropna()
        assert ev.iloc[-1] < ev.iloc[0]
        trained += 1
    return trained


def test_demo_train_contract(demo_run):
    from gdo_utils.config import load_params

    run_dir, _ = demo_run
    from pathlib import Path

    runs = load_params(Path(__file__).resolve().parents[1] / "params/demo.yaml").train.runs
    assert check_train_runs(run_dir, runs) >= 2   # at least Temp+ and its uniform baseline
