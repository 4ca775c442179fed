"""Flow stores in fixed point (stg.flow.store): round trip, clipping, old float stores, one reader for every stage,
and the chunk record / damage checks on the new encoding."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from stg.config import semantic_settings, stage_key
from stg.datasets import open_dataset, read_first_mask
from stg.errors import DamagedStoreError, StoreError
from stg.flow.dis import DisFlow
from stg.flow.stage import compute_flow_store
from stg.flow.store import FLOW_ATTR, INT16_MAX, INT16_MIN, FlowWriter, flow_encoding, read_flow
from stg.settings import stage_settings
from stg.store import build_store, open_store
from stg.train.data import load_training_video
from stg.warp.stage import FirstFrameSource, compute_warp_store

REPO = Path(__file__).resolve().parents[1]


def smooth_flow(rng: np.random.Generator, pairs: int, height: int, width: int, magnitude: float) -> np.ndarray:
    """Random flow with large smooth parts (like real flow) plus sub-pixel noise, float32 px."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    flow = np.empty((pairs, height, width, 2), np.float32)
    for t in range(pairs):
        a, b = rng.uniform(-magnitude, magnitude, 2)
        flow[t, ..., 0] = a * np.sin(xs / 17 + t) + 0.3 * b
        flow[t, ..., 1] = b * np.cos(ys / 11 - t)
    return flow + rng.normal(0, 0.2, flow.shape).astype(np.float32)


def write_flow(path: Path, forward: np.ndarray, backward: np.ndarray, encoding: str, scale: int = 8,
               frame_names: list[str] | None = None, legacy: bool = False) -> None:
    """A flow store in `encoding`; `legacy`: as written before encodings were recorded (plain `encoding` float
    arrays, no attribute)."""
    pairs, height, width = forward.shape[:3]
    attrs = {"frame_names": frame_names or [f"{t:05d}" for t in range(pairs + 1)], "image_size": [height, width]}
    with build_store(path, "flow", attrs) as store:
        if not legacy:
            writer = FlowWriter(store, pairs, height, width, encoding, scale)
            writer.write("forward", 0, forward)
            writer.write("backward", 0, backward)
            writer.finish()
        else:
            for name, values in (("forward", forward), ("backward", backward)):
                store.array(name, values.shape, encoding)[:] = values.astype(encoding)


@pytest.mark.parametrize("scale", [8, 16, 32])
def test_round_trip_error_is_at_most_half_a_step(tmp_path, scale):
    rng = np.random.default_rng(0)
    forward = smooth_flow(rng, 3, 24, 40, 30.0)
    forward[0, :4, :4] = [[0.0, 0.5], [-0.5, 1.0], [2.0, -3.5], [1 / scale, -1 / scale]]  # on the old grid
    backward = rng.uniform(INT16_MIN / scale, (INT16_MAX + 1) / scale, forward.shape).astype(np.float32)
    write_flow(tmp_path / "flow.zarr", forward, backward, "int16", scale)
    store = open_store(tmp_path / "flow.zarr", "flow", verify="full")
    assert store["forward"].dtype == np.int16
    for name, values in (("forward", forward), ("backward", backward)):
        decoded = read_flow(store, name)
        assert decoded.dtype == np.float32 and decoded.shape == values.shape
        assert np.abs(decoded - values).max() <= 0.5 / scale + 1e-6 * np.abs(values).max()
        # read values are bin centres, odd multiples of half a bin: never 0 or k/2 px (no exact warp ties)
        halves = decoded * (2 * scale)
        assert np.all(halves == np.rint(halves)) and np.all(np.rint(halves) % 2 == 1)
        np.testing.assert_array_equal(read_flow(store, name, 1), decoded[1])
        np.testing.assert_array_equal(read_flow(store, name, slice(1, 3)), decoded[1:3])
        recorded = flow_encoding(store, name)
        assert {k: recorded[k] for k in ("encoding", "scale", "offset", "max_error", "clipped")} == {
            "encoding": "int16", "scale": scale, "offset": 0.5, "max_error": 0.5 / scale, "clipped": 0}


def test_out_of_range_values_are_clipped_and_counted(tmp_path):
    forward = np.zeros((2, 4, 6, 2), np.float32)
    forward[0, 0, 0] = [5000.0, -5000.0]  # beyond +-2048 px at scale 16
    forward[1, 1, 1, 0] = np.nan
    forward[1, 1, 2, 1] = np.inf
    forward[1, 2, 2] = [2047.9, -2047.9]  # in range
    write_flow(tmp_path / "flow.zarr", forward, np.ones_like(forward), "int16", 16)
    store = open_store(tmp_path / "flow.zarr", "flow")
    assert store["forward"].attrs[FLOW_ATTR]["clipped"] == 4
    assert store["backward"].attrs[FLOW_ATTR]["clipped"] == 0
    decoded = read_flow(store, "forward")
    limit = (INT16_MAX + 0.5) / 16
    np.testing.assert_array_equal(decoded[0, 0, 0], [limit, -limit])
    np.testing.assert_array_equal(decoded[1, 1, 1], [1 / 32, 1 / 32])  # not finite: bin 0 (as flow 0 would be)
    np.testing.assert_array_equal(decoded[1, 1, 2], [1 / 32, 1 / 32])
    np.testing.assert_allclose(decoded[1, 2, 2], [2047.9, -2047.9], atol=1 / 32)


