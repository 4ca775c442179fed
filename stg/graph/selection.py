"""Mask selection (Eq. 6): the node whose mask agrees best with the predicted box and the warped mask."""

from __future__ import annotations

import numpy as np

from stg.graph.boxes import box_iou, mask_box


def mask_iou(first: np.ndarray, second: np.ndarray) -> float:
    """IoU of two binary masks; two empty masks have IoU 0."""
    union = np.logical_or(first, second).sum()
    return float(np.logical_and(first, second).sum() / union) if union else 0.0


def selection_scores(masks: np.ndarray, predicted_box: np.ndarray, warped: np.ndarray,
                     lambda1: float = 0.4, lambda2: float = 0.6) -> np.ndarray:
    """S(M_v | p, Q) = lambda1 IoU(B(M_v), p) + lambda2 IoU(M_v, Q) for binary (N, H, W) masks and a binary Q."""
    scores = np.empty(len(masks), dtype=np.float64)
    for index, mask in enumerate(masks):
        scores[index] = lambda1 * box_iou(mask_box(mask), predicted_box) + lambda2 * mask_iou(mask, warped)
    return scores


def select(scores: np.ndarray, detection_scores: np.ndarray | None = None, tolerance: float = 1e-9) -> int:
    """Arg-max of Eq. 6. Ties (within `tolerance`) go to the higher detection score, then the lower index."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.size == 0:
        raise ValueError("no node to select from")
    tied = np.flatnonzero(scores >= scores.max() - tolerance)
    if detection_scores is None or len(tied) == 1:
        return int(tied[0])
    detection = np.asarray(detection_scores, dtype=np.float64)[tied]
    return int(tied[np.flatnonzero(detection == detection.max())[0]])
