"""Zarr stores: atomic writes, attributes, versions, ragged arrays."""

from pathlib import Path

import numpy as np
import pytest

from stg.datasets import Video
from stg.errors import StoreError
from stg.store import SCHEMA_VERSION, build_store, check_store_matches, open_store, read_ragged, store_path


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


def test_read_ragged_with_preloaded_offsets_and_empty_frames(tmp_path):
    frames = [np.ones((2, 3, 3), np.uint8), np.zeros((0, 3, 3), np.uint8), np.full((1, 3, 3), 7, np.uint8)]
    path = tmp_path / "segment.zarr"
    with build_store(path, "segment", {}) as store:
        store.ragged("masks", frames, np.uint8, chunk_rows=1)
    group = open_store(path)
    offsets = group["offsets"][:]
    for frame, rows in enumerate(frames):
        for read in (read_ragged(group, "masks", frame), read_ragged(group, "masks", frame, offsets)):
            assert read.shape == rows.shape and read.dtype == np.uint8
            np.testing.assert_array_equal(read, rows)


def video_of(name, frame_names):
    return Video(name, "davis2017", tuple(Path("/data") / f"{frame}.jpg" for frame in frame_names))


def test_store_matches_video_check_names_store_and_video(tmp_path):
    path = tmp_path / "warp.zarr"
    with build_store(path, "warp", {"video": "cows", "frame_names": ["00000", "00001"]}) as store:
        store.array("x", (1,), np.uint8)
    group = open_store(path)
    check_store_matches(group, path, video_of("cows", ["00000", "00001"]))
    with pytest.raises(StoreError) as error:
        check_store_matches(group, path, video_of("bear", ["00000", "00001"]))
    assert str(path) in str(error.value) and "is of video 'cows', not 'bear'" in str(error.value)
    with pytest.raises(StoreError) as error:
        check_store_matches(group, path, video_of("cows", ["00000", "00001", "00002"]))
    assert str(path) in str(error.value) and "frame names" in str(error.value) and "'cows'" in str(error.value)
    assert store_path(group) == str(path)


def test_store_without_video_attribute_is_checked_by_frames(tmp_path):
    path = tmp_path / "flow.zarr"
    with build_store(path, "flow", {"frame_names": ["00000"]}) as store:
        store.array("x", (1,), np.uint8)
    group = open_store(path)
    check_store_matches(group, "flow store", video_of("any", ["00000"]))
    with pytest.raises(StoreError, match="flow store: frame names .* differ from the dataset's frames of 'any'"):
        check_store_matches(group, "flow store", video_of("any", ["00001"]))
