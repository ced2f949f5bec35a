"""`pip install .` works outside the checkout: profiles, recipes and notebooks ship as package data, `gdo-repro run` finds them.

The package is installed with `pip install --no-deps --target` into a temporary folder (the runtime
dependencies come from the test's own environment) and every command runs from a temporary working
directory with PYTHONPATH pointing only at that install, so nothing is read from the checkout.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "setup.py", "README.md", "gdo_utils", "params/profiles", "params/recipes", "notebooks")


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(site folder, env, working dir) of a `pip install --no-deps --target` of a copy of the sources."""
    tmp = tmp_path_factory.mktemp("install")
    src = tmp / "src"
    for rel in SOURCES:
        a, b = REPO / rel, src / rel
        if a.is_dir():
            shutil.copytree(a, b, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints"))
        else:
            b.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(a, b)
    site = tmp / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--no-index", "--target", str(site), str(src)], check=True, capture_output=True, timeout=300)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(PYTHONPATH=str(site), OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    work = tmp / "work"
    work.mkdir()
    return site, env, work


def _run(installed, *args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    site, env, work = installed
    return subprocess.run([str(site / "bin" / "gdo-repro"), *args], cwd=work, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_installed_package_is_the_one_imported_and_ships_its_data(installed):
    site, env, work = installed
    out = subprocess.run([sys.executable, "-c", "import gdo_utils; print(gdo_utils.__file__)"], cwd=work, env=env,
                         capture_output=True, text=True, check=True).stdout.strip()
    assert Path(out).parent == site / "gdo_utils"
    assert sorted(p.name for p in (site / "gdo_utils" / "profiles").glob("*.yaml")) == \
        sorted(p.name for p in (REPO / "params" / "profiles").glob("*.yaml"))
    assert sorted(p.name for p in (site / "gdo_utils" / "recipes").glob("*.yaml")) == \
        sorted(p.name for p in (REPO / "params" / "recipes").glob("*.yaml"))
    assert sorted(p.name for p in (site / "gdo_utils" / "family_fixtures").glob("*.json")) == \
        sorted(p.name for p in (REPO / "gdo_utils" / "family_fixtures").glob("*.json"))
    code = "from gdo_utils.train.recipes import recipes_dir, load_recipe; print(recipes_dir()); load_recipe('llava15_lora')"
    got = subprocess.run([sys.executable, "-c", code], cwd=work, env=env, capture_output=True, text=True)
    assert got.returncode == 0 and got.stdout.strip() == str(site / "gdo_utils" / "recipes"), got.stderr
    r = _run(installed, "list", "profiles")
    assert r.returncode == 0, r.stderr
    assert [line.split("\t") for line in r.stdout.splitlines()][0] == ["custom", str(site / "gdo_utils" / "profiles" / "custom.yaml")]
    r = _run(installed, "list", "notebooks")
    assert r.stdout.split() == [str(site / "gdo_utils" / "notebooks" / p.name)
                                for p in sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))]


def test_run_from_outside_the_checkout(installed):
    """`gdo-repro run --params <file>` from another directory executes the shipped notebook 00."""
    site, env, work = installed
    tree = yaml.safe_load((REPO / "params" / "demo.yaml").read_text())
    tree["run_name"] = "outside"
    tree["toyworld"].update(n_onevision=6, n_llava_video=4, n_llava665k=6, n_visionflan=4)
    (work / "mine.yaml").write_text(yaml.safe_dump(tree))
    r = _run(installed, "run", "--params", "mine.yaml", "--only", "00", timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "00_candidate_pool: ok" in r.stdout
    run = work / "outputs" / "outside"
    executed = json.loads((run / "notebooks" / "00_candidate_pool.ipynb").read_text())
    assert not [o for c in executed["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert (run / "pool" / "qa.parquet").is_file() and (run / "models" / "tiny-qwen3vl" / "config.json").is_file()
    # profiles resolve from the package for a params file that leaves subsets.profiles_dir at its default
    r = _run(installed, "validate", "--params", "mine.yaml")
    assert r.returncode == 0 and json.loads(r.stdout)["params"]["subsets"]["profiles_dir"] == "params/profiles"
    code = ("from gdo_utils.config import load_params; from gdo_utils.subsets.profiles import load_profile; "
            "print(load_profile(load_params('mine.yaml'), 'temp_plus').min_count)")
    out = subprocess.run([sys.executable, "-c", code], cwd=work, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "16000"  # Temp+ MIN_COUNT, GDO_METHOD.md section 5
