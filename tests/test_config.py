import pytest

from gdo_utils.config import (ParamsError, UnfilledPathError, apply_override, load_params, params_hash,
                              resolve_path)


def test_demo_and_paper_params_load(repo_root):
    demo = load_params(repo_root / "params/demo.yaml")
    paper = load_params(repo_root / "params/paper.yaml")
    assert demo.toyworld.enabled and not paper.toyworld.enabled
    assert paper.ofa.k == 128 and paper.descriptors.coverage_k == 4096
    assert paper.subsets.uniform.size == 512000


def test_params_hash_is_stable_and_sensitive(repo_root):
    a = load_params(repo_root / "params/demo.yaml")
    b = load_params(repo_root / "params/demo.yaml")
    assert params_hash(a) == params_hash(b)
    c = load_params(repo_root / "params/demo.yaml", ["descriptors.batch_size=7"])
    assert params_hash(c) != params_hash(a)
    assert params_hash(c, "pool") == params_hash(a, "pool")  # section hashes ignore other sections


def test_override_parses_yaml_scalars_without_eval():
    tree = {"a": {"b": 1}}
    apply_override(tree, "a.b=2.5")
    apply_override(tree, "a.c=[1, 2]")
    apply_override(tree, "x.y=__import__('os')")
    assert tree == {"a": {"b": 2.5, "c": [1, 2]}, "x": {"y": "__import__('os')"}}
    with pytest.raises(ParamsError, match="key.sub=value"):
        apply_override(tree, "nonsense")


def test_validation_errors_name_file_and_field(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("run_name: x\nofa: {k: lots, budget_ratio: 2}\ndescriptors: {batch_sise: 3}\n")
    with pytest.raises(ParamsError) as exc:
        load_params(p)
    msg = str(exc.value)
    assert str(p) in msg
    assert "ofa.k" in msg and "ofa.budget_ratio" in msg
    assert "descriptors.batch_sise" in msg and "Extra inputs" in msg


def test_yaml_syntax_error_names_file(tmp_path):
    p = tmp_path / "broken.yaml"
    p.write_text("run_name: [unclosed\n")
    with pytest.raises(ParamsError, match="broken.yaml: not valid YAML"):
        load_params(p)


def test_placeholder_paths_refused_with_field(repo_root):
    paper = load_params(repo_root / "params/paper.yaml")
    with pytest.raises(UnfilledPathError, match=r"pools\.gdo\[0\]\.path is still the placeholder"):
        resolve_path(paper, paper.pools.gdo[0].path, "pools.gdo[0].path")


def test_scheme_paths(repo_root):
    demo = load_params(repo_root / "params/demo.yaml")
    assert resolve_path(demo, "run:models/x", "f") == demo.run_dir / "models/x"
    assert resolve_path(demo, "toyworld:a.jsonl", "f") == demo.toyworld_dir / "a.jsonl"
    off = load_params(repo_root / "params/demo.yaml", ["toyworld.enabled=false"])
    with pytest.raises(ParamsError, match="toyworld.enabled is false"):
        resolve_path(off, "toyworld:a.jsonl", "f")


def test_uniform_needs_exactly_one(tmp_path):
    p = tmp_path / "u.yaml"
    p.write_text("run_name: x\nsubsets: {uniform: {size: 10, multiplier: 10}}\n")
    with pytest.raises(ParamsError, match="exactly one of uniform.size and uniform.multiplier"):
        load_params(p)


def test_combined_ablations_name_their_subset_and_bad_ones_are_refused(repo_root):
    """'no_vds+no_ppl+no_sc' builds the paper's 'Temp+ w/o VDS/PPL/SC' subset, named as the report looks it up."""
    from gdo_utils.subsets.build import parse_subset_name, subset_names

    p = load_params(repo_root / "params/demo.yaml", ["subsets.ablations=[no_sc, no_vds+no_ppl+no_sc]"])
    names = subset_names(p)
    assert names[-2:] == ["temp_plus_no_sc", "temp_plus_no_vds_no_ppl_no_sc"]
    assert p.report.ablations["Temp+ w/o VDS/PPL/SC"] == names[-1]
    assert parse_subset_name(names[-1]) == ("temp_plus", ("no_ppl", "no_sc", "no_vds"))
    with pytest.raises(ParamsError, match=r"subsets.ablations: .*unknown ablation\(s\) \['no_vds\+bogus'\]"):
        load_params(repo_root / "params/demo.yaml", ["subsets.ablations=[no_vds+bogus]"])
