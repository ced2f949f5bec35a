"""Stage caches keyed on params + code version + input fingerprints (gdo_utils.cache).

Edit an annotation file in place, or change a stage's code: that stage and everything downstream
recompute, nothing else does. A stage "recomputed" exactly when its manifest was rewritten.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gdo_utils.cache import StageCache, code_version, fingerprint, same_file
from gdo_utils.config import load_params

REPO = Path(__file__).resolve().parents[1]
SMALL = ["toyworld.n_onevision=10", "toyworld.n_llava_video=5", "toyworld.n_llava665k=6", "toyworld.n_visionflan=4",
         "descriptors.skip_model=true", "descriptors.tnc_mode=regex", "descriptors.coverage_features=standardized",
         "descriptors.coverage_k=3", "subsets.profiles=[temp_plus]", "subsets.ablations=[]", "subsets.budget_override=4"]


def test_fingerprint_trusts_size_and_mtime_else_the_content(tmp_path):
    f = tmp_path / "a.jsonl"
    f.write_text('{"id": 1}\n')
    fp = fingerprint(f)
    assert same_file(f, fp)
    os.utime(f, ns=(fp["mtime_ns"] + 10**9, fp["mtime_ns"] + 10**9))  # touched, same bytes
    assert same_file(f, fp)
    f.write_text('{"id": 2}\n')  # edited in place, same size
    assert not same_file(f, fp)
    assert not same_file(tmp_path / "gone", fp) and same_file(tmp_path / "gone", fingerprint(tmp_path / "gone"))


def test_stage_cache_says_why(tmp_path, caplog):
    inp = tmp_path / "in.txt"
    inp.write_text("x")
    c = StageCache("demo", tmp_path / "out", "h1", ["gdo_utils.cache"], [inp])
    assert c.why_stale() == "no manifest (first run or interrupted)"
    from gdo_utils.io import write_manifest

    write_manifest(tmp_path / "out", stage="demo", params_hash="h1", extra=c.record())
    assert c.why_stale() is None
    assert StageCache("demo", tmp_path / "out", "h2", ["gdo_utils.cache"], [inp]).why_stale() == "params changed"
    assert StageCache("demo", tmp_path / "out", "h1", ["gdo_utils.io"], [inp]).why_stale().startswith("code changed")
    inp.write_text("y")
    assert c.why_stale() == f"input file changed: {inp.absolute()}"
    assert code_version(["gdo_utils.pool"]) != code_version(["gdo_utils.pool.text"])


def _stamps(p) -> dict[str, int]:
    """mtime of each stage's manifest (rewritten only when the stage recomputes)."""
    dirs = {"pool": p.stage_dir("pool"), "pool_llava665k": p.stage_dir("pools", "llava665k"),
            "pool_visionflan": p.stage_dir("pools", "visionflan"), "embed": p.stage_dir("embed", "gdo"),
            "descriptors": p.stage_dir("descriptors"), "subset": p.stage_dir("subsets", "temp_plus")}
    return {k: (d / "manifest.json").stat().st_mtime_ns for k, d in dirs.items()}


def _run_all(p) -> dict[str, int]:
    from gdo_utils import subsets
    from gdo_utils.descriptors.runner import run_stage
    from gdo_utils.embed import ensure_embeddings
    from gdo_utils.pool import run_pool_stage

    run_pool_stage(p)
    ensure_embeddings(p, "gdo", level="qa")
    run_stage(p, progress=False)
    subsets.build_profile(p, "temp_plus")
    return _stamps(p)


def _changed(before: dict, after: dict) -> set[str]:
    return {k for k in before if before[k] != after[k]}


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    from gdo_utils.models import ensure_models
    from gdo_utils.toyworld import generate_toyworld

    root = tmp_path_factory.mktemp("cache")
    p = load_params(REPO / "params/demo.yaml", [f"output_root={root}", *SMALL])
    generate_toyworld(p.toyworld, p.toyworld_dir)  # the tiny tokenizer is trained on the toy world's corpus
    ensure_models(p)
    return root, p


