"""Fast path of the JSONL readers: a block of lines -> kept records and their pairs with Arrow compute.

Arrow's JSON reader parses a block of lines against a fixed schema (ids, sources, frame lists and
messages as strings), then pair detection, media-token stripping and whitespace collapsing run as
Arrow/numpy kernels over every message of the block at once. The fast path only takes what it can
decide exactly as the record-at-a-time reader (`reader.FileReader`) would: a block that is not
exactly one orjson-valid object per line raises `FastPathMiss` (the caller splits it), and every
record that fails a quick check (odd id, missing or odd messages, unknown role, no kept pair, a
question with both "<" and non-ASCII text, missing or odd media, a "~" path) comes back in `slow` for
the record-at-a-time reader, so quarantine reasons stay exact. Equality with that reader is tested
in tests/test_pool_fast.py.
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from ..media import MediaError, uniform_indices
from .paths import MediaResolver

# Python's whitespace (str.isspace, what str.split()/str.strip() use); tests check it equals the computed set
PY_WHITESPACE = ("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007"
                 "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")
_WS_RUN = "[" + "".join(f"\\x{{{ord(c):x}}}" for c in PY_WHITESPACE) + "]+"
_WS_ODD = "[" + "".join(f"\\x{{{ord(c):x}}}" for c in PY_WHITESPACE if c != " ") + "]|  |^ | $"  # not collapsed yet
_MEDIA_RE = "(?i)<(?:image|video|audio)>"  # text.MEDIA_TOKEN_RE; applied only to ASCII text (same matches)
_ROLES = pa.array(["user", "human", "assistant", "gpt", "system"])  # codes 0-1 user, 2-3 assistant, 4 system
_MSG = pa.list_(pa.struct([("role", pa.string()), ("from", pa.string()), ("content", pa.string()),
                           ("value", pa.string())]))
_FRAMES = pa.list_(pa.string())
SCHEMAS = {
    "onevision": pa.schema([("id", pa.string()), ("data_source", pa.string()), ("images", _FRAMES),
                            ("messages", _MSG), ("conversations", _MSG)]),
    "llava_video": pa.schema([("id", pa.string()), ("video_id", pa.string()), ("data_source", pa.string()),
                              ("images", _FRAMES), ("frames", _FRAMES), ("messages", _MSG), ("conversations", _MSG)]),
}
REC_SCHEMA = pa.schema([("rid", pa.string()), ("line", pa.int64()), ("record_index", pa.int64()),
                        ("video_id", pa.string()), ("source", pa.string()), ("media_kind", pa.string()),
                        ("media", pa.list_(pa.string())), ("frame_indices", pa.list_(pa.int32())),
                        ("n_frames_total", pa.int32())])
PAIR_SCHEMA = pa.schema([("owner", pa.int32()), ("turn", pa.int32()), ("question", pa.string()),
                         ("question_raw", pa.string()), ("answer", pa.string())])


class FastPathMiss(ValueError):
    """The block is not exactly one orjson-valid JSON object per line under the fast schema."""


@dataclass
class FastBlock:
    """Kept records of a block (REC_SCHEMA), their pairs (PAIR_SCHEMA), counts and what the fast path left."""

    rec: pa.Table
    pairs: pa.Table
    empty_pairs: int = 0
    orphan_assistant_turns: int = 0
    skipped_system_turns: int = 0
    slow: list[int] = field(default_factory=list)        # block positions for the record-at-a-time reader
    rejected: list[tuple] = field(default_factory=list)  # (block position, rid, reason, field, detail): media checks


@lru_cache(maxsize=4096)
def _indices(n: int, t: int) -> tuple[int, ...]:
    return tuple(uniform_indices(n, t))


def collapse(arr: pa.Array) -> pa.Array:
    """" ".join(s.split()) for every string (Python's whitespace class); only the strings that need it change."""
    needs = pc.fill_null(pc.match_substring_regex(arr, _WS_ODD), False)
    if not pc.any(needs).as_py():
        return arr
    todo = arr.filter(needs)
    ascii_ = pc.string_is_ascii(todo)
    if pc.all(ascii_).as_py():
        fixed = _collapse_ascii(todo)
    else:
        fixed = pc.utf8_trim(pc.replace_substring_regex(todo, _WS_RUN, " "), characters=" ")
        fixed = pc.replace_with_mask(fixed, ascii_, _collapse_ascii(todo.filter(ascii_)))
    return pc.replace_with_mask(arr, needs, fixed)


_ASCII_WS = np.zeros(256, dtype=bool)
_ASCII_WS[[ord(c) for c in PY_WHITESPACE if ord(c) < 128]] = True


def _collapse_ascii(arr: pa.Array) -> pa.Array:
    """collapse() of ASCII strings over the byte buffer: whitespace runs -> one space, none at either end."""
    arr = arr.cast(pa.large_string())
    off = np.frombuffer(arr.buffers()[1], dtype=np.int64, count=len(arr) + 1, offset=arr.offset * 8)
    buf = arr.buffers()[2]
    data = (np.frombuffer(buf, dtype=np.uint8) if buf is not None else np.zeros(0, np.uint8))[off[0]:off[-1]]
    off = off - off[0]
    ws = _ASCII_WS[data]
    run_start = np.ones(len(data), dtype=bool)         # not preceded by whitespace of the same string
    run_start[1:] = ~ws[:-1]
    run_start[off[:-1][off[:-1] < len(data)]] = False  # leading whitespace never survives
    solid = np.flatnonzero(~ws)
    last = np.searchsorted(solid, off[1:], side="left") - 1   # last non-whitespace byte of each string
    last = np.where(last >= 0, solid[np.maximum(last, 0)], -1) if len(solid) else np.full(len(arr), -1)
    last = np.where(last >= off[:-1], last, -1)
    # a whitespace byte survives (as " ") when it starts a run that ends before the string's last solid byte
    keep = ~ws | (run_start & (np.arange(len(data)) < np.repeat(last, np.diff(off))))
    out = np.where(ws, np.uint8(32), data)[keep]
    new_off = np.concatenate([[0], np.cumsum(keep)])[off].astype(np.int64)
    return pa.LargeStringArray.from_buffers(len(arr), pa.py_buffer(new_off), pa.py_buffer(out.tobytes())).cast(pa.string())


def _either(a: pa.Array, b: pa.Array) -> pa.Array:
    """a where it is not null, else b (lists; skips the copy when one side decides everything)."""
    if a.null_count == 0 or b.null_count == len(b):
        return a
    return pc.if_else(pc.is_null(a), b, a)


def valid_utf8(data: bytes) -> bool:
    """True when `data` decodes as UTF-8 (Python's strict rule: no surrogates, overlongs or code points
    above U+10FFFF), checked by Arrow's validator over the buffer instead of building a Python str."""
    arr = pa.Array.from_buffers(pa.large_string(), 1, [None, pa.py_buffer(np.array([0, len(data)], dtype=np.int64)),
                                                       pa.py_buffer(data)])
    try:
        arr.validate(full=True)
    except pa.ArrowInvalid:
        return False
    return True


def parse_block(data: bytes, n: int, fmt: str) -> pa.Table:
    """n JSONL lines (one record each) -> Arrow table under the format's schema; FastPathMiss otherwise."""
    # Arrow accepts NaN/Infinity, a BOM, several objects on a line and invalid UTF-8 where orjson does not
    if b"NaN" in data or b"Infinity" in data or b"\xef\xbb\xbf" in data:
        raise FastPathMiss("NaN/Infinity/BOM")
    if not valid_utf8(data):
        raise FastPathMiss("invalid UTF-8")
    try:
        tab = pj.read_json(io.BytesIO(data), read_options=pj.ReadOptions(use_threads=False, block_size=1 << 22),
                           parse_options=pj.ParseOptions(explicit_schema=SCHEMAS[fmt], unexpected_field_behavior="ignore"))
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        raise FastPathMiss(str(exc)) from None
    if tab.num_rows != n:
        raise FastPathMiss("rows != lines")
    return tab.combine_chunks()


def _col(tab: pa.Table, name: str) -> pa.Array:
    return tab.column(name).combine_chunks()


def _absolute(paths: pa.Array, res: MediaResolver) -> pa.Array:
    """MediaResolver.path for paths that do not start with "~" (absolute kept, others joined to the root)."""
    joined = pc.binary_join_element_wise(pa.scalar(res._root_s), paths, "")
    return pc.if_else(pc.starts_with(paths, "/"), paths, joined)


def _bincount(idx: np.ndarray, n: int, weights: np.ndarray | None = None) -> np.ndarray:
    return np.bincount(idx, weights=weights, minlength=n).astype(np.int64)


def read_block(tab: pa.Table, lines: np.ndarray, first_index: int, fmt: str, res: MediaResolver, t: int,
               fallback_source: str) -> FastBlock:
    """Records of a parsed block -> FastBlock (records the fast path cannot decide exactly go to `slow`)."""
    n = tab.num_rows
    slow = np.zeros(n, dtype=bool)
    rid = _col(tab, "id")
    slow |= ~pc.fill_null(pc.not_equal(pc.utf8_trim(rid, characters=PY_WHITESPACE), ""), False).to_numpy(zero_copy_only=False)
    msgs = _col(tab, "messages")
    msgs = _either(msgs, _col(tab, "conversations"))
    slow |= pc.is_null(msgs).to_numpy(zero_copy_only=False)
    flat = pc.list_flatten(msgs)
    parent = pc.list_parent_indices(msgs).to_numpy().astype(np.int64)
    role = pc.coalesce(pc.struct_field(flat, "role"), pc.struct_field(flat, "from"))
    text = pc.coalesce(pc.struct_field(flat, "content"), pc.struct_field(flat, "value"), pa.scalar(""))
    code = pc.index_in(pc.ascii_lower(role), _ROLES)
    bad = pc.or_(pc.is_null(code), pc.is_null(flat)).to_numpy(zero_copy_only=False)
    slow |= _bincount(parent[bad], n) > 0
    code = pc.fill_null(code, -1).to_numpy().astype(np.int8)
    system = code == 4
    ns = np.flatnonzero(~system)                    # messages that touch the pending question, in order
    c_ns, p_ns = code[ns], parent[ns]
    is_user = (c_ns == 0) | (c_ns == 1)
    is_asst = (c_ns == 2) | (c_ns == 3)
    prev_user = np.zeros(len(ns), dtype=bool)
    prev_user[1:] = is_user[:-1] & (p_ns[1:] == p_ns[:-1])
    pair_at = np.flatnonzero(is_asst & prev_user)
    a_pos, u_pos = ns[pair_at], ns[pair_at - 1]
    pair_parent = parent[a_pos]
    orphans = _bincount(p_ns[is_asst & ~prev_user], n)
    systems = _bincount(parent[system], n)
    q_text = text.take(pa.array(u_pos))
    odd = pc.and_(pc.match_substring(q_text, "<"), pc.invert(pc.string_is_ascii(q_text))).to_numpy(zero_copy_only=False)
    slow |= _bincount(pair_parent[odd], n) > 0
    q_raw = pc.utf8_trim(pc.replace_substring_regex(q_text, _MEDIA_RE, ""), characters=PY_WHITESPACE)
    q = collapse(q_raw)
    a = collapse(text.take(pa.array(a_pos)))
    empty = pc.or_(pc.equal(q, ""), pc.equal(a, "")).to_numpy(zero_copy_only=False)
    empties = _bincount(pair_parent[empty], n)
    slow |= _bincount(pair_parent[~empty], n) == 0       # no kept pair: empty_turns, decided by the slow reader
    media_kind, media, idx, n_total, flat_paths = _media(tab, fmt, t, slow)
    if flat_paths is not None:  # "~" paths are expanded by MediaResolver.path (slow reader)
        tilde = pc.starts_with(flat_paths[0], "~").to_numpy(zero_copy_only=False)
        slow |= _bincount(flat_paths[1][tilde], n) > 0
    keep = ~slow
    rejected = _check_media(res, media, idx, keep, rid) if res.check else []
    for pos, *_ in rejected:
        keep[pos] = False
    keep_pairs = keep[pair_parent] & ~empty
    new_pos = np.cumsum(keep) - 1
    owner = new_pos[pair_parent[keep_pairs]].astype(np.int32)
    starts = np.searchsorted(owner, owner, side="left")
    turn = (np.arange(len(owner)) - starts).astype(np.int32)
    sel = pa.array(np.flatnonzero(keep))
    vid = _col(tab, "video_id") if "video_id" in tab.column_names else pa.nulls(n, pa.string())
    vid = pc.if_else(pc.equal(vid, ""), pa.scalar(None, pa.string()), vid)
    src = _col(tab, "data_source")
    src = pc.if_else(pc.fill_null(pc.not_equal(src, ""), False), src, pa.scalar(fallback_source))
    abs_media = _absolute_lists(media, res)
    rec = pa.table([rid.take(sel), pa.array(lines[keep], pa.int64()),
                    pa.array(first_index + np.flatnonzero(keep), pa.int64()), vid.take(sel), src.take(sel),
                    pa.array([media_kind] * int(keep.sum()), pa.string()), abs_media.take(sel), idx.take(sel),
                    pa.array(n_total, pa.int32()).take(sel)], schema=REC_SCHEMA)
    kp = pa.array(np.flatnonzero(keep_pairs))
    pairs = pa.table([pa.array(owner), pa.array(turn), q.take(kp), q_raw.take(kp), a.take(kp)], schema=PAIR_SCHEMA)
    return FastBlock(rec, pairs, int(empties[keep].sum()), int(orphans[keep].sum()), int(systems[keep].sum()),
                     np.flatnonzero(slow).tolist(), rejected)


def _media(tab: pa.Table, fmt: str, t: int, slow: np.ndarray):
    """(media_kind, media lists (relative), frame-index lists, n_total, (flat kept paths, their record)); marks `slow`."""
    n = tab.num_rows
    frames = _col(tab, "images")
    if fmt == "llava_video":
        frames = _either(frames, _col(tab, "frames"))
    lens = pc.fill_null(pc.list_value_length(frames), 0).to_numpy().astype(np.int64)
    slow |= lens == 0                               # no image / no frame list: the slow reader decides
    offsets = frames.offsets.to_numpy()[:n].astype(np.int64)
    if fmt == "llava_video":
        per_n = {int(k): np.asarray(_indices(int(k), t), dtype=np.int64) for k in np.unique(lens)}
        chosen = [per_n[k] for k in lens.tolist()]
        counts = np.fromiter((len(c) for c in chosen), dtype=np.int64, count=n)
        local = np.concatenate(chosen) if chosen else np.zeros(0, dtype=np.int64)
        kind, n_total = "frames", lens
    else:
        counts = np.minimum(lens, 1)
        local = np.zeros(int(counts.sum()), dtype=np.int64)
        kind, n_total = "image", np.minimum(lens, 1)
    owner = np.repeat(np.arange(n), counts)
    values = frames.values.take(pa.array(offsets[owner] + local))
    slow |= _bincount(owner[pc.is_null(values).to_numpy(zero_copy_only=False)], n) > 0
    list_offsets = pa.array(np.concatenate([[0], np.cumsum(counts)]).astype(np.int32))
    media = pa.ListArray.from_arrays(list_offsets, pc.fill_null(values, ""))
    idx = pa.ListArray.from_arrays(list_offsets, pa.array(local, pa.int32()))
    return kind, media, idx, n_total, (pc.fill_null(values, ""), owner)


def _absolute_lists(media: pa.ListArray, res: MediaResolver) -> pa.ListArray:
    return pa.ListArray.from_arrays(media.offsets, _absolute(media.values, res))


def _check_media(res: MediaResolver, media: pa.ListArray, idx: pa.ListArray, keep: np.ndarray,
                 rid: pa.Array) -> list[tuple]:
    """Decode-check the kept media of the kept records (pool.check_media), as the per-format readers do."""
    out = []
    paths, frame_idx = _absolute_lists(media, res).to_pylist(), idx.to_pylist()
    for pos in np.flatnonzero(keep):
        for j, p in zip(frame_idx[pos], paths[pos]):
            try:
                res.check_image(p)
            except MediaError as exc:
                out.append((int(pos), rid[int(pos)].as_py(), exc.reason, f"images[{j}]", exc.path))
                break
    return out
