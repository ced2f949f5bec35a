import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from gdo_utils import shards
from gdo_utils.media import MediaError, load_frames, probe_video, read_video_frames, uniform_indices


@pytest.mark.parametrize("n,t,expected", [
    (5, 32, [0, 1, 2, 3, 4]),
    (40, 32, [round(i * 39 / 31) for i in range(32)]),
    (100, 4, [0, 33, 66, 99]),
    (0, 32, []),
    (7, 1, [0]),
])
def test_uniform_indices(n, t, expected):
    assert uniform_indices(n, t) == expected


def test_uniform_indices_cover_whole_clip():
    idx = uniform_indices(1000, 32)
    assert idx[0] == 0 and idx[-1] == 999 and len(set(idx)) == 32 and idx == sorted(idx)


def test_video_decode_with_true_timestamps(media_dir):
    info = probe_video(media_dir / "v2.mp4")
    assert info.n_frames == 12 and info.fps == pytest.approx(8.0)
    frames, ts, idx = read_video_frames(media_dir / "v2.mp4", max_frames=4)
    assert frames.shape == (4, 32, 32, 3) and idx == [0, 4, 7, 11]
    assert np.allclose(ts, np.array(idx) / 8.0, atol=1e-3)


def test_corrupt_and_missing_media_raise_typed_errors(media_dir):
    with pytest.raises(MediaError) as exc:
        probe_video(media_dir / "bad.mp4")
    assert exc.value.reason == "unreadable_media"
    with pytest.raises(MediaError) as exc:
        load_frames([str(media_dir / "nope.jpg")])
    assert exc.value.reason == "missing_media"


def test_frame_folder_uniform(media_dir):
    frames = load_frames([str(media_dir / "frames" / "v1")], max_frames=8)
    assert frames.shape[0] == 8


def test_stable_hash_is_process_independent():
    assert shards.stable_hash("vv::abc::t0") == int.from_bytes(
        __import__("hashlib").sha1(b"vv::abc::t0").digest()[:8], "big")


def _work(batch):
    return [{"id": i, "value": len(i)} for i in batch]


@pytest.mark.parametrize("world", [1, 2, 3])
def test_sharded_run_any_world_size_merges_to_same_table(tmp_path, world):
    ids = [f"x{i:03d}" for i in range(50)]
    ref_dir = tmp_path / "ref"
    shards.run_sharded(ids, _work, ref_dir, id_col="id", batch_size=4, part_rows=7, rank=0, world_size=1, progress=False)
    ref = shards.merge_parts(ref_dir, ids, "id")
    d = tmp_path / f"w{world}"
    for r in range(world):
        shards.run_sharded(ids, _work, d, id_col="id", batch_size=4, part_rows=7, rank=r, world_size=world, progress=False)
    pd.testing.assert_frame_equal(shards.merge_parts(d, ids, "id"), ref)


def test_resume_after_partial_run_and_world_size_change(tmp_path):
    ids = [f"x{i:03d}" for i in range(40)]
    d = tmp_path / "parts"
    calls = []

    def work(batch):
        calls.extend(batch)
        return _work(batch)

    # a first run with world size 2 where only rank 0 finished
    shards.run_sharded(ids, work, d, id_col="id", batch_size=5, part_rows=5, rank=0, world_size=2, progress=False)
    first = set(calls)
    calls.clear()
    rep = shards.run_sharded(ids, work, d, id_col="id", batch_size=5, part_rows=5, rank=0, world_size=1, progress=False)
    # the second run's batches are cut as a run from scratch cuts them: done ids that share a batch with a
    # to-do id are computed again (counted) but not written twice
    assert set(calls) >= set(ids) - first and rep["skipped_done"] == len(first)
    assert rep["processed"] == len(ids) - len(first) and rep["recomputed_for_batch"] == len(calls) - rep["processed"]
    merged = shards.merge_parts(d, ids, "id")
    assert list(merged["id"]) == sorted(ids)


def _batch_dependent(batch):
    """A result that depends on the whole batch, as padded or BLAS-blocked maths can (one float ulp)."""
    return [{"id": i, "value": f"{i}|{','.join(batch)}"} for i in batch]


