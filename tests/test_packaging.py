"""Packaging invariants: exact pins everywhere, environment.yml in sync, notebooks stored clean."""
import json
import re

import pytest


def _pins(text: str) -> dict[str, str]:
    return dict(re.findall(r"^\s*(?:-\s*)?([A-Za-z0-9_.\-]+)==([^\s#]+)", text, re.M))


def test_requirements_are_exact_pins_with_torch_pinned(repo_root):
    lines = [l.strip() for l in (repo_root / "requirements.txt").read_text().splitlines() if l.strip() and not l.startswith("#")]
    assert all("==" in l for l in lines), [l for l in lines if "==" not in l]
    pins = _pins((repo_root / "requirements.txt").read_text())
    assert pins["torch"] == "2.14.1" and pins["torchvision"] == "0.29.1" and "faiss-cpu" in pins


def test_environment_yml_matches_requirements(repo_root):
    assert _pins((repo_root / "environment.yml").read_text()) == _pins((repo_root / "requirements.txt").read_text())


@pytest.mark.parametrize("nb_path", sorted((__import__("pathlib").Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb")),
                         ids=lambda p: p.name)
def test_notebooks_stored_without_outputs_and_with_parameters_cell(nb_path):
    nb = json.loads(nb_path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(not c.get("outputs") and not c.get("execution_count") for c in code)
    tagged = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1 and "params_file" in "".join(tagged[0]["source"])
    assert re.match(r"^\d{2}_[a-z0-9_]+\.ipynb$", nb_path.name)


def _declared(repo_root) -> dict[str, str]:
    import tomllib

    deps = tomllib.loads((repo_root / "pyproject.toml").read_text())["project"]["dependencies"]
    return {re.split(r"[<>=!~;\[ ]", d, maxsplit=1)[0].lower().replace("_", "-"): d for d in deps}


def test_declared_dependency_ranges_contain_the_pins(repo_root):
    from packaging.requirements import Requirement

    pins = {k.lower().replace("_", "-"): v for k, v in _pins((repo_root / "requirements.txt").read_text()).items()}
    declared = _declared(repo_root)
    for name, spec in declared.items():
        assert name in pins, f"{name} is declared in pyproject.toml but not pinned in requirements.txt"
        assert Requirement(spec).specifier.contains(pins[name]), (spec, pins[name])


def test_every_third_party_import_of_the_package_is_declared(repo_root):
    import ast
    import sys
    from importlib.metadata import packages_distributions

    dists = packages_distributions()
    declared = _declared(repo_root)
    tops = set()
    for f in (repo_root / "gdo_utils").rglob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Import):
                tops |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                tops.add(node.module.split(".")[0])
    third = {t for t in tops if t not in sys.stdlib_module_names and t != "gdo_utils"}
    missing = {t: dists.get(t) for t in third
               if not any(d.lower().replace("_", "-") in declared for d in dists.get(t, []))}
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"
