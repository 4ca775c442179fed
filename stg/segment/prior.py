"""Which prior Q seeds each proposal: the union of all objects (paper) or the object owning the box.

- `union` (default, class-agnostic as in the paper): Q = max over objects of their warped priors; every
  box of the frame shares it.
- `per_object`: box b gets the prior of the object with the largest prior mass (sum of Q_k over the
  pixels of b); ties go to the lower object index; a box where every object's mass is 0 gets the
  union (which is 0 inside the box anyway).
"""

from __future__ import annotations

import numpy as np

from stg.segment.geometry import box_pixels

Q_MODES = ("union", "per_object")


def union_prior(priors: np.ndarray) -> np.ndarray:
    """(K, H, W) -> (H, W) max over objects; zeros when there is no object."""
    if priors.shape[0] == 0:
        return np.zeros(priors.shape[1:], dtype=np.float32)
    return priors.max(axis=0).astype(np.float32, copy=False)


def prior_mass(priors: np.ndarray, box: np.ndarray) -> np.ndarray:
    """(K,) sum of each object's prior over the pixels the box covers."""
    height, width = priors.shape[1:]
    left, top, right, bottom = box_pixels(box, height, width)
    return priors[:, top:bottom, left:right].sum(axis=(1, 2), dtype=np.float64)


def box_priors(priors: np.ndarray, boxes: np.ndarray, mode: str = "union") -> tuple[np.ndarray, np.ndarray]:
    """The frame's prior planes (M, H, W) float32 and each box's plane index (N,) int64.

    union: M = 1. per_object: planes are the K objects' priors plus the union (index K) for boxes
    that no object's prior reaches.
    """
    if mode not in Q_MODES:
        raise ValueError(f"unknown q_mode '{mode}' (expected one of {', '.join(Q_MODES)})")
    priors = np.asarray(priors, dtype=np.float32)
    union = union_prior(priors)
    if mode == "union":
        return union[None], np.zeros(len(boxes), dtype=np.int64)
    planes = np.concatenate([priors, union[None]])
    index = np.empty(len(boxes), dtype=np.int64)
    for n, box in enumerate(boxes):
        mass = prior_mass(priors, box)
        index[n] = int(np.argmax(mass)) if mass.size and mass.max() > 0 else priors.shape[0]
    return planes, index