@pytest.mark.parametrize("world", [1, 2])
def test_recomputed_and_resumed_rows_equal_a_run_from_scratch_bit_for_bit(tmp_path, world):
    """An edited row (its key changed) and a killed run's missing parts are computed in the batch a run from
    scratch gives them, so the merged table equals the clean one exactly, whatever the batch maths."""
    ids = [f"x{i:03d}" for i in range(23)]
    keys = {i: "k1" for i in ids}
    clean = tmp_path / "clean"
    for r in range(world):
        shards.prepare_parts(clean, "settings", row_keys=keys)
        shards.run_sharded(ids, _batch_dependent, clean, id_col="id", batch_size=4, part_rows=3, rank=r,
                           world_size=world, progress=False, row_keys=keys)
    ref = shards.merge_parts(clean, ids, "id")
    d = tmp_path / "edited"
    for r in range(world):
        shards.prepare_parts(d, "settings", row_keys=keys)
        shards.run_sharded(ids, _batch_dependent, d, id_col="id", batch_size=4, part_rows=3, rank=r,
                           world_size=world, progress=False, row_keys=keys)
    edited = {**keys, "x010": "k2"}                 # one record edited: its row is stale
    shards.prepare_parts(d, "settings", row_keys=edited)
    for part in shards.list_parts(d)[-1:]:           # and the last part lost, as if the run was killed
        part.unlink()
    reps = [shards.run_sharded(ids, _batch_dependent, d, id_col="id", batch_size=4, part_rows=3, rank=r,
                               world_size=world, progress=False, row_keys=edited) for r in range(world)]
    got = shards.merge_parts(d, ids, "id")
    pd.testing.assert_frame_equal(got.drop(columns=[shards.ROW_KEY]), ref.drop(columns=[shards.ROW_KEY]))
    assert sum(r["processed"] for r in reps) <= 1 + 3 and sum(r["processed"] for r in reps) >= 1


def test_merge_detects_missing_and_duplicates(tmp_path):
    ids = ["a", "b", "c"]
    shards.run_sharded(ids[:2], _work, tmp_path, id_col="id", batch_size=2, part_rows=2, rank=0, world_size=1, progress=False)
    with pytest.raises(shards.MergeError, match="1 missing"):
        shards.merge_parts(tmp_path, ids, "id")
    w = shards.PartWriter(tmp_path, rank=1, part_rows=10)
    w.add([{"id": "a", "value": 1}])
    w.close()
    with pytest.raises(shards.MergeError, match="1 duplicated"):
        shards.merge_parts(tmp_path, ids[:2], "id")


@pytest.mark.parametrize("expected", [
    ["a", "b", "c"], ["c", "a", "b", "a"], ["a", "b"], ["a", "b", "c", "d"], ["a", "b", "x"], [], ["a", "b", 3]])
@pytest.mark.parametrize("kind", ["list", "iterator", "series", "arrow_series"])
def test_merge_fast_id_check_agrees_with_the_set_rule(tmp_path, monkeypatch, expected, kind):
    """The Arrow check of the ids (every expected id once, nothing else) decides as the set rule alone does."""
    shards.run_sharded(["a", "b", "c"], _work, tmp_path, id_col="id", batch_size=2, part_rows=2, rank=0, world_size=1,
                       progress=False)
    real = shards._ids_match

    def outcome(fast: bool):
        if not fast:
            monkeypatch.setattr(shards, "_ids_match", lambda ids, exp: False)
        arg = {"list": lambda: list(expected), "iterator": lambda: iter(expected),
               "series": lambda: pd.Series(expected, dtype=object),
               "arrow_series": lambda: pd.Series(expected, dtype=object if 3 in expected else "string[pyarrow]")}[kind]()
        try:
            return shards.merge_parts(tmp_path, arg, "id")
        except shards.MergeError as e:
            return str(e)

    fast, slow = outcome(True), outcome(False)
    if isinstance(slow, str):
        assert fast == slow
    else:
        pd.testing.assert_frame_equal(fast, slow)
        assert list(fast["id"]) == ["a", "b", "c"]
    ids = pa.chunked_array([pa.array(["a", "b", "c"])])
    assert real(ids, sorted(set(expected), key=str)) == (sorted(set(expected), key=str) == ["a", "b", "c"])


def test_close_process_group_closes_an_open_gloo_group_once(tmp_path):
    """Entry points close the group before exiting: an open gloo group can abort the process at teardown."""
    import subprocess
    import sys

    code = (
        "import torch.distributed as d\n"
        "from gdo_utils.shards import close_process_group\n"
        f"d.init_process_group('gloo', init_method='file://{tmp_path / 'store'}', rank=0, world_size=1)\n"
        "print(close_process_group(), d.is_initialized(), close_process_group())\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split() == ["True", "False", "False"]
