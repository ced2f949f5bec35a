"""Which subsets of a run fill which rows of the papers' tables (params `report:`, contract C4), resolved once.

Defaults follow the names the kit's stages write: the Uni-10x baseline of a profile is `uniform` when
`subsets.uniform.size` is set (the paper's one 512k subset) else `uniform_<subset>` (the release's 10x
of each profile); the OFA subsets of pool P are `ofa_P`, `ofa_random_P` and `ofa_full_P`; the source
pool is compared with the published LLaVA-665K rows and a single transfer pool with Vision-Flan-186K.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..binomial import ChanceVerdict, chance_verdict
from ..config import Params
from .trajectory import TrajectoryIndex


@dataclass(frozen=True)
class OFAPool:
    """One OFA pool of the run: its subsets and the published pool it is compared with."""

    pool: str
    published: str | None
    subset: str
    random: str
    full: str
    transfer: bool


@dataclass
class RunInputs:
    """The trajectory and the subset names of every table row."""

    traj: pd.DataFrame
    profiles: dict[str, tuple[str, str]]  # display name -> (subset, uniform subset)
    main_profile: str
    ablations: dict[str, str]
    temporal: list[tuple[str, str]]       # (benchmark key, subtask key)
    ofa_pools: list[OFAPool]
    chance: dict[str, dict[str, float]] = field(default_factory=dict)  # benchmark -> {"" | subtask: chance %}
    demo: bool = False
    # bootstrap intervals the image evaluation wrote (eval/image_intervals.csv, eval/rel.csv): (subset, benchmark)
    # -> (score, low, high) of the end score, and subset -> (Rel, low, high); used only beside the same value
    score_ci: dict[tuple[str, str], tuple[float, float, float]] = field(default_factory=dict)
    rel_ci: dict[str, tuple[float, float, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.index = TrajectoryIndex(self.traj)

    def end_n(self, subset: str, benchmark: str, subtask: str = "") -> int:
        """Questions behind the end accuracy (0 when none)."""
        return self.index.end_n(subset, benchmark, subtask)

    def chance_of(self, benchmark: str, subtask: str = "") -> float:
        """Chance level (percent) of a benchmark or one of its subtasks, NaN when unknown."""
        return self.chance.get(benchmark, {}).get(subtask, float("nan"))

    def verdict(self, subset: str, benchmark: str, subtask: str = "") -> ChanceVerdict:
        """Is the subset's end accuracy above chance (gdo_utils.binomial)?"""
        return chance_verdict(self.end_value(subset, benchmark, subtask), self.end_n(subset, benchmark, subtask),
                              self.chance_of(benchmark, subtask))

    def trained(self, subset: str) -> bool:
        """Whether the trajectory has a trained checkpoint of the subset."""
        return subset in self.index.subsets()

    def not_trained(self, subsets) -> list[str]:
        """The subsets (in order, once each) with no trained checkpoint in the trajectory."""
        return [s for s in dict.fromkeys(subsets) if s and not self.trained(s)]

    @property
    def not_trained_phrase(self) -> str:
        """How a cell empty for want of a trained subset is described."""
        return "not trained on the demo" if self.demo else "not trained in this run"

    def end_value(self, subset: str, benchmark: str, subtask: str = "") -> float:
        """Accuracy at the subset's last checkpoint, else NaN (gdo_utils.report.trajectory)."""
        return self.index.end_value(subset, benchmark, subtask)

    def end_samples(self, subset: str) -> float:
        """samples_seen of the subset's last checkpoint, else NaN."""
        return self.index.end_samples(subset)

    def score_interval(self, subset: str, benchmark: str) -> tuple[float, float]:
        """The bootstrap interval of the subset's end score, NaNs unless it was computed for that very score."""
        return _matching(self.score_ci.get((subset, benchmark)), self.end_value(subset, benchmark))

    def rel_interval(self, subset: str, rel_value: float) -> tuple[float, float]:
        """Rel's paired bootstrap interval, NaNs unless it was computed for that very Rel."""
        return _matching(self.rel_ci.get(subset), rel_value)

    @property
    def main(self) -> tuple[str, str]:
        """(GDO subset, Uni-10x subset) of the main table."""
        return self.profiles[self.main_profile]


def ofa_pools(params: Params) -> list[OFAPool]:
    """The source pool then every transfer pool, with the params' overrides applied."""
    cfg = params.report.ofa_pools
    names = ([(params.pools.ofa_source.name, False)] if params.pools.ofa_source else [])
    names += [(p.name, True) for p in params.pools.ofa_transfer]
    unknown = sorted(set(cfg) - {n for n, _ in names})
    if unknown:
        raise ValueError(f"{params.source_file}: report.ofa_pools names pool(s) {unknown} that are not OFA pools "
                         f"(known: {[n for n, _ in names]})")
    out = []
    for name, transfer in names:
        c = cfg.get(name)
        default_pub = "LLaVA-665K" if not transfer else ("Vision-Flan-186K" if len(params.pools.ofa_transfer) == 1 else None)
        out.append(OFAPool(name, c.published if c and c.published else default_pub,
                           (c.subset if c else None) or f"ofa_{name}", (c.random if c else None) or f"ofa_random_{name}",
                           (c.full if c else None) or f"ofa_full_{name}", transfer))
    return out


def _matching(rec: tuple[float, float, float] | None, value: float) -> tuple[float, float]:
    """(low, high) of a recorded (value, low, high) when its value is this one (a file older than the trajectory is not)."""
    if rec is None or value != value or abs(rec[0] - value) > 1e-6 * max(1.0, abs(value)):
        return float("nan"), float("nan")
    return rec[1], rec[2]


def read_intervals(eval_dir: Path) -> tuple[dict[tuple[str, str], tuple[float, float, float]],
                                            dict[str, tuple[float, float, float]]]:
    """The image evaluation's bootstrap intervals: end scores (image_intervals.csv) and Rel (rel.csv); {} if absent."""
    scores, rels = {}, {}
    f = eval_dir / "image_intervals.csv"
    if f.is_file():
        for r in pd.read_csv(f).itertuples():
            scores[(str(r.subset), str(r.benchmark))] = (float(r.score), float(r.ci95_low), float(r.ci95_high))
    f = eval_dir / "rel.csv"
    if f.is_file():
        rel = pd.read_csv(f)
        if {"rel_ci95_low", "rel_ci95_high"} <= set(rel.columns):
            rels = {str(r.subset): (float(r.rel), float(r.rel_ci95_low), float(r.rel_ci95_high)) for r in rel.itertuples()}
    return scores, rels


def run_inputs(params: Params, traj: pd.DataFrame, chance: dict[str, dict[str, float]] | None = None) -> RunInputs:
    """Resolve the report section of the params against a validated trajectory table (and the chance levels)."""
    r = params.report
    profiles = {name: (p.subset, p.uniform or params.subsets.uniform_name(p.subset)) for name, p in r.profiles.items()}
    temporal = [tuple(t.split(":", 1)) for t in r.temporal_subtasks]
    demo = bool(params.toyworld.enabled or params.models.build_tiny)
    score_ci, rel_ci = read_intervals(Path(params.run_dir) / "eval")
    return RunInputs(traj, profiles, r.main_profile, dict(r.ablations), temporal, ofa_pools(params), chance or {}, demo,
                     score_ci, rel_ci)
