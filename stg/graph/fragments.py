"""Detached fragments of an object's mask, dropped before the mask becomes the next frame's Q.

A fragment the segmenter leaks onto nearby background (a goal beside a hockey player, a banner behind a dog) is
carried forward by Q_t = the result warped, and it stretches B(Q_t), the motion model's p, towards itself, so the
selection keeps choosing masks that span it. Dropping components much smaller than the object's largest one
breaks that loop; an object split by an occluder keeps its parts, which are of comparable size.
"""

from __future__ import annotations

import cv2
import numpy as np


def drop_fragments(mask: np.ndarray, min_fraction: float) -> np.ndarray:
    """(H, W) bool mask without the 8-connected components smaller than `min_fraction` of its largest one
    (0: the mask as it is)."""
    if min_fraction <= 0 or not mask.any():
        return mask
    count, components, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if count <= 2:  # background and one component
        return mask
    areas = stats[1:, cv2.CC_STAT_AREA]
    kept = np.concatenate([[False], areas >= min_fraction * areas.max()])
    return kept[components]
