"""Pure array operations shared by the detection backends."""

from __future__ import annotations

import numpy as np


def sort_by_score(boxes: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Indices ordering boxes by decreasing score; ties keep their order, so results are reproducible."""
    return np.argsort(-scores, kind="stable")


def filter_detections(boxes: np.ndarray, scores: np.ndarray, score_thresh: float, nms_thresh: float,
                      max_detections: int | None = None) -> np.ndarray:
    """Indices kept by the paper's test-time rule: score >= threshold, then class-agnostic NMS at IoU nms_thresh.

    Returned in decreasing score order, at most `max_detections` of them.
    """
    import torch
    from torchvision.ops import nms

    candidates = np.flatnonzero(scores >= score_thresh)
    if len(candidates) == 0:
        return candidates.astype(np.int64)
    kept = nms(torch.from_numpy(np.ascontiguousarray(boxes[candidates], dtype=np.float32)),
               torch.from_numpy(np.ascontiguousarray(scores[candidates], dtype=np.float32)), nms_thresh).numpy()
    kept = candidates[kept]
    return kept[:max_detections] if max_detections is not None else kept


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, 4) x (M, 4) xyxy -> (N, M) IoU."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)
