"""The published numbers typed again from their sources, independently of the package data (paper_numbers/*.csv).

Each block is in its source's own layout, not the package CSV's, so a shipped number that differs from the
source fails tests/test_published_numbers.py. Sources:
- GDO_MAIN: the GDO paper's one table (arXiv 2603.12478; the same table heads the release README, rujiewu/GDO).
- GDO_PROFILES, GDO_TEMPORAL, GDO_GROUPS, GDO_ABLATION: the release README's tables ("value (delta)" cells).
- GDO_HEATMAP: the cell labels of the release README's MVBench heatmap (assets/mvbench_heatmap.png), one line per
  profile as the figure draws it, top to bottom, subtasks left to right.
- GDO_TRAJECTORIES: read off the release README's convergence figure (assets/teaser.png): approximate.
- OFA_HEADLINE: the OFA abstract (arXiv 2605.26761): 15% of the data, Rel 98.3 and 110.6.
- VISNEC_*: the companion paper's tables (VisNec, arXiv 2603.01195), one line per row.
"""

GDO_MAIN = """
| MVBench | 62.27 | 63.65 | +1.38 | 35.4k | 14.5x |
| VideoMME | 61.22 | 62.89 | +1.67 | 26.6k | 19.2x |
| MLVU | 43.81 | 46.89 | +3.08 | 27.3k | 18.8x |
| LVBench | 40.22 | 41.06 | +0.84 | 34.7k | 14.8x |
"""

# Setting | 1x samples | MVBench | VideoMME | MLVU | LVBench
GDO_PROFILES = """
| MinLoss | 12.9k | 63.63 (+1.35) | 62.30 (+1.07) | 45.84 (+2.03) | 38.86 (-1.36) |
| Diverse | 42.9k | 63.12 (+0.85) | 61.33 (+0.11) | 46.05 (+2.24) | 39.90 (-0.32) |
| Temp | 33.3k | 62.05 (-0.23) | 62.04 (+0.81) | 45.26 (+1.45) | 40.28 (+0.06) |
| Temp+ | 53.3k | 63.65 (+1.38) | 62.89 (+1.67) | 46.89 (+3.08) | 41.06 (+0.84) |
"""

# profile | benchmark | subtask | Uni-10x | GDO | delta, ascending within a profile as printed
GDO_TEMPORAL = """
| MinLoss | MLVU | Order | 25.71 | 31.43 | +5.71 |
| MinLoss | MVBench | Character Order | 67.50 | 74.50 | +7.00 |
| MinLoss | VideoMME | Temporal Perception | 67.27 | 76.36 | +9.09 |
| MinLoss | MVBench | Moving Count | 53.00 | 63.00 | +10.00 |
| MinLoss | MLVU | SportsQA | 36.11 | 47.22 | +11.11 |
| Diverse | MLVU | SportsQA | 36.11 | 44.44 | +8.33 |
| Diverse | MVBench | State Change | 61.00 | 70.50 | +9.50 |
| Diverse | MLVU | Order | 25.71 | 35.71 | +10.00 |
| Diverse | VideoMME | Temporal Perception | 67.27 | 78.18 | +10.91 |
| Diverse | MVBench | Moving Count | 53.00 | 66.00 | +13.00 |
| Temp | MLVU | PlotQA | 44.00 | 48.00 | +4.00 |
| Temp | MLVU | Order | 25.71 | 30.00 | +4.29 |
| Temp | MLVU | SportsQA | 36.11 | 41.67 | +5.56 |
| Temp | VideoMME | Temporal Perception | 67.27 | 74.55 | +7.27 |
| Temp | MVBench | Moving Count | 53.00 | 63.00 | +10.00 |
| Temp+ | MVBench | Character Order | 67.50 | 74.50 | +7.00 |
| Temp+ | MLVU | Order | 25.71 | 32.86 | +7.14 |
| Temp+ | MVBench | Counterfactual Inference | 59.50 | 68.00 | +8.50 |
| Temp+ | MLVU | SportsQA | 36.11 | 47.22 | +11.11 |
| Temp+ | VideoMME | Temporal Perception | 67.27 | 85.45 | +18.18 |
"""

