"""The segment stage: GrabCut and DeepLabv3+ proposals on a tiny synthetic video, store layout, failures."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from stg.cli import main
from stg.datasets import open_dataset, read_annotation, read_first_mask, read_frame
from stg.errors import InputError
from stg.proposals_report import mask_box
from stg.segment.backends import make_segment_backend
from stg.segment.geometry import crop_region
from stg.segment.grabcut import GrabCutSegmenter
from stg.segment.prior import box_priors
from stg.store import build_store, open_store, read_ragged


def write_detect_store(video, out: Path, seed: int = 0) -> None:
    """Stand-in detections: each object's ground-truth box, a jittered copy, and one background box per frame."""
    rng = np.random.default_rng(seed)
    _, num_objects = read_first_mask(video)
    boxes, scores = [], []
    height = width = None
    for name in video.frame_names:
        labels = read_annotation(video.annotation_paths[name], video.layout)
        height, width = labels.shape
        frame_boxes = []
        for obj in range(1, num_objects + 1):
            box = mask_box(labels == obj)
            if box is not None:
                size = np.array([box[2] - box[0], box[3] - box[1]] * 2)
                frame_boxes += [box, box + rng.normal(0, 0.08, 4) * size]
        frame_boxes.append(np.array([2, 2, 30, 25], dtype=np.float32))
        boxes.append(np.array(frame_boxes, dtype=np.float32))
        scores.append(rng.uniform(0.05, 1.0, len(frame_boxes)).astype(np.float32))
    attrs = {"frame_names": video.frame_names, "image_size": [height, width], "video": video.name,
             "backend": {"backend": "test-ground-truth-boxes"}, "key": "detecttest0"}
    with build_store(out, "detect", attrs) as store:
        store.ragged("boxes", boxes, np.float32)
        store.ragged("scores", scores, np.float32)


