"""Motion model (Eq. 2) and proposal classification by IoU with each object's predicted box."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from stg.graph.boxes import box_center_size, box_from_center_size, box_iou_matrix

NO_OBJECT = -1


def predict_box(history: Sequence[np.ndarray], n: int = 10, size_n: int | None = None,
                velocity: str = "mean") -> np.ndarray:
    """p_t from the boxes b_0..b_{t-1} of an object's previous results (oldest first), Eq. 2.

    c_t = c_{t-1} + (1/n') sum_{r=t-n'}^{t-1} (c_r - c_{r-1})   with n' = min(n, len(history) - 1) steps,
    s_t = (1/n'') sum_{r=t-n''}^{t-1} s_r                         with n'' = min(size_n, len(history)) sizes.
    The paper fixes n = size_n = 10 (size_n None: the same n) and the mean; at the start of a video fewer frames
    exist, so fewer are averaged (one box: no velocity, its own size). A mean size over 10 frames lags an object
    that grows, shrinks or changes pose, and a mean velocity carries one wrong selection's jump into the next p,
    which the next selection then follows (README: Table 4); hence size_n and velocity="median" (per
    coordinate, over the same n' steps).
    """
    if velocity not in ("mean", "median"):
        raise ValueError(f"motion velocity must be 'mean' or 'median', got {velocity!r}")
    size_n = n if size_n is None else size_n
    if n < 1 or size_n < 1:
        raise ValueError(f"motion history n and size_n must be >= 1, got {n} and {size_n}")
    if len(history) == 0:
        raise ValueError("the motion model needs at least one previous box")
    centers, sizes = box_center_size(np.stack([np.asarray(b, dtype=np.float64) for b in history]))
    steps = min(n, len(centers) - 1)
    if steps == 0:
        shift = np.zeros(2)
    elif velocity == "mean":
        shift = (centers[-1] - centers[-1 - steps]) / steps
    else:
        shift = np.median(np.diff(centers[-1 - steps:], axis=0), axis=0)
    size = sizes[-min(size_n, len(sizes)):].mean(axis=0)
    return box_from_center_size(centers[-1] + shift, size)


def mask_centroid(mask: np.ndarray) -> np.ndarray:
    """(x, y) mean of a mask's pixels (pixel centres); NaNs for an empty mask."""
    rows, columns = np.nonzero(mask)
    if rows.size == 0:
        return np.full(2, np.nan)
    return np.array([columns.mean() + 0.5, rows.mean() + 0.5])


def flow_shifted_box(previous_box: np.ndarray, previous_mask: np.ndarray, warped_mask: np.ndarray) -> np.ndarray:
    """p_t as Eq. 2 with the centre's step measured by the optical flow: the previous box moved by how far the mean
    of the object's pixels moved when the flow warped its mask (c(Q_t) - c(M_{t-1})), its size kept.

    B(Q_t) also takes the warped mask's extent, so Eq. 6's box term re-counts Q's shape, spill included; a box
    velocity from result boxes turns a creeping spill into motion (README: Table 4). The previous box itself, where
    either mask is empty.
    """
    shift = mask_centroid(warped_mask) - mask_centroid(previous_mask)
    previous_box = np.asarray(previous_box, dtype=np.float32)
    if np.isnan(shift).any():
        return previous_box.copy()
    return (previous_box + np.tile(shift, 2)).astype(np.float32)


def assign_proposals(proposal_boxes: np.ndarray, predicted_boxes: np.ndarray) -> np.ndarray:
    """Object index (0..K-1) of every proposal: the object whose predicted box it overlaps most.

    A proposal whose best IoU is 0 joins no object (NO_OBJECT); on equal IoUs the lower object index wins.
    """
    proposal_boxes = np.asarray(proposal_boxes, dtype=np.float64).reshape(-1, 4)
    if len(predicted_boxes) == 0 or len(proposal_boxes) == 0:
        return np.full(len(proposal_boxes), NO_OBJECT, dtype=np.int64)
    iou = box_iou_matrix(proposal_boxes, predicted_boxes)
    best = np.argmax(iou, axis=1)
    return np.where(iou[np.arange(len(best)), best] > 0, best, NO_OBJECT).astype(np.int64)



def graph_owners(owner: np.ndarray, proposal_boxes: np.ndarray, predicted_boxes: np.ndarray,
                 join_iou: float) -> np.ndarray:
    """`owner` (assign_proposals) with the proposals that overlap their object's p by less than `join_iou` set to
    NO_OBJECT: the nodes of each object's spatial graph, or the candidates of its greedy selection. Eqs. 4-5 average
    the nodes' masks, and proposals that cover only part of the object (most of the jittered and part boxes on
    DAVIS) pull every node's mask below thr (README: Table 4); for the greedy selection they are hardly ever the
    best, and not segmenting them is most of the online graph's speed (README: Speed)."""
    owner = np.asarray(owner, dtype=np.int64)
    if join_iou <= 0 or not (owner >= 0).any():
        return owner
    boxes = np.asarray(proposal_boxes, dtype=np.float64).reshape(-1, 4)
    predicted = np.asarray(predicted_boxes, dtype=np.float64).reshape(-1, 4)
    assigned = np.flatnonzero(owner >= 0)
    overlap = np.zeros(len(owner))
    overlap[assigned] = [box_iou_matrix(boxes[r:r + 1], predicted[owner[r]:owner[r] + 1])[0, 0] for r in assigned]
    return np.where(overlap >= join_iou, owner, NO_OBJECT).astype(np.int64)
