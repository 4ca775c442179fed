"""Detect stage: motion proposals from warped priors, the ragged store, thresholds and start-of-job failures."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from stg.cli import main
from stg.datasets import open_dataset, read_first_mask
from stg.detect.backends import make_detect_backend
from stg.detect.base import DetectBatch
from stg.detect.motion import component_boxes, frame_seed, jitter_boxes, motion_proposals, soft_box_iou
from stg.detect.ops import box_iou, filter_detections
from stg.errors import InputError
from stg.store import open_store, read_ragged

MOTION = {"backend": "motion", "motion": {"min_area": 16, "jitter_copies": 3, "jitter_scale": 0.2,
                                          "jitter_shift": 0.1, "seed": 5}}


def _rect_prior(height=40, width=60, boxes=((5, 10, 25, 30),)):
    prior = np.zeros((height, width), np.float32)
    for x1, y1, x2, y2 in boxes:
        prior[y1:y2, x1:x2] = 1.0
    return prior


# ------------------------------------------------------------------------------------------------ pure ops


def test_component_boxes_are_pixel_edges_and_drop_small_components():
    prior = _rect_prior(boxes=((5, 10, 25, 30), (40, 2, 50, 8), (55, 30, 57, 32)))  # 20x20, 10x6, 2x2 px
    prior[12, 7] = 0.4  # soft values below 0.5 are background
    boxes = component_boxes(prior, min_area=16)
    assert boxes.dtype == np.float32
    assert sorted(map(tuple, boxes.tolist())) == [(5, 10, 25, 30), (40, 2, 50, 8)]
    assert len(component_boxes(prior, min_area=1)) == 3
    assert len(component_boxes(np.zeros((10, 10), np.float32), min_area=1)) == 0


def test_soft_box_iou_is_one_for_the_exact_box_and_lower_otherwise():
    prior = _rect_prior()
    scores = soft_box_iou(prior, np.array([[5, 10, 25, 30], [0, 0, 60, 40], [5, 10, 15, 30], [30, 0, 40, 5]],
                                          np.float32))
    assert scores[0] == pytest.approx(1.0)
    assert scores[1] == pytest.approx(400 / 2400)
    assert scores[2] == pytest.approx(0.5)
    assert scores[3] == 0.0
    assert soft_box_iou(np.zeros((5, 5), np.float32), np.array([[0, 0, 5, 5]], np.float32))[0] == 0.0


def test_jitter_is_deterministic_clipped_and_seeded_per_frame():
    boxes = np.array([[0, 0, 30, 20], [30, 10, 60, 40]], np.float32)

    def jitter(seed, video, frame):
        return jitter_boxes(boxes, 5, 0.3, 0.3, np.random.default_rng(frame_seed(seed, video, frame)), (40, 60))

    first = jitter(1, "cows", 3)
    np.testing.assert_array_equal(first, jitter(1, "cows", 3))
    assert not np.array_equal(first, jitter(1, "cows", 4))
    assert not np.array_equal(first, jitter(2, "cows", 3))
    assert not np.array_equal(first, jitter(1, "dogs", 3))
    assert len(first) == 10 and first.dtype == np.float32
    assert (first[:, 0::2] >= 0).all() and (first[:, 0::2] <= 60).all()
    assert (first[:, 1::2] >= 0).all() and (first[:, 1::2] <= 40).all()
    assert (first[:, 2:] - first[:, :2] >= 1).all()
    assert len(jitter_boxes(boxes, 0, 0.3, 0.3, np.random.default_rng(0), (40, 60))) == 0


def test_motion_proposals_cover_every_object_and_skip_empty_priors():
    priors = np.stack([_rect_prior(), _rect_prior(boxes=((30, 5, 50, 35),)), np.zeros((40, 60), np.float32)])
    result = motion_proposals(priors, np.random.default_rng(0), min_area=16, copies=2, scale=0.1, shift=0.1)
    assert len(result) == 2 * (1 + 2)
    assert np.all(np.diff(result.scores) <= 0)  # sorted by decreasing score
    exact = {tuple(b) for b, s in zip(result.boxes.tolist(), result.scores, strict=True) if s == pytest.approx(1.0)}
    assert exact == {(5, 10, 25, 30), (30, 5, 50, 35)}
    assert ((result.scores >= 0) & (result.scores <= 1)).all()
    empty = motion_proposals(priors[2:], np.random.default_rng(0), 16, 2, 0.1, 0.1)
    assert len(empty) == 0 and empty.boxes.shape == (0, 4)


def test_filter_detections_honours_score_and_nms_thresholds():
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 80, size=(300, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(10, 40, size=(300, 2))], axis=1).astype(np.float32)
    scores = rng.uniform(0, 1, size=300).astype(np.float32)
    keep = filter_detections(boxes, scores, 0.3, 0.6)
    assert len(keep) > 5
    assert (scores[keep] >= 0.3).all()
    assert np.all(np.diff(scores[keep]) <= 0)
    iou = box_iou(boxes[keep], boxes[keep])
    np.fill_diagonal(iou, 0)
    assert iou.max() <= 0.6 + 1e-6
    # Every dropped box above the threshold overlaps a kept, higher-scoring box by more than 0.6.
    dropped = np.setdiff1d(np.flatnonzero(scores >= 0.3), keep)
    assert (box_iou(boxes[dropped], boxes[keep]).max(axis=1) > 0.6).all()
    assert len(filter_detections(boxes, scores, 0.3, 0.6, max_detections=3)) == 3
    assert len(filter_detections(boxes, scores, 1.1, 0.6)) == 0


def test_box_iou_matches_torchvision():
    from torchvision.ops import box_iou as tv_box_iou

    rng = np.random.default_rng(1)
    xy = rng.uniform(0, 50, size=(20, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(1, 30, size=(20, 2))], axis=1).astype(np.float32)
    expected = tv_box_iou(torch.from_numpy(boxes), torch.from_numpy(boxes)).numpy()
    np.testing.assert_allclose(box_iou(boxes, boxes), expected, atol=1e-6)


def test_motion_backend_batches_are_reproducible():
    backend = make_detect_backend(MOTION)
    priors = np.stack([_rect_prior()[None]] * 3)
    one = backend.detect(DetectBatch("v", [0, 1, 2], priors=priors))
    two = backend.detect(DetectBatch("v", [0, 1, 2], priors=priors))
    for a, b in zip(one, two, strict=True):
        np.testing.assert_array_equal(a.boxes, b.boxes)
    assert not np.array_equal(one[0].boxes, one[1].boxes)  # other frame, other jitter


@pytest.mark.parametrize(("settings", "where"), [
    ({"backend": "yolo"}, "stages.detect.backend"),
    ({"backend": "motion", "motion": {"min_areaa": 3}}, "stages.detect.motion"),
    ({"backend": "motion", "motion": {"jitter_copies": -1}}, "stages.detect.motion.jitter_copies"),
    ({"backend": "torchvision", "torchvision": {}}, "stages.detect.torchvision.weights"),
    ({"backend": "torchvision", "torchvision": {"box_nms_thresh": 1.5}}, "stages.detect.torchvision.box_nms_thresh"),
    ({"backend": "torchvision", "device": "tpu"}, "stages.detect.device"),
    ({"backend": "mmdet", "mmdet": {}}, "stages.detect.mmdet.config"),
])
def test_bad_settings_fail_at_construction(settings, where):
    with pytest.raises(InputError) as error:
        make_detect_backend(settings)
    assert where in str(error.value)


# ------------------------------------------------------------------------------------------------ stage via the CLI


@pytest.fixture(scope="module")
def motion_chain(tiny_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("detect")
    video = open_dataset(tiny_dataset, "davis2017", "val").video_names()[0]
    common = ["--dataset-root", str(tiny_dataset), "--split", "val", "--video", video]
    assert main(["flow", *common, "--out", str(out / "flow.zarr")]) == 0
    assert main(["warp", *common, "--flow", str(out / "flow.zarr"), "--key", "warpkey0001",
                 "--out", str(out / "warp.zarr")]) == 0
    assert main(["detect", *common, "--warp", str(out / "warp.zarr"), "--settings", json.dumps(MOTION),
                 "--key", "detectkey1", "--out", str(out / "detect.zarr")]) == 0
    return tiny_dataset, video, common, out


def test_detect_store_layout_and_metadata(motion_chain):
    root, video, _, out = motion_chain
    store = open_store(out / "detect.zarr", "detect")
    frames = open_dataset(root, "davis2017", "val").video(video).frame_names
    offsets = store["offsets"][:]
    assert offsets.dtype == np.int64 and offsets.shape == (len(frames) + 1,) and offsets[0] == 0
    assert np.all(np.diff(offsets) >= 0)
    assert store["boxes"].shape == (offsets[-1], 4) and store["boxes"].dtype == np.float32
    assert store["scores"].shape == (offsets[-1],) and store["scores"].dtype == np.float32
    assert "masks" not in store.array_keys()
    attrs = store.attrs.asdict()
    assert attrs["frame_names"] == frames and attrs["image_size"] == [120, 214] and attrs["video"] == video
    assert attrs["key"] == "detectkey1" and attrs["warp_key"] == "warpkey0001"
    assert attrs["settings"] == MOTION
    assert attrs["backend"]["backend"] == "motion" and attrs["backend"]["seed"] == 5
    assert attrs["backend"]["weights"] is None and attrs["has_masks"] is False


def test_ragged_rows_round_trip_per_frame(motion_chain):
    _, _, _, out = motion_chain
    store = open_store(out / "detect.zarr", "detect")
    offsets = store["offsets"][:]
    rows = [read_ragged(store, "boxes", t) for t in range(len(offsets) - 1)]
    np.testing.assert_array_equal(np.concatenate(rows), store["boxes"][:])
    for t, boxes in enumerate(rows):
        assert len(boxes) == offsets[t + 1] - offsets[t]
        assert np.all(np.diff(read_ragged(store, "scores", t)) <= 0)


def test_motion_boxes_cover_each_objects_component(motion_chain):
    root, video, _, out = motion_chain
    store = open_store(out / "detect.zarr", "detect")
    priors = open_store(out / "warp.zarr", "warp")["priors"]
    _, num_objects = read_first_mask(open_dataset(root, "davis2017", "val").video(video))
    found = 0
    for t in range(priors.shape[0]):
        boxes = {tuple(b) for b in read_ragged(store, "boxes", t).tolist()}
        for k in range(num_objects):
            for component in component_boxes(priors[t, k].astype(np.float32) / 255.0, 16).tolist():
                assert tuple(component) in boxes, f"frame {t} object {k}: component box {component} missing"
                found += 1
        assert len(boxes) == 0 or found > 0
    assert found >= priors.shape[0]  # at least one object visible per frame in this video
    assert (store["boxes"][:, 2:] <= np.array([214, 120])).all() and (store["boxes"][:, :2] >= 0).all()


def test_rerun_gives_identical_store(motion_chain, tmp_path):
    _, _, common, out = motion_chain
    assert main(["detect", *common, "--warp", str(out / "warp.zarr"), "--settings", json.dumps(MOTION),
                 "--batch-size", "3", "--out", str(tmp_path / "again.zarr")]) == 0
    first, again = open_store(out / "detect.zarr"), open_store(tmp_path / "again.zarr")
    for name in ("offsets", "boxes", "scores"):
        np.testing.assert_array_equal(first[name][:], again[name][:])


def test_missing_checkpoint_fails_at_start_and_leaves_no_store(motion_chain, tmp_path, capsys):
    _, _, common, out = motion_chain
    settings = {"backend": "torchvision", "torchvision": {"weights": str(tmp_path / "nope.pth")}}
    code = main(["detect", *common, "--warp", str(out / "warp.zarr"), "--settings", json.dumps(settings),
                 "--device", "cpu", "--out", str(tmp_path / "d.zarr")])
    assert code == 2
    err = capsys.readouterr().err
    assert "nope.pth" in err and "stages.detect.torchvision.weights" in err
    assert list(tmp_path.iterdir()) == []


def test_wrong_checkpoint_fails_at_start_and_leaves_no_store(motion_chain, tmp_path, capsys):
    from torchvision.models import resnet18

    _, _, common, out = motion_chain
    wrong = tmp_path / "resnet18.pth"
    torch.save(resnet18(weights=None).state_dict(), wrong)
    settings = {"backend": "torchvision", "torchvision": {"weights": str(wrong)}}
    code = main(["detect", *common, "--warp", str(out / "warp.zarr"), "--settings", json.dumps(settings),
                 "--device", "cpu", "--out", str(tmp_path / "d.zarr")])
    assert code == 2
    err = capsys.readouterr().err
    assert "resnet18.pth" in err and "does not fit MaskRCNN" in err and "stages.detect.torchvision.weights" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["resnet18.pth"]


def test_warp_store_of_another_video_is_refused(motion_chain, tmp_path, capsys):
    root, video, _, out = motion_chain
    other = [v for v in open_dataset(root, "davis2017", "val").video_names() if v != video][0]
    code = main(["detect", "--dataset-root", str(root), "--split", "val", "--video", other,
                 "--warp", str(out / "warp.zarr"), "--out", str(tmp_path / "d.zarr")])
    assert code == 2
    assert f"is of video '{video}', not '{other}'" in capsys.readouterr().err
    assert not (tmp_path / "d.zarr").exists()


def test_mmdet_missing_is_a_clear_error(tmp_path, monkeypatch):
    import sys

    config, weights = tmp_path / "model.py", tmp_path / "model.pth"
    config.write_text("model = dict()\n")
    weights.write_bytes(b"")
    monkeypatch.setitem(sys.modules, "mmdet", None)  # import mmdet -> ImportError, as when it is not installed
    with pytest.raises(InputError, match=r"install the \[mmdet\] extra"):
        make_detect_backend({"backend": "mmdet", "device": "cpu",
                             "mmdet": {"config": str(config), "weights": str(weights)}})
