"""Bad input (issue 19, points 6, 7, 8, 11): named one-line CLI errors, counted bad rows, load-time validation."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from gdo_utils import cli
from gdo_utils.config import IMAGE_BENCHMARKS, VIDEO_BENCHMARKS, load_params, lr_scheduler_names
from gdo_utils.descriptors.runner import is_oom, with_oom_retry
from gdo_utils.evaluate import registry
from gdo_utils.evaluate.engine import LOG_COLUMNS, EvalWorker, log_row
from gdo_utils.evaluate.metrics import aggregate, missing_counts
from gdo_utils.evaluate.stage import load_questions
from gdo_utils.evaluate.types import Question

from .conftest import REPO, write_mp4

MV_ROW = {"video": "v.mp4", "question": "Which way?", "candidates": ["left", "right"], "answer": "right"}
LV_LINE = {"key": "k1", "qa": [{"uid": "u1", "question": "What?\n(A) a\n(B) b", "answer": "A",
                                "question_type": ["reasoning"]}]}
ML_ROW = {"question_id": "m1", "question_type": "count", "video": "v.mp4", "question": "How many?",
          "candidates": ["1", "2"], "answer": "B"}


def _params(tmp: Path, bench: str, annotations: Path, media: Path, **extra) -> Path:
    tree = {"run_name": "bad", "output_root": str(tmp / "out"), "device": "cpu",
            "evaluate": {"benchmarks": [bench], "data": {bench: {"annotations": str(annotations),
                                                                 "media_root": str(media)}}, **extra}}
    f = tmp / "params.yaml"
    f.write_text(yaml.safe_dump(tree))
    return f


def _mvbench(root: Path, rows, name: str = "moving_direction") -> Path:
    (root / "json").mkdir(parents=True, exist_ok=True)
    f = root / "json" / f"{name}.json"
    f.write_bytes(rows if isinstance(rows, bytes) else json.dumps(rows).encode())
    return root


def _file(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _cases(tmp: Path) -> dict[str, tuple[str, Path, str]]:
    """name -> (benchmark, annotations, the message's expected text)."""
    mv_ok = json.dumps([MV_ROW]).encode()
    lv = json.dumps(LV_LINE).encode()
    trunc_pq = tmp / "vm" / "test-00000-of-00001.parquet"
    trunc_pq.parent.mkdir(parents=True)
    pd.DataFrame([{"question_id": "1", "videoID": "v", "duration": "short", "domain": "d", "task_type": "t",
                   "question": "q", "options": ["A. x", "B. y"], "answer": "A"}]).to_parquet(trunc_pq)
    trunc_pq.write_bytes(trunc_pq.read_bytes()[:40])          # a download cut short
    return {
        "mvbench_truncated_json": ("mvbench", _mvbench(tmp / "mv1", mv_ok[:30]),
                                   r"moving_direction.json line 1 column \d+: not valid JSON"),
        "mvbench_not_utf8": ("mvbench", _mvbench(tmp / "mv2", mv_ok.replace(b"Which", b"Wh\xffich")),
                             "moving_direction.json line 1: not UTF-8 text"),
        "mvbench_repeated_row": ("mvbench", _mvbench(tmp / "mv3", [MV_ROW, {**MV_ROW, "video": "w.mp4"}, MV_ROW]),
                                 r"moving_direction.json row 2: repeats row 0 \(question id moving_direction/0000\)"),
        "mlvu_truncated_json": ("mlvu", _file(tmp / "ml1" / "test_question.json", json.dumps([ML_ROW]).encode()[:50]),
                                r"test_question.json line 1 column \d+: not valid JSON"),
        "mlvu_not_utf8": ("mlvu", _file(tmp / "ml2" / "test_question.json",
                                        json.dumps([ML_ROW], indent=1).encode().replace(b"How", b"\xc3(ow")),
                          "test_question.json line 6: not UTF-8 text"),
        "mlvu_duplicate_id": ("mlvu", _file(tmp / "ml3" / "test_question.json", json.dumps([ML_ROW, ML_ROW]).encode()),
                              "question id 'm1' occurs more than once"),
        "lvbench_truncated_line": ("lvbench", _file(tmp / "lv1" / "video_info.meta.jsonl", lv + b"\n" + lv[:20]),
                                   "video_info.meta.jsonl line 2: not valid JSON"),
        "lvbench_not_utf8": ("lvbench", _file(tmp / "lv2" / "video_info.meta.jsonl",
                                              lv + b"\n" + lv.replace(b"What", b"\xfe")),
                             "video_info.meta.jsonl line 2: not UTF-8 text"),
        "lvbench_duplicate_id": ("lvbench", _file(tmp / "lv3" / "video_info.meta.jsonl",
                                                  lv + b"\n" + lv.replace(b'"k1"', b'"k2"')),
                                 "question id 'u1' occurs more than once"),
        "videomme_truncated_parquet": ("videomme", trunc_pq.parent, "test-00000-of-00001.parquet: not a readable Parquet"),
    }


CASES = ["mvbench_truncated_json", "mvbench_not_utf8", "mvbench_repeated_row", "mlvu_truncated_json", "mlvu_not_utf8",
         "mlvu_duplicate_id", "lvbench_truncated_line", "lvbench_not_utf8", "lvbench_duplicate_id",
         "videomme_truncated_parquet"]


@pytest.mark.parametrize("case", CASES)
def test_bad_benchmark_file_is_one_named_cli_line(tmp_path, capsys, case):
    bench, ann, expected = _cases(tmp_path)[case]
    pf = _params(tmp_path, bench, ann, tmp_path / "media")
    rc = cli.main(["evaluate", "--params", str(pf)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1, err
    assert err[0].startswith("error: ") and re.search(expected, err[0]) and str(tmp_path) in err[0], err[0]
    assert not (tmp_path / "out" / "bad" / "models").exists()   # refused before any model is touched


def test_user_errors_print_no_traceback_unless_verbose(tmp_path):
    ann = _mvbench(tmp_path / "mv", [MV_ROW, MV_ROW])
    pf = _params(tmp_path, "mvbench", ann, tmp_path / "media")
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    for verbose in ([], ["-v"]):
        out = subprocess.run([sys.executable, "-m", "gdo_utils.cli", *verbose, "evaluate", "--params", str(pf)],
                             cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert out.returncode == 1
        assert out.stderr.strip().splitlines()[-1].startswith("error: ") and "repeats row 0" in out.stderr
        assert ("Traceback" in out.stderr) == bool(verbose), out.stderr[-2000:]


def test_unknown_benchmark_names_are_user_errors(tmp_path, capsys):
    from gdo_utils.evaluate.image.stage import load_image_questions
    from gdo_utils.evaluate.types import UnknownBenchmarkError

    with pytest.raises(UnknownBenchmarkError, match="unknown video benchmark 'mvbnech'"):
        registry.get("mvbnech")
    with pytest.raises(UnknownBenchmarkError, match="unknown image benchmark 'popee'"):
        load_image_questions(load_params(REPO / "params" / "demo.yaml"), "popee")
    assert issubclass(UnknownBenchmarkError, cli._user_errors())
    # in params, the name is refused when the file loads (exit 2, file and field named)
    rc = cli.main(["evaluate", "--params", str(REPO / "params" / "demo.yaml"), "--set", "evaluate.benchmarks=[mvbnech]"])
    err = capsys.readouterr().err
    assert rc == 2 and "params/demo.yaml" in err and "evaluate.benchmarks" in err and "mvbnech" in err


@pytest.mark.parametrize("name,data,expected", [
    ("pope.jsonl", b'{"question_id": 1}\n{"question": "is \xff there"}\n', "pope.jsonl line 2: not UTF-8 text"),
    ("vqa.json", b'{"questions": [1, 2', "vqa.json:1: field '<json>': not valid JSON"),
])
def test_image_suite_files_named(tmp_path, name, data, expected):
    from gdo_utils.evaluate.image.base import read_json_file, read_jsonl_file
    from gdo_utils.evaluate.types import BenchmarkFormatError

    f = _file(tmp_path / name, data)
    with pytest.raises(BenchmarkFormatError) as e:
        (read_jsonl_file if name.endswith(".jsonl") else read_json_file)(f)
    assert str(f) + (" " if "line" in expected.split(":")[0] else "") in str(e.value) and expected in str(e.value)
    assert isinstance(e.value, cli._user_errors())


def test_mmbench_tsv_not_utf8_named(tmp_path):
    from gdo_utils.evaluate.image import mmbench
    from gdo_utils.evaluate.types import BenchmarkFormatError

    f = _file(tmp_path / "mmb.tsv", b"index\tquestion\n1\tq\n2\t\x80bad\n")
    with pytest.raises(BenchmarkFormatError, match=r"mmb.tsv line 3: not UTF-8 text"):
        mmbench.load(f)


def test_strict_training_bad_row_is_one_cli_line(tmp_path, capsys):
    from tests.train_helpers import c1_rows, tiny_qwen3vl, write_params, write_subset

    out = tmp_path / "out"
    rows = c1_rows(tmp_path / "media", 4, kinds=("image",))
    Path(rows[2]["images"][0]).unlink()
    write_subset(out, "t", "s", rows)
    pf = write_params(tmp_path / "p.yaml", out, tiny_qwen3vl(tmp_path / "m"), strict=True, checkpoint_fractions=[1.0])
    capsys.readouterr()                     # (building the tiny model writes progress bars)
    rc = cli.main(["train", "--params", str(pf), "--subset", "s"])
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert rc == 1 and "Traceback" not in err and last.startswith("error: ") and "train.jsonl:3: row 'r002'" in last


def test_unknown_train_run_refused_before_work(tmp_path, capsys):
    rc = cli.main(["train", "--params", str(REPO / "params" / "demo.yaml"), "--set", f"output_root={tmp_path}",
                   "--set", "train.runs=[temp_plus,temp_plsu]"])
    err = capsys.readouterr().err
    assert rc == 2 and "train.runs" in err and "temp_plsu" in err and "'temp_plus'" not in err.split("produce")[0]
    assert not (tmp_path / "demo").exists()   # nothing was built or trained


# ----------------------------------------------------------------------------- paths leaving media_root
def test_video_path_leaving_media_root_is_a_counted_bad_row(tmp_path):
    media = tmp_path / "bench" / "video"
    write_mp4(tmp_path / "bench" / "secret.mp4")                      # exists, but outside media_root
    write_mp4(media / "clevrer" / "video_validation" / "v.mp4")
    ann = _mvbench(tmp_path / "bench", [MV_ROW, {**MV_ROW, "video": "../../../secret.mp4"},
                                        {**MV_ROW, "video": str(tmp_path / "bench" / "secret.mp4")}])
    p = load_params(_params(tmp_path, "mvbench", ann, media))
    qs = {q.qid: q for q in load_questions(p, "mvbench")}
    assert qs["moving_direction/0000"].media_error == ""
    assert [qs[f"moving_direction/000{i}"].media_error.split(":")[0] for i in (1, 2)] == ["outside_media_root"] * 2
    bench = registry.get("mvbench")
    worker = EvalWorker(None, bench, qs, p.evaluate)             # no model call for refused rows
    rows = worker(["moving_direction/0001", "moving_direction/0002"])
    log = pd.DataFrame(rows)[LOG_COLUMNS]
    assert missing_counts(log) == {"n_missing": 2, "by_reason": {"outside_media_root": 2}}
    assert aggregate(log, bench, "release", "wrong")["overall"] == {"accuracy": 0.0, "n": 2}


# ----------------------------------------------------------------------------- over-long prompts, CPU OOM
CPU_OOM = ("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: not enough memory: "
           "you tried to allocate 5800000000 bytes.")


@pytest.mark.parametrize("exc,oom", [
    (RuntimeError(CPU_OOM), True),
    (RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 5800000000 bytes. Error code 12"),
     True),
    (MemoryError(), True),
    (RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"), True),
    (RuntimeError("shape mismatch"), False),
])
def test_cpu_allocator_failure_is_oom(exc, oom):
    assert is_oom(exc) is oom


def test_cpu_oom_halves_the_batch_down_to_an_error_row():
    def fn(pos):
        if 3 in pos:                        # the row that cannot fit, even alone
            raise RuntimeError(CPU_OOM)
        return {p: f"r{p}" for p in pos}

    res, err = with_oom_retry(fn, [0, 1, 2, 3])
    assert res == {0: "r0", 1: "r1", 2: "r2"} and err == {3: "oom"}


@pytest.fixture(scope="module")
def tiny_vlm_dir(tmp_path_factory) -> Path:
    from gdo_utils.models import build_tiny_vlm

    corpus = ["Question: Which way does the square move? Option: (A) left (B) right Only give the best option."] * 20
    return build_tiny_vlm(tmp_path_factory.mktemp("tiny") / "vlm", corpus)


def test_over_long_question_is_a_counted_error_row(tmp_path, tiny_vlm_dir):
    media = tmp_path / "bench" / "video"
    write_mp4(media / "clevrer" / "video_validation" / "v.mp4", n_frames=16)
    long_q = "Which way does the square move? " * 3200            # 100k+ characters, tens of thousands of tokens
    assert len(long_q) > 100_000
    ann = _mvbench(tmp_path / "bench", [MV_ROW, {**MV_ROW, "question": long_q}])
    pf = _params(tmp_path, "mvbench", ann, media, min_pixels=4096, max_pixels=4096, batch_size=2)
    tree = yaml.safe_load(pf.read_text())
    tree["models"] = {"vlm": {"path": str(tiny_vlm_dir), "dtype": "float32"}}
    pf.write_text(yaml.safe_dump(tree))
    assert cli.main(["evaluate", "--params", str(pf)]) == 0
    res = json.loads((tmp_path / "out" / "bad" / "eval" / "base_model" / "base" / "mvbench.json").read_text())
    assert res["n_questions"] == 2 and res["by_reason"] == {"prompt_too_long": 1}
    log = pd.read_parquet(tmp_path / "out" / "bad" / "eval" / "base_model" / "base" / "mvbench.log.parquet")
    bad = log.set_index("question_id").loc["moving_direction/0001"]
    assert bad["media_error"].startswith("prompt_too_long: ") and "context 4096" in bad["media_error"]
    assert bad["n_frames"] == 0                     # refused on its text alone: its video was never decoded


def test_media_tokens_count_toward_the_context(tiny_vlm_dir):
    """A prompt whose text fits but whose video placeholder tokens do not is caught before `generate`."""
    from gdo_utils.config import EvaluateConfig
    from gdo_utils.evaluate.engine import generate_video_replies
    from gdo_utils.evaluate.generation import PromptTooLongError, chat_texts, text_too_long
    from gdo_utils.evaluate.video import load_eval_video
    from gdo_utils.models import load_vlm

    vlm = load_vlm(str(tiny_vlm_dir), "float32", "cpu")
    cfg = EvaluateConfig(min_pixels=4096, max_pixels=4096, max_new_tokens=4)
    tok = vlm.processor.tokenizer

    def n_text(k: int) -> int:
        return len(tok(chat_texts(vlm.processor, ["right " * k], "video")[0], add_special_tokens=False)["input_ids"])

    k = 4000
    for _ in range(6):                       # the longest text that still fits by its text alone
        k += 4096 - cfg.max_new_tokens - n_text(k)
    while n_text(k) + cfg.max_new_tokens > 4096:
        k -= 1
    assert text_too_long(vlm, {"q": "right " * k}, "video", cfg.max_new_tokens) == {}
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        v = write_mp4(Path(d) / "v.mp4", n_frames=16)
        q = Question("mvbench", "q", "x", (), ("a", "b"), "A", str(v))
        video = load_eval_video(q, cfg)
        with pytest.raises(PromptTooLongError) as e:
            generate_video_replies(vlm, ["right " * k], [video], cfg.max_new_tokens)
    assert e.value.lengths[0] > n_text(k) and e.value.limit == 4096


# ----------------------------------------------------------------------------- every reply empty
def _questions(subtasks: list[str]) -> list[Question]:
    return [Question("mvbench", f"{s}/{i:04d}", "q", ("x", "y"), ("x", "y"), "A", "/v.mp4", subtask=s)
            for i, s in enumerate(subtasks)]


def test_every_reply_empty_scores_zero_with_n_as_lmms_eval():
    bench = registry.get("mvbench")
    qs = _questions(["action_count"] * 3 + ["state_change"] * 2)
    log = pd.DataFrame([log_row(q, bench, "", None, 4) for q in qs])[LOG_COLUMNS]
    for mode in ("release", "robust"):
        res = aggregate(log, bench, mode, "wrong")
        assert res["overall"] == {"accuracy": 0.0, "n": 5}, mode
        assert {r["subtask"]: (r["accuracy"], r["n"]) for r in res["levels"]} == {
            "action_count": (0.0, 3), "state_change": (0.0, 2)}
    # release: where some replies are answered, the empty ones still leave the denominator (lmms-eval 0.5.0)
    replies = ["(A)", "", "", "", ""]
    log = pd.DataFrame([log_row(q, bench, r, None, 4) for q, r in zip(qs, replies)])[LOG_COLUMNS]
    res = aggregate(log, bench, "release", "wrong")
    assert {r["subtask"]: (r["accuracy"], r["n"]) for r in res["levels"]} == {
        "action_count": (100.0, 1), "state_change": (0.0, 2)}
    assert res["overall"] == {"accuracy": 50.0, "n": 3}
    vm = registry.get("videomme")
    q = Question("videomme", "v1", "q", ("A. x", "B. y"), ("x", "y"), "A", "/v.mp4", duration="short")
    res = aggregate(pd.DataFrame([log_row(q, vm, "", None, 4)])[LOG_COLUMNS], vm, "release", "wrong")
    assert res["overall"] == {"accuracy": 0.0, "n": 1}


# ----------------------------------------------------------------------------- params validated at load time
BAD_PARAMS = [
    (["train.min_pixels=60000", "train.max_pixels=50176"], "train", "min_pixels"),
    (["ofa.lr=-0.001"], "ofa.lr", "greater than 0"),
    (["ofa.dropout=1.5"], "ofa.dropout", "less than 1"),
    (["ofa.dropout=-0.1"], "ofa.dropout", "greater than or equal to 0"),
    (["ofa.hidden=-4"], "ofa.hidden", "greater than or equal to 1"),
    (["descriptors.sc_top_p=1.5"], "descriptors.sc_top_p", "less than or equal to 1"),
    (["descriptors.sc_top_p=0"], "descriptors.sc_top_p", "greater than 0"),
    (["descriptors.sc_temperature=-0.5"], "descriptors.sc_temperature", "greater than 0"),
    (["toyworld.image_size=-96"], "toyworld.image_size", "greater than or equal to 8"),
    (["toyworld.n_onevision=-1"], "toyworld.n_onevision", "greater than or equal to 0"),
    (["toyworld.frames_per_video=-3"], "toyworld.frames_per_video", "greater than or equal to 2"),
    (["train.lr_scheduler=cosin"], "train.lr_scheduler", "unknown lr_scheduler 'cosin'"),
    (["evaluate.benchmarks=[mvbench,mvbnech]"], "evaluate.benchmarks", "['mvbnech']"),
    (["evaluate.image.benchmarks=[popee]"], "evaluate.image.benchmarks", "['popee']"),
]


@pytest.mark.parametrize("sets,field,message", BAD_PARAMS, ids=[s[0][0] for s in BAD_PARAMS])
def test_bad_param_values_refused_at_load_naming_file_and_field(capsys, sets, field, message):
    rc = cli.main(["validate", "--params", str(REPO / "params" / "demo.yaml"), *[x for s in sets for x in ("--set", s)]])
    err = capsys.readouterr().err
    assert rc == 2 and "demo.yaml: invalid params" in err
    line = next(ln for ln in err.splitlines() if ln.strip().startswith(field + ":"))
    assert message in line, err


@pytest.mark.parametrize("name", ["demo", "paper", "release"])
def test_shipped_params_still_load(name):
    load_params(REPO / "params" / f"{name}.yaml")


def test_known_names_match_the_registries():
    from transformers.trainer_utils import SchedulerType

    from gdo_utils.evaluate.image import IMAGE_BENCHMARKS as IMAGE_REGISTRY

    assert VIDEO_BENCHMARKS == tuple(registry.names())
    assert IMAGE_BENCHMARKS == tuple(IMAGE_REGISTRY)
    assert lr_scheduler_names() == tuple(s.value for s in SchedulerType)