# Setting | MVB Motion | MVB Reasoning | VMM Temp. Perc. | MLVU Order | MLVU SportsQA | MLVU Ego
GDO_GROUPS = """
| MinLoss | -1.1 | +3.2 | +9.1 | +5.7 | +11.1 | -15.1 |
| Diverse | +1.5 | -2.2 | +10.9 | +10.0 | +8.3 | -5.7 |
| Temp | -1.2 | +0.6 | +7.3 | +4.3 | +5.6 | +1.9 |
| Temp+ | +0.8 | +3.8 | +18.2 | +7.1 | +11.1 | -3.8 |
"""

# Ablation | MVBench | VideoMME | MLVU
GDO_ABLATION = """
| Temp+ | 63.65 | 62.89 | 46.89 |
| Temp+ w/o VDS | 63.12 (-0.53) | 61.78 (-1.11) | 47.60 (+0.71) |
| Temp+ w/o PPL | 63.30 (-0.35) | 61.81 (-1.07) | 47.00 (+0.11) |
| Temp+ w/o SC | 62.25 (-1.40) | 62.15 (-0.74) | 43.73 (-3.16) |
| Temp+ w/o VDS/PPL/SC | 61.65 (-2.00) | 62.04 (-0.85) | 47.06 (+0.17) |
"""

# Columns left to right: Action Antonym, Action Count, Action Localization, Action Prediction, Action Sequence,
# Fine Grained Action, Fine Grained Pose, Moving Attribute, Moving Count, Moving Direction, Unexpected Action,
# Character Order, Counterfactual Inference, Egocentric Navigation, Episodic Reasoning, Object Existence,
# Object Interaction, Object Shuffle, Scene Transition, State Change
GDO_HEATMAP = """
Temp+   -4.5 +6.5 +2.5 -3.5 +4.0 +3.0 -3.5 +0.5 +6.5 -3.5 +0.5 +7.0 +8.5 +4.5 -5.0 +4.5 +1.0 -5.5 +4.5 -0.5
Temp    +0.0 -5.5 +2.5 -11.0 -6.5 +1.0 -5.5 +2.5 +10.0 -2.5 +1.5 +4.0 +1.5 +3.5 -6.5 +7.5 +1.0 -6.0 +4.0 +0.0
Diverse +1.5 +5.0 -2.0 +1.0 +0.0 -1.0 -5.0 +5.0 +13.0 -3.0 +2.5 -0.5 +2.0 -5.5 -5.0 +4.0 +1.0 -6.5 +1.0 +9.5
MinLoss -9.5 +5.5 -4.0 -6.0 -1.0 -1.5 -2.5 +1.0 +10.0 -7.0 +3.0 +7.0 +5.5 +6.5 -6.0 +1.0 +0.5 -2.0 +2.5 -6.0
"""
HEATMAP_SUBTASKS = (
    "Action Antonym", "Action Count", "Action Localization", "Action Prediction", "Action Sequence",
    "Fine Grained Action", "Fine Grained Pose", "Moving Attribute", "Moving Count", "Moving Direction",
    "Unexpected Action", "Character Order", "Counterfactual Inference", "Egocentric Navigation",
    "Episodic Reasoning", "Object Existence", "Object Interaction", "Object Shuffle", "Scene Transition",
    "State Change",
)

# benchmark series: (samples k, accuracy) points left to right
GDO_TRAJECTORIES = """
MVBench Uni-10x  128 59.70 | 256 60.32 | 384 60.43 | 512 62.27
MVBench GDO      13.3 59.48 | 26.7 60.82 | 40.0 63.03 | 53.3 63.65
VideoMME Uni-10x 128 58.74 | 256 59.29 | 384 60.37 | 512 61.64
VideoMME GDO     13.3 59.51 | 26.7 61.22 | 40.0 62.56 | 53.3 62.89
MLVU Uni-10x     128 38.81 | 256 41.66 | 384 44.59 | 512 43.81
MLVU GDO         13.3 39.60 | 26.7 43.68 | 40.0 46.37 | 53.3 46.89
"""