@pytest.fixture(scope="module")
def inputs(tiny_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("segment")
    dataset = open_dataset(tiny_dataset, "davis2017", "val")
    video = dataset.video(dataset.video_names()[0])
    common = ["--dataset-root", str(tiny_dataset), "--split", "val", "--video", video.name]
    assert main(["flow", *common, "--out", str(out / "flow.zarr")]) == 0
    assert main(["warp", *common, "--flow", str(out / "flow.zarr"), "--out", str(out / "warp.zarr")]) == 0
    write_detect_store(video, out / "detect.zarr")
    args = [*common, "--detect", str(out / "detect.zarr"), "--warp", str(out / "warp.zarr")]
    return video, out, args


GRABCUT = {"backend": "grabcut"}  # the weight-free backend, named (the default is deeplab)


@pytest.fixture(scope="module")
def grabcut_store(inputs):
    video, out, args = inputs
    assert main(["segment", *args, "--settings", json.dumps(GRABCUT), "--key", "segtest001",
                 "--out", str(out / "grabcut.zarr")]) == 0
    return open_store(out / "grabcut.zarr", "segment")


def test_grabcut_store_layout(inputs, grabcut_store):
    video, out, _ = inputs
    detect = open_store(out / "detect.zarr", "detect")
    store = grabcut_store
    np.testing.assert_array_equal(store["offsets"][:], detect["offsets"][:])
    np.testing.assert_array_equal(store["boxes"][:], detect["boxes"][:])
    np.testing.assert_array_equal(store["scores"][:], detect["scores"][:])
    count = int(detect["offsets"][-1])
    assert store["masks"].shape == (count, 120, 214) and store["masks"].dtype == np.uint8
    assert store["masks"].chunks == (1, 120, 214)
    attrs = store.attrs.asdict()
    assert attrs["frame_names"] == video.frame_names and attrs["image_size"] == [120, 214]
    assert attrs["video"] == video.name and attrs["key"] == "segtest001" and attrs["q_mode"] == "union"
    assert attrs["backend"]["backend"] == "grabcut" and attrs["detect_key"] == "detecttest0"
    assert attrs["warp_key"] == open_store(out / "warp.zarr", "warp").attrs["key"]
    assert set(np.unique(store["masks"][:])) <= {0, 255}
    assert sum(attrs["backend_stats"].values()) == count


def test_grabcut_masks_stay_in_their_crop_and_fit_the_objects(grabcut_store):
    store = grabcut_store
    boxes, masks = store["boxes"][:], store["masks"][:]
    for box, mask in zip(boxes, masks, strict=True):
        left, top, right, bottom = crop_region(box, 0.15, 120, 214)
        outside = mask.copy()
        outside[top:bottom, left:right] = 0
        assert not outside.any()
    report = store.attrs["proposal_report"]
    assert report["recall"] == 1.0  # every object's exact box is among the proposals
    assert report["oracle_j"] > 0.75, report["oracle_j"]
    assert report["evaluated_frames"] == len(store.attrs["frame_names"]) - 1


def test_ragged_round_trip_matches_a_direct_call(inputs, grabcut_store):
    video, out, _ = inputs
    warp = open_store(out / "warp.zarr", "warp")
    frame = 3
    rows = read_ragged(grabcut_store, "masks", frame)
    offsets = grabcut_store["offsets"][:]
    np.testing.assert_array_equal(rows, grabcut_store["masks"][offsets[frame]:offsets[frame + 1]])
    boxes = read_ragged(grabcut_store, "boxes", frame)
    planes, index = box_priors(warp["priors"][frame] / 255.0, boxes, "union")
    direct = GrabCutSegmenter().segment(read_frame(video.frame_paths[frame]), boxes, planes, index)
    np.testing.assert_array_equal(rows, direct)  # seeded: the same masks every time


def test_q_mode_per_object_is_recorded_and_changes_masks(inputs, grabcut_store, tmp_path):
    video, out, args = inputs
    settings = {**GRABCUT, "q_mode": "per_object"}   # the same backend as grabcut_store: only q_mode differs
    assert main(["segment", *args, "--settings", json.dumps(settings), "--out", str(tmp_path / "po.zarr")]) == 0
    store = open_store(tmp_path / "po.zarr", "segment")
    assert store.attrs["q_mode"] == "per_object" and store.attrs["settings"] == settings
    assert store.attrs["backend"]["backend"] == "grabcut"
    assert store.attrs["proposal_report"]["recall"] == 1.0
    # the occlusion video's objects touch: a box seeded by the union also sees the other object
    assert not np.array_equal(store["masks"][:], grabcut_store["masks"][:])


def test_box_priors_union_and_per_object():
    priors = np.zeros((2, 40, 40), dtype=np.float32)
    priors[0, 5:15, 5:15] = 1.0
    priors[1, 20:35, 20:35] = 0.8
    priors[1, 12:15, 12:15] = 0.8  # a bit of object 2 inside object 1's box: less mass, must not win
    boxes = np.array([[4, 4, 16, 16], [18, 18, 36, 36], [36, 0, 40, 4]], dtype=np.float32)
    planes, index = box_priors(priors, boxes, "union")
    assert planes.shape == (1, 40, 40) and index.tolist() == [0, 0, 0]
    np.testing.assert_array_equal(planes[0], np.maximum(priors[0], priors[1]))
    planes, index = box_priors(priors, boxes, "per_object")
    assert planes.shape == (3, 40, 40) and index.tolist() == [0, 1, 2]  # empty box -> union plane
    np.testing.assert_array_equal(planes[1], priors[1])
    with pytest.raises(ValueError, match="q_mode"):
        box_priors(priors, boxes, "nearest")


def _disc_scene(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    image = np.clip(rng.normal(0, 20, (120, 160, 3)) + [40, 140, 60], 0, 255).astype(np.uint8)
    truth = np.zeros((120, 160), dtype=np.uint8)
    cv2.circle(truth, (80, 60), 30, 1, -1)
    image[truth == 1] = np.clip(rng.normal(0, 20, (int(truth.sum()), 3)) + [200, 40, 40], 0, 255).astype(np.uint8)
    return image, truth.astype(bool)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


def test_grabcut_corrects_a_shifted_prior():
    image, truth = _disc_scene()
    prior = np.roll(truth, (6, 8), axis=(0, 1)).astype(np.float32)  # a warp that drifted
    box = np.array([[48, 28, 112, 92]], dtype=np.float32)
    mask = GrabCutSegmenter().segment(image, box, prior[None], np.zeros(1, np.int64))[0] > 127
    assert _iou(prior > 0.5, truth) < 0.75
    assert _iou(mask, truth) > 0.95


def test_grabcut_degenerate_boxes_do_not_raise():
    image, truth = _disc_scene()
    prior = truth.astype(np.float32)
    planes = np.stack([prior, np.zeros_like(prior), np.ones_like(prior)])
    boxes = np.array([
        [79, 59, 81, 61],        # 2x2 pixels: the seeds themselves
        [48, 28, 112, 92],       # no prior inside (plane 1): classic rectangle initialisation
        [0, 0, 160, 120],        # the whole frame, all prior (plane 2): nothing to learn background from
        [0, 0, 160, 120],        # the whole frame with the disc prior: background inside the box suffices
        [200, 200, 260, 260],    # outside the frame
        [50, 30, 50, 90],        # zero width
    ], dtype=np.float32)
    segmenter = GrabCutSegmenter(iterations=2)
    masks = segmenter.segment(image, boxes, planes, np.array([0, 1, 2, 0, 0, 0]))
    assert masks.shape == (6, 120, 160)
    assert masks[0].sum() == 4 * 255
    assert _iou(masks[1] > 0, truth) > 0.9  # a box the prior missed still finds the object
    assert (masks[2] == 255).all()  # all foreground: the seeds
    assert _iou(masks[3] > 0, truth) > 0.95
    assert not masks[4].any() and not masks[5].any()
    assert segmenter.stats == {"tiny_box": 3, "rectangle": 1, "no_background": 1, "grabcut": 1}


def test_backend_settings_errors():
    with pytest.raises(InputError, match="unknown segment backend"):
        make_segment_backend({"backend": "sam"})
    with pytest.raises(InputError, match="iters"):
        make_segment_backend({"grabcut": {"iters": 2}})
    with pytest.raises(InputError, match="stages.segment.grabcut.iterations"):
        make_segment_backend({"grabcut": {"iterations": 0}})


# --- DeepLabv3+ ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mobilenet_checkpoint(tmp_path_factory) -> Path:
    from stg.segment.deeplab import build_deeplab

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "deeplab_mnv2.pt"
    torch.save(build_deeplab("mobilenet_v2").state_dict(), path)
    return path


def _deeplab_settings(weights: Path | str | None, **extra) -> dict:
    return {"backend": "deeplab", "deeplab": {"encoder": "mobilenet_v2", "weights": str(weights) if weights else None,
                                              "input_size": 64, "margin": 0.15, **extra}}


def test_deeplab_store(inputs, mobilenet_checkpoint, tmp_path):
    video, out, args = inputs
    settings = _deeplab_settings(mobilenet_checkpoint)
    assert main(["segment", *args, "--settings", json.dumps(settings), "--device", "cpu", "--batch-size", "3",
                 "--out", str(tmp_path / "dl.zarr")]) == 0
    store = open_store(tmp_path / "dl.zarr", "segment")
    identity = store.attrs["backend"]
    assert identity["backend"] == "deeplab" and identity["encoder"] == "mobilenet_v2"
    assert identity["weights"]["file"] == "deeplab_mnv2.pt" and len(identity["weights"]["sha256"]) == 16
    masks, boxes = store["masks"][:], store["boxes"][:]
    assert masks.shape == (int(store["offsets"][-1]), 120, 214)
    for box, mask in zip(boxes, masks, strict=True):
        left, top, right, bottom = crop_region(box, 0.15, 120, 214)
        outside = mask.copy()
        outside[top:bottom, left:right] = 0
        assert not outside.any()  # pasted into an empty frame
        assert mask[top:bottom, left:right].any()  # random weights: sigmoid near 0.5, never all 0
    # batching does not change the result
    frame = 2
    warp = open_store(out / "warp.zarr", "warp")
    frame_boxes = read_ragged(store, "boxes", frame)
    planes, index = box_priors(warp["priors"][frame] / 255.0, frame_boxes, "union")
    backend = make_segment_backend({**settings, "device": "cpu",
                                    "deeplab": {**settings["deeplab"], "batch_size": 1}})
    direct = backend.segment(read_frame(video.frame_paths[frame]), frame_boxes, planes, index)
    assert np.abs(direct.astype(int) - read_ragged(store, "masks", frame).astype(int)).max() <= 1


def test_deeplab_uses_the_prior_channel(mobilenet_checkpoint):
    backend = make_segment_backend({**_deeplab_settings(mobilenet_checkpoint), "device": "cpu"})
    image, truth = _disc_scene()
    box = np.array([[48, 28, 112, 92]], dtype=np.float32)
    planes = np.stack([truth.astype(np.float32), np.zeros_like(truth, dtype=np.float32)])
    with_q = backend.segment(image, np.repeat(box, 2, 0), planes, np.array([0, 1]))
    assert not np.array_equal(with_q[0], with_q[1])


def test_deeplab_runs_channels_last_with_the_networks_output(mobilenet_checkpoint):
    """The segmenter runs NHWC (faster on the CPU); its probabilities are those of the plain NCHW network."""
    import torch

    backend = make_segment_backend({**_deeplab_settings(mobilenet_checkpoint), "device": "cpu"})
    first = next(p for p in backend.model.parameters() if p.dim() == 4 and p.shape[-1] > 1)
    assert first.is_contiguous(memory_format=torch.channels_last) and not first.is_contiguous()
    inputs = np.random.default_rng(0).random((3, 4, 64, 64)).astype(np.float32)
    plain = backend.model.to(memory_format=torch.contiguous_format)
    with torch.inference_mode():
        expected = torch.sigmoid(plain(torch.from_numpy(inputs))[:, 0]).numpy()
    backend.model.to(memory_format=torch.channels_last)
    np.testing.assert_allclose(backend.probabilities(inputs), expected, atol=1e-5)


@pytest.mark.parametrize("problem", ["missing", "wrong", "trained"])
def test_deeplab_checkpoint_problems_fail_at_start(inputs, tmp_path, capsys, problem):
    _, out, args = inputs
    if problem == "missing":
        weights, expected = tmp_path / "nowhere.pt", "weights file is missing"
    elif problem == "wrong":
        from stg.segment.deeplab import build_deeplab

        weights, expected = tmp_path / "resnet.pt", "does not fit DeepLabV3Plus"
        torch.save(build_deeplab("resnet101").state_dict(), weights)
    else:
        weights, expected = "trained", "names the train_segmenter stage's model"
    missing_input = ["--detect", str(tmp_path / "no-detect.zarr")]  # never read: the backend fails first
    code = main(["segment", *args, *missing_input, "--settings", json.dumps(_deeplab_settings(weights)),
                 "--device", "cpu", "--out", str(tmp_path / "dl.zarr")])
    err = capsys.readouterr().err
    assert code == 2
    assert expected in err and "stages.segment.deeplab.weights" in err
    assert not (tmp_path / "dl.zarr").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".dl.zarr")]


