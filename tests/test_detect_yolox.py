"""YOLOX detect backend (letterbox, grid decoding, thresholds, real frames, weights errors) and the union backend."""

from __future__ import annotations

import math
import shutil

import numpy as np
import pytest

from stg.datasets import open_dataset, read_annotation, read_frame
from stg.detect.base import FRAMES, FRAMES_AND_PRIORS, PRIORS, DetectBatch, Detections
from stg.detect.motion import MotionDetect
from stg.detect.stage import compute_detect_store
from stg.detect.union import UnionDetect
from stg.detect.yolox import PAD_VALUE, YoloxDetect, decode_outputs, grid_and_strides, letterbox, to_frame
from stg.errors import InputError
from stg.proposals_report import box_iou, mask_box
from stg.store import build_store, open_store, read_ragged
from stg.warp.ops import one_hot, quantise
from stg.weights_registry import SHIPPED_DIR, known_weights

SHA = known_weights("yolox_nano_coco").sha256


@pytest.fixture(scope="module")
def yolox() -> YoloxDetect:
    return YoloxDetect(device="cpu")


# --- pre- and post-processing ------------------------------------------------------------------------------------

def test_letterbox_keeps_aspect_ratio_and_pads_bottom_right_with_114():
    wide = np.full((100, 200, 3), 7, np.uint8)  # ratio min(416/100, 416/200) = 2.08 -> 416 x 208
    padded, ratio = letterbox(wide, 416)
    assert ratio == pytest.approx(2.08) and padded.shape == (416, 416, 3) and padded.dtype == np.uint8
    assert np.all(padded[:208] == 7) and np.all(padded[208:] == PAD_VALUE)
    tall = np.full((300, 100, 3), 9, np.uint8)  # ratio 416/300 -> width int(138.67) = 138
    padded, ratio = letterbox(tall, 416)
    assert ratio == pytest.approx(416 / 300)
    assert np.all(padded[:, :138] == 9) and np.all(padded[:, 138:] == PAD_VALUE)


def test_grid_follows_yolox_order_stride_then_row_then_column():
    grid, stride = grid_and_strides(416)
    assert grid.shape == (3549, 2) and stride.shape == (3549, 1)  # 52^2 + 26^2 + 13^2
    assert grid[0].tolist() == [0, 0] and grid[1].tolist() == [1, 0] and grid[52].tolist() == [0, 1]
    assert stride[2703, 0] == 8 and stride[2704, 0] == 16 and grid[2704].tolist() == [0, 0]
    assert stride[-1, 0] == 32 and grid[-1].tolist() == [12, 12]


def test_decoding_matches_hand_arithmetic():
    # A 64 px input: 8x8 cells at stride 8 (rows 0..63), 4x4 at 16 (64..79), 2x2 at 32 (80..83); 3 classes.
    raw = np.zeros((84, 8), np.float32)
    raw[10] = [0.5, 0.25, math.log(2.0), 0.0, 0.8, 0.1, 0.5, 0.2]  # stride 8, cell x=2, y=1
    raw[83] = [0.0, 0.0, 0.0, math.log(0.5), 1.0, 0.9, 0.0, 0.3]  # stride 32, cell x=1, y=1
    boxes, scores = decode_outputs(raw, 64)
    # centre ((0.5 + 2) * 8, (0.25 + 1) * 8) = (20, 10); size (2 * 8, 1 * 8) = (16, 8)
    np.testing.assert_allclose(boxes[10], [12, 6, 28, 14], atol=1e-5)
    # centre (32, 32); size (32, 16)
    np.testing.assert_allclose(boxes[83], [16, 24, 48, 40], atol=1e-5)
    assert scores[10] == pytest.approx(0.8 * 0.5) and scores[83] == pytest.approx(0.9)
    assert scores[0] == 0.0 and boxes.shape == (84, 4)
    with pytest.raises(ValueError, match="expected 84"):
        decode_outputs(raw[:80], 64)


def test_boxes_are_scaled_back_and_clipped_to_the_frame():
    boxes = np.array([[10, 20, 30, 40], [-5, 0, 500, 10]], np.float32)
    # x 2, then clipped to the 100 x 50 frame: y2 80 -> 50, x1 -10 -> 0, x2 1000 -> 100
    np.testing.assert_allclose(to_frame(boxes, 0.5, (50, 100)), [[20, 40, 60, 50], [0, 0, 100, 20]])


