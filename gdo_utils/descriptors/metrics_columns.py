"""Column-wise reading of a release metrics.jsonl: Arrow's JSON parser over blocks of whole lines.

The result is the same as reading the file one `json.loads` per line under the release loader's rules
(`release_metrics.read_item`): every line the fast path cannot decide exactly goes through that rule.
A block (8 MiB of whole lines) is parsed by Arrow only when each of its lines starts with `{`, ends with
`}` and holds no other control character (so one line is one object, and line numbers are row numbers);
A block Arrow refuses (bad JSON, a value of another type, a repeated key, a number out of range, two
objects on a line, a blank line) is halved until Arrow takes the parts or a part has at most SMALL
lines; those go line by line through the record rule, which reports bad lines exactly as before. Inside a parsed block, a row is re-read with `json.loads` when Arrow cannot tell
an absent key from a null one and the rule would (a null `qa_uid` beside an `id`; a null value under
`data_quality_metrics` beside a top-level one), or a value is -0.0 (`json.loads` reads a bare `-0` as 0).

Before Arrow, a block is tried against the one line shape gdo/merge_metrics.py writes (`json.dumps` of
qa_uid, video_uid, the eleven values, data_quality_metrics with the eleven values, cluster_id and
cluster_dist): when every line of the block matches that shape exactly (RE2, one pass over the bytes;
numbers in JSON's grammar with at most 31 integer digits and a three-digit exponent; no bare `-0`,
which `json.loads` reads as the integer 0), the values are the number tokens under
`data_quality_metrics`, cut out at the known separators and parsed by Arrow's correctly rounded
string-to-double cast (`null` and numbers out of range -> missing, as `as_float` has it). Any other block takes the paths above.
"""
from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

BLOCK = 8 << 20
SMALL = 64          # lines: a block Arrow refuses is halved down to this size, then read line by line
_SIMPLE_ID = r"^[!-~]+$"   # printable ASCII without space: already normalised


class Chunk:
    """Rows of one block: ids (a list, or an Arrow string array), line numbers, values (NaN = missing) and
    the bad lines in line order."""

    def __init__(self, uids: list[str] | pa.Array, lines: np.ndarray, values: np.ndarray, bad: list[dict]):
        self.uids, self.lines, self.values, self.bad = uids, lines, values, bad


def _schema(fields: tuple[str, ...]) -> pa.Schema:
    nums = [(k, pa.float64()) for k in fields]
    return pa.schema([("qa_uid", pa.string()), ("id", pa.string()), *nums,
                      ("data_quality_metrics", pa.struct(nums))])


_INT = r"-?[1-9][0-9]{0,30}"
_EXP = r"[eE][+-]?[0-9]{1,3}"
_NUM = rf"(?:(?:{_INT}|-?0)(?:\.[0-9]+(?:{_EXP})?|{_EXP})|{_INT}|0)"     # no bare -0
_VALUE = f"(?:{_NUM}|null)"
_MERGED_SEPARATORS = 52   # spaces of a merged line: after each of its 27 colons and 25 of its commas


def merged_shape(fields: tuple[str, ...]) -> str:
    """RE2 pattern of one line exactly as gdo/merge_metrics.py writes it (ids without space, quote or
    backslash; every value a JSON number or null)."""
    top = "".join(f', "{k}": {_VALUE}' for k in fields)
    inner = ", ".join(f'"{k}": {_VALUE}' for k in fields)
    return ('^\\{"qa_uid": "[!#-\\[\\]-~]+", "video_uid": "[^"\\\\ \\x00-\\x1f]*"' + top + ', "data_quality_metrics": \\{'
            + inner + f', "cluster_id": {_VALUE}, "cluster_dist": {_VALUE}' + "\\}\\}\n?$")


