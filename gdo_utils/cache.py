"""Stage cache keys: params hash + code version + input-file fingerprints, and why a stage recomputes.

A stage's outputs are reused only when all three still match what its manifest recorded:
- the params hash of the settings the stage reads (as before);
- the code version: a sha256 over the source files of the stage's own modules (a package counts
  with every .py file in it), so editing the code of a stage recomputes it and what is built on it;
- a fingerprint of every input file: size, mtime and sha256 of its content. A file whose size and
  mtime are unchanged is trusted without re-reading; otherwise its content hash decides, so a
  rewrite with identical bytes (a deterministic upstream stage that ran again) changes nothing
  downstream, while an annotation file edited in place is noticed.
Upstream stages' output files are inputs of the downstream stages, which makes invalidation flow
down the chain and nowhere else. `StageCache.fresh` logs the reason whenever it says "recompute".
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from .io import MANIFEST_NAME, read_json, sha256_file, write_json

log = logging.getLogger(__name__)
CACHE_KEY = "cache"


@lru_cache(maxsize=None)
def _module_files(module: str) -> tuple[Path, ...]:
    """Source files of a module, or of every module of a package (sorted)."""
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(f"code version: no module named {module!r}")
    origin = Path(spec.origin)
    if spec.submodule_search_locations:  # a package: all its .py files, recursively
        return tuple(sorted(p for p in origin.parent.rglob("*.py") if "__pycache__" not in p.parts))
    return (origin,)


def _module_name(file: Path, root: Path) -> str:
    """Dotted name of a source file under the package root (a package's __init__ names the package)."""
    parts = list(file.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _stat_key(file: Path) -> tuple[Path, int, int]:
    """(path, size, mtime_ns) of a source file: what the per-process memos below are keyed on."""
    st = file.stat()
    return file, st.st_size, st.st_mtime_ns


def _imports(file: Path, root: Path) -> tuple[str, ...]:
    """Modules of the package `root` that `file` imports anywhere (also lazily, inside functions)."""
    return _parsed_imports(*_stat_key(file), root)


def _statements(body: list) -> Iterator:
    """Every statement of a module, nested ones included (imports are statements: expressions never need a visit)."""
    for node in body:
        yield node
        for name in ("body", "orelse", "finalbody", "handlers", "cases"):
            inner = getattr(node, name, None)
            if isinstance(inner, list):
                yield from _statements(inner)


@lru_cache(maxsize=None)
def _parsed_imports(file: Path, size: int, mtime_ns: int, root: Path) -> tuple[str, ...]:
    """`_imports` of one version of `file` (parsed once per process per (path, size, mtime_ns))."""
    import ast

    pkg = root.name
    name = _module_name(file, root)
    base = name.split(".") if file.name == "__init__.py" else name.split(".")[:-1]
    out: set[str] = set()
    for node in _statements(ast.parse(file.read_bytes(), filename=str(file)).body):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == pkg}
        elif isinstance(node, ast.ImportFrom):
            mod = ".".join(base[:len(base) - node.level + 1] + ([node.module] if node.module else [])) \
                if node.level else (node.module or "")
            if mod.split(".")[0] != pkg:
                continue
            out.add(mod)
            out |= {f"{mod}.{a.name}" for a in node.names}  # `from .x import y` may name a submodule y
    return tuple(sorted(out))


def _closure(modules: Sequence[str]) -> list[Path]:
    """Source files of the modules and of every module of their package they import, transitively."""
    seen: dict[Path, None] = {}
    todo = [f for m in modules for f in _module_files(m)]
    while todo:
        f = todo.pop()
        if f in seen:
            continue
        seen[f] = None
        root = next((p for p in f.parents if p.name == "gdo_utils"), None)
        if root is None:
            continue
        for dep in _imports(f, root):  # resolved on disk: finding a spec would import the parent packages
            stem = root.parent.joinpath(*dep.split("."))
            for cand in (stem.with_suffix(".py"), stem / "__init__.py"):
                if cand.is_file():
                    todo.append(cand)
    return sorted(seen)


def code_version(modules: Sequence[str]) -> str:
    """sha256 (16 hex) over the source of the given modules and of every gdo_utils module they import.

    The import closure (found statically, lazy imports included) means a stage's key also changes when a
    shared helper it uses changes, and a stale module list can never leave code out. Parses and hashes
    are remembered per process for each file's (path, size, mtime_ns), so a repeated call only stats the
    files, and an edited file (new size or mtime) is read again.
    """
    return _code_version(tuple(_stat_key(f) for f in _closure(modules)))


@lru_cache(maxsize=None)
def _code_version(files: tuple[tuple[Path, int, int], ...]) -> str:
    """`code_version` of the files (path, size, mtime_ns): read and hashed once per process per such tuple."""
    h = hashlib.sha256()
    root = Path(__file__).resolve().parent
    for f, _, _ in files:
        h.update(f"{f.relative_to(root.parent) if f.is_relative_to(root.parent) else f.name}\0".encode())
        h.update(f.read_bytes())
        h.update(b"\0")
    return h.hexdigest()[:16]


MODEL_FILE_SUFFIXES = (".safetensors", ".json", ".bin", ".model", ".txt", ".jinja", ".tiktoken")
# what the Trainer saves beside a checkpoint's model to resume training (timings, optimizer moments): not the model
TRAINING_STATE_FILES = ("trainer_state.json", "training_args.bin", "optimizer.bin", "scheduler.pt", "scaler.pt")


MEMO_NAME = ".gdo_sha256.json"


@lru_cache(maxsize=None)
def _content_sha(path: str, size: int, mtime_ns: int) -> str:
    """sha256 of a model file's bytes, remembered for an unchanged (path, size, mtime).

    Remembered per process, and across processes in a small memo beside the files (`.gdo_sha256.json`,
    written when the folder is writable): a multi-GB checkpoint is read once, not by every stage that
    keys on it. The memo is trusted only while the file's size and mtime are the recorded ones, the same
    rule `same_file` applies to every input file.
    """
    f = Path(path)
    memo_file = f.parent / MEMO_NAME
    try:
        memo = json.loads(memo_file.read_text()) if memo_file.is_file() else {}
    except (ValueError, OSError):
        memo = {}
    hit = memo.get(f.name)
    if isinstance(hit, list) and hit[:2] == [size, mtime_ns]:
        return hit[2]
    sha = sha256_file(f)
    memo[f.name] = [size, mtime_ns, sha]
    try:
        write_json(memo_file, memo)
    except OSError:  # a read-only model folder (a shared hub cache): hash again next time
        pass
    return sha


def _hub_revision(repo_id: str) -> str | None:
    """The commit of a hub model's snapshot in the local Hugging Face cache (None when not cached)."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - a transformers dependency
        return None
    try:
        hit = try_to_load_from_cache(repo_id, "config.json")
    except Exception:  # noqa: BLE001 - not a valid repo id (e.g. a missing local path): no revision
        return None
    return Path(hit).parent.name if isinstance(hit, str) else None


def model_fingerprint(path: str) -> str:
    """What a model is, wherever it lives: sha256 of its weight, config and tokenizer files' bytes.

    A local folder: every model file's name and content hash (weights, configs, tokenizer and processor
    files; not the Trainer's resume state, whose timings differ between two runs that end with the same
    weights; not the absolute path or mtime), so weights swapped at the same path are a new model, while
    the same model moved or copied to another output root is the same one. Content hashing reads each file once (at disk speed); a memo keyed on size and mtime
    serves later calls and later processes (`_content_sha`). A hub id: the id plus the commit of its
    snapshot in the local Hugging Face cache, so a revision update in the cache is a new model.
    """
    p = Path(path)
    if not p.is_dir():
        rev = _hub_revision(path) if not p.exists() else None
        return f"{path}@{rev}" if rev else path
    files = sorted(x for x in p.iterdir() if x.is_file() and x.suffix in MODEL_FILE_SUFFIXES
                   and not x.name.startswith(".") and x.name not in TRAINING_STATE_FILES)
    listing = []
    for f in files:
        st = f.stat()
        listing.append([f.name, st.st_size, _content_sha(str(f.resolve()), st.st_size, st.st_mtime_ns)])
    return hashlib.sha256(json.dumps(listing).encode()).hexdigest()[:16]


def portable_name(path: str | Path, root: str | Path | None) -> str:
    """A file's name in a cache record: relative to the run folder when inside it, else absolute.

    Keys then do not depend on where the run lives: the same run under another output_root matches.
    """
    p = Path(path).absolute()
    if root is not None:
        r = Path(root).absolute()
        if p.is_relative_to(r):
            return p.relative_to(r).as_posix()
    return str(p)


def portable_text(value: str, root: str | Path | None) -> str:
    """A path string as `portable_name` writes it (for row keys holding media paths)."""
    if root is None or not value:
        return value
    r = str(Path(root).absolute()).rstrip("/") + "/"
    return value[len(r):] if value.startswith(r) else value


def portable_sha256(path: str | Path, root: str | Path | None) -> str:
    """sha256 of a text file's bytes with the run folder's absolute prefix taken out of every path in it.

    For files that name media inside the run (a subset's train.jsonl naming toy-world frames): the same
    content under another output_root has the same digest.
    """
    data = Path(path).read_bytes()
    if root is not None:
        data = data.replace((str(Path(root).absolute()).rstrip("/") + "/").encode(), b"")
    return hashlib.sha256(data).hexdigest()


def fingerprint(path: str | Path) -> dict:
    """{size, mtime_ns, sha256} of a file, or {"missing": True}."""
    p = Path(path)
    if not p.is_file():
        return {"missing": True}
    st = p.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": sha256_file(p)}


def same_file(path: str | Path, recorded: dict | None) -> bool:
    """True when `path` still holds what `recorded` describes (size+mtime fast path, else content hash)."""
    p = Path(path)
    if not recorded:
        return False
    if not p.is_file():
        return bool(recorded.get("missing"))
    if recorded.get("missing"):
        return False
    st = p.stat()
    if st.st_size != recorded.get("size"):
        return False
    if st.st_mtime_ns == recorded.get("mtime_ns"):
        return True
    return sha256_file(p) == recorded.get("sha256")


@dataclass
class StageCache:
    """The cache key of one stage's outputs in `out_dir` (see the module docstring).

    `root` (the run folder) makes the record portable: inputs inside it are named relative to it.
    `models` are model folders or hub ids whose `model_fingerprint` enters the key.
    """

    stage: str
    out_dir: Path
    params_hash: str
    modules: Sequence[str]
    inputs: Iterable[str | Path] = ()
    root: Path | None = None
    models: Sequence[str] = ()
    _fps: dict = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self.out_dir = Path(self.out_dir)
        self.inputs = [str(Path(p).absolute()) for p in self.inputs]
        self.models = [str(m) for m in self.models]

    @property
    def code(self) -> str:
        return code_version(self.modules)

    def name(self, path: str) -> str:
        return portable_name(path, self.root)

    def model_fps(self) -> dict[str, str]:
        return {portable_text(m, self.root): model_fingerprint(m) for m in self.models}

    def why_stale(self, required: Iterable[str | Path] = ()) -> str | None:
        """None when the outputs are up to date, else the first reason they are not."""
        mf = self.out_dir / MANIFEST_NAME
        if not mf.is_file():
            return "no manifest (first run or interrupted)"
        try:
            m = read_json(mf)
        except (json.JSONDecodeError, OSError):
            return "manifest unreadable"
        missing = [str(r) for r in required if not (self.out_dir / r).exists()]
        if missing:
            return f"output file(s) missing: {missing}"
        if m.get("params_hash") != self.params_hash:
            return "params changed"
        rec = m.get(CACHE_KEY) or {}
        if rec.get("code") != self.code:
            return f"code changed ({', '.join(self.modules)})"
        rec_inputs = rec.get("inputs") or {}
        for p in self.inputs:
            n = self.name(p)
            if n not in rec_inputs:
                return f"new input file {p}"
            if not same_file(p, rec_inputs[n]):
                return f"input file changed: {p}"
        if self.models and (rec.get("models") or {}) != self.model_fps():
            return f"model files changed ({', '.join(self.models)})"
        return None

    def fresh(self, required: Iterable[str | Path] = (), force: bool = False) -> bool:
        """True when the stage may be skipped; logs why it recomputes otherwise."""
        if force:
            log.info("%s: recomputing (forced)", self.stage)
            return False
        reason = self.why_stale(required)
        if reason is None:
            log.info("%s: up to date (%s), skipped", self.stage, self.out_dir)
            return True
        log.info("%s: recomputing: %s", self.stage, reason)
        return False

    def record(self) -> dict:
        """The manifest block (code version, input fingerprints, model fingerprints) to write with the outputs."""
        for p in self.inputs:
            if p not in self._fps:
                self._fps[p] = fingerprint(p)
        if self.models and "models" not in self._fps:
            self._fps["models"] = self.model_fps()
        block = {"code": self.code, "modules": sorted(set(self.modules)),
                 "inputs": {self.name(p): self._fps[p] for p in self.inputs}}
        if self.models:
            block["models"] = self._fps["models"]
        return {CACHE_KEY: block}

    def snapshot(self) -> "StageCache":
        """Fingerprint the inputs now (call before reading them, so later edits are noticed)."""
        self.record()
        return self


def record_stale(manifest: dict, run_dir: Path) -> str | None:
    """Why a stage manifest's own cache record no longer holds for the files and models it names (or None).

    What `gdo-repro run` asks of every stage a notebook wrote: the same recorded input fingerprints and
    model fingerprints the stage itself checks, resolved against the run folder (names are portable).
    """
    rec = manifest.get(CACHE_KEY) or {}
    for name, fp in (rec.get("inputs") or {}).items():
        path = Path(name) if Path(name).is_absolute() else run_dir / name
        if not same_file(path, fp):
            return f"input file changed: {path}"
    for name, fp in (rec.get("models") or {}).items():
        path = name if Path(name).is_absolute() or not (run_dir / name).is_dir() else str(run_dir / name)
        if model_fingerprint(path) != fp:
            return f"model files changed: {path}"
    return None


def upstream_digest(stage_dirs: Iterable[str | Path]) -> str:
    """sha256 (16 hex) of what upstream stages' manifests say they wrote (output checksums, code, params).

    For stages keyed by a single hash string (OFA, subsets): the digest changes exactly when an upstream
    stage rewrote its outputs with other content, or ran other code. A missing manifest counts as such.
    """
    h = hashlib.sha256()
    for d in stage_dirs:
        mf = Path(d) / MANIFEST_NAME
        try:
            m = read_json(mf) if mf.is_file() else {}
        except (json.JSONDecodeError, OSError):
            m = {}
        h.update(json.dumps({"dir": Path(d).name, "params": m.get("params_hash"), "out": m.get("outputs_sha256"),
                             "code": (m.get(CACHE_KEY) or {}).get("code")}, sort_keys=True).encode())
    return h.hexdigest()[:16]


def log_recompute(stage: str, out_dir: str | Path, h: str) -> None:
    """Say why a hash-keyed stage recomputes (its manifest is missing or holds another key)."""
    mf = Path(out_dir) / MANIFEST_NAME
    if not mf.is_file():
        log.info("%s: recomputing: no manifest (first run or interrupted)", stage)
        return
    try:
        old = read_json(mf).get("params_hash")
    except (json.JSONDecodeError, OSError):
        old = None
    why = "output files missing" if old == h else "params, code or upstream outputs changed"
    log.info("%s: recomputing: %s (key %s -> %s)", stage, why, old, h)