OFA_HEADLINE = {"LLaVA-665K": (0.15, 98.3), "Vision-Flan-186K": (0.15, 110.6)}

# method | VQAv2 GQA LLaVA-Wild SQA-I TextVQA MME-P MMBench-en MMBench-cn POPE MM-Vet | Rel
VISNEC_LLAVA665K = """
Full-Data (665K) | 79.1 63.0 67.9 68.4 57.9 1476.9 64.3 58.3 86.4 30.0 | 100.0
Random           | 75.3 55.1 58.8 67.8 54.3 1397.5 61.0 53.5 84.9 30.2 | 94.2
Self-Filter      | 74.0 56.3 60.6 62.3 51.4 1356.5 48.1 45.4 86.3 29.0 | 89.3
EL2N             | 76.1 54.7 59.0 66.5 50.2 1405.2 58.2 48.5 83.3 30.0 | 91.9
TypiClust        | 76.0 59.8 65.2 68.2 53.3 1396.2 64.3 57.1 85.6 29.7 | 96.9
IFD              | 74.0 57.8 62.3 66.5 51.8 1307.2 57.2 50.6 86.6 28.1 | 92.1
PreSel           | 76.5 57.9 65.6 70.1 55.2 1457.7 64.8 56.5 85.4 29.6 | 97.7
XMAS             | 75.1 61.2 62.4 67.0 55.2 1485.7 64.3 54.1 85.8 31.0 | 97.3
COINCIDE         | 76.1 60.2 64.9 67.7 54.8 1414.9 60.5 53.9 86.4 28.5 | 95.8
CLIP-Score       | 71.7 56.9 61.3 64.5 53.4 1380.3 51.0 48.0 84.0 29.9 | 92.0
CoIDO            | 75.8 61.0 66.7 68.2 56.0 1419.5 63.3 55.5 85.6 31.4 | 97.7
ICONS            | 76.3 60.7 65.3 65.3 55.2 1435.6 63.1 55.8 85.7 30.4 | 97.1
"""

VISNEC_VISIONFLAN = """
Full-Data (186K) | 69.6 46.0 35.7 55.6 38.3 1238.1 53.4 48.2 85.7 27.7 | 100.0
Random           | 66.5 43.8 33.5 62.1 38.7 1238.6 43.6 43.1 83.0 28.1 | 96.7
Self-Filter      | 64.9 42.5 32.1 59.3 42.6 1262.2 42.1 43.8 80.9 25.1 | 95.0
EL2N             | 63.6 42.2 32.8 62.7 42.4 1253.8 44.7 37.7 79.5 27.1 | 95.2
TypiClust        | 65.8 43.1 30.4 59.2 37.7 1194.1 32.4 45.1 81.6 28.2 | 92.0
IFD              | 65.0 42.4 29.8 57.8 42.0 1210.9 30.4 40.8 82.6 26.9 | 91.6
PreSel           | 64.1 41.9 39.4 66.2 39.7 1218.8 50.4 45.4 84.1 29.1 | 100.6
XMAS             | 65.5 49.4 34.2 58.1 42.4 1151.2 51.1 44.0 76.2 24.3 | 96.9
COINCIDE         | 66.0 44.5 34.6 63.9 33.0 1184.4 49.6 48.2 84.3 26.1 | 97.1
CLIP-Score       | 63.0 41.6 31.2 62.3 39.7 1058.0 37.5 44.2 82.0 28.0 | 92.2
CoIDO            | 66.7 46.8 37.6 66.2 43.2 1298.8 51.4 47.3 85.6 28.3 | 103.6
ICONS            | 67.2 48.8 35.4 60.2 49.9 1252.5 51.3 45.4 83.0 28.6 | 103.2
"""

# the speed-up labels written over the peak-match lines of the release's convergence figure (assets/teaser.png)
TEASER_SPEEDUP_LABELS = {"MVBench": "~13.2x", "VideoMME": "~14.5x", "MLVU": "~14.4x"}
