"""Box geometry on numpy arrays: xyxy boxes in pixel coordinates (x_max, y_max exclusive), IoUs, mask boxes."""

from __future__ import annotations

import numpy as np

EMPTY_BOX = np.full(4, np.nan, dtype=np.float32)


def box_area(boxes: np.ndarray) -> np.ndarray:
    boxes = np.asarray(boxes, dtype=np.float64)
    return np.clip(boxes[..., 2] - boxes[..., 0], 0, None) * np.clip(boxes[..., 3] - boxes[..., 1], 0, None)


def box_iou_matrix(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """(N, 4) x (M, 4) -> (N, M) IoU; degenerate or NaN boxes have IoU 0 with everything."""
    first = np.asarray(first, dtype=np.float64).reshape(-1, 4)
    second = np.asarray(second, dtype=np.float64).reshape(-1, 4)
    left = np.maximum(first[:, None, 0], second[None, :, 0])
    top = np.maximum(first[:, None, 1], second[None, :, 1])
    right = np.minimum(first[:, None, 2], second[None, :, 2])
    bottom = np.minimum(first[:, None, 3], second[None, :, 3])
    intersection = np.clip(right - left, 0, None) * np.clip(bottom - top, 0, None)
    union = box_area(first)[:, None] + box_area(second)[None, :] - intersection
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, intersection / np.where(union > 0, union, 1.0), 0.0)
    return np.nan_to_num(iou, nan=0.0)


def box_iou(first: np.ndarray, second: np.ndarray) -> float:
    return float(box_iou_matrix(first, second)[0, 0])


def mask_box(mask: np.ndarray) -> np.ndarray:
    """B(M): the tight xyxy box of a binary mask (exclusive max); NaNs for an empty mask."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return EMPTY_BOX.copy()
    columns = np.flatnonzero(mask.any(axis=0))
    return np.array([columns[0], rows[0], columns[-1] + 1, rows[-1] + 1], dtype=np.float32)


def box_center_size(box: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """xyxy -> (centre (cx, cy), size (w, h))."""
    box = np.asarray(box, dtype=np.float64)
    return (box[..., :2] + box[..., 2:]) / 2.0, box[..., 2:] - box[..., :2]


def box_from_center_size(center: np.ndarray, size: np.ndarray) -> np.ndarray:
    center, size = np.asarray(center, dtype=np.float64), np.asarray(size, dtype=np.float64)
    return np.concatenate([center - size / 2.0, center + size / 2.0], axis=-1).astype(np.float32)


def expand_box(box: np.ndarray, margin: float, height: int, width: int) -> tuple[int, int, int, int]:
    """Integer crop window around a box: each side grows by `margin` x the box size, clipped to the frame.

    Never empty: a box thinner than a pixel still gives a 1 x 1 window.
    """
    x0, y0, x1, y1 = (float(v) for v in box)
    grow_x, grow_y = margin * (x1 - x0), margin * (y1 - y0)
    left = int(np.clip(np.floor(x0 - grow_x), 0, width - 1))
    top = int(np.clip(np.floor(y0 - grow_y), 0, height - 1))
    right = int(np.clip(np.ceil(x1 + grow_x), left + 1, width))
    bottom = int(np.clip(np.ceil(y1 + grow_y), top + 1, height))
    return left, top, right, bottom
