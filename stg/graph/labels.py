"""Resolve per-object masks into one label map: where objects overlap, the higher soft score wins."""

from __future__ import annotations

import numpy as np


def resolve_labels(masks: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """(K, H, W) binary masks and soft scores -> (H, W) uint8 labels 0..K.

    A pixel belongs to the object with the highest score among those whose mask covers it
    (equal scores: the lower object index), and to the background where no mask covers it.
    """
    if masks.shape[0] == 0:
        return np.zeros(masks.shape[1:], dtype=np.uint8)
    ranked = np.where(masks, scores, -np.inf)
    best = np.argmax(ranked, axis=0)
    return np.where(masks.any(axis=0), best + 1, 0).astype(np.uint8)
