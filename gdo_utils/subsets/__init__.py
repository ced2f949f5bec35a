"""GDO goal-preset subsets (GDO_METHOD.md section 5): presets, budget, strata, quotas, fill, uniform baseline.

Modules, one job each: `profiles` (validated YAML presets), `strata` and `text` (stratum fields),
`budget` (budget rule + VDS-aware adjustment), `quotas` (quotas and constraints), `select` (greedy take
conditions), `context` (pool + descriptors loaded once), `core` (the six fill stages), `release` (the GDO
release's random stream and per-stratum candidate heaps, for `subsets.behaviour: release`), `uniform` (Uni-10x),
`export` (train.jsonl and other trainer formats), `files` (writing a selection), `report` (composition,
JS divergence, data card, tables), `plots`, `synthetic` (pools for tests and the benchmark), `build`
(the stage: skipping, reports, `build_profile`, `build_all`, `budget_sweep`).
"""
from .build import budget_sweep, build_all, build_profile, parse_subset_name, subset_names, subset_rows
from .export import export_subset
from .profiles import Profile, ProfileError, load_profile, load_profile_file

__all__ = ["build_profile", "build_all", "budget_sweep", "parse_subset_name", "subset_names", "subset_rows",
           "export_subset",
           "Profile", "ProfileError", "load_profile", "load_profile_file"]
