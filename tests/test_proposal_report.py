"""The proposal report (box recall, oracle J) on hand-made cases with known answers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from stg.cli import main
from stg.datasets import open_dataset, read_annotation, read_first_mask
from stg.proposals_report import (
    ReportAccumulator,
    aggregate,
    box_iou,
    frame_scores,
    mask_box,
    mask_ious,
    video_report,
)
from stg.store import build_store, open_store


def test_box_iou_and_mask_box():
    iou = box_iou(np.array([[0, 0, 10, 10]]), np.array([[5, 0, 15, 10], [0, 0, 10, 10], [20, 20, 30, 30],
                                                        [3, 3, 3, 8]]))
    np.testing.assert_allclose(iou, [[1 / 3, 1.0, 0.0, 0.0]])
    mask = np.zeros((10, 12), dtype=bool)
    mask[2:5, 3:8] = True
    np.testing.assert_array_equal(mask_box(mask), [3, 2, 8, 5])
    assert mask_box(np.zeros((4, 4), dtype=bool)) is None


def test_mask_ious_leave_void_out():
    target = np.zeros((4, 4), dtype=bool)
    target[:2] = True                                   # 8 pixels
    proposal = np.zeros((1, 4, 4), dtype=bool)
    proposal[0, :3] = True                              # 12 pixels, 4 of them outside the target
    assert mask_ious(proposal, target)[0] == pytest.approx(8 / 12)
    valid = np.ones((4, 4), dtype=bool)
    valid[2] = False                                    # the extra row is void
    assert mask_ious(proposal, target, valid)[0] == pytest.approx(1.0)


def _square_frame():
    labels = np.zeros((20, 20), dtype=np.uint8)
    labels[2:8, 2:8] = 1                                # object 1: 36 pixels, box [2, 2, 8, 8]
    labels[12:16, 12:18] = 3                            # object 3: 24 pixels, box [12, 12, 18, 16]
    return labels


def test_frame_scores_known_answers():
    labels = _square_frame()
    half = np.zeros((20, 20), dtype=np.uint8)
    half[2:5, 2:8] = 255                                # top half of object 1: J = 0.5
    soft = np.zeros((20, 20), dtype=np.uint8)
    soft[2:8, 2:8] = 127                                # below the 0.5 mask threshold: counts as empty
    boxes = np.array([[2, 2, 8, 8], [2, 2, 8, 5], [12, 12, 15, 16]], dtype=np.float32)
    entries = frame_scores(boxes, np.stack([half, soft, np.zeros_like(half)]), labels, num_objects=3)
    assert [e["object"] for e in entries] == [1, 3]    # object 2 is absent from this frame: not counted
    assert entries[0]["best_box_iou"] == pytest.approx(1.0) and entries[0]["oracle_j"] == pytest.approx(0.5)
    assert entries[1]["best_box_iou"] == pytest.approx(12 / 24) and entries[1]["oracle_j"] == 0.0
    none = frame_scores(np.zeros((0, 4), np.float32), np.zeros((0, 20, 20), np.uint8), labels, 3)
    assert [(e["best_box_iou"], e["oracle_j"]) for e in none] == [(0.0, 0.0), (0.0, 0.0)]


def test_accumulator_and_aggregate():
    labels = _square_frame()
    exact = np.zeros((20, 20), dtype=np.uint8)
    exact[2:8, 2:8] = 255
    acc = ReportAccumulator("v", num_objects=3)
    acc.add_frame("00000", np.zeros((0, 4), np.float32), np.zeros((0, 20, 20), np.uint8), None)  # no ground truth
    acc.add_frame("00001", np.array([[2, 2, 8, 8]], np.float32), exact[None], labels)
    acc.add_frame("00002", np.array([[0, 0, 1, 1], [2, 2, 8, 8]], np.float32), np.stack([exact * 0, exact]), labels)
    report = acc.result()
    assert report["proposals_per_frame"] == [0, 1, 2] and report["mean_proposals_per_frame"] == pytest.approx(1.0)
    assert report["evaluated_frames"] == 2 and report["object_frames"] == 4
    assert report["recall"] == pytest.approx(0.5)      # object 1 found twice, object 3 never
    assert report["oracle_j"] == pytest.approx(0.5)
    assert report["objects"]["1"] == {"object_frames": 2, "recall": 1.0, "oracle_j": 1.0}
    assert report["objects"]["2"]["recall"] is None
    other = {**report, "video": "w", "object_frames": 1, "recall": 1.0, "oracle_j": 0.8, "frames": 1,
             "proposals_per_frame": [4]}
    summary = aggregate([report, other])
    overall = summary["overall"]
    assert overall["object_frames"] == 5
    assert overall["recall"] == pytest.approx((0.5 * 4 + 1.0) / 5)
    assert overall["recall_video_mean"] == pytest.approx(0.75)
    assert overall["oracle_j"] == pytest.approx((0.5 * 4 + 0.8) / 5)
    assert overall["mean_proposals_per_frame"] == pytest.approx(7 / 4)
    assert "per_frame" not in summary["videos"]["v"]


def _segment_store_from_truth(video, out, keep=lambda frame: True) -> None:
    """Proposals = the ground-truth objects themselves, only in frames where `keep(frame)`."""
    _, num_objects = read_first_mask(video)
    boxes, masks = [], []
    for index, name in enumerate(video.frame_names):
        labels = read_annotation(video.annotation_paths[name], video.layout)
        frame_boxes, frame_masks = [], []
        for obj in range(1, num_objects + 1):
            box = mask_box(labels == obj)
            if box is not None and keep(index):
                frame_boxes.append(box)
                frame_masks.append((labels == obj).astype(np.uint8) * 255)
        boxes.append(np.array(frame_boxes, np.float32).reshape(-1, 4))
        masks.append(np.array(frame_masks, np.uint8).reshape(-1, *labels.shape))
    attrs = {"frame_names": video.frame_names, "image_size": list(labels.shape), "video": video.name}
    with build_store(out, "segment", attrs) as store:
        store.ragged("boxes", boxes, np.float32)
        store.ragged("masks", masks, np.uint8, chunk_rows=1)


def test_video_report_on_a_store(tiny_dataset, tmp_path):
    dataset = open_dataset(tiny_dataset, "davis2017", "val")
    video = dataset.video(dataset.video_names()[0])
    _segment_store_from_truth(video, tmp_path / "all.zarr")
    report = video_report(tmp_path / "all.zarr", video)
    assert report["recall"] == 1.0 and report["oracle_j"] == pytest.approx(1.0)
    assert report["evaluated_frames"] == len(video.frame_names) - 1  # the first frame is the input: skipped
    _segment_store_from_truth(video, tmp_path / "even.zarr", keep=lambda frame: frame % 2 == 0)
    report = video_report(tmp_path / "even.zarr", video)
    entries = report["per_frame"]
    found = [e for e in entries if int(e["frame"]) % 2 == 0]
    assert report["recall"] == pytest.approx(len(found) / len(entries))
    assert report["oracle_j"] == pytest.approx(len(found) / len(entries))
    code = main(["proposals-report", "--segment", str(tmp_path / "even.zarr"), str(tmp_path / "all.zarr"),
                 "--dataset-root", str(tiny_dataset), "--split", "val", "--out", str(tmp_path / "r.json")])
    assert code == 0
    written = json.loads((tmp_path / "r.json").read_text())
    assert written["overall"]["object_frames"] == 2 * len(entries)
    assert written["overall"]["recall"] == pytest.approx((len(found) + len(entries)) / (2 * len(entries)))


def test_cli_without_dataset_uses_stored_reports(tmp_path, capsys):
    report = ReportAccumulator("v", 1)
    labels = np.zeros((8, 8), np.uint8)
    labels[2:4, 2:4] = 1
    report.add_frame("00001", np.array([[2, 2, 4, 4]], np.float32), (labels * 255)[None], labels)
    attrs = {"frame_names": ["00000", "00001"], "image_size": [8, 8], "video": "v", "proposal_report": report.result()}
    with build_store(tmp_path / "a.zarr", "segment", attrs) as store:
        store.ragged("boxes", [np.zeros((0, 4)), np.zeros((0, 4))], np.float32)
    with build_store(tmp_path / "b.zarr", "segment", {**attrs, "video": "no-truth", "proposal_report": None}) as store:
        store.ragged("boxes", [np.zeros((0, 4)), np.zeros((0, 4))], np.float32)
    assert main(["proposals-report", "--segment", str(tmp_path / "a.zarr"), str(tmp_path / "b.zarr"),
                 "--out", str(tmp_path / "r.json")]) == 0
    written = json.loads((tmp_path / "r.json").read_text())
    assert written["overall"]["recall"] == 1.0 and written["without_ground_truth"] == ["no-truth"]
    assert main(["proposals-report", "--segment", str(tmp_path / "none.zarr"), "--out", str(tmp_path / "x.json")]) == 2
    assert "store is missing" in capsys.readouterr().err


def test_results_write_proposals_json(tiny_dataset, tmp_path):
    from stg.results import write_run

    dataset = open_dataset(tiny_dataset, "davis2017", "val")
    labels, segments = [], []
    for name in dataset.video_names():
        video = dataset.video(name)
        common = ["--dataset-root", str(tiny_dataset), "--split", "val", "--video", name]
        assert main(["flow", *common, "--out", str(tmp_path / f"flow-{name}.zarr")]) == 0
        assert main(["warp", *common, "--flow", str(tmp_path / f"flow-{name}.zarr"),
                     "--out", str(tmp_path / f"warp-{name}.zarr")]) == 0
        assert main(["propagate", "--warp", str(tmp_path / f"warp-{name}.zarr"),
                     "--out", str(tmp_path / f"labels-{name}.zarr")]) == 0
        _segment_store_from_truth(video, tmp_path / f"segment-{name}.zarr")
        report = video_report(tmp_path / f"segment-{name}.zarr", video)
        import zarr

        zarr.open_group(str(tmp_path / f"segment-{name}.zarr"), mode="r+").attrs["proposal_report"] = report
        labels.append(tmp_path / f"labels-{name}.zarr")
        segments.append(str(tmp_path / f"segment-{name}.zarr"))
    plan = {"stores": {"segment": segments, "propagate": [str(p) for p in labels]}}
    write_run(tiny_dataset, "val", labels, tmp_path / "run", plan=plan, benchmarks=[], processes=1)
    proposals = json.loads((tmp_path / "run" / "proposals.json").read_text())
    assert set(proposals["videos"]) == set(dataset.video_names())
    assert proposals["overall"]["recall"] == 1.0 and proposals["overall"]["oracle_j"] == pytest.approx(1.0)
    assert open_store(segments[0], "segment").attrs["video"] in proposals["videos"]