def _merged(buf: bytes, first_line: int, fields: tuple[str, ...], negative_missing: str) -> Chunk | None:
    """The block's rows when every line has the merged shape (values from data_quality_metrics), else None."""
    if len(fields) != 11:
        return None                       # the separator count below is that of the release's eleven values
    a = np.frombuffer(buf, dtype=np.uint8)
    starts = np.flatnonzero(a == 0x0A) + 1
    starts = np.concatenate([[0], starts[:-1] if len(starts) and starts[-1] == len(a) else starts]).astype(np.int64)
    n = len(starts)
    lines = pa.LargeStringArray.from_buffers(n, pa.py_buffer(np.append(starts, len(a))), pa.py_buffer(buf))
    try:
        lines.validate(full=True)         # UTF-8 (else the record rule names the line)
    except pa.ArrowInvalid:
        return None
    if not len(a) or not pc.all(pc.match_substring_regex(lines, merged_shape(fields))).as_py():
        return None
    a = np.frombuffer(buf, dtype=np.uint8)
    spaces = np.flatnonzero(a == 0x20)
    if len(spaces) != n * _MERGED_SEPARATORS:
        return None
    sp = spaces.reshape(n, _MERGED_SEPARATORS)
    # the id: after `{"qa_uid": "` up to `", `; value i under data_quality_metrics: after the space of its
    # colon (27 + 2i) up to the comma before the next space (28 + 2i)
    id_lo, id_hi = starts + 12, sp[:, 1] - 2
    lo = sp[:, 27:27 + 2 * len(fields):2] + 1
    hi = sp[:, 28:28 + 2 * len(fields):2] - 1
    uids = _slices(buf, id_lo, id_hi)
    lo, hi = lo.ravel(), hi.ravel()
    null = a[lo] == 0x6E                  # "null"
    vals = np.full(n * len(fields), np.nan)
    try:
        vals[~null] = pc.cast(_slices(buf, lo[~null], hi[~null]), pa.float64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    vals[~np.isfinite(vals)] = np.nan     # 1e400: float() gives inf, which the rule reads as missing
    vals = vals.reshape(n, len(fields))
    j = fields.index(negative_missing)
    vals[vals[:, j] < 0, j] = np.nan      # the release writes -1 when SC was not computed
    return Chunk(uids, np.arange(first_line, first_line + n, dtype=np.int64), vals, [])


def _slices(buf: bytes, lo: np.ndarray, hi: np.ndarray) -> pa.Array:
    """buf[lo[i]:hi[i]] for increasing, non-overlapping slices, as one string array (one copy of the slices)."""
    edges = np.empty(2 * len(lo) + 1, dtype=np.int64)
    edges[0:-1:2], edges[1::2], edges[-1] = lo, hi, hi[-1] if len(hi) else 0
    both = pa.LargeStringArray.from_buffers(len(edges) - 1, pa.py_buffer(edges), pa.py_buffer(buf))
    return both.take(pa.array(np.arange(0, len(edges) - 1, 2)))


def iter_blocks(path: Path, block: int) -> Iterator[bytes]:
    """The file as blocks of whole lines (each ends after a newline, except possibly the last)."""
    with path.open("rb") as f:
        rest = b""
        while True:
            data = f.read(block)
            if not data:
                break
            data = rest + data
            cut = data.rfind(b"\n") + 1
            if cut == 0:
                rest = data
                continue
            rest = data[cut:]
            yield data[:cut]
        if rest:
            yield rest


def _line_bounds(buf: bytes) -> tuple[np.ndarray, np.ndarray] | None:
    """Start and end (without the newline) of each line when every line is one `{...}`, else None."""
    a = np.frombuffer(buf, dtype=np.uint8)
    ctrl = a < 0x20
    nl = np.flatnonzero(a == 0x0A)
    if int(ctrl.sum()) != len(nl):
        return None                       # a tab, a carriage return, a NUL ... : the record rule decides
    ends = nl if (len(a) and a[-1] == 0x0A) else np.append(nl, len(a))
    starts = np.concatenate([[0], nl + 1])[:len(ends)]
    if not len(ends) or np.any(ends <= starts):
        return None                       # an empty line
    if np.any(a[starts] != 0x7B) or np.any(a[ends - 1] != 0x7D):
        return None
    return starts, ends


def _records(text: str, first_line: int, width: int, read_item: Callable) -> tuple[Chunk, int, int]:
    """The record rule over a block's text, read as a text file reads it (universal newlines, blank lines
    skipped); also the block's line count and its non-blank line count."""
    uids: list[str] = []
    lines: list[int] = []
    vals: list[list[float]] = []
    bad: list[dict] = []
    count = nonblank = 0
    for count, line in enumerate(io.StringIO(text, newline=None), start=1):
        if not line.strip():
            continue
        nonblank += 1
        got = read_item(line)
        if isinstance(got, str):
            bad.append({"line": first_line + count - 1, "reason": got})
        else:
            uids.append(got[0])
            lines.append(first_line + count - 1)
            vals.append(got[1])
    chunk = Chunk(uids, np.asarray(lines, dtype=np.int64), np.asarray(vals, dtype=np.float64).reshape(-1, width), bad)
    return chunk, count, nonblank


def _arrow(buf: bytes, bounds: tuple[np.ndarray, np.ndarray], first_line: int, fields: tuple[str, ...],
           read_item: Callable, normalize: Callable, negative_missing: str) -> Chunk | None:
    """Arrow's parse of a block of one-object lines, or None when Arrow refuses it."""
    starts, ends = bounds
    try:
        buf.decode("utf-8")               # Arrow keeps invalid UTF-8 in fields it skips; a text file would not
        t = pj.read_json(io.BytesIO(buf), read_options=pj.ReadOptions(use_threads=False, block_size=len(buf) + 1),
                         parse_options=pj.ParseOptions(explicit_schema=_schema(fields),
                                                       unexpected_field_behavior="ignore"))
    except (pa.ArrowInvalid, UnicodeDecodeError):
        return None
    n = t.num_rows
    if n != len(starts):
        return None                       # two objects on a line
    t = t.combine_chunks()

    def col(name: str) -> pa.Array:
        return t.column(name).chunk(0)

    qa, idc, dqm = col("qa_uid"), col("id"), col("data_quality_metrics")
    qa_null = qa.is_null().to_numpy(zero_copy_only=False)
    reread = qa_null & idc.is_valid().to_numpy(zero_copy_only=False)     # absent or null qa_uid: json decides
    has_dqm = dqm.is_valid().to_numpy(zero_copy_only=False)
    vals = np.empty((n, len(fields)), dtype=np.float64)
    for j, key in enumerate(fields):
        top = col(key).to_numpy(zero_copy_only=False).astype(np.float64)
        nested = pc.struct_field(dqm, key).to_numpy(zero_copy_only=False).astype(np.float64)
        reread |= has_dqm & np.isnan(nested) & ~np.isnan(top)           # absent or null under the object
        vals[:, j] = np.where(has_dqm, nested, top)
    reread |= ((vals == 0) & np.signbit(vals)).any(axis=1)             # Arrow reads a bare -0 as -0.0, json as 0
    vals[~np.isfinite(vals)] = np.nan
    j = fields.index(negative_missing)
    vals[vals[:, j] < 0, j] = np.nan      # the release writes -1 when SC was not computed
    raw = pc.if_else(qa_null, idc, qa)
    simple = pc.fill_null(pc.match_substring_regex(raw, _SIMPLE_ID), False).to_numpy(zero_copy_only=False)
    uids = raw.to_pylist()
    line_no = np.arange(first_line, first_line + n, dtype=np.int64)
    bad: list[dict] = []
    keep = np.ones(n, dtype=bool)
    for i in np.flatnonzero(reread | ~simple):
        got = read_item(buf[starts[i]:ends[i] + 1].decode("utf-8")) if reread[i] else normalize(uids[i])
        if isinstance(got, tuple):
            uids[i], vals[i] = got[0], got[1]
        elif reread[i] or not got:
            keep[i] = False
            bad.append({"line": int(line_no[i]), "reason": got or "no qa_uid / id"})
        else:
            uids[i] = got
    if not keep.all():
        uids = [u for u, k in zip(uids, keep) if k]
    return Chunk(uids, line_no[keep], vals[keep], bad)


def _block(buf: bytes, line: int, path: Path, fields: tuple[str, ...], read_item: Callable, normalize: Callable,
           negative_missing: str, arrow: bool) -> tuple[list[Chunk], int, int]:
    """One block as Chunks (halved until Arrow takes a part or the part is small), its line and non-blank counts."""
    chunk = _merged(buf, line, fields, negative_missing) if arrow else None
    if chunk is not None:
        return [chunk], len(chunk.lines), len(chunk.lines)
    bounds = _line_bounds(buf) if arrow else None
    chunk = None if bounds is None else _arrow(buf, bounds, line, fields, read_item, normalize, negative_missing)
    if chunk is not None:
        return [chunk], len(bounds[0]), len(bounds[0])
    newlines = np.flatnonzero(np.frombuffer(buf, dtype=np.uint8) == 0x0A)
    if arrow and len(newlines) > SMALL:
        cut = int(newlines[len(newlines) // 2]) + 1
        left, n_left, seen_left = _block(buf[:cut], line, path, fields, read_item, normalize, negative_missing, arrow)
        right, n_right, seen_right = _block(buf[cut:], line + n_left, path, fields, read_item, normalize,
                                            negative_missing, arrow)
        return left + right, n_left + n_right, seen_left + seen_right
    try:
        text = buf.decode("utf-8")
    except UnicodeDecodeError as exc:
        at = line + buf[:exc.start].count(b"\n")
        raise ValueError(f"{path}: line {at}: not UTF-8 text ({exc.reason})") from exc
    chunk, count, seen = _records(text, line, len(fields), read_item)
    return [chunk], count, seen


def read_columns(path: Path, fields: tuple[str, ...], read_item: Callable, normalize: Callable,
                 negative_missing: str, *, arrow: bool = True, block: int | None = None) -> tuple[list[Chunk], int]:
    """Every block of the file as Chunks, and the number of non-blank lines (arrow=False: the record rule only)."""
    chunks: list[Chunk] = []
    line = 1
    nonblank = 0
    for buf in iter_blocks(path, block or BLOCK):
        got, count, seen = _block(buf, line, path, fields, read_item, normalize, negative_missing, arrow)
        chunks += got
        nonblank += seen
        line += count
    return chunks, nonblank