def test_editing_an_annotation_file_recomputes_that_pool_and_what_is_built_on_it(chain, caplog):
    _, p = chain
    first = _run_all(p)
    assert _changed(first, _run_all(p)) == set()  # nothing changed: nothing recomputes
    # an OFA pool's file: only that pool
    f = p.toyworld_dir / "llava665k.json"
    f.write_text(f.read_text().replace('"id": "000000000000"', '"id": "000000000099"'))
    second = _run_all(p)
    assert _changed(first, second) == {"pool_llava665k"}
    # the GDO image file, one answer edited in place: the GDO pool and everything downstream
    f = p.toyworld_dir / "onevision.jsonl"
    lines = f.read_text().splitlines()
    rec = json.loads(lines[0])
    rec["messages"][1]["content"] = "edited answer"
    lines[0] = json.dumps(rec)
    f.write_text("\n".join(lines) + "\n")
    caplog.set_level("INFO")
    third = _run_all(p)
    assert _changed(second, third) == {"pool", "embed", "descriptors", "subset"}
    assert f"pool gdo: recomputing: input file changed: {f.absolute()}" in caplog.text
    # touched without a change: the content hash decides, nothing recomputes
    os.utime(f)
    assert _changed(third, _run_all(p)) == set()


def test_changing_a_stage_code_recomputes_it_and_downstream_only(chain, tmp_path):
    """A copy of the package with one descriptor module edited runs the CLI: descriptors and the subset
    recompute, the pool and the embeddings are reused."""
    _, p = chain
    before = _run_all(p)
    pkg = tmp_path / "pkg"
    shutil.copytree(REPO / "gdo_utils", pkg / "gdo_utils", ignore=shutil.ignore_patterns("__pycache__"))
    with open(pkg / "gdo_utils" / "descriptors" / "coverage.py", "a") as fh:
        fh.write("\n# an edit to the coverage code\n")
    params_file = tmp_path / "p.yaml"
    import yaml

    params_file.write_text(yaml.safe_dump(p.model_dump(mode="json")))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(pkg), os.environ.get("PYTHONPATH", "")])}
    for stage in ("pool", "descriptors"):
        out = subprocess.run([sys.executable, "-m", "gdo_utils.cli", stage, "--params", str(params_file)], env=env, cwd=tmp_path,
                             capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr[-2000:]
    assert "descriptors: recomputing: code changed" in out.stderr
    from gdo_utils import subsets

    # the subset builder of this checkout sees the descriptors' new code version upstream
    subsets.build_profile(p, "temp_plus")
    assert _changed(before, _stamps(p)) == {"descriptors", "subset"}


def test_code_version_covers_the_modules_a_stage_imports():
    """A stage's code version includes every gdo_utils module it imports, transitively (a stale module list
    cannot leave a shared helper out), and no module it does not import."""
    from gdo_utils.cache import _closure

    rel = lambda files: {str(f.relative_to(REPO)) for f in files}  # noqa: E731
    desc = rel(_closure(["gdo_utils.descriptors.coverage"]))
    assert {"gdo_utils/descriptors/coverage.py", "gdo_utils/kmeans.py", "gdo_utils/vectors.py"} <= desc
    pool = rel(_closure(["gdo_utils.pool"]))
    assert "gdo_utils/pool/reader.py" in pool and "gdo_utils/descriptors/coverage.py" not in pool
    assert not any(f.startswith("gdo_utils/train/") or f.startswith("gdo_utils/evaluate/") for f in pool)


def _toy_package(tmp_path, monkeypatch) -> Path:
    """A temporary `gdo_utils` folder (a.py imports b.py) that code_version resolves module names in."""
    import gdo_utils.cache as cache

    pkg = tmp_path / "gdo_utils"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from gdo_utils import b\nX = 1\n")
    (pkg / "b.py").write_text("Y = 1\n")
    (pkg / "c.py").write_text("Z = 1\n")
    monkeypatch.setattr(cache, "_module_files", lambda m: (pkg / f"{m.split('.')[-1]}.py",))
    return pkg


def test_code_version_changes_when_a_module_file_changes(tmp_path, monkeypatch):
    """The per-process memo is keyed on each file's (path, size, mtime_ns): edits are still seen."""
    pkg = _toy_package(tmp_path, monkeypatch)
    v1 = code_version(["gdo_utils.a"])
    assert code_version(["gdo_utils.a"]) == v1
    (pkg / "c.py").write_text("Z = 2\n")  # not imported by a: same version
    assert code_version(["gdo_utils.a"]) == v1
    (pkg / "b.py").write_text("Y = 22\n")  # an imported module, new size
    v2 = code_version(["gdo_utils.a"])
    assert v2 != v1
    st = (pkg / "b.py").stat()
    (pkg / "b.py").write_text("Y = 33\n")  # same size, later mtime
    os.utime(pkg / "b.py", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    v3 = code_version(["gdo_utils.a"])
    assert v3 not in (v1, v2)
    (pkg / "a.py").write_text("from gdo_utils import b, c\nX = 1\n")  # a new import joins the closure
    v4 = code_version(["gdo_utils.a"])
    assert v4 not in (v1, v2, v3)
    (pkg / "c.py").write_text("Z = 3\n")
    assert code_version(["gdo_utils.a"]) != v4


def test_code_version_second_call_reads_no_file(tmp_path, monkeypatch):
    """A repeated call only stats the files: no source file is read or parsed again until one changes."""
    pkg = _toy_package(tmp_path, monkeypatch)
    reads: list[Path] = []
    real = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda self: reads.append(self) or real(self))
    v = code_version(["gdo_utils.a"])
    assert sorted(p.name for p in reads) == ["__init__.py"] * 2 + ["a.py"] * 2 + ["b.py"] * 2  # parsed + hashed
    reads.clear()
    assert code_version(["gdo_utils.a"]) == v and reads == []
    st = (pkg / "b.py").stat()
    os.utime(pkg / "b.py", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # touched: read again, same bytes
    assert code_version(["gdo_utils.a"]) == v
    assert sorted(p.name for p in reads) == ["__init__.py", "a.py", "b.py", "b.py"]  # b parsed, all hashed


def test_model_fingerprint_changes_when_a_checkpoint_is_rewritten(tmp_path):
    """Evaluation and training key a model folder by its files: a retrained checkpoint at the same path is new."""
    import os

    from gdo_utils.cache import model_fingerprint

    d = tmp_path / "checkpoint-8"
    d.mkdir()
    (d / "config.json").write_text("{}")
    (d / "model.safetensors").write_bytes(b"a" * 10)
    first = model_fingerprint(str(d))
    assert model_fingerprint(str(d)) == first and model_fingerprint("org/hub-id") == "org/hub-id"
    (d / "model.safetensors").write_bytes(b"b" * 10)       # same size, new mtime
    st = (d / "config.json").stat()
    os.utime(d / "model.safetensors", ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert model_fingerprint(str(d)) != first


def test_code_version_follows_imports_nested_in_any_statement(tmp_path, monkeypatch):
    """Lazy imports inside functions, classes, try/except/finally, with, if/else, loops and match all count."""
    import gdo_utils.cache as cache

    pkg = _toy_package(tmp_path, monkeypatch)
    mods = ["m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8"]
    for m in mods:
        (pkg / f"{m}.py").write_text("V = 1\n")
    (pkg / "a.py").write_text(
        "def f():\n    from gdo_utils import m1\n"
        "class C:\n    def g(self):\n        import gdo_utils.m2\n"
        "try:\n    pass\nexcept ImportError:\n    from gdo_utils import m3\nelse:\n    pass\nfinally:\n    from gdo_utils import m4\n"
        "with open(__file__):\n    from gdo_utils import m5\n"
        "if False:\n    pass\nelse:\n    from gdo_utils import m6\n"
        "for _ in ():\n    pass\nelse:\n    from gdo_utils import m7\n"
        "match 1:\n    case 2:\n        from gdo_utils import m8\n")
    names = {f.name for f in cache._closure(["gdo_utils.a"])}
    assert {f"{m}.py" for m in mods} <= names and "c.py" not in names