def test_deeplab_setting_errors(mobilenet_checkpoint):
    from stg.segment.deeplab import DeepLabSegmenter

    with pytest.raises(InputError, match="encoder"):  # each setting's own range: the schema, when built
        make_segment_backend({"backend": "deeplab", "deeplab": {"encoder": "vgg16",
                                                                "weights": str(mobilenet_checkpoint)}})
    with pytest.raises(InputError, match="input_size"):
        make_segment_backend({"backend": "deeplab", "deeplab": {"encoder": "mobilenet_v2", "input_size": 100,
                                                                "weights": str(mobilenet_checkpoint)}})
    with pytest.raises(InputError, match="does not fit encoder 'resnet101'"):
        DeepLabSegmenter(encoder="resnet101", encoder_init="imagenet-deepsort")
    with pytest.raises(InputError, match="training starts only"):
        DeepLabSegmenter(encoder="mobilenet_v2", encoder_init="imagenet-deepsort", weights=str(mobilenet_checkpoint))
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="stages.segment.device"):
            DeepLabSegmenter(encoder="mobilenet_v2", weights=str(mobilenet_checkpoint), device="cuda")


def test_bad_upstream_store_is_a_clear_error(inputs, tmp_path, capsys):
    _, out, args = inputs
    args = [a if a != str(out / "detect.zarr") else str(out / "warp.zarr") for a in args]
    assert main(["segment", *args, "--out", str(tmp_path / "s.zarr")]) == 2
    assert "expected a 'detect' store" in capsys.readouterr().err
    assert not (tmp_path / "s.zarr").exists()
