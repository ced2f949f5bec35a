"""The user's path, as the README prints it: papermill's own flags, exports that keep a user's files, the launch
command without the model, progress and logging in `gdo-repro run`, `make lab`, packaging, a README that
stands alone.

Commands are read from the README's code blocks (each block names the tests that run it in a
`<!-- tested-by: ... -->` line), so a README edit that breaks a command breaks a test.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat as nbf
import pytest
import yaml

from gdo_utils.cli import build_parser
from gdo_utils.cli import main as cli_main
from gdo_utils.nb import injected_params_sections, normalise_overrides
from gdo_utils.subsets.export import write_rows
from tests.conftest import write_jpg

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
BIN = Path(sys.executable).parent


def readme_block(tested_by: str, lang: str = "bash") -> list[str]:
    """The command lines of the README code block whose `tested-by` marker names `tested_by`."""
    text = README.read_text(encoding="utf-8")
    for m in re.finditer(r"<!-- tested-by: ([^>]*) -->\n(?:<!--[^>]*-->\n)*```" + lang + r"\n(.*?)```", text, re.S):
        if tested_by in m.group(1):
            return [ln.split("  #")[0].strip() for ln in m.group(2).splitlines() if ln.strip()]
    raise AssertionError(f"README has no {lang} block tested by {tested_by}")


def _env(**extra: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
           "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.update(extra)
    return env


# ----------------------------------------------------------------------------- the README itself
def test_readme_is_short_and_every_command_block_names_its_tests():
    text = README.read_text(encoding="utf-8")
    assert len(text.encode("utf-8")) < 15_000
    blocks = list(re.finditer(r"((?:<!--[^>]*-->\n)*)```(bash|sh)\n", text))
    assert blocks
    for m in blocks:
        marker = re.search(r"<!-- tested-by: ([^>]*) -->", m.group(1))
        assert marker, f"README code block at offset {m.start()} names no test (<!-- tested-by: ... -->)"
        for ref in marker.group(1).split(","):
            path, _, func = ref.strip().partition("::")
            assert (REPO / path).is_file(), ref
            if func:
                assert re.search(rf"^def {func}\(", (REPO / path).read_text(), re.M), ref


def _repo_text_files() -> list[Path]:
    skip = {".git", ".venv", "outputs", "__pycache__", ".pytest_cache", "build", "gdo_utils.egg-info"}
    out = []
    for p in REPO.rglob("*"):
        if p.is_file() and not (set(p.relative_to(REPO).parts) & skip) and p.suffix in {
                ".md", ".py", ".ipynb", ".yaml", ".yml", ".toml", ".txt", ".cfg", ".csv"} or p.name == "Makefile":
            out.append(p)
    return out


# Markdown files the kit writes into outputs/ (named in code and prose, not files of the repository).
GENERATED_MD = {"REPORT.md", "REPORT_run.md", "card.md", "rel.md", "table.md"}   # files the kit writes
# Pages other parts of the docs are written in (docs/README.md lists them); allowed only while absent from
# this branch, so after the merge their links are checked like every other.
DOCS_WRITTEN_ELSEWHERE = {"reliability.md", "bad_input.md", "ofa_protocol.md", "evaluation.md"}


def test_nothing_in_the_repository_points_outside_it():
    """No path to the developers' shared folder; every `NAME.md` named in the repository is a file in it."""
    files = _repo_text_files()
    md_names = {p.name for p in REPO.rglob("*.md") if ".git" not in p.parts and ".venv" not in p.parts}
    md_names |= GENERATED_MD | {n for n in DOCS_WRITTEN_ELSEWHERE if not (REPO / "docs" / n).exists()}
    outside = re.compile(r"(/work/shared|\.\./shared|shared docs|in the shared)")
    md_ref = re.compile(r"(?<![/\w.-])([A-Za-z][A-Za-z0-9_]*\.md)\b")
    bad = []
    for f in files:
        if f == Path(__file__):
            continue
        text = f.read_text(encoding="utf-8", errors="replace")
        bad += [f"{f.relative_to(REPO)}: {m.group(0)}" for m in outside.finditer(text)]
        bad += [f"{f.relative_to(REPO)}: {m.group(1)}" for m in md_ref.finditer(text) if m.group(1) not in md_names]
    assert not bad, bad


