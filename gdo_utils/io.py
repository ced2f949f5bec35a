"""I/O at the edges: atomic writes, Parquet/JSON/JSONL helpers, and the run manifest.

Every writer goes through a temp file in the same directory followed by `os.replace`, so a killed
process never leaves a half-written output behind. Parquet is written without timestamps or
pandas index so the same table gives the same bytes.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable, Iterator

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

MANIFEST_NAME = "manifest.json"
_UMASK = os.umask(0)
os.umask(_UMASK)
TRACKED_PACKAGES = (
    "gdo-utils", "torch", "torchvision", "transformers", "accelerate", "open_clip_torch", "faiss-cpu",
    "numpy", "pandas", "pyarrow", "decord", "opencv-python-headless", "papermill", "pydantic",
)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temp path beside `path`; on success rename it over `path` (atomic on POSIX)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_UMASK)  # mkstemp makes 0600; outputs are shared files
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_bytes(path: str | Path, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | Path, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def to_json_text(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, default=_json_default) + "\n"


def _json_default(o: Any) -> Any:
    import numpy as np

    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (Path, _dt.datetime, _dt.date)):
        return str(o)
    if isinstance(o, (set, frozenset)):
        return sorted(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def write_json(path: str | Path, obj: Any) -> Path:
    return write_text(path, to_json_text(obj))


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _jsonl_encoder() -> json.JSONEncoder:
    return json.JSONEncoder(ensure_ascii=False, default=_json_default)  # .encode(row) = json.dumps(row, ...)


def write_jsonl(path: str | Path, rows: Iterable[dict]) -> Path:
    """Write one compact JSON object per line (key order kept as given, so output is deterministic)."""
    encode = _jsonl_encoder().encode
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(encode(row))
                fh.write("\n")
    return Path(path)


def jsonl_bytes(rows: Iterable[dict]) -> bytes:
    """Rows as write_jsonl writes them (one json.dumps(row, ensure_ascii=False) per line), UTF-8."""
    encode = _jsonl_encoder().encode
    return "".join([encode(r) + "\n" for r in rows]).encode("utf-8")


def write_chunks(path: str | Path, chunks: Iterable[bytes | memoryview]) -> Path:
    """Atomically write byte chunks one after another (a large file never held whole)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            for chunk in chunks:
                fh.write(chunk)
    return Path(path)


def write_parquet(path: str | Path, df: pd.DataFrame | pa.Table) -> Path:
    """Atomic, deterministic Parquet (no pandas index, no creation timestamps in the schema)."""
    table = df if isinstance(df, pa.Table) else pa.Table.from_pandas(df, preserve_index=False)
    table = table.replace_schema_metadata(None)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd", write_statistics=True)
    return Path(path)


def read_parquet(path: str | Path, columns: list[str] | None = None) -> pd.DataFrame:
    return pq.read_table(path, columns=columns).to_pandas()


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


# ----------------------------------------------------------------------------- manifest
def git_revision(cwd: str | Path | None = None) -> str | None:
    """Current git commit (with '-dirty' when the tree has changes), or None outside a repo."""
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10)
        if rev.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, timeout=10)
        return rev.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def package_versions(names: Iterable[str] = TRACKED_PACKAGES) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            out[n] = None
    return out


def write_manifest(out_dir: str | Path, *, stage: str, params_hash: str, params_file: str | None = None,
                   wall_time_s: float | None = None, outputs: Iterable[str | Path] = (),
                   extra: dict | None = None) -> Path:
    """Write manifest.json beside a stage's outputs: params hash, versions, git revision, time, checksums.

    The stage-skip logic compares `params_hash`; checksums let a reader verify published files.
    """
    out_dir = Path(out_dir)
    files = {}
    for f in outputs:
        fp = Path(f)
        if fp.is_file():
            files[str(fp.relative_to(out_dir) if fp.is_relative_to(out_dir) else fp)] = sha256_file(fp)
    manifest = {
        "stage": stage,
        "params_hash": params_hash,
        "params_file": params_file,
        "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "wall_time_s": None if wall_time_s is None else round(float(wall_time_s), 3),
        "git_revision": git_revision(Path(__file__).resolve().parent),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "versions": package_versions(),
        "outputs_sha256": files,
        **(extra or {}),
    }
    return write_json(out_dir / MANIFEST_NAME, manifest)


def manifest_matches(out_dir: str | Path, params_hash: str, required: Iterable[str | Path] = ()) -> bool:
    """True when out_dir has a manifest with this params hash and every required file exists."""
    out_dir = Path(out_dir)
    mf = out_dir / MANIFEST_NAME
    if not mf.is_file():
        return False
    try:
        if read_json(mf).get("params_hash") != params_hash:
            return False
    except (json.JSONDecodeError, OSError):
        return False
    return all((out_dir / r).exists() for r in required)
