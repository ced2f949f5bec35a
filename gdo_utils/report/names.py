"""The one table mapping the kit's keys (trajectory contract C3) to the papers' display names.

Benchmarks (mvbench -> MVBench), subtasks (MVBench's lmms-eval names -> the heatmap's names, VideoMME
task types verbatim, MLVU's lmms-eval task names -> "Order", "SportsQA", ...), GDO profiles
(temp_plus -> Temp+) and the image suite of the OFA tables (mme -> MME-P).
"""
from __future__ import annotations

import pandas as pd

BENCHMARKS = {
    "mvbench": "MVBench", "videomme": "VideoMME", "mlvu": "MLVU", "lvbench": "LVBench",
    "vqav2": "VQAv2", "gqa": "GQA", "llava_wild": "LLaVA-Wild", "sqa_img": "SQA-I", "textvqa": "TextVQA",
    "mme": "MME-P", "mmbench_en": "MMBench-en", "mmbench_cn": "MMBench-cn", "pope": "POPE", "mmvet": "MM-Vet",
}
VIDEO_BENCHMARKS = ("mvbench", "videomme", "mlvu", "lvbench")
IMAGE_BENCHMARKS = ("vqav2", "gqa", "llava_wild", "sqa_img", "textvqa", "mme", "mmbench_en", "mmbench_cn", "pope", "mmvet")
ABLATION_BENCHMARKS = ("mvbench", "videomme", "mlvu")  # the paper's ablation table has no LVBench

PROFILES = {"minloss": "MinLoss", "diverse": "Diverse", "temp": "Temp", "temp_plus": "Temp+"}

# MVBench subtasks in the heatmap's order: the first 11 are "MVB Motion", then the 4 "MVB Reasoning".
MVBENCH = (
    ("action_antonym", "Action Antonym"), ("action_count", "Action Count"),
    ("action_localization", "Action Localization"), ("action_prediction", "Action Prediction"),
    ("action_sequence", "Action Sequence"), ("fine_grained_action", "Fine Grained Action"),
    ("fine_grained_pose", "Fine Grained Pose"), ("moving_attribute", "Moving Attribute"),
    ("moving_count", "Moving Count"), ("moving_direction", "Moving Direction"),
    ("unexpected_action", "Unexpected Action"), ("character_order", "Character Order"),
    ("counterfactual_inference", "Counterfactual Inference"), ("egocentric_navigation", "Egocentric Navigation"),
    ("episodic_reasoning", "Episodic Reasoning"), ("object_existence", "Object Existence"),
    ("object_interaction", "Object Interaction"), ("object_shuffle", "Object Shuffle"),
    ("scene_transition", "Scene Transition"), ("state_change", "State Change"),
)
MVB_MOTION = tuple(k for k, _ in MVBENCH[:11])
MVB_REASONING = ("character_order", "counterfactual_inference", "egocentric_navigation", "episodic_reasoning")
VIDEOMME_TASK_TYPES = (
    "Temporal Perception", "Spatial Perception", "Attribute Perception", "Action Recognition",
    "Object Recognition", "OCR Problems", "Counting Problem", "Temporal Reasoning", "Spatial Reasoning",
    "Action Reasoning", "Object Reasoning", "Information Synopsis",
)
MLVU = (
    ("anomaly_reco", "Anomaly Recognition"), ("count", "Count"), ("ego", "Ego"), ("needleQA", "NeedleQA"),
    ("order", "Order"), ("plotQA", "PlotQA"), ("sportsQA", "SportsQA"), ("topic_reasoning", "Topic Reasoning"),
    ("tutorialQA", "TutorialQA"),
)


def subtask_table() -> pd.DataFrame:
    """benchmark, key (as the trajectory writes it), display (as the papers print it): one row per subtask."""
    rows = [("mvbench", k, d) for k, d in MVBENCH]
    rows += [("videomme", t, t) for t in VIDEOMME_TASK_TYPES]
    rows += [("mlvu", k, d) for k, d in MLVU]
    return pd.DataFrame(rows, columns=["benchmark", "key", "display"])


_SUBTASKS = subtask_table()
_TO_DISPLAY = {(b, k): d for b, k, d in _SUBTASKS.itertuples(index=False)}
_TO_KEY = {(BENCHMARKS[b], d): k for b, k, d in _SUBTASKS.itertuples(index=False)}
_BENCH_KEY = {v: k for k, v in BENCHMARKS.items()}
_PROFILE_KEY = {v: k for k, v in PROFILES.items()}


def benchmark_display(key: str) -> str:
    """mvbench -> MVBench (unknown keys unchanged)."""
    return BENCHMARKS.get(key, key)


def benchmark_key(display: str) -> str:
    """MVBench -> mvbench."""
    if display not in _BENCH_KEY:
        raise KeyError(f"unknown benchmark display name {display!r}")
    return _BENCH_KEY[display]


def subtask_display(benchmark: str, key: str) -> str:
    """(mvbench, action_antonym) -> Action Antonym; (mlvu, sportsQA) -> SportsQA; unknown keys unchanged."""
    return _TO_DISPLAY.get((benchmark, key), key)


def subtask_key(benchmark_display_name: str, display: str) -> str:
    """(MVBench, Action Antonym) -> action_antonym; (MLVU, Order) -> order."""
    if (benchmark_display_name, display) not in _TO_KEY:
        raise KeyError(f"unknown subtask {display!r} of {benchmark_display_name!r}")
    return _TO_KEY[(benchmark_display_name, display)]


def profile_display(key: str) -> str:
    """temp_plus -> Temp+ (unknown keys unchanged)."""
    return PROFILES.get(key, key)


def profile_key(display: str) -> str:
    """Temp+ -> temp_plus."""
    if display not in _PROFILE_KEY:
        raise KeyError(f"unknown profile {display!r}")
    return _PROFILE_KEY[display]
