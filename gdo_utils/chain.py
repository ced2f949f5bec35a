"""Run the numbered notebooks in order with papermill (the `gdo-repro run` command).

Each notebook gets the params file (absolute path), the overrides and `force` injected into its
`parameters` cell; the executed copy goes to outputs/<run>/notebooks/. The chain stops at the first
failing notebook and re-raises its error. A notebook is skipped when its last successful run used the
same params hash, the same notebook content, the same gdo_utils code, unchanged annotation files and
unchanged outputs of the notebooks before it (a record beside the executed copy), unless forced; the log
says why a notebook runs again. Each stage inside a notebook also skips work whose own cache key matches
(gdo_utils.cache).

"Outputs of the notebooks before it": every record lists the stage manifests (`manifest.json`) its
notebook wrote (`own`); a notebook's record keeps a digest of what the manifests owned by the notebooks
before it say (params hash, code, output checksums: not their time stamps), taken after the notebook ran,
so when an earlier stage is recomputed with other results — by the chain or by a `gdo-repro <stage>`
command run on its own, e.g. a new evaluation — every later notebook runs again, while a stage that
rewrote the same outputs re-triggers nothing.

"The same keys the stages use": a notebook also runs again when a stage manifest it owns is gone, or
when the input files or model files that manifest's cache record names (gdo_utils.cache) changed — an
in-place edit of a toy-world pool file, weights swapped at the same path — exactly what makes the stage
itself recompute. Names in those records are relative to the run folder, and the params hash here leaves
out `output_root`, so a run moved to another output root is not re-executed for the move alone.
"""
from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path

from .cache import CACHE_KEY, code_version, fingerprint, same_file
from .cache import record_stale as stage_record_stale
from .config import TOYWORLD_SCHEME, Params, ParamsError, load_params, params_hash, resolve_path
from .io import read_json, sha256_file, write_json

log = logging.getLogger(__name__)
NOTEBOOK_RE = re.compile(r"^(\d{2})_[A-Za-z0-9_]+\.ipynb$")


class NotebookFailed(RuntimeError):
    """A notebook of the chain raised; the message names it and the executed copy holding the traceback."""


@dataclass(frozen=True)
class NotebookStep:
    number: str
    path: Path

    @property
    def name(self) -> str:
        return self.path.stem


def discover(notebooks_dir: str | Path) -> list[NotebookStep]:
    """Numbered notebooks (NN_name.ipynb) in order."""
    d = Path(notebooks_dir)
    steps = [NotebookStep(m.group(1), p) for p in sorted(d.glob("*.ipynb")) if (m := NOTEBOOK_RE.match(p.name))]
    numbers = [s.number for s in steps]
    if len(set(numbers)) != len(numbers):
        raise ValueError(f"{d}: two notebooks share a number: {numbers}")
    return steps


def annotation_files(params: Params) -> list[Path]:
    """The user's annotation files named by the params (toy-world files are generated from params + code)."""
    from .pool import named_pools

    out = []
    for _, sources, prefix in named_pools(params):
        for i, src in enumerate(sources):
            if src.path.startswith(TOYWORLD_SCHEME):
                continue
            try:
                out.append(resolve_path(params, src.path, f"{prefix}[{i}].path").absolute())
            except ParamsError:  # an unfilled placeholder: the stage itself will say so
                continue
    return out


def manifests_written_since(run_dir: Path, t0: float) -> set[str]:
    """Stage manifests under run_dir written at or after t0 (paths relative to run_dir)."""
    return {str(m.relative_to(run_dir)) for m in run_dir.rglob("manifest.json") if m.stat().st_mtime >= t0}


def manifest_digest(path: Path) -> str | None:
    """What a stage manifest says it wrote (params hash, code, output checksums, cache record), not when.

    None when the manifest is gone; an unreadable one gets the file's sha256.
    """
    import hashlib
    import json

    if not path.is_file():
        return None
    try:
        m = read_json(path)
    except (json.JSONDecodeError, OSError, UnicodeDecodeError):
        return sha256_file(path)
    cache = m.get(CACHE_KEY) or {}
    keep = {k: m.get(k) for k in ("stage", "params_hash", "outputs_sha256")}
    keep[CACHE_KEY] = {"code": cache.get("code"), "models": cache.get("models"),  # contents, not mtimes
                       "inputs": {n: (fp or {}).get("sha256") for n, fp in (cache.get("inputs") or {}).items()}}
    return hashlib.sha256(json.dumps(keep, sort_keys=True, default=str).encode()).hexdigest()[:16]


def manifest_digests(run_dir: Path, paths: set[str]) -> dict[str, str | None]:
    """`manifest_digest` of each manifest (None where it is gone)."""
    return {p: manifest_digest(run_dir / p) for p in sorted(paths)}


def own_stale(run_dir: Path, own: list[str]) -> str | None:
    """Why the stages a notebook wrote would recompute (a manifest gone, or its recorded inputs/models changed)."""
    for rel in own:
        mf = run_dir / rel
        if not mf.is_file():
            return f"a stage output is gone: {rel}"
        try:
            why = stage_record_stale(read_json(mf), run_dir)
        except (ValueError, OSError):
            return f"a stage manifest is unreadable: {rel}"
        if why:
            return f"{Path(rel).parent}: {why}"
    return None