def test_detect_frame_thresholds_nms_and_maps_to_the_frame(yolox, monkeypatch):
    raw = np.zeros((3549, 85), np.float32)
    raw[:, 5] = 1.0  # class 0 certain; the score is the objectness
    cell = lambda x, y: y * 52 + x  # noqa: E731 (stride 8 rows)
    raw[cell(10, 10), :5] = [0, 0, math.log(4), math.log(4), 0.9]   # centre (80, 80), 32 x 32 -> [64, 64, 96, 96]
    raw[cell(10, 10) + 1, :5] = [-0.25, 0, math.log(4), math.log(4), 0.7]  # 6 px to the left: IoU 26/38 > 0.6
    raw[cell(30, 10), :5] = [0, 0, math.log(4), math.log(4), 0.5]   # far away: kept
    raw[cell(40, 10), :5] = [0, 0, math.log(4), math.log(4), 0.04]  # below 0.05: dropped
    monkeypatch.setattr(yolox, "_run", lambda padded: raw)
    image = np.zeros((208, 832, 3), np.uint8)  # letterbox ratio 0.5
    detections = yolox.detect_frame(image)
    np.testing.assert_allclose(detections.scores, [0.9, 0.5], atol=1e-6)
    np.testing.assert_allclose(detections.boxes, [[128, 128, 192, 192], [448, 128, 512, 192]], atol=1e-4)
    assert detections.boxes.dtype == np.float32


def test_max_detections_and_min_box_area(monkeypatch):
    raw = np.zeros((3549, 85), np.float32)
    raw[:, 5] = 1.0
    raw[:2704:3, 4] = np.linspace(0.9, 0.1, len(raw[:2704:3]))  # many separate 8 x 8 boxes on the stride-8 grid
    few = YoloxDetect(device="cpu", max_detections=5)
    monkeypatch.setattr(few, "_run", lambda padded: raw)
    detections = few.detect_frame(np.zeros((416, 416, 3), np.uint8))
    assert len(detections) == 5 and np.all(np.diff(detections.scores) <= 0)
    large = YoloxDetect(device="cpu", min_box_area=65)  # every box here is 8 x 8 = 64 px
    monkeypatch.setattr(large, "_run", lambda padded: raw)
    assert len(large.detect_frame(np.zeros((416, 416, 3), np.uint8))) == 0


def test_shipped_model_gives_sigmoid_scores(yolox):
    raw = yolox._run(letterbox(np.full((240, 320, 3), 90, np.uint8), 416)[0])
    assert raw.shape == (3549, 85)
    assert raw[:, 4:].min() >= 0 and raw[:, 4:].max() <= 1
    assert raw[:, :4].min() < 0  # box terms are raw offsets / log sizes, not yet decoded


def test_real_frame_finds_the_bear(yolox, davis16_root):
    image = read_frame(davis16_root / "JPEGImages/480p/bear/00000.jpg")
    truth = mask_box(read_annotation(davis16_root / "Annotations/480p/bear/00000.png", "davis2016") == 1)
    [detections] = yolox.detect(DetectBatch("bear", [0], images=image[None]))
    assert 1 <= len(detections) <= 100 and np.all(np.diff(detections.scores) <= 0)
    assert detections.scores.min() >= 0.05
    assert np.all(detections.boxes[:, :2] >= 0) and np.all(detections.boxes[:, 2] <= 854)
    assert np.all(detections.boxes[:, 3] <= 480)
    assert box_iou(detections.boxes, truth[None]).max() >= 0.5


def test_identity_names_the_weights(yolox):
    identity = yolox.identity()
    assert identity["weights"]["id"] == "yolox_nano_coco" and identity["weights"]["sha256"] == SHA[:16]
    assert identity["input_size"] == 416 and identity["providers"] == ["CPUExecutionProvider"]


# --- configuration and weights errors -------------------------------------------------------------------------------

def test_bad_device_fails_at_construction():
    with pytest.raises(InputError) as error:
        YoloxDetect(device="gpu")
    assert error.value.where == "stages.detect.device"


def test_missing_user_weights_name_the_file_and_setting(tmp_path):
    with pytest.raises(InputError, match="weights file is missing") as error:
        YoloxDetect(weights=str(tmp_path / "nope.onnx"), device="cpu")
    assert "stages.detect.yolox.weights" in str(error.value)


