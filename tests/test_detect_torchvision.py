"""torchvision Mask R-CNN backend with a checkpoint the test makes: loading, thresholds, masks, batching."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from stg.cli import main
from stg.datasets import open_dataset, read_frame
from stg.detect.backends import make_detect_backend
from stg.detect.base import DetectBatch
from stg.detect.ops import box_iou
from stg.detect.rcnn import build_model
from stg.store import open_store, read_ragged
from stg.weights import weights_identity

# Small and quick on CPU: frames kept at their 120x214 size, few RPN proposals, few detections.
FAST = {"min_size": 120, "max_size": 214, "rpn_post_nms_top_n": 50, "max_detections": 8}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("maskrcnn") / "maskrcnn_2class_random.pth"
    torch.save(build_model().state_dict(), path)
    return path


@pytest.fixture(scope="module")
def tv_chain(tiny_dataset, tmp_path_factory, checkpoint):
    out = tmp_path_factory.mktemp("detect-tv")
    video = open_dataset(tiny_dataset, "davis2017", "val").video_names()[1]
    common = ["--dataset-root", str(tiny_dataset), "--split", "val", "--video", video]
    assert main(["flow", *common, "--out", str(out / "flow.zarr")]) == 0
    assert main(["warp", *common, "--flow", str(out / "flow.zarr"), "--out", str(out / "warp.zarr")]) == 0
    settings = {"backend": "torchvision", "torchvision": {"weights": str(checkpoint), "store_masks": True, **FAST}}
    assert main(["detect", *common, "--warp", str(out / "warp.zarr"), "--settings", json.dumps(settings),
                 "--device", "cpu", "--batch-size", "4", "--out", str(out / "detect.zarr")]) == 0
    return tiny_dataset, video, out


def test_store_holds_boxes_scores_and_masks(tv_chain, checkpoint):
    _, _, out = tv_chain
    store = open_store(out / "detect.zarr", "detect")
    count = int(store["offsets"][-1])
    assert count > 0
    assert store["masks"].shape == (count, 120, 214) and store["masks"].dtype == np.uint8
    assert store["masks"].chunks == (1, 120, 214)
    assert store["masks"][:].max() > 0
    backend = store.attrs["backend"]
    assert backend["backend"] == "torchvision" and backend["model"] == "maskrcnn_resnet50_fpn_v2"
    assert backend["weights"] == weights_identity(checkpoint)
    assert backend["box_score_thresh"] == 0.05 and backend["box_nms_thresh"] == 0.6
    assert store.attrs["has_masks"] is True


def test_paper_thresholds_are_honoured(tv_chain):
    _, _, out = tv_chain
    store = open_store(out / "detect.zarr", "detect")
    for t in range(store["offsets"].shape[0] - 1):
        boxes, scores = read_ragged(store, "boxes", t), read_ragged(store, "scores", t)
        assert len(boxes) <= FAST["max_detections"]
        assert (scores >= 0.05).all() and np.all(np.diff(scores) <= 0)
        iou = box_iou(boxes, boxes)
        np.fill_diagonal(iou, 0)
        assert iou.max(initial=0) <= 0.6 + 1e-6
        assert (boxes[:, :2] >= 0).all() and (boxes[:, 2] <= 214).all() and (boxes[:, 3] <= 120).all()


def test_matches_torchvision_called_directly(tv_chain, checkpoint):
    root, video, out = tv_chain
    store = open_store(out / "detect.zarr", "detect")
    frame = read_frame(open_dataset(root, "davis2017", "val").video(video).frame_paths[2])
    net = build_model(min_size=120, max_size=214, rpn_post_nms_top_n=50, max_detections=8)
    net.load_state_dict(torch.load(checkpoint, weights_only=True))
    with torch.inference_mode():
        expected = net.eval()([torch.from_numpy(frame).permute(2, 0, 1).float() / 255])[0]
    np.testing.assert_allclose(read_ragged(store, "boxes", 2), expected["boxes"].numpy(), atol=1e-2)
    np.testing.assert_allclose(read_ragged(store, "scores", 2), expected["scores"].numpy(), atol=1e-4)
    masks = read_ragged(store, "masks", 2).astype(np.float32) / 255
    np.testing.assert_allclose(masks, expected["masks"][:, 0].numpy(), atol=1 / 255 + 1e-3)


def test_stricter_thresholds_and_batching(tiny_dataset, checkpoint):
    video = open_dataset(tiny_dataset, "davis2017", "val").videos()[0]
    images = np.stack([read_frame(p) for p in video.frame_paths[:2]])
    settings = {"weights": str(checkpoint), "box_score_thresh": 0.3, "box_nms_thresh": 0.3, **FAST}
    backend = make_detect_backend({"backend": "torchvision", "device": "cpu", "torchvision": settings})
    batch = DetectBatch(video.name, [0, 1], images=images)
    backend.batch_size = 1
    one = backend.detect(batch)
    backend.batch_size = 2
    for a, b in zip(one, backend.detect(batch), strict=True):
        assert a.masks is None
        assert (a.scores >= 0.3).all()
        iou = box_iou(a.boxes, a.boxes)
        np.fill_diagonal(iou, 0)
        assert iou.max(initial=0) <= 0.3 + 1e-6
        np.testing.assert_allclose(a.boxes, b.boxes, atol=1e-2)
        np.testing.assert_allclose(a.scores, b.scores, atol=1e-4)