@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_old_float_store_still_reads_as_float(tmp_path, dtype):
    rng = np.random.default_rng(1)
    forward = smooth_flow(rng, 2, 10, 12, 8.0)
    write_flow(tmp_path / "flow.zarr", forward, -forward, dtype, legacy=True)
    store = open_store(tmp_path / "flow.zarr", "flow")
    assert FLOW_ATTR not in store["forward"].attrs and flow_encoding(store, "forward") == {"encoding": dtype}
    decoded = read_flow(store, "backward", 1)
    assert decoded.dtype == np.float32
    np.testing.assert_array_equal(decoded, (-forward[1]).astype(dtype).astype(np.float32))


def test_int16_array_without_a_scale_is_refused(tmp_path):
    with build_store(tmp_path / "flow.zarr", "flow", {}) as store:
        store.array("forward", (1, 2, 2, 2), np.int16)[:] = 3
    with pytest.raises(StoreError, match="flow array 'forward' is int16 without a usable 'flow_encoding'"):
        read_flow(open_store(tmp_path / "flow.zarr", "flow"), "forward", 0)


def test_encoding_is_part_of_the_flow_key():
    keys = {encoding: stage_key("flow", semantic_settings("flow", stage_settings("flow", {"encoding": encoding})),
                                ["dataset"])
            for encoding in ("int16", "float16")}
    assert keys["int16"] != keys["float16"]
    assert stage_settings("flow", {})["encoding"] == "int16" and stage_settings("flow", {})["int16_scale"] == 8


@pytest.fixture(scope="module")
def video_and_stores(tiny_dataset, tmp_path_factory):
    """A real DIS flow store of a synthetic video in each encoding, plus its int16 flow dequantised into an old-format
    float32 store: what every reader must see the same way."""
    out = tmp_path_factory.mktemp("flow_store")
    video = open_dataset(tiny_dataset, "davis2017", "val").videos()[0]
    backend = DisFlow("fast")
    compute_flow_store(video, backend, out / "int16.zarr", {"dis": {"preset": "fast"}})
    compute_flow_store(video, backend, out / "float16.zarr", {"dis": {"preset": "fast"}, "encoding": "float16"})
    int16 = open_store(out / "int16.zarr", "flow")
    write_flow(out / "dequantised.zarr", read_flow(int16, "forward"), read_flow(int16, "backward"), "float32",
               frame_names=list(video.frame_names), legacy=True)
    return video, out


def test_flow_stage_writes_the_configured_encoding(video_and_stores):
    _, out = video_and_stores
    int16, float16 = open_store(out / "int16.zarr", "flow"), open_store(out / "float16.zarr", "flow")
    assert int16["forward"].dtype == np.int16 and float16["forward"].dtype == np.float16
    assert flow_encoding(int16, "backward")["scale"] == 8 and flow_encoding(float16, "backward") == {
        "encoding": "float16", "unit": "px"}
    # same DIS flow, two encodings: within float16's rounding plus half a 1/8 px bin
    a, b = read_flow(int16, "forward"), read_flow(float16, "forward")
    assert np.abs(a - b).max() <= 1 / 16 + np.abs(b).max() * 2.0**-11 + 1e-6
    assert any(str(type(codec).__name__) == "TransposeCodec" for codec in int16["forward"].metadata.codecs)


def test_every_reader_sees_the_int16_store_as_its_dequantised_float_store(video_and_stores, tmp_path):
    video, out = video_and_stores
    labels, num_objects = read_first_mask(video)
    priors = {}
    for name in ("int16", "dequantised"):
        compute_warp_store(labels, num_objects, open_store(out / f"{name}.zarr", "flow"), FirstFrameSource(),
                           tmp_path / f"warp-{name}.zarr", {}, video=video.name)
        warp = open_store(tmp_path / f"warp-{name}.zarr", "warp")
        priors[name] = (warp["priors"][...], warp["occlusion"][...])
    np.testing.assert_array_equal(priors["int16"][0], priors["dequantised"][0])
    np.testing.assert_array_equal(priors["int16"][1], priors["dequantised"][1])
    assert priors["int16"][0][1:].any()
    training = {name: load_training_video(video, out / f"{name}.zarr") for name in ("int16", "dequantised")}
    np.testing.assert_array_equal(training["int16"].warped, training["dequantised"].warped)


def test_no_reader_indexes_flow_arrays_itself():
    """Every flow read goes through read_flow: no `flow["forward"][...]`-style access outside stg/flow/store.py."""
    pattern = re.compile(r"""\[\s*["'](forward|backward)["']\s*\]""")
    offenders = []
    for path in [*REPO.joinpath("stg").rglob("*.py"), *REPO.joinpath("benchmarks").rglob("*.py")]:
        if path == REPO / "stg" / "flow" / "store.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.search(line) and "read_flow" not in line:
                offenders.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


def test_damaged_int16_store_is_found_by_the_record_and_by_the_reader(video_and_stores, tmp_path, monkeypatch):
    import shutil

    _, out = video_and_stores
    flow = tmp_path / "flow.zarr"
    shutil.copytree(out / "int16.zarr", flow)
    open_store(flow, "flow", verify="full")  # the record matches the new encoding's chunks
    chunk = flow / "forward" / "c" / "2" / "0" / "0" / "0"
    chunk.write_bytes(chunk.read_bytes()[:20])
    with pytest.raises(DamagedStoreError, match="the record says") as error:
        open_store(flow, "flow")
    assert error.value.array == "forward" and "frame 2" in error.value.frames
    monkeypatch.setenv("STG_VERIFY_STORES", "off")
    store = open_store(flow, "flow")
    read_flow(store, "forward", 1)
    with pytest.raises(DamagedStoreError, match="cannot be decoded") as error:
        read_flow(store, "forward", 2)
    assert error.value.array == "forward" and "frame 2" in error.value.frames
