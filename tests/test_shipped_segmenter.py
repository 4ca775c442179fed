"""The segmenter shipped in the package: intact, documented by its training record, and it segments."""

from __future__ import annotations

import json

import numpy as np

from stg.segment.deeplab import SHIPPED_ID, DeepLabSegmenter
from stg.weights_registry import SHIPPED_DIR, known_weights, verified_default


def test_shipped_segmenter_is_registered_intact_and_has_its_training_record():
    entry = known_weights(SHIPPED_ID)
    path = verified_default(entry)  # sha256 checked
    assert path.stat().st_size < 20 * 2**20
    record = json.loads((SHIPPED_DIR / "segmenter_davis16.training.json").read_text())
    assert record["model"] == "segmenter" and record["steps"] == record["recipe"]["steps"]
    assert sum(len(d["videos"]) for d in record["data"]) == 28
    assert record["history"] and record["packages"]["torch"]


def test_shipped_segmenter_recovers_an_object_from_a_shifted_prior(tiny_dataset):
    """On a synthetic video (never trained on) whose object is alone, Q = the ground truth shifted by a few pixels:
    the output must follow the object better than Q does. (Where synthetic objects overlap, the DAVIS-trained
    segmenter tends to take both: it learned single salient objects.)"""
    from stg.datasets import open_dataset, read_annotation, read_frame

    video = next(v for v in open_dataset(tiny_dataset, "davis2017", "val").videos() if "exit" in v.name)
    frame = video.frame_names[4]
    image = read_frame(video.frame_paths[4])
    labels = read_annotation(video.annotation_paths[frame], "davis2017")
    truth = labels == 1
    shifted = np.roll(truth, (3, 4), axis=(0, 1)).astype(np.float32)
    rows, cols = np.nonzero(shifted)
    box = np.array([[cols.min(), rows.min(), cols.max() + 1, rows.max() + 1]], np.float32)
    backend = DeepLabSegmenter(device="cpu")
    mask = backend.segment(image, box, shifted[None], np.zeros(1, np.int64))[0] >= 128

    def iou(a, b):
        return (a & b).sum() / max((a | b).sum(), 1)

    assert backend.identity()["weights"]["shipped"] is True
    assert iou(mask, truth) > 0.85
    assert iou(mask, truth) > iou(shifted > 0.5, truth)
