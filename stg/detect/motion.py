"""Boxes from the warped priors Q: connected components of each object's prior, plus jittered copies.

No weights and no frames: proposals come from where the flow says each object went. The jittered
copies stand in for a detector's many overlapping proposals, so the graph stage has alternatives
around each object. Score of a box b for object k = soft IoU between the box region and the prior,
sum_{x in b} Q(x) / (|b| + sum_x Q(x) - sum_{x in b} Q(x)), in [0, 1]: 1 only for a box that
exactly covers a binary prior, lower for boxes that miss mass or include background.
"""

from __future__ import annotations

import zlib
from typing import Any

import cv2
import numpy as np

from stg.detect.base import PRIORS, DetectBatch, Detections
from stg.detect.ops import sort_by_score

FOREGROUND = 0.5  # a pixel belongs to the object's component where Q >= 0.5


def component_boxes(prior: np.ndarray, min_area: int, threshold: float = FOREGROUND) -> np.ndarray:
    """(H, W) prior -> (n, 4) float32 xyxy boxes of the 8-connected components of Q >= threshold with >= min_area px."""
    foreground = (prior >= threshold).astype(np.uint8)
    _, _, stats, _ = cv2.connectedComponentsWithStats(foreground, connectivity=8)
    stats = stats[1:]  # label 0 is the background
    stats = stats[stats[:, cv2.CC_STAT_AREA] >= max(min_area, 1)]
    x, y = stats[:, cv2.CC_STAT_LEFT], stats[:, cv2.CC_STAT_TOP]
    x2, y2 = x + stats[:, cv2.CC_STAT_WIDTH], y + stats[:, cv2.CC_STAT_HEIGHT]
    return np.stack([x, y, x2, y2], axis=1).astype(np.float32)


def jitter_boxes(boxes: np.ndarray, copies: int, scale: float, shift: float, rng: np.random.Generator,
                 size: tuple[int, int]) -> np.ndarray:
    """`copies` jittered versions of every box, clipped to the (H, W) image; degenerate results dropped.

    Width and height are each multiplied by 1 + U(-scale, scale); the centre moves by U(-shift, shift)
    times the box's width (x) and height (y).
    """
    if copies == 0 or len(boxes) == 0:
        return np.zeros((0, 4), np.float32)
    height, width = size
    base = np.repeat(boxes.astype(np.float64), copies, axis=0)
    wh = base[:, 2:] - base[:, :2]
    centre = (base[:, :2] + base[:, 2:]) / 2
    factors = 1.0 + rng.uniform(-scale, scale, size=wh.shape)
    moves = rng.uniform(-shift, shift, size=wh.shape)
    centre = centre + moves * wh
    wh = wh * factors
    jittered = np.concatenate([centre - wh / 2, centre + wh / 2], axis=1)
    jittered[:, 0::2] = np.clip(jittered[:, 0::2], 0, width)
    jittered[:, 1::2] = np.clip(jittered[:, 1::2], 0, height)
    valid = np.all(jittered[:, 2:] - jittered[:, :2] >= 1.0, axis=1)
    return jittered[valid].astype(np.float32)


def soft_box_iou(prior: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Soft IoU between each box's pixel region and the prior (see module doc); 0 for an empty prior.

    Fractional box edges are widened to whole pixels for the sums.
    """
    if len(boxes) == 0:
        return np.zeros((0,), np.float32)
    integral = cv2.integral(prior.astype(np.float64))  # (H+1, W+1)
    height, width = prior.shape
    x1 = np.clip(np.floor(boxes[:, 0]).astype(int), 0, width)
    y1 = np.clip(np.floor(boxes[:, 1]).astype(int), 0, height)
    x2 = np.clip(np.ceil(boxes[:, 2]).astype(int), 0, width)
    y2 = np.clip(np.ceil(boxes[:, 3]).astype(int), 0, height)
    inside = integral[y2, x2] - integral[y1, x2] - integral[y2, x1] + integral[y1, x1]
    total = integral[-1, -1]
    union = (x2 - x1) * (y2 - y1) + total - inside
    return np.where(union > 0, inside / np.maximum(union, 1e-12), 0.0).clip(0, 1).astype(np.float32)


def frame_seed(seed: int, video: str, frame: int) -> list[int]:
    """Seed material for one frame's jitter: the same (seed, video, frame) gives the same boxes in any process."""
    return [seed, zlib.crc32(video.encode()), frame]


def motion_proposals(priors: np.ndarray, rng: np.random.Generator, min_area: int, copies: int, scale: float,
                     shift: float) -> Detections:
    """(K, H, W) priors of one frame -> proposals of all objects, by decreasing score."""
    size = priors.shape[1:]
    all_boxes, all_scores = [], []
    for prior in priors:
        if not prior.any():
            continue
        boxes = component_boxes(prior, min_area)
        boxes = np.concatenate([boxes, jitter_boxes(boxes, copies, scale, shift, rng, size)])
        all_boxes.append(boxes)
        all_scores.append(soft_box_iou(prior, boxes))
    if not all_boxes:
        return Detections.empty()
    boxes, scores = np.concatenate(all_boxes), np.concatenate(all_scores)
    order = sort_by_score(boxes, scores)
    return Detections(boxes[order], scores[order])


class MotionDetect:
    """Proposals from the warp store's priors; deterministic for a given seed. Settings are checked by the schema."""

    name = "motion"
    reads = PRIORS
    makes_masks = False

    def __init__(self, min_area: int = 16, jitter_copies: int = 4, jitter_scale: float = 0.1,
                 jitter_shift: float = 0.1, seed: int = 0, batch_size: int = 8) -> None:
        self.min_area, self.jitter_copies, self.seed, self.batch_size = min_area, jitter_copies, seed, batch_size
        self.jitter_scale, self.jitter_shift = float(jitter_scale), float(jitter_shift)

    def identity(self) -> dict[str, Any]:
        return {"backend": self.name, "min_area": self.min_area, "jitter_copies": self.jitter_copies,
                "jitter_scale": self.jitter_scale, "jitter_shift": self.jitter_shift, "seed": self.seed,
                "score": "soft IoU of box and prior", "weights": None}

    def detect(self, batch: DetectBatch) -> list[Detections]:
        if batch.priors is None:
            raise ValueError("the motion backend needs the batch's priors")
        return [motion_proposals(priors, np.random.default_rng(frame_seed(self.seed, batch.video, frame)),
                                 self.min_area, self.jitter_copies, self.jitter_scale, self.jitter_shift)
                for frame, priors in zip(batch.frames, batch.priors, strict=True)]
