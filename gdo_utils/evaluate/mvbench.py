"""MVBench: `json/<subtask>.json` + the video folders (OpenGVLab/MVBench), 20 subtasks, mean of subtask accuracies.

Rows: {video, question, candidates: [texts], answer: <candidate text>, start?, end?}; the gold
letter is the answer's position in `candidates`. Video folder, data type and bound are per-subtask
constants (the table below, from the official list / VLMEvalKit and lmms-eval's DATA_LIST). Two inputs:
- `segments` (default, what the release fed): lmms-eval's `video` revision folders, where the bound
  subtasks are pre-trimmed segments (timestamps start at 0; episodic_reasoning an mp4 segment, also
  found as `<video>.mp4` when the row names a frame folder); `start`/`end` are not applied again;
- `main_bound` (option `evaluate.mvbench_input`): the main-branch videos and frame folders (read at
  3 fps) with the row's `bound` start/end selecting the segment; the model's timestamps count from the
  segment's start (gdo_utils.evaluate.video), as in a pre-trimmed segment.
Each input falls back to `data0613/`, and for subtasks without a bound to the other branch's folder
(the same clips). NTU RGB+D
(fine_grained_pose) is no longer distributed: a missing subtask file is reported, not an error.
Prompt and extractor: lmms-eval 0.5.0 `mvbench_doc_to_text` / `mcq_acc`; an empty reply is left out
of its subtask's denominator in release mode (`mvbench_aggregate_results`), and a subtask with no
answered reply scores 0 (gdo_utils.evaluate.metrics). Ids are row positions (lmms-eval's doc ids); a
row repeating an earlier one of its file is refused (`DuplicateIdError`), not scored twice.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

from .extract import mvbench_letter, reasoning_answer
from .types import (LETTERS, Benchmark, BenchmarkFormatError, DuplicateIdError, Question, ReleaseParse, read_json_list,
                    require_object)

log = logging.getLogger(__name__)
NAME = "mvbench"
POST_PROMPT = "Only give the best option.\n"
FRAME_FPS = 3.0
# subtask -> (main-branch folder, frame folder?, bound?, lmms-eval `video` revision folder)
SUBTASKS: dict[str, tuple[str, bool, bool, str]] = {
    "action_sequence": ("star/Charades_v1_480", False, True, "star/Charades_segment"),
    "action_prediction": ("star/Charades_v1_480", False, True, "star/Charades_segment"),
    "object_interaction": ("star/Charades_v1_480", False, True, "star/Charades_segment"),
    "action_localization": ("sta/sta_video", False, True, "sta/sta_video_segment"),
    "episodic_reasoning": ("tvqa/frames_fps3_hq", True, True, "tvqa/video_fps3_hq_segment"),
    "action_antonym": ("ssv2_video", False, False, "ssv2_video_mp4"),
    "fine_grained_action": ("Moments_in_Time_Raw/videos", False, False, "Moments_in_Time_Raw/videos"),
    "unexpected_action": ("FunQA_test/test", False, False, "FunQA_test/test"),
    "object_existence": ("clevrer/video_validation", False, False, "clevrer/video_validation"),
    "moving_direction": ("clevrer/video_validation", False, False, "clevrer/video_validation"),
    "moving_count": ("clevrer/video_validation", False, False, "clevrer/video_validation"),
    "moving_attribute": ("clevrer/video_validation", False, False, "clevrer/video_validation"),
    "counterfactual_inference": ("clevrer/video_validation", False, False, "clevrer/video_validation"),
    "object_shuffle": ("perception/videos", False, False, "perception/videos"),
    "action_count": ("perception/videos", False, False, "perception/videos"),
    "state_change": ("perception/videos", False, False, "perception/videos"),
    "character_order": ("perception/videos", False, False, "perception/videos"),
    "scene_transition": ("scene_qa/video", False, False, "scene_qa/video"),
    "egocentric_navigation": ("vlnqa", False, False, "vlnqa"),
    "fine_grained_pose": ("nturgbd", False, False, "nturgbd_convert"),
}


def json_dir(annotations: Path) -> Path:
    """`annotations` may be the dataset root (holding json/) or the json folder itself."""
    return annotations / "json" if (annotations / "json").is_dir() else annotations


INPUTS = ("segments", "main_bound")


def resolve_media(media_root: Path, subtask: str, name: str, input: str = "segments") -> tuple[Path, bool]:
    """(path, is_main_branch) for a row's video under `input`; its first candidate when none exists (counted missing)."""
    main, frames, bound, lmms = SUBTASKS[subtask]
    seg = [(lmms, name, False), (f"data0613/{lmms}", name, False)]
    if frames and not Path(name).suffix:
        seg.append((lmms, f"{name}.mp4", False))
    primary = [(main, name, True), (f"data0613/{main}", name, True)]
    if input == "segments":
        order = seg + ([] if bound else primary)
    elif input == "main_bound":
        order = primary + ([] if bound else seg)
    else:
        raise ValueError(f"mvbench input must be one of {INPUTS}, got {input!r}")
    for folder, file, is_main in order:
        if (media_root / folder / file).exists():
            return media_root / folder / file, is_main
    folder, file, is_main = order[0]
    return media_root / folder / file, is_main