def test_links_of_the_readme_and_docs_resolve():
    bad = []
    for page in [README, *sorted((REPO / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text(encoding="utf-8")):
            if target.startswith(("http://", "https://")):
                continue
            path = (page.parent / target).resolve()
            if not path.exists() and not (path.name in DOCS_WRITTEN_ELSEWHERE and path.parent == REPO / "docs"):
                bad.append(f"{page.relative_to(REPO)}: {target}")
    assert not bad, bad


# ----------------------------------------------------------------------------- papermill
def test_a_single_override_string_is_one_override():
    assert normalise_overrides("seed=7") == ["seed=7"]
    assert normalise_overrides(["seed=7", "ofa.k=8"]) == ["seed=7", "ofa.k=8"]
    assert normalise_overrides(None) == [] and normalise_overrides("") == []


def test_params_file_sections_in_the_kernel_are_recognised():
    paper = yaml.safe_load((REPO / "params/paper.yaml").read_text())
    ns = {"params_file": "params/demo.yaml", "overrides": [], "force": False, **paper}
    assert injected_params_sections(ns)[:2] == ["run_name", "output_root"]
    assert injected_params_sections({"params_file": "x", "overrides": [], "run_name": "mine"}) == []


def _mini_kit(tmp: Path, notebooks: list[str]) -> Path:
    """A working copy with pyproject.toml, params/ and only the given notebooks (the kit root for nb.start)."""
    kit = tmp / "kit"
    (kit / "notebooks").mkdir(parents=True)
    shutil.copy2(REPO / "pyproject.toml", kit / "pyproject.toml")
    shutil.copytree(REPO / "params", kit / "params")
    for name in notebooks:
        shutil.copy2(REPO / "notebooks" / name, kit / "notebooks" / name)
    return kit


@pytest.mark.slow
def test_papermill_forms_as_the_readme_prints_them(tmp_path):
    """`-p params_file ... -p overrides key=value`, `-f my_run.yaml` and the chain loop run; `-f params/x.yaml` is refused."""
    kit = _mini_kit(tmp_path, ["06_paper_tables_figures.ipynb"])
    text = README.read_text(encoding="utf-8")
    my_run = re.search(r"<!-- my-run-yaml -->\n```yaml\n(.*?)```", text, re.S).group(1)
    (kit / "my_run.yaml").write_text(my_run)
    lines = readme_block("test_papermill_forms_as_the_readme_prints_them")
    assert [ln.split()[0] for ln in lines] == ["mkdir", "papermill", "papermill", "for"]
    executed = kit / "outputs" / "demo" / "notebooks" / "06_paper_tables_figures.ipynb"
    subprocess.run(["bash", "-c", lines[0]], cwd=kit, check=True)
    for line in lines[1:]:
        if executed.exists():
            executed.unlink()
        r = subprocess.run(["bash", "-c", line], cwd=kit, env=_env(), capture_output=True, text=True, timeout=900)
        assert r.returncode == 0, (line, r.stderr[-3000:])
        nb = nbf.read(executed, as_version=4)
        injected = "".join(c.source for c in nb.cells if "injected-parameters" in c.metadata.get("tags", []))
        assert "params/demo.yaml" in injected
    assert (kit / "outputs" / "demo" / "REPORT.md").is_file()
    r = subprocess.run(["papermill", "notebooks/06_paper_tables_figures.ipynb", str(tmp_path / "x.ipynb"),
                        "-f", "params/paper.yaml"], cwd=kit, env=_env(), capture_output=True, text=True, timeout=600)
    assert r.returncode != 0
    assert "sections of a params file" in r.stderr and "-p params_file" in r.stderr, r.stderr[-2000:]


# ----------------------------------------------------------------------------- progress and logging
@pytest.mark.slow
def test_gdo_repro_run_shows_cell_progress(tmp_path):
    """Cell progress per notebook on the terminal; the stored notebook keeps kit logs, not library INFO or tqdm lines."""
    d = tmp_path / "nbs"
    d.mkdir()
    body = ("from gdo_utils import nb\nparams = nb.start(params_file, overrides)\nimport logging\n"
            "logging.getLogger('faiss.loader').info('LIBRARY-INFO-LINE')\n"
            "logging.getLogger('gdo_utils.demo').info('KIT-INFO-LINE')\n"
            "import time\nfrom tqdm.auto import tqdm\nfor _ in tqdm(range(40), desc='work', mininterval=0.05):\n"
            "    time.sleep(0.05)\n")
    nb = nbf.v4.new_notebook(cells=[
        nbf.v4.new_code_cell('params_file = "params/demo.yaml"\noverrides = []\nforce = False',
                             metadata={"tags": ["parameters"]}),
        nbf.v4.new_code_cell(body)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbf.write(nb, d / "00_first.ipynb")
    commands = readme_block("test_gdo_repro_run_shows_cell_progress")
    argv = shlex.split(commands[1])
    assert argv[:2] == ["gdo-repro", "run"] and "--only" in argv and "-v" in argv
    r = subprocess.run([str(BIN / "gdo-repro"), *argv[1:], "--notebooks", str(d), "--set", f"output_root={tmp_path / 'out'}"],
                       cwd=REPO, env=_env(), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert re.search(r"00_first: .*cell", r.stderr), r.stderr[-2000:]
    executed = nbf.read(tmp_path / "out" / "demo" / "notebooks" / "00_first.ipynb", as_version=4)
    outputs = json.dumps([o for c in executed.cells for o in c.get("outputs", [])])
    assert "KIT-INFO-LINE" in outputs and "LIBRARY-INFO-LINE" not in outputs
    streams = "".join(o.get("text", "") for c in executed.cells for o in c.get("outputs", []) if o.output_type == "stream")
    assert len(re.findall(r"\d+/40", streams)) <= 2, streams[:2000]   # a widget, not a line per update
    assert "application/vnd.jupyter.widget-view+json" in outputs


def test_verbose_flag_after_the_subcommand():
    ap = build_parser()
    assert ap.parse_args(["pool", "-v", "--params", "p.yaml"]).verbose is True
    assert ap.parse_args(["-v", "pool", "--params", "p.yaml"]).verbose is True
    assert ap.parse_args(["pool", "--params", "p.yaml"]).verbose is False
    assert ap.parse_args(["list", "profiles", "-v"]).verbose is True


# ----------------------------------------------------------------------------- launch command without the model
@pytest.mark.slow
def test_paper_params_validate_and_print_the_launch_without_the_model(tmp_path, capsys, monkeypatch):
    """A fresh clone: no model in the (empty) cache; the 8-GPU FSDP command prints, with what was not checked."""
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    lines = readme_block("test_paper_params_validate_and_print_the_launch_without_the_model")
    assert cli_main(shlex.split(lines[0])[1:]) == 0
    assert json.loads(capsys.readouterr().out)["params"]["run_name"] == "paper"
    assert cli_main(shlex.split(lines[1])[1:]) == 0
    out = capsys.readouterr().out
    summary, cmd, *notes = out.strip().splitlines()   # the run's start + recipe, the command, what was not checked
    assert summary.startswith("# temp_plus: start Qwen/Qwen3-VL-8B-Instruct; recipe gdo_msswift")
    assert cmd.startswith("accelerate launch --config_file") and "fsdp_8gpu.yaml" in cmd
    assert "--num_processes 8" in cmd and "--fsdp_transformer_layer_cls_to_wrap Qwen3VLTextDecoderLayer,Qwen3VLVisionBlock" in cmd
    assert notes and all(n.startswith("# ") for n in notes) and "not checked" in notes[0]
    assert "Qwen/Qwen3-VL-8B-Instruct" in notes[0]


def test_notebook_04_prints_the_fsdp_command_it_announces(tmp_path, capsys, monkeypatch):
    """The launch cell of notebook 04, run on the demo params: the 8-GPU FSDP command, not the CPU one."""
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    nb = nbf.read(REPO / "notebooks" / "04_finetune.ipynb", as_version=4)
    idx = next(i for i, c in enumerate(nb.cells) if "print_launch(" in c.source)
    assert "8-GPU node with FSDP" in nb.cells[idx - 1].source
    from gdo_utils.config import load_params

    params_file = "params/demo.yaml"
    ns = {"params_file": params_file, "overrides": [],
          "params": load_params(params_file, [f"output_root={tmp_path / 'out'}"])}
    ns["overrides"] = [f"output_root={tmp_path / 'out'}"]   # a fresh run: the tiny model is not built yet
    exec(nb.cells[idx].source, ns)
    cmd = next(ln for ln in capsys.readouterr().out.strip().splitlines() if not ln.startswith("#"))
    assert "fsdp_8gpu.yaml" in cmd and "--num_processes 8" in cmd and "cpu_1proc" not in cmd
    assert "--fsdp_transformer_layer_cls_to_wrap Qwen3VLTextDecoderLayer,Qwen3VLVisionBlock" in cmd
    assert "--set train.launch.config=fsdp_8gpu" in cmd


# ----------------------------------------------------------------------------- exports
# The tools' own argument names (ms-swift 4.6 `swift sft` command-line parameters; LLaMA-Factory 0.9.5 model /
# data / finetuning / training arguments), as documented; test_recipes_parse_with_the_tools_own_parsers checks
# the same files with the tools' parsers when they are importable.
SWIFT_KEYS = {"model", "dataset", "output_dir", "tuner_type", "lora_rank", "lora_alpha", "lora_dropout",
              "target_modules", "aligner_lr", "freeze_vit", "freeze_aligner", "freeze_llm", "num_train_epochs",
              "learning_rate", "warmup_ratio", "lr_scheduler_type", "weight_decay", "max_grad_norm", "adam_beta1",
              "adam_beta2", "per_device_train_batch_size", "gradient_accumulation_steps", "max_length",
              "truncation_strategy", "split_dataset_ratio", "data_seed", "seed", "train_dataloader_shuffle",
              "strict", "torch_dtype", "gradient_checkpointing", "dataloader_num_workers", "save_only_model",
              "deepspeed", "attn_impl"}
LLAMAFACTORY_KEYS = {"model_name_or_path", "trust_remote_code", "image_max_pixels", "image_min_pixels", "stage",
                     "do_train", "finetuning_type", "freeze_vision_tower", "freeze_multi_modal_projector",
                     "freeze_language_model", "lora_rank", "lora_alpha", "lora_dropout", "lora_target", "dataset",
                     "dataset_dir", "template", "cutoff_len", "val_size", "preprocessing_num_workers",
                     "dataloader_num_workers", "output_dir", "logging_steps", "save_only_model",
                     "per_device_train_batch_size", "gradient_accumulation_steps", "learning_rate",
                     "num_train_epochs", "lr_scheduler_type", "warmup_ratio", "weight_decay", "max_grad_norm",
                     "adam_beta1", "adam_beta2", "bf16", "seed", "data_seed", "disable_gradient_checkpointing",
                     "deepspeed"}
LLAMAFACTORY_INFO = {"alpaca_en_demo": {"file_name": "alpaca_en_demo.json"},
                     "mllm_demo": {"file_name": "mllm_demo.json", "formatting": "sharegpt",
                                   "columns": {"messages": "messages", "images": "images"}},
                     "identity": {"file_name": "identity.json"}}


@pytest.fixture
def demo_like_subset(tmp_path):
    """A working dir whose params/demo.yaml writes to it, with a built `temp_plus` subset and a LLaMA-Factory data dir."""
    work = tmp_path / "work"
    shutil.copytree(REPO / "params", work / "params")
    demo = yaml.safe_load((work / "params/demo.yaml").read_text())
    demo["output_root"] = str(tmp_path / "out")
    (work / "params/demo.yaml").write_text(yaml.safe_dump(demo, sort_keys=False))
    img = write_jpg(tmp_path / "media" / "a.jpg")
    rows = [{"id": f"r{i}", "messages": [{"role": "user", "content": "<image>\nWhat colour?"},
                                         {"role": "assistant", "content": "Red."}],
             "images": [str(img)], "media_kind": "image"} for i in range(3)]
    write_rows(tmp_path / "out" / demo["run_name"] / "subsets" / "temp_plus" / "train.jsonl", rows)
    lf = work / "LLaMA-Factory" / "data"
    lf.mkdir(parents=True)
    (lf / "dataset_info.json").write_text(json.dumps(LLAMAFACTORY_INFO, indent=2))
    return work


def _export(line: str, *extra: str) -> int:
    return cli_main(shlex.split(line)[1:] + list(extra))


@pytest.mark.slow
def test_exports_merge_and_write_recipes_as_the_readme_prints_them(demo_like_subset, capsys, monkeypatch):
    monkeypatch.chdir(demo_like_subset)
    lf_line, swift_line = readme_block("test_exports_merge_and_write_recipes_as_the_readme_prints_them")
    info_file = demo_like_subset / "LLaMA-Factory" / "data" / "dataset_info.json"
    assert _export(lf_line) == 0
    info = json.loads(info_file.read_text())
    assert list(info)[:3] == list(LLAMAFACTORY_INFO) and {k: info[k] for k in LLAMAFACTORY_INFO} == LLAMAFACTORY_INFO
    assert info["gdo_temp_plus"]["file_name"] == "gdo_temp_plus.json" and len(info) == 4
    data = json.loads((info_file.parent / "gdo_temp_plus.json").read_text())
    assert len(data) == 3 and data[0]["messages"][1]["content"] == "Red."
    recipe = yaml.safe_load((info_file.parent / "gdo_temp_plus.llamafactory.yaml").read_text())
    assert set(recipe) <= LLAMAFACTORY_KEYS, set(recipe) - LLAMAFACTORY_KEYS
    assert recipe["dataset"] == "gdo_temp_plus" and Path(recipe["dataset_dir"]) == info_file.parent.resolve()
    train = yaml.safe_load((demo_like_subset / "params/demo.yaml").read_text())["train"]
    assert recipe["learning_rate"] == train["learning_rate"] and recipe["template"] == "qwen3_vl_nothink"
    assert _export(lf_line) == 0 and json.loads(info_file.read_text()) == info   # the same export again: harmless

    # an entry of that name describing another file is a clash: refused, nothing written; --force replaces it
    clash = {**info, "gdo_temp_plus": {"file_name": "someone_elses.json"}}
    info_file.write_text(json.dumps(clash, indent=2))
    (info_file.parent / "gdo_temp_plus.json").unlink()
    capsys.readouterr()
    assert _export(lf_line) == 1
    err = capsys.readouterr().err
    assert "dataset_info.json" in err and "'gdo_temp_plus' already exists" in err and "--force" in err
    assert json.loads(info_file.read_text()) == clash and not (info_file.parent / "gdo_temp_plus.json").exists()
    assert _export(lf_line, "--force") == 0
    assert json.loads(info_file.read_text())["gdo_temp_plus"]["file_name"] == "gdo_temp_plus.json"

    assert _export(swift_line) == 0
    out = Path(capsys.readouterr().out.strip().splitlines()[-1])
    sh = out.with_name(out.stem + ".swift_sft.sh").read_text().splitlines()[-1]
    argv = shlex.split(sh)
    i = argv.index("swift")
    assert argv[i + 1] == "sft" and "NPROC_PER_NODE=8" in argv[:i] and "IMAGE_MAX_TOKEN_NUM=49" in argv[:i]
    flags = {a[2:]: v for a, v in zip(argv[i + 2::2], argv[i + 3::2])}
    assert all(a.startswith("--") for a in argv[i + 2::2]) and set(flags) <= SWIFT_KEYS, set(flags) - SWIFT_KEYS
    assert flags["dataset"] == str(out) and flags["tuner_type"] == "full"
    assert float(flags["learning_rate"]) == train["learning_rate"]


def test_recipes_of_the_paper_params_carry_the_release_hyper_parameters():
    """params/paper.yaml's train section gives the release's recipe (ms-swift full SFT of Qwen3-VL-8B on 8 GPUs)."""
    from gdo_utils.config import load_params
    from gdo_utils.export_recipes import llamafactory_args, swift_command

    cfg = load_params(REPO / "params/paper.yaml").train
    lf = llamafactory_args(cfg, "Qwen/Qwen3-VL-8B-Instruct", "x", "/d", "/o")
    assert (lf["learning_rate"], lf["adam_beta2"], lf["warmup_ratio"], lf["weight_decay"], lf["max_grad_norm"],
            lf["num_train_epochs"], lf["cutoff_len"], lf["val_size"], lf["data_seed"], lf["finetuning_type"],
            lf["per_device_train_batch_size"], lf["gradient_accumulation_steps"], lf["image_max_pixels"],
            lf["freeze_vision_tower"], lf["lr_scheduler_type"]) == \
        (2e-5, 0.95, 0.1, 0.01, 1.0, 1.0, 8192, 0.001, 42, "full", 1, 1, 50176, False, "cosine")
    argv = shlex.split(swift_command(cfg, "Qwen/Qwen3-VL-8B-Instruct", "/d/x.jsonl", "/o"))
    flags = dict(zip(argv[argv.index("sft") + 1::2], argv[argv.index("sft") + 2::2]))
    assert argv[:3] == ["NPROC_PER_NODE=8", "MAX_PIXELS=50176", "IMAGE_MAX_TOKEN_NUM=49"]
    assert (flags["--tuner_type"], flags["--learning_rate"], flags["--adam_beta2"], flags["--truncation_strategy"],
            flags["--split_dataset_ratio"], flags["--deepspeed"], flags["--freeze_vit"]) == \
        ("full", "2e-05", "0.95", "delete", "0.001", "zero2", "false")


RECIPE_TOOLS = os.environ.get("GDO_RECIPE_TOOLS_PYTHONPATH")


@pytest.mark.skipif(not RECIPE_TOOLS, reason="set GDO_RECIPE_TOOLS_PYTHONPATH to a folder holding ms-swift 4.6 and "
                                              "LLaMA-Factory 0.9.5 (pip install --target, with transformers 5.6)")
def test_recipes_parse_with_the_tools_own_parsers(tmp_path):
    """`swift sft` arguments through ms-swift's SftArguments parser; the YAML through LLaMA-Factory's train parser."""
    from gdo_utils.config import TrainConfig
    from gdo_utils.export_recipes import llamafactory_args, swift_argv

    cases = []
    for lora in (False, True):
        cfg = TrainConfig(lora={"enabled": lora}, projector_lr=2e-5 if lora else None)
        cases.append({"swift": swift_argv(cfg, "Qwen/Qwen3-VL-8B-Instruct", "/d/x.jsonl", "/o"),
                      "lf": llamafactory_args(cfg, "Qwen/Qwen3-VL-8B-Instruct", "x", "/d", "/o")})
    script = ("import json, sys\nfrom transformers import HfArgumentParser\nfrom swift.arguments import SftArguments\n"
              "from llamafactory.hparams.parser import _TRAIN_ARGS\n"
              "for case in json.loads(sys.argv[1]):\n"
              "    ns, rest = HfArgumentParser([SftArguments]).parse_known_args(case['swift'])\n"
              "    assert not rest, rest\n"
              "    keys = {f for dc in _TRAIN_ARGS for f in dc.__dataclass_fields__}\n"
              "    assert set(case['lf']) <= keys, set(case['lf']) - keys\n"
              "    argv = [x for k, v in case['lf'].items() for x in ('--' + k, str(v))]\n"
              "    _, rest = HfArgumentParser(_TRAIN_ARGS).parse_known_args(argv)\n"
              "    assert not rest, rest\nprint('ok')\n")
    env = _env(PYTHONPATH=f"{RECIPE_TOOLS}{os.pathsep}{REPO}", DISABLE_VERSION_CHECK="1")
    r = subprocess.run([sys.executable, "-c", script, json.dumps(cases)], env=env, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stderr[-3000:]


# ----------------------------------------------------------------------------- make lab, packaging
@pytest.mark.slow
def test_make_lab_starts_and_serves_lab(tmp_path):
    """`make lab` (the README's command) starts JupyterLab on 127.0.0.1 (as root too), /lab answers, then it stops."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    assert "make lab" in " ".join(readme_block("test_make_lab_starts_and_serves_lab"))
    venv = Path(sys.prefix)
    dry = subprocess.run(["make", "-n", "-o", f"{venv}/.installed", "lab", f"VENV={venv}"], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout
    assert "--ip 127.0.0.1" in dry and (("--allow-root" in dry) == (os.geteuid() == 0))
    env = _env(JUPYTER_RUNTIME_DIR=str(tmp_path / "rt"), JUPYTER_CONFIG_DIR=str(tmp_path / "cfg"))
    # -o: the venv running the tests is already set up (make's stamp may be older than requirements.txt)
    proc = subprocess.Popen(["make", "-o", f"{venv}/.installed", "lab", f"VENV={venv}"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        url, log, t0 = None, [], time.time()
        while url is None and time.time() - t0 < 240:
            line = proc.stdout.readline()
            if not line and proc.poll() is not None:
                break
            log.append(line)
            m = re.search(r"(http://127\.0\.0\.1:\d+/lab\?token=\w+)", line)
            url = m.group(1) if m else None
        assert url, "".join(log)[-3000:]
        page, t0 = None, time.time()
        while page is None and time.time() - t0 < 120:   # the URL can be printed just before the socket listens
            try:
                with urllib.request.urlopen(url, timeout=60) as resp:
                    page = (resp.status, resp.read().decode("utf-8", "replace"))
            except OSError:
                time.sleep(2)
        assert page and page[0] == 200 and "JupyterLab" in page[1], "".join(log)[-3000:]
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.poll() is not None


@pytest.mark.slow
def test_wheel_ships_the_published_numbers_without_setuptools_warnings(tmp_path):
    src = tmp_path / "src"
    for rel in ("pyproject.toml", "setup.py", "README.md", "gdo_utils", "params/profiles", "params/recipes", "notebooks"):
        a, b = REPO / rel, src / rel
        if a.is_dir():
            shutil.copytree(a, b, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            b.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(a, b)
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "--no-build-isolation", "--no-index",
                        "-w", str(tmp_path / "wheel"), str(src)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    log = r.stdout + r.stderr
    assert "paper_numbers' as data" not in log and "absent from the `packages`" not in log, log[-3000:]
    import zipfile

    names = zipfile.ZipFile(next((tmp_path / "wheel").glob("*.whl"))).namelist()
    shipped = {n.rsplit("/", 1)[1] for n in names if n.startswith("gdo_utils/report/paper_numbers/")}
    assert shipped == {p.name for p in (REPO / "gdo_utils/report/paper_numbers").iterdir() if p.is_file()}