def test_user_file_that_is_not_onnx_is_refused(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model at all")
    with pytest.raises(InputError, match="cannot load as an ONNX model") as error:
        YoloxDetect(weights=str(bad), device="cpu")
    assert error.value.where == str(bad) and "stages.detect.yolox.weights" in str(error.value)


def test_user_copy_of_the_model_works_through_the_path_setting(tmp_path):
    copy = tmp_path / "mine.onnx"
    shutil.copy(SHIPPED_DIR / known_weights("yolox_nano_coco").file, copy)
    backend = YoloxDetect(weights=str(copy), device="cpu")
    assert backend.weights_path == copy and backend.identity()["weights"]["id"] is None


def test_altered_or_missing_shipped_file_is_a_clear_error(tmp_path, monkeypatch):
    import stg.weights_registry as registry

    shipped = registry.SHIPPED_DIR / "yolox_nano_coco.onnx"
    altered = tmp_path / "yolox_nano_coco.onnx"
    altered.write_bytes(shipped.read_bytes()[:-10])
    monkeypatch.setattr(registry, "SHIPPED_DIR", tmp_path)
    with pytest.raises(InputError, match="altered") as error:
        YoloxDetect(device="cpu")
    assert error.value.where == "stages.detect.yolox.weights" and SHA in str(error.value)
    altered.unlink()
    with pytest.raises(InputError, match="missing") as error:
        YoloxDetect(device="cpu")
    assert error.value.where == "stages.detect.yolox.weights" and SHA in str(error.value)


def test_explicit_cuda_without_the_cuda_provider_is_an_error():
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this ONNX Runtime has the CUDA provider")
    with pytest.raises(InputError, match="CUDAExecutionProvider") as error:
        YoloxDetect(device="cuda")
    assert error.value.where == "stages.detect.device"


# --- union ----------------------------------------------------------------------------------------------------------

class _Fixed:
    """A member returning the same boxes every frame and recording what it was given."""

    makes_masks = False
    batch_size = 4

    def __init__(self, name: str, reads: str, boxes: list[list[float]], scores: list[float]) -> None:
        self.name, self.reads = name, reads
        self.boxes, self.scores = np.array(boxes, np.float32).reshape(-1, 4), np.array(scores, np.float32)
        self.seen: list[DetectBatch] = []

    def identity(self) -> dict:
        return {"backend": self.name}

    def detect(self, batch: DetectBatch) -> list[Detections]:
        self.seen.append(batch)
        return [Detections(self.boxes, self.scores) for _ in batch.frames]


def test_union_merges_members_by_score_and_gives_each_its_input():
    frames = _Fixed("a", FRAMES, [[0, 0, 5, 5], [1, 1, 4, 4]], [0.9, 0.2])
    priors = _Fixed("b", PRIORS, [[2, 2, 8, 8]], [0.5])
    union = UnionDetect([frames, priors])
    assert union.reads == FRAMES_AND_PRIORS and union.makes_masks is False
    batch = DetectBatch("v", [3, 4], images=np.zeros((2, 9, 9, 3), np.uint8), priors=np.zeros((2, 1, 9, 9)))
    merged = union.detect(batch)
    assert len(merged) == 2
    np.testing.assert_array_equal(merged[0].scores, np.float32([0.9, 0.5, 0.2]))
    np.testing.assert_array_equal(merged[1].boxes, [[0, 0, 5, 5], [2, 2, 8, 8], [1, 1, 4, 4]])
    assert frames.seen[0].images is not None and frames.seen[0].priors is None
    assert priors.seen[0].priors is not None and priors.seen[0].images is None
    assert union.identity()["members"] == [{"backend": "a"}, {"backend": "b"}]
    assert UnionDetect([_Fixed("a", FRAMES, [], []), _Fixed("c", FRAMES, [], [])]).reads == FRAMES


def test_union_of_empty_members_is_empty():
    union = UnionDetect([_Fixed("a", FRAMES, [], []), _Fixed("b", PRIORS, [], [])])
    [result] = union.detect(DetectBatch("v", [0], images=np.zeros((1, 4, 4, 3), np.uint8),
                                        priors=np.zeros((1, 1, 4, 4))))
    assert len(result) == 0 and result.boxes.shape == (0, 4)


def test_union_refuses_bad_member_lists():
    one = _Fixed("a", FRAMES, [], [])
    with pytest.raises(InputError, match="at least two") as error:
        UnionDetect([one])
    assert error.value.where == "stages.detect.union.backends"
    with pytest.raises(InputError, match="distinct"):
        UnionDetect([one, _Fixed("a", PRIORS, [], [])])
    masked = _Fixed("m", FRAMES, [], [])
    masked.makes_masks = True
    with pytest.raises(InputError, match="masks"):
        UnionDetect([one, masked])


def test_detect_stage_feeds_a_union_frames_and_priors(tiny_dataset, tmp_path, yolox):
    video = open_dataset(tiny_dataset, "davis2017", "val").videos()[0]
    labels = [read_annotation(video.annotation_paths[n], "davis2017") for n in video.frame_names]
    count = int(max(label.max() for label in labels))
    priors = np.stack([one_hot(label, count) for label in labels])
    height, width = labels[0].shape
    attrs = {"frame_names": video.frame_names, "image_size": [height, width], "video": video.name, "key": "w",
             "num_objects": count}
    with build_store(tmp_path / "warp.zarr", "warp", attrs) as store:
        store.array("priors", priors.shape, np.uint8)[:] = quantise(priors)
    motion = MotionDetect(jitter_copies=2, batch_size=3)
    union = UnionDetect([yolox, motion], batch_size=3)
    compute_detect_store(video, open_store(tmp_path / "warp.zarr", "warp"), union, tmp_path / "detect.zarr", {})
    store = open_store(tmp_path / "detect.zarr", "detect")
    assert [m["backend"] for m in store.attrs["backend"]["members"]] == ["yolox", "motion"]
    images = np.stack([read_frame(path) for path in video.frame_paths])
    for frame in range(len(video.frame_names)):
        batch = DetectBatch(video.name, [frame], images=images[frame:frame + 1], priors=priors[frame:frame + 1])
        expected = yolox.detect(batch)[0].scores.tolist() + motion.detect(batch)[0].scores.tolist()
        scores = read_ragged(store, "scores", frame)
        assert len(read_ragged(store, "boxes", frame)) == len(scores) == len(expected)
        np.testing.assert_allclose(scores, sorted(expected, reverse=True), atol=1e-6)
