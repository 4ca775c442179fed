"""How good are the proposals? Box recall and the oracle J, the ceiling of any mask selection.

Per video and annotated frame (the first frame is skipped: its annotation is the method's input):
- recall: a ground-truth object counts as found when some proposal box has IoU >= 0.5 with the
  object's box (the bounding box of its mask in that frame). Objects absent from a frame's ground
  truth are not counted.
- oracle J: the best mask IoU between any proposal mask (probability >= 0.5) and the object's
  mask, i.e. the J a perfect selector would reach; 0 when the frame has no proposal. Void pixels
  (label 255) are left out of both masks, as in the DAVIS evaluation.
Means pool all (object, frame) pairs; `aggregate` also gives the mean of the per-video means.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from stg.atomic import write_text_atomic
from stg.datasets import VOID_LABEL, Video, read_annotation
from stg.store import check_store_matches, open_store, read_ragged, store_path

log = logging.getLogger(__name__)

IOU_THRESHOLD = 0.5
MASK_THRESHOLD = 128  # uint8 probability >= 0.5


def mask_box(mask: np.ndarray) -> np.ndarray | None:
    """xyxy box of a bool mask in continuous pixel coordinates (pixel i covers [i, i+1)); None when empty."""
    rows, columns = np.any(mask, axis=1), np.any(mask, axis=0)
    if not rows.any():
        return None
    top, bottom = np.flatnonzero(rows)[[0, -1]]
    left, right = np.flatnonzero(columns)[[0, -1]]
    return np.array([left, top, right + 1, bottom + 1], dtype=np.float32)


def box_iou(boxes: np.ndarray, others: np.ndarray) -> np.ndarray:
    """(N, 4) x (M, 4) xyxy -> (N, M) IoU; degenerate boxes have IoU 0."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    others = np.asarray(others, dtype=np.float64).reshape(-1, 4)
    width = np.clip(np.minimum(boxes[:, None, 2], others[None, :, 2])
                    - np.maximum(boxes[:, None, 0], others[None, :, 0]), 0, None)
    height = np.clip(np.minimum(boxes[:, None, 3], others[None, :, 3])
                     - np.maximum(boxes[:, None, 1], others[None, :, 1]), 0, None)
    intersection = width * height
    area = lambda b: np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)  # noqa: E731
    union = area(boxes)[:, None] + area(others)[None, :] - intersection
    return np.divide(intersection, union, out=np.zeros_like(intersection), where=union > 0)


