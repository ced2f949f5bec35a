"""The papermill chain: parameters injected, executed copies stored, skip when unchanged, stop on failure."""
import json
from pathlib import Path

import nbformat as nbf
import pytest

from gdo_utils.chain import NotebookFailed, discover, run_chain
from gdo_utils.cli import main as cli_main

pytestmark = pytest.mark.slow


def _notebook(path: Path, body: str) -> None:
    nb = nbf.v4.new_notebook(cells=[
        nbf.v4.new_code_cell('params_file = "params/demo.yaml"\noverrides = []\nforce = False', metadata={"tags": ["parameters"]}),
        nbf.v4.new_code_cell(body),
    ])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbf.write(nb, path)


BODY = ("from gdo_utils import nb\nparams = nb.start(params_file, overrides)\n"
        "params.run_dir.mkdir(parents=True, exist_ok=True)\n"
        "(params.run_dir / '{name}.txt').write_text(f'{{params.seed}} {{params.descriptors.batch_size}} {{force}}')\n")


@pytest.fixture
def chain_dir(tmp_path):
    d = tmp_path / "nbs"
    d.mkdir()
    _notebook(d / "00_first.ipynb", BODY.format(name="first"))
    _notebook(d / "01_second.ipynb", BODY.format(name="second"))
    (d / "notes.ipynb").write_text("{}")  # not numbered: ignored
    return d


def test_discover_orders_numbered_notebooks(chain_dir):
    assert [s.name for s in discover(chain_dir)] == ["00_first", "01_second"]


def test_chain_injects_params_and_skips_when_unchanged(repo_root, tmp_path, chain_dir):
    out = tmp_path / "out"
    ov = [f"output_root={out}", "seed=7", "descriptors.batch_size=3"]
    recs = run_chain(repo_root / "params/demo.yaml", overrides=ov, notebooks_dir=chain_dir, cwd=repo_root)
    assert [r["skipped"] for r in recs] == [False, False]
    assert (out / "demo" / "first.txt").read_text() == "7 3 False"
    executed = out / "demo" / "notebooks" / "00_first.ipynb"
    nb = nbf.read(executed, as_version=4)
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and "seed=7" in injected[0].source
    recs2 = run_chain(repo_root / "params/demo.yaml", overrides=ov, notebooks_dir=chain_dir, cwd=repo_root, only=["1"])
    assert [(r["notebook"], r["skipped"]) for r in recs2] == [("01_second", True)]
    recs3 = run_chain(repo_root / "params/demo.yaml", overrides=ov[:2], notebooks_dir=chain_dir, cwd=repo_root, only=["01"])
    assert recs3[0]["skipped"] is False  # params changed -> rerun
    from gdo_utils.config import load_params

    demo_batch = load_params(repo_root / "params/demo.yaml").descriptors.batch_size
    assert (out / "demo" / "second.txt").read_text() == f"7 {demo_batch} False"


def test_chain_stops_at_first_failure(repo_root, tmp_path, chain_dir):
    _notebook(chain_dir / "01_second.ipynb", "raise ValueError('boom in stage 01')")
    _notebook(chain_dir / "02_third.ipynb", BODY.format(name="third"))
    out = tmp_path / "out"
    with pytest.raises(NotebookFailed, match="01_second.ipynb failed .*ValueError: boom in stage 01"):
        run_chain(repo_root / "params/demo.yaml", overrides=[f"output_root={out}"], notebooks_dir=chain_dir, cwd=repo_root)
    assert (out / "demo" / "first.txt").exists() and not (out / "demo" / "third.txt").exists()
    rec = json.loads((out / "demo" / "notebooks" / "01_second.run.json").read_text())
    assert rec["status"] == "failed" and "boom" in rec["error"]


def test_cli_reports_bad_params_readably(repo_root, capsys):
    rc = cli_main(["validate", "--params", str(repo_root / "params/demo.yaml"), "--set", "ofa.k=many"])
    assert rc == 2
    assert "ofa.k: Input should be a valid integer" in capsys.readouterr().err


