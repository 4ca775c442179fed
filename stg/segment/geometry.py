"""Box geometry shared by the segment backends: crops around boxes and pasting crop masks back.

Boxes are xyxy in continuous pixel coordinates (pixel column i covers [i, i+1)), so a mask whose
pixels span columns 3..7 has x1 = 3, x2 = 8.
"""

from __future__ import annotations

import math

import numpy as np


def box_pixels(box: np.ndarray, height: int, width: int) -> tuple[int, int, int, int]:
    """Integer pixel range (x1, y1, x2, y2), end exclusive, of the pixels a box touches, clipped to the frame."""
    x1, y1, x2, y2 = (float(v) for v in box)
    left = min(max(math.floor(x1), 0), width)
    top = min(max(math.floor(y1), 0), height)
    right = max(min(math.ceil(x2), width), left)
    bottom = max(min(math.ceil(y2), height), top)
    return left, top, right, bottom


def enlarge_box(box: np.ndarray, margin: float) -> np.ndarray:
    """The box grown by `margin` times its width (height) on the left and right (top and bottom) sides.

    The paper's "margin ratio of 0.15": a 100-pixel-wide box gives a 130-pixel-wide crop.
    """
    x1, y1, x2, y2 = (float(v) for v in box)
    dx, dy = margin * max(x2 - x1, 0.0), margin * max(y2 - y1, 0.0)
    return np.array([x1 - dx, y1 - dy, x2 + dx, y2 + dy], dtype=np.float32)


def crop_region(box: np.ndarray, margin: float, height: int, width: int) -> tuple[int, int, int, int]:
    """Pixel range of the enlarged box, clipped to the frame."""
    return box_pixels(enlarge_box(box, margin), height, width)


def paste(crop: np.ndarray, region: tuple[int, int, int, int], height: int, width: int) -> np.ndarray:
    """A crop mask pasted into an empty (zero) H x W frame, the paper's "void image"."""
    left, top, right, bottom = region
    frame = np.zeros((height, width), dtype=crop.dtype)
    frame[top:bottom, left:right] = crop
    return frame
