"""Benchmark evaluation (lmms-eval's structure): a registry of benchmarks, one module each, a shared engine.

- `types`: `Question`, `Benchmark` (loader, prompt, release extractor, metric levels);
- `mvbench`, `videomme`, `mlvu`, `lvbench`: the video benchmarks in their official layouts;
- `registry`: benchmarks by name (adding one = one module + one entry);
- `extract`: lmms-eval 0.5.0's extractors (`release`) and the kit's parser (`robust`);
- `video`: the release's video input (fps 1, 4..32 frames, 200704..602112 px, true timestamps);
- `engine`: batched greedy generation -> per-question log rows;
- `metrics`: accuracy overall / per level under an extraction mode and a missing-video policy;
- `stage`: every checkpoint of every training run (C2) -> results JSON + log + trajectory (C3).
"""
from . import registry
from .stage import discover_runs, evaluate_run, load_trajectory, read_run, run_stage, write_trajectory
from .types import Benchmark, BenchmarkFormatError, Question
from .video import contract_id

__all__ = ["registry", "discover_runs", "evaluate_run", "load_trajectory", "read_run", "run_stage",
           "write_trajectory", "Benchmark", "BenchmarkFormatError", "Question", "contract_id"]
