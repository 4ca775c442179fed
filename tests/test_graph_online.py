"""Online proposals: the graph segments the detect store's boxes (plus each object's Q box) with the tracked Q_t."""

from __future__ import annotations

import json

import numpy as np
import pytest

from stg.cli import main
from stg.graph.proposals import OnlineProposals, q_boxes


@pytest.fixture(scope="module")
def stores(tiny_dataset, tmp_path_factory):
    """flow, warp and detect (motion boxes) stores of the first tiny video, by the CLI."""
    from stg.datasets import open_dataset

    out = tmp_path_factory.mktemp("online")
    video = open_dataset(tiny_dataset, "davis2017", "val").video_names()[0]
    args = ["--dataset-root", str(tiny_dataset), "--split", "val", "--video", video]
    assert main(["flow", *args, "--out", str(out / "flow.zarr")]) == 0
    assert main(["warp", *args, "--flow", str(out / "flow.zarr"), "--out", str(out / "warp.zarr")]) == 0
    assert main(["detect", *args, "--warp", str(out / "warp.zarr"), "--out", str(out / "detect.zarr")]) == 0
    return out, args


@pytest.fixture()
def checkpoint(random_segmenter):
    return random_segmenter


def test_q_boxes_skip_empty_objects():
    warped = np.zeros((3, 20, 30), np.float32)
    warped[0, 2:5, 3:9] = 0.9
    warped[2, 10:12, 0:4] = 0.6
    boxes = q_boxes(warped)
    assert boxes.tolist() == [[3, 2, 9, 5], [0, 10, 4, 12]]


def test_online_proposals_are_detections_plus_q_boxes(stores, checkpoint):
    from stg.segment.deeplab import DeepLabSegmenter
    from stg.store import open_store, read_ragged

    out, _ = stores
    detect = open_store(out / "detect.zarr", "detect")
    warp = open_store(out / "warp.zarr", "warp")
    segmenter = DeepLabSegmenter(weights=str(checkpoint), input_size=64, device="cpu")
    source = OnlineProposals(detect, segmenter)
    height, width = detect.attrs["image_size"]
    image = np.zeros((height, width, 3), np.uint8)
    warped = warp["priors"][1].astype(np.float32) / 255.0
    proposals = source(1, image, warped)
    detections = read_ragged(detect, "boxes", 1)
    assert len(proposals) == len(detections) + len(q_boxes(warped))
    assert proposals.masks.shape == (len(proposals), height, width)
    assert proposals.masks.dtype == np.float32 and proposals.masks.min() >= 0 and proposals.masks.max() <= 1
    assert np.allclose(proposals.boxes[len(q_boxes(warped)):], detections)
    without = OnlineProposals(detect, segmenter, add_q_boxes=False)(1, image, warped)
    assert len(without) == len(detections)
    far = np.array([[width + 10, height + 10, width + 20, height + 20]], np.float32)  # overlaps nothing
    assert len(source(1, image, warped, far)) == 0, "boxes that no object's p_t reaches are not segmented"
    reachable = source(1, image, warped, q_boxes(warped))
    assert 0 < len(reachable) <= len(proposals)


def test_online_graph_by_hand_needs_detect_and_segment_settings(stores, checkpoint, tmp_path, capsys):
    out, args = stores
    settings = {"proposals": "online", "temporal": False, "spatial": False, "device": "cpu"}
    base = ["graph", *args, "--warp", str(out / "warp.zarr"), "--flow", str(out / "flow.zarr"),
            "--settings", json.dumps(settings)]
    assert main([*base, "--out", str(tmp_path / "g.zarr")]) == 2
    assert "--detect" in capsys.readouterr().err and not (tmp_path / "g.zarr").exists()
    segment = {"backend": "deeplab", "deeplab": {"weights": str(checkpoint), "input_size": 64}}
    assert main([*base, "--detect", str(out / "detect.zarr"), "--segment-settings", json.dumps(segment),
                 "--out", str(tmp_path / "g.zarr")]) == 0
    from stg.store import open_store

    store = open_store(tmp_path / "g.zarr", "labels")
    assert store.attrs["segmenter"]["weights"]["file"] == "segmenter.pt"
    assert store.attrs["upstream"]["detect"] == open_store(out / "detect.zarr").attrs.get("key")
    assert store["labels"].shape[0] == open_store(out / "warp.zarr")["priors"].shape[0]


def test_online_proposals_skip_what_the_spatial_graph_leaves_out(stores, checkpoint):
    """With join_iou, only boxes that are nodes of some object's graph are segmented; they are the rows the tracker
    keeps, with the same masks as when every box is segmented."""
    from stg.graph.motion import assign_proposals, graph_owners
    from stg.segment.deeplab import DeepLabSegmenter
    from stg.store import open_store

    out, _ = stores
    detect = open_store(out / "detect.zarr", "detect")
    warped = open_store(out / "warp.zarr", "warp")["priors"][1].astype(np.float32) / 255.0
    segmenter = DeepLabSegmenter(weights=str(checkpoint), input_size=64, device="cpu")
    height, width = detect.attrs["image_size"]
    image = np.random.default_rng(0).integers(0, 255, (height, width, 3), dtype=np.uint8)
    predicted = q_boxes(warped)
    every = OnlineProposals(detect, segmenter, add_q_boxes=True)(1, image, warped, predicted)
    nodes = graph_owners(assign_proposals(every.boxes, predicted), every.boxes, predicted, 0.8) >= 0
    assert 0 < nodes.sum() < len(every), "the tiny video must have boxes on both sides of join_iou"
    joined = OnlineProposals(detect, segmenter, add_q_boxes=True, join_iou=0.8)(1, image, warped, predicted)
    np.testing.assert_array_equal(joined.boxes, every.boxes[nodes])
    np.testing.assert_allclose(joined.masks, every.masks[nodes], atol=1e-6)