def _row_question(path: Path, i: int, row: dict, subtask: str, media_root: Path, input: str = "segments") -> Question:
    where = f"{path} row {i}"
    require_object(row, where)
    for field in ("video", "question", "candidates", "answer"):
        if field not in row:
            raise BenchmarkFormatError(f"{where}: field {field!r} missing")
    cands = row["candidates"]
    if not isinstance(cands, list) or not 2 <= len(cands) <= len(LETTERS):
        raise BenchmarkFormatError(f"{where}: field 'candidates' must be a list of 2-10 option texts")
    if row["answer"] not in cands:
        raise BenchmarkFormatError(f"{where}: field 'answer' {row['answer']!r} is not one of the candidates")
    media, is_main = resolve_media(media_root, subtask, str(row["video"]), input)
    _, frames, bound, _ = SUBTASKS[subtask]
    start = end = None
    if bound and is_main and "start" in row and "end" in row:
        start, end = float(row["start"]), float(row["end"])
    cands = [str(c) for c in cands]
    return Question(NAME, f"{subtask}/{i:04d}", str(row["question"]), tuple(cands), tuple(cands),
                    LETTERS[cands.index(row["answer"])], str(media), start, end,
                    FRAME_FPS if (frames and is_main) else None, subtask=subtask)


def refuse_repeated_rows(path: Path, rows: list) -> None:
    """A row equal to an earlier one (same video, question, candidates, answer, bound) is refused, naming both rows.

    Ids are positions (`<subtask>/<row>`, lmms-eval's doc ids), so a repeated row would otherwise be
    a second question scored twice."""
    first: dict[str, int] = {}
    for i, r in enumerate(rows):
        key = json.dumps(r, sort_keys=True, default=str) if isinstance(r, dict) else None
        if key is None:
            continue
        if key in first:
            raise DuplicateIdError(f"{path} row {i}: repeats row {first[key]} (question id "
                                   f"{path.stem}/{first[key]:04d}); remove the duplicate row")
        first[key] = i


def load(annotations: Path, media_root: Path, input: str = "segments") -> list[Question]:
    """Every `<subtask>.json` present (files for unknown subtask names are an error); `input`: see the module doc."""
    d = json_dir(Path(annotations))
    files = sorted(d.glob("*.json"))
    if not files:
        raise FileNotFoundError(f"mvbench: no <subtask>.json files in {d}")
    out: list[Question] = []
    for f in files:
        if f.stem not in SUBTASKS:
            raise BenchmarkFormatError(f"{f}: {f.stem!r} is not an MVBench subtask ({sorted(SUBTASKS)})")
        rows = read_json_list(f)
        refuse_repeated_rows(f, rows)
        out += [_row_question(f, i, r, f.stem, Path(media_root), input) for i, r in enumerate(rows)]
    missing = sorted(set(SUBTASKS) - {f.stem for f in files})
    if missing:
        log.info("mvbench: %d of 20 subtasks present; absent: %s", 20 - len(missing), missing)
    return out


def prompt(q: Question) -> str:
    """lmms-eval 0.5.0 `mvbench_doc_to_text` with the subtask post-prompt (no space after "Question:")."""
    opts = "".join(f"({LETTERS[i]}) {c}\n" for i, c in enumerate(q.options))
    return "Question:" + q.question + "\nOption:\n" + opts + POST_PROMPT


def release_parse(reply: str, q: Question) -> ReleaseParse:
    pred = reasoning_answer(reply)
    parsed = mvbench_letter(pred)
    return ReleaseParse(parsed, parsed == mvbench_letter(q.gold), counted=pred != "")


BENCHMARK = Benchmark(NAME, load, prompt, release_parse, levels=("subtask",), overall="mean:subtask", max_options=5)
