"""Zarr stores: atomic writes, attributes, versions, ragged arrays."""

import numpy as np
import pytest

from stg.errors import StoreError
from stg.store import SCHEMA_VERSION, build_store, open_store, read_ragged


def test_round_trip_attributes_and_chunks(tmp_path):
    path = tmp_path / "video.zarr"
    with build_store(path, "flow", {"key": "abc", "frame_names": ["00000", "00001"]}) as store:
        array = store.array("forward", (2, 4, 5, 2), np.float16)
        array[:] = np.arange(80, dtype=np.float16).reshape(2, 4, 5, 2)
    group = open_store(path, "flow")
    assert group.attrs["schema_version"] == SCHEMA_VERSION
    assert group.attrs["stage"] == "flow"
    assert group.attrs["key"] == "abc"
    assert group["forward"].chunks == (1, 4, 5, 2)
    assert group["forward"].dtype == np.float16
    np.testing.assert_array_equal(group["forward"][1, 0, 0], [40, 41])


def test_failed_build_leaves_nothing(tmp_path):
    path = tmp_path / "video.zarr"
    with pytest.raises(RuntimeError), build_store(path, "warp", {}) as store:
        store.array("priors", (3, 1, 2, 2), np.uint8)
        raise RuntimeError("job killed")
    assert list(tmp_path.iterdir()) == []


def test_rebuild_replaces_old_store(tmp_path):
    path = tmp_path / "video.zarr"
    for value in (1, 2):
        with build_store(path, "labels", {}) as store:
            store.array("labels", (1, 2, 2), np.uint8)[:] = value
    assert open_store(path)["labels"][0, 0, 0] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["video.zarr"]


def test_open_refuses_missing_wrong_stage_and_old_version(tmp_path):
    with pytest.raises(StoreError, match="missing"):
        open_store(tmp_path / "nothing.zarr")
    path = tmp_path / "video.zarr"
    with build_store(path, "flow", {}) as store:
        store.array("x", (1,), np.uint8)
    with pytest.raises(StoreError, match="expected a 'warp' store"):
        open_store(path, "warp")
    import zarr

    zarr.open_group(str(path), mode="r+").attrs["schema_version"] = SCHEMA_VERSION + 1
    with pytest.raises(StoreError, match="schema version"):
        open_store(path)


def test_ragged_round_trip(tmp_path):
    frames = [np.array([[0, 0, 1, 1]], np.float32), np.zeros((0, 4), np.float32),
              np.array([[1, 2, 3, 4], [5, 6, 7, 8]], np.float32)]
    scores = [np.array([0.5], np.float32), np.zeros(0, np.float32), np.array([0.9, 0.1], np.float32)]
    path = tmp_path / "detect.zarr"
    with build_store(path, "detect", {}) as store:
        store.ragged("boxes", frames, np.float32)
        store.ragged("scores", scores, np.float32)
    group = open_store(path)
    np.testing.assert_array_equal(group["offsets"][:], [0, 1, 1, 3])
    for frame, (boxes, score) in enumerate(zip(frames, scores, strict=True)):
        np.testing.assert_array_equal(read_ragged(group, "boxes", frame), boxes)
        np.testing.assert_array_equal(read_ragged(group, "scores", frame), score)