def mask_ious(masks: np.ndarray, target: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """(N, H, W) bool proposals vs an (H, W) bool target -> (N,) IoU over the valid (non-void) pixels."""
    if valid is not None:
        masks, target = masks & valid, target & valid
    intersection = np.logical_and(masks, target).sum(axis=(1, 2), dtype=np.int64)
    union = np.logical_or(masks, target).sum(axis=(1, 2), dtype=np.int64)
    return np.divide(intersection, union, out=np.zeros(len(masks), dtype=np.float64), where=union > 0)


def frame_scores(boxes: np.ndarray, masks: np.ndarray, labels: np.ndarray, num_objects: int) -> list[dict[str, Any]]:
    """One entry per object present in the frame's ground truth: best box IoU and oracle J.

    `masks` are the frame's (N, H, W) uint8 proposal probabilities, `labels` its ground-truth label map.
    """
    valid = labels != VOID_LABEL
    binary = np.asarray(masks) >= MASK_THRESHOLD
    entries = []
    for obj in range(1, num_objects + 1):
        target = labels == obj
        truth_box = mask_box(target)
        if truth_box is None:
            continue
        best_box = float(box_iou(boxes, truth_box[None]).max(initial=0.0)) if len(boxes) else 0.0
        best_mask = float(mask_ious(binary, target, valid).max(initial=0.0)) if len(boxes) else 0.0
        entries.append({"object": obj, "best_box_iou": best_box, "oracle_j": best_mask})
    return entries


def _summary(entries: list[dict[str, Any]], threshold: float) -> dict[str, Any]:
    if not entries:
        return {"object_frames": 0, "recall": None, "oracle_j": None}
    return {"object_frames": len(entries),
            "recall": float(np.mean([e["best_box_iou"] >= threshold for e in entries])),
            "oracle_j": float(np.mean([e["oracle_j"] for e in entries]))}


@dataclass
class ReportAccumulator:
    """Collects a video's report frame by frame, so the segment stage scores masks while it has them."""

    video: str
    num_objects: int
    threshold: float = IOU_THRESHOLD
    proposals_per_frame: list[int] = field(default_factory=list)
    entries: list[dict[str, Any]] = field(default_factory=list)
    evaluated_frames: int = 0

    def add_frame(self, name: str, boxes: np.ndarray, masks: np.ndarray, labels: np.ndarray | None) -> None:
        """Count a frame's proposals; score them when the frame has a ground-truth label map."""
        self.proposals_per_frame.append(len(boxes))
        if labels is None:
            return
        self.evaluated_frames += 1
        for entry in frame_scores(boxes, masks, labels, self.num_objects):
            self.entries.append({"frame": name, **entry})

    def result(self) -> dict[str, Any]:
        counts = self.proposals_per_frame
        per_object = {str(obj): _summary([e for e in self.entries if e["object"] == obj], self.threshold)
                      for obj in range(1, self.num_objects + 1)}
        return {"video": self.video, "frames": len(counts), "proposals_per_frame": counts,
                "mean_proposals_per_frame": float(np.mean(counts)) if counts else 0.0,
                "iou_threshold": self.threshold, "evaluated_frames": self.evaluated_frames,
                **_summary(self.entries, self.threshold), "objects": per_object, "per_frame": self.entries}


def ground_truth_frames(video: Video) -> dict[int, Path]:
    """Frame index -> annotation path, for every frame after the first with ground truth (Video.scored_frames:
    none where the annotations only seed objects, e.g. YouTube-VOS valid or a folder)."""
    names = video.frame_names
    return {index: video.annotation_paths[names[index]] for index in video.scored_frames if index > 0}


def video_report(segment_store: Any, video: Video) -> dict[str, Any]:
    """The report of one segment store (an open group or a path) against the video's ground truth."""
    if isinstance(segment_store, str | Path):
        store, where = open_store(Path(segment_store), "segment"), str(segment_store)
    else:
        store, where = segment_store, store_path(segment_store)
    check_store_matches(store, where, video)
    num_objects = video.num_objects
    shape = tuple(store.attrs["image_size"])
    truth = ground_truth_frames(video)
    offsets = store["offsets"][:]
    accumulator = ReportAccumulator(video.name, num_objects)
    for index, name in enumerate(video.frame_names):
        labels = read_annotation(truth[index], video.layout, shape=shape) if index in truth else None
        boxes = read_ragged(store, "boxes", index, offsets)
        masks = read_ragged(store, "masks", index, offsets) if labels is not None \
            else np.zeros((len(boxes), 0, 0), np.uint8)
        accumulator.add_frame(name, boxes, masks, labels)
    return accumulator.result()


def aggregate(reports: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Per-video summaries and overall figures: pooled over (object, frame) pairs and averaged over videos."""
    reports = list(reports)
    videos = {r["video"]: {k: v for k, v in r.items() if k not in ("per_frame", "proposals_per_frame")}
              for r in reports}
    scored = [r for r in reports if r.get("object_frames")]
    pairs = sum(r["object_frames"] for r in scored)
    frames = sum(r["frames"] for r in reports)

    def pooled(name: str) -> float | None:
        return float(sum(r[name] * r["object_frames"] for r in scored) / pairs) if pairs else None

    def video_mean(name: str) -> float | None:
        return float(np.mean([r[name] for r in scored])) if scored else None

    overall = {"videos": len(reports), "videos_with_ground_truth": len(scored), "object_frames": pairs,
               "mean_proposals_per_frame": (float(sum(sum(r["proposals_per_frame"]) for r in reports) / frames)
                                            if frames else 0.0),
               "recall": pooled("recall"), "oracle_j": pooled("oracle_j"),
               "recall_video_mean": video_mean("recall"), "oracle_j_video_mean": video_mean("oracle_j"),
               "iou_threshold": IOU_THRESHOLD}
    return {"videos": videos, "overall": overall}


def stored_reports(stores: Iterable[str | Path]) -> tuple[list[dict[str, Any]], list[str]]:
    """The `proposal_report` attributes of segment stores, and the stores that have none (no ground truth)."""
    reports, without = [], []
    for path in stores:
        attrs = open_store(Path(path), "segment").attrs.asdict()
        if attrs.get("proposal_report"):
            reports.append(attrs["proposal_report"])
        else:
            without.append(str(attrs.get("video", path)))
    return reports, without


def write_proposal_summary(reports: list[dict[str, Any]], out: Path, without_ground_truth: list[str] | None = None
                           ) -> dict[str, Any]:
    """proposals.json: the aggregate, plus the videos that could not be scored; returns the aggregate."""
    summary = {**aggregate(reports), "without_ground_truth": sorted(without_ground_truth or [])}
    write_text_atomic(out, json.dumps(summary, indent=2))
    return summary