def test_chain_runs_again_when_the_code_or_an_annotation_file_changes(repo_root, tmp_path, chain_dir, monkeypatch, caplog):
    """The chain record holds the package's code version and the user's annotation files' fingerprints."""
    import gdo_utils.chain as chain

    ann = tmp_path / "ov.jsonl"
    ann.write_text('{"id": "a"}\n')
    ov = [f"output_root={tmp_path / 'out'}", f"pools.gdo=[{{format: onevision, path: {ann}}}]"]
    kw = dict(overrides=ov, notebooks_dir=chain_dir, cwd=repo_root, only=["0"])
    assert run_chain(repo_root / "params/demo.yaml", **kw)[0]["skipped"] is False
    assert run_chain(repo_root / "params/demo.yaml", **kw)[0]["skipped"] is True
    ann.write_text('{"id": "b"}\n')  # edited in place
    caplog.set_level("INFO")
    assert run_chain(repo_root / "params/demo.yaml", **kw)[0]["skipped"] is False
    assert f"running again: input file changed: {ann}" in caplog.text
    monkeypatch.setattr(chain, "code_version", lambda modules: "another-version")
    assert run_chain(repo_root / "params/demo.yaml", **kw)[0]["skipped"] is False
    assert "running again: gdo_utils code changed" in caplog.text


WRITE_MANIFEST = ("from gdo_utils import nb\nfrom gdo_utils.io import write_manifest\n"
                  "params = nb.start(params_file, overrides)\n"
                  "d = params.run_dir / '{stage}'\n"
                  "if force or not (d / 'manifest.json').is_file():\n"
                  "    write_manifest(d, stage='{stage}', params_hash='x')\n"
                  "(params.run_dir / '{stage}.count').write_text(str(int((params.run_dir / '{stage}.count').read_text() or 0) + 1)"
                  " if (params.run_dir / '{stage}.count').is_file() else '1')\n")


def test_chain_runs_a_notebook_again_when_an_earlier_stage_output_changes(repo_root, tmp_path, caplog):
    """A stage recomputed outside the chain (e.g. `gdo-repro evaluate`) makes every later notebook run again.

    00 writes stage `a` (its manifest), 01 writes stage `b`. Rewriting a's manifest by hand, as a stage command
    run on its own would, must re-run 01 (it reads a's outputs) and leave 00 alone; rewriting b's manifest
    re-runs nothing (no notebook after 01).
    """
    d = tmp_path / "nbs"
    d.mkdir()
    _notebook(d / "00_first.ipynb", WRITE_MANIFEST.format(stage="a"))
    _notebook(d / "01_second.ipynb", WRITE_MANIFEST.format(stage="b"))
    out = tmp_path / "out"
    kw = dict(overrides=[f"output_root={out}"], notebooks_dir=d, cwd=repo_root)
    assert [r["skipped"] for r in run_chain(repo_root / "params/demo.yaml", **kw)] == [False, False]
    rec0 = json.loads((out / "demo" / "notebooks" / "00_first.run.json").read_text())
    assert rec0["own"] == ["a/manifest.json"]
    assert [r["skipped"] for r in run_chain(repo_root / "params/demo.yaml", **kw)] == [True, True]
    from gdo_utils.io import write_manifest

    write_manifest(out / "demo" / "a", stage="a", params_hash="y")  # recomputed outside the chain
    caplog.set_level("INFO")
    assert [r["skipped"] for r in run_chain(repo_root / "params/demo.yaml", **kw)] == [True, False]
    assert "01_second: running again: an earlier stage's output changed: a/manifest.json" in caplog.text
    assert (out / "demo" / "b.count").read_text() == "2" and (out / "demo" / "a.count").read_text() == "1"
    write_manifest(out / "demo" / "b", stage="b", params_hash="y")
    assert [r["skipped"] for r in run_chain(repo_root / "params/demo.yaml", **kw)] == [True, True]