def record_stale(rec: dict, p_hash: str, nb_sha: str, code: str, files: list[Path],
                 upstream: dict[str, str | None] | None = None, run_dir: Path | None = None) -> str | None:
    """Why a notebook's last run record no longer holds (None when it does)."""
    if rec.get("status") != "ok":
        return "last run did not finish"
    if rec.get("params_hash") != p_hash:
        return "params changed"
    if rec.get("notebook_sha") != nb_sha:
        return "notebook changed"
    if rec.get("code") != code:
        return "gdo_utils code changed"
    inputs = rec.get("inputs") or {}
    for f in files:
        if not same_file(f, inputs.get(str(f))):
            return f"input file changed: {f}"
    recorded = rec.get("upstream") or {}
    for path, digest in (upstream or {}).items():
        if recorded.get(path) != digest:
            return f"an earlier stage's output changed: {path}"
    if run_dir is not None:
        return own_stale(run_dir, rec.get("own") or [])
    return None


def chain_params_hash(params: Params) -> str:
    """The params hash of a chain record: every setting but `output_root` (where the run lives)."""
    data = params.model_dump(mode="json")
    data.pop("output_root", None)
    return params_hash(data)


def earlier_own(out_dir: Path, steps: list[NotebookStep], step: NotebookStep) -> set[str]:
    """Stage manifests owned by the notebooks numbered before `step`."""
    own: set[str] = set()
    for prev in steps:
        prev_rec = out_dir / f"{prev.name}.run.json"
        if prev.number < step.number and prev_rec.is_file():
            own |= set(read_json(prev_rec).get("own") or [])
    return own


def run_chain(params_file: str | Path, *, overrides: list[str] | None = None, only: list[str] | None = None,
              force: bool = False, notebooks_dir: str | Path = "notebooks", kernel_name: str = "python3",
              cwd: str | Path | None = None) -> list[dict]:
    """Execute the numbered notebooks; returns one record per notebook (ran / skipped, seconds)."""
    import papermill as pm

    overrides = list(overrides or [])
    params: Params = load_params(params_file, overrides)
    p_hash = chain_params_hash(params)
    root = Path(cwd or Path.cwd()).resolve()
    out_dir = (root / params.run_dir / "notebooks") if not Path(params.output_root).is_absolute() else params.run_dir / "notebooks"
    out_dir.mkdir(parents=True, exist_ok=True)
    steps = discover(root / notebooks_dir if not Path(notebooks_dir).is_absolute() else notebooks_dir)
    if only:
        wanted = {o.zfill(2) for o in only}
        unknown = wanted - {s.number for s in steps}
        if unknown:
            raise ValueError(f"--only {sorted(unknown)}: no such notebook (have {[s.number for s in steps]})")
        steps = [s for s in steps if s.number in wanted]
    records = []
    code = code_version(["gdo_utils"])  # each stage inside a notebook keeps its own, finer cache key
    files = annotation_files(params)
    inputs = {str(f): fingerprint(f) for f in files}
    run_dir = out_dir.parent
    all_steps = discover(root / notebooks_dir if not Path(notebooks_dir).is_absolute() else notebooks_dir)
    for step in steps:
        executed = out_dir / step.path.name
        record_file = out_dir / f"{step.name}.run.json"
        nb_sha = sha256_file(step.path)[:16]
        upstream = manifest_digests(run_dir, earlier_own(out_dir, all_steps, step))
        rec = read_json(record_file) if record_file.is_file() else {}
        if not force and rec and executed.is_file():
            why = record_stale(rec, p_hash, nb_sha, code, files, upstream, run_dir)
            if why is None:
                log.info("%s: up to date, skipped", step.name)
                records.append({**rec, "skipped": True})
                continue
            log.info("%s: running again: %s", step.name, why)
        else:
            log.info("%s: running", step.name)
        t0 = time.time()
        try:
            pm.execute_notebook(
                str(step.path), str(executed), kernel_name=kernel_name, cwd=str(root),
                progress_bar={"desc": step.name, "unit": "cell"},   # cell progress on the terminal (stderr)
                parameters={"params_file": str(Path(params_file).resolve()), "overrides": overrides, "force": force},
            )
        except pm.PapermillExecutionError as exc:
            write_json(record_file, {"notebook": step.name, "status": "failed", "params_hash": p_hash,
                                     "notebook_sha": nb_sha, "error": f"{exc.ename}: {exc.evalue}",
                                     "own": sorted(manifests_written_since(run_dir, t0) | set(rec.get("own") or []))})
            raise NotebookFailed(f"{step.path.name} failed in cell {exc.exec_count}: {exc.ename}: {exc.evalue}\n"
                                 f"executed copy with the traceback: {executed}") from None
        own = sorted(manifests_written_since(run_dir, t0) | set(rec.get("own") or []))
        upstream = manifest_digests(run_dir, earlier_own(out_dir, all_steps, step))  # as this notebook left them
        rec = {"notebook": step.name, "status": "ok", "params_hash": p_hash, "notebook_sha": nb_sha,
               "code": code, "inputs": inputs, "upstream": upstream, "own": own,
               "seconds": round(time.time() - t0, 2), "executed": str(executed)}
        write_json(record_file, rec)
        records.append({**rec, "skipped": False})
        log.info("%s: ok in %.1fs", step.name, rec["seconds"])
    return records
