"""train.jsonl lines of a batch of pool rows, built by Arrow string kernels, byte for byte as `json.dumps`.

`training_rows` builds each row as Python objects and the standard library's encoder writes it
(`ensure_ascii=False`, separators ", " and ": ", key order kept). `training_lines` writes the same
bytes for a whole batch at once: every string goes through that encoder's own string escape
(`json.encoder.encode_basestring`) when it holds a character it escapes (a quote, a backslash or a
control character; nothing else is escaped with ensure_ascii=False) and is quoted as it is otherwise;
lists are joined with ", ", integers are Arrow's decimal text (what `int.__repr__` writes). A batch
with anything this does not model (a null, an unknown media kind, a "none" row with media, a column
of another type) returns None and is written row by row. Equality with the row-by-row writer is
tested in tests/test_export.py.
"""
from __future__ import annotations

from json.encoder import encode_basestring

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..trainfile import IMAGE_TOKEN

_ESCAPED = r'[\x{00}-\x{1f}"\\]'   # what encode_basestring changes (ensure_ascii=False)
_KINDS = ("image", "frames", "video_file", "none")
_LS = pa.large_string()


def _join(*parts: str | pa.Array) -> pa.Array:
    """The parts (strings or string arrays) concatenated element-wise, as large_string."""
    return pc.binary_join_element_wise(*(pa.scalar(p, _LS) if isinstance(p, str) else p.cast(_LS) for p in parts),
                                       pa.scalar("", _LS))


def _is_text(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def escaped(arr: pa.Array) -> pa.Array:
    """The text between the quotes of json.dumps(s, ensure_ascii=False), for every (non-null) string."""
    arr = arr.cast(_LS)
    needs = pc.match_substring_regex(arr, _ESCAPED)
    if pc.any(needs).as_py():
        fixed = pa.array([encode_basestring(s)[1:-1] for s in arr.filter(needs).to_pylist()], _LS)
        arr = pc.replace_with_mask(arr, needs, fixed)
    return arr


def json_strings(arr: pa.Array) -> pa.Array:
    """json.dumps(s, ensure_ascii=False) of every (non-null) string."""
    return _join('"', escaped(arr), '"')


def _json_lists(lists: pa.Array, values: pa.Array) -> pa.Array:
    """"[v0, v1, ...]" of each list, `values`: its flat values already as JSON text."""
    offsets = pc.subtract(lists.offsets, lists.offsets[0])
    joined = pc.binary_join(pa.ListArray.from_arrays(offsets, values) if pa.types.is_list(lists.type) else
                            pa.LargeListArray.from_arrays(offsets, values), pa.scalar(", ", _LS))
    return _join("[", joined, "]")


def _flat(lists: pa.Array) -> pa.Array:
    return lists.values.slice(lists.offsets[0].as_py(), lists.offsets[-1].as_py() - lists.offsets[0].as_py())


def _column(table: pa.Table, name: str) -> pa.Array:
    return table.column(name).combine_chunks()


def _modelled(table: pa.Table, extras: list[str]) -> bool:
    """Every column this writer reads is present, of a modelled type and without nulls."""
    need = ["qa_uid", "question", "answer", "media_kind", "media", "frame_indices", *extras]
    if any(c not in table.column_names for c in need):
        return False
    for c in need:
        col = _column(table, c)
        if col.null_count:
            return False
        if c == "media":
            ok = pa.types.is_list(col.type) or pa.types.is_large_list(col.type)
            ok = ok and _is_text(col.type.value_type) and _flat(col).null_count == 0
        elif c == "frame_indices":
            ok = (pa.types.is_list(col.type) or pa.types.is_large_list(col.type)) and \
                pa.types.is_integer(col.type.value_type) and _flat(col).null_count == 0
        else:
            ok = _is_text(col.type)
        if not ok:
            return False
    return "question_raw" not in table.column_names or _is_text(table.column("question_raw").type)


def training_lines(table: pa.Table, prompt_text: str, extras: list[str]) -> pa.Array | None:
    """Each row's JSON line with its newline (large_string), as `json.dumps(training_rows(...)[i])`; None
    when the batch holds something not modelled here (the caller writes it row by row).

    `table`: qa_uid, question, answer, media_kind, media (absolute paths), frame_indices, optional
    question_raw, and the `extras` columns (carried as strings, in that order).
    """
    if not _modelled(table, extras):
        return None
    kind = _column(table, "media_kind")
    known = pc.is_in(kind, pa.array(_KINDS))
    if not pc.all(known).as_py():
        return None
    media, idx = _column(table, "media"), _column(table, "frame_indices")
    n_media = pc.list_value_length(media).to_numpy(zero_copy_only=False)
    n_idx = pc.list_value_length(idx).to_numpy(zero_copy_only=False)
    k = {name: pc.equal(kind, name).to_numpy(zero_copy_only=False) for name in _KINDS}
    if (k["none"] & (n_media > 0)).any():
        return None                                   # media_fields refuses it: the row-by-row writer says why
    question = _column(table, "question")
    if prompt_text == "question_raw" and "question_raw" in table.column_names:
        raw = _column(table, "question_raw")
        use_raw = pc.fill_null(pc.not_equal(raw, ""), False)
        question = pc.if_else(use_raw, raw.cast(_LS), question.cast(_LS))
    n_visual = np.where(k["video_file"], n_idx, np.where(k["none"], 0, n_media))
    prefix = pc.binary_repeat(pa.scalar(IMAGE_TOKEN, _LS), pa.array(n_visual, pa.int64()))
    prefix = pc.if_else(pa.array(n_visual > 0), _join(prefix, "\\n"), pa.scalar("", _LS))  # "<image>" * n + "\\n"
    content = _join('"', prefix, escaped(question), '"')
    media_json = _json_lists(media, json_strings(_flat(media)))
    idx_json = _join("[", _json_lists(idx, _flat(idx).cast(_LS)), "]")
    empty = pa.scalar("[]", _LS)
    images = pc.if_else(pa.array(k["video_file"] | k["none"]), empty, media_json)
    tail = pc.case_when(pc.make_struct(*(pa.array(k[n]) for n in _KINDS)),
                        pa.scalar(', "media_kind": "image"', _LS),
                        _join(', "media_kind": "frames", "frame_indices": ', idx_json),
                        _join(', "media_kind": "video", "videos": ', media_json, ', "frame_indices": ', idx_json),
                        pa.scalar(', "media_kind": "text"', _LS))
    parts = ['{"id": ', json_strings(_column(table, "qa_uid")), ', "messages": [{"role": "user", "content": ', content,
             '}, {"role": "assistant", "content": ', json_strings(_column(table, "answer")), '}], "images": ', images, tail]
    for c in extras:
        parts += [f', "{c}": ', json_strings(_column(table, c))]
    parts.append("}\n")
    return _join(*parts)


def line_bytes(lines: pa.Array) -> memoryview:
    """The UTF-8 bytes of every line, back to back (the string array's data buffer, no copy)."""
    lines = lines.cast(_LS)
    off = np.frombuffer(lines.buffers()[1], dtype=np.int64, count=len(lines) + 1, offset=lines.offset * 8)
    data = lines.buffers()[2]
    return memoryview(data)[int(off[0]):int(off[-1])] if data is not None else memoryview(b"")
